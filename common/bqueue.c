#include "common/bqueue.h"

#include <pthread.h>
#include <stdlib.h>

struct bqueue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty; /* signalled on push and close */
	pthread_cond_t not_full;  /* signalled on pop and close */
	size_t cap;               /* set at creation */
	size_t head, len;         /* under lock */
	int closed;               /* under lock */
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

int bqueue_push(struct bqueue *q, void *p)
{
	int rc = -1;

	pthread_mutex_lock(&q->lock);
	while (q->len == q->cap && !q->closed)
		pthread_cond_wait(&q->not_full, &q->lock);
	if (!q->closed) {
		q->slots[(q->head + q->len) % q->cap] = p;
		q->len++;
		pthread_cond_signal(&q->not_empty);
		rc = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static void *take_locked(struct bqueue *q)
{
	void *p = q->slots[q->head];

	q->head = (q->head + 1) % q->cap;
	q->len--;
	pthread_cond_signal(&q->not_full);
	return p;
}

void *bqueue_pop(struct bqueue *q)
{
	void *p = NULL;

	pthread_mutex_lock(&q->lock);
	while (q->len == 0 && !q->closed)
		pthread_cond_wait(&q->not_empty, &q->lock);
	if (q->len)
		p = take_locked(q);
	pthread_mutex_unlock(&q->lock);
	return p;
}

void *bqueue_trypop(struct bqueue *q)
{
	void *p = NULL;

	pthread_mutex_lock(&q->lock);
	if (q->len)
		p = take_locked(q);
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
