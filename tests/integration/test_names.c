/* Names that are not UTF-8 (Latin-1 names on old NFS shares), in the source root, the
 * outputs path and the files: processed like any other, outputs named with the same
 * bytes, records valid JSON where every name can be told apart and recovered exactly
 * (jsonname.h: \xHH escapes plus the raw bytes in base64), and a rerun resumes them. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

TestSuite(names, .init = itest_setup, .fini = itest_teardown, .timeout = 120);

/* Latin-1 "café" and friends; one name also holds a backslash. */
static const char *const files[] = {
    "caf\xe9.jpg",
    "\xe9t\xe9/r\xe9sum\xe9.png",
    "back\\sl\xe4sh.jpg",
    "ok-utf8-caf\xc3\xa9.jpg",
};
#define NFILES (sizeof(files) / sizeof(*files))

/* Decodes standard base64 (the test's own, to check vhprep's). */
static char *unb64(const char *in)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	char *out = calloc(n, 1);

	for (size_t i = 0; i + 3 < n; i += 4) {
		unsigned v = 0;
		int pad = 0;

		for (int k = 0; k < 4; k++) {
			const char *p = strchr(tab, in[i + k]);

			pad += in[i + k] == '=';
			v = v << 6 | (p && in[i + k] ? (unsigned)(p - tab) : 0);
		}
		out[o++] = (char)(v >> 16);
		if (pad < 2)
			out[o++] = (char)(v >> 8);
		if (pad < 1)
			out[o++] = (char)v;
	}
	return out;
}

Test(names, latin1_names_everywhere)
{
	char *src = itest_path("src-caf\xe9"), *out = itest_path("out-\xe9t\xe9");
	char *meta_path = itest_fmt("%s/valohai.metadata.jsonl", out);
	char *csv_path = itest_fmt("%s/processing_metadata.csv", out);
	char *errs_path = itest_fmt("%s/vhprep-errors.jsonl", out);
	char *sum = itest_fmt("%s/vhprep-summary.json", out);
	struct itest_list want = {0}, got;
	struct itest_proc p;
	json_t *lines, *line, *errors, *s;
	size_t i;
	int raw_named = 0;

	for (i = 0; i < NFILES; i++) {
		char *f = itest_fmt("%s/%s", src, files[i]);

		itest_make_image(f, 40, 30, 3, (unsigned)i, 0);
		itest_list_add(&want, files[i]);
		free(f);
	}
	{ /* a bad file with a Latin-1 name: its failure must name it */
		char *bad = itest_fmt("%s/d\xe9j\xe0.jpg", src);

		itest_write_file(bad, "not a jpeg", 10);
		free(bad);
	}
	itest_vhprep(&p, "-q", "--metrics-interval", "0", "--max-errors", "1", "-o", out, src,
		     NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);

	/* outputs carry the sources' bytes */
	{
		char *images = itest_fmt("%s/processed_images", out);

		itest_list_files(images, &got);
		itest_list_sort(&want);
		itest_assert_lists_equal(&want, &got, "output names vs source names");
		itest_list_free(&got);
		free(images);
	}
	/* every line parses; escaped names come with their bytes */
	lines = itest_read_jsonl(meta_path);
	cr_assert_eq(json_array_size(lines), NFILES + 1);
	json_array_foreach(lines, i, line)
	{
		json_t *b64 = json_object_get(line, "file_b64");
		json_t *m = json_object_get(line, "metadata");

		if (!b64)
			continue;
		{
			char *raw = unb64(json_string_value(b64));
			char *rel = unb64(itest_jstr(m, "source_relpath_b64"));
			char *full = itest_fmt("%s/%s", out, raw);

			cr_expect(itest_exists(full), "file_b64 names '%s', which is not there",
				  raw);
			cr_expect(!strncmp(raw, "processed_images/", 17) &&
				      !strcmp(raw + 17, rel),
				  "file and source_relpath disagree: %s vs %s", raw, rel);
			cr_expect(strstr(itest_jstr(line, "file"), "\\x"),
				  "the readable name shows its odd bytes: %s",
				  itest_jstr(line, "file"));
			cr_expect(json_object_get(m, "source_b64"), "the location's bytes too");
			raw_named++;
			free(full);
			free(rel);
			free(raw);
		}
	}
	cr_expect_eq(raw_named, 3, "three names are not UTF-8");
	json_decref(lines);
	/* the failure names its file, recoverably */
	errors = itest_read_jsonl(errs_path);
	cr_assert_eq(json_array_size(errors), 1);
	{
		char *raw = unb64(itest_jstr(json_array_get(errors, 0), "path_b64"));
		char *want_path = itest_fmt("%s/d\xe9j\xe0.jpg", src);

		cr_expect_str_eq(raw, want_path);
		free(want_path);
		free(raw);
	}
	json_decref(errors);
	/* CSV rows: distinct names, valid text */
	{
		struct itest_csv csv;

		itest_read_csv(csv_path, &csv);
		cr_expect_eq(csv.nrows, NFILES + 1);
		itest_csv_free(&csv);
	}
	s = itest_read_json(sum);
	cr_expect(strstr(itest_jstr(s, "source"), "\\xE9"), "summary source: %s",
		  itest_jstr(s, "source"));
	json_decref(s);
	/* and a rerun resumes them all */
	itest_vhprep(&p, "-q", "--metrics-interval", "0", "--max-errors", "1", "-o", out, src,
		     NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	s = itest_read_json(sum);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.already_done")),
		     (json_int_t)NFILES);
	json_decref(s);
	itest_list_free(&want);
	free(sum);
	free(errs_path);
	free(csv_path);
	free(meta_path);
	free(out);
	free(src);
}
