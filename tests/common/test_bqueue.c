#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bqueue.h"
#include "tests/common/vhtest.h"

#define P(i) ((void *)(uintptr_t)(i))
#define I(p) ((int)(uintptr_t)(p))

/* How long a thread is given to get stuck (it must stay blocked) or to finish. */
#define SETTLE_MS 100

Test(bqueue, fifo_order_and_len)
{
	struct bqueue *q = bqueue_new(4);

	cr_assert_not_null(q);
	cr_assert_eq(bqueue_len(q), 0);
	for (int i = 1; i <= 4; i++)
		cr_assert_eq(bqueue_push(q, P(i)), 0);
	cr_assert_eq(bqueue_len(q), 4);
	for (int i = 1; i <= 4; i++)
		cr_assert_eq(I(bqueue_pop(q)), i);
	cr_assert_eq(bqueue_len(q), 0);
	bqueue_free(q);
}

Test(bqueue, order_kept_across_wraparound)
{
	struct bqueue *q = bqueue_new(3);
	int next_in = 1, next_out = 1;

	/* keep 1..3 items queued while the ring head goes round many times */
	for (int round = 0; round < 100; round++) {
		while (bqueue_len(q) < (size_t)(round % 3 + 1))
			cr_assert_eq(bqueue_push(q, P(next_in++)), 0);
		cr_assert_eq(I(bqueue_pop(q)), next_out++);
	}
	while (bqueue_len(q))
		cr_assert_eq(I(bqueue_pop(q)), next_out++);
	cr_assert_eq(next_in, next_out);
	bqueue_free(q);
}

Test(bqueue, trypop_never_blocks)
{
	struct bqueue *q = bqueue_new(2);

	cr_assert_null(bqueue_trypop(q));
	cr_assert_eq(bqueue_push(q, P(7)), 0);
	cr_assert_eq(bqueue_push(q, P(8)), 0);
	cr_assert_eq(I(bqueue_trypop(q)), 7);
	cr_assert_eq(I(bqueue_trypop(q)), 8);
	cr_assert_null(bqueue_trypop(q));
	cr_assert_eq(bqueue_len(q), 0);
	bqueue_free(q);
}

struct pusher {
	struct bqueue *q;
	void *item;
	atomic_int done;
	int rc;
};

static void *push_thread(void *arg)
{
	struct pusher *p = arg;

	p->rc = bqueue_push(p->q, p->item);
	atomic_store(&p->done, 1);
	return NULL;
}

struct popper {
	struct bqueue *q;
	atomic_int done;
	void *got;
};

static void *pop_thread(void *arg)
{
	struct popper *p = arg;

	p->got = bqueue_pop(p->q);
	atomic_store(&p->done, 1);
	return NULL;
}

Test(bqueue, full_queue_blocks_producer_until_a_pop, .timeout = 10)
{
	struct bqueue *q = bqueue_new(2);
	struct pusher p = {.q = q, .item = P(3)};
	pthread_t t;

	cr_assert_eq(bqueue_push(q, P(1)), 0);
	cr_assert_eq(bqueue_push(q, P(2)), 0);
	cr_assert_eq(pthread_create(&t, NULL, push_thread, &p), 0);
	vht_sleep_ms(SETTLE_MS);
	cr_assert_eq(atomic_load(&p.done), 0, "push into a full queue returned at once");
	cr_assert_eq(bqueue_len(q), 2);

	cr_assert_eq(I(bqueue_pop(q)), 1);
	pthread_join(t, NULL);
	cr_assert_eq(p.rc, 0);
	cr_assert_eq(bqueue_len(q), 2);
	cr_assert_eq(I(bqueue_pop(q)), 2);
	cr_assert_eq(I(bqueue_pop(q)), 3);
	bqueue_free(q);
}

Test(bqueue, close_wakes_blocked_pop, .timeout = 10)
{
	struct bqueue *q = bqueue_new(2);
	struct popper p = {.q = q};
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, pop_thread, &p), 0);
	vht_sleep_ms(SETTLE_MS);
	cr_assert_eq(atomic_load(&p.done), 0, "pop on an empty queue returned at once");
	bqueue_close(q);
	pthread_join(t, NULL);
	cr_assert_null(p.got);
	bqueue_free(q);
}

