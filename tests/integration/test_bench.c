/* `vhprep bench`: the storage benchmark walks and reads a tree without writing anything,
 * and reports counts, rates and latency percentiles as one JSON line on stdout. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"
#include "tests/common/vhskip.h"

TestSuite(bench, .init = itest_setup, .fini = itest_teardown, .timeout = 120);

#define NFILES 30

/* NFILES small images in three folders; returns the tree and its total bytes. */
static char *make_tree(uint64_t *bytes)
{
	char *src = itest_path("src");

	*bytes = 0;
	for (int i = 0; i < NFILES; i++) {
		char *p = itest_fmt("%s/d%d/f%02d.jpg", src, i % 3, i);

		itest_make_image(p, 32 + i, 24, 3, (unsigned)i, 0);
		*bytes += itest_file_size(p);
		free(p);
	}
	return src;
}

/* Runs vhprep bench with the arguments and returns its JSON line (caller decrefs). */
static json_t *bench(struct itest_proc *p, const char *mode, const char *src)
{
	json_error_t jerr;
	json_t *o;

	if (mode)
		itest_vhprep(p, "bench", mode, src, NULL);
	else
		itest_vhprep(p, "bench", "--io-depth", "4", src, NULL);
	itest_assert_exit(p, 0);
	o = json_loads(p->out, 0, &jerr);
	cr_assert_not_null(o, "stdout is one JSON object: %s (%s)", jerr.text, p->out);
	return o;
}

static json_int_t latency_count(json_t *o, const char *op)
{
	char key[64];
	json_t *n;

	snprintf(key, sizeof(key), "%s_count", op); /* flat: OP_count */
	n = json_object_get(o, key);

	return n ? json_integer_value(n) : 0;
}

Test(bench, walk_and_read_count_every_file_and_byte)
{
	uint64_t bytes;
	char *src = make_tree(&bytes);
	struct itest_proc p = {0};
	json_t *o = bench(&p, NULL, src);

	cr_assert_eq(itest_jint(o, "entries"), NFILES);
	cr_assert_eq(itest_jint(o, "files"), NFILES);
	cr_assert_eq(itest_jint(o, "failed"), 0);
	cr_assert_eq((uint64_t)itest_jint(o, "bytes"), bytes);
	cr_assert_str_eq(itest_jstr(o, "mode"), "walk+read");
	cr_assert_eq(latency_count(o, "dir"), 4, "the root and three folders");
	cr_assert_eq(latency_count(o, "open"), NFILES);
	cr_assert_geq(latency_count(o, "read"), NFILES);
	cr_assert_gt(json_real_value(json_object_get(o, "files_per_s")), 0);
	cr_assert_not_null(strstr(p.err, "p50"), "a readable summary on stderr: %s", p.err);
	json_decref(o);
	itest_proc_release(&p);
	free(src);
}

Test(bench, walk_only_reads_nothing_and_read_only_reads_all)
{
	uint64_t bytes;
	char *src = make_tree(&bytes);
	struct itest_proc p = {0}, q = {0};
	json_t *w = bench(&p, "--walk-only", src), *r = bench(&q, "--read-only", src);

	cr_assert_eq(itest_jint(w, "entries"), NFILES);
	cr_assert_eq(itest_jint(w, "files"), 0);
	cr_assert_eq(latency_count(w, "open"), 0);
	cr_assert_eq(itest_jint(r, "files"), NFILES);
	cr_assert_eq((uint64_t)itest_jint(r, "bytes"), bytes);
	cr_assert_str_eq(itest_jstr(r, "mode"), "read-only");
	json_decref(w);
	json_decref(r);
	itest_proc_release(&p);
	itest_proc_release(&q);
	free(src);
}

