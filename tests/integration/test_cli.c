/* The command line of the built binary: help, version, usage errors and the checks that
 * refuse to run (exit 2) before anything is written. */
#include <criterion/criterion.h>
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"
#include "tests/common/vhskip.h"

TestSuite(cli, .init = itest_setup, .fini = itest_teardown, .timeout = 120);

/* A small source tree of three images under itest_root/src; returns its path. */
static char *make_source(void)
{
	char *src = itest_path("src");
	char *a = itest_fmt("%s/a.jpg", src), *b = itest_fmt("%s/sub/b.png", src),
	     *c = itest_fmt("%s/sub/c.webp", src);

	itest_make_image(a, 40, 30, 3, 1, 0);
	itest_make_image(b, 30, 40, 4, 2, 0);
	itest_make_image(c, 16, 16, 3, 3, 0);
	free(a);
	free(b);
	free(c);
	return src;
}

/* Expects text to equal the stored tests/data/NAME byte for byte; a difference shows the
 * first line that differs. When an option or a help line changes on purpose, regenerate
 * the stored texts from the built binary and review the diff:
 *     cmake --build build --target update-help && git diff tests/data */
static void expect_stored_text(const char *text, const char *name, const char *what)
{
	char *path = itest_fmt("%s/tests/data/%s", itest_source_dir(), name);
	char *want = itest_slurp(path, NULL);
	const char *a = want, *b = text;
	int line = 1;

	while (*a && *a == *b) {
		line += *a == '\n';
		a++;
		b++;
	}
	if (*a || *b) {
		while (a > want && a[-1] != '\n') { /* back to the start of the line */
			a--;
			b--;
		}
		cr_expect_fail("%s differs from tests/data/%s at line %d:\n  stored: %.*s\n  "
			       "actual: %.*s\nif intended: cmake --build build --target "
			       "update-help, then review git diff tests/data",
			       what, name, line, (int)strcspn(a, "\n"), a,
			       (int)strcspn(b, "\n"), b);
	}
	free(want);
	free(path);
}

/* The help is compared whole with a stored text, so a changed, dropped or new option
 * shows in review as a diff of tests/data/help.txt. */
Test(cli, help_is_the_stored_text)
{
	struct itest_proc p, h;

	itest_vhprep(&p, "--help", NULL);
	itest_assert_exit(&p, 0);
	expect_stored_text(p.out, "help.txt", "vhprep --help");
	cr_expect_eq(p.err_len, 0, "--help wrote to stderr: %s", p.err);

	itest_vhprep(&h, "-h", NULL);
	itest_assert_exit(&h, 0);
	cr_expect_str_eq(h.out, p.out, "-h is not --help");
	itest_proc_release(&h);
	itest_proc_release(&p);
}

Test(cli, bench_help_is_the_stored_text)
{
	struct itest_proc p;

	itest_vhprep(&p, "bench", "--help", NULL);
	itest_assert_exit(&p, 0);
	expect_stored_text(p.out, "help-bench.txt", "vhprep bench --help");
	cr_expect_eq(p.err_len, 0, "bench --help wrote to stderr: %s", p.err);
	itest_proc_release(&p);
}

Test(cli, version)
{
	const char *flags[] = {"--version", "-V"};

	for (int i = 0; i < 2; i++) {
		struct itest_proc p;
		regex_t re;

		itest_vhprep(&p, flags[i], NULL);
		itest_assert_exit(&p, 0);
		cr_assert_eq(regcomp(&re, "^vhprep [0-9]+\\.[0-9]+\\.[0-9]+\n$",
				     REG_EXTENDED | REG_NOSUB),
			     0);
		cr_expect_eq(regexec(&re, p.out, 0, NULL, 0), 0, "%s printed '%s'", flags[i],
			     p.out);
		regfree(&re);
		cr_expect_eq(p.err_len, 0, "%s wrote to stderr: %s", flags[i], p.err);
		itest_proc_release(&p);
	}
}

Test(cli, no_source_is_a_usage_error)
{
	struct itest_proc p;

	itest_vhprep(&p, "--resize", "224", NULL);
	itest_assert_exit(&p, 2);
	cr_expect(strstr(p.err, "SOURCE"), "stderr does not say SOURCE is missing: %s", p.err);
	cr_expect_eq(p.out_len, 0, "stdout: %s", p.out);
	{
		char *outputs = itest_path("outputs");

		cr_expect(!itest_exists(outputs), "a refused run made ./outputs");
		free(outputs);
	}
	itest_proc_release(&p);
}

