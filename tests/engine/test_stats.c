#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/stats.h"
#include "tests/common/vhtest.h"

static struct stats st;

static void setup(void)
{
	stats_init(&st);
}

static void teardown(void)
{
	stats_release(&st);
}

Test(stats, init_zeroes_and_starts_the_clock, .init = setup, .fini = teardown)
{
	double now = stats_now();

	cr_assert_eq(atomic_load(&st.found), 0);
	cr_assert_eq(atomic_load(&st.failed), 0);
	cr_assert_eq(atomic_load(&st.walk_complete), 0);
	for (int r = 0; r < VHERR__COUNT; r++)
		cr_assert_eq(atomic_load(&st.by_reason[r]), 0);
	cr_assert(st.start <= now && now - st.start < 1.0);
	cr_assert_geq(stats_elapsed(&st), 0.0);
}

Test(stats, clock_is_monotonic_and_elapsed_grows, .init = setup, .fini = teardown)
{
	double a = stats_now(), e1 = stats_elapsed(&st), b, e2;

	vht_sleep_ms(30);
	b = stats_now();
	e2 = stats_elapsed(&st);
	cr_assert_geq(b - a, 0.025);
	cr_assert_geq(e2 - e1, 0.025);
}

Test(stats, fail_counts_and_keeps_five_examples, .init = setup, .fini = teardown)
{
	char path[32];

	for (int i = 0; i < 8; i++) {
		snprintf(path, sizeof(path), "missing/%d.jpg", i);
		stats_fail(&st, VHERR_NOENT, path);
	}
	stats_fail(&st, -VHERR_CORRUPT, "bad.jpg"); /* a negated code counts the same */
	cr_assert_eq(atomic_load(&st.failed), 9);
	cr_assert_eq(atomic_load(&st.by_reason[VHERR_NOENT]), 8);
	cr_assert_eq(atomic_load(&st.by_reason[VHERR_CORRUPT]), 1);
	for (int i = 0; i < STATS_EXAMPLES; i++) {
		snprintf(path, sizeof(path), "missing/%d.jpg", i);
		cr_assert_str_eq(st.examples[VHERR_NOENT][i], path,
				 "examples are the first five");
	}
	cr_assert_str_eq(st.examples[VHERR_CORRUPT][0], "bad.jpg");
	cr_assert_null(st.examples[VHERR_CORRUPT][1]);
}

Test(stats, unknown_code_counts_as_internal, .init = setup, .fini = teardown)
{
	stats_fail(&st, 9999, "weird.jpg");
	stats_fail(&st, -9999, "weird2.jpg");
	cr_assert_eq(atomic_load(&st.by_reason[VHERR_INTERNAL]), 2);
	cr_assert_eq(atomic_load(&st.failed), 2);
}

Test(stats, example_paths_are_copied, .init = setup, .fini = teardown)
{
	char path[32] = "orig.jpg";

	stats_fail(&st, VHERR_IO, path);
	strcpy(path, "changed");
	cr_assert_str_eq(st.examples[VHERR_IO][0], "orig.jpg");
}

Test(stats, failures_json_shape, .init = setup, .fini = teardown)
{
	json_t *j, *nf, *ex;
	char path[32];

	for (int i = 0; i < 7; i++) {
		snprintf(path, sizeof(path), "n/%d", i);
		stats_fail(&st, VHERR_NOENT, path);
	}
	stats_fail(&st, VHERR_TRUNCATED, "t.jpg");
	j = stats_failures_json(&st);
	cr_assert(json_is_object(j));
	cr_assert_eq(json_object_size(j), 2, "only reasons that happened");
	nf = json_object_get(j, "not_found");
	cr_assert(json_is_object(nf));
	cr_assert_eq(json_object_size(nf), 2);
	cr_assert_eq(json_integer_value(json_object_get(nf, "count")), 7);
	ex = json_object_get(nf, "examples");
	cr_assert(json_is_array(ex));
	cr_assert_eq(json_array_size(ex), STATS_EXAMPLES);
	cr_assert_str_eq(json_string_value(json_array_get(ex, 0)), "n/0");
	cr_assert_str_eq(json_string_value(json_array_get(ex, 4)), "n/4");
	ex = json_object_get(json_object_get(j, "truncated"), "examples");
	cr_assert_eq(json_array_size(ex), 1);
	cr_assert_str_eq(json_string_value(json_array_get(ex, 0)), "t.jpg");
	json_decref(j);
}

Test(stats, failures_json_empty, .init = setup, .fini = teardown)
{
	json_t *j = stats_failures_json(&st);

	cr_assert(json_is_object(j));
	cr_assert_eq(json_object_size(j), 0);
	json_decref(j);
}

struct failer {
	struct stats *s;
	int id;
};

static void *fail_many(void *arg)
{
	struct failer *f = arg;
	char path[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "t%d/%d", f->id, i);
		stats_fail(f->s, i % 2 ? VHERR_IO : VHERR_CORRUPT, path);
	}
	return NULL;
}

Test(stats, concurrent_failures_are_all_counted, .init = setup, .fini = teardown, .timeout = 30)
{
	struct failer f[8];
	pthread_t t[8];

	for (int i = 0; i < 8; i++) {
		f[i] = (struct failer){.s = &st, .id = i};
		cr_assert_eq(pthread_create(&t[i], NULL, fail_many, &f[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&st.failed), 8000);
	cr_assert_eq(atomic_load(&st.by_reason[VHERR_IO]), 4000);
	cr_assert_eq(atomic_load(&st.by_reason[VHERR_CORRUPT]), 4000);
	for (int which = 0; which < 2; which++) {
		int r = which ? VHERR_CORRUPT : VHERR_IO;

		for (int i = 0; i < STATS_EXAMPLES; i++) {
			cr_assert_not_null(st.examples[r][i], "reason %d example %d", r, i);
			for (int j = 0; j < i; j++)
				cr_assert_str_neq(st.examples[r][i], st.examples[r][j]);
		}
	}
}

Test(stats, finished_counts_every_way_an_input_ends, .init = setup, .fini = teardown)
{
	atomic_store(&st.found, 1000);	  /* not finished: found */
	atomic_store(&st.filtered, 100);  /* not an input of the run */
	atomic_store(&st.submitted, 500); /* not finished: in flight */
	atomic_store(&st.processed, 10);
	atomic_store(&st.failed, 20);
	atomic_store(&st.skipped_size, 30);
	atomic_store(&st.cancelled, 40);
	atomic_store(&st.over_limit, 50);
	cr_assert_eq(stats_finished(&st), 150);
}

Test(stats, rss_is_reported)
{
	cr_assert_gt(stats_peak_rss(), 1 << 20);
	cr_assert_gt(stats_current_rss(), 1 << 20);
	cr_assert_geq(stats_peak_rss() + (1 << 20), stats_current_rss());
}
