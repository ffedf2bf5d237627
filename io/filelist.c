#include "io/filelist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether path is a relative path with at least one name and no ".." part. */
static int relpath_ok(const char *path)
{
	int names = 0;

	if (path[0] == '/')
		return 0;
	for (const char *p = path; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		names += n > 0 && !(n == 1 && p[0] == '.');
		p += n + (p[n] == '/');
	}
	return names > 0;
}

int filelist_clean_relpath(char *path)
{
	char *out = path, *p = path;

	if (!relpath_ok(path))
		return -1;
	while (*p) {
		char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (out != path)
				*out++ = '/';
			memmove(out, p, n);
			out += n;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	*out = '\0';
	return out == path ? -1 : 0;
}

static void chomp(char *line, ssize_t *n)
{
	while (*n > 0 && (line[*n - 1] == '\n' || line[*n - 1] == '\r'))
		line[--*n] = '\0';
}

int filelist_run(const char *path, atomic_int *stop, source_emit_fn emit, void *ctx,
		 void (*on_error)(void *ctx, const char *relpath, const struct vherr *err),
		 struct vherr *err)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	if (!f)
		return vherr_errno(err, errno, VHSTAGE_SELECT, "cannot open '%s'", path);
	errno = 0;
	while (!atomic_load(stop) && (n = getline(&line, &cap, f)) >= 0) {
		struct vherr bad;

		chomp(line, &n);
		if (n == 0)
			continue;
		if (filelist_clean_relpath(line) != 0) {
			vherr_set(&bad, VHERR_USAGE, VHSTAGE_SELECT,
				  "not a relative path inside the source");
			if (on_error)
				on_error(ctx, line, &bad);
			continue;
		}
		if (emit(ctx, &(struct source_entry){.relpath = line}) == SOURCE_STOP)
			atomic_store(stop, 1);
	}
	if (ferror(f))
		rc = vherr_errno(err, errno ? errno : EIO, VHSTAGE_SELECT, "cannot read '%s'",
				 path);
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}
