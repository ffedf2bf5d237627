/* vhclock: the one monotonic clock of the project (CLOCK_MONOTONIC: never steps with the
 * wall clock), for timeouts, backoffs, latencies and durations. Any thread. */
#ifndef VHPREP_COMMON_VHCLOCK_H
#define VHPREP_COMMON_VHCLOCK_H

#include <stdint.h>

/* Returns the monotonic clock in nanoseconds (from an unspecified start). */
uint64_t vhclock_ns(void);
/* Returns the monotonic clock in milliseconds (vhclock_ns() / 1e6). */
uint64_t vhclock_ms(void);

#endif
