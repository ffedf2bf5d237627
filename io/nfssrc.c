/* nfssrc: the nfs:// source (see nfssrc.h). One event-loop thread owns every libnfs
 * context; other threads talk to it through lists under s->lock and an eventfd.
 *
 * The loop, one iteration:  take_posted → start_reads → start_dirs → check_walk_end →
 * poll (connections + eventfd, 100 ms) → service (also on timeout: libnfs' RPC timers).
 *
 * A read goes: open → fstat → (budget thread) → pread chunks → close → completion thread.
 * A directory (v3) goes: READDIRPLUS page → names to the walk thread, subdirectories to
 * the directory queue, the next cookie back to the front of the queue. */
#include "io/nfssrc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

#include "io/nfsurl.h"

/* Exported by libnfs 4.0 (and later) but declared only in its private header: the file
 * handle of the mounted export (v3), where the raw READDIRPLUS walk starts. Its layout,
 * also private, has been {int len; char *val;} from 4.0 to 6.x: rootfh_layout mirrors it. */
const struct nfs_fh *nfs_get_rootfh(struct nfs_context *nfs);
struct rootfh_layout {
	int len;
	char *val;
};

#define DEFAULT_CONNECTIONS 4
#define DEFAULT_TIMEOUT_MS  10000
#define READ_CHUNK	    (16u << 20) /* one nfs_pread_async (split at readmax by libnfs) */
#define POLL_MS		    100

/* ---- small FIFOs of anything with a 'next' as its first member ---- */

struct link {
	struct link *next;
};

struct fifo {
	struct link *head, *tail;
	size_t n;
};

static void fifo_push(struct fifo *q, void *item)
{
	struct link *l = item;

	l->next = NULL;
	if (q->tail)
		q->tail->next = l;
	else
		q->head = l;
	q->tail = l;
	q->n++;
}

static void fifo_push_front(struct fifo *q, void *item)
{
	struct link *l = item;

	l->next = q->head;
	q->head = l;
	if (!q->tail)
		q->tail = l;
	q->n++;
}

static void *fifo_pop(struct fifo *q)
{
	struct link *l = q->head;

	if (!l)
		return NULL;
	q->head = l->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	return l;
}

/* Appends all of src to dst; src becomes empty. */
static void fifo_splice(struct fifo *dst, struct fifo *src)
{
	if (!src->head)
		return;
	if (dst->tail)
		dst->tail->next = src->head;
	else
		dst->head = src->head;
	dst->tail = src->tail;
	dst->n += src->n;
	*src = (struct fifo){0};
}

/* ---- items ---- */

/* One page of names for the walk thread, or one error (err.code != 0). */
struct page {
	struct page *next;
	size_t count;	 /* names in buf, each NUL-terminated */
	size_t len, cap; /* bytes used / allocated in buf */
	char *buf;
	struct vherr err; /* an error on the directory relpath (buf) */
};

/* One directory to list (from cookie on, for v3). */
struct dirwork {
	struct dirwork *next;
	struct nfssrc *s;
	uint32_t fhlen; /* v3: the directory's handle */
	char *fh;
	uint64_t cookie; /* v3: where the next page starts */
	char verf[NFS3_COOKIEVERFSIZE];
	int conn;
	uint64_t t0; /* when its request was sent (oplat) */
	char relpath[]; /* "" for the root */
};

/* One read in progress; owned by the loop (or the budget thread while waiting). */
struct nread {
	struct nread *next;
	struct nfssrc *s;
	struct source_read *req;
	struct nfsfh *fh;
	int conn;
	bool cancelled; /* the budget was cancelled */
	bool closing;	/* its queued sequenced operation is CLOSE, not OPEN */
	uint64_t off;	/* bytes read so far */
	uint64_t t0;	/* when its OPEN or READ was sent (oplat) */
	char path[];	/* "/" + relpath */
};

struct conn {
	struct nfs_context *nfs; /* set at creation; loop-only after */
	int mount_done;		 /* open-only */
	int mount_rc;		 /* open-only */
	char mount_msg[256];	 /* open-only */
	int busy;		 /* loop-only: requests in flight */
	bool seq_busy;		 /* loop-only, v4: an OPEN or CLOSE is in flight */
	struct fifo seq_wait;	 /* loop-only, v4: reads waiting to OPEN or CLOSE */
};

