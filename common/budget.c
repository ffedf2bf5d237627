#include "common/budget.h"

#include <pthread.h>
#include <stdlib.h>

struct budget {
	pthread_mutex_t lock;
	pthread_cond_t freed; /* signalled on release and cancel */
	uint64_t cap;         /* set at creation */
	uint64_t used;        /* under lock */
	int cancelled;        /* under lock */
};

struct budget *budget_new(uint64_t cap)
{
	struct budget *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->cap = cap ? cap : 1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->freed, NULL);
	return b;
}

void budget_free(struct budget *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->freed);
	free(b);
}

int budget_acquire(struct budget *b, uint64_t n)
{
	int rc = 0;

	pthread_mutex_lock(&b->lock);
	while (!b->cancelled && b->used > 0 && (b->used > b->cap || n > b->cap - b->used))
		pthread_cond_wait(&b->freed, &b->lock);
	if (b->cancelled)
		rc = -1;
	else
		b->used += n;
	pthread_mutex_unlock(&b->lock);
	return rc;
}

int budget_try_acquire(struct budget *b, uint64_t n)
{
	int rc = -1;

	pthread_mutex_lock(&b->lock);
	if (!b->cancelled && (b->used == 0 || (b->used <= b->cap && n <= b->cap - b->used))) {
		b->used += n;
		rc = 0;
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

void budget_release(struct budget *b, uint64_t n)
{
	pthread_mutex_lock(&b->lock);
	b->used = n > b->used ? 0 : b->used - n;
	pthread_cond_broadcast(&b->freed);
	pthread_mutex_unlock(&b->lock);
}

void budget_cancel(struct budget *b)
{
	pthread_mutex_lock(&b->lock);
	b->cancelled = 1;
	pthread_cond_broadcast(&b->freed);
	pthread_mutex_unlock(&b->lock);
}

uint64_t budget_used(struct budget *b)
{
	uint64_t n;

	pthread_mutex_lock(&b->lock);
	n = b->used;
	pthread_mutex_unlock(&b->lock);
	return n;
}
