/* nfswalk: the directory listing of the nfs:// source (see nfssrc.h). Directories are
 * work items; each request lists one page (v3 READDIRPLUS through io/nfs3dir, v4 COMPOUND
 * READDIR through io/nfs4dir) and the next cookie goes back to the front of the queue. Loop
 * thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>

#include "io/nfs3dir.h"
#include "io/nfs3read.h"
#include "io/nfs4dir.h"
#include "io/nfs4rpc.h"
#include "io/nfsconn.h"
#include "io/nfserr.h"
#include "io/nfsint.h"
#include "io/nfssrc.h"

/* ---- walk (loop thread) ---- */

struct dirwork *nfswalk_dir_new(struct nfswalk_env *env, const char *parent, const char *name,
				const char *fh, uint32_t fhlen)
{
	size_t plen = strlen(parent), nlen = strlen(name);
	struct dirwork *w = calloc(1, sizeof(*w) + plen + nlen + 2);

	if (!w)
		return NULL;
	w->env = env;
	if (plen)
		memcpy(w->relpath, parent, plen), w->relpath[plen++] = '/';
	memcpy(w->relpath + plen, name, nlen + 1);
	if (fhlen) {
		w->fh = malloc(fhlen);
		if (!w->fh) {
			free(w);
			return NULL;
		}
		memcpy(w->fh, fh, fhlen);
		w->fhlen = fhlen;
	}
	return w;
}

void nfswalk_dir_free(struct dirwork *w)
{
	if (w)
		free(w->fh);
	free(w);
}

void nfswalk_page_free(struct page *p)
{
	if (p) {
		entrybuf_release(&p->entries);
		free(p->errpath);
	}
	free(p);
}

/* Gives a page (names or an error) to the walk thread; takes ownership. */
static void page_post(struct nfswalk_env *env, struct page *p)
{
	pthread_mutex_lock(&env->hub->lock);
	fifo_push(&env->hub->pages, p);
	pthread_cond_broadcast(&env->hub->cond);
	pthread_mutex_unlock(&env->hub->lock);
}

/* Gives the walk thread an error on relpath (for on_error). */
static void post_error(struct nfswalk_env *env, const char *relpath, enum vherr_code code,
		       const char *what, const char *why)
{
	struct page *p = calloc(1, sizeof(*p));

	if (!p)
		return;
	p->errpath = strdup(relpath);
	vherr_set(&p->err, code, VHSTAGE_WALK, "cannot %s '%s': %s", what, relpath, why);
	page_post(env, p);
}

/* Reports an error listing w: the root's fails the walk, others go to on_error. */
static void walk_fail(struct dirwork *w, int errnum, const char *msg)
{
	struct nfswalk_env *env = w->env;
	char line[256];

	nfserr_one_line(msg, line, sizeof(line));
	if (!w->relpath[0]) {
		pthread_mutex_lock(&env->hub->lock);
		env->hub->walk_rc =
		    vherr_set(&env->hub->walk_err, nfserr_code_of(errnum), VHSTAGE_WALK,
			      "cannot list '%s': %s", env->base, line);
		pthread_mutex_unlock(&env->hub->lock);
		return;
	}
	post_error(env, w->relpath, nfserr_code_of(errnum), "list", line);
}

/* Reports an entry READDIRPLUS left without its type or handle: never skipped silently
 * (a LOOKUP fallback is not written yet; ganesha and knfsd always send both). */
static void entry_incomplete(struct dirwork *w, const char *name, const char *what)
{
	char rel[4096];

	snprintf(rel, sizeof(rel), "%s%s%s", w->relpath, w->relpath[0] ? "/" : "", name);
	post_error(w->env, rel, VHERR_NET, "list", what);
}

/* Queues the subdirectory name of w (handle fh, may be NULL for v4); false: no memory. */
static bool queue_subdir(struct dirwork *w, const char *name, const char *fh, uint32_t fhlen)
{
	struct dirwork *sub = nfswalk_dir_new(w->env, w->relpath, name, fh, fhlen);

	if (!sub)
		return false;
	fifo_push(&w->env->dirs, sub);
	return true;
}

/* One v3 entry into p (a file with its hint) or the queue (a directory). */
static int take_entry3(struct dirwork *w, const struct nfs3dir_entry *e, struct page *p)
{
	if (!e->have_attrs) {
		entry_incomplete(w, e->name, "the server sent no attributes for it");
	} else if (e->type == NFS3DIR_REG) {
		struct source_hint hint = {
		    .has_attrs = 1,
		    .size = e->size,
		    .mtime_ns = e->mtime_ns,
		    .handle = e->fh,
		    .handle_len = e->fhlen,
		};

		if (entrybuf_add(&p->entries, w->relpath, e->name, &hint) < 0)
			return -ENOMEM;
	} else if (e->type == NFS3DIR_DIR && !e->fh) {
		entry_incomplete(w, e->name, "the server sent no handle for it");
	} else if (e->type == NFS3DIR_DIR) {
		if (!queue_subdir(w, e->name, e->fh, e->fhlen))
			return -ENOMEM;
	}
	return 0;
}

