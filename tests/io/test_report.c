#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/report.h"
#include "tests/common/vhtest.h"

/* ---- report_csv_field ---- */

static void expect_field(const char *in, const char *want)
{
	char buf[128];
	int n = report_csv_field(in, buf, sizeof(buf));

	cr_assert_eq(n, (int)strlen(want), "'%s': length %d, want %zu", in, n, strlen(want));
	cr_assert_str_eq(buf, want);
}

Test(report_csv_field, rfc4180_quoting)
{
	expect_field("plain.jpg", "plain.jpg");
	expect_field("", "");
	expect_field("with space.jpg", "with space.jpg");
	expect_field("a,b.jpg", "\"a,b.jpg\"");
	expect_field("say \"hi\".jpg", "\"say \"\"hi\"\".jpg\"");
	expect_field("\"", "\"\"\"\"");
	expect_field("line\nbreak", "\"line\nbreak\"");
	expect_field("cr\rhere", "\"cr\rhere\"");
	expect_field("\xe5\x90\x8d,x", "\"\xe5\x90\x8d,x\"");
}

Test(report_csv_field, too_small_is_refused)
{
	char buf[8];

	cr_assert_eq(report_csv_field("abcdefgh", buf, sizeof(buf)), -1);
	cr_assert_eq(report_csv_field("abcdefg", buf, sizeof(buf)), 7, "plain exact fit");
	cr_assert_eq(report_csv_field("a,bcdefgh", buf, sizeof(buf)), -1);
	cr_assert_eq(report_csv_field("\"\"\"", buf, sizeof(buf)), -1, "8 quotes + NUL");
	cr_assert_eq(report_csv_field("x", buf, 1), -1);
	cr_assert_eq(report_csv_field(",", buf, 2), -1);
}

/* "Returns the length, or -1 if it does not fit": a quoted field that fits the buffer
 * exactly (with its NUL) is refused, because the loop keeps 3 bytes spare per character
 * where 2 bytes (closing quote, NUL) are enough after the last one. */
Test(report_csv_field, quoted_exact_fit_is_accepted)
{
	char buf[5];

	cr_expect_eq(report_csv_field("a,", buf, sizeof(buf)), 4, "\"a,\" + NUL is 5 bytes");
	if (report_csv_field("a,", buf, sizeof(buf)) == 4)
		cr_assert_str_eq(buf, "\"a,\"");
}

/* ---- report_open / csv_row / error / summary ---- */

static char dir[PATH_MAX];
static int dfd = -1;

