/* bqueue: a bounded blocking FIFO of pointers, many producers and many consumers.
 * The capacity is fixed at creation; a full queue blocks producers (back-pressure).
 * One mutex per queue, held only to move pointers: never during work. Wake-ups are
 * rationed (see bqueue.c): at most one sleeping consumer is being woken at a time and
 * blocked producers wake when the queue has drained to half, so a busy queue costs few
 * futex calls per item. */
#ifndef VHPREP_COMMON_BQUEUE_H
#define VHPREP_COMMON_BQUEUE_H

#include <stddef.h>

struct bqueue;

/* Returns a queue of capacity cap (>= 1), or NULL on allocation failure. */
struct bqueue *bqueue_new(size_t cap);
/* Frees q; q may be NULL. The queue must be empty or its items owned elsewhere. */
void bqueue_free(struct bqueue *q);
/* Appends p (non-NULL), blocking while full. Returns 0, or -1 if the queue is closed
 * (then the caller still owns p). Any thread. */
int bqueue_push(struct bqueue *q, void *p);
/* Removes the oldest pointer, blocking while empty. Returns NULL once the queue is
 * closed and empty. Any thread. */
void *bqueue_pop(struct bqueue *q);
/* Like bqueue_pop, but takes up to max (>= 1) of the oldest pointers into out at once,
 * and at most a 1/share part (rounded up) of what is queued, so that share consumers
 * (share 0 or 1: no limit) each get some. Returns how many (>= 1), or 0 once the queue
 * is closed and empty. Any thread. */
size_t bqueue_pop_many(struct bqueue *q, void **out, size_t max, size_t share);
/* Like bqueue_pop but never blocks: NULL when empty. */
void *bqueue_trypop(struct bqueue *q);
/* Closes q: later pushes fail, pops drain what is left then return NULL. Idempotent. */
void bqueue_close(struct bqueue *q);
/* Returns the number of queued pointers (a snapshot). */
size_t bqueue_len(struct bqueue *q);

#endif
