/* waitgroup: a count of operations in flight that one thread can wait to reach zero.
 * Adding and finishing are one atomic each; the lock is taken only when the count
 * reaches zero, so a waiter, which checks the count under the same lock, never misses
 * the wake-up. */
#ifndef VHPREP_COMMON_WAITGROUP_H
#define VHPREP_COMMON_WAITGROUP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct waitgroup {
	atomic_ullong n;      /* operations in flight */
	pthread_mutex_t lock; /* the zero wait */
	pthread_cond_t zero;  /* broadcast (under lock) when n reaches 0 */
};

/* Initialises wg with nothing in flight. */
void waitgroup_init(struct waitgroup *wg);
/* Releases wg's lock and condition; nothing may be in flight or waiting. */
void waitgroup_destroy(struct waitgroup *wg);
/* Counts one more operation in flight. Any thread. */
void waitgroup_add(struct waitgroup *wg);
/* Counts one operation done; wakes the waiters when none is left. Any thread. */
void waitgroup_done(struct waitgroup *wg);
/* Blocks until nothing is in flight. */
void waitgroup_wait(struct waitgroup *wg);
/* Returns the operations in flight (a snapshot). */
uint64_t waitgroup_count(struct waitgroup *wg);

#endif
