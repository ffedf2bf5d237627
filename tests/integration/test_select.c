/* Selection: --include/--exclude, --min-size/--max-size, --limit, --sample, --shard,
 * --files-from, and what the walk does with symlinks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itest.h"

TestSuite(select, .init = itest_setup, .fini = itest_teardown, .timeout = 120);

static const char *const mixed[] = {
    "a.jpg", "b.png", "c.webp", "keep/d.jpg", "keep/deep/e.png", "skip/f.jpg", "skip/g h.png"};
#define NMIXED (sizeof(mixed) / sizeof(mixed[0]))

static char *make_mixed(void)
{
	char *src = itest_path("src");

	for (size_t i = 0; i < NMIXED; i++) {
		char *p = itest_fmt("%s/%s", src, mixed[i]);

		itest_make_image(p, 16, 12, 3, (unsigned)i, 0);
		free(p);
	}
	return src;
}

/* n tiny PNGs spread over a few folders: set/dK/fNNN.png. One encoding, n copies. */
static char *make_many(int n)
{
	char *src = itest_path("many");
	size_t len;
	void *png = itest_encode_image("png", 8, 8, 3, 1, 0, &len);

	for (int i = 0; i < n; i++) {
		char *p = itest_fmt("%s/set/d%d/f%03d.png", src, i % 7, i);

		itest_write_file(p, png, len);
		free(p);
	}
	free(png);
	return src;
}

/* Runs vhprep with the NULL-terminated options, then "-o out src"; checks the records
 * and returns the sorted source-relative paths of the outputs (extension as written). */
static void run_select(const char *src, const char *out, int want_exit, struct itest_list *l,
		       ...)
{
	struct itest_argv a = {0};
	struct itest_proc p;
	const char *s;
	va_list ap;
	char *root = itest_fmt("%s/processed_images", out);
	json_t *lines;

	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "-q");
	va_start(ap, l);
	while ((s = va_arg(ap, const char *)))
		itest_argv_add(&a, s);
	va_end(ap);
	itest_argv_add(&a, "-o");
	itest_argv_add(&a, out);
	itest_argv_add(&a, src);
	itest_vhprep_argv(&p, &a);
	itest_assert_exit(&p, want_exit);
	lines = itest_check_outputs(out, "processed_images", 1);
	itest_list_files(root, l);
	cr_expect_eq(json_array_size(lines), l->n + 1);
	json_decref(lines);
	itest_proc_release(&p);
	itest_argv_free(&a);
	free(root);
}

/* Asserts that l holds exactly the NULL-terminated names. */
static void expect_set(const struct itest_list *l, const char *what, ...)
{
	struct itest_list want = {0};
	const char *s;
	va_list ap;

	va_start(ap, what);
	while ((s = va_arg(ap, const char *)))
		itest_list_add(&want, s);
	va_end(ap);
	itest_list_sort(&want);
	itest_assert_lists_equal(l, &want, what);
	itest_list_free(&want);
}

static int run_no = 0;

static char *next_out(void)
{
	return itest_fmt("%s/out-%d", itest_root, ++run_no);
}

Test(select, include_and_exclude)
{
	char *src = make_mixed();
	struct itest_list l;
	char *out;

	out = next_out();
	run_select(src, out, 0, &l, "--include", "*.jpg", NULL);
	expect_set(&l, "--include *.jpg", "a.jpg", "keep/d.jpg", "skip/f.jpg", NULL);
	itest_list_free(&l);
	free(out);

	out = next_out();
	run_select(src, out, 0, &l, "--include", "*.jpg", "--include", "*.webp", NULL);
	expect_set(&l, "--include *.jpg --include *.webp", "a.jpg", "c.webp", "keep/d.jpg",
		   "skip/f.jpg", NULL);
	itest_list_free(&l);
	free(out);

	out = next_out();
	run_select(src, out, 0, &l, "--exclude", "*.png", NULL);
	expect_set(&l, "--exclude *.png", "a.jpg", "c.webp", "keep/d.jpg", "skip/f.jpg", NULL);
	itest_list_free(&l);
	free(out);

	/* a pattern with '/' matches the relative path */
	out = next_out();
	run_select(src, out, 0, &l, "--include", "keep/*.jpg", NULL);
	expect_set(&l, "--include keep/*.jpg", "keep/d.jpg", NULL);
	itest_list_free(&l);
	free(out);

	out = next_out();
	run_select(src, out, 0, &l, "--exclude", "skip/*", NULL);
	expect_set(&l, "--exclude skip/*", "a.jpg", "b.png", "c.webp", "keep/d.jpg",
		   "keep/deep/e.png", NULL);
	itest_list_free(&l);
	free(out);

	/* one without '/' matches the base name only: "keep*" names no file, and a walk
	 * that selects none of the files it found is exit 2 */
	out = next_out();
	run_select(src, out, 2, &l, "--include", "keep*", NULL);
	expect_set(&l, "--include keep*", NULL);
	itest_list_free(&l);
	free(out);

	out = next_out();
	run_select(src, out, 0, &l, "--include", "d.*", NULL);
	expect_set(&l, "--include d.*", "keep/d.jpg", NULL);
	itest_list_free(&l);
	free(out);

	out = next_out();
	run_select(src, out, 0, &l, "--include", "*.jpg", "--exclude", "skip/*", "--exclude",
		   "a.*", NULL);
	expect_set(&l, "--include *.jpg --exclude skip/* --exclude a.*", "keep/d.jpg", NULL);
	{
		char *sum_path = itest_fmt("%s/vhprep-summary.json", out);
		json_t *s = itest_read_json(sum_path);

		cr_expect_eq(json_integer_value(itest_jget(s, "files.found")),
			     (json_int_t)NMIXED);
		cr_expect_eq(json_integer_value(itest_jget(s, "files.filtered")),
			     (json_int_t)NMIXED - 1);
		cr_expect_eq(json_integer_value(itest_jget(s, "files.processed")), 1);
		json_decref(s);
		free(sum_path);
	}
	itest_list_free(&l);
	free(out);
	free(src);
}

