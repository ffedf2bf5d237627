/* vhclock: CLOCK_MONOTONIC in ns and ms (see vhclock.h). */
#include "common/vhclock.h"

#include <time.h>

uint64_t vhclock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t vhclock_ms(void)
{
	return vhclock_ns() / 1000000u;
}
