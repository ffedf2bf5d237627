#include "common/oplat.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "common/vhclock.h"

#define SUB_BITS 3
#define BUCKETS (64 << SUB_BITS)

struct oplat {
	atomic_ullong buckets[OPLAT__COUNT][BUCKETS];
};

struct oplat *oplat_new(void)
{
	return calloc(1, sizeof(struct oplat));
}

void oplat_free(struct oplat *l)
{
	free(l);
}

uint64_t oplat_now(void)
{
	return vhclock_ns();
}

/* Values below 2^SUB_BITS get a bucket each; above, 2^SUB_BITS buckets per octave. */
static unsigned bucket_of(uint64_t v)
{
	unsigned msb;

	if (v < (1u << SUB_BITS))
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	return ((msb - SUB_BITS + 1) << SUB_BITS) |
	       (unsigned)((v >> (msb - SUB_BITS)) & ((1u << SUB_BITS) - 1));
}

/* The middle of a bucket's range. */
static uint64_t bucket_value(unsigned b)
{
	unsigned octave = b >> SUB_BITS, sub = b & ((1u << SUB_BITS) - 1);
	uint64_t lo, width;

	if (octave == 0)
		return b;
	lo = (uint64_t)((1u << SUB_BITS) | sub) << (octave - 1);
	width = (uint64_t)1 << (octave - 1);
	return lo + width / 2;
}

void oplat_record(struct oplat *l, enum oplat_op op, uint64_t ns)
{
	if (l && (unsigned)op < OPLAT__COUNT)
		atomic_fetch_add_explicit(&l->buckets[op][bucket_of(ns)], 1,
					  memory_order_relaxed);
}

uint64_t oplat_count(const struct oplat *l, enum oplat_op op)
{
	uint64_t n = 0;

	for (unsigned b = 0; b < BUCKETS; b++)
		n += atomic_load_explicit(&l->buckets[op][b], memory_order_relaxed);
	return n;
}

uint64_t oplat_quantile(const struct oplat *l, enum oplat_op op, double q)
{
	uint64_t total = oplat_count(l, op), seen = 0, rank;

	if (total == 0)
		return 0;
	rank = (uint64_t)(q * (double)total + 0.5);
	if (rank < 1)
		rank = 1;
	for (unsigned b = 0; b < BUCKETS; b++) {
		seen += atomic_load_explicit(&l->buckets[op][b], memory_order_relaxed);
		if (seen >= rank)
			return bucket_value(b);
	}
	return 0;
}

const char *oplat_name(enum oplat_op op)
{
	static const char *const names[] = {"dir", "open", "read"};

	return (unsigned)op < OPLAT__COUNT ? names[op] : "?";
}