/* A page of w was listed into p (NULL: no memory): posts p, then frees w at eof, or
 * queues it first with verf (w->cookie already at the page's end) for its next page. */
static void page_done(struct dirwork *w, struct page *p, bool eof, const char *verf)
{
	struct nfswalk_env *env = w->env;

	if (!p) {
		walk_fail(w, ENOMEM, "out of memory");
		nfswalk_dir_free(w);
		return;
	}
	if (p->entries.count)
		page_post(env, p);
	else
		nfswalk_page_free(p);
	if (eof) {
		nfswalk_dir_free(w);
		return;
	}
	memcpy(w->verf, verf, sizeof(w->verf));
	fifo_push_front(&env->dirs, w); /* the next page of this directory goes first */
}

/* A listing request of w failed in transport (error, timeout, cancel): queues w again,
 * first, to go out once a connection is UP; or, past its attempts, fails it (unless the
 * whole source is lost: the loop reports that once). Frees or requeues w. */
static void retry_or_fail(struct dirwork *w, int errnum, const char *msg)
{
	struct nfswalk_env *env = w->env;

	if (nfsconn_retry(env->conns, w->conn, &w->attempts, nfshub_cancelled(env->hub))) {
		fifo_push_front(&env->dirs, w);
		return;
	}
	if (!env->conns->lost)
		walk_fail(w, errnum, msg);
	nfswalk_dir_free(w);
}

/* Whether a v3 request of w failed (rc < 0): then w is queued again (the transport's
 * failure) or failed and freed (the server's answer). */
static bool failed3(struct dirwork *w, int rc, const char *msg)
{
	if (rc >= 0)
		return false;
	if (nfs3read_rc_is_transport(rc)) {
		retry_or_fail(w, rc == -ETIMEDOUT ? ETIMEDOUT : EIO, msg);
	} else {
		walk_fail(w, -rc, msg);
		nfswalk_dir_free(w);
	}
	return true;
}

static void on_readdir3(int rc, const struct nfs3dir_page *pg, const char *msg, void *priv)
{
	struct dirwork *w = priv;
	struct nfswalk_env *env = w->env;
	struct page *p;

	env->dirs_inflight--;
	env->conns->c[w->conn].busy--;
	oplat_record(env->lat, OPLAT_DIR, oplat_now() - w->t0);
	if (failed3(w, rc, msg))
		return;
	p = calloc(1, sizeof(*p));
	for (size_t i = 0; p && i < pg->count; i++)
		if (take_entry3(w, &pg->entries[i], p) < 0) {
			nfswalk_page_free(p);
			p = NULL;
		}
	w->cookie = pg->cookie;
	page_done(w, p, pg->eof, pg->cookieverf);
}

/* Whether a v4 request of w failed (rc < 0): then w is queued again (the transport's
 * failure) or failed and freed (the server's answer). */
static bool failed4(struct dirwork *w, int rc, const char *msg)
{
	if (rc >= 0)
		return false;
	if (nfs4rpc_rc_is_transport(rc)) {
		retry_or_fail(w, -rc, msg);
	} else {
		walk_fail(w, -rc, msg);
		nfswalk_dir_free(w);
	}
	return true;
}

/* v4: the root's handle (one LOOKUP COMPOUND of the export path), then its pages. */
static void on_lookup4(int rc, char *fh, uint32_t fhlen, const char *msg, void *priv)
{
	struct dirwork *w = priv;
	struct nfswalk_env *env = w->env;

	env->dirs_inflight--;
	env->conns->c[w->conn].busy--;
	if (failed4(w, rc, msg))
		return;
	w->fh = fh;
	w->fhlen = fhlen;
	fifo_push_front(&env->dirs, w);
}

/* One v4 entry into p (a file with its hint) or the queue (a directory). */
static int take_entry4(struct dirwork *w, const struct nfs4dir_entry *e, struct page *p)
{
	if (e->err) {
		entry_incomplete(w, e->name, e->errmsg);
	} else if (e->type == NFS4DIR_REG) {
		struct source_hint hint = {
		    .has_attrs =
			(e->have & NFS4DIR_HAVE_SIZE) && (e->have & NFS4DIR_HAVE_MTIME),
		    .size = e->size,
		    .mtime_ns = e->mtime_sec * 1000000000 + e->mtime_nsec,
		    .handle = (e->have & NFS4DIR_HAVE_FH) ? e->fh : NULL,
		    .handle_len = (e->have & NFS4DIR_HAVE_FH) ? e->fhlen : 0,
		};

		if (entrybuf_add(&p->entries, w->relpath, e->name, &hint) < 0)
			return -ENOMEM;
	} else if (e->type == NFS4DIR_DIR && !(e->have & NFS4DIR_HAVE_FH)) {
		entry_incomplete(w, e->name, "the server sent no handle for it");
	} else if (e->type == NFS4DIR_DIR) {
		if (!queue_subdir(w, e->name, e->fh, e->fhlen))
			return -ENOMEM;
	}
	return 0;
}

