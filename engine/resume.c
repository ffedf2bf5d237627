#include "engine/resume.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/htab.h"
#include "engine/earlierurl.h"
#include "engine/preview.h"
#include "io/jsonname.h"
#include "io/posixwalk.h"
#include "io/report.h"

/* What the index keeps of an earlier output, keyed by the hash of its input's location. */
struct earlier {
	uint64_t size;
	int64_t mtime_ns;
	uint64_t name; /* hash of the output's name */
};

struct resume {
	int dirfd;	       /* set at creation, borrowed */
	struct metadata *m;    /* set at creation, borrowed */
	struct claims *claims; /* set at creation, borrowed */
	struct resume_opts o;  /* set at creation */
	json_t *versions;      /* set at creation: this run's dataset versions, or NULL */
	struct htab *index;    /* location hash -> struct earlier; NULL with overwrite */
	struct earlierurl *urls; /* the URL inputs' URLs and validators; NULL with overwrite */
	struct htab *seen;     /* while scanning: name hash -> 1 (duplicates) */
	struct htab *packed;   /* hash of an output stem in a published shard -> 1; NULL: none */
	/* while scanning, one thread */
	int needs_compaction;
	uint64_t earlier, dropped;
	atomic_ullong temps;   /* temporary files removed (walk threads) */
	struct vherr mismatch; /* a settings difference, when code is set */
	json_t *csv_line;      /* the CSV's last line, handed to the report */
	json_t *preview_line;  /* the preview sheet's last line, handed to the report */
};

int resume_parse_mtime(const char *s, int64_t *ns)
{
	struct tm tm = {0};
	long frac;
	int used = 0;

	if (!s ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%9ldZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &frac, &used) != 7 ||
	    used != 30 || s[used] != '\0')
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	*ns = (int64_t)timegm(&tm) * 1000000000 + frac;
	return 0;
}

/* Whether file (a line's "file") is an output of this prefix. */
static int ours(const struct resume *r, const char *file)
{
	size_t n = strlen(r->o.prefix);

	if (n == 0)
		return strcmp(file, REPORT_CSV_FILE) != 0 && strcmp(file, METADATA_FILE) != 0;
	return strncmp(file, r->o.prefix, n) == 0 && file[n] == '/';
}

/* Whether the output a line names stands: present with the size the line says (lines of
 * earlier versions without output_bytes: present). With live upload a missing file was
 * uploaded and removed by Valohai: it stands. */
