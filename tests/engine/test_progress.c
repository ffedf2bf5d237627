#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/progress.h"

static struct stats st;

/* Stats of a run that started `ago` seconds back. */
static void setup_run(double ago, unsigned long long processed, unsigned long long found,
		      unsigned long long failed, unsigned long long bytes)
{
	stats_init(&st);
	st.start -= ago;
	atomic_store(&st.processed, processed);
	atomic_store(&st.found, found);
	atomic_store(&st.failed, failed);
	atomic_store(&st.bytes_read, bytes);
}

static void teardown(void)
{
	stats_release(&st);
}

static void setup_basic(void)
{
	setup_run(10, 10, 100, 2, 50000000);
}

/* ---- progress_format_line ---- */

Test(progress_format_line, fields_and_no_eta_while_walking, .init = setup_basic,
     .fini = teardown)
{
	char line[256];

	atomic_store(&st.submitted, 20);
	progress_format_line(&st, line, sizeof(line));
	cr_assert_str_eq(
	    line, "vhprep: 10 files (100 found)  1.0 files/s  5.0 MB/s  2 errors  ETA ?");
}

Test(progress_format_line, eta_once_the_walk_is_complete, .init = setup_basic, .fini = teardown)
{
	char line[256];

	atomic_store(&st.submitted, 20); /* 20 - (10 + 2) = 8 left at 1 file/s */
	atomic_store(&st.walk_complete, 1);
	progress_format_line(&st, line, sizeof(line));
	cr_assert_str_eq(
	    line, "vhprep: 10 files (100 found)  1.0 files/s  5.0 MB/s  2 errors  ETA 0:00:08");
}

Test(progress_format_line, eta_counts_every_finished_input, .init = setup_basic,
     .fini = teardown)
{
	char line[256];

	atomic_store(&st.submitted, 20);
	atomic_store(&st.skipped_size, 3);
	atomic_store(&st.cancelled, 1);
	atomic_store(&st.over_limit, 1); /* 20 - (10 + 2 + 3 + 1 + 1) = 3 left */
	atomic_store(&st.walk_complete, 1);
	progress_format_line(&st, line, sizeof(line));
	cr_assert_not_null(strstr(line, "ETA 0:00:03"), "line: %s", line);
}

Test(progress_format_line, eta_in_hours, .fini = teardown)
{
	char line[256];

	setup_run(100, 100, 5000, 0, 0);
	atomic_store(&st.submitted, 100 + 3723); /* 1:02:03 at 1 file/s */
	atomic_store(&st.walk_complete, 1);
	progress_format_line(&st, line, sizeof(line));
	cr_assert_not_null(strstr(line, "ETA 1:02:03"), "line: %s", line);
}

Test(progress_format_line, no_eta_before_any_output, .fini = teardown)
{
	char line[256];

	setup_run(5, 0, 10, 0, 0);
	atomic_store(&st.submitted, 10);
	atomic_store(&st.walk_complete, 1);
	progress_format_line(&st, line, sizeof(line));
	cr_assert_not_null(strstr(line, "ETA ?"), "line: %s", line);
}

Test(progress_format_line, nothing_left_is_zero_eta, .init = setup_basic, .fini = teardown)
{
	char line[256];

	atomic_store(&st.submitted, 12);
	atomic_store(&st.walk_complete, 1);
	progress_format_line(&st, line, sizeof(line));
	cr_assert_not_null(strstr(line, "ETA 0:00:00"), "line: %s", line);
}

Test(progress_format_line, small_buffer_is_truncated_safely, .init = setup_basic,
     .fini = teardown)
{
	char line[16];

	memset(line, 'X', sizeof(line));
	progress_format_line(&st, line, 12);
	cr_assert_str_eq(line, "vhprep: 10 ");
	cr_assert_eq(line[12], 'X', "wrote past the given size");
}

/* ---- progress_metrics ---- */