Test(select, size_bounds)
{
	char *src = itest_path("src");
	const char *names[] = {"small.png", "mid.png", "large.png"};
	const int sides[] = {8, 64, 256};
	uint64_t size[3];
	char min_arg[32], max_arg[32];
	struct itest_list l;
	char *out;

	for (int i = 0; i < 3; i++) {
		char *p = itest_fmt("%s/%s", src, names[i]);

		itest_make_image(p, sides[i], sides[i], 3, (unsigned)i, 0);
		size[i] = itest_file_size(p);
		free(p);
	}
	cr_assert(size[0] < size[1] && size[1] < size[2], "sizes %llu %llu %llu",
		  (unsigned long long)size[0], (unsigned long long)size[1],
		  (unsigned long long)size[2]);
	snprintf(min_arg, sizeof(min_arg), "%llu", (unsigned long long)size[1]);
	snprintf(max_arg, sizeof(max_arg), "%llu", (unsigned long long)size[1]);

	out = next_out();
	run_select(src, out, 0, &l, "--min-size", min_arg, NULL);
	expect_set(&l, "--min-size = mid's size (inclusive)", "mid.png", "large.png", NULL);
	itest_list_free(&l);
	free(out);

	out = next_out();
	run_select(src, out, 0, &l, "--max-size", max_arg, NULL);
	expect_set(&l, "--max-size = mid's size (inclusive)", "mid.png", "small.png", NULL);
	itest_list_free(&l);
	free(out);

	out = next_out();
	run_select(src, out, 0, &l, "--min-size", min_arg, "--max-size", max_arg, NULL);
	expect_set(&l, "--min-size = --max-size = mid's size", "mid.png", NULL);
	{
		char *sum_path = itest_fmt("%s/vhprep-summary.json", out);
		json_t *s = itest_read_json(sum_path);

		cr_expect_eq(json_integer_value(itest_jget(s, "files.skipped_size")), 2);
		cr_expect_eq(json_integer_value(itest_jget(s, "files.failed")), 0);
		json_decref(s);
		free(sum_path);
	}
	itest_list_free(&l);
	free(out);

	/* suffixes: 1k = 1024 bytes */
	out = next_out();
	run_select(src, out, 0, &l, "--max-size", "1k", NULL);
	{
		size_t want = 0;

		for (int i = 0; i < 3; i++)
			want += size[i] <= 1024;
		cr_expect_eq(l.n, want,
			     "--max-size 1k: %zu outputs, want %zu (sizes %llu %llu %llu)", l.n,
			     want, (unsigned long long)size[0], (unsigned long long)size[1],
			     (unsigned long long)size[2]);
	}
	itest_list_free(&l);
	free(out);
	free(src);
}

Test(select, limit_gives_exactly_n)
{
	char *src = make_many(40);
	struct itest_list l;
	char *out;

	out = next_out();
	run_select(src, out, 0, &l, "--limit", "7", NULL);
	cr_expect_eq(l.n, 7, "--limit 7: %zu outputs", l.n);
	itest_list_free(&l);
	free(out);

	/* with a size filter the limit counts files after their size is known */
	out = next_out();
	run_select(src, out, 0, &l, "--limit", "7", "--min-size", "1", NULL);
	cr_expect_eq(l.n, 7, "--limit 7 --min-size 1: %zu outputs", l.n);
	itest_list_free(&l);
	free(out);

	out = next_out();
	run_select(src, out, 0, &l, "--limit", "1000", NULL);
	cr_expect_eq(l.n, 40, "--limit above the file count: %zu outputs", l.n);
	itest_list_free(&l);
	free(out);
	free(src);
}

