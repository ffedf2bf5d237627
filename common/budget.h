/* budget: a byte budget shared by the readers (who acquire before reading a file) and
 * the workers (who release once the file's buffer is gone): reads never run more than
 * cap bytes ahead of the workers. */
#ifndef VHPREP_COMMON_BUDGET_H
#define VHPREP_COMMON_BUDGET_H

#include <stdint.h>

struct budget;

/* Returns a budget of cap bytes (>= 1), or NULL on allocation failure. */
struct budget *budget_new(uint64_t cap);
/* Frees b; b may be NULL. */
void budget_free(struct budget *b);
/* Takes n bytes, blocking until they fit. A request larger than cap is granted when
 * nothing else is held, so one huge file never deadlocks. Returns 0, or -1 once the
 * budget is cancelled (nothing taken). Any thread. */
int budget_acquire(struct budget *b, uint64_t n);
/* Takes n bytes if they fit now (the same rule as budget_acquire), never blocking:
 * returns 0 when taken, -1 when not (full or cancelled). Any thread; for event loops,
 * which must not block. */
int budget_try_acquire(struct budget *b, uint64_t n);
/* Gives back n bytes taken by budget_acquire. Any thread. */
void budget_release(struct budget *b, uint64_t n);
/* Wakes every waiter; later acquires fail. Releases still work. Idempotent. */
void budget_cancel(struct budget *b);
/* Returns the bytes held now (a snapshot). */
uint64_t budget_used(struct budget *b);

#endif
