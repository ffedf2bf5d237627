#include "engine/since.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/htab.h"
#include "engine/earlierurl.h"
#include "engine/resume.h"
#include "io/jsonname.h"
#include "io/metadata.h"

#define FLAG_SEEN    1u
#define FLAG_CHANGED 2u

/* An earlier output's input, keyed by the hash of its relative path. */
struct earlier_input {
	uint64_t size;
	int64_t mtime_ns;
	uint32_t flags;	  /* FLAG_*, under the stripe lock */
	uint32_t has_sha; /* sha is set */
	uint8_t sha[32];  /* only with --since-checksum (the record is shorter without) */
};

struct since {
	char *path;		 /* set at creation */
	int checksum;		 /* set at creation */
	struct htab *tab;	 /* set at creation */
	struct earlierurl *urls; /* set at creation: the URL inputs (--urls) */
};

static uint64_t key_of(const char *relpath)
{
	return XXH3_64bits(relpath, strlen(relpath));
}

static int unhex(const char *hex, uint8_t out[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v;

		if (!hex || sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return hex[64] == '\0' ? 0 : -1;
}

static int index_line(void *ctx, const struct metadata_line *l)
{
	struct since *s = ctx;
	json_t *meta = l->obj ? json_object_get(l->obj, "metadata") : NULL;
	const char *mtime = json_string_value(json_object_get(meta, "source_mtime"));
	const char *sha = json_string_value(json_object_get(meta, "source_sha256"));
	json_t *bytes = json_object_get(meta, "source_bytes");
	struct htab_stripe *st;
	struct earlier_input *e;
	char *rel;
	int64_t ns;

	if (!json_is_integer(bytes) || resume_parse_mtime(mtime, &ns) < 0 ||
	    !(rel = jsonname_get(meta, "source_relpath")))
		return 0; /* not an image's line (the CSV's), or one of an older vhprep */
	st = htab_lock(s->tab, key_of(rel));
	e = htab_insert(st, key_of(rel), NULL);
	if (e) {
		e->size = (uint64_t)json_integer_value(bytes);
		e->mtime_ns = ns;
		if (s->checksum)
			e->has_sha = unhex(sha, e->sha) == 0;
	}
	htab_unlock(st);
	if (e && earlierurl_add(s->urls, key_of(rel), meta) < 0)
		e = NULL;
	free(rel);
	return e ? 0 : -VHERR_NOMEM;
}

int since_open(const char *path, int checksum, struct since **out, struct vherr *err)
{
	struct since *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s || !(s->path = strdup(path)))
		goto nomem;
	s->checksum = checksum;
	s->tab = htab_new(checksum ? sizeof(struct earlier_input)
				   : offsetof(struct earlier_input, sha));
	s->urls = earlierurl_new();
	if (!s->tab || !s->urls)
		goto nomem;
	if (access(path, R_OK) != 0) {
		rc = vherr_errno(err, errno, VHSTAGE_NONE, "cannot read --since '%s'", path);
		goto fail;
	}
	rc = metadata_scan(AT_FDCWD, path, index_line, s, err);
	if (rc == -VHERR_NOMEM)
		goto nomem;
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;
nomem:
	rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, NULL);
fail:
	since_free(s);
	return rc;
}

/* Runs fn on relpath's record under its stripe lock; returns fn's result, or def. */
static int with_record(struct since *s, const char *relpath, int def,
		       int (*fn)(struct since *s, struct earlier_input *e, void *arg),
		       void *arg)
{
	struct htab_stripe *st = htab_lock(s->tab, key_of(relpath));
	struct earlier_input *e = htab_find(st, key_of(relpath));
	int rc = e ? fn(s, e, arg) : def;

	htab_unlock(st);
	return rc;
}

static int mark_seen(struct since *s, struct earlier_input *e, void *arg)
{
	(void)s;
	(void)arg;
	e->flags |= FLAG_SEEN;
	return 0;
}

void since_seen(struct since *s, const char *relpath)
{
	with_record(s, relpath, 0, mark_seen, NULL);
}

