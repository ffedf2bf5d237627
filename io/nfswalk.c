/* nfswalk: the directory listing of the nfs:// source (see nfssrc.h). Directories are
 * work items; each request lists one page (v3 READDIRPLUS, v4 COMPOUND READDIR through
 * io/nfs4dir) and the next cookie goes back to the front of the queue. Loop thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/nfs4dir.h"
#include "io/nfsint.h"

/* ---- walk (loop thread) ---- */

struct dirwork *nfswalk_dir_new(struct nfssrc *s, const char *parent, const char *name,
				const char *fh, uint32_t fhlen)
{
	size_t plen = strlen(parent), nlen = strlen(name);
	struct dirwork *w = calloc(1, sizeof(*w) + plen + nlen + 2);

	if (!w)
		return NULL;
	w->s = s;
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
static void page_post(struct nfssrc *s, struct page *p)
{
	pthread_mutex_lock(&s->lock);
	fifo_push(&s->pages, p);
	nfssrc_broadcast(s);
	pthread_mutex_unlock(&s->lock);
}

/* Gives the walk thread an error on relpath (for on_error). */
static void post_error(struct nfssrc *s, const char *relpath, enum vherr_code code,
		       const char *what, const char *why)
{
	struct page *p = calloc(1, sizeof(*p));

	if (!p)
		return;
	p->errpath = strdup(relpath);
	vherr_set(&p->err, code, VHSTAGE_WALK, "cannot %s '%s': %s", what, relpath, why);
	page_post(s, p);
}

/* Reports an error listing w: the root's fails the walk, others go to on_error. */
static void walk_fail(struct dirwork *w, int errnum, const char *msg)
{
	struct nfssrc *s = w->s;
	char line[256];

	nfssrc_one_line(msg, line, sizeof(line));
	if (!w->relpath[0]) {
		pthread_mutex_lock(&s->lock);
		s->walk_rc = vherr_set(&s->walk_err, nfssrc_code_of(errnum), VHSTAGE_WALK,
				       "cannot list '%s': %s", s->base, line);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	post_error(s, w->relpath, nfssrc_code_of(errnum), "list", line);
}

/* Reports an entry READDIRPLUS left without its type or handle: never skipped silently
 * (a LOOKUP fallback is not written yet; ganesha and knfsd always send both). */
static void entry_incomplete(struct dirwork *w, const char *name, const char *what)
{
	char rel[4096];

	snprintf(rel, sizeof(rel), "%s%s%s", w->relpath, w->relpath[0] ? "/" : "", name);
	post_error(w->s, rel, VHERR_NET, "list", what);
}

/* Queues the subdirectory name of w (handle fh, may be NULL for v4); false: no memory. */
static bool queue_subdir(struct dirwork *w, const char *name, const char *fh, uint32_t fhlen)
{
	struct dirwork *sub = nfswalk_dir_new(w->s, w->relpath, name, fh, fhlen);

	if (!sub)
		return false;
	fifo_push(&w->s->dirs, sub);
	return true;
}

static bool dot_or_dotdot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

/* Files of one READDIRPLUS page into p, subdirectories into the queue. libnfs' decoder
 * places entries at 4-byte alignment: each is copied before use (no misaligned access). */
static int take_entries3(struct dirwork *w, const entryplus3 *next, struct page *p)
{
	entryplus3 e;

	for (; next; next = e.nextentry) {
		const fattr3 *a = &e.name_attributes.post_op_attr_u.attributes;

		memcpy(&e, next, sizeof(e));
		w->cookie = e.cookie;
		if (dot_or_dotdot(e.name))
			continue;
		if (!e.name_attributes.attributes_follow) {
			entry_incomplete(w, e.name, "the server sent no attributes for it");
		} else if (a->type == NF3REG) {
			const nfs_fh3 *h = &e.name_handle.post_op_fh3_u.handle;
			struct source_hint hint = {
			    .has_attrs = 1,
			    .size = a->size,
			    .mtime_ns =
				(int64_t)a->mtime.seconds * 1000000000 + a->mtime.nseconds,
			    .handle = e.name_handle.handle_follows ? h->data.data_val : NULL,
			    .handle_len = e.name_handle.handle_follows ? h->data.data_len : 0,
			};

			if (entrybuf_add(&p->entries, w->relpath, e.name, &hint) < 0)
				return -ENOMEM;
		} else if (a->type == NF3DIR && !e.name_handle.handle_follows) {
			entry_incomplete(w, e.name, "the server sent no handle for it");
		} else if (a->type == NF3DIR) {
			const nfs_fh3 *h = &e.name_handle.post_op_fh3_u.handle;

			if (!queue_subdir(w, e.name, h->data.data_val, h->data.data_len))
				return -ENOMEM;
		}
	}
	return 0;
}

/* A page of w was listed into p (NULL: no memory): posts p, then frees w at eof, or
 * queues it first with verf (w->cookie already at the page's end) for its next page. */
static void page_done(struct dirwork *w, struct page *p, bool eof, const char *verf)
{
	struct nfssrc *s = w->s;

	if (!p) {
		walk_fail(w, ENOMEM, "out of memory");
		nfswalk_dir_free(w);
		return;
	}
	if (p->entries.count)
		page_post(s, p);
	else
		nfswalk_page_free(p);
	if (eof) {
		nfswalk_dir_free(w);
		return;
	}
	memcpy(w->verf, verf, NFS3_COOKIEVERFSIZE);
	fifo_push_front(&s->dirs, w); /* the next page of this directory goes first */
}

/* A listing request of w failed in transport (error, timeout, cancel): queues w again,
 * first, to go out once a connection is UP; or, past its attempts, fails it (unless the
 * whole source is lost: the loop reports that once). Frees or requeues w. */
static void retry_or_fail(struct dirwork *w, int errnum, const char *msg)
{
	struct nfssrc *s = w->s;

	if (nfssrc_retry(s, w->conn, &w->attempts)) {
		fifo_push_front(&s->dirs, w);
		return;
	}
	if (!s->lost)
		walk_fail(w, errnum, msg);
	nfswalk_dir_free(w);
}

static void on_readdirplus(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct dirwork *w = priv;
	struct nfssrc *s = w->s;
	READDIRPLUS3res *res = data;
	struct page *p;

	s->dirs_inflight--;
	s->conns[w->conn].busy--;
	oplat_record(s->opts.lat, OPLAT_DIR, oplat_now() - w->t0);
	if (status != RPC_STATUS_SUCCESS) {
		retry_or_fail(w, status == RPC_STATUS_TIMEOUT ? ETIMEDOUT : EIO,
			      status == RPC_STATUS_TIMEOUT  ? "timed out"
			      : status == RPC_STATUS_CANCEL ? "cancelled"
							    : rpc_get_error(rpc));
		return;
	}
	if (res->status != NFS3_OK) {
		int e = -nfsstat3_to_errno(res->status);

		walk_fail(w, e, strerror(e));
		nfswalk_dir_free(w);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p && take_entries3(w, res->READDIRPLUS3res_u.resok.reply.entries, p) < 0) {
		nfswalk_page_free(p);
		p = NULL;
	}
	page_done(w, p, res->READDIRPLUS3res_u.resok.reply.eof,
		  res->READDIRPLUS3res_u.resok.cookieverf);
}

/* Whether a v4 request of w failed (rc < 0): then w is queued again (the transport's
 * failure) or failed and freed (the server's answer). */
static bool failed4(struct dirwork *w, int rc, const char *msg)
{
	if (rc >= 0)
		return false;
	if (nfs4dir_rc_is_transport(rc)) {
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
	struct nfssrc *s = w->s;

	s->dirs_inflight--;
	s->conns[w->conn].busy--;
	if (failed4(w, rc, msg))
		return;
	w->fh = fh;
	w->fhlen = fhlen;
	fifo_push_front(&s->dirs, w);
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
	struct nfssrc *s = w->s;
	struct page *p;

	s->dirs_inflight--;
	s->conns[w->conn].busy--;
	oplat_record(s->opts.lat, OPLAT_DIR, oplat_now() - w->t0);
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

/* Sends the request for the next page of w; if it cannot, posts the error and frees w.
 * False (w back at the head of the queue) when no connection is UP. */
static bool dir_start(struct nfssrc *s, struct dirwork *w)
{
	struct conn *c;
	int rc;

	if ((w->conn = nfssrc_pick_conn(s)) < 0) {
		fifo_push_front(&s->dirs, w);
		return false;
	}
	c = &s->conns[w->conn];
	w->t0 = oplat_now();
	if (s->url.version == 4 && !w->fh) {
		rc = nfs4dir_lookup(nfs_get_rpc_context(c->nfs), s->url.path, on_lookup4, w);
	} else if (s->url.version == 4) {
		struct nfs4dir_readdir_args a = {.fh = w->fh,
						 .fhlen = w->fhlen,
						 .cookie = w->cookie,
						 .maxcount = NFSSRC_PAGE_BYTES,
						 .attrs = NFS4DIR_ATTRS_FULL};

		memcpy(a.cookieverf, w->verf, NFS4DIR_VERF_SIZE);
		rc = nfs4dir_readdir(nfs_get_rpc_context(c->nfs), &a, on_readdir4, w);
	} else {
		READDIRPLUS3args a = {0};

		a.dir.data.data_len = w->fhlen;
		a.dir.data.data_val = w->fh;
		a.cookie = w->cookie;
		memcpy(a.cookieverf, w->verf, NFS3_COOKIEVERFSIZE);
		a.dircount = NFSSRC_PAGE_BYTES / 4;
		a.maxcount = NFSSRC_PAGE_BYTES;
		rc = rpc_nfs3_readdirplus_async(nfs_get_rpc_context(c->nfs), on_readdirplus, &a,
						w);
	}
	if (rc != 0) {
		walk_fail(w, EIO, nfs_get_error(c->nfs));
		nfswalk_dir_free(w);
		return true;
	}
	c->busy++;
	s->dirs_inflight++;
	return true;
}

/* Starts directory requests while under the caps; drops the queue once stopped. */
void nfswalk_start_dirs(struct nfssrc *s)
{
	size_t waiting;
	bool stop;
	struct dirwork *w;

	pthread_mutex_lock(&s->lock);
	waiting = s->pages.n;
	stop = s->walk_stop || s->cancelled;
	pthread_mutex_unlock(&s->lock);
	if (stop || s->lost) {
		while ((w = fifo_pop(&s->dirs)))
			nfswalk_dir_free(w);
		return;
	}
	while (s->dirs_inflight < s->opts.walkers &&
	       waiting + (size_t)s->dirs_inflight < NFSSRC_PAGES_MAX &&
	       (w = fifo_pop(&s->dirs)))
		if (!dir_start(s, w))
			break;
}

/* Tells the walk thread when no directory is left queued or in flight. */
void nfswalk_check_end(struct nfssrc *s)
{
	pthread_mutex_lock(&s->lock);
	/* walk_root: the walk began after this round's take_posted; it is not over yet */
	if (s->walk_running && !s->walk_root && !s->dirs.head && s->dirs_inflight == 0) {
		s->walk_running = false;
		nfssrc_broadcast(s);
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- the loop ---- */