struct nfssrc {
	struct nfsurl url;	 /* set at creation */
	char *base;		 /* set at creation: "nfs://host[:port]/path" */
	struct source_opts opts; /* set at creation */
	int nconns;		 /* set at creation */
	struct conn *conns;	 /* set at creation; libnfs state loop-only */
	int efd;		 /* set at creation: eventfd waking the loop */
	pthread_t loop_tid, budget_tid, done_tid; /* set at creation */
	int threads;				  /* set at creation: how many of them run */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* any change under lock (broadcast) */
	/* under lock */
	struct fifo posted;	   /* reads submitted, not yet seen by the loop */
	struct fifo granted;	   /* reads back from the budget thread */
	struct fifo want_budget;   /* reads for the budget thread */
	struct fifo completed;	   /* source_read requests for the completion thread */
	struct fifo pages;	   /* names for the walk thread */
	struct dirwork *walk_root; /* the walk's first item, for the loop */
	int reads;		   /* reads accepted and not yet completed */
	bool walk_running;	   /* the loop has dirs queued or in flight */
	bool walk_stop;		   /* stop listing */
	atomic_bool stopflag;	   /* any thread: walk_stop, read without the lock */
	bool cancelled;
	bool quit;   /* threads end */
	int walk_rc; /* the root's listing failed */
	struct vherr walk_err;

	/* loop-only */
	struct fifo dirs; /* directories to list */
	int dirs_inflight;
	int next_conn;
	struct fifo reads_todo; /* reads to start (posted) or to continue (granted) */
};

/* ---- cross-thread signalling ---- */

static void wake_loop(struct nfssrc *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->efd, &one, sizeof(one));

	(void)n; /* a full counter still wakes the loop */
}

static void broadcast(struct nfssrc *s)
{
	pthread_cond_broadcast(&s->cond);
}

static bool is_cancelled(struct nfssrc *s)
{
	bool c;

	pthread_mutex_lock(&s->lock);
	c = s->cancelled;
	pthread_mutex_unlock(&s->lock);
	return c;
}

/* ---- errors ---- */

static enum vherr_code code_of(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ESTALE:
		return VHERR_NOENT;
	case EACCES:
	case EPERM:
		return VHERR_ACCESS;
	case ENOTDIR:
		return VHERR_NOTDIR;
	case ENOMEM:
		return VHERR_NOMEM;
	case ETIMEDOUT:
		return VHERR_TIMEOUT;
	case EIO:
		return VHERR_IO;
	default:
		return VHERR_NET;
	}
}