static int output_stands(const struct resume *r, const char *file, json_t *meta)
{
	json_t *bytes = json_object_get(meta, "output_bytes");
	struct stat st;

	if (fstatat(r->dirfd, file, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return r->o.live_upload && errno == ENOENT;
	if (!S_ISREG(st.st_mode))
		return 0;
	return !json_is_integer(bytes) || (json_int_t)st.st_size == json_integer_value(bytes);
}

/* The metadata_compact predicate: keep what is not ours, and ours that stands. */
static int keep_line(void *ctx, const struct metadata_line *l)
{
	struct resume *r = ctx;

	return !ours(r, l->file) ||
	       output_stands(r, l->file, json_object_get(l->obj, "metadata"));
}

/* Names the first difference between a line's recipe and this run's, into r->mismatch. */
static void check_settings(struct resume *r, const char *file, json_t *meta)
{
	json_t *ops = json_object_get(meta, "operations");
	json_t *dv = json_object_get(meta, "valohai.dataset-versions");
	json_t *want = json_array();
	char *have_s = NULL, *want_s = NULL;

	for (int i = 0; want && i < r->o.nops; i++)
		json_array_append_new(want, json_string(r->o.ops[i]));
	if (r->mismatch.code || !want)
		goto out;
	if (!json_equal(ops, want)) {
		have_s = ops ? json_dumps(ops, JSON_COMPACT) : NULL;
		want_s = json_dumps(want, JSON_COMPACT);
		vherr_set(&r->mismatch, VHERR_USAGE, VHSTAGE_NONE,
			  "outputs dir '%s' holds '%s' made with operations %s; this run asks "
			  "for %s: rerun with the same options to resume, add --overwrite to "
			  "redo them, or choose a fresh --outputs",
			  r->o.outputs, file, have_s ? have_s : "(none)",
			  want_s ? want_s : "?");
	} else if (!(dv == NULL && r->versions == NULL) && !json_equal(dv, r->versions)) {
		have_s = dv ? json_dumps(dv, JSON_COMPACT) : NULL;
		want_s = r->versions ? json_dumps(r->versions, JSON_COMPACT) : NULL;
		vherr_set(&r->mismatch, VHERR_USAGE, VHSTAGE_NONE,
			  "outputs dir '%s' holds '%s' bound to %s; this run binds to %s: "
			  "rerun with the same --dataset options to resume, add --overwrite to "
			  "redo them, or choose a fresh --outputs",
			  r->o.outputs, file, have_s ? have_s : "no dataset",
			  want_s ? want_s : "no dataset");
	}
out:
	free(have_s);
	free(want_s);
	json_decref(want);
}

/* Indexes one standing output: its name in the claims, its input in the index. */
static int index_line(struct resume *r, const char *file, json_t *meta)
{
	/* a line of a vhprep before 0.2 knows its input by location only */
	char *rel = jsonname_get(meta, json_object_get(meta, "source_relpath") ? "source_relpath"
									      : "source");
	const char *mtime = json_string_value(json_object_get(meta, "source_mtime"));
	json_t *bytes = json_object_get(meta, "source_bytes");
	struct earlier *e = NULL;
	struct htab_stripe *s;
	uint64_t key;
	int64_t ns;

	if (!rel)
		return 0;
	if (claims_add_earlier(r->claims, file, rel, claims_suffix(rel)) < 0)
		goto out;
	r->earlier++;
	if (!r->index || !json_is_integer(bytes) || resume_parse_mtime(mtime, &ns) < 0) {
		free(rel);
		return 0;
	}
	key = claims_hash(rel);
	s = htab_lock(r->index, key);
	e = htab_insert(s, key, NULL);
	if (e) {
		e->size = (uint64_t)json_integer_value(bytes);
		e->mtime_ns = ns;
		e->name = claims_hash(file);
	}
	htab_unlock(s);
	if (e && earlierurl_add(r->urls, key, meta) < 0)
		e = NULL;
out:
	free(rel);
	return e ? 0 : -VHERR_NOMEM;
}

/* Judges every line; indexes the standing ones (in file order: the last wins). */
static int judge_line(void *ctx, const struct metadata_line *l)
{
	struct resume *r = ctx;
	json_t *meta;
	struct htab_stripe *s;
	int added = 0;

	if (!l->obj) {
		r->needs_compaction = 1;
		r->dropped++;
		return 0;
	}
	if (strcmp(l->file, REPORT_CSV_FILE) == 0) {
		json_decref(r->csv_line);
		r->csv_line = json_incref(l->obj);
	} else if (strcmp(l->file, PREVIEW_FILE) == 0) {
		json_decref(r->preview_line);
		r->preview_line = json_incref(l->obj);
	}
	if (!ours(r, l->file))
		return 0;
	meta = json_object_get(l->obj, "metadata");
	s = htab_lock(r->seen, claims_hash(l->file));
	if (!htab_insert(s, claims_hash(l->file), &added)) {
		htab_unlock(s);
		return -VHERR_NOMEM;
	}
	htab_unlock(s);
	if (!added)
		r->needs_compaction = 1; /* a superseded line: the last one wins */
	if (!output_stands(r, l->file, meta)) {
		r->needs_compaction = 1;
		r->dropped++;
		return 0;
	}
	if (!r->o.overwrite)
		check_settings(r, l->file, meta);
	return index_line(r, l->file, meta);
}

/* posixwalk emit: removes temporary files left by dead runs (we hold the lock: none is
 * a live run's). Runs on the walk's threads. */
static enum source_next remove_temp(void *ctx, const struct source_entry *e)
{
	struct resume *r = ctx;
	const char *base = strrchr(e->relpath, '/');
	char path[PATH_MAX];
	int n;

	base = base ? base + 1 : e->relpath;
	if (strncmp(base, DIRSINK_TMP_MARK, strlen(DIRSINK_TMP_MARK)) != 0)
		return SOURCE_CONTINUE;
	n = snprintf(path, sizeof(path), "%s%s%s", r->o.prefix, *r->o.prefix ? "/" : "",
		     e->relpath);
	if (n > 0 && (size_t)n < sizeof(path) && unlinkat(r->dirfd, path, 0) == 0)
		atomic_fetch_add(&r->temps, 1);
	return SOURCE_CONTINUE;
}

/* The temporary files a dead run may have left in the outputs root. */
static const char *const root_temps[] = {
    "." METADATA_FILE ".vhprep-tmp",
    "." REPORT_CSV_FILE ".vhprep-tmp",
    "." REPORT_SUMMARY_FILE ".vhprep-tmp",
};

/* Removes every temporary file under the prefix and the records' own in the root. */
static int remove_temps(struct resume *r, struct vherr *err)
{
	atomic_int stop = 0;
	int fd, rc;

	for (size_t i = 0; i < sizeof(root_temps) / sizeof(*root_temps); i++)
		if (unlinkat(r->dirfd, root_temps[i], 0) == 0)
			atomic_fetch_add(&r->temps, 1);
	fd = openat(r->dirfd, *r->o.prefix ? r->o.prefix : ".",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT
			   ? 0
			   : vherr_errno(err, errno, VHSTAGE_WRITE, "cannot open '%s/%s'",
					 r->o.outputs, r->o.prefix);
	rc = posixwalk_run(fd, 4, &stop, remove_temp, r, NULL, NULL, NULL, err);
	close(fd);
	return rc;
}

/* Reads the records, drops what does not stand, fills the claims and the index. */
static int load(struct resume *r, struct resume_report *rep, struct vherr *err)
{
	int rc = metadata_scan(r->dirfd, METADATA_FILE, judge_line, r, err);

	if (rc == -VHERR_NOMEM)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	if (rc < 0)
		return rc;
	if (r->mismatch.code) {
		*err = r->mismatch;
		return -VHERR_USAGE;
	}
	if (!r->needs_compaction)
		return 0;
	rc = metadata_compact(r->m, keep_line, r, err);
	if (rc < 0)
		return rc;
	/* pass 1 indexed the standing lines in file order, so the claims already hold
	 * each name's last standing line: what the compacted file now says */
	rep->compacted = 1;
	return 0;
}

int resume_open(int dirfd, struct metadata *m, struct claims *c, const struct resume_opts *o,
		struct resume **out, struct resume_report *rep, struct vherr *err)
{
	struct resume *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	memset(rep, 0, sizeof(*rep));
	if (!r)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	r->dirfd = dirfd;
	r->m = m;
	r->claims = c;
	r->o = *o;
	r->versions = metadata_dataset_versions(o->binding);
	r->seen = htab_new(1);
	r->index = o->overwrite ? NULL : htab_new(sizeof(struct earlier));
	r->urls = o->overwrite ? NULL : earlierurl_new();
	if (!r->seen || (!o->overwrite && (!r->index || !r->urls))) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
		goto fail;
	}
	rc = remove_temps(r, err);
	if (rc == 0)
		rc = load(r, rep, err);
	if (rc < 0)
		goto fail;
	htab_free(r->seen);
	r->seen = NULL;
	rep->earlier = r->earlier;
	rep->lines_dropped = r->dropped;
	rep->temps_removed = atomic_load(&r->temps);
	rep->csv_line = r->csv_line;
	r->csv_line = NULL;
	rep->preview_line = r->preview_line;
	r->preview_line = NULL;
	*out = r;
	return 0;
fail:
	resume_free(r);
	return rc;
}

/* Writes path without its base name's extension ("a/b.jpg" -> "a/b", "a/.x" stays) to
 * buf; -1 if it does not fit. */
static int stem_of(const char *path, char *buf, size_t size)
{
	const char *base = strrchr(path, '/');
	const char *dot;
	size_t n;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	n = dot && dot != base ? (size_t)(dot - path) : strlen(path);
	if (n >= size)
		return -1;
	memcpy(buf, path, n);
	buf[n] = '\0';
	return 0;
}

int resume_add_packed(struct resume *r, const char *relout)
{
	char stem[PATH_MAX];
	struct htab_stripe *s;
	uint64_t key;
	void *v;

	if (stem_of(relout, stem, sizeof(stem)) < 0)
		return 0; /* no input of ours maps to a name that long */
	if (!r->packed && !(r->packed = htab_new(1)))
		return -VHERR_NOMEM;
	key = claims_hash(stem);
	s = htab_lock(r->packed, key);
	v = htab_insert(s, key, NULL);
	htab_unlock(s);
	if (!v)
		return -VHERR_NOMEM;
	r->earlier++;
	return 0;
}

uint64_t resume_packed(const struct resume *r)
{
	return r->packed ? htab_count(r->packed) : 0;
}

/* Whether the output of the input at relpath stands in a published shard. */
static int packed_done(struct resume *r, const char *relpath)
{
	char path[PATH_MAX], stem[PATH_MAX];
	struct htab_stripe *s;
	uint64_t key;
	int n = snprintf(path, sizeof(path), "%s%s%s", r->o.prefix, *r->o.prefix ? "/" : "",
			 relpath);
	int found;

	if (n < 0 || (size_t)n >= sizeof(path) || stem_of(path, stem, sizeof(stem)) < 0)
		return 0;
	key = claims_hash(stem);
	s = htab_lock(r->packed, key);
	found = htab_find(s, key) != NULL;
	htab_unlock(s);
	return found;
}

int resume_done(struct resume *r, const char *relpath, uint64_t size, int64_t mtime_ns)
{
	uint64_t key = claims_hash(relpath);
	struct htab_stripe *s;
	struct earlier *e;
	uint64_t name = 0;
	int same;

	if (r->packed)
		return packed_done(r, relpath);
	if (!r->index)
		return 0;
	s = htab_lock(r->index, key);
	e = htab_find(s, key);
	same = e && e->size == size && e->mtime_ns == mtime_ns;
	if (same)
		name = e->name;
	htab_unlock(s);
	return same && claims_confirm(r->claims, name, key);
}

enum earlierurl_verdict resume_url(struct resume *r, const char *relpath, const char *url,
				  struct source_validators *v)
{
	uint64_t key = claims_hash(relpath), name = 0;
	enum earlierurl_verdict verdict;
	struct htab_stripe *s;
	struct earlier *e;

	if (!r->index)
		return EARLIERURL_NONE;
	verdict = earlierurl_check(r->urls, key, url, v);
	if (verdict != EARLIERURL_SAME && verdict != EARLIERURL_ASK)
		return verdict;
	s = htab_lock(r->index, key);
	e = htab_find(s, key);
	if (e)
		name = e->name;
	htab_unlock(s);
	/* a changed answer (200) then replaces the output it confirmed, as its owner */
	return e && claims_confirm(r->claims, name, key) ? verdict : EARLIERURL_OTHER;
}

struct unseen {
	struct resume *r;
	struct dirsink *sink;
	uint64_t removed;
	int rc;
	struct vherr *err;
};

/* metadata_compact predicate for resume_finish: drops (and removes the output of) each
 * line of the prefix whose name was never confirmed or replaced in this run. */
static int keep_seen(void *ctx, const struct metadata_line *l)
{
	struct unseen *u = ctx;

	if (!ours(u->r, l->file) ||
	    claims_state(u->r->claims, claims_hash(l->file)) != CLAIM_EARLIER)
		return 1;
	return 0;
}

static int remove_unseen(void *ctx, const struct metadata_line *l)
{
	struct unseen *u = ctx;

	if (!l->obj || keep_seen(u, l))
		return 0;
	if (dirsink_remove(u->sink, l->file, u->err) < 0)
		return u->rc = -1;
	u->removed++;
	return 0;
}

int resume_finish(struct resume *r, struct dirsink *sink, int walk_complete, uint64_t *removed,
		  struct vherr *err)
{
	struct unseen u = {.r = r, .sink = sink, .err = err};
	int rc;

	if (removed)
		*removed = 0;
	if (!r->o.overwrite || !walk_complete)
		return 0;
	rc = metadata_scan(r->dirfd, METADATA_FILE, remove_unseen, &u, err);
	if (rc == 0 && u.removed)
		rc = metadata_compact(r->m, keep_seen, &u, err);
	if (removed)
		*removed = u.removed;
	return rc < 0 ? rc : 0;
}

void resume_free(struct resume *r)
{
	if (!r)
		return;
	json_decref(r->versions);
	json_decref(r->csv_line);
	json_decref(r->preview_line);
	htab_free(r->index);
	earlierurl_free(r->urls);
	htab_free(r->seen);
	htab_free(r->packed);
	free(r);
}