Test(cli, unknown_option_and_extra_operand)
{
	char *src = make_source();
	char *out = itest_path("out");
	struct itest_proc p;

	itest_vhprep(&p, "--frobnicate", "-o", out, src, NULL);
	itest_assert_exit(&p, 2);
	cr_expect(strstr(p.err, "--frobnicate"), "stderr does not name the option: %s", p.err);
	cr_expect(!itest_exists(out), "a refused run created the outputs dir");
	itest_proc_release(&p);

	itest_vhprep(&p, "-o", out, src, src, NULL);
	itest_assert_exit(&p, 2);
	cr_expect(!itest_exists(out), "a refused run created the outputs dir");
	itest_proc_release(&p);

	itest_vhprep(&p, "-o", out, src, "--resize", NULL); /* option without its value */
	itest_assert_exit(&p, 2);
	itest_proc_release(&p);
	free(out);
	free(src);
}

Test(cli, bad_values_are_usage_errors)
{
	static const struct {
		const char *opt, *value, *extra_opt, *extra_value;
	} cases[] = {
	    {"--resize", "0", NULL, NULL},
	    {"--resize", "224x0", NULL, NULL},
	    {"--resize", "abc", NULL, NULL},
	    {"--resize", "-5", NULL, NULL},
	    {"--resize-mode", "diagonal", "--resize", "224"},
	    {"--resize-mode", "fit", NULL, NULL}, /* a mode needs --resize */
	    {"--sample", "1.5", NULL, NULL},
	    {"--sample", "0", NULL, NULL},
	    {"--sample", "half", NULL, NULL},
	    {"--shard", "3/3", NULL, NULL},
	    {"--shard", "1", NULL, NULL},
	    {"--shard", "0/0", NULL, NULL},
	    {"--quality", "101", NULL, NULL},
	    {"--quality", "0", NULL, NULL},
	    {"--format", "bmp", NULL, NULL},
	    {"--fail-on", "sometimes", NULL, NULL},
	    {"--threads", "0", NULL, NULL},
	    {"--io-depth", "0", NULL, NULL},
	    {"--limit", "0", NULL, NULL},
	    {"--min-size", "lots", NULL, NULL},
	    {"--min-size", "10M", "--max-size", "1M"},
	    {"--max-pixels", "0", NULL, NULL},
	    {"--metrics-interval", "-1", NULL, NULL},
	    {"--dataset", "preprocessed-images", NULL, NULL},
	    {"--dataset-alias", "latest", NULL, NULL}, /* needs --dataset */
	    {"--prefix", "../escape", NULL, NULL},
	};
	char *src = make_source();
	char *out = itest_path("out");

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct itest_argv a = {0};
		struct itest_proc p;

		itest_argv_add(&a, itest_bin());
		itest_argv_add(&a, cases[i].opt);
		itest_argv_add(&a, cases[i].value);
		if (cases[i].extra_opt) {
			itest_argv_add(&a, cases[i].extra_opt);
			itest_argv_add(&a, cases[i].extra_value);
		}
		itest_argv_add(&a, "-o");
		itest_argv_add(&a, out);
		itest_argv_add(&a, src);
		itest_vhprep_argv(&p, &a);
		cr_expect_eq(p.exit_code, 2, "%s %s: exit %d, want 2; stderr: %s", cases[i].opt,
			     cases[i].value, p.exit_code, p.err);
		cr_expect(strstr(p.err, cases[i].opt) ||
			      (cases[i].extra_opt && strstr(p.err, cases[i].extra_opt)),
			  "%s %s: stderr does not name the option: %s", cases[i].opt,
			  cases[i].value, p.err);
		cr_expect(!itest_exists(out), "%s %s: a refused run created the outputs dir",
			  cases[i].opt, cases[i].value);
		itest_rmtree(out);
		itest_proc_release(&p);
		itest_argv_free(&a);
	}
	free(out);
	free(src);
}

Test(cli, missing_source_path)
{
	char *missing = itest_path("no-such-dir");
	char *out = itest_path("out");
	struct itest_proc p;

	itest_vhprep(&p, "-o", out, missing, NULL);
	itest_assert_exit(&p, 2);
	cr_expect(strstr(p.err, "cannot open source"), "stderr: %s", p.err);
	cr_expect(strstr(p.err, missing), "stderr does not name the path: %s", p.err);
	cr_expect(!itest_exists(out), "a refused run created the outputs dir");
	itest_proc_release(&p);
	free(missing);
	free(out);
}

