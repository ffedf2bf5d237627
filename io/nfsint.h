/* nfsint: what the nfs:// source's files share: small FIFOs, the work items (a page of
 * names, a directory to list, a file to read), the hub through which the source's
 * threads hand work to each other, and the narrow views the reads (io/nfsread.c) and
 * the walk (io/nfswalk.c) get of the source (io/nfssrc.c owns them all). Connections are
 * io/nfsconn.h. Private to the nfs source: nothing else includes it. Every function here
 * runs on the loop thread unless its comment says otherwise.
 *
 * Calls go one way: nfssrc -> nfsread, nfswalk -> nfsconn, the raw RPC files
 * (nfs3dir, nfs3read, nfs4dir, nfs4read) -> nfs4rpc; never back. */
#ifndef VHPREP_IO_NFSINT_H
#define VHPREP_IO_NFSINT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <unistd.h>

#include <nfsc/libnfs.h>

#include "common/budget.h"
#include "common/oplat.h"
#include "common/vherr.h"
#include "io/entrybuf.h"
#include "io/source.h"

/* ---- small FIFOs of anything with a 'next' as its first member ---- */

struct link {
	struct link *next;
};

struct fifo {
	struct link *head, *tail;
	size_t n;
};

static inline void fifo_push(struct fifo *q, void *item)
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

static inline void fifo_push_front(struct fifo *q, void *item)
{
	struct link *l = item;

	l->next = q->head;
	q->head = l;
	if (!q->tail)
		q->tail = l;
	q->n++;
}

static inline void *fifo_pop(struct fifo *q)
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
static inline void fifo_splice(struct fifo *dst, struct fifo *src)
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

struct nfsread_env;
struct nfswalk_env;
struct conn;

/* One page of entries for the walk thread, or one error (err.code != 0). */
struct page {
	struct page *next;
	struct entrybuf entries; /* files with their hints (size, mtime, handle) */
	char *errpath;		 /* the relpath err is about */
	struct vherr err;
};

/* One directory to list (from cookie on). */
struct dirwork {
	struct dirwork *next;
	struct nfswalk_env *env;
	uint32_t fhlen; /* the directory's handle (v4: NULL until the root's LOOKUP) */
	char *fh;
	uint64_t cookie; /* where the next page starts */
	char verf[8];	 /* the cookie verifier of the pages so far */
	int conn;
	int attempts;	/* transport failures so far (retried up to NFSCONN_RETRIES) */
	uint64_t t0;	/* when its request was sent (oplat) */
	char relpath[]; /* "" for the root */
};

/* Where a read is. nfsread.c changes it through one setter, read_state_set: a debug
 * build asserts each transition (nfsread_transition_ok) and, with VHPREP_NFS_TRACE set
 * in the environment, prints it on stderr. */
#define NREAD_STATE_LIST(X)                                                                    \
	X(QUEUED, "queued")		/* submitted, or waiting for a connection */           \
	X(BY_HANDLE, "by-handle")	/* the listing's handle: waiting for the budget */     \
	X(BY_PATH_OPEN, "by-path-open") /* OPEN (+ fstat) by path, sequenced for v4 */         \
	X(READING, "reading")		/* READs in flight */                                  \
	X(JUDGING, "judging")		/* failed in a service round: server or transport? */  \
	X(RETRYING, "retrying")		/* the transport failed: waits to start again */       \
	X(DONE, "done")			/* handed to the completion thread */

enum nread_state {
#define NREAD_STATE_ENUM(name, word) NREAD_##name,
	NREAD_STATE_LIST(NREAD_STATE_ENUM)
#undef NREAD_STATE_ENUM
};

/* One read in progress; owned by the loop (or the budget thread while waiting). */
struct nread {
	struct nread *next;
	struct nfsread_env *env;
	struct source_read *req;
	enum nread_state state; /* only through read_state_set (nfsread.c) */
	struct nfsfh *fh;
	int conn;
	bool cancelled; /* the budget was cancelled */
	bool closing;	/* its queued sequenced operation is CLOSE, not OPEN */
	uint64_t off;	/* bytes read so far */
	uint64_t t0;	/* when its OPEN or READ was sent (oplat) */
	/* by handle: the listing gave the handle, size and mtime, so no OPEN, no GETATTR */
	bool by_handle;
	bool granted;	 /* the budget is held and data allocated */
	bool retry;	 /* a READ met a broken transport: read again once all are back */
	int attempts;	 /* transport failures so far (retried up to NFSCONN_RETRIES) */
	bool changed;	 /* the file changed since its listing: read it again by path */
	int chunks;	 /* READs in flight */
	uint64_t issued; /* bytes asked for so far */
	uint64_t end;	 /* where the file ends, as far as the READs tell */
	char path[];	 /* "/" + relpath */
};

/* ---- the hub: what the source's threads hand each other, under lock ---- */

struct nfshub {
	int efd; /* set at creation: eventfd waking the loop */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* any change under lock (broadcast) */
	/* under lock */
	struct fifo posted;	   /* reads submitted, not yet seen by the loop */
	struct fifo granted;	   /* reads back from the budget thread */
	struct fifo want_budget;   /* reads for the budget thread */
	struct fifo completed;	   /* reads for the completion thread */
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
};

/* Wakes the loop (any thread). */
static inline void nfshub_wake(struct nfshub *h)
{
	uint64_t one = 1;
	ssize_t n = write(h->efd, &one, sizeof(one));

	(void)n; /* a full counter still wakes the loop */
}

/* Whether the source was cancelled (any thread; takes h->lock). */
static inline bool nfshub_cancelled(struct nfshub *h)
{
	bool c;

	pthread_mutex_lock(&h->lock);
	c = h->cancelled;
	pthread_mutex_unlock(&h->lock);
	return c;
}