/* Copies a libnfs message (may be NULL) into one line. */
static const char *one_line(const char *msg, char *buf, size_t size)
{
	snprintf(buf, size, "%s", msg && *msg ? msg : "unknown error");
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return buf;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the completion thread: runs req->done, one at a time, off the loop ---- */

static void *done_main(void *arg)
{
	struct nfssrc *s = arg;
	struct link *l;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->completed.head && !s->quit)
			pthread_cond_wait(&s->cond, &s->lock);
		l = fifo_pop(&s->completed);
		if (!l)
			break; /* quit and nothing left */
		pthread_mutex_unlock(&s->lock);
		{
			struct nread *nr = (struct nread *)l;
			struct source_read *req = nr->req;

			free(nr);
			req->done(req);
		}
		pthread_mutex_lock(&s->lock);
		s->reads--;
		broadcast(s);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Hands a finished read to the completion thread (any thread, lock not held). */
static void read_complete(struct nread *nr)
{
	struct nfssrc *s = nr->s;

	if (nr->req->status != SOURCE_READ_OK)
		VH_FREE(nr->req->data);
	pthread_mutex_lock(&s->lock);
	fifo_push(&s->completed, nr);
	broadcast(s);
	pthread_mutex_unlock(&s->lock);
}

/* ---- the budget thread: budget_acquire blocks here, never on the loop ---- */

static void *budget_main(void *arg)
{
	struct nfssrc *s = arg;
	struct nread *nr;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->want_budget.head && !s->quit)
			pthread_cond_wait(&s->cond, &s->lock);
		nr = fifo_pop(&s->want_budget);
		if (!nr)
			break;
		pthread_mutex_unlock(&s->lock);
		if (budget_acquire(s->opts.budget, nr->req->size) == 0)
			nr->req->charged = nr->req->size;
		else
			nr->cancelled = true;
		pthread_mutex_lock(&s->lock);
		fifo_push(&s->granted, nr);
		wake_loop(s);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- reads (loop thread) ---- */

static void read_fail(struct nread *nr, int errnum, const char *what, const char *msg)
{
	char line[256];
	struct source_read *req = nr->req;

	req->status = SOURCE_READ_FAILED;
	vherr_set(&req->err, code_of(errnum), VHSTAGE_READ, "cannot %s '%s': %s", what,
		  req->relpath, one_line(msg, line, sizeof(line)));
	if (errnum == ENOENT || errnum == ESTALE)
		req->err.code = VHERR_VANISHED;
}

static void read_cancel(struct nread *nr)
{
	nr->req->status = SOURCE_READ_FAILED;
	vherr_set(&nr->req->err, VHERR_CANCELLED, VHSTAGE_READ, NULL);
}

/* NFSv4.0 numbers the OPENs and CLOSEs of one open-owner (libnfs 4.0: one per context)
 * and libnfs 4.0 does not order them: concurrent OPENs on a context fail with
 * BAD_SEQID/BAD_STATEID. So for v4 one OPEN or CLOSE is in flight per connection and the
 * rest wait in conn.seq_wait; READs and GETATTRs stay parallel. v3 has no such state. */
static void seq_issue(struct nread *nr);

static void seq_submit(struct nread *nr, bool closing)
{
	struct conn *c = &nr->s->conns[nr->conn];

	nr->closing = closing;
	if (nr->s->url.version == 4) {
		if (c->seq_busy) {
			fifo_push(&c->seq_wait, nr);
			return;
		}
		c->seq_busy = true;
	}
	seq_issue(nr);
}

/* The sequenced operation of connection c is over: start the next one. */
static void seq_next(struct nfssrc *s, struct conn *c)
{
	struct nread *next;

	if (s->url.version != 4)
		return;
	c->seq_busy = false;
	if ((next = fifo_pop(&c->seq_wait))) {
		c->seq_busy = true;
		seq_issue(next);
	}
}

static void on_close(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nread *nr = priv;
	struct nfssrc *s = nr->s;
	struct conn *c = &s->conns[nr->conn];

	(void)err, (void)nfs, (void)data;
	c->busy--;
	read_complete(nr);
	seq_next(s, c);
}

/* Closes the file (if open) and completes the read. */
static void read_finish(struct nread *nr)
{
	if (nr->fh)
		seq_submit(nr, true);
	else
		read_complete(nr);
}

static void read_next_chunk(struct nread *nr);

/* libnfs 4.0's pread reports a server error as -EFAULT with the reply, not a message:
 * the reason is only in nfs_get_error ("NFS: Read failed with NFS3ERR_STALE(-116)").
 * A stale handle or a missing file there means the file vanished after its OPEN. */
static void read_fail_pread(struct nread *nr, struct nfs_context *nfs, int err, void *data)
{
	const char *msg = err == -EFAULT ? nfs_get_error(nfs) : data;

	if (err == -EFAULT && msg && (strstr(msg, "ERR_STALE") || strstr(msg, "ERR_NOENT")))
		err = -ESTALE;
	read_fail(nr, -err, "read", msg);
}

static void on_pread(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nread *nr = priv;
	struct source_read *req = nr->req;

	nr->s->conns[nr->conn].busy--;
	oplat_record(nr->s->opts.lat, OPLAT_READ, oplat_now() - nr->t0);
	if (err < 0) {
		read_fail_pread(nr, nfs, err, data);
		read_finish(nr);
		return;
	}
	if (is_cancelled(nr->s)) {
		read_cancel(nr);
		read_finish(nr);
		return;
	}
	(void)nfs;
	if ((uint64_t)err > req->size - nr->off)
		err = (int)(req->size - nr->off);
	memcpy(req->data + nr->off, data, (size_t)err);
	nr->off += (uint64_t)err;
	req->len = nr->off;
	if (err == 0 ||
	    nr->off == req->size) { /* done, or the file shrank: keep what is there */
		req->status = SOURCE_READ_OK;
		read_finish(nr);
		return;
	}
	read_next_chunk(nr);
}

static void read_next_chunk(struct nread *nr)
{
	struct conn *c = &nr->s->conns[nr->conn];
	uint64_t n = nr->req->size - nr->off;

	if (n > READ_CHUNK)
		n = READ_CHUNK;
	c->busy++;
	nr->t0 = oplat_now();
	if (nfs_pread_async(c->nfs, nr->fh, nr->off, n, on_pread, nr) != 0) {
		c->busy--;
		read_fail(nr, EIO, "read", nfs_get_error(c->nfs));
		read_finish(nr);
	}
}

/* The budget is held (or cancelled): read the bytes. */
static void read_granted(struct nread *nr)
{
	struct source_read *req = nr->req;

	if (nr->cancelled || is_cancelled(nr->s)) {
		read_cancel(nr);
		read_finish(nr);
		return;
	}
	req->data = malloc(req->size ? req->size : 1);
	if (!req->data) {
		req->status = SOURCE_READ_FAILED;
		vherr_set(&req->err, VHERR_NOMEM, VHSTAGE_READ, NULL);
		read_finish(nr);
		return;
	}
	if (req->size == 0) {
		req->status = SOURCE_READ_OK;
		read_finish(nr);
		return;
	}
	read_next_chunk(nr);
}

static void on_fstat(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nread *nr = priv;
	struct nfssrc *s = nr->s;
	struct source_read *req = nr->req;
	const struct nfs_stat_64 *st = data;

	(void)nfs;
	s->conns[nr->conn].busy--;
	if (err < 0) {
		read_fail(nr, -err, "stat", data);
		read_finish(nr);
		return;
	}
	if (!S_ISREG(st->nfs_mode)) {
		req->status = SOURCE_READ_FAILED;
		vherr_set(&req->err, VHERR_NOTFILE, VHSTAGE_READ, "'%s' is not a regular file",
			  req->relpath);
		read_finish(nr);
		return;
	}
	req->size = st->nfs_size;
	req->mtime_ns = (int64_t)st->nfs_mtime * 1000000000 + (int64_t)st->nfs_mtime_nsec;
	if (req->size < req->min_size || req->size > req->max_size) {
		req->status = SOURCE_READ_SKIPPED;
		read_finish(nr);
		return;
	}
	if (!s->opts.budget) {
		read_granted(nr);
		return;
	}
	pthread_mutex_lock(&s->lock);
	fifo_push(&s->want_budget, nr);
	broadcast(s);
	pthread_mutex_unlock(&s->lock);
}

static void on_open(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nread *nr = priv;
	struct nfssrc *s = nr->s;
	struct conn *c = &s->conns[nr->conn];

	c->busy--;
	oplat_record(s->opts.lat, OPLAT_OPEN, oplat_now() - nr->t0);
	if (err < 0) {
		read_fail(nr, -err, "open", data);
		read_finish(nr);
	} else {
		nr->fh = data;
		c->busy++;
		if (nfs_fstat64_async(nfs, nr->fh, on_fstat, nr) != 0) {
			c->busy--;
			read_fail(nr, EIO, "stat", nfs_get_error(nfs));
			read_finish(nr);
		}
	}
	seq_next(s, c);
}

static void seq_issue(struct nread *nr)
{
	struct nfssrc *s = nr->s;
	struct conn *c = &s->conns[nr->conn];
	int rc;

	c->busy++;
	nr->t0 = oplat_now();
	if (nr->closing)
		rc = nfs_close_async(c->nfs, nr->fh, on_close, nr);
	else
		rc = nfs_open_async(c->nfs, nr->path, O_RDONLY, on_open, nr);
	if (rc == 0)
		return;
	c->busy--;
	if (!nr->closing)
		read_fail(nr, EIO, "open", nfs_get_error(c->nfs));
	read_complete(nr);
	seq_next(s, c);
}

static int pick_conn(struct nfssrc *s)
{
	int best = s->next_conn;

	s->next_conn = (s->next_conn + 1) % s->nconns;
	for (int i = 0; i < s->nconns; i++)
		if (s->conns[i].busy + s->conns[i].seq_wait.n <
		    s->conns[best].busy + s->conns[best].seq_wait.n)
			best = i;
	return best;
}

static void read_start(struct nread *nr)
{
	if (is_cancelled(nr->s)) {
		read_cancel(nr);
		read_complete(nr);
		return;
	}
	nr->conn = pick_conn(nr->s);
	seq_submit(nr, false);
}

/* ---- walk (loop thread) ---- */

static struct dirwork *dirwork_new(struct nfssrc *s, const char *parent, const char *name,
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

static void dirwork_free(struct dirwork *w)
{
	if (w)
		free(w->fh);
	free(w);
}

static void page_free(struct page *p)
{
	if (p)
		free(p->buf);
	free(p);
}

/* Adds "dir/name" to the page; 0 or -1 (no memory). */
static int page_add(struct page *p, const char *dir, const char *name)
{
	size_t dlen = strlen(dir), nlen = strlen(name), need = dlen + nlen + 2;

	if (p->len + need > p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 4096;
		char *b;

		while (cap < p->len + need)
			cap *= 2;
		b = realloc(p->buf, cap);
		if (!b)
			return -1;
		p->buf = b;
		p->cap = cap;
	}
	if (dlen) {
		memcpy(p->buf + p->len, dir, dlen);
		p->buf[p->len + dlen] = '/';
		dlen++;
	}
	memcpy(p->buf + p->len + dlen, name, nlen + 1);
	p->len += dlen + nlen + 1;
	p->count++;
	return 0;
}

/* Gives a page (names or an error) to the walk thread; takes ownership. */
static void page_post(struct nfssrc *s, struct page *p)
{
	pthread_mutex_lock(&s->lock);
	fifo_push(&s->pages, p);
	broadcast(s);
	pthread_mutex_unlock(&s->lock);
}

/* Gives the walk thread an error on relpath (for on_error). */
static void post_error(struct nfssrc *s, const char *relpath, enum vherr_code code,
		       const char *what, const char *why)
{
	struct page *p = calloc(1, sizeof(*p));

	if (!p)
		return;
	p->buf = strdup(relpath);
	vherr_set(&p->err, code, VHSTAGE_WALK, "cannot %s '%s': %s", what, relpath, why);
	page_post(s, p);
}

/* Reports an error listing w: the root's fails the walk, others go to on_error. */
static void walk_fail(struct dirwork *w, int errnum, const char *msg)
{
	struct nfssrc *s = w->s;
	char line[256];

	one_line(msg, line, sizeof(line));
	if (!w->relpath[0]) {
		pthread_mutex_lock(&s->lock);
		s->walk_rc = vherr_set(&s->walk_err, code_of(errnum), VHSTAGE_WALK,
				       "cannot list '%s': %s", s->base, line);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	post_error(s, w->relpath, code_of(errnum), "list", line);
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
	struct dirwork *sub = dirwork_new(w->s, w->relpath, name, fh, fhlen);

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
			if (page_add(p, w->relpath, e.name) < 0)
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

static void on_readdirplus(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct dirwork *w = priv;
	struct nfssrc *s = w->s;
	READDIRPLUS3res *res = data;
	struct page *p;

	s->dirs_inflight--;
	s->conns[w->conn].busy--;
	oplat_record(s->opts.lat, OPLAT_DIR, oplat_now() - w->t0);
	if (status == RPC_STATUS_CANCEL) {
		dirwork_free(w);
		return;
	}
	if (status != RPC_STATUS_SUCCESS) {
		walk_fail(w, status == RPC_STATUS_TIMEOUT ? ETIMEDOUT : EIO,
			  status == RPC_STATUS_TIMEOUT ? "timed out" : rpc_get_error(rpc));
		dirwork_free(w);
		return;
	}
	if (res->status != NFS3_OK) {
		int e = -nfsstat3_to_errno(res->status);

		walk_fail(w, e, strerror(e));
		dirwork_free(w);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p || take_entries3(w, res->READDIRPLUS3res_u.resok.reply.entries, p) < 0) {
		page_free(p);
		walk_fail(w, ENOMEM, "out of memory");
		dirwork_free(w);
		return;
	}
	if (p->count)
		page_post(s, p);
	else
		page_free(p);
	if (res->READDIRPLUS3res_u.resok.reply.eof) {
		dirwork_free(w);
		return;
	}
	memcpy(w->verf, res->READDIRPLUS3res_u.resok.cookieverf, NFS3_COOKIEVERFSIZE);
	fifo_push_front(&s->dirs, w); /* the next page of this directory goes first */
}

static void on_opendir4(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct dirwork *w = priv;
	struct nfssrc *s = w->s;
	struct nfsdir *dir = data;
	struct nfsdirent *e;
	struct page *p = NULL;

	s->dirs_inflight--;
	s->conns[w->conn].busy--;
	oplat_record(s->opts.lat, OPLAT_DIR, oplat_now() - w->t0); /* v4: a whole listing */
	if (err < 0) {
		walk_fail(w, -err, data);
		dirwork_free(w);
		return;
	}
	while ((e = nfs_readdir(nfs, dir))) {
		if (dot_or_dotdot(e->name))
			continue;
		if (S_ISDIR(e->mode)) {
			if (!queue_subdir(w, e->name, NULL, 0))
				break;
			continue;
		}
		if (!S_ISREG(e->mode))
			continue;
		if (!p && !(p = calloc(1, sizeof(*p))))
			break;
		if (page_add(p, w->relpath, e->name) < 0)
			break;
		if (p->len >= NFSSRC_PAGE_BYTES) {
			page_post(s, p);
			p = NULL;
		}
	}
	if (p)
		page_post(s, p);
	nfs_closedir(nfs, dir);
	dirwork_free(w);
}

/* Sends the request for the next page of w; if it cannot, posts the error and frees w. */
static void dir_start(struct nfssrc *s, struct dirwork *w)
{
	struct conn *c;
	int rc;

	w->conn = pick_conn(s);
	c = &s->conns[w->conn];
	w->t0 = oplat_now();
	if (s->url.version == 4) {
		char path[4096];

		snprintf(path, sizeof(path), "/%s", w->relpath);
		rc = nfs_opendir_async(c->nfs, path, on_opendir4, w);
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
		dirwork_free(w);
		return;
	}
	c->busy++;
	s->dirs_inflight++;
}

/* Starts directory requests while under the caps; drops the queue once stopped. */
static void start_dirs(struct nfssrc *s)
{
	size_t waiting;
	bool stop;
	struct dirwork *w;

	pthread_mutex_lock(&s->lock);
	waiting = s->pages.n;
	stop = s->walk_stop || s->cancelled;
	pthread_mutex_unlock(&s->lock);
	if (stop) {
		while ((w = fifo_pop(&s->dirs)))
			dirwork_free(w);
		return;
	}
	while (s->dirs_inflight < s->opts.walkers &&
	       waiting + (size_t)s->dirs_inflight < NFSSRC_PAGES_MAX &&
	       (w = fifo_pop(&s->dirs)))
		dir_start(s, w);
}

/* Tells the walk thread when no directory is left queued or in flight. */
static void check_walk_end(struct nfssrc *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->walk_running && !s->dirs.head && s->dirs_inflight == 0) {
		s->walk_running = false;
		broadcast(s);
	}
	pthread_mutex_unlock(&s->lock);
}

/* ---- the loop ---- */

/* Moves what other threads posted into the loop's own lists. */
static void take_posted(struct nfssrc *s, struct fifo *granted)
{
	pthread_mutex_lock(&s->lock);
	fifo_splice(&s->reads_todo, &s->posted);
	fifo_splice(granted, &s->granted);
	if (s->walk_root) {
		fifo_push(&s->dirs, s->walk_root);
		s->walk_root = NULL;
	}
	pthread_mutex_unlock(&s->lock);
}

static void run_posted(struct nfssrc *s)
{
	struct fifo granted = {0};
	struct nread *nr;

	take_posted(s, &granted);
	while ((nr = fifo_pop(&granted)))
		read_granted(nr);
	while ((nr = fifo_pop(&s->reads_todo)))
		read_start(nr);
	start_dirs(s);
	check_walk_end(s);
}

static void poll_and_service(struct nfssrc *s)
{
	struct pollfd pfd[s->nconns + 1];
	uint64_t junk;

	for (int i = 0; i < s->nconns; i++) {
		pfd[i].fd = nfs_get_fd(s->conns[i].nfs);
		pfd[i].events = (short)nfs_which_events(s->conns[i].nfs);
		pfd[i].revents = 0;
	}
	pfd[s->nconns] = (struct pollfd){.fd = s->efd, .events = POLLIN};
	if (poll(pfd, (nfds_t)s->nconns + 1, POLL_MS) < 0 && errno != EINTR)
		return;
	if (pfd[s->nconns].revents & POLLIN) {
		ssize_t n = read(s->efd, &junk, sizeof(junk));

		(void)n;
	}
	/* revents 0 too: libnfs runs its RPC timeouts from nfs_service */
	/* < 0 is a broken connection: libnfs reconnects it (autoreconnect) or times out */
	for (int i = 0; i < s->nconns; i++)
		nfs_service(s->conns[i].nfs, pfd[i].revents);
}

static bool loop_quit(struct nfssrc *s)
{
	bool q;

	pthread_mutex_lock(&s->lock);
	q = s->quit;
	pthread_mutex_unlock(&s->lock);
	return q;
}

static void *loop_main(void *arg)
{
	struct nfssrc *s = arg;

	while (!loop_quit(s)) {
		run_posted(s);
		poll_and_service(s);
	}
	return NULL;
}

/* ---- open: connect and mount every connection, bounded by the timeout ---- */

static void on_mounted(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct conn *c = priv;

	(void)nfs;
	c->mount_done = 1;
	c->mount_rc = err;
	if (err < 0)
		one_line(data, c->mount_msg, sizeof(c->mount_msg));
}

/* Returns the first failed connection's rc with err set, or 0. */
static int mount_result(struct nfssrc *s, struct vherr *err)
{
	for (int i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];

		/* libnfs 4.0 says "Socket failed with POLLHUP" for a refused connection */
		if (c->mount_rc < 0 && strstr(c->mount_msg, "POLLHUP"))
			return vherr_set(
			    err, VHERR_NET, VHSTAGE_WALK,
			    "cannot mount '%s': connection refused or closed by the "
			    "server (wrong host, port or version?)",
			    s->base);
		if (c->mount_rc < 0)
			return vherr_set(err, code_of(-c->mount_rc), VHSTAGE_WALK,
					 "cannot mount '%s': %s", s->base, c->mount_msg);
	}
	return 0;
}

static int mount_wait(struct nfssrc *s, int timeout_ms, struct vherr *err)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	struct pollfd pfd[s->nconns];
	int pending;

	for (;;) {
		pending = 0;
		for (int i = 0; i < s->nconns; i++) {
			struct conn *c = &s->conns[i];

			pfd[i] = (struct pollfd){.fd = c->mount_done ? -1 : nfs_get_fd(c->nfs),
						 .events = (short)nfs_which_events(c->nfs)};
			pending += !c->mount_done;
		}
		if (!pending)
			return mount_result(s, err);
		if (now_ms() >= deadline)
			return vherr_set(err, VHERR_TIMEOUT, VHSTAGE_WALK,
					 "cannot mount '%s': no answer within %d ms", s->base,
					 timeout_ms);
		if (poll(pfd, (nfds_t)s->nconns, POLL_MS) < 0 && errno != EINTR)
			return vherr_errno(err, errno, VHSTAGE_WALK, "poll");
		for (int i = 0; i < s->nconns; i++) {
			struct conn *c = &s->conns[i];

			if (c->mount_done || nfs_service(c->nfs, pfd[i].revents) >= 0)
				continue;
			c->mount_done = 1;
			c->mount_rc = -ECONNREFUSED;
			one_line(nfs_get_error(c->nfs), c->mount_msg, sizeof(c->mount_msg));
		}
	}
}

/* Sets the URL's ports on nfs: libnfs 4.0 has no setter, only its URL arguments. */
static int set_ports(struct nfs_context *nfs, const struct nfsurl *u)
{
	char args[96];
	struct nfs_url *parsed;

	if (!u->nfsport && !u->mountport)
		return 0;
	snprintf(args, sizeof(args), "nfs://?nfsport=%d&mountport=%d", u->nfsport,
		 u->mountport);
	parsed = nfs_parse_url_incomplete(nfs, args);
	if (!parsed)
		return -1;
	nfs_destroy_url(parsed);
	return 0;
}

static int conn_init(struct nfssrc *s, struct conn *c, int timeout_ms, struct vherr *err)
{
	c->nfs = nfs_init_context();
	if (!c->nfs)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK,
				 "cannot create an nfs context");
	if (nfs_set_version(c->nfs, s->url.version) < 0 || set_ports(c->nfs, &s->url) < 0)
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_WALK, "cannot configure '%s': %s",
				 s->base, nfs_get_error(c->nfs));
	if (s->url.version == 4) {
		/* one NFSv4 client per connection: a shared name makes the server drop the
		 * earlier connections' client ids (SETCLIENTID_CONFIRM: STALE_CLIENTID) */
		char name[96];

		snprintf(name, sizeof(name), "vhprep.%ld.%d.%p", (long)getpid(),
			 (int)(c - s->conns), (void *)s);
		nfs4_set_client_name(c->nfs, name);
	}
	if (s->url.uid >= 0)
		nfs_set_uid(c->nfs, (int)s->url.uid);
	if (s->url.gid >= 0)
		nfs_set_gid(c->nfs, (int)s->url.gid);
	nfs_set_timeout(c->nfs, (timeout_ms + 999) / 1000 * 1000);
	nfs_set_autoreconnect(c->nfs, 3);
	if (nfs_mount_async(c->nfs, s->url.host, s->url.path, on_mounted, c) != 0)
		return vherr_set(err, VHERR_NET, VHSTAGE_WALK, "cannot mount '%s': %s", s->base,
				 nfs_get_error(c->nfs));
	return 0;
}

