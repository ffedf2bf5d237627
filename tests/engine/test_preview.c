/* engine/preview: which files the sheet shows (the N smallest path hashes, whatever the
 * order and the threads), how few are thumbnailed when the selection is seen first,
 * failures, the sheet file and its metadata line. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "engine/preview.h"
#include "tests/common/vhtest.h"

#define M 300
#define N 7

static char dir[PATH_MAX];
static char paths[M][32];
static struct kernel_result res; /* one small JPEG stands for every input and output */
static struct config cfg;

static void setup(void)
{
	struct vherr err = {0};
	VipsImage *im;

	cr_assert_eq(kernel_global_init("test_preview", &err), 0, "%s", err.msg);
	vht_tmpdir(dir, sizeof(dir));
	for (int i = 0; i < M; i++)
		snprintf(paths[i], sizeof(paths[i]), "d%02d/img_%03d.jpg", i % 17, i);
	cr_assert_eq(vips_black(&im, 40, 30, "bands", 3, NULL), 0);
	cr_assert_eq(vips_jpegsave_buffer(im, (void **)&res.data, &res.len, NULL), 0);
	g_object_unref(im);
	res.in_w = res.out_w = 40;
	res.in_h = res.out_h = 30;
	res.format = KFMT_JPEG;
	config_defaults(&cfg);
	cfg.preview = N;
	cfg.quiet = 1;
}

static void teardown(void)
{
	g_free(res.data);
	config_release(&cfg);
	vht_rm_rf(dir);
	kernel_global_shutdown();
}

TestSuite(preview, .init = setup, .fini = teardown);

static int by_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The N paths of smallest preview_hash, sorted by name. */
static void expected(const char *want[N])
{
	int used[M] = {0};

	for (int k = 0; k < N; k++) {
		int best = -1;

		for (int i = 0; i < M; i++)
			if (!used[i] &&
			    (best < 0 || preview_hash(paths[i]) < preview_hash(paths[best])))
				best = i;
		used[best] = 1;
		want[k] = paths[best];
	}
	qsort(want, N, sizeof(*want), by_str);
}

static void offer(struct preview *pv, int i)
{
	preview_offer(pv, paths[i], res.data, res.len, &res);
}

static void assert_samples(struct preview *pv)
{
	const char *want[N], *got[N + 1];
	int n = preview_samples(pv, got, N + 1);

	expected(want);
	cr_assert_eq(n, N);
	for (int i = 0; i < N; i++)
		cr_assert_str_eq(got[i], want[i], "sample %d", i);
}

Test(preview, disabled_is_null_and_null_is_accepted)
{
	struct vherr err = {0};

	cfg.preview = 0;
	cr_assert_null(preview_new(&cfg));
	preview_seen(NULL, "a.jpg");
	preview_offer(NULL, "a.jpg", res.data, res.len, &res);
	preview_fail(NULL, "a.jpg", &err);
	cr_assert_eq(preview_finish(NULL, NULL, NULL, 0), 0);
	cr_assert_eq(preview_samples(NULL, NULL, 0), 0);
	preview_free(NULL);
}

Test(preview, the_n_smallest_hashes_in_any_order)
{
	struct preview *a = preview_new(&cfg), *b = preview_new(&cfg);

	for (int i = 0; i < M; i++)
		offer(a, i);
	for (int i = M - 1; i >= 0; i--)
		offer(b, (i * 7) % M); /* 7 is prime to 300: every file once */
	assert_samples(a);
	assert_samples(b);
	preview_free(a);
	preview_free(b);
}

struct worker {
	struct preview *pv;
	int first;
};

static void *offer_every_fourth(void *arg)
{
	struct worker *w = arg;

	for (int i = w->first; i < M; i += 4)
		offer(w->pv, M - 1 - i);
	return NULL;
}

/* Writes pv's sheet into sub (a fresh outputs dir under dir); returns its path. */
static char *finish_into(struct preview *pv, const char *sub, struct stats *st)
{
	char outputs[PATH_MAX], *file = malloc(PATH_MAX);
	struct dirsink *sink;
	struct vherr err = {0};

	vht_join(outputs, sizeof(outputs), dir, sub);
	cr_assert_eq(dirsink_open(outputs, 0, &sink, &err), 0, "%s", err.msg);
	cr_assert_eq(preview_finish(pv, sink, st, 0), 1, "no sheet written");
	dirsink_free(sink);
	vht_join(file, PATH_MAX, outputs, PREVIEW_FILE);
	return file;
}

