#include "io/metadata.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/htab.h"
#include "io/appendlog.h"
#include "io/jsonname.h"

struct metadata {
	const struct metadata_binding *binding; /* set at creation */
	int dirfd;                              /* set at creation, borrowed */
	struct appendlog *log;                  /* reopened by metadata_compact */
	atomic_ullong lines;
	atomic_int superseded;                  /* a line was superseded since compaction */
	pthread_mutex_t lock;                   /* guards retracted */
	uint64_t *retracted;                    /* under lock: offsets of void lines */
	size_t nretracted, capretracted;        /* under lock */
};

static json_t *name_string(const char *s)
{
	size_t cap = strlen(s) * 4 + 1;
	char *esc = malloc(cap);
	json_t *j = esc && jsonname_escape(s, esc, cap) >= 0 ? json_string(esc) : NULL;

	free(esc);
	return j;
}

/* A JSON array of strings; names that are not valid UTF-8 are escaped (jsonname.h). */
static json_t *string_array(const char *const *v, int n)
{
	json_t *a = json_array();

	for (int i = 0; a && i < n; i++)
		if (json_array_append_new(a, name_string(v[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *dataset_versions(const struct metadata_binding *b)
{
	json_t *list = json_array();

	for (int i = 0; list && i < b->ndatasets; i++) {
		json_t *v = json_pack("{s:s}", "uri", b->datasets[i]);
		int bad = !v;

		if (!bad && b->naliases)
			bad = json_object_set_new(v, "targeting_aliases",
						  string_array(b->aliases, b->naliases)) != 0;
		if (!bad && b->from)
			bad = json_object_set_new(v, "from", json_string(b->from)) != 0;
		if (!bad && b->from && b->nexcludes)
			bad = json_object_set_new(v, "exclude",
						  string_array(b->excludes, b->nexcludes)) != 0;
		if (!bad && b->packaging)
			bad = json_object_set_new(v, "packaging", json_true()) != 0;
		if (bad || json_array_append_new(list, v) != 0) {
			json_decref(v);
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

json_t *metadata_dataset_versions(const struct metadata_binding *b)
{
	return b->ndatasets ? dataset_versions(b) : NULL;
}

static void format_mtime(int64_t ns, char *buf, size_t size)
{
	int64_t frac = ns % 1000000000;
	time_t sec = (time_t)(ns / 1000000000 - (frac < 0));
	struct tm tm;
	char base[32];

	frac += frac < 0 ? 1000000000 : 0;

	gmtime_r(&sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%09lldZ", base, (long long)frac);
}

static json_t *provenance(const struct metadata_provenance *p)
{
	char mtime[48];
	json_t *o;

	format_mtime(p->source_mtime_ns, mtime, sizeof(mtime));
	o = json_pack(
	    "{s:I, s:s, s:s?, s:i, s:i, s:i, s:i, s:I, s:s, s:s, s:o, s:s}", "source_bytes",
	    (json_int_t)p->source_bytes, "source_mtime", mtime, "source_sha256",
	    p->source_sha256, "original_width", p->original_width, "original_height",
	    p->original_height, "width", p->width, "height", p->height, "output_bytes",
	    (json_int_t)p->output_bytes, "format", p->format, "kernel", p->kernel,
	    "operations", string_array(p->operations, p->noperations), "vhprep_version",
	    p->version);

	if (o && p->frames > 1 &&
	    (json_object_set_new(o, "frames", json_integer(p->frames)) != 0 ||
	     json_object_set_new(o, "frame_used", json_integer(p->frame_used)) != 0)) {
		json_decref(o);
		return NULL;
	}
	if (o && (jsonname_set(o, "source", p->source) != 0 ||
		  (p->source_relpath && jsonname_set(o, "source_relpath", p->source_relpath) != 0) ||
		  (p->extra && json_object_update_missing(o, p->extra) != 0))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *build(const struct metadata_binding *b, const char *file,
		     const struct metadata_provenance *prov)
{
	json_t *meta = prov ? provenance(prov) : json_object();
	json_t *v;

	if (!meta)
		return NULL;
	if (b->ndatasets) {
		v = dataset_versions(b);
		if (!v || json_object_set_new(meta, "valohai.dataset-versions", v) != 0)
			goto fail;
	}
	if (b->ntags) {
		v = string_array(b->tags, b->ntags);
		if (!v || json_object_set_new(meta, "valohai.tags", v) != 0)
			goto fail;
	}
	v = json_object();
	if (!v || jsonname_set(v, "file", file) != 0 || json_object_set_new(v, "metadata", meta)) {
		json_decref(v);
		return NULL;
	}
	return v;
fail:
	json_decref(meta);
	return NULL;
}

char *metadata_format_line(const struct metadata_binding *b, const char *file,
			   const struct metadata_provenance *prov)
{
	json_t *root = build(b, file, prov);
	char *text, *line = NULL;
	size_t n;

	if (!root)
		return NULL;
	text = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(root);
	if (!text)
		return NULL;
	n = strlen(text);
	line = malloc(n + 2);
	if (line) {
		memcpy(line, text, n);
		line[n] = '\n';
		line[n + 1] = '\0';
	}
	free(text);
	return line;
}

int metadata_open(int dirfd, const struct metadata_binding *b, struct metadata **out,
		  struct vherr *err)
{
	struct metadata *m = calloc(1, sizeof(*m));
	int rc;

	*out = NULL;
	if (!m)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	rc = appendlog_open(dirfd, METADATA_FILE, 0, &m->log, err);
	if (rc < 0) {
		free(m);
		return rc;
	}
	m->binding = b;
	m->dirfd = dirfd;
	pthread_mutex_init(&m->lock, NULL);
	*out = m;
	return 0;
}

int metadata_append_line(struct metadata *m, const char *line, size_t len, uint64_t *at,
			 struct vherr *err)
{
	int rc = appendlog_append(m->log, line, len, at, err);

	if (rc == 0)
		atomic_fetch_add(&m->lines, 1);
	return rc;
}

int metadata_append(struct metadata *m, const char *file,
		    const struct metadata_provenance *prov, struct vherr *err)
{
	char *line = metadata_format_line(m->binding, file, prov);
	int rc;

	if (!line)
		return vherr_set(err, VHERR_BAD_NAME, VHSTAGE_RECORD,
				 "cannot encode metadata for '%s' (not valid UTF-8?)", file);
	rc = metadata_append_line(m, line, strlen(line), NULL, err);
	free(line);
	return rc;
}

int metadata_retract(struct metadata *m, uint64_t at)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (m->nretracted == m->capretracted) {
		size_t cap = m->capretracted ? m->capretracted * 2 : 16;
		uint64_t *v = realloc(m->retracted, cap * sizeof(*v));

		if (v) {
			m->retracted = v;
			m->capretracted = cap;
		}
	}
	if (m->nretracted < m->capretracted)
		m->retracted[m->nretracted++] = at;
	else
		rc = -VHERR_NOMEM;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

void metadata_superseded(struct metadata *m)
{
	atomic_store(&m->superseded, 1);
}

uint64_t metadata_lines(struct metadata *m)
{
	return atomic_load(&m->lines);
}

int metadata_close(struct metadata *m, struct vherr *err)
{
	int rc;

	if (!m)
		return 0;
	rc = appendlog_close(m->log, err);
	pthread_mutex_destroy(&m->lock);
	free(m->retracted);
	free(m);
	return rc;
}

/* ---- reading the file back ---- */

/* Parses one raw line into l (l->obj is a new reference or NULL). */
static void parse_line(const char *text, size_t len, uint64_t offset, struct metadata_line *l)
{
	json_t *file;

	l->offset = offset;
	l->len = len;
	l->file = NULL;
	l->obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (l->obj && !json_is_object(l->obj)) {
		json_decref(l->obj);
		l->obj = NULL;
	}
	file = l->obj ? json_object_get(l->obj, "file") : NULL;
	if (l->obj && (!json_is_string(file) || !(l->file = jsonname_get(l->obj, "file")))) {
		json_decref(l->obj);
		l->obj = NULL;
	}
}

/* Reads f from its start, calling fn(ctx, line, raw text) for each line. A last line
 * without its '\n' (a run killed before appendlog existed, or a foreign writer) is
 * passed on as not JSON. */
static int each_line(FILE *f, int (*fn)(void *ctx, const struct metadata_line *l, const char *raw),
		     void *ctx)
{
	char *buf = NULL;
	size_t cap = 0;
	uint64_t offset = 0;
	ssize_t n;
	int rc = 0;

	while (rc == 0 && (n = getline(&buf, &cap, f)) > 0) {
		struct metadata_line l;

		parse_line(buf, (size_t)n, offset, &l);
		if (buf[n - 1] != '\n' && l.obj) {
			json_decref(l.obj);
			l.obj = NULL;
			VH_FREE(l.file);
		}
		rc = fn(ctx, &l, buf);
		json_decref(l.obj);
		free(l.file);
		offset += (uint64_t)n;
	}
	free(buf);
	if (rc == 0 && ferror(f))
		rc = -VHERR_IO;
	return rc;
}

struct scan_ctx {
	metadata_line_fn fn;
	void *ctx;
};

static int scan_one(void *ctx, const struct metadata_line *l, const char *raw)
{
	struct scan_ctx *c = ctx;

	(void)raw;
	return c->fn(c->ctx, l);
}

int metadata_scan(int dirfd, const char *path, metadata_line_fn fn, void *ctx,
		  struct vherr *err)
{
	struct scan_ctx c = {fn, ctx};
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	FILE *f;
	int rc;

	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0 || !(f = fdopen(fd, "r"))) {
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot read '%s'", path);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rc = each_line(f, scan_one, &c);
	fclose(f);
	if (rc == -VHERR_IO)
		return vherr_set(err, VHERR_IO, VHSTAGE_RECORD, "cannot read '%s'", path);
	return rc;
}

/* ---- compaction ---- */

struct compact_ctx {
	struct metadata *m;
	int (*keep)(void *ctx, const struct metadata_line *l);
	void *ctx;
	struct htab *last; /* file name hash -> offset of its last kept line */
	FILE *out;         /* pass 2 only */
	int oom;
};

static uint64_t file_key(const char *file)
{
	return XXH3_64bits(file, strlen(file));
}

static int is_retracted(struct metadata *m, uint64_t offset)
{
	for (size_t i = 0; i < m->nretracted; i++)
		if (m->retracted[i] == offset)
			return 1;
	return 0;
}

static int kept(struct compact_ctx *c, const struct metadata_line *l)
{
	return l->obj && !is_retracted(c->m, l->offset) && (!c->keep || c->keep(c->ctx, l));
}

static int note_last(void *ctx, const struct metadata_line *l, const char *raw)
{
	struct compact_ctx *c = ctx;
	struct htab_stripe *s;
	uint64_t *at;

	(void)raw;
	if (!kept(c, l))
		return 0;
	s = htab_lock(c->last, file_key(l->file));
	at = htab_insert(s, file_key(l->file), NULL);
	if (at)
		*at = l->offset;
	htab_unlock(s);
	if (!at)
		c->oom = 1;
	return at ? 0 : -VHERR_NOMEM;
}

static int copy_last(void *ctx, const struct metadata_line *l, const char *raw)
{
	struct compact_ctx *c = ctx;
	struct htab_stripe *s;
	uint64_t *at;
	int last;

	if (!kept(c, l))
		return 0;
	s = htab_lock(c->last, file_key(l->file));
	at = htab_find(s, file_key(l->file));
	last = at && *at == l->offset;
	htab_unlock(s);
	if (last && fwrite(raw, 1, l->len, c->out) != l->len)
		return -VHERR_IO;
	return 0;
}

#define COMPACT_TMP "." METADATA_FILE ".vhprep-tmp"

/* Writes the compacted copy of in into COMPACT_TMP and flushes it to disk. */
static int write_compacted(struct compact_ctx *c, FILE *in, struct vherr *err)
{
	int fd, rc;

	rc = each_line(in, note_last, c);
	if (rc < 0)
		return vherr_set(err, -rc, VHSTAGE_RECORD, "cannot read '%s'", METADATA_FILE);
	fd = openat(c->m->dirfd, COMPACT_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !(c->out = fdopen(fd, "w"))) {
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot write '%s'", COMPACT_TMP);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rewind(in);
	rc = each_line(in, copy_last, c);
	if (fflush(c->out) != 0 || fdatasync(fileno(c->out)) != 0)
		rc = rc ? rc : -VHERR_IO;
	if (fclose(c->out) != 0)
		rc = rc ? rc : -VHERR_IO;
	c->out = NULL;
	if (rc < 0)
		return vherr_errno(err, errno ? errno : EIO, VHSTAGE_RECORD, "cannot write '%s'",
				   COMPACT_TMP);
	return 0;
}

int metadata_compact(struct metadata *m, int (*keep)(void *ctx, const struct metadata_line *l),
		     void *ctx, struct vherr *err)
{
	struct compact_ctx c = {.m = m, .keep = keep, .ctx = ctx, .last = htab_new(8)};
	struct appendlog *log = NULL;
	int fd = openat(m->dirfd, METADATA_FILE, O_RDONLY | O_CLOEXEC);
	FILE *in = NULL;
	int rc;

	if (!c.last) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
		goto out;
	}
	if (fd < 0 || !(in = fdopen(fd, "r"))) {
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot read '%s'", METADATA_FILE);
		goto out;
	}
	fd = -1;
	rc = write_compacted(&c, in, err);
	if (rc == 0 && renameat(m->dirfd, COMPACT_TMP, m->dirfd, METADATA_FILE) != 0)
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot replace '%s'", METADATA_FILE);
	if (rc == 0)
		rc = appendlog_open(m->dirfd, METADATA_FILE, 0, &log, err);
	if (rc == 0) {
		/* the superseded log: its close error is not checked, as the compacted file,
		 * built from its contents and fdatasync'd, holds whatever it had */
		appendlog_close(m->log, NULL);
		m->log = log;
		atomic_store(&m->superseded, 0);
		pthread_mutex_lock(&m->lock);
		m->nretracted = 0;
		pthread_mutex_unlock(&m->lock);
	}
out:
	if (rc < 0)
		unlinkat(m->dirfd, COMPACT_TMP, 0);
	if (in)
		fclose(in);
	if (fd >= 0)
		close(fd);
	htab_free(c.last);
	return rc;
}

int metadata_finish(struct metadata *m, int *did, struct vherr *err)
{
	int need, rc = 0;

	pthread_mutex_lock(&m->lock);
	need = atomic_load(&m->superseded) || m->nretracted > 0;
	pthread_mutex_unlock(&m->lock);
	if (did)
		*did = need;
	if (need)
		rc = metadata_compact(m, NULL, NULL, err);
	if (rc == 0)
		rc = appendlog_sync(m->log, err);
	return rc;
}
