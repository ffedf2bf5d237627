/* source: the dispatch table, the posix source (a directory or kernel mount, walked
 * by posixwalk or listed by filelist, read by iopool), the nfs:// source (nfssrc) and
 * the URL-list source (httpsrc). */
#include "io/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/filelist.h"
#include "io/httpsrc.h"
#include "io/iopool.h"
#include "io/nfssrc.h"
#include "io/nfsurl.h"
#include "io/posixwalk.h"

struct source_ops {
	int (*walk)(struct source *s, source_emit_fn emit, void *ctx,
		    void (*on_error)(void *, const char *, const struct vherr *),
		    struct vherr *err);
	int (*submit)(struct source *s, struct source_read *req);
	void (*stop)(struct source *s); /* after s->stop is set */
	void (*cancel)(struct source *s);
	void (*release)(struct source *s);
	char *(*location)(const struct source *s, const char *relpath,
			  const struct source_hint *hint, char *buf, size_t size);
};

struct source {
	const struct source_ops *ops; /* set at creation */
	struct source_opts opts;      /* set at creation */
	char *root;		      /* set at creation */
	atomic_int stop;
	/* posix */
	int rootfd;	     /* set at creation */
	struct iopool *pool; /* set at creation */
	/* nfs */
	struct nfssrc *nfs; /* set at creation */
	/* http */
	struct httpsrc *http; /* set at creation */
};

static int posix_walk(struct source *s, source_emit_fn emit, void *ctx,
		      void (*on_error)(void *, const char *, const struct vherr *),
		      struct vherr *err)
{
	if (s->opts.files_from)
		return filelist_run(s->opts.files_from, &s->stop, emit, ctx, on_error, err);
	return posixwalk_run(s->rootfd, s->opts.walkers, &s->stop, emit, ctx, on_error, NULL,
			     s->opts.lat, err);
}

static int posix_submit(struct source *s, struct source_read *req)
{
	return iopool_submit(s->pool, req);
}

static void posix_stop(struct source *s)
{
	(void)s; /* posixwalk and filelist watch s->stop */
}

static void posix_cancel(struct source *s)
{
	iopool_stop(s->pool);
}

static void posix_release(struct source *s)
{
	iopool_free(s->pool);
	if (s->rootfd >= 0)
		close(s->rootfd);
}

static char *posix_location(const struct source *s, const char *relpath,
			    const struct source_hint *hint, char *buf, size_t size)
{
	(void)hint;
	snprintf(buf, size, "%s/%s", strcmp(s->root, "/") == 0 ? "" : s->root, relpath);
	return buf;
}

static const struct source_ops posix_ops = {
    .walk = posix_walk,
    .submit = posix_submit,
    .stop = posix_stop,
    .cancel = posix_cancel,
    .release = posix_release,
    .location = posix_location,
};

static int nfsop_walk(struct source *s, source_emit_fn emit, void *ctx,
		      void (*on_error)(void *, const char *, const struct vherr *),
		      struct vherr *err)
{
	if (s->opts.files_from)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_WALK,
				 "--files-from is not supported with an nfs:// source");
	return nfssrc_walk(s->nfs, emit, ctx, on_error, err);
}

static int nfsop_submit(struct source *s, struct source_read *req)
{
	return nfssrc_submit(s->nfs, req);
}

static void nfsop_stop(struct source *s)
{
	nfssrc_stop(s->nfs);
}

static void nfsop_cancel(struct source *s)
{
	nfssrc_cancel(s->nfs);
}

static void nfsop_release(struct source *s)
{
	nfssrc_free(s->nfs);
}

static char *nfsop_location(const struct source *s, const char *relpath,
			    const struct source_hint *hint, char *buf, size_t size)
{
	(void)hint;
	return nfssrc_location(s->nfs, relpath, buf, size);
}

static const struct source_ops nfsops = {
    .walk = nfsop_walk,
    .submit = nfsop_submit,
    .stop = nfsop_stop,
    .cancel = nfsop_cancel,
    .release = nfsop_release,
    .location = nfsop_location,
};

/* Opens an nfs:// URL as a source (no local checks: the server answers). */
static int nfsop_open(struct source *s, const char *spec, struct vherr *err)
{
	s->ops = &nfsops;
	s->root = strdup(spec);
	if (!s->root)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	return nfssrc_open(spec, &s->opts, &s->nfs, err);
}

static int httpop_walk(struct source *s, source_emit_fn emit, void *ctx,
		       void (*on_error)(void *, const char *, const struct vherr *),
		       struct vherr *err)
{
	return httpsrc_walk(s->http, emit, ctx, on_error, err);
}

static int httpop_submit(struct source *s, struct source_read *req)
{
	return httpsrc_submit(s->http, req);
}

static void httpop_stop(struct source *s)
{
	httpsrc_stop(s->http);
}

static void httpop_cancel(struct source *s)
{
	httpsrc_cancel(s->http);
}

static void httpop_release(struct source *s)
{
	httpsrc_free(s->http);
}

static char *httpop_location(const struct source *s, const char *relpath,
			     const struct source_hint *hint, char *buf, size_t size)
{
	return httpsrc_location(s->http, relpath, hint, buf, size);
}

static const struct source_ops httpops = {
    .walk = httpop_walk,
    .submit = httpop_submit,
    .stop = httpop_stop,
    .cancel = httpop_cancel,
    .release = httpop_release,
    .location = httpop_location,
};