/* Checks that the root is a directory (one synchronous GETATTR, bounded by the timeout). */
static int check_root(struct nfssrc *s, struct vherr *err)
{
	struct nfs_stat_64 st;
	int rc = nfs_stat64(s->conns[0].nfs, "/", &st);
	char line[256];

	if (rc < 0)
		return vherr_set(err, code_of(-rc), VHSTAGE_WALK, "cannot open source '%s': %s",
				 s->base,
				 one_line(nfs_get_error(s->conns[0].nfs), line, sizeof(line)));
	if (!S_ISDIR(st.nfs_mode))
		return vherr_set(err, VHERR_NOTDIR, VHSTAGE_WALK,
				 "cannot open source '%s': not a directory", s->base);
	return 0;
}

static char *make_base(const struct nfsurl *u)
{
	char *b = NULL;
	bool v6 = strchr(u->host, ':') != NULL;
	int n;

	if (u->nfsport)
		n = asprintf(&b, "nfs://%s%s%s:%d%s", v6 ? "[" : "", u->host, v6 ? "]" : "",
			     u->nfsport, strcmp(u->path, "/") ? u->path : "");
	else
		n = asprintf(&b, "nfs://%s%s%s%s", v6 ? "[" : "", u->host, v6 ? "]" : "",
			     strcmp(u->path, "/") ? u->path : "");
	return n < 0 ? NULL : b;
}