Test(cli, file_as_source)
{
	char *file = itest_path("single.jpg");
	char *out = itest_path("out");
	struct itest_proc p;

	itest_make_image(file, 20, 20, 3, 1, 0);
	itest_vhprep(&p, "-o", out, file, NULL);
	itest_assert_exit(&p, 2);
	cr_expect(strstr(p.err, "cannot open source"), "stderr: %s", p.err);
	cr_expect(!itest_exists(out), "a refused run created the outputs dir");
	itest_proc_release(&p);
	free(file);
	free(out);
}

Test(cli, outputs_inside_the_source_is_refused)
{
	char *src = make_source();
	const char *inside[] = {"out", "sub/out", "sub", "."};
	json_t *before = itest_snapshot(src);

	for (size_t i = 0; i < sizeof(inside) / sizeof(inside[0]); i++) {
		char *out = itest_fmt("%s/%s", src, inside[i]);
		struct itest_proc p;

		itest_vhprep(&p, "-o", out, src, NULL);
		cr_expect_eq(p.exit_code, 2, "-o %s: exit %d; stderr: %s", out, p.exit_code,
			     p.err);
		cr_expect(strstr(p.err, "inside the source"), "-o %s: stderr: %s", out, p.err);
		itest_proc_release(&p);
		free(out);
	}
	{ /* through a symlink to the source */
		char *link = itest_path("link-to-src");
		char *out = itest_fmt("%s/out", link);
		struct itest_proc p;

		cr_assert_eq(symlink(src, link), 0);
		itest_vhprep(&p, "-o", out, src, NULL);
		cr_expect_eq(p.exit_code, 2, "-o %s: exit %d; stderr: %s", out, p.exit_code,
			     p.err);
		itest_proc_release(&p);
		free(out);
		free(link);
	}
	{ /* the same through a relative outputs path, from inside the source */
		struct itest_argv a = {0};
		struct itest_spawn_opts o = {.cwd = src};
		struct itest_proc p;

		itest_argv_add(&a, itest_bin());
		itest_argv_add(&a, "-o");
		itest_argv_add(&a, "outputs");
		itest_argv_add(&a, ".");
		itest_run(a.v, &o, &p);
		cr_expect_eq(p.exit_code, 2, "-o outputs . from inside: exit %d; stderr: %s",
			     p.exit_code, p.err);
		itest_proc_release(&p);
		itest_argv_free(&a);
	}
	{
		json_t *after = itest_snapshot(src);

		itest_assert_snapshots_equal(before, after, "source after refused runs");
		json_decref(after);
	}
	json_decref(before);
	free(src);
}

/* The outputs and metadata lines of a dir, as one JSON object (the summary and error
 * log are rewritten by every run and left out). */
static json_t *outputs_state(const char *out)
{
	char *images = itest_fmt("%s/processed_images", out);
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	char *text = itest_slurp(meta, NULL);
	json_t *st = json_pack("{s:o, s:s}", "images", itest_snapshot(images), "lines", text);

	free(text);
	free(meta);
	free(images);
	return st;
}

/* Running the same command again into the same dir resumes: nothing is redone, nothing
 * changes, and the summary says so; other settings are refused (exit 2) naming the
 * difference; --overwrite redoes every input. */
Test(cli, a_rerun_resumes_and_other_settings_need_overwrite)
{
	char *src = make_source();
	char *out = itest_path("out");
	char *sum = itest_fmt("%s/vhprep-summary.json", out);
	struct itest_proc p;
	json_t *before, *after, *lines, *s;

	itest_vhprep(&p, "-q", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	before = outputs_state(out);

	itest_vhprep(&p, "-q", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	after = outputs_state(out);
	cr_expect(json_equal(before, after), "a rerun changed the outputs or their lines");
	json_decref(after);
	s = itest_read_json(sum);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.already_done")), 3);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.processed")), 0);
	json_decref(s);

	itest_vhprep(&p, "-q", "--resize", "10", "-o", out, src, NULL);
	itest_assert_exit(&p, 2);
	cr_expect(strstr(p.err, "--overwrite") && strstr(p.err, "resize:10x10"),
		  "stderr does not name the difference and --overwrite: %s", p.err);
	itest_proc_release(&p);
	after = outputs_state(out);
	cr_expect(json_equal(before, after), "a refused rerun changed the outputs");
	json_decref(after);

	itest_vhprep(&p, "-q", "--resize", "10", "--overwrite", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), 4,
		     "after --overwrite: %zu metadata lines, want 3 images + the CSV",
		     json_array_size(lines));
	json_decref(lines);
	s = itest_read_json(sum);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.processed")), 3);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.replaced")), 3);
	json_decref(s);
	{
		char *csv_path = itest_fmt("%s/processing_metadata.csv", out);
		struct itest_csv csv;

		itest_read_csv(csv_path, &csv);
		cr_expect_eq(csv.nrows, 4, "after --overwrite: %zu CSV rows, want header + 3",
			     csv.nrows);
		itest_csv_free(&csv);
		free(csv_path);
	}
	json_decref(before);
	free(sum);
	free(out);
	free(src);
}