Test(select, sample_is_reproducible_and_about_half)
{
	char *src = make_many(120);
	char *copy = itest_path("elsewhere/copy of many");
	struct itest_list a, b, c;
	char *out;

	out = next_out();
	run_select(src, out, 0, &a, "--sample", "0.5", NULL);
	free(out);
	out = next_out();
	run_select(src, out, 0, &b, "--sample", "0.5", NULL);
	free(out);
	itest_assert_lists_equal(&a, &b, "two runs of --sample 0.5");
	cr_expect(a.n >= 36 && a.n <= 84, "--sample 0.5 of 120 kept %zu", a.n);
	/* the choice is a hash of the relative path: the same tree elsewhere, same choice */
	itest_copy_tree(src, copy);
	out = next_out();
	run_select(copy, out, 0, &c, "--sample", "0.5", NULL);
	free(out);
	itest_assert_lists_equal(&a, &c, "--sample 0.5 of a copy of the tree");
	itest_list_free(&a);
	itest_list_free(&b);
	itest_list_free(&c);
	free(copy);
	free(src);
}

Test(select, shards_partition_the_files)
{
	char *src = make_many(90);
	struct itest_list shard[3], all = {0};
	size_t total = 0;

	for (int s = 0; s < 3; s++) {
		char arg[16];
		char *out = next_out();

		snprintf(arg, sizeof(arg), "%d/3", s);
		run_select(src, out, 0, &shard[s], "--shard", arg, NULL);
		cr_expect_gt(shard[s].n, 0, "shard %s is empty", arg);
		total += shard[s].n;
		for (size_t i = 0; i < shard[s].n; i++) {
			cr_expect(!itest_list_has(&all, shard[s].v[i]), "%s is in two shards",
				  shard[s].v[i]);
			itest_list_add(&all, shard[s].v[i]);
		}
		free(out);
	}
	cr_expect_eq(total, 90, "the shards hold %zu files of 90", total);
	{
		struct itest_list every;
		char *root = itest_fmt("%s", src);

		itest_list_files(root, &every);
		itest_list_sort(&all);
		itest_assert_lists_equal(&all, &every, "the union of the shards vs the source");
		itest_list_free(&every);
		free(root);
	}
	for (int s = 0; s < 3; s++)
		itest_list_free(&shard[s]);
	itest_list_free(&all);
	free(src);
}

Test(select, files_from)
{
	char *src = make_mixed();
	char *outside = itest_path("outside.jpg");
	char *list = itest_path("list.txt");
	const char *text = "a.jpg\n"
			   "./keep/d.jpg\n"
			   "../outside.jpg\n"
			   "skip//f.jpg\n"
			   "\n"
			   "missing.jpg\n"
			   "keep/../../outside.jpg\n";
	struct itest_list l;
	char *out = next_out();
	char *errors_path = itest_fmt("%s/vhprep-errors.jsonl", out);
	json_t *errors, *e;
	size_t i;
	int dotdot = 0, missing = 0;

	itest_make_image(outside, 16, 16, 3, 99, 0);
	itest_write_file(list, text, strlen(text));
	run_select(src, out, 3, &l, "--files-from", list, NULL);
	expect_set(&l, "--files-from", "a.jpg", "keep/d.jpg", "skip/f.jpg", NULL);
	errors = itest_read_jsonl(errors_path);
	json_array_foreach(errors, i, e)
	{
		const char *path = itest_jstr(e, "path");

		if (strstr(path, "outside.jpg"))
			dotdot++;
		else if (strstr(path, "missing.jpg"))
			missing++;
		else
			cr_expect_fail("unexpected error line for '%s'", path);
	}
	cr_expect_eq(dotdot, 2, "%d error lines for the two ../ lines", dotdot);
	cr_expect_eq(missing, 1, "%d error lines for missing.jpg", missing);
	json_decref(errors);
	itest_list_free(&l);
	free(errors_path);
	free(out);

	/* '-' reads the list from stdin */
	{
		struct itest_argv a = {0};
		struct itest_spawn_opts o = {.stdin_path = list};
		struct itest_proc p;
		char *out2 = next_out(), *root = itest_fmt("%s/processed_images", out2);

		itest_argv_add(&a, itest_bin());
		itest_argv_add(&a, "-q");
		itest_argv_add(&a, "--files-from");
		itest_argv_add(&a, "-");
		itest_argv_add(&a, "-o");
		itest_argv_add(&a, out2);
		itest_argv_add(&a, src);
		itest_run(a.v, &o, &p);
		itest_assert_exit(&p, 3);
		itest_list_files(root, &l);
		expect_set(&l, "--files-from -", "a.jpg", "keep/d.jpg", "skip/f.jpg", NULL);
		itest_list_free(&l);
		itest_proc_release(&p);
		itest_argv_free(&a);
		free(root);
		free(out2);
	}
	free(list);
	free(outside);
	free(src);
}