Test(bench, leaves_the_source_unchanged_and_writes_nothing)
{
	uint64_t bytes;
	char *src = make_tree(&bytes);
	json_t *before = itest_snapshot(src), *after, *o;
	struct itest_proc p = {0};

	o = bench(&p, NULL, src);
	after = itest_snapshot(src);
	itest_assert_snapshots_equal(before, after, "the source after vhprep bench");
	cr_assert_not(itest_exists("outputs"), "bench must not create an outputs dir");
	json_decref(o);
	json_decref(before);
	json_decref(after);
	itest_proc_release(&p);
	free(src);
}

Test(bench, usage_and_source_errors_exit_2)
{
	struct itest_proc p = {0}, q = {0}, r = {0};
	char *missing = itest_path("no-such-dir");

	itest_vhprep(&p, "bench", missing, NULL);
	itest_assert_exit(&p, 2);
	cr_assert_not_null(strstr(p.err, "cannot open source"), "%s", p.err);
	itest_vhprep(&q, "bench", "--io-depth", "0", ".", NULL);
	itest_assert_exit(&q, 2);
	itest_vhprep(&r, "bench", "--help", NULL);
	itest_assert_exit(&r, 0);
	cr_assert_not_null(strstr(r.out, "--walk-only"));
	itest_proc_release(&p);
	itest_proc_release(&q);
	itest_proc_release(&r);
	free(missing);
}

/* bench parses the options it shares with a run by the run's code: same values, same
 * bounds, same messages (a fractional --nfs-timeout was refused here once). */
Test(bench, shares_the_runs_option_parsing)
{
	uint64_t bytes;
	char *src = make_tree(&bytes);
	struct itest_proc p = {0}, q = {0}, r = {0};

	itest_vhprep(&p, "bench", "--walk-only", "--nfs-timeout", "2.5", src, NULL);
	itest_assert_exit(&p, 0);
	itest_vhprep(&q, "bench", "--nfs-timeout", "0", src, NULL);
	itest_assert_exit(&q, 2);
	cr_assert_not_null(
	    strstr(q.err, "invalid --nfs-timeout '0': expected seconds in (0, 3600]"), "%s",
	    q.err);
	itest_vhprep(&r, "bench", "--read-budget", "1023", src, NULL);
	itest_assert_exit(&r, 2);
	cr_assert_not_null(strstr(r.err, "invalid --read-budget '1023'"), "%s", r.err);
	itest_proc_release(&p);
	itest_proc_release(&q);
	itest_proc_release(&r);
	free(src);
}

Test(bench, a_directory_it_cannot_list_is_counted_and_fails_the_run)
{
	uint64_t bytes;
	char *src = make_tree(&bytes);
	char *lockdir = itest_fmt("%s/d1", src);
	struct itest_spawn_opts o = {.drop_dac = geteuid() == 0};
	struct itest_argv a = {0};
	struct itest_proc p;
	json_error_t jerr;
	json_t *j;

	cr_assert_eq(chmod(lockdir, 0), 0);
	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "bench");
	itest_argv_add(&a, "--walk-only");
	itest_argv_add(&a, src);
	itest_run(a.v, &o, &p);
	chmod(lockdir, 0755);
	if (p.exit_code == 125 || p.exit_code == 126 || strstr(p.out, "\"walk_errors\":0")) {
		itest_proc_release(&p);
		itest_argv_free(&a);
		vht_missing("permissions do not apply to this test's children (root that cannot "
			"drop CAP_DAC_OVERRIDE)");
	}
	cr_expect_eq(p.exit_code, 1, "exit %d; stderr: %s", p.exit_code, p.err);
	cr_expect(strstr(p.err, "cannot list 'd1'"), "stderr: %s", p.err);
	j = json_loads(p.out, 0, &jerr);
	cr_assert_not_null(j, "stdout: %s", p.out);
	cr_expect_eq(itest_jint(j, "walk_errors"), 1);
	cr_expect_eq(itest_jint(j, "entries"), NFILES - NFILES / 3, "the other folders' files");
	json_decref(j);
	itest_proc_release(&p);
	itest_argv_free(&a);
	free(lockdir);
	free(src);
}
