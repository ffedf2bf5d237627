/* Execution metrics and stream discipline: every stdout line is one JSON object (Valohai
 * reads them as metrics), stderr carries no progress line when it is not a terminal, and
 * --quiet / --metrics-interval 0 silence their streams. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

TestSuite(metrics, .init = itest_setup, .fini = itest_teardown, .timeout = 120);

#define NFILES 150

static char *make_source(void)
{
	char *src = itest_path("src");
	size_t len;
	void *jpg = itest_encode_image("jpg", 640, 480, 3, 2, 0, &len);

	for (int i = 0; i < NFILES; i++) {
		char *p = itest_fmt("%s/d%d/f%03d.jpg", src, i % 5, i);

		itest_write_file(p, jpg, len);
		free(p);
	}
	free(jpg);
	return src;
}

static const char *const metric_keys[] = {
    "files_found", "files_selected", "files_processed", "files_failed",	 "files_per_s",
    "mb_per_s",	   "elapsed_s",	     "rss_mb",		"walk_complete", "mb_read"};

Test(metrics, stdout_is_json_lines_and_stderr_has_no_progress)
{
	char *src = make_source();
	char *out = itest_path("out");
	struct itest_proc p;
	json_int_t last_processed = -1;
	json_t *o = NULL;
	int nlines = 0;

	itest_vhprep(&p, "--threads", "1", "--resize", "224", "--metrics-interval", "0.2", "-o",
		     out, src, NULL);
	itest_assert_exit(&p, 0);
	cr_assert(p.out_len > 0 && p.out[p.out_len - 1] == '\n',
		  "stdout is empty or does not end with a newline: '%s'", p.out);
	for (char *line = p.out, *nl; *line; line = nl + 1) {
		json_error_t jerr;

		nl = strchr(line, '\n');
		*nl = '\0';
		nlines++;
		json_decref(o);
		o = json_loads(line, 0, &jerr);
		cr_assert_not_null(o, "stdout line %d is not JSON (%s): %s", nlines, jerr.text,
				   line);
		cr_assert(json_is_object(o), "stdout line %d is not one object: %s", nlines,
			  line);
		for (size_t k = 0; k < sizeof(metric_keys) / sizeof(metric_keys[0]); k++)
			cr_expect_not_null(json_object_get(o, metric_keys[k]),
					   "stdout line %d lacks \"%s\": %s", nlines,
					   metric_keys[k], line);
		{
			json_t *v = json_object_get(o, "files_processed");
			json_int_t n = json_integer_value(v);

			cr_expect(json_is_integer(v), "files_processed is not an integer");
			cr_expect_geq(n, last_processed,
				      "files_processed went down: %lld after %lld",
				      (long long)n, (long long)last_processed);
			last_processed = n;
		}
		{
			json_t *v = json_object_get(o, "files_per_s");

			cr_expect(json_is_number(v) && json_number_value(v) >= 0);
		}
	}
	cr_assert_geq(nlines, 1);
	/* the last line is the final state */
	cr_expect_eq(json_integer_value(json_object_get(o, "files_processed")), NFILES);
	cr_expect_eq(json_integer_value(json_object_get(o, "files_found")), NFILES);
	cr_expect_eq(json_integer_value(json_object_get(o, "files_failed")), 0);
	cr_expect(json_integer_value(json_object_get(o, "walk_complete")) == 1,
		  "walk_complete is 1, a number: Valohai plots numbers only");
	json_decref(o);
	/* stderr is not a terminal: no progress line, no terminal control */
	cr_expect(!strchr(p.err, '\r'), "stderr holds a carriage return (a progress line): %s",
		  p.err);
	cr_expect(!strstr(p.err, "\033["), "stderr holds terminal escapes: %s", p.err);
	cr_expect(!strstr(p.err, "ETA"), "stderr holds a progress line: %s", p.err);
	cr_expect(strstr(p.err, "150 processed"), "stderr has no summary line: %s", p.err);
	itest_proc_release(&p);
	free(out);
	free(src);
}

Test(metrics, quiet_and_no_metrics)
{
	char *src = make_source();
	char *out = itest_path("out");
	struct itest_proc p;

	itest_vhprep(&p, "-q", "--metrics-interval", "0", "--resize", "32", "-o", out, src,
		     NULL);
	itest_assert_exit(&p, 0);
	cr_expect_eq(p.out_len, 0, "--metrics-interval 0: stdout holds '%s'", p.out);
	cr_expect_eq(p.err_len, 0, "--quiet: stderr holds '%s'", p.err);
	itest_proc_release(&p);
	free(out);
	free(src);
}

/* Runs vhprep on src with stderr on a terminal, plus the extra option (or NULL). */
static void run_on_tty(struct itest_proc *p, const char *src, const char *extra)
{
	struct itest_spawn_opts tty = {.stderr_tty = 1};
	struct itest_argv a = {0};
	char *out = itest_fmt("%s/out-%s", itest_root, extra ? extra + 2 : "auto");

	itest_argv_add(&a, itest_bin());
	if (extra)
		itest_argv_add(&a, extra);
	itest_argv_add(&a, "--metrics-interval");
	itest_argv_add(&a, "0");
	itest_argv_add(&a, "--threads");
	itest_argv_add(&a, "1");
	itest_argv_add(&a, "-o");
	itest_argv_add(&a, out);
	itest_argv_add(&a, src);
	itest_run(a.v, &tty, p);
	itest_argv_free(&a);
	free(out);
}

/* On a terminal the progress line is on by default: this is the control that shows the
 * check below can see a progress line when there is one. */
Test(metrics, progress_line_on_a_terminal_by_default)
{
	char *src = make_source();
	struct itest_proc p;

	run_on_tty(&p, src, NULL);
	itest_assert_exit(&p, 0);
	cr_expect(strstr(p.err, "\r\033[K"), "no progress line on a terminal: %s", p.err);
	itest_proc_release(&p);
	free(src);
}

/* --no-progress wins over the terminal that would turn the line on. */
Test(metrics, no_progress_line_even_when_forced_off)
{
	char *src = make_source();
	struct itest_proc p;

	run_on_tty(&p, src, "--no-progress");
	itest_assert_exit(&p, 0);
	cr_expect(!strchr(p.err, '\r'), "--no-progress: stderr holds a progress line: %s",
		  p.err);
	cr_expect_eq(p.out_len, 0, "stdout holds '%s'", p.out);
	itest_proc_release(&p);
	free(src);
}

/* --progress forces the line on when stderr is not a terminal. */
Test(metrics, progress_line_when_forced_on)
{
	char *src = make_source();
	char *out = itest_path("out");
	struct itest_proc p;

	itest_vhprep(&p, "--progress", "--metrics-interval", "0", "--threads", "1", "-o", out,
		     src, NULL);
	itest_assert_exit(&p, 0);
	cr_expect(strstr(p.err, "\r\033[K"), "--progress: no progress line: %s", p.err);
	itest_proc_release(&p);
	free(out);
	free(src);
}