/* Appends item to q (one of h's lists) and wakes every waiting thread (any thread;
 * takes h->lock). */
static inline void nfshub_push(struct nfshub *h, struct fifo *q, void *item)
{
	pthread_mutex_lock(&h->lock);
	fifo_push(q, item);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

/* ---- what the reads see of the source (nfsread.c) ---- */

/* One READ by handle's outcome, whatever the NFS version. */
struct nfsread_reply {
	int errnum;	 /* 0, or a positive errno */
	bool transport;	 /* errnum is the connection's (retried), not the server's */
	const char *msg; /* with errnum */
	const char *data;
	uint32_t n; /* bytes at data */
	bool eof;
	bool have_attrs; /* size and mtime_ns are the file's after the READ */
	bool needs_open; /* the server wants the file OPENed (v4): read it by path */
	uint64_t size;
	int64_t mtime_ns;
};

/* The transport of the reads: libnfs (nfsread_libnfs) in the source, a script in the
 * unit tests (tests/io/test_nfsread.c). Each submit returns 0 when its reply will come
 * exactly once (read_fh: through nfsread_chunk_reply; the others: their nfs_cb), else
 * non-zero (error() then says why). */
struct nfsread_io {
	int (*read_fh)(struct nfsread_env *env, int conn, const char *fh, uint32_t fhlen,
		       uint64_t off, uint32_t count, void *chunk);
	uint64_t (*readmax)(struct nfs_context *nfs);
	int (*open)(struct nfs_context *nfs, const char *path, int flags, nfs_cb cb,
		    void *priv);
	int (*fstat)(struct nfs_context *nfs, struct nfsfh *fh, nfs_cb cb, void *priv);
	int (*pread)(struct nfs_context *nfs, struct nfsfh *fh, uint64_t off, uint64_t count,
		     nfs_cb cb, void *priv);
	int (*close)(struct nfs_context *nfs, struct nfsfh *fh, nfs_cb cb, void *priv);
	char *(*error)(struct nfs_context *nfs);
	void (*free_fh)(struct nfsfh *fh); /* a handle whose connection is gone: no CLOSE */
};

/* The libnfs transport (nfs3read/nfs4read by handle, libnfs' async calls by path). */
extern const struct nfsread_io nfsread_libnfs;

struct nfsread_env {
	struct nfsconns *conns;	     /* set at creation; loop-only */
	struct nfshub *hub;	     /* set at creation */
	const struct nfsread_io *io; /* set at creation: &nfsread_libnfs but in tests */
	int version;		     /* set at creation: 3 or 4 */
	struct budget *budget;	     /* set at creation; NULL: none */
	struct oplat *lat;	     /* set at creation; NULL: no latencies */
	struct fifo stalled;	     /* loop-only: reads waiting for a connection to come UP */
};

/* The reply to the READ chunk (read_fh's) of a read by handle. */
void nfsread_chunk_reply(void *chunk, const struct nfsread_reply *r);
/* Starts a posted read: open (sequenced for v4), fstat, then the budget thread. */
void nfsread_start(struct nread *nr);
/* The budget is held (or cancelled): reads the bytes and completes nr. */
void nfsread_granted(struct nread *nr);
/* Starts again a read that waited for a connection (env->stalled, or a dropped
 * connection's v4 OPEN/CLOSE queue), where it stopped. */
void nfsread_resume(struct nread *nr);
/* Fails nr for good because the connections are lost (conns->lost_err); completes it. */
void nfsread_lost(struct nread *nr);
/* After a round of nfs_service on connection c: the reads that failed in it are retried
 * if the connection broke (broken), else finished with their error. */
void nfsread_judge(struct conn *c, bool broken);
/* Starts the next waiting v4 OPEN or CLOSE of each UP connection that has none in
 * flight (the loop's phase, after servicing). */
void nfsread_seq_kick(struct nfsread_env *env);
/* Whether read state st may follow state from (the transitions nfsread.c makes). Pure;
 * any thread. */
bool nfsread_transition_ok(enum nread_state from, enum nread_state st);
/* Returns the word for st ("by-handle"); never NULL. Any thread. */
const char *nfsread_state_name(enum nread_state st);

/* ---- what the walk sees of the source (nfswalk.c) ---- */

struct nfswalk_env {
	struct nfsconns *conns;	 /* set at creation; loop-only */
	struct nfshub *hub;	 /* set at creation */
	int version;		 /* set at creation: 3 or 4 */
	const char *export_path; /* set at creation: the URL's path (v4 LOOKUP) */
	const char *base;	 /* set at creation: "nfs://host/path", for messages */
	int walkers;		 /* set at creation: directory requests in flight at most */
	struct oplat *lat;	 /* set at creation; NULL: no latencies */
	struct fifo dirs;	 /* loop-only: directories to list */
	int dirs_inflight;	 /* loop-only */
};

/* A directory work item for parent/name with handle fh (copied; NULL: none), or NULL. */
struct dirwork *nfswalk_dir_new(struct nfswalk_env *env, const char *parent, const char *name,
				const char *fh, uint32_t fhlen);
/* Frees w; NULL is fine. */
void nfswalk_dir_free(struct dirwork *w);
/* Frees p; NULL is fine. */
void nfswalk_page_free(struct page *p);
/* Starts directory requests while under the caps; drops the queue once stopped. */
void nfswalk_start_dirs(struct nfswalk_env *env);
/* Tells the walk thread when no directory is left queued or in flight. */
void nfswalk_check_end(struct nfswalk_env *env);
/* The connections are lost: fails the walk with err if it is running. */
void nfswalk_lost(struct nfswalk_env *env, const struct vherr *err);

#endif