static void on_readdir4(int rc, const struct nfs4dir_page *pg, const char *msg, void *priv)
{
	struct dirwork *w = priv;
	struct nfswalk_env *env = w->env;
	struct page *p;

	env->dirs_inflight--;
	env->conns->c[w->conn].busy--;
	oplat_record(env->lat, OPLAT_DIR, oplat_now() - w->t0);
	if (failed4(w, rc, msg))
		return;
	p = calloc(1, sizeof(*p));
	for (size_t i = 0; p && i < pg->count; i++)
		if (take_entry4(w, &pg->entries[i], p) < 0) {
			nfswalk_page_free(p);
			p = NULL;
		}
	if (p)
		w->cookie = pg->cookie;
	page_done(w, p, pg->eof, pg->cookieverf);
}

/* Sends the one request for w's next page on rpc: the v4 root's LOOKUP first, then
 * v4 READDIR or v3 READDIRPLUS pages. Returns 0 if its callback will run. */
static int dir_send(struct nfswalk_env *env, struct dirwork *w, struct rpc_context *rpc)
{
	if (env->version == 4 && !w->fh)
		return nfs4dir_lookup(rpc, env->export_path, on_lookup4, w);
	if (env->version == 4) {
		struct nfs4dir_readdir_args a = {.fh = w->fh,
						 .fhlen = w->fhlen,
						 .cookie = w->cookie,
						 .maxcount = NFSSRC_PAGE_BYTES,
						 .attrs = NFS4DIR_ATTRS_FULL};

		memcpy(a.cookieverf, w->verf, NFS4DIR_VERF_SIZE);
		return nfs4dir_readdir(rpc, &a, on_readdir4, w);
	}
	struct nfs3dir_args a = {
	    .fh = w->fh, .fhlen = w->fhlen, .cookie = w->cookie, .maxcount = NFSSRC_PAGE_BYTES};

	memcpy(a.cookieverf, w->verf, NFS3DIR_VERF_SIZE);
	return nfs3dir_readdir(rpc, &a, on_readdir3, w);
}

/* Sends the request for the next page of w; if it cannot, posts the error and frees w.
 * False (w back at the head of the queue) when no connection is UP. */
static bool dir_start(struct nfswalk_env *env, struct dirwork *w)
{
	struct conn *c;

	if ((w->conn = nfsconn_pick(env->conns)) < 0) {
		fifo_push_front(&env->dirs, w);
		return false;
	}
	c = &env->conns->c[w->conn];
	w->t0 = oplat_now();
	if (dir_send(env, w, nfs_get_rpc_context(c->nfs)) != 0) {
		walk_fail(w, EIO, nfs_get_error(c->nfs));
		nfswalk_dir_free(w);
		return true;
	}
	c->busy++;
	env->dirs_inflight++;
	return true;
}

/* Starts directory requests while under the caps; drops the queue once stopped. */
void nfswalk_start_dirs(struct nfswalk_env *env)
{
	size_t waiting;
	bool stop;
	struct dirwork *w;

	pthread_mutex_lock(&env->hub->lock);
	waiting = env->hub->pages.n;
	stop = env->hub->walk_stop || env->hub->cancelled;
	pthread_mutex_unlock(&env->hub->lock);
	if (stop || env->conns->lost) {
		while ((w = fifo_pop(&env->dirs)))
			nfswalk_dir_free(w);
		return;
	}
	while (env->dirs_inflight < env->walkers &&
	       waiting + (size_t)env->dirs_inflight < NFSSRC_PAGES_MAX &&
	       (w = fifo_pop(&env->dirs)))
		if (!dir_start(env, w))
			break;
}

/* Tells the walk thread when no directory is left queued or in flight. */
void nfswalk_check_end(struct nfswalk_env *env)
{
	pthread_mutex_lock(&env->hub->lock);
	/* walk_root: the walk began after this round's take_posted; it is not over yet */
	if (env->hub->walk_running && !env->hub->walk_root && !env->dirs.head &&
	    env->dirs_inflight == 0) {
		env->hub->walk_running = false;
		pthread_cond_broadcast(&env->hub->cond);
	}
	pthread_mutex_unlock(&env->hub->lock);
}

void nfswalk_lost(struct nfswalk_env *env, const struct vherr *err)
{
	pthread_mutex_lock(&env->hub->lock);
	if (env->hub->walk_running && !env->hub->walk_rc) {
		env->hub->walk_rc = -err->code;
		env->hub->walk_err = *err;
	}
	pthread_mutex_unlock(&env->hub->lock);
}
