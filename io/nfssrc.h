/* nfssrc: the nfs:// source — libnfs' async API driven by ONE event-loop thread over
 * several nfs_contexts (one TCP connection each, like nconnect), each with many requests
 * in flight. It implements the source operations of io/source.h (walk, read submit,
 * stop, cancel, free) for source.c's dispatch table.
 *
 * Files: nfssrc.c (open, threads, the event loop), nfsconn.c (the connections),
 * nfswalk.c (the listing), nfsread.c (the reads), over the raw RPC files nfs3dir.c,
 * nfs3read.c, nfs4dir.c, nfs4read.c (and nfs4rpc.c, what the v4 ones share); nfsint.h is
 * what the first four share. Calls go one way, from nfssrc.c down.
 *
 * Walk (io/nfswalk.c): directories are work items; up to source_opts.walkers directory
 * requests are in flight at once, spread over the connections. A directory is listed one
 * page per request with the raw RPC layer: NFSv3 READDIRPLUS, NFSv4 COMPOUND READDIR
 * asking only for type, size, mtime and handle (io/nfs4dir.h; never owners, which
 * makes servers map every entry through NSS). So a huge directory is never held whole:
 * each page's files go to the walking thread as the page arrives, with their size, mtime
 * and file handle as the entry's hint, and at most NFSSRC_PAGES_MAX pages wait there.
 * Reads (io/nfsread.c): a file with a hint is read by its handle, one round trip for a
 * small file (v3 READ; v4 PUTFH + READ with the anonymous stateid + GETATTR, no OPEN),
 * up to 4 READs in flight per file; a file whose attributes changed since its listing,
 * one without a hint, or (v4) one whose server refuses the anonymous stateid, is read by
 * path (open + fstat + pread + close; v4 OPENs and CLOSEs one at a time per connection,
 * as NFSv4.0 sequencing needs). Each read's state (nfsint.h) changes in one setter.
 * At most source_opts.io_depth files are in flight. The byte budget is taken by a budget thread
 * (budget_acquire blocks; the loop never does); completions run on a completion thread.
 * Faults (io/nfsconn.h): a connection that breaks or times out is dropped and mounted
 * again with a backoff (100 ms doubling to 1 s); its requests are retried (up to
 * NFSCONN_RETRIES = 3 times each) on the other connections or once it is back. If no
 * connection is back within the timeout, the source is lost: every read still to
 * complete fails with VHERR_LOST.
 *
 * Threads: the loop, budget and completion threads belong to the source. walk runs in
 * the caller's thread and calls emit there. submit, stop and cancel are thread-safe. */
#ifndef VHPREP_IO_NFSSRC_H
#define VHPREP_IO_NFSSRC_H

#include <stddef.h>

#include "io/source.h"

/* Pages of names that may wait for the walking thread (each at most ~NFSSRC_PAGE_BYTES). */
#define NFSSRC_PAGES_MAX 64
/* READDIRPLUS maxcount asked for (the server may cap it). */
#define NFSSRC_PAGE_BYTES (256 * 1024)

struct nfssrc;

/* Parses url (see io/nfsurl.h), connects and mounts opts->nfs.connections connections
 * (in parallel, bounded by opts->nfs.timeout_ms), checks that the root is a directory
 * and starts the threads. opts->budget is borrowed and must outlive the source.
 * Returns 0 with *out owned by the caller (nfssrc_free), or a negative code with err set
 * to one line: -VHERR_USAGE (bad URL), -VHERR_NET (unreachable, wrong port, timeout),
 * -VHERR_NOENT (unknown export or path), -VHERR_ACCESS, -VHERR_NOTDIR. */
int nfssrc_open(const char *url, const struct source_opts *opts, struct nfssrc **out,
		struct vherr *err);
/* Walks the tree, calling emit (in this thread) for each regular file; returns when the
 * walk is done or stopped and no directory request is in flight: 0, or a negative code
 * with err set if the root could not be listed. Sub-directory errors go to on_error
 * (may be NULL). Call once; stop (nfssrc_stop or emit returning SOURCE_STOP) ends it. */
int nfssrc_walk(struct nfssrc *s, source_emit_fn emit, void *ctx,
		void (*on_error)(void *ctx, const char *relpath, const struct vherr *err),
		struct vherr *err);
/* Submits req (source_read semantics); blocks while io_depth reads are in flight.
 * Returns 0 when req->done will run exactly once (on the completion thread), or
 * -VHERR_CANCELLED when it will not. Thread-safe. */
int nfssrc_submit(struct nfssrc *s, struct source_read *req);
/* Asks the walk to stop soon; reads go on. Thread-safe. */
void nfssrc_stop(struct nfssrc *s);
/* Stops the walk, completes queued and in-flight reads as cancelled, cancels the budget.
 * Thread-safe; idempotent. */
void nfssrc_cancel(struct nfssrc *s);
/* Writes "nfs://host[:port]/path/relpath" (no query) into buf; returns buf. */
char *nfssrc_location(const struct nfssrc *s, const char *relpath, char *buf, size_t size);
/* Stops the threads, unmounts and frees s; s may be NULL. No read may be pending. */
void nfssrc_free(struct nfssrc *s);

#endif
