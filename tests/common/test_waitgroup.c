#include <criterion/criterion.h>
#include <pthread.h>
#include <unistd.h>

#include "common/waitgroup.h"

Test(waitgroup, wait_returns_at_once_when_nothing_is_in_flight)
{
	struct waitgroup wg;

	waitgroup_init(&wg);
	waitgroup_wait(&wg);
	cr_assert_eq(waitgroup_count(&wg), 0);
	waitgroup_destroy(&wg);
}

static void *finish_later(void *arg)
{
	struct waitgroup *wg = arg;

	for (int i = 0; i < 1000; i++) {
		if (i % 100 == 0)
			usleep(1000);
		waitgroup_done(wg);
	}
	return NULL;
}

Test(waitgroup, wait_blocks_until_every_operation_is_done)
{
	struct waitgroup wg;
	pthread_t t[4];

	waitgroup_init(&wg);
	for (int i = 0; i < 4000; i++)
		waitgroup_add(&wg);
	cr_assert_eq(waitgroup_count(&wg), 4000);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, finish_later, &wg);
	waitgroup_wait(&wg);
	cr_assert_eq(waitgroup_count(&wg), 0, "wait returned with operations in flight");
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	waitgroup_destroy(&wg);
}
