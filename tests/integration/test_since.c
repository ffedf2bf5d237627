/* Incremental dataset versions (--since): each Valohai execution starts with an empty
 * outputs dir, and the earlier run's records, given as an input, say what is done. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"

TestSuite(since, .init = itest_setup, .fini = itest_teardown, .timeout = 120);

/* Six PNGs, then a first run bound to dataset://img/v1. */
static char *first_run(char **src_out)
{
	char *src = itest_path("src"), *out = itest_path("v1");
	struct itest_proc p;

	for (int i = 1; i <= 6; i++) {
		char *f = itest_fmt("%s/f%d.png", src, i);

		itest_make_image(f, 10 + i, 10, 3, (unsigned)i, 0);
		free(f);
	}
	itest_vhprep(&p, "-q", "--metrics-interval", "0", "--dataset", "dataset://img/v1", "-o",
		     out, src, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	*src_out = src;
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);

	free(out);
	return meta;
}

/* f2 deleted, f3 rewritten, f4 touched (same bytes, other mtime), new.png added. */
static void change_source(const char *src)
{
	char *f2 = itest_fmt("%s/f2.png", src), *f3 = itest_fmt("%s/f3.png", src);
	char *f4 = itest_fmt("%s/f4.png", src), *nw = itest_fmt("%s/new.png", src);
	struct timespec old[2] = {{1577836800, 0}, {1577836800, 0}};

	cr_assert_eq(unlink(f2), 0);
	itest_make_image(f3, 33, 22, 3, 99, 0);
	cr_assert_eq(utimensat(AT_FDCWD, f4, old, 0), 0);
	itest_make_image(nw, 8, 8, 3, 5, 0);
	free(f2);
	free(f3);
	free(f4);
	free(nw);
}

/* The exclude list of the CSV's line, the version's last line. */
static json_t *exclude_of(const char *out)
{
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	json_t *lines = itest_read_jsonl(meta), *last, *v;

	last = json_array_get(lines, json_array_size(lines) - 1);
	cr_assert_str_eq(itest_jstr(last, "file"), "processing_metadata.csv");
	v = json_object_get(json_object_get(last, "metadata"), "valohai.dataset-versions");
	v = json_array_get(v, 0);
	cr_assert_str_eq(itest_jstr(v, "uri"), "dataset://img/v2");
	cr_assert_str_eq(itest_jstr(v, "from"), "dataset://img/v1");
	v = json_incref(json_object_get(v, "exclude"));
	json_decref(lines);
	free(meta);
	return v;
}

static int has(json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
	{
		if (!strcmp(json_string_value(v), s))
			return 1;
	}
	return 0;
}

/* By size and mtime: the unchanged three are skipped; the new, the rewritten and the
 * touched ones are processed; the version built from v1 excludes the outputs of the
 * deleted, rewritten and touched inputs. */
Test(since, new_and_changed_inputs_only_and_the_exclude_list)
{
	char *src, *since = first_run(&src), *out = itest_path("v2");
	char *sum = itest_fmt("%s/vhprep-summary.json", out);
	struct itest_proc p;
	json_t *s, *ex, *lines;

	change_source(src);
	itest_vhprep(&p, "-q", "--metrics-interval", "0", "--since", since, "--dataset-from",
		     "dataset://img/v1", "--dataset", "dataset://img/v2", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	s = itest_read_json(sum);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.unchanged")), 3);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.processed")), 3);
	json_decref(s);
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), 4, "3 outputs and the CSV");
	json_decref(lines);
	ex = exclude_of(out);
	cr_expect_eq(json_array_size(ex), 3);
	cr_expect(has(ex, "processed_images/f2.png"), "the deleted input's output");
	cr_expect(has(ex, "processed_images/f3.png"), "the rewritten input's output");
	cr_expect(has(ex, "processed_images/f4.png"), "the touched input's output");
	json_decref(ex);
	free(sum);
	free(out);
	free(since);
	free(src);
}

/* By content: the touched file is unchanged after all; --dataset-exclude adds a name. */
Test(since, checksums_see_through_a_touch)
{
	char *src, *since = first_run(&src), *out = itest_path("v2");
	char *sum = itest_fmt("%s/vhprep-summary.json", out);
	struct itest_proc p;
	json_t *s, *ex;

	change_source(src);
	itest_vhprep(&p, "-q", "--metrics-interval", "0", "--since", since, "--since-checksum",
		     "--dataset-from", "dataset://img/v1", "--dataset", "dataset://img/v2",
		     "--dataset-exclude", "processed_images/f6.png", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	s = itest_read_json(sum);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.unchanged")), 4);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.processed")), 2);
	json_decref(s);
	ex = exclude_of(out);
	cr_expect_eq(json_array_size(ex), 3);
	cr_expect(has(ex, "processed_images/f6.png"), "--dataset-exclude");
	cr_expect(!has(ex, "processed_images/f4.png"), "f4's bytes did not change");
	json_decref(ex);
	free(sum);
	free(out);
	free(since);
	free(src);
}

/* A missing --since file is a usage error; --since-checksum alone too. */
Test(since, usage_errors)
{
	char *src = itest_path("src"), *out = itest_path("out");
	struct itest_proc p;

	char *a = itest_fmt("%s/a.png", src);

	itest_make_image(a, 8, 8, 3, 1, 0);
	free(a);
	itest_vhprep(&p, "-q", "--since", "/nonexistent/valohai.metadata.jsonl", "-o", out, src,
		     NULL);
	itest_assert_exit(&p, 2);
	cr_expect(strstr(p.err, "--since"), "%s", p.err);
	itest_proc_release(&p);
	itest_vhprep(&p, "-q", "--since-checksum", "-o", out, src, NULL);
	itest_assert_exit(&p, 2);
	itest_proc_release(&p);
	itest_vhprep(&p, "-q", "--dataset-exclude", "x", "--dataset", "dataset://a/b", "-o",
		     out, src, NULL);
	itest_assert_exit(&p, 2);
	itest_proc_release(&p);
	free(out);
	free(src);
}
