#include "io/sink.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What each kind of sink does; the pipeline only ever calls through this table. */
struct sink_ops {
	int can_replace;
	int (*stage)(struct sink *s, const struct sink_output *o, struct sink_staged *st,
		     struct vherr *err);
	int (*publish)(struct sink *s, struct sink_staged *st, const struct sink_output *o,
		       int replace, int *removed, struct vherr *err);
	void (*discard)(struct sink *s, struct sink_staged *st);
	int (*close)(struct sink *s, struct vherr *err);
	void (*release)(struct sink *s);
};

struct sink {
	const struct sink_ops *ops; /* set at creation */
	const char *kind;	    /* set at creation */
	struct metadata *m;	    /* set at creation, borrowed */
	struct dirsink *ds;	    /* dir: set at creation, borrowed */
	struct pack *pack;	    /* pack: set at creation, owned */
	int sidecars;		    /* set at creation: write FILE.metadata.json */
	struct sink_pack_opts po;   /* pack: set at creation */
};

/* Writes text to dirfd/tmp, then renames it over dirfd/name: never half-written, and
 * left writable (a read-only file is one Valohai uploads at once, as an output). */
static int write_replace(int dirfd, const char *tmp, const char *name, const char *text,
			 struct vherr *err)
{
	size_t len = strlen(text);
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	int e = 0;

	if (fd < 0)
		return vherr_errno(err, errno, VHSTAGE_RECORD, "cannot write '%s'", name);
	if (write(fd, text, len) != (ssize_t)len)
		e = errno ? errno : EIO;
	if (close(fd) != 0 && !e)
		e = errno;
	if (!e && renameat(dirfd, tmp, dirfd, name) != 0)
		e = errno;
	if (!e)
		return 0;
	unlinkat(dirfd, tmp, 0);
	return vherr_errno(err, e, VHSTAGE_RECORD, "cannot write '%s'", name);
}

int sink_write_sidecar(struct dirsink *ds, const char *file, const char *line,
		       struct vherr *err)
{
	static atomic_ullong seq;
	json_t *o = json_loads(line, 0, NULL);
	char *text =
	    o ? json_dumps(json_object_get(o, "metadata"), JSON_COMPACT | JSON_ENSURE_ASCII)
	      : NULL;
	const char *slash = strrchr(file, '/');
	char name[PATH_MAX], tmp[PATH_MAX];
	int rc = 0, n;

	json_decref(o);
	if (!text)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	/* a temporary name resume removes after a crash (DIRSINK_TMP_MARK) */
	n = snprintf(tmp, sizeof(tmp), "%.*s" DIRSINK_TMP_MARK "%ld.sc%llu",
		     slash ? (int)(slash - file + 1) : 0, file, (long)getpid(),
		     (unsigned long long)atomic_fetch_add(&seq, 1));
	if (snprintf(name, sizeof(name), "%s.metadata.json", file) >= (int)sizeof(name) ||
	    n >= (int)sizeof(tmp))
		rc =
		    vherr_set(err, VHERR_BAD_NAME, VHSTAGE_RECORD, "'%s': name too long", file);
	if (rc == 0)
		rc = write_replace(dirsink_dirfd(ds), tmp, name, text, err);
	free(text);
	return rc;
}

/* ---- dir ---- */

static int dir_stage(struct sink *s, const struct sink_output *o, struct sink_staged *st,
		     struct vherr *err)
{
	return dirsink_stage(s->ds, o->relout, o->data, o->len, &st->dir, err);
}

/* The order is the commit protocol (engine/resume.h): remove what the name replaces,
 * append the line, rename into place; a failed rename takes its line back. */
static int dir_publish(struct sink *s, struct sink_staged *st, const struct sink_output *o,
		       int replace, int *removed, struct vherr *err)
{
	struct vherr cause;
	uint64_t at;
	int rc = 0;

	if (replace) {
		rc = dirsink_remove(s->ds, o->relout, err);
		*removed = rc == 0;
	}
	if (rc == 0 && s->sidecars)
		rc = sink_write_sidecar(s->ds, o->relout, o->line, err);
	if (rc == 0)
		rc = metadata_append_line(s->m, o->line, o->line_len, &at, err);
	if (rc == 0 && (rc = dirsink_commit(s->ds, &st->dir, o->relout, err)) < 0 &&
	    metadata_retract(s->m, at) < 0) {
		cause = *err; /* a line we cannot take back: the records are broken */
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD,
				 "cannot take back the line of '%s' after: %s", o->relout,
				 cause.msg);
	}
	if (rc == 0 && replace)
		metadata_superseded(s->m);
	return rc;
}

static void dir_discard(struct sink *s, struct sink_staged *st)
{
	dirsink_discard(s->ds, &st->dir);
}

static int dir_close(struct sink *s, struct vherr *err)
{
	(void)s;
	(void)err;
	return 0;
}

static void dir_release(struct sink *s)
{
	(void)s;
}

static const struct sink_ops dir_ops = {
    .can_replace = 1,
    .stage = dir_stage,
    .publish = dir_publish,
    .discard = dir_discard,
    .close = dir_close,
    .release = dir_release,
};

int sink_dir_open(struct dirsink *ds, struct metadata *m, int sidecars, struct sink **out,
		  struct vherr *err)
{
	struct sink *s = calloc(1, sizeof(*s));

