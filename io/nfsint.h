/* nfsint: what the nfs:// source's three files share (io/nfssrc.c: open, threads and
 * the event loop; io/nfswalk.c: directory listing; io/nfsread.c: file reads). Private to
 * them: nothing else includes it. Every function here runs on the loop thread unless its
 * comment says otherwise. */
#ifndef VHPREP_IO_NFSINT_H
#define VHPREP_IO_NFSINT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

#include "io/entrybuf.h"
#include "io/nfssrc.h"
#include "io/nfsurl.h"

#define NFS_READ_CHUNK (16u << 20) /* one nfs_pread_async (split at readmax by libnfs) */
#define NFS_RETRIES    3	   /* transport failures a request survives */

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

/* One page of entries for the walk thread, or one error (err.code != 0). */
struct page {
	struct page *next;
	struct entrybuf entries; /* files with their hints (size, mtime, handle) */
	char *errpath;		 /* the relpath err is about */
	struct vherr err;
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
	int attempts;	/* transport failures so far (retried up to NFS_RETRIES) */
	uint64_t t0;	/* when its request was sent (oplat) */
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
	/* by handle: the listing gave the handle, size and mtime, so no OPEN, no GETATTR */
	bool by_handle;
	bool granted;	 /* the budget is held and data allocated */
	bool retry;	 /* a READ met a broken transport: read again once all are back */
	int attempts;	 /* transport failures so far (retried up to NFS_RETRIES) */
	bool changed;	 /* the file changed since its listing: read it again by path */
	int chunks;	 /* READs in flight */
	uint64_t issued; /* bytes asked for so far */
	uint64_t end;	 /* where the file ends, as far as the READs tell */
	char path[];	 /* "/" + relpath */
};

/* A connection's life: UP serves requests; a broken transport (or a timeout) drops it
 * to DOWN (context destroyed, its requests retried elsewhere or later); the loop
 * remounts it (MOUNTING) with a growing backoff. */
enum conn_state { CONN_UP, CONN_DOWN, CONN_MOUNTING };

struct conn {
	struct nfs_context *nfs; /* loop-only after open; NULL while DOWN */
	enum conn_state state;	 /* loop-only */
	bool broken;		 /* loop-only: a request saw the transport fail: drop it */
	uint64_t down_since;	 /* loop-only: ms (monotonic) it went down, 0 when UP */
	uint64_t retry_at;	 /* loop-only: ms of the next remount */
	int backoff_ms;		 /* loop-only: the next wait after a failed remount */
	int reconnects;		 /* loop-only: remounts tried */
	int mount_done;		 /* open-only */
	int mount_rc;		 /* open-only */
	char mount_msg[256];	 /* open-only */
	int busy;		 /* loop-only: requests in flight */
	bool seq_busy;		 /* loop-only, v4: an OPEN or CLOSE is in flight */
	struct fifo seq_wait;	 /* loop-only, v4: reads waiting to OPEN or CLOSE */
	struct fifo suspects;	 /* loop-only: reads by path that failed this service round */
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
	struct fifo stalled;	/* reads waiting for a connection to come UP */
	int timeout_ms;		/* set at creation: per RPC, and how long no connection is UP */
	bool lost;		/* no connection came back within timeout_ms: all fails */
	struct vherr lost_err;	/* why, once lost */
};

/* ---- provided by nfssrc.c ---- */

/* Wakes every thread waiting on s->cond; s->lock held. */
static inline void nfssrc_broadcast(struct nfssrc *s)
{
	pthread_cond_broadcast(&s->cond);
}

/* Wakes the loop (any thread). */
void nfssrc_wake(struct nfssrc *s);
/* Whether the source was cancelled (any thread; takes s->lock). */
bool nfssrc_cancelled(struct nfssrc *s);
/* The error code for a (positive) errno from libnfs. */
enum vherr_code nfssrc_code_of(int errnum);
/* Copies msg (may be NULL) into buf as one line; returns buf. */
const char *nfssrc_one_line(const char *msg, char *buf, size_t size);
/* The index of the least busy UP connection (round robin among equals), or -1 if none
 * is UP (the caller waits: reads in s->stalled, directories in s->dirs). */
int nfssrc_pick_conn(struct nfssrc *s);
/* A request on connection conn failed in transport (error, timeout, cancel): marks the
 * connection broken (the loop drops and remounts it) and counts the failure in
 * *attempts. True if the request should be sent again (the caller queues it), false if
 * it has failed for good (too many attempts, or the source is lost). */
bool nfssrc_retry(struct nfssrc *s, int conn, int *attempts);
/* Whether connection conn may take requests now. */
static inline bool nfssrc_conn_up(const struct nfssrc *s, int conn)
{
	return s->conns[conn].state == CONN_UP && !s->conns[conn].broken;
}

/* ---- provided by nfswalk.c ---- */

/* A directory work item for parent/name with handle fh (copied; NULL: none), or NULL. */
struct dirwork *nfswalk_dir_new(struct nfssrc *s, const char *parent, const char *name,
				const char *fh, uint32_t fhlen);
/* Frees w; NULL is fine. */
void nfswalk_dir_free(struct dirwork *w);
/* Frees p; NULL is fine. */
void nfswalk_page_free(struct page *p);
/* Starts directory requests while under the caps; drops the queue once stopped. */
void nfswalk_start_dirs(struct nfssrc *s);
/* Tells the walk thread when no directory is left queued or in flight. */
void nfswalk_check_end(struct nfssrc *s);

/* ---- provided by nfsread.c ---- */

/* Starts a posted read: open (sequenced for v4), fstat, then the budget thread. */
void nfsread_start(struct nread *nr);
/* The budget is held (or cancelled): reads the bytes and completes nr. */
void nfsread_granted(struct nread *nr);
/* Starts again a read that waited for a connection (s->stalled), where it stopped. */
void nfsread_resume(struct nread *nr);
/* Fails nr for good because the source is lost (s->lost_err) and completes it. */
void nfsread_lost(struct nread *nr);
/* After a round of nfs_service on c: the reads that failed in it are retried if the
 * connection broke (broken), else finished with their error. */
void nfsread_judge(struct nfssrc *s, struct conn *c, bool broken);
/* Starts the next waiting v4 OPEN or CLOSE of each UP connection that has none in
 * flight (the loop's phase, after servicing). */
void nfsread_seq_kick(struct nfssrc *s);

#endif
