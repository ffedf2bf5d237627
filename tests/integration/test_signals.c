/* SIGTERM and SIGINT in the middle of a run: the files in flight finish, the rest are
 * dropped, the records stay consistent (every output has exactly one metadata line and
 * every line's file exists), no temporary file is left, and the summary says why it
 * stopped. Exit 143 / 130. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

TestSuite(signals, .init = itest_setup, .fini = itest_teardown, .timeout = 120);

#define NFILES 300

/* NFILES copies of one 640x480 JPEG in ten folders. */
static char *make_source(void)
{
	char *src = itest_path("src");
	size_t len;
	void *jpg = itest_encode_image("jpg", 640, 480, 3, 4, 0, &len);

	for (int i = 0; i < NFILES; i++) {
		char *p = itest_fmt("%s/d%d/img_%04d.jpg", src, i % 10, i);

		itest_write_file(p, jpg, len);
		free(p);
	}
	free(jpg);
	return src;
}

/* Whether the metadata file has at least one complete line naming an image. */
static int has_first_output(const char *meta_path)
{
	char *text;
	int yes;

	if (!itest_exists(meta_path))
		return 0;
	text = itest_slurp(meta_path, NULL);
	yes = strstr(text, "processed_images/") && strchr(text, '\n');
	free(text);
	return yes;
}

static void interrupt_run(int sig, const char *name, int want_exit)
{
	char *src = make_source();
	char *out = itest_path("out");
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	char *out_path = itest_path("vhprep.stdout"), *err_path = itest_path("vhprep.stderr");
	struct itest_argv a = {0};
	int code = -1, term = 0, waited = 0;
	pid_t pid;

	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "--threads");
	itest_argv_add(&a, "1");
	itest_argv_add(&a, "--io-depth");
	itest_argv_add(&a, "4");
	itest_argv_add(&a, "--metrics-interval");
	itest_argv_add(&a, "0");
	itest_argv_add(&a, "-o");
	itest_argv_add(&a, out);
	itest_argv_add(&a, src);
	pid = itest_spawn(a.v, NULL, out_path, err_path);

	/* wait (no deadline but the test's) for the first output, then signal */
	while (!has_first_output(meta)) {
		int ended = itest_wait(pid, 0.01, &code, &term);

		if (ended) {
			char *err = itest_slurp(err_path, NULL);

			cr_assert_fail(
			    "vhprep ended (exit %d, signal %d) before its first output was "
			    "recorded; stderr:\n%s",
			    code, term, err);
		}
	}
	cr_assert_eq(kill(pid, sig), 0, "kill: %s", strerror(errno));
	waited = itest_wait(pid, 90.0, &code, &term);
	if (!waited) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		cr_assert_fail("vhprep did not stop within 90 s of %s", name);
	}
	{
		char *err = itest_slurp(err_path, NULL);

		cr_expect_eq(term, 0, "vhprep died of signal %d instead of exiting", term);
		cr_expect_eq(code, want_exit, "after %s: exit %d, want %d; stderr:\n%s", name,
			     code, want_exit, err);
		cr_expect(strstr(err, name), "stderr does not mention %s:\n%s", name, err);
		free(err);
	}

	/* the records: consistent, complete for what was written */
	{
		json_t *lines = itest_check_outputs(out, "processed_images", 1);
		size_t images = json_array_size(lines) - 1;
		char *sum_path = itest_fmt("%s/vhprep-summary.json", out);
		char *csv_path = itest_fmt("%s/processing_metadata.csv", out);
		char *errors_path = itest_fmt("%s/vhprep-errors.jsonl", out);
		json_t *s = itest_read_json(sum_path), *errors = itest_read_jsonl(errors_path);
		struct itest_csv csv;
		json_int_t processed, failed, cancelled, selected;

		cr_expect_geq(images, 1);
		cr_expect_str_eq(itest_jstr(s, "interrupted_by"), name);
		cr_expect_eq(itest_jint(s, "exit_code"), want_exit);
		processed = json_integer_value(itest_jget(s, "files.processed"));
		failed = json_integer_value(itest_jget(s, "files.failed"));
		cancelled = json_integer_value(itest_jget(s, "files.cancelled"));
		selected = json_integer_value(itest_jget(s, "files.selected"));
		cr_expect_eq(processed, (json_int_t)images,
			     "summary: %lld processed, but %zu outputs with metadata",
			     (long long)processed, images);
		cr_expect_eq(failed, 0, "interrupted files counted as failures");
		cr_expect_eq(json_array_size(errors), 0,
			     "interrupted files recorded in vhprep-errors.jsonl");
		cr_expect_eq(
		    processed + failed + cancelled, selected,
		    "summary: processed %lld + failed %lld + cancelled %lld != selected "
		    "%lld",
		    (long long)processed, (long long)failed, (long long)cancelled,
		    (long long)selected);
		itest_read_csv(csv_path, &csv);
		cr_expect_eq(csv.nrows, images + 1, "%zu CSV rows for %zu outputs", csv.nrows,
			     images);
		itest_csv_free(&csv);
		cr_expect_eq(itest_count_names(itest_root, ".vhprep-tmp"), 0,
			     "a temporary file was left behind");
		json_decref(errors);
		json_decref(s);
		json_decref(lines);
		free(errors_path);
		free(csv_path);
		free(sum_path);
	}
	itest_argv_free(&a);
	free(out_path);
	free(err_path);
	free(meta);
	free(out);
	free(src);
}

Test(signals, sigterm_mid_run)
{
	interrupt_run(SIGTERM, "SIGTERM", 143);
}

Test(signals, sigint_mid_run)
{
	interrupt_run(SIGINT, "SIGINT", 130);
}
