#include "bench/latencyfs/lfsdelay.h"

#include <errno.h>
#include <time.h>

static uint64_t ms_to_ns(double ms)
{
	return (uint64_t)(ms * 1e6 + 0.5);
}

void lfsdelay_init(struct lfsdelay *d, double delay_ms, double jitter_ms)
{
	d->base_ns = ms_to_ns(delay_ms);
	d->jitter_ns = ms_to_ns(jitter_ms);
	atomic_init(&d->seq, 0);
}

/* splitmix64 over a shared counter: lock-free, well mixed, no per-thread state. */
static uint64_t next_random(struct lfsdelay *d)
{
	uint64_t z = atomic_fetch_add_explicit(&d->seq, 0x9e3779b97f4a7c15ULL,
					       memory_order_relaxed);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t draw_ns(struct lfsdelay *d)
{
	uint64_t span, r;

	if (d->jitter_ns == 0)
		return d->base_ns;
	span = 2 * d->jitter_ns + 1;
	r = next_random(d) % span; /* 0 .. 2*jitter */
	if (d->base_ns + r < d->jitter_ns)
		return 0;
	return d->base_ns + r - d->jitter_ns;
}

void lfsdelay_wait(struct lfsdelay *d)
{
	uint64_t ns = draw_ns(d);
	struct timespec left = {
		.tv_sec = (time_t)(ns / 1000000000ULL),
		.tv_nsec = (long)(ns % 1000000000ULL),
	};

	if (ns == 0)
		return;
	while (nanosleep(&left, &left) < 0 && errno == EINTR)
		;
}
