/* nfsconn: the connections of the nfs:// source — N libnfs contexts (one TCP connection
 * each, like nconnect) to one export: connect and mount them all at open (in parallel,
 * bounded by the timeout), pick the least busy one for a request, and keep them alive:
 * a connection whose transport broke (or timed out) is dropped (its context destroyed,
 * which completes its requests as cancelled so the callers retry them elsewhere) and
 * mounted again with a backoff (100 ms doubling to 1 s). If none is back within the
 * timeout, the connections are lost (nfsconns.lost, one error for every caller).
 *
 * libnfs' own autoreconnect is off: it retries forever on the one connection, while
 * we retry a request (up to NFSCONN_RETRIES times) on whichever connection is up.
 *
 * Threads: nfsconn_open and nfsconn_close on the opening thread; everything else on the
 * source's loop thread only (it owns every libnfs context). Private to the nfs source. */
#ifndef VHPREP_IO_NFSCONN_H
#define VHPREP_IO_NFSCONN_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/vherr.h"
#include "io/nfsint.h"
#include "io/nfsurl.h"

#define NFSCONN_RETRIES 3 /* transport failures a request survives */

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
	bool seq_busy;		 /* loop-only, v4 reads: an OPEN or CLOSE is in flight */
	struct fifo seq_wait;	 /* loop-only, v4 reads: reads waiting to OPEN or CLOSE */
	struct fifo suspects;	 /* loop-only: reads by path that failed this service round */
};

struct nfsconns {
	const struct nfsurl *url; /* set at creation; borrowed */
	const char *base;	  /* set at creation; borrowed: "nfs://host/path", messages */
	void *owner;		  /* set at creation: makes v4 client names unique */
	int n;			  /* set at creation */
	struct conn *c;		  /* set at creation: n of them */
	int timeout_ms;		  /* set at creation: per RPC, and how long none may be UP */
	int next;		  /* loop-only: where the round robin starts */
	bool lost;		  /* loop-only: none came back within timeout_ms */
	struct vherr lost_err;	  /* loop-only: why, once lost */
};

/* What nfsconn_tick found. */
enum nfsconn_tick { NFSCONN_NONE_UP, NFSCONN_SOME_UP, NFSCONN_LOST };

/* Creates n (> 0) connections to url (borrowed, like base; both must outlive cs) and
 * mounts them all, waiting at most timeout_ms, then checks that the export's root is a
 * directory. Returns 0, or a negative code with err set to one line: -VHERR_NET
 * (unreachable, wrong port), -VHERR_TIMEOUT, -VHERR_NOENT, -VHERR_ACCESS, -VHERR_NOTDIR,
 * -VHERR_NOMEM. cs is to be closed (nfsconn_close) either way. */
int nfsconn_open(struct nfsconns *cs, const struct nfsurl *url, const char *base, void *owner,
		 int n, int timeout_ms, struct vherr *err);
/* Destroys every context (which cancels what is left on it) and frees the array; cs
 * may be zeroed or half open. */
void nfsconn_close(struct nfsconns *cs);
/* The index of the least busy UP connection (round robin among equals), or -1 if none
 * is UP (the caller waits for one). */
int nfsconn_pick(struct nfsconns *cs);
/* Whether connection i may take requests now. */
static inline bool nfsconn_up(const struct nfsconns *cs, int i)
{
	return cs->c[i].state == CONN_UP && !cs->c[i].broken;
}
/* A request on connection i failed in transport (error, timeout, cancel): marks the
 * connection broken (nfsconn_tick drops and remounts it) and counts the failure in
 * *attempts. True if the request should be sent again (the caller queues it), false if
 * it has failed for good (too many attempts, the connections are lost, or cancelled). */
bool nfsconn_retry(struct nfsconns *cs, int i, int *attempts, bool cancelled);
/* The connections' phase of the loop: drops broken connections (their v4 reads waiting
 * to OPEN or CLOSE are appended to *resume: start them again), finishes or starts
 * remounts, and once none is UP and none may come back within the timeout marks the
 * connections lost (lost_err set; NFSCONN_LOST is returned once). */
enum nfsconn_tick nfsconn_tick(struct nfsconns *cs, struct fifo *resume);
/* Fills pfd[0..n) with each connection's socket and events (fd -1 while DOWN). */
void nfsconn_poll_fds(const struct nfsconns *cs, struct pollfd *pfd);
/* Runs libnfs' service of connection i for revents (its callbacks run here; with revents
 * 0 too: libnfs runs its RPC timeouts there). Returns whether the connection is broken. */
bool nfsconn_service(struct nfsconns *cs, int i, short revents);

#endif
