/* iopool: opens and reads whole files on a pool of I/O threads, io_depth at a time,
 * apart from the CPU workers: on a network mount each open/read is a round trip, and
 * only many requests in flight hide it. Reads are bounded by a shared byte budget. */
#ifndef VHPREP_IO_IOPOOL_H
#define VHPREP_IO_IOPOOL_H

#include "io/source.h"

struct iopool;

/* Starts depth threads reading files relative to rootfd (borrowed, must outlive the
 * pool), taking bytes from budget (borrowed) before each read and recording open and
 * read latencies in lat (borrowed; NULL: none). NULL on failure. */
struct iopool *iopool_new(int rootfd, int depth, struct budget *budget, struct oplat *lat);
/* Queues req (see struct source_read); blocks while depth requests wait already.
 * Returns 0 when req->done will run exactly once, -VHERR_CANCELLED when it will not. */
int iopool_submit(struct iopool *p, struct source_read *req);
/* Makes queued and later requests complete at once as cancelled. Thread-safe. */
void iopool_stop(struct iopool *p);
/* Completes what is queued, joins the threads and frees p; p may be NULL. */
void iopool_free(struct iopool *p);

/* Reads req->relpath under rootfd synchronously (what each pool thread does); fills req's
 * result fields. budget and lat may be NULL. Exposed for tests and single-threaded
 * callers. */
void iopool_read_one(int rootfd, struct budget *budget, struct oplat *lat,
		     struct source_read *req);

#endif