struct attrs {
	uint64_t size;
	int64_t mtime_ns;
};

static int judge(struct since *s, struct earlier_input *e, void *arg)
{
	const struct attrs *a = arg;

	e->flags |= FLAG_SEEN;
	if (s->checksum && e->has_sha)
		return SINCE_VERIFY;
	if (!s->checksum && e->size == a->size && e->mtime_ns == a->mtime_ns)
		return SINCE_UNCHANGED;
	e->flags |= FLAG_CHANGED;
	return SINCE_CHANGED;
}

enum since_verdict since_check(struct since *s, const char *relpath, uint64_t size,
			       int64_t mtime_ns)
{
	struct attrs a = {size, mtime_ns};

	return (enum since_verdict)with_record(s, relpath, SINCE_NEW, judge, &a);
}

static int compare_sha(struct since *s, struct earlier_input *e, void *arg)
{
	uint8_t sha[32];
	int same;

	(void)s;
	same = e->has_sha && unhex(arg, sha) == 0 && memcmp(sha, e->sha, 32) == 0;
	if (!same)
		e->flags |= FLAG_CHANGED;
	return same;
}

int since_same_content(struct since *s, const char *relpath, const char *sha256_hex)
{
	return with_record(s, relpath, 0, compare_sha, (void *)sha256_hex);
}

/* A URL input's verdict: changed unless it is the same; an asked one is changed until
 * since_url_unchanged says otherwise. */
static int url_judge(struct since *s, struct earlier_input *e, void *arg)
{
	int v = *(int *)arg;

	(void)s;
	e->flags |= FLAG_SEEN;
	if (v != SINCE_UNCHANGED)
		e->flags |= FLAG_CHANGED;
	return v;
}

enum since_verdict since_url(struct since *s, const char *relpath, const char *url,
			     struct source_validators *v)
{
	enum earlierurl_verdict u = earlierurl_check(s->urls, key_of(relpath), url, v);
	int verdict = u == EARLIERURL_SAME  ? SINCE_UNCHANGED
		      : u == EARLIERURL_ASK ? SINCE_ASK
					    : SINCE_CHANGED;

	return (enum since_verdict)with_record(s, relpath, SINCE_NEW, url_judge, &verdict);
}

static int clear_changed(struct since *s, struct earlier_input *e, void *arg)
{
	(void)s;
	(void)arg;
	e->flags &= ~FLAG_CHANGED;
	return 0;
}

void since_url_unchanged(struct since *s, const char *relpath)
{
	with_record(s, relpath, 0, clear_changed, NULL);
}

struct excl_ctx {
	struct since *s;
	int walk_complete;
	int (*fn)(void *ctx, const char *file);
	void *ctx;
};

static int is_excluded(struct since *s, struct earlier_input *e, void *arg)
{
	int walk_complete = *(int *)arg;

	(void)s;
	return (e->flags & FLAG_CHANGED) || (walk_complete && !(e->flags & FLAG_SEEN));
}

static int visit_line(void *ctx, const struct metadata_line *l)
{
	struct excl_ctx *c = ctx;
	json_t *meta = l->obj ? json_object_get(l->obj, "metadata") : NULL;
	char *rel = meta ? jsonname_get(meta, "source_relpath") : NULL;
	int excluded = rel && with_record(c->s, rel, 0, is_excluded, &c->walk_complete);

	free(rel);
	return excluded ? c->fn(c->ctx, l->file) : 0;
}

int since_excluded(struct since *s, int walk_complete, int (*fn)(void *ctx, const char *file),
		   void *ctx, struct vherr *err)
{
	struct excl_ctx c = {s, walk_complete, fn, ctx};

	return metadata_scan(AT_FDCWD, s->path, visit_line, &c, err);
}

uint64_t since_count(struct since *s)
{
	return htab_count(s->tab);
}

void since_free(struct since *s)
{
	if (!s)
		return;
	htab_free(s->tab);
	earlierurl_free(s->urls);
	free(s->path);
	free(s);
}
