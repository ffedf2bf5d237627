#include "common/waitgroup.h"

void waitgroup_init(struct waitgroup *wg)
{
	atomic_init(&wg->n, 0);
	pthread_mutex_init(&wg->lock, NULL);
	pthread_cond_init(&wg->zero, NULL);
}

void waitgroup_destroy(struct waitgroup *wg)
{
	pthread_mutex_destroy(&wg->lock);
	pthread_cond_destroy(&wg->zero);
}

void waitgroup_add(struct waitgroup *wg)
{
	atomic_fetch_add(&wg->n, 1);
}

void waitgroup_done(struct waitgroup *wg)
{
	if (atomic_fetch_sub(&wg->n, 1) != 1)
		return;
	pthread_mutex_lock(&wg->lock);
	pthread_cond_broadcast(&wg->zero);
	pthread_mutex_unlock(&wg->lock);
}

void waitgroup_wait(struct waitgroup *wg)
{
	pthread_mutex_lock(&wg->lock);
	while (atomic_load(&wg->n) > 0)
		pthread_cond_wait(&wg->zero, &wg->lock);
	pthread_mutex_unlock(&wg->lock);
}

uint64_t waitgroup_count(struct waitgroup *wg)
{
	return atomic_load(&wg->n);
}