Test(bqueue, close_wakes_blocked_push_which_fails, .timeout = 10)
{
	struct bqueue *q = bqueue_new(1);
	struct pusher p = {.q = q, .item = P(2)};
	pthread_t t;

	cr_assert_eq(bqueue_push(q, P(1)), 0);
	cr_assert_eq(pthread_create(&t, NULL, push_thread, &p), 0);
	vht_sleep_ms(SETTLE_MS);
	cr_assert_eq(atomic_load(&p.done), 0);
	bqueue_close(q);
	pthread_join(t, NULL);
	cr_assert_eq(p.rc, -1, "a push woken by close must fail (the caller keeps the item)");
	/* what was queued before the close drains, then NULL */
	cr_assert_eq(I(bqueue_pop(q)), 1);
	cr_assert_null(bqueue_pop(q));
	bqueue_free(q);
}

Test(bqueue, closed_queue_drains_then_returns_null, .timeout = 10)
{
	struct bqueue *q = bqueue_new(4);

	cr_assert_eq(bqueue_push(q, P(1)), 0);
	cr_assert_eq(bqueue_push(q, P(2)), 0);
	bqueue_close(q);
	bqueue_close(q); /* idempotent */
	cr_assert_eq(bqueue_push(q, P(3)), -1);
	cr_assert_eq(bqueue_len(q), 2);
	cr_assert_eq(I(bqueue_pop(q)), 1);
	cr_assert_eq(I(bqueue_trypop(q)), 2);
	cr_assert_null(bqueue_pop(q));
	cr_assert_null(bqueue_trypop(q));
	bqueue_free(q);
}

Test(bqueue, close_wakes_every_blocked_popper, .timeout = 10)
{
	struct bqueue *q = bqueue_new(1);
	struct popper p[4];
	pthread_t t[4];

	for (int i = 0; i < 4; i++) {
		p[i] = (struct popper){.q = q};
		cr_assert_eq(pthread_create(&t[i], NULL, pop_thread, &p[i]), 0);
	}
	vht_sleep_ms(SETTLE_MS);
	bqueue_close(q);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_null(p[i].got);
	}
	bqueue_free(q);
}

Test(bqueue, free_accepts_null)
{
	bqueue_free(NULL);
}

/* Many producers and consumers through a small queue: every item arrives exactly once,
 * and each consumer sees each producer's items in the order they were pushed. */
#define NPROD	 4
#define NCONS	 4
#define PER_PROD 20000

struct mpmc {
	struct bqueue *q;
	atomic_int seen[NPROD * PER_PROD];
	atomic_int order_errors;
};

struct prod_arg {
	struct mpmc *m;
	int id;
};

static void *mpmc_producer(void *arg)
{
	struct prod_arg *a = arg;

	for (int i = 0; i < PER_PROD; i++)
		/* +1: the queue takes non-NULL pointers only */
		if (bqueue_push(a->m->q, P(a->id * PER_PROD + i + 1)) != 0)
			atomic_fetch_add(&a->m->order_errors, 1);
	return NULL;
}

static void *mpmc_consumer(void *arg)
{
	struct mpmc *m = arg;
	int last[NPROD];
	void *p;

	for (int i = 0; i < NPROD; i++)
		last[i] = -1;
	while ((p = bqueue_pop(m->q))) {
		int v = I(p) - 1, prod = v / PER_PROD, seq = v % PER_PROD;

		atomic_fetch_add(&m->seen[v], 1);
		if (seq <= last[prod])
			atomic_fetch_add(&m->order_errors, 1);
		last[prod] = seq;
	}
	return NULL;
}

/* NPROD producers and NCONS consumers (each running consumer) through a queue of 8:
 * every item is seen exactly once (and mpmc_consumer checks each producer's order). */