Test(select, symlinks)
{
	char *src = itest_path("src");
	char *real = itest_fmt("%s/real.jpg", src), *in_sub = itest_fmt("%s/sub/in.jpg", src);
	const struct {
		const char *target, *link;
	} links[] = {
	    {"real.jpg", "link.jpg"}, /* to a file: followed */
	    {"sub", "dirlink"},	      /* to a directory: not followed */
	    {"..", "sub/up"},	      /* to its parent: a loop if followed */
	    {"loop", "loop"},	      /* to itself */
	    {"loopB", "loopA"},	      /* a two-link cycle */
	    {"loopA", "loopB"},
	};
	struct itest_list l;
	char *out = next_out();

	itest_make_image(real, 16, 16, 3, 1, 0);
	itest_make_image(in_sub, 16, 16, 3, 2, 0);
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		char *p = itest_fmt("%s/%s", src, links[i].link);

		cr_assert_eq(symlink(links[i].target, p), 0, "symlink %s", p);
		free(p);
	}
	run_select(src, out, 0, &l, NULL); /* run_select's timeout catches an endless walk */
	expect_set(&l, "outputs with symlinks in the source", "link.jpg", "real.jpg",
		   "sub/in.jpg", NULL);
	{
		char *o = itest_fmt("%s/processed_images/link.jpg", out);
		struct itest_image info;

		itest_image_info(o, &info, 0);
		cr_expect(info.w == 16 && info.h == 16);
		free(o);
	}
	itest_list_free(&l);
	free(out);
	free(in_sub);
	free(real);
	free(src);
}

/* A FIFO named in --files-from is not a regular file: it must be recorded as a failure,
 * not opened for reading (which blocks until a writer comes, for ever). */
Test(select, files_from_naming_a_fifo_does_not_hang)
{
	char *src = itest_path("src");
	char *good = itest_fmt("%s/a.jpg", src), *fifo = itest_fmt("%s/pipe.jpg", src);
	char *list = itest_path("list.txt");
	char *out = itest_path("out");
	char *out_path = itest_path("vhprep.out"), *err_path = itest_path("vhprep.err");
	struct itest_argv a = {0};
	int code = -1, sig = 0;
	pid_t pid;

	itest_make_image(good, 16, 16, 3, 1, 0);
	cr_assert_eq(mkfifo(fifo, 0644), 0, "mkfifo: %s", strerror(errno));
	itest_write_file(list, "a.jpg\npipe.jpg\n", 15);
	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "-q");
	itest_argv_add(&a, "--metrics-interval");
	itest_argv_add(&a, "0");
	itest_argv_add(&a, "--files-from");
	itest_argv_add(&a, list);
	itest_argv_add(&a, "-o");
	itest_argv_add(&a, out);
	itest_argv_add(&a, src);
	pid = itest_spawn(a.v, NULL, out_path, err_path);
	itest_argv_free(&a);
	if (!itest_wait(pid, 30.0, &code, &sig)) {
		int stopped;

		kill(pid, SIGTERM);
		stopped = itest_wait(pid, 10.0, &code, &sig);
		if (!stopped) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		cr_assert_fail("--files-from naming a FIFO: vhprep still running after 30 s "
			       "(blocked opening the FIFO?); %s",
			       stopped ? "SIGTERM ended it"
				       : "it ignored SIGTERM too and had to be killed");
	}
	cr_expect_eq(code, 3, "exit %d, want 3 (the FIFO is a failure)", code);
	{
		char *errors_path = itest_fmt("%s/vhprep-errors.jsonl", out);
		json_t *errors = itest_read_jsonl(errors_path);

		cr_expect_eq(json_array_size(errors), 1);
		if (json_array_size(errors) == 1)
			cr_expect(
			    strstr(itest_jstr(json_array_get(errors, 0), "path"), "pipe.jpg"));
		json_decref(errors);
		free(errors_path);
	}
	json_decref(itest_check_outputs(out, "processed_images", 1));
	free(out_path);
	free(err_path);
	free(out);
	free(list);
	free(fifo);
	free(good);
	free(src);
}
