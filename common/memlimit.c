#include "common/memlimit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* cgroup v1 says "no limit" with a page-aligned LONG_MAX; anything from 2^62 up is that. */
#define V1_UNLIMITED (1ULL << 62)

/* Reads one limit file: a number, or "max" (v2: none). Returns 1 and *v when limited. */
static int read_limit(const char *file, uint64_t *v)
{
	char buf[64];
	FILE *f = fopen(file, "re");
	char *end;
	int ok = 0;

	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && strncmp(buf, "max", 3) != 0) {
		unsigned long long n = strtoull(buf, &end, 10);

		ok = end != buf && n > 0 && n < V1_UNLIMITED;
		*v = n;
	}
	fclose(f);
	return ok;
}

/* The cgroup path of this process for v2 ("0::/path", want_v1 0) or v1's memory
 * controller (want_v1 1) into path; returns 1 if found. */
static int cgroup_path(const char *proc_cgroup, int want_v1, char *path, size_t size)
{
	char line[PATH_MAX + 64];
	FILE *f = fopen(proc_cgroup, "re");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		int v1_memory = 0;

		if (!c2)
			continue;
		*c1 = *c2 = '\0'; /* line: the id; c1 + 1: the controllers; c2 + 1: the path */
		for (char *tok = c1 + 1, *next; tok && *tok; tok = next) {
			next = strchr(tok, ',');
			if (next)
				*next++ = '\0';
			v1_memory |= strcmp(tok, "memory") == 0;
		}
		if (want_v1 ? !v1_memory : !(strcmp(line, "0") == 0 && c1[1] == '\0'))
			continue;
		c2[strcspn(c2 + 1, "\n") + 1] = '\0';
		found = snprintf(path, size, "%s", c2 + 1) < (int)size;
	}
	fclose(f);
	return found;
}

static int is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The smallest limit in name along base/path and its parents up to base (or in base
 * alone when the path is not there: a cgroup namespace shows the container's own
 * cgroup at the root). Returns 1 with *v and file set when some level is limited. */
static int walk_up(const char *base, const char *path, const char *name, uint64_t *v,
		   char *file, size_t fsize)
{
	char dir[PATH_MAX], f[PATH_MAX + 32];
	size_t blen = strlen(base);
	uint64_t n;
	int found = 0;

	if (snprintf(dir, sizeof(dir), "%s%s", base, path) >= (int)sizeof(dir) || !is_dir(dir))
		snprintf(dir, sizeof(dir), "%s", base);
	for (;;) {
		snprintf(f, sizeof(f), "%s/%s", dir, name);
		if (read_limit(f, &n) && (!found || n < *v)) {
			*v = n;
			snprintf(file, fsize, "%s", f);
			found = 1;
		}
		char *slash = strrchr(dir, '/');

		if (strlen(dir) <= blen || !slash || (size_t)(slash - dir) < blen)
			break;
		*slash = '\0';
	}
	return found;
}

void memlimit_detect(const char *root, const char *proc_cgroup, struct memlimit *out)
{
	char path[PATH_MAX], base[PATH_MAX], file[PATH_MAX + 32];
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t v;

	memset(out, 0, sizeof(*out));
	out->bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : UINT64_MAX;
	out->from = MEMLIMIT_PHYSICAL;
	if (cgroup_path(proc_cgroup, 0, path, sizeof(path)) &&
	    walk_up(root, path, "memory.max", &v, file, sizeof(file)) && v < out->bytes) {
		out->bytes = v;
		out->from = MEMLIMIT_CGROUP2;
		snprintf(out->file, sizeof(out->file), "%s", file);
	}
	snprintf(base, sizeof(base), "%s/memory", root);
	if (cgroup_path(proc_cgroup, 1, path, sizeof(path)) &&
	    walk_up(base, path, "memory.limit_in_bytes", &v, file, sizeof(file)) &&
	    v < out->bytes) {
		out->bytes = v;
		out->from = MEMLIMIT_CGROUP1;
		snprintf(out->file, sizeof(out->file), "%s", file);
	}
}

const char *memlimit_from_name(enum memlimit_from from)
{
	switch (from) {
	case MEMLIMIT_CGROUP2:
		return "cgroup v2";
	case MEMLIMIT_CGROUP1:
		return "cgroup v1";
	default:
		return "physical memory";
	}
}