/* Opens a URL list as a source (--urls). */
static int httpop_open(struct source *s, const char *spec, struct vherr *err)
{
	s->ops = &httpops;
	s->root = strdup(spec);
	if (!s->root)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	if (s->opts.files_from)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_WALK,
				 "--files-from is not supported with --urls");
	return httpsrc_open(spec, &s->opts, s->opts.http, &s->http, err);
}

/* Warns when path is not a mount point: the user may have mistyped the mount path,
 * or the volume may not be mounted (then the step reads an empty local directory). */
static void warn_unless_mount(const char *path, int fd, int quiet)
{
	struct stat self, parent;
	int pfd = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int is_mount;

	if (pfd < 0)
		return;
	is_mount = fstat(fd, &self) == 0 && fstat(pfd, &parent) == 0 &&
		   (self.st_dev != parent.st_dev || self.st_ino == parent.st_ino);
	close(pfd);
	if (!is_mount && !quiet)
		fprintf(stderr,
			"vhprep: warning: '%s' is not a mount point; reading it as a local "
			"directory\n",
			path);
}

static char *normalise_root(const char *spec)
{
	char *root = strdup(spec);
	size_t n;

	if (!root)
		return NULL;
	n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		root[--n] = '\0';
	return root;
}

int source_open(const char *spec, const struct source_opts *opts, struct source **out,
		struct vherr *err)
{
	struct source *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	s->ops = &posix_ops;
	s->opts = *opts;
	s->rootfd = -1;
	if (opts->http) {
		if ((rc = httpop_open(s, spec, err)) < 0)
			goto fail;
		*out = s;
		return 0;
	}
	if (nfsurl_is_nfs(spec)) {
		if ((rc = nfsop_open(s, spec, err)) < 0)
			goto fail;
		*out = s;
		return 0;
	}
	s->root = normalise_root(spec);
	if (!s->root) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
		goto fail;
	}
	s->rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->rootfd < 0) {
		rc = vherr_errno(err, errno, VHSTAGE_WALK, "cannot open source '%s'", s->root);
		goto fail;
	}
	warn_unless_mount(s->root, s->rootfd, opts->quiet);
	s->pool = iopool_new(s->rootfd, opts->io_depth, opts->budget, opts->lat);
	if (!s->pool) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_READ, "cannot start I/O threads");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	source_free(s);
	return rc;
}

int source_walk(struct source *s, source_emit_fn emit, void *ctx,
		void (*on_error)(void *ctx, const char *relpath, const struct vherr *err),
		struct vherr *err)
{
	return s->ops->walk(s, emit, ctx, on_error, err);
}

int source_read_submit(struct source *s, struct source_read *req)
{
	return s->ops->submit(s, req);
}

void source_stop(struct source *s)
{
	atomic_store(&s->stop, 1);
	s->ops->stop(s);
}

void source_cancel(struct source *s)
{
	atomic_store(&s->stop, 1);
	s->ops->cancel(s);
}

const char *source_kind_name(enum source_kind kind)
{
	static const char *const names[] = {
#define SOURCE_KIND_NAME(name, word) [SOURCE_KIND_##name] = word,
	    SOURCE_KIND_LIST(SOURCE_KIND_NAME)
#undef SOURCE_KIND_NAME
	};

	return (unsigned)kind < SOURCE_KIND__COUNT ? names[kind] : "other";
}

int source_read_admit(struct source_read *req)
{
	enum source_admit a = SOURCE_ADMIT_READ;

	if (req->size < req->min_size || req->size > req->max_size)
		a = SOURCE_ADMIT_SKIP;
	else if (req->admit)
		a = req->admit(req);
	if (a == SOURCE_ADMIT_READ)
		return 1;
	req->status = a == SOURCE_ADMIT_SKIP ? SOURCE_READ_SKIPPED : SOURCE_READ_FAILED;
	return 0;
}

int source_read_judge(struct source_read *req)
{
	enum source_admit a = req->judge ? req->judge(req) : SOURCE_ADMIT_READ;

	if (a == SOURCE_ADMIT_READ)
		return 1;
	req->status = a == SOURCE_ADMIT_SKIP ? SOURCE_READ_SKIPPED : SOURCE_READ_FAILED;
	return 0;
}

size_t source_entry_size(const struct source_entry *e)
{
	return strlen(e->relpath) + 1 + (e->hint.handle ? e->hint.handle_len : 0);
}

void source_read_adopt(struct source_read *rd, char *buf, const struct source_entry *e)
{
	size_t n = strlen(e->relpath) + 1;

	memcpy(buf, e->relpath, n);
	rd->relpath = buf;
	rd->hint = e->hint;
	if (e->hint.handle) {
		memcpy(buf + n, e->hint.handle, e->hint.handle_len);
		rd->hint.handle = buf + n;
	}
}

const char *source_root(const struct source *s)
{
	return s->root;
}

char *source_location(const struct source *s, const char *relpath, char *buf, size_t size)
{
	return s->ops->location(s, relpath, NULL, buf, size);
}

char *source_hint_location(const struct source *s, const char *relpath,
			   const struct source_hint *hint, char *buf, size_t size)
{
	return s->ops->location(s, relpath, hint, buf, size);
}

void source_free(struct source *s)
{
	if (!s)
		return;
	if (s->ops)
		s->ops->release(s);
	free(s->root);
	free(s);
}
