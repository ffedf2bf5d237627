#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/budget.h"
#include "tests/common/vhtest.h"

#define SETTLE_MS 100

struct acquirer {
	struct budget *b;
	uint64_t n;
	atomic_int done;
	int rc;
};

static void *acquire_thread(void *arg)
{
	struct acquirer *a = arg;

	a->rc = budget_acquire(a->b, a->n);
	atomic_store(&a->done, 1);
	return NULL;
}

static void start(pthread_t *t, struct acquirer *a, struct budget *b, uint64_t n)
{
	*a = (struct acquirer){.b = b, .n = n};
	cr_assert_eq(pthread_create(t, NULL, acquire_thread, a), 0);
}

Test(budget, acquire_release_accounting)
{
	struct budget *b = budget_new(100);

	cr_assert_not_null(b);
	cr_assert_eq(budget_used(b), 0);
	cr_assert_eq(budget_acquire(b, 30), 0);
	cr_assert_eq(budget_acquire(b, 50), 0);
	cr_assert_eq(budget_used(b), 80);
	cr_assert_eq(budget_acquire(b, 20), 0, "a request that fills the cap exactly fits");
	cr_assert_eq(budget_used(b), 100);
	budget_release(b, 30);
	cr_assert_eq(budget_used(b), 70);
	budget_release(b, 50);
	budget_release(b, 20);
	cr_assert_eq(budget_used(b), 0);
	cr_assert_eq(budget_acquire(b, 0), 0, "an empty file takes nothing");
	cr_assert_eq(budget_used(b), 0);
	budget_free(b);
}

Test(budget, oversize_request_granted_when_empty, .timeout = 10)
{
	struct budget *b = budget_new(100);
	struct acquirer a;
	pthread_t t;

	cr_assert_eq(budget_acquire(b, 1000), 0, "one huge file must not deadlock");
	cr_assert_eq(budget_used(b), 1000);
	/* while the huge one is held, even a small request waits */
	start(&t, &a, b, 1);
	vht_sleep_ms(SETTLE_MS);
	cr_assert_eq(atomic_load(&a.done), 0, "acquire ran while the budget was over its cap");
	budget_release(b, 1000);
	pthread_join(t, NULL);
	cr_assert_eq(a.rc, 0);
	cr_assert_eq(budget_used(b), 1);
	budget_free(b);
}

Test(budget, oversize_request_waits_while_anything_is_held, .timeout = 10)
{
	struct budget *b = budget_new(100);
	struct acquirer a;
	pthread_t t;

	cr_assert_eq(budget_acquire(b, 10), 0);
	start(&t, &a, b, 1000);
	vht_sleep_ms(SETTLE_MS);
	cr_assert_eq(atomic_load(&a.done), 0, "an oversize request was granted beside another");
	cr_assert_eq(budget_used(b), 10);
	budget_release(b, 10);
	pthread_join(t, NULL);
	cr_assert_eq(a.rc, 0);
	cr_assert_eq(budget_used(b), 1000);
	budget_free(b);
}

Test(budget, blocked_acquire_woken_by_release, .timeout = 10)
{
	struct budget *b = budget_new(100);
	struct acquirer a;
	pthread_t t;

	cr_assert_eq(budget_acquire(b, 80), 0);
	start(&t, &a, b, 30);
	vht_sleep_ms(SETTLE_MS);
	cr_assert_eq(atomic_load(&a.done), 0, "80 + 30 > 100 must wait");
	cr_assert_eq(budget_used(b), 80);
	budget_release(b, 40); /* 40 + 30 fits now */
	pthread_join(t, NULL);
	cr_assert_eq(a.rc, 0);
	cr_assert_eq(budget_used(b), 70);
	budget_free(b);
}