	if (!s)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WRITE, NULL);
	s->ops = &dir_ops;
	s->kind = "dir";
	s->ds = ds;
	s->m = m;
	s->sidecars = sidecars;
	*out = s;
	return 0;
}

/* ---- pack ---- */

static json_t *shard_object(enum pack_format fmt, const struct pack_shard *sh)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:s}", "format",
			 pack_format_ext(fmt), "seq", (json_int_t)sh->seq, "members",
			 (json_int_t)sh->members, "bytes", (json_int_t)sh->bytes, "data_bytes",
			 (json_int_t)sh->data_bytes, "first_key", sh->first_key, "last_key",
			 sh->last_key, "index", sh->index);
}

char *sink_pack_line(const struct metadata_binding *b, enum pack_format fmt,
		     const struct pack_shard *shard, int of_index)
{
	char *base = metadata_format_line(b, of_index ? shard->index : shard->name, NULL);
	json_t *line = base ? json_loads(base, 0, NULL) : NULL;
	json_t *meta = json_object_get(line, "metadata");
	char *text = NULL, *out = NULL;
	int bad = !meta;

	if (!bad && of_index)
		bad =
		    json_object_set_new(meta, "vhprep_index_of", json_string(shard->name)) != 0;
	else if (!bad)
		bad = json_object_set_new(meta, "vhprep_shard", shard_object(fmt, shard)) != 0;
	if (!bad)
		text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (text && (out = malloc(strlen(text) + 2)))
		sprintf(out, "%s\n", text);
	free(text);
	free(base);
	json_decref(line);
	return out;
}

static int append_pack_line(struct sink *s, const struct pack_shard *sh, int of_index,
			    struct vherr *err)
{
	char *line = sink_pack_line(s->po.binding, s->po.pack.format, sh, of_index);
	int rc = 0;

	if (!line)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	if (s->sidecars)
		rc = sink_write_sidecar(s->ds, of_index ? sh->index : sh->name, line, err);
	if (rc == 0)
		rc = metadata_append_line(s->m, line, strlen(line), NULL, err);
	free(line);
	return rc;
}

/* pack's publish callback: the shard's and its index's lines, then the caller's. */
static int on_pack_publish(void *ctx, const struct pack_shard *sh, struct vherr *err)
{
	struct sink *s = ctx;
	int rc = append_pack_line(s, sh, 0, err);

	if (rc == 0)
		rc = append_pack_line(s, sh, 1, err);
	if (rc == 0 && s->po.on_shard)
		rc = s->po.on_shard(s->po.ctx, sh, err);
	return rc;
}

static int pack_stage(struct sink *s, const struct sink_output *o, struct sink_staged *st,
		      struct vherr *err)
{
	(void)s;
	(void)o;
	(void)err;
	st->dir.tmp[0] = '\0'; /* nothing to stage: pack_add writes the shard directly */
	return 0;
}

static int pack_publish(struct sink *s, struct sink_staged *st, const struct sink_output *o,
			int replace, int *removed, struct vherr *err)
{
	(void)st;
	(void)removed;
	if (replace)
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_WRITE,
				 "a pack cannot replace '%s'", o->relout);
	return pack_add(s->pack, o->relout, o->data, o->len, o->line, o->line_len, err);
}

static void pack_discard(struct sink *s, struct sink_staged *st)
{
	(void)s;
	(void)st;
}

static int pack_close_sink(struct sink *s, struct vherr *err)
{
	return pack_close(s->pack, err);
}

static void pack_release(struct sink *s)
{
	pack_free(s->pack);
}

static const struct sink_ops pack_ops = {
    .can_replace = 0,
    .stage = pack_stage,
    .publish = pack_publish,
    .discard = pack_discard,
    .close = pack_close_sink,
    .release = pack_release,
};

int sink_pack_open(const struct sink_pack_opts *o, struct sink **out, struct vherr *err)
{
	struct sink *s = calloc(1, sizeof(*s));
	struct pack_options po;
	int rc;

	if (!s)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WRITE, NULL);
	s->ops = &pack_ops;
	s->kind = pack_format_ext(o->pack.format);
	s->m = o->metadata;
	s->ds = o->ds;
	s->sidecars = o->pack.live_upload && o->ds;
	s->po = *o;
	po = o->pack;
	po.on_publish = on_pack_publish;
	po.ctx = s;
	rc = pack_open(o->outputs, &po, &s->pack, err);
	if (rc < 0) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* ---- the interface ---- */

int sink_can_replace(const struct sink *s)
{
	return s->ops->can_replace;
}

const char *sink_kind(const struct sink *s)
{
	return s->kind;
}

int sink_stage(struct sink *s, const struct sink_output *o, struct sink_staged *st,
	       struct vherr *err)
{
	return s->ops->stage(s, o, st, err);
}

int sink_publish(struct sink *s, struct sink_staged *st, const struct sink_output *o,
		 int replace, int *removed, struct vherr *err)
{
	int gone = 0;
	int rc = s->ops->publish(s, st, o, replace, &gone, err);

	if (removed)
		*removed = gone;
	return rc;
}

void sink_discard(struct sink *s, struct sink_staged *st)
{
	s->ops->discard(s, st);
}

int sink_close(struct sink *s, struct vherr *err)
{
	return s->ops->close(s, err);
}

void sink_free(struct sink *s)
{
	if (!s)
		return;
	s->ops->release(s);
	free(s);
}
