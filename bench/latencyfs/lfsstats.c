#include "bench/latencyfs/lfsstats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const keys[LFSSTAT__COUNT] = {
#define LFSSTAT_KEY(name, key) key,
	LFSSTATS_LIST(LFSSTAT_KEY)
#undef LFSSTAT_KEY
};

void lfsstats_init(struct lfsstats *s)
{
	for (int i = 0; i < LFSSTAT__COUNT; i++)
		atomic_init(&s->v[i], 0);
}

void lfsstats_add(struct lfsstats *s, enum lfsstat which, uint64_t n)
{
	atomic_fetch_add_explicit(&s->v[which], n, memory_order_relaxed);
}

uint64_t lfsstats_get(struct lfsstats *s, enum lfsstat which)
{
	return atomic_load_explicit(&s->v[which], memory_order_relaxed);
}

void lfsstats_print(struct lfsstats *s, FILE *f)
{
	fputs("latencyfs:", f);
	for (int i = 0; i < LFSSTAT__COUNT; i++)
		fprintf(f, " %s=%" PRIu64, keys[i], lfsstats_get(s, (enum lfsstat)i));
	fputc('\n', f);
}

static int write_object(struct lfsstats *s, FILE *f)
{
	fputc('{', f);
	for (int i = 0; i < LFSSTAT__COUNT; i++)
		fprintf(f, "%s\"%s\": %" PRIu64, i ? ", " : "", keys[i],
			lfsstats_get(s, (enum lfsstat)i));
	fputs("}\n", f);
	return ferror(f) ? -EIO : 0;
}

int lfsstats_write_json(struct lfsstats *s, const char *path, char *err, size_t errlen)
{
	size_t len = strlen(path) + 5;
	char *tmp = malloc(len);
	FILE *f = NULL;
	int rc;

	if (!tmp) {
		rc = -ENOMEM;
		goto fail;
	}
	snprintf(tmp, len, "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f) {
		rc = -errno;
		goto fail;
	}
	rc = write_object(s, f);
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	f = NULL;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc < 0)
		goto fail;
	free(tmp);
	return 0;
fail:
	snprintf(err, errlen, "cannot write '%s': %s", path, strerror(-rc));
	if (tmp)
		unlink(tmp);
	free(tmp);
	return rc;
}
