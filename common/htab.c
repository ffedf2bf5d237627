#include "common/htab.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* 256 stripes: with 64 threads two land on one stripe about 1 time in 4 at any instant,
 * and an empty table costs 256 small arrays. */
#define STRIPE_BITS   8
#define NSTRIPES      (1u << STRIPE_BITS)
#define INITIAL_SLOTS 16

struct htab_stripe {
	pthread_mutex_t lock;
	size_t slot_size; /* set at creation: 8-byte key, then the record */
	size_t nslots;	  /* under lock: a power of two, or 0 before the first insert */
	size_t used;	  /* under lock */
	uint8_t *slots;	  /* under lock */
	atomic_uint_least64_t *count; /* set at creation: the table's total */
};

struct htab {
	size_t value_size;	     /* set at creation */
	atomic_uint_least64_t count; /* records in all stripes */
	struct htab_stripe stripes[NSTRIPES];
};

static uint64_t fix_key(uint64_t key)
{
	return key ? key : 1;
}

/* Spreads the key's bits so that probing does not depend on how the caller hashed. */
static uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k;
}

static uint64_t *slot_key(struct htab_stripe *s, uint8_t *slots, size_t i)
{
	return (uint64_t *)(void *)(slots + i * s->slot_size);
}

struct htab *htab_new(size_t value_size)
{
	struct htab *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->value_size = value_size ? value_size : 1;
	for (unsigned i = 0; i < NSTRIPES; i++) {
		struct htab_stripe *s = &h->stripes[i];

		pthread_mutex_init(&s->lock, NULL);
		/* records stay 8-byte aligned */
		s->slot_size = 8 + (h->value_size + 7) / 8 * 8;
		s->count = &h->count;
	}
	return h;
}

void htab_free(struct htab *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < NSTRIPES; i++) {
		pthread_mutex_destroy(&h->stripes[i].lock);
		free(h->stripes[i].slots);
	}
	free(h);
}

struct htab_stripe *htab_lock(struct htab *h, uint64_t key)
{
	struct htab_stripe *s = &h->stripes[mix(fix_key(key)) >> (64 - STRIPE_BITS)];

	pthread_mutex_lock(&s->lock);
	return s;
}

void htab_unlock(struct htab_stripe *s)
{
	pthread_mutex_unlock(&s->lock);
}

/* The slot holding key, or the empty slot where it would go. nslots > 0. */
static size_t probe(struct htab_stripe *s, uint8_t *slots, size_t nslots, uint64_t key)
{
	size_t i = (size_t)mix(key) & (nslots - 1);

	while (*slot_key(s, slots, i) != 0 && *slot_key(s, slots, i) != key)
		i = (i + 1) & (nslots - 1);
	return i;
}

void *htab_find(struct htab_stripe *s, uint64_t key)
{
	size_t i;

	key = fix_key(key);
	if (!s->nslots)
		return NULL;
	i = probe(s, s->slots, s->nslots, key);
	return *slot_key(s, s->slots, i) ? s->slots + i * s->slot_size + 8 : NULL;
}

static int grow(struct htab_stripe *s)
{
	size_t n = s->nslots ? s->nslots * 2 : INITIAL_SLOTS;
	uint8_t *slots = calloc(n, s->slot_size);

	if (!slots)
		return -1;
	for (size_t i = 0; i < s->nslots; i++) {
		uint64_t key = *slot_key(s, s->slots, i);

		if (key)
			memcpy(slots + probe(s, slots, n, key) * s->slot_size,
			       s->slots + i * s->slot_size, s->slot_size);
	}
	free(s->slots);
	s->slots = slots;
	s->nslots = n;
	return 0;
}

void *htab_insert(struct htab_stripe *s, uint64_t key, int *added)
{
	void *v;
	size_t i;

	key = fix_key(key);
	if (added)
		*added = 0;
	if ((v = htab_find(s, key)))
		return v;
	if ((s->used + 1) * 10 > s->nslots * 7 && grow(s) < 0)
		return NULL;
	i = probe(s, s->slots, s->nslots, key);
	*slot_key(s, s->slots, i) = key;
	s->used++;
	atomic_fetch_add(s->count, 1);
	if (added)
		*added = 1;
	return s->slots + i * s->slot_size + 8;
}

uint64_t htab_count(struct htab *h)
{
	return atomic_load(&h->count);
}

int htab_foreach(struct htab *h, int (*fn)(void *ctx, uint64_t key, void *value), void *ctx)
{
	int rc = 0;

	for (unsigned i = 0; i < NSTRIPES && rc == 0; i++) {
		struct htab_stripe *s = &h->stripes[i];

		pthread_mutex_lock(&s->lock);
		for (size_t j = 0; j < s->nslots && rc == 0; j++) {
			uint64_t key = *slot_key(s, s->slots, j);

			if (key)
				rc = fn(ctx, key, s->slots + j * s->slot_size + 8);
		}
		pthread_mutex_unlock(&s->lock);
	}
	return rc;
}
