/* mkrng: the deterministic random numbers of vhprep-mkimages (splitmix64).
 *
 * State is one uint64_t owned by the caller; no globals, so each generated file draws from
 * its own stream (seeded from the run seed and the file's index) and the result does not
 * depend on which thread made it or in what order. */
#ifndef VHPREP_BENCH_MKRNG_H
#define VHPREP_BENCH_MKRNG_H

#include <stdint.h>

/* Next 64 random bits; advances *state. */
static inline uint64_t mkrng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A seed for stream `index` of run seed `seed` under a salt (one salt per preset). */
static inline uint64_t mkrng_seed(uint64_t seed, uint64_t salt, uint64_t index)
{
	uint64_t s = seed ^ (salt * 0xd1b54a32d192ed03ULL);
	mkrng_next(&s);
	s ^= index * 0x9e3779b97f4a7c15ULL;
	return mkrng_next(&s);
}

/* Uniform double in [0, 1). */
static inline double mkrng_unit(uint64_t *state)
{
	return (double)(mkrng_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform int in [lo, hi] (inclusive); lo <= hi. */
static inline int mkrng_range(uint64_t *state, int lo, int hi)
{
	return lo + (int)(mkrng_next(state) % (uint64_t)(hi - lo + 1));
}

/* A seed for a libvips operation (gint). */
static inline int mkrng_vseed(uint64_t *state)
{
	return (int)(mkrng_next(state) & 0x7fffffff);
}

#endif