Test(progress_metrics, fields_and_types, .init = setup_basic, .fini = teardown)
{
	static const char *reals[] = {"files_per_s", "mb_per_s", "elapsed_s", "rss_mb",
				      "mb_read"};
	json_t *m;

	atomic_store(&st.submitted, 20);
	m = progress_metrics(&st);
	cr_assert(json_is_object(m));
	cr_assert_eq(json_integer_value(json_object_get(m, "files_found")), 100);
	cr_assert_eq(json_integer_value(json_object_get(m, "files_selected")), 20);
	cr_assert_eq(json_integer_value(json_object_get(m, "files_processed")), 10);
	cr_assert_eq(json_integer_value(json_object_get(m, "files_failed")), 2);
	for (size_t i = 0; i < sizeof(reals) / sizeof(*reals); i++)
		cr_assert(json_is_real(json_object_get(m, reals[i])), "'%s' is not a number",
			  reals[i]);
	cr_assert(json_is_integer(json_object_get(m, "walk_complete")) &&
		  json_integer_value(json_object_get(m, "walk_complete")) == 0);
	cr_assert_float_eq(json_real_value(json_object_get(m, "mb_read")), 50.0, 1e-9);
	cr_assert_float_eq(json_real_value(json_object_get(m, "files_per_s")), 1.0, 0.01);
	cr_assert_float_eq(json_real_value(json_object_get(m, "mb_per_s")), 5.0, 0.05);
	cr_assert_float_eq(json_real_value(json_object_get(m, "elapsed_s")), 10.0, 0.5);
	cr_assert_gt(json_real_value(json_object_get(m, "rss_mb")), 0.0);
	cr_assert_eq(json_object_size(m), 10);
	json_decref(m);
	atomic_store(&st.walk_complete, 1);
	m = progress_metrics(&st);
	cr_assert(json_is_integer(json_object_get(m, "walk_complete")) &&
		  json_integer_value(json_object_get(m, "walk_complete")) == 1);
	json_decref(m);
}

/* ---- progress_tick / progress_finish ---- */

static char *slurp(FILE *f)
{
	long n;
	char *buf;

	fflush(f);
	n = ftell(f);
	buf = calloc(1, (size_t)n + 1);
	rewind(f);
	cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fseek(f, 0, SEEK_END); /* later writes append */
	return buf;
}

static int count_lines_as_json(char *text)
{
	int n = 0;

	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		json_t *o = json_loads(line, 0, NULL);

		cr_assert(json_is_object(o), "metrics line is not one JSON object: %s", line);
		cr_assert_not_null(json_object_get(o, "files_processed"));
		json_decref(o);
		n++;
	}
	return n;
}

Test(progress, tick_prints_what_is_due, .init = setup_basic, .fini = teardown)
{
	FILE *line = tmpfile(), *metrics = tmpfile();
	struct progress pr;
	char *l, *m;

	progress_init(&pr, &st, line, metrics, 1.0);
	progress_tick(&pr, st.start + 0.1); /* nothing due yet */
	l = slurp(line);
	m = slurp(metrics);
	cr_assert_str_eq(l, "");
	cr_assert_str_eq(m, "");
	free(l);
	free(m);

	progress_tick(&pr, st.start + 0.6); /* the line is due, the metrics are not */
	progress_tick(&pr, st.start + 0.7); /* nothing new (next line at 1.1) */
	l = slurp(line);
	m = slurp(metrics);
	cr_assert_str_eq(
	    l, "\r\033[Kvhprep: 10 files (100 found)  1.0 files/s  5.0 MB/s  2 errors  ETA ?");
	cr_assert_str_eq(m, "");
	free(l);
	free(m);

	progress_tick(&pr, st.start + 1.2); /* both due */
	progress_finish(&pr);		    /* clears the line, one last metrics line */
	l = slurp(line);
	m = slurp(metrics);
	cr_assert_eq(strlen(l) > 6 && strcmp(l + strlen(l) - 4, "\r\033[K") == 0, 1,
		     "finish must clear the line: %s", l);
	cr_assert_eq(count_lines_as_json(m), 2);
	free(l);
	free(m);
	fclose(line);
	fclose(metrics);
}

Test(progress, zero_interval_means_no_metrics, .init = setup_basic, .fini = teardown)
{
	FILE *metrics = tmpfile();
	struct progress pr;
	char *m;

	progress_init(&pr, &st, NULL, metrics, 0);
	progress_tick(&pr, st.start + 100);
	progress_finish(&pr);
	m = slurp(metrics);
	cr_assert_str_eq(m, "");
	free(m);
	fclose(metrics);
}

Test(progress, finish_without_a_shown_line_prints_nothing_on_it, .init = setup_basic,
     .fini = teardown)
{
	FILE *line = tmpfile();
	struct progress pr;
	char *l;

	progress_init(&pr, &st, line, NULL, 5);
	progress_finish(&pr);
	l = slurp(line);
	cr_assert_str_eq(l, "");
	free(l);
	fclose(line);
}