Test(preview, four_threads_make_the_same_sheet_byte_for_byte)
{
	struct preview *one = preview_new(&cfg), *four = preview_new(&cfg);
	struct worker w[4];
	pthread_t t[4];
	struct stats st;
	char *a, *b, *da, *db;
	size_t la, lb;

	for (int i = 0; i < M; i++)
		offer(one, i);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){four, i};
		cr_assert_eq(pthread_create(&t[i], NULL, offer_every_fourth, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_samples(four);
	stats_init(&st);
	atomic_store(&st.processed, M);
	atomic_store(&st.walk_complete, 1);
	a = finish_into(one, "one", &st);
	b = finish_into(four, "four", &st);
	cr_assert(g_file_get_contents(a, &da, &la, NULL));
	cr_assert(g_file_get_contents(b, &db, &lb, NULL));
	cr_assert_gt(la, 1000);
	cr_assert(la == lb && memcmp(da, db, la) == 0, "the two sheets differ");
	g_free(da);
	g_free(db);
	free(a);
	free(b);
	stats_release(&st);
	preview_free(one);
	preview_free(four);
}

Test(preview, a_selection_seen_first_thumbnails_only_the_samples)
{
	struct preview *pv = preview_new(&cfg);

	for (int i = 0; i < M; i++)
		preview_seen(pv, paths[i]);
	for (int i = 0; i < M; i++)
		offer(pv, i);
	cr_assert_eq(preview_thumbnailed(pv), N);
	assert_samples(pv);
	preview_free(pv);
}

Test(preview, without_seeing_first_more_are_thumbnailed_but_the_same_kept)
{
	struct preview *pv = preview_new(&cfg);

	for (int i = 0; i < M; i++)
		offer(pv, i);
	cr_assert_gt(preview_thumbnailed(pv), N);
	cr_assert_lt(preview_thumbnailed(pv), M / 2);
	assert_samples(pv);
	preview_free(pv);
}

Test(preview, with_size_bounds_seen_is_ignored)
{
	struct preview *pv;

	cfg.min_size = 10; /* a file seen may be dropped by size after its read */
	pv = preview_new(&cfg);
	for (int i = 0; i < M; i++)
		preview_seen(pv, paths[i]);
	for (int i = 0; i < M; i++)
		offer(pv, i);
	cr_assert_gt(preview_thumbnailed(pv), N);
	assert_samples(pv);
	preview_free(pv);
}

Test(preview, a_sample_that_fails_later_leaves_the_sheet)
{
	struct preview *pv = preview_new(&cfg);
	const char *want[N], *got[N];
	struct vherr err;

	for (int i = 0; i < M; i++)
		offer(pv, i);
	expected(want);
	vherr_set(&err, VHERR_NOSPC, VHSTAGE_WRITE, NULL);
	preview_fail(pv, want[2], &err);
	cr_assert_eq(preview_samples(pv, got, N), N - 1);
	for (int i = 0; i < N - 1; i++)
		cr_assert_str_neq(got[i], want[2]);
	preview_free(pv);
}

/* The lines of dir/sub/valohai.metadata.jsonl naming the sheet. */
/* A second finish into the same outputs dir replaces the earlier run's sheet. */
Test(preview, the_sheet_replaces_an_earlier_one)
{
	struct stats st;
	struct preview *pv = preview_new(&cfg);
	char *first, *second;

	stats_init(&st);
	offer(pv, 0);
	first = finish_into(pv, "again", &st);
	second = finish_into(pv, "again", &st);
	cr_assert_not_null(first);
	cr_assert_not_null(second);
	free(first);
	free(second);
	preview_free(pv);
	stats_release(&st);
}

Test(preview, failures_are_kept_by_hash_and_bounded)
{
	struct preview *a = preview_new(&cfg), *b = preview_new(&cfg);
	struct stats st;
	struct vherr err;
	char *fa, *fb, *da, *db;
	size_t la, lb;

	vherr_set(&err, VHERR_CORRUPT, VHSTAGE_DECODE, "cannot decode image: <&>");
	for (int i = 0; i < 40; i++) {
		preview_fail(a, paths[i], &err);
		preview_fail(b, paths[39 - i], &err);
	}
	preview_fail(a, NULL, &err); /* the source itself */
	preview_fail(b, NULL, &err);
	stats_init(&st);
	atomic_store(&st.failed, 42);
	fa = finish_into(a, "fa", &st);
	fb = finish_into(b, "fb", &st);
	cr_assert(g_file_get_contents(fa, &da, &la, NULL));
	cr_assert(g_file_get_contents(fb, &db, &lb, NULL));
	cr_assert(la == lb && memcmp(da, db, la) == 0, "the strip depends on the order");
	g_free(da);
	g_free(db);
	free(fa);
	free(fb);
	stats_release(&st);
	preview_free(a);
	preview_free(b);
}
