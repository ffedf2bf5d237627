#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "common/htab.h"

struct rec {
	uint64_t value;
	char tag[12];
};

Test(htab, insert_find_and_zeroed_records)
{
	struct htab *h = htab_new(sizeof(struct rec));
	struct htab_stripe *s;
	struct rec *r;
	int added;

	cr_assert_not_null(h);
	s = htab_lock(h, 42);
	cr_assert_null(htab_find(s, 42));
	r = htab_insert(s, 42, &added);
	cr_assert_not_null(r);
	cr_assert_eq(added, 1);
	cr_assert_eq(r->value, 0);
	cr_assert_eq(r->tag[0], 0);
	r->value = 7;
	cr_assert_eq(htab_insert(s, 42, &added), r);
	cr_assert_eq(added, 0);
	htab_unlock(s);
	s = htab_lock(h, 42);
	cr_assert_eq(((struct rec *)htab_find(s, 42))->value, 7);
	htab_unlock(s);
	cr_assert_eq(htab_count(h), 1);
	htab_free(h);
	htab_free(NULL);
}

/* Key 0 is reserved for empty slots: it is stored as 1, so both name one record. */
Test(htab, key_zero_is_usable)
{
	struct htab *h = htab_new(8);
	struct htab_stripe *s = htab_lock(h, 0);

	cr_assert_not_null(htab_insert(s, 0, NULL));
	htab_unlock(s);
	s = htab_lock(h, 1);
	cr_assert_not_null(htab_find(s, 1));
	htab_unlock(s);
	htab_free(h);
}

static int sum_values(void *ctx, uint64_t key, void *value)
{
	(void)key;
	*(uint64_t *)ctx += ((struct rec *)value)->value;
	return 0;
}

/* Growth keeps every record: 200,000 keys (many times a stripe's first size), each
 * found again with its value, and foreach visits each once. */
Test(htab, grows_without_losing_records)
{
	struct htab *h = htab_new(sizeof(struct rec));
	uint64_t sum = 0, want = 0;

	for (uint64_t k = 1; k <= 200000; k++) {
		struct htab_stripe *s = htab_lock(h, k * 0x9e3779b97f4a7c15ULL);
		struct rec *r = htab_insert(s, k * 0x9e3779b97f4a7c15ULL, NULL);

		r->value = k;
		want += k;
		htab_unlock(s);
	}
	cr_assert_eq(htab_count(h), 200000);
	for (uint64_t k = 1; k <= 200000; k++) {
		struct htab_stripe *s = htab_lock(h, k * 0x9e3779b97f4a7c15ULL);
		struct rec *r = htab_find(s, k * 0x9e3779b97f4a7c15ULL);

		cr_assert_not_null(r, "key %llu lost", (unsigned long long)k);
		cr_assert_eq(r->value, k);
		htab_unlock(s);
	}
	cr_assert_eq(htab_foreach(h, sum_values, &sum), 0);
	cr_assert_eq(sum, want);
	htab_free(h);
}

struct worker {
	struct htab *h;
	uint64_t base;
};

static void *insert_many(void *arg)
{
	struct worker *w = arg;

	for (uint64_t k = 0; k < 50000; k++) {
		/* every thread also touches a shared key range: counted once */
		uint64_t key = k % 2 ? w->base + k : k;
		struct htab_stripe *s = htab_lock(w->h, key);
		struct rec *r = htab_insert(s, key, NULL);

		r->value++;
		htab_unlock(s);
	}
	return NULL;
}

/* Eight threads insert disjoint and shared keys at once: the count is exact and every
 * shared record saw every thread. */
Test(htab, concurrent_inserts)
{
	struct htab *h = htab_new(sizeof(struct rec));
	struct worker w[8];
	pthread_t t[8];

	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){h, (uint64_t)(i + 1) << 40};
		cr_assert_eq(pthread_create(&t[i], NULL, insert_many, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(htab_count(h), 25000 + 8 * 25000);
	for (uint64_t k = 0; k < 50000; k += 2) {
		struct htab_stripe *s = htab_lock(h, k);

		cr_assert_eq(((struct rec *)htab_find(s, k))->value, 8);
		htab_unlock(s);
	}
	htab_free(h);
}
