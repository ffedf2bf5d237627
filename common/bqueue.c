#include "common/bqueue.h"

#include <pthread.h>
#include <stdlib.h>

/* Wake-ups: a push wakes a sleeping consumer only when no wake-up sent earlier is still
 * on its way (pop_waking); the consumer that wakes and finds more queued passes the
 * wake-up on. A burst of pushes that lands while a woken consumer has not run yet thus
 * costs one futex wake, not one per item, and a consumer that keeps finding work never
 * sleeps. Producers blocked on a full queue are woken only once it has drained to its
 * low mark (cap - cap / 2 free slots), then in a chain while room lasts, so a producer
 * pushes a run of items per wake-up instead of one. Measured with
 * bench/overhead-bench.sh (futex calls per file). */
struct bqueue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty; /* consumers sleep here */
	pthread_cond_t not_full;  /* producers sleep here */
	size_t cap;               /* set at creation */
	size_t low;               /* set at creation: sleeping producers are woken at len <= low */
	size_t head, len;         /* under lock */
	int closed;               /* under lock */
	int pop_sleepers;         /* under lock: consumers in pthread_cond_wait */
	int push_sleepers;        /* under lock: producers in pthread_cond_wait */
	int pop_waking;           /* under lock: a consumer was signalled and has not woken */
	int push_waking;          /* under lock: a producer was signalled and has not woken */
	void **slots;             /* set at creation, contents under lock */
};

struct bqueue *bqueue_new(size_t cap)
{
	struct bqueue *q;

	if (cap == 0)
		cap = 1;
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->slots = calloc(cap, sizeof(*q->slots));
	if (!q->slots) {
		free(q);
		return NULL;
	}
	q->cap = cap;
	q->low = cap / 2;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	return q;
}

void bqueue_free(struct bqueue *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	free(q->slots);
	free(q);
}

/* Wakes one sleeping consumer if there is work for it and no wake-up is on its way. */
static void wake_consumer_locked(struct bqueue *q)
{
	if (q->len && q->pop_sleepers && !q->pop_waking) {
		q->pop_waking = 1;
		pthread_cond_signal(&q->not_empty);
	}
}

/* Wakes one sleeping producer if there is room (at the low mark, or when handing on a
 * wake-up: any room) and no wake-up is on its way. */
static void wake_producer_locked(struct bqueue *q, size_t at_most)
{
	if (q->len <= at_most && q->push_sleepers && !q->push_waking) {
		q->push_waking = 1;
		pthread_cond_signal(&q->not_full);
	}
}

int bqueue_push(struct bqueue *q, void *p)
{
	int rc = -1;

	pthread_mutex_lock(&q->lock);
	while (q->len == q->cap && !q->closed) {
		q->push_sleepers++;
		pthread_cond_wait(&q->not_full, &q->lock);
		q->push_sleepers--;
		q->push_waking = 0;
	}
	if (!q->closed) {
		q->slots[(q->head + q->len) % q->cap] = p;
		q->len++;
		wake_consumer_locked(q);
		wake_producer_locked(q, q->cap - 1); /* pass the wake-up on while room lasts */
		rc = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* Takes up to max pointers into out; returns how many. */
static size_t take_locked(struct bqueue *q, void **out, size_t max)
{
	size_t n = 0;

	while (n < max && q->len) {
		out[n++] = q->slots[q->head];
		q->head = (q->head + 1) % q->cap;
		q->len--;
	}
	wake_producer_locked(q, q->low);
	wake_consumer_locked(q); /* more left: pass the wake-up on */
	return n;
}

/* Waits under the lock until q has an item or is closed. */
static void wait_nonempty_locked(struct bqueue *q)
{
	while (q->len == 0 && !q->closed) {
		q->pop_sleepers++;
		pthread_cond_wait(&q->not_empty, &q->lock);
		q->pop_sleepers--;
		q->pop_waking = 0;
	}
}

void *bqueue_pop(struct bqueue *q)
{
	void *p = NULL;

	pthread_mutex_lock(&q->lock);
	wait_nonempty_locked(q);
	take_locked(q, &p, 1);
	pthread_mutex_unlock(&q->lock);
	return p;
}

size_t bqueue_pop_many(struct bqueue *q, void **out, size_t max, size_t share)
{
	size_t n, fair;

	pthread_mutex_lock(&q->lock);
	wait_nonempty_locked(q);
	fair = share > 1 ? (q->len + share - 1) / share : q->len;
	n = take_locked(q, out, max < fair ? max : fair);
	pthread_mutex_unlock(&q->lock);
	return n;
}

void *bqueue_trypop(struct bqueue *q)
{
	void *p = NULL;

	pthread_mutex_lock(&q->lock);
	take_locked(q, &p, 1);
	pthread_mutex_unlock(&q->lock);
	return p;
}

void bqueue_close(struct bqueue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
}

size_t bqueue_len(struct bqueue *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->len;
	pthread_mutex_unlock(&q->lock);
	return n;
}