static void setup(void)
{
	vht_tmpdir(dir, sizeof(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void teardown(void)
{
	close(dfd);
	vht_rm_rf(dir);
}

static char *contents(const char *name)
{
	char path[PATH_MAX];

	return vht_slurp(vht_join(path, sizeof(path), dir, name), NULL);
}

Test(report, csv_rows_exact, .init = setup, .fini = teardown)
{
	struct report *r;
	struct vherr err = {0};
	char *text;

	vht_put(dir, REPORT_CSV_FILE, "old,rows\n");
	cr_assert_eq(report_open(dfd, 1, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(report_csv_row(r, "processed_images/a.jpg", 640, 480, 224, 224, &err), 0);
	cr_assert_eq(report_csv_row(r, "processed_images/a,b \"c\".jpg", 1, 2, 3, 4, &err), 0);
	report_close(r, NULL);
	report_close(NULL, NULL);
	text = contents(REPORT_CSV_FILE);
	cr_assert_str_eq(text,
			 "filename,original_size,processed_size\n"
			 "processed_images/a.jpg,\"(640, 480)\",\"(224, 224)\"\n"
			 "\"processed_images/a,b \"\"c\"\".jpg\",\"(1, 2)\",\"(3, 4)\"\n");
	free(text);
}

Test(report, csv_row_with_too_long_name_is_refused, .init = setup, .fini = teardown)
{
	struct report *r;
	struct vherr err = {0};
	char *name = malloc(9000), *text;

	memset(name, 'x', 8999);
	name[8999] = '\0';
	cr_assert_eq(report_open(dfd, 1, &r, &err), 0);
	cr_assert_lt(report_csv_row(r, name, 1, 1, 1, 1, &err), 0);
	cr_assert_eq(err.stage, VHSTAGE_RECORD);
	report_close(r, NULL);
	text = contents(REPORT_CSV_FILE);
	cr_assert_str_eq(text, "filename,original_size,processed_size\n",
			 "nothing half-written");
	free(text);
	free(name);
}

Test(report, error_lines_are_json, .init = setup, .fini = teardown)
{
	struct report *r;
	struct vherr err = {0}, failure = {0};
	char *text, *nl;
	size_t len;
	json_t *o;

	vht_put(dir, REPORT_ERRORS_FILE, "{\"stale\": 1}\n");
	cr_assert_eq(report_open(dfd, 1, &r, &err), 0);
	vherr_set(&failure, VHERR_CORRUPT, VHSTAGE_DECODE, "bad marker in '%s'", "a \"b\".jpg");
	cr_assert_eq(report_error(r, "/mnt/raw/a \"b\".jpg", &failure, &err), 0);
	vherr_set(&failure, VHERR_NOENT, VHSTAGE_READ, NULL);
	cr_assert_eq(report_error(r, "/mnt/raw/bad\xff.jpg", &failure, &err), 0,
		     "a name that is not UTF-8 is still recorded");
	report_close(r, NULL);

	text = contents(REPORT_ERRORS_FILE);
	len = strlen(text);
	nl = strchr(text, '\n');
	cr_assert_not_null(nl);
	*nl = '\0';
	o = json_loads(text, 0, NULL);
	cr_assert_not_null(o, "first line is not JSON: %s", text);
	cr_assert_eq(json_object_size(o), 4);
	cr_assert_str_eq(json_string_value(json_object_get(o, "path")), "/mnt/raw/a \"b\".jpg");
	cr_assert_str_eq(json_string_value(json_object_get(o, "stage")), "decode");
	cr_assert_str_eq(json_string_value(json_object_get(o, "reason")), "corrupt");
	cr_assert_str_eq(json_string_value(json_object_get(o, "message")),
			 "bad marker in 'a \"b\".jpg'");
	json_decref(o);

	o = json_loads(nl + 1, 0, NULL);
	cr_assert_not_null(o, "second line is not JSON: %s", nl + 1);
	cr_assert_str_eq(json_string_value(json_object_get(o, "reason")), "not_found");
	cr_assert_str_eq(json_string_value(json_object_get(o, "stage")), "read");
	cr_assert(json_is_string(json_object_get(o, "path")));
	json_decref(o);
	cr_assert_eq(strchr(nl + 1, '\n'), text + len - 1, "exactly two lines");
	free(text);
}

Test(report, open_in_unwritable_place_fails, .init = setup, .fini = teardown)
{
	struct report *r = (struct report *)0x1;
	struct vherr err = {0};

	cr_assert_lt(report_open(-1, 1, &r, &err), 0);
	cr_assert_null(r);
	cr_assert_neq(err.code, VHERR_OK);
}

Test(report, summary_is_sorted_indented_json, .init = setup, .fini = teardown)
{
	struct vherr err = {0};
	json_t *s = json_pack("{s:i, s:s, s:{s:b}}", "zeta", 1, "alpha", "x", "mid", "ok", 1);
	json_t *back;
	char *text;

	vht_put(dir, REPORT_SUMMARY_FILE, "old summary");
	cr_assert_eq(report_write_summary(dfd, s, &err), 0, "%s", err.msg);
	text = contents(REPORT_SUMMARY_FILE);
	cr_assert_str_eq(text, "{\n"
			       "  \"alpha\": \"x\",\n"
			       "  \"mid\": {\n"
			       "    \"ok\": true\n"
			       "  },\n"
			       "  \"zeta\": 1\n"
			       "}\n");
	back = json_loads(text, 0, NULL);
	cr_assert_not_null(back);
	cr_assert(json_equal(back, s));
	cr_assert_eq(vht_count_names(dir, "tmp"), 0, "the temporary file was left behind");
	json_decref(back);
	json_decref(s);
	free(text);
}

Test(report, summary_into_read_only_dir_fails_cleanly, .init = setup, .fini = teardown)
{
	struct vherr err = {0};
	json_t *s = json_pack("{s:i}", "n", 1);
	char ro[PATH_MAX];
	int rofd;

	vht_mkdirs(vht_join(ro, sizeof(ro), dir, "ro"));
	rofd = open(ro, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_eq(chmod(ro, 0555), 0);
	vht_require_permissions(dir);
	cr_assert_lt(report_write_summary(rofd, s, &err), 0);
	cr_assert_eq(err.code, VHERR_ACCESS);
	cr_assert_eq(err.stage, VHSTAGE_RECORD);
	cr_assert_eq(vht_count_names(ro, "summary"), 0);
	close(rofd);
	json_decref(s);
}