static void mpmc_run(void *(*consumer)(void *))
{
	static struct mpmc m;
	struct prod_arg pa[NPROD];
	pthread_t prod[NPROD], cons[NCONS];

	memset(&m, 0, sizeof(m));
	m.q = bqueue_new(8);
	for (int i = 0; i < NCONS; i++)
		cr_assert_eq(pthread_create(&cons[i], NULL, consumer, &m), 0);
	for (int i = 0; i < NPROD; i++) {
		pa[i] = (struct prod_arg){.m = &m, .id = i};
		cr_assert_eq(pthread_create(&prod[i], NULL, mpmc_producer, &pa[i]), 0);
	}
	for (int i = 0; i < NPROD; i++)
		pthread_join(prod[i], NULL);
	bqueue_close(m.q);
	for (int i = 0; i < NCONS; i++)
		pthread_join(cons[i], NULL);
	cr_assert_eq(atomic_load(&m.order_errors), 0);
	for (int i = 0; i < NPROD * PER_PROD; i++)
		cr_assert_eq(atomic_load(&m.seen[i]), 1, "item %d seen %d times", i,
			     atomic_load(&m.seen[i]));
	bqueue_free(m.q);
}

Test(bqueue, many_producers_many_consumers_exactly_once, .timeout = 60)
{
	mpmc_run(mpmc_consumer);
}

Test(bqueue, pop_many_takes_up_to_max_and_a_fair_share)
{
	struct bqueue *q = bqueue_new(16);
	void *out[16];

	for (int i = 1; i <= 10; i++)
		cr_assert_eq(bqueue_push(q, P(i)), 0);
	cr_assert_eq(bqueue_pop_many(q, out, 3, 0), 3); /* max */
	cr_assert_eq(I(out[0]), 1);
	cr_assert_eq(I(out[2]), 3);
	cr_assert_eq(bqueue_pop_many(q, out, 16, 2), 4); /* half of 7, rounded up */
	cr_assert_eq(I(out[0]), 4);
	cr_assert_eq(I(out[3]), 7);
	cr_assert_eq(bqueue_pop_many(q, out, 16, 1), 3); /* the rest */
	cr_assert_eq(I(out[2]), 10);
	bqueue_close(q);
	cr_assert_eq(bqueue_pop_many(q, out, 16, 2), 0);
	bqueue_free(q);
}

/* A producer blocked on a full queue wakes once the queue has drained to half, not at
 * the first pop (so it pushes a run per wake-up), and never later than that. */
Test(bqueue, blocked_producer_wakes_at_the_low_mark, .timeout = 10)
{
	struct bqueue *q = bqueue_new(4);
	struct pusher p = {.q = q, .item = P(5)};
	pthread_t t;

	for (int i = 1; i <= 4; i++)
		cr_assert_eq(bqueue_push(q, P(i)), 0);
	cr_assert_eq(pthread_create(&t, NULL, push_thread, &p), 0);
	vht_sleep_ms(SETTLE_MS);
	cr_assert_eq(I(bqueue_pop(q)), 1);
	vht_sleep_ms(SETTLE_MS);
	cr_assert_eq(atomic_load(&p.done), 0, "woken above the low mark");
	cr_assert_eq(I(bqueue_pop(q)), 2);
	pthread_join(t, NULL);
	cr_assert_eq(p.rc, 0);
	cr_assert_eq(bqueue_len(q), 3);
	bqueue_free(q);
}

/* Consumers asleep on an empty queue all wake when enough items come: the one wake-up in
 * flight is handed on by each consumer that finds more queued. */
Test(bqueue, a_burst_wakes_every_sleeping_consumer, .timeout = 10)
{
	struct bqueue *q = bqueue_new(8);
	struct popper p[4];
	pthread_t t[4];
	int sum = 0;

	for (int i = 0; i < 4; i++) {
		p[i] = (struct popper){.q = q};
		cr_assert_eq(pthread_create(&t[i], NULL, pop_thread, &p[i]), 0);
	}
	vht_sleep_ms(SETTLE_MS);
	for (int i = 1; i <= 4; i++)
		cr_assert_eq(bqueue_push(q, P(i)), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		sum += I(p[i].got);
	}
	cr_assert_eq(sum, 1 + 2 + 3 + 4);
	bqueue_free(q);
}

static void *mpmc_batch_consumer(void *arg)
{
	struct mpmc *m = arg;
	void *out[5];
	size_t n;

	while ((n = bqueue_pop_many(m->q, out, 5, NCONS)))
		for (size_t i = 0; i < n; i++)
			atomic_fetch_add(&m->seen[I(out[i]) - 1], 1);
	return NULL;
}

Test(bqueue, pop_many_consumers_see_every_item_exactly_once, .timeout = 60)
{
	mpmc_run(mpmc_batch_consumer);
}
