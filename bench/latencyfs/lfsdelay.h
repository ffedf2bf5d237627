/* lfsdelay: one emulated network round trip, slept in the calling (serving) thread, so
 * N requests served by N threads at once cost one delay, not N. */
#ifndef VHPREP_BENCH_LFSDELAY_H
#define VHPREP_BENCH_LFSDELAY_H

#include <stdatomic.h>
#include <stdint.h>

struct lfsdelay {
	uint64_t base_ns;   /* set at creation */
	uint64_t jitter_ns; /* set at creation */
	_Atomic uint64_t seq; /* jitter sequence, any thread */
};

/* Sets d to sleep delay_ms plus a uniform jitter in [-jitter_ms, +jitter_ms] (never below
 * zero); both are >= 0. Call before any thread uses d. */
void lfsdelay_init(struct lfsdelay *d, double delay_ms, double jitter_ms);
/* Sleeps one round trip (nothing when the delay and jitter are 0). Any thread. */
void lfsdelay_wait(struct lfsdelay *d);

#endif