static int start_threads(struct nfssrc *s)
{
	if (pthread_create(&s->done_tid, NULL, done_main, s) != 0)
		return -1;
	s->threads++;
	if (pthread_create(&s->budget_tid, NULL, budget_main, s) != 0)
		return -1;
	s->threads++;
	if (pthread_create(&s->loop_tid, NULL, loop_main, s) != 0)
		return -1;
	s->threads++;
	return 0;
}

int nfssrc_open(const char *url, const struct source_opts *opts,
		const struct nfssrc_opts *nopts, struct nfssrc **out, struct vherr *err)
{
	struct nfssrc *s = calloc(1, sizeof(*s));
	int timeout_ms =
	    nopts && nopts->timeout_ms > 0 ? nopts->timeout_ms : DEFAULT_TIMEOUT_MS;
	int rc;

	*out = NULL;
	if (!s)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->efd = -1;
	s->opts = *opts;
	if (s->opts.walkers < 1)
		s->opts.walkers = 1;
	if (s->opts.io_depth < 1)
		s->opts.io_depth = 1;
	s->nconns = nopts && nopts->connections > 0 ? nopts->connections : DEFAULT_CONNECTIONS;
	if ((rc = nfsurl_parse(url, &s->url, err)) < 0)
		goto fail;
	s->base = make_base(&s->url);
	s->conns = calloc((size_t)s->nconns, sizeof(*s->conns));
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!s->base || !s->conns || s->efd < 0) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
		goto fail;
	}
	for (int i = 0; i < s->nconns; i++)
		if ((rc = conn_init(s, &s->conns[i], timeout_ms, err)) < 0)
			goto fail;
	if ((rc = mount_wait(s, timeout_ms, err)) < 0 || (rc = check_root(s, err)) < 0)
		goto fail;
	if (start_threads(s) < 0) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, "cannot start the nfs threads");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	nfssrc_free(s);
	return rc;
}