Test(budget, cancel_fails_waiters_and_later_acquires, .timeout = 10)
{
	struct budget *b = budget_new(100);
	struct acquirer a[3];
	pthread_t t[3];

	cr_assert_eq(budget_acquire(b, 90), 0);
	for (int i = 0; i < 3; i++)
		start(&t[i], &a[i], b, 50);
	vht_sleep_ms(SETTLE_MS);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(atomic_load(&a[i].done), 0);
	budget_cancel(b);
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(a[i].rc, -1, "waiter %d: a cancelled acquire must fail", i);
	}
	cr_assert_eq(budget_used(b), 90, "a failed acquire must take nothing");
	cr_assert_eq(budget_acquire(b, 1), -1, "acquire after cancel fails even when it fits");
	budget_cancel(b);      /* idempotent */
	budget_release(b, 90); /* releases still work */
	cr_assert_eq(budget_used(b), 0);
	cr_assert_eq(budget_acquire(b, 1), -1);
	budget_free(b);
}

Test(budget, free_accepts_null)
{
	budget_free(NULL);
}

/* The cap is never exceeded by requests that fit it: 8 threads take and give back sizes
 * up to the cap, and each checks, while it holds its share, that the shares held at once
 * add up to no more than the cap. */
#define STRESS_THREADS 8
#define STRESS_ROUNDS  3000
#define STRESS_CAP     1000

struct stress {
	struct budget *b;
	atomic_ullong held;
	atomic_int violations;
};

static void *stress_thread(void *arg)
{
	struct stress *s = arg;
	unsigned seed = (unsigned)(uintptr_t)&seed; /* differs per thread stack */

	for (int i = 0; i < STRESS_ROUNDS; i++) {
		uint64_t n = (uint64_t)(rand_r(&seed) % STRESS_CAP) + 1;

		if (budget_acquire(s->b, n) != 0) {
			atomic_fetch_add(&s->violations, 1);
			return NULL;
		}
		if (atomic_fetch_add(&s->held, n) + n > STRESS_CAP)
			atomic_fetch_add(&s->violations, 1);
		atomic_fetch_sub(&s->held, n);
		budget_release(s->b, n);
	}
	return NULL;
}

Test(budget, cap_never_exceeded_under_contention, .timeout = 60)
{
	struct stress s = {.b = budget_new(STRESS_CAP)};
	pthread_t t[STRESS_THREADS];

	for (int i = 0; i < STRESS_THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, stress_thread, &s), 0);
	for (int i = 0; i < STRESS_THREADS; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&s.violations), 0);
	cr_assert_eq(budget_used(s.b), 0);
	budget_free(s.b);
}

/* A request near UINT64_MAX while something is held: used + n wraps around in
 * budget_acquire's "used + n > cap" test, and the request is granted beside the held
 * bytes (the contract says an oversize request is granted only when nothing is held). */
Test(budget, huge_request_does_not_wrap_the_cap_check, .timeout = 10)
{
	struct budget *b = budget_new(100);
	struct acquirer a;
	pthread_t t;

	cr_assert_eq(budget_acquire(b, 10), 0);
	start(&t, &a, b, UINT64_MAX - 5);
	vht_sleep_ms(SETTLE_MS);
	cr_expect_eq(atomic_load(&a.done), 0,
		     "acquire(UINT64_MAX - 5) was granted while 10 bytes were held "
		     "(used + n overflowed): used is now %llu",
		     (unsigned long long)budget_used(b));
	budget_cancel(b);
	pthread_join(t, NULL);
	budget_free(b);
}

Test(budget, try_acquire_never_blocks)
{
	struct budget *b = budget_new(100);

	cr_assert_eq(budget_try_acquire(b, 60), 0);
	cr_assert_eq(budget_try_acquire(b, 41), -1, "61 + 41 > 100: refused, not waited for");
	cr_assert_eq(budget_used(b), 60, "a refused try takes nothing");
	cr_assert_eq(budget_try_acquire(b, 40), 0);
	budget_release(b, 100);
	cr_assert_eq(budget_try_acquire(b, 500), 0, "oversize is granted when nothing is held");
	cr_assert_eq(budget_try_acquire(b, 1), -1);
	budget_release(b, 500);
	budget_cancel(b);
	cr_assert_eq(budget_try_acquire(b, 1), -1, "a cancelled budget grants nothing");
	budget_free(b);
}