Test(cli, outputs_default_to_vh_outputs_dir)
{
	char *src = make_source();
	char *vhout = itest_path("vh-outputs");
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", vhout);
	struct itest_proc p;

	setenv("VH_OUTPUTS_DIR", vhout, 1);
	itest_vhprep(&p, "-q", src, NULL);
	unsetenv("VH_OUTPUTS_DIR");
	itest_assert_exit(&p, 0);
	cr_expect(itest_exists(meta), "no records in $VH_OUTPUTS_DIR (%s)", vhout);
	itest_proc_release(&p);
	free(meta);
	free(vhout);
	free(src);
}

/* ---- fatal runtime errors: exit 1 ---- */

static char *small_mount; /* a tmpfs mounted by the test, or NULL */

static void fatal_setup(void)
{
	itest_setup();
	small_mount = NULL;
}

static void fatal_teardown(void)
{
	if (small_mount) {
		umount2(small_mount, MNT_DETACH);
		free(small_mount);
		small_mount = NULL;
	}
	itest_teardown();
}

TestSuite(fatal, .init = fatal_setup, .fini = fatal_teardown, .timeout = 120);

Test(fatal, outputs_that_cannot_be_created)
{
	char *src = make_source();
	char *file = itest_path("a-file");
	char *out = itest_fmt("%s/out", file);
	struct itest_proc p;

	itest_write_file(file, "x", 1);
	itest_vhprep(&p, "-q", "-o", out, src, NULL);
	itest_assert_exit(&p, 1);
	cr_expect(strstr(p.err, out), "stderr does not name the outputs dir: %s", p.err);
	itest_proc_release(&p);
	free(out);
	free(file);
	free(src);
}

Test(fatal, read_only_outputs_dir)
{
	char *src = make_source();
	char *ro = itest_path("ro");
	char *out = itest_fmt("%s/out", ro);
	struct itest_spawn_opts o = {.drop_dac = geteuid() == 0};
	struct itest_argv a = {0};
	struct itest_proc p;

	itest_mkdirs(ro);
	cr_assert_eq(chmod(ro, 0555), 0);
	itest_argv_add(&a, "/bin/mkdir");
	itest_argv_add(&a, out);
	itest_run(a.v, &o, &p);
	itest_argv_free(&a);
	if (p.exit_code == 0 || p.exit_code == 125 || p.exit_code == 126) {
		itest_proc_release(&p);
		vht_missing("permissions do not apply to this test's children");
	}
	itest_proc_release(&p);
	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "-q");
	itest_argv_add(&a, "-o");
	itest_argv_add(&a, out);
	itest_argv_add(&a, src);
	itest_run(a.v, &o, &p);
	itest_argv_free(&a);
	itest_assert_exit(&p, 1);
	itest_proc_release(&p);
	chmod(ro, 0755);
	free(out);
	free(ro);
	free(src);
}

Test(fatal, disk_full)
{
	char *src = itest_path("src");
	char *mnt = itest_path("small");
	char *out = itest_fmt("%s/out", mnt);
	size_t len;
	void *jpg = itest_encode_image("jpg", 640, 480, 3, 3, 0, &len);
	struct itest_proc p;
	json_t *lines;

	for (int i = 0; i < 60; i++) {
		char *path = itest_fmt("%s/d%d/img_%02d.jpg", src, i % 3, i);

		itest_write_file(path, jpg, len);
		free(path);
	}
	free(jpg);
	itest_mkdirs(mnt);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=600k,mode=0755") != 0)
		vht_missing(
		    "cannot mount a small tmpfs here (%s): the disk-full case is untestable",
		    strerror(errno));
	small_mount = itest_fmt("%s", mnt);
	itest_vhprep(&p, "-q", "--metrics-interval", "0", "-o", out, src, NULL);
	itest_assert_exit(&p, 1);
	/* what was written is consistent: each output has its line, each line its file,
	 * no partial line, no temporary file */
	lines = itest_check_outputs(out, "processed_images", 0);
	cr_expect_lt(json_array_size(lines), 61,
		     "the disk held everything: not a disk-full run");
	json_decref(lines);
	itest_proc_release(&p);
	free(out);
	free(mnt);
	free(src);
}