/* ---- the public operations ---- */

/* Calls emit for each name of p; false once the walk should stop. */
static bool walk_page(struct nfssrc *s, struct page *p, source_emit_fn emit, void *ctx,
		      void (*on_error)(void *, const char *, const struct vherr *))
{
	const char *name = p->buf;

	if (p->err.code) {
		if (on_error)
			on_error(ctx, p->buf ? p->buf : "", &p->err);
		return true;
	}
	for (size_t i = 0; i < p->count; i++, name += strlen(name) + 1) {
		if (atomic_load(&s->stopflag))
			return false;
		if (emit(ctx, name) == SOURCE_STOP)
			return false;
	}
	return true;
}

int nfssrc_walk(struct nfssrc *s, source_emit_fn emit, void *ctx,
		void (*on_error)(void *ctx, const char *relpath, const struct vherr *err),
		struct vherr *err)
{
	struct dirwork *root = dirwork_new(s, "", "", NULL, 0);
	const struct rootfh_layout *fh =
	    s->url.version == 3 ? (const void *)nfs_get_rootfh(s->conns[0].nfs) : NULL;
	struct page *p;
	int rc;

	if (!root || (fh && !(root->fh = malloc((size_t)fh->len)))) {
		dirwork_free(root);
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	}
	if (fh) {
		memcpy(root->fh, fh->val, (size_t)fh->len);
		root->fhlen = (uint32_t)fh->len;
	}
	pthread_mutex_lock(&s->lock);
	s->walk_root = root;
	s->walk_running = true;
	wake_loop(s);
	for (;;) {
		while (!s->pages.head && s->walk_running)
			pthread_cond_wait(&s->cond, &s->lock);
		p = fifo_pop(&s->pages);
		if (!p)
			break;
		pthread_mutex_unlock(&s->lock);
		if (!atomic_load(&s->stopflag) && !walk_page(s, p, emit, ctx, on_error))
			nfssrc_stop(s);
		page_free(p);
		wake_loop(s); /* a page slot is free */
		pthread_mutex_lock(&s->lock);
	}
	rc = s->walk_rc;
	if (rc < 0)
		*err = s->walk_err;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int nfssrc_submit(struct nfssrc *s, struct source_read *req)
{
	size_t n = strlen(req->relpath);
	struct nread *nr = calloc(1, sizeof(*nr) + n + 2);

	if (!nr)
		return -VHERR_NOMEM;
	nr->s = s;
	nr->req = req;
	nr->path[0] = '/';
	memcpy(nr->path + 1, req->relpath, n + 1);
	req->status = SOURCE_READ_FAILED;
	req->data = NULL;
	req->len = req->size = req->charged = 0;
	req->mtime_ns = 0;
	vherr_clear(&req->err);
	pthread_mutex_lock(&s->lock);
	while (s->reads >= s->opts.io_depth && !s->cancelled)
		pthread_cond_wait(&s->cond, &s->lock);
	if (s->cancelled) {
		pthread_mutex_unlock(&s->lock);
		free(nr);
		return -VHERR_CANCELLED;
	}
	s->reads++;
	fifo_push(&s->posted, nr);
	wake_loop(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void nfssrc_stop(struct nfssrc *s)
{
	pthread_mutex_lock(&s->lock);
	s->walk_stop = true;
	pthread_mutex_unlock(&s->lock);
	atomic_store(&s->stopflag, true);
	wake_loop(s);
}

void nfssrc_cancel(struct nfssrc *s)
{
	pthread_mutex_lock(&s->lock);
	s->walk_stop = true;
	s->cancelled = true;
	atomic_store(&s->stopflag, true);
	broadcast(s);
	pthread_mutex_unlock(&s->lock);
	if (s->opts.budget)
		budget_cancel(s->opts.budget);
	wake_loop(s);
}

char *nfssrc_location(const struct nfssrc *s, const char *relpath, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", s->base, relpath);
	return buf;
}

static void stop_threads(struct nfssrc *s)
{
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	broadcast(s);
	pthread_mutex_unlock(&s->lock);
	wake_loop(s);
	if (s->threads > 2)
		pthread_join(s->loop_tid, NULL);
	if (s->threads > 1)
		pthread_join(s->budget_tid, NULL);
	if (s->threads > 0)
		pthread_join(s->done_tid, NULL);
	s->threads = 0;
}

void nfssrc_free(struct nfssrc *s)
{
	struct dirwork *w;

	if (!s)
		return;
	stop_threads(s);
	for (int i = 0; s->conns && i < s->nconns; i++)
		if (s->conns[i].nfs)
			nfs_destroy_context(s->conns[i].nfs); /* cancels what is left */
	while ((w = fifo_pop(&s->dirs)))
		dirwork_free(w);
	dirwork_free(s->walk_root);
	while (s->pages.head)
		page_free(fifo_pop(&s->pages));
	if (s->efd >= 0)
		close(s->efd);
	free(s->conns);
	free(s->base);
	nfsurl_release(&s->url);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
