/* Nothing lost, leaked or overwritten (issue 12): the source is never written, one writer
 * per outputs dir, collisions decided by a rule and never by timing, a crash at any
 * instant leaves a dir the next run completes exactly, a full disk never cuts a record,
 * an unwritable outputs dir ends the run once, and signals end it cleanly.
 *
 * The disk-full test mounts a tmpfs and the second-signal test a latencyfs (FUSE): both
 * need root, and skip outside it (CI runs as root). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"
#include "tests/common/vhskip.h"

static char *mounted; /* a mount to undo in .fini */

static void safety_setup(void)
{
	itest_setup();
	mounted = NULL;
}

static void safety_teardown(void)
{
	if (mounted) {
		umount2(mounted, MNT_DETACH);
		free(mounted);
		mounted = NULL;
	}
	itest_teardown();
}

TestSuite(safety, .init = safety_setup, .fini = safety_teardown, .timeout = 280);

/* ---- helpers ---- */

/* n small JPEGs (16 distinct pictures) in folders of per_dir under root. */
static void make_jpegs(const char *root, int n, int per_dir)
{
	void *enc[16];
	size_t len[16];

	for (int i = 0; i < 16; i++)
		enc[i] =
		    itest_encode_image("jpg", 160 + i, 120, 3, (unsigned)i + 7, 0, &len[i]);
	for (int i = 0; i < n; i++) {
		char *p = itest_fmt("%s/d%03d/img_%05d.jpg", root, i / per_dir, i);

		itest_write_file(p, enc[i % 16], len[i % 16]);
		free(p);
	}
	for (int i = 0; i < 16; i++)
		free(enc[i]);
}

/* Counts the lines of a file (0 if missing). */
static size_t count_lines(const char *path)
{
	size_t n = 0, len;
	char *text;

	if (!itest_exists(path))
		return 0;
	text = itest_slurp(path, &len);
	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	free(text);
	return n;
}

/* The metadata lines of a dir as {file: metadata} (vhprep_version dropped), asserting
 * that no file has two lines. */
static json_t *lines_by_file(const char *out)
{
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	json_t *lines = itest_read_jsonl(meta), *by = json_object(), *line;
	size_t i;

	json_array_foreach(lines, i, line)
	{
		const char *file = itest_jstr(line, "file");
		json_t *m = json_deep_copy(json_object_get(line, "metadata"));

		cr_assert_null(json_object_get(by, file), "'%s' has two metadata lines", file);
		json_object_del(m, "vhprep_version");
		json_object_set_new(by, file, m);
	}
	json_decref(lines);
	free(meta);
	return by;
}

/* Asserts that two outputs dirs hold the same outputs, byte for byte, and the same set
 * of metadata lines (source locations made relative, as the sources differ). */
static void assert_same_run(const char *a, const char *b)
{
	char *ia = itest_fmt("%s/processed_images", a),
	     *ib = itest_fmt("%s/processed_images", b);
	json_t *la = lines_by_file(a), *lb = lines_by_file(b);
	const char *file;
	json_t *m;

	itest_assert_trees_identical(ia, ib);
	cr_assert_eq(json_object_size(la), json_object_size(lb), "%zu lines vs %zu",
		     json_object_size(la), json_object_size(lb));
	json_object_foreach(la, file, m)
	{
		json_t *other = json_object_get(lb, file);

		cr_assert_not_null(other, "'%s' has a line in one run only", file);
		json_object_del(m, "source");
		json_object_del(other, "source");
		cr_assert(json_equal(m, other), "the lines of '%s' differ", file);
	}
	json_decref(la);
	json_decref(lb);
	free(ia);
	free(ib);
}

/* Runs vhprep with the NULL-terminated arguments and returns its exit code; stderr is
 * kept in *err when err is not NULL. */
static int vhprep_code(char **err, ...)
{
	struct itest_argv a = {0};
	struct itest_proc p;
	const char *arg;
	va_list ap;
	int code;

	itest_argv_add(&a, itest_bin());
	va_start(ap, err);
	while ((arg = va_arg(ap, const char *)))
		itest_argv_add(&a, arg);
	va_end(ap);
	itest_vhprep_argv(&p, &a);
	code = p.exit_code;
	if (err)
		*err = itest_fmt("%s", p.err);
	itest_proc_release(&p);
	itest_argv_free(&a);
	return code;
}

static void require_root(const char *why)
{
	if (geteuid() != 0)
		vht_missing("needs root (%s); CI runs as root", why);
}

/* Starts vhprep (argv NULL-terminated after the binary) in the background. */
static pid_t spawn_vhprep(const char *tag, char *const *args)
{
	struct itest_argv a = {0};
	char *o = itest_fmt("%s/%s.out", itest_root, tag),
	     *e = itest_fmt("%s/%s.err", itest_root, tag);
	pid_t pid;

	itest_argv_add(&a, itest_bin());
	for (int i = 0; args[i]; i++)
		itest_argv_add(&a, args[i]);
	pid = itest_spawn(a.v, NULL, o, e);
	itest_argv_free(&a);
	free(o);
	free(e);
	return pid;
}

static char *stderr_of(const char *tag)
{
	char *path = itest_fmt("%s/%s.err", itest_root, tag);
	char *text = itest_slurp(path, NULL);

	free(path);
	return text;
}

/* Waits for pid up to timeout_s, failing the test if it does not end. Returns its exit
 * code (-1 if killed by a signal, then *sig is set). */
static int finish_child(pid_t pid, double timeout_s, int *sig)
{
	int code = -1, term = 0;

	if (!itest_wait(pid, timeout_s, &code, &term)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		cr_assert_fail("vhprep did not end within %.0f s", timeout_s);
	}
	if (sig)
		*sig = term;
	return code;
}

/* Waits until the metadata file under out has at least n lines, or pid ended. */
static void wait_for_lines(const char *out, size_t n, pid_t pid)
{
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	int code, sig;

	while (count_lines(meta) < n) {
		cr_assert(!itest_wait(pid, 0.005, &code, &sig),
			  "vhprep ended (exit %d) before writing %zu lines", code, n);
	}
	free(meta);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the source is never written (item 3) ---- */

/* A rerun pointed at the last run's processed_images with --overwrite would replace its
 * own inputs: refused with exit 2 before anything runs, the dir untouched. */
Test(safety, source_inside_the_outputs_is_refused)
{
	char *src = itest_path("src"), *out = itest_path("out");
	char *images = itest_fmt("%s/processed_images", out), *err;
	json_t *before, *after;

	make_jpegs(src, 6, 3);
	cr_assert_eq(vhprep_code(NULL, "-q", "-o", out, src, NULL), 0);
	before = itest_snapshot(out);
	cr_assert_eq(vhprep_code(&err, "-q", "--overwrite", "-o", out, images, NULL), 2);
	cr_expect(strstr(err, "inside the outputs dir"), "stderr: %s", err);
	free(err);
	after = itest_snapshot(out);
	itest_assert_snapshots_equal(before, after, "outputs after the refused run");
	json_decref(after);
	/* the same through a symlink and a ".." detour */
	{
		char *link = itest_path("link"),
		     *detour = itest_fmt("%s/../out/processed_images", src);

		cr_assert_eq(symlink(out, link), 0);
		cr_assert_eq(vhprep_code(NULL, "-q", "-o", link, detour, NULL), 2);
		after = itest_snapshot(out);
		itest_assert_snapshots_equal(before, after, "outputs after the refused run");
		json_decref(after);
		free(detour);
		free(link);
	}
	json_decref(before);
	free(images);
	free(out);
	free(src);
}

/* ---- one writer per outputs dir (item 5) ---- */

/* A second vhprep on a busy outputs dir, with or without --overwrite, is refused at once
 * naming the first one's pid; the first finishes with records that are its alone. */
Test(safety, a_second_run_on_a_busy_outputs_dir_is_refused)
{
	char *src = itest_path("src"), *out = itest_path("out"), *err;
	char *args[] = {"-q", "-j", "1", "--io-depth", "1", "--metrics-interval",
			"0",  "-o", out, src,	       NULL};
	char pidtxt[32];
	json_t *lines;
	pid_t first;

	make_jpegs(src, 3000, 300);
	first = spawn_vhprep("first", args);
	wait_for_lines(out, 1, first);
	snprintf(pidtxt, sizeof(pidtxt), "pid %d", (int)first);
	cr_expect_eq(vhprep_code(&err, "-q", "-o", out, src, NULL), 2);
	cr_expect(strstr(err, "another vhprep") && strstr(err, pidtxt), "stderr: %s", err);
	free(err);
	cr_expect_eq(vhprep_code(&err, "-q", "--overwrite", "-o", out, src, NULL), 2);
	cr_expect(strstr(err, pidtxt), "stderr: %s", err);
	free(err);
	cr_assert_eq(finish_child(first, 120, NULL), 0);
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), 3001);
	json_decref(lines);
	/* the lock goes with its holder */
	cr_expect_eq(vhprep_code(NULL, "-q", "-o", out, src, NULL), 0);
	free(out);
	free(src);
}

/* ---- collisions (item 4) ---- */

/* Groups of inputs that map to one name, run in several thread counts, walker counts and
 * list orders: every run keeps the byte-smaller path of each group and names both in a
 * name_collision failure; one output and one line per name, always. */
Test(safety, collisions_are_decided_by_path_order_not_timing)
{
	static const char *const names[] = {"a.gif", "a.png",  "q/x.tif", "q/x.png", "q/x",
					    "b.jpg", "b.webp", "c.webp",  "c.tiff"};
	static const char *const winners[] = {"a.gif", "q/x", "b.jpg", "c.tiff"};
	static const char *const configs[][4] = {{"-j", "1", "--walkers", "1"},
						 {"-j", "2", "--walkers", "16"},
						 {"-j", "4", "--walkers", "2"},
						 {"-j", "8", "--walkers", "8"}};
	char *src = itest_path("src");

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		char *p = itest_fmt("%s/%s", src, names[i]);
		const char *ext = strrchr(names[i], '.');

		if (ext) {
			itest_make_image(p, 20 + (int)i, 10, 3, (unsigned)i, 0);
		} else {
			size_t len;
			void *d =
			    itest_encode_image("png", 20 + (int)i, 10, 3, (unsigned)i, 0, &len);

			itest_write_file(p, d, len);
			free(d);
		}
		free(p);
	}
	for (size_t c = 0; c < sizeof(configs) / sizeof(*configs); c++) {
		char *out = itest_fmt("%s/out%zu", itest_root, c);
		char *errs = itest_fmt("%s/vhprep-errors.jsonl", out);
		json_t *lines, *errors, *e;
		size_t k;

		/* --include '*': q/x has no image extension (by default skipped_type) */
		cr_assert_eq(vhprep_code(NULL, "-q", "--include", "*", "--format", "png", configs[c][0],
					 configs[c][1], configs[c][2], configs[c][3], "-o", out,
					 src, NULL),
			     3);
		lines = itest_check_outputs(out, "processed_images", 1);
		cr_assert_eq(json_array_size(lines), 5, "4 outputs + the CSV");
		for (size_t w = 0; w < sizeof(winners) / sizeof(*winners); w++) {
			int found = 0;
			json_t *l;

			json_array_foreach(lines, k, l)
			{
				const char *rel =
				    json_string_value(itest_jget(l, "metadata.source_relpath"));

				found += rel && !strcmp(rel, winners[w]);
			}
			cr_expect_eq(found, 1,
				     "config %zu: '%s' is not the one output of its group", c,
				     winners[w]);
		}
		errors = itest_read_jsonl(errs);
		cr_expect_eq(json_array_size(errors), 5, "config %zu: %zu failures", c,
			     json_array_size(errors));
		json_array_foreach(errors, k, e)
		{
			cr_expect_str_eq(itest_jstr(e, "reason"), "name_collision");
			cr_expect(strstr(itest_jstr(e, "message"), "keeps it"), "%s",
				  itest_jstr(e, "message"));
		}
		json_decref(errors);
		json_decref(lines);
		free(errs);
		free(out);
	}
	free(src);
}

/* The larger path published long before the smaller one is even listed (a files-from
 * list that names it first, then 300 others): the smaller one still wins, replaces the
 * output, and the larger one turns into the failure; one line for the name. */
Test(safety, a_late_smaller_path_still_wins)
{
	char *src = itest_path("src"), *out = itest_path("out");
	char *list = itest_path("list.txt"), *res = itest_fmt("%s/processed_images/z.png", out);
	FILE *f;
	json_t *s, *lines;
	char *sum = itest_fmt("%s/vhprep-summary.json", out);
	struct itest_image info;

	make_jpegs(src, 300, 300);
	{
		char *gif = itest_fmt("%s/z.gif", src), *png = itest_fmt("%s/z.png", src);

		itest_make_image(gif, 31, 17, 3, 1, 0);
		itest_make_image(png, 17, 31, 3, 2, 0);
		free(gif);
		free(png);
	}
	f = fopen(list, "w");
	fputs("z.png\n", f);
	for (int i = 0; i < 300; i++)
		fprintf(f, "d000/img_%05d.jpg\n", i);
	fputs("z.gif\n", f);
	fclose(f);
	cr_assert_eq(vhprep_code(NULL, "-q", "-j", "1", "--io-depth", "1", "--files-from", list,
				 "-o", out, src, NULL),
		     3);
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), 302);
	itest_image_info(res, &info, 0);
	cr_expect(info.w == 31 && info.h == 17, "z.png holds the %dx%d picture, not z.gif's",
		  info.w, info.h);
	s = itest_read_json(sum);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.processed")), 301);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.failed")), 1);
	cr_expect_eq(json_integer_value(itest_jget(s, "failures.name_collision.count")), 1);
	json_decref(s);
	json_decref(lines);
	free(sum);
	free(res);
	free(list);
	free(out);
	free(src);
}

/* ---- crash consistency and resume (items 6, 7) ---- */

/* Lines whose output is on disk with the size the line says, and asserts that no
 * visible output lacks its line or is shorter than its line says. */
static size_t standing_lines(const char *out)
{
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	char *images = itest_fmt("%s/processed_images", out);
	json_t *lines = itest_read_jsonl(meta), *l;
	struct itest_list files;
	size_t i, standing = 0;
	json_t *by = json_object();

	const char *file;
	json_t *line;

	json_array_foreach(lines, i, l)
	{
		json_object_set(by, itest_jstr(l, "file"), l); /* the last line wins */
	}
	json_object_foreach(by, file, line)
	{
		char *path = itest_fmt("%s/%s", out, file);
		json_t *bytes = itest_jget(line, "metadata.output_bytes");

		if (bytes && itest_exists(path) &&
		    (json_int_t)itest_file_size(path) == json_integer_value(bytes))
			standing++;
		free(path);
	}
	itest_list_files(images, &files);
	for (i = 0; i < files.n; i++) {
		char *rel = itest_fmt("processed_images/%s", files.v[i]);

		if (!strstr(rel, ".vhprep-tmp.")) {
			json_t *own = json_object_get(by, rel);
			char *path = itest_fmt("%s/%s", out, rel);

			cr_assert_not_null(own, "'%s' is visible without its metadata line",
					   rel);
			cr_assert_eq(
			    (json_int_t)itest_file_size(path),
			    json_integer_value(itest_jget(own, "metadata.output_bytes")),
			    "'%s' is visible but not whole", rel);
			free(path);
		}
		free(rel);
	}
	itest_list_free(&files);
	json_decref(by);
	json_decref(lines);
	free(images);
	free(meta);
	return standing;
}

/* SIGKILL a 2,000-file run at 20 random moments, rerunning after each: after every kill
 * only whole outputs are visible, each with its line; the last rerun ends with exactly a
 * clean run's outputs and lines, no temporary file; and all the runs together transform
 * at most 10% more files than one clean run. */
Test(safety, killed_twenty_times_then_rerun_equals_a_clean_run, .timeout = 600)
{
	char *src = itest_path("src"), *clean = itest_path("clean"), *out = itest_path("out");
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	char *args[] = {"-q", "-j", "2", "--metrics-interval", "0", "-o", out, src, NULL};
	const int n = 2000, kills = 20, threads = 2;
	size_t work = 0;
	json_t *s;
	char *sum = itest_fmt("%s/vhprep-summary.json", out);

	make_jpegs(src, n, 100);
	cr_assert_eq(vhprep_code(NULL, "-q", "-j", "2", "-o", clean, src, NULL), 0);
	srand(12345);
	for (int k = 0; k < kills; k++) {
		size_t before = standing_lines(out), lines = count_lines(meta);
		/* most runs die after a random share of the rest of the work (so the killed
		 * runs do most of it between them); every fourth dies while starting */
		size_t target = lines + 1 + (size_t)rand() % (size_t)(n / 12);
		pid_t pid = spawn_vhprep("killed", args);
		int code = -1, sig = 0;

		if (k % 4 == 3)
			usleep(20 * 1000 + rand() % (200 * 1000));
		else
			while (count_lines(meta) < target && !itest_wait(pid, 0.002, &code, &sig))
				;
		kill(pid, SIGKILL);
		cr_assert(itest_wait(pid, 60, &code, &sig) || sig || code >= 0,
			  "no end after SIGKILL");
		/* what this run published, plus the transforms in flight at the kill */
		work += count_lines(meta) - before + (size_t)threads;
		standing_lines(out); /* asserts: only whole outputs, each with its line */
	}
	{
		size_t before = standing_lines(out);

		cr_assert_eq(vhprep_code(NULL, "-q", "-j", "2", "-o", out, src, NULL), 0);
		s = itest_read_json(sum);
		cr_expect_eq((size_t)json_integer_value(itest_jget(s, "files.already_done")) +
				 (size_t)json_integer_value(itest_jget(s, "files.processed")),
			     (size_t)n);
		work += (size_t)json_integer_value(itest_jget(s, "files.processed"));
		cr_log_info("kill-and-rerun: %d kills, %zu lines standing before the last run, "
			    "%zu transforms in all for %d files (%.1f%% extra)",
			    kills, before, work, n, 100.0 * ((double)work - n) / n);
		json_decref(s);
	}
	json_decref(itest_check_outputs(out, "processed_images", 1));
	assert_same_run(clean, out);
	cr_expect_eq(itest_count_names(out, ".vhprep-tmp"), 0);
	cr_expect_leq(work, (size_t)n * 11 / 10, "%zu transforms for %d files", work, n);
	free(sum);
	free(meta);
	free(out);
	free(clean);
	free(src);
}

/* A changed input is redone and replaces its output; the others are skipped; a deleted
 * input's output stays, until a rerun with --overwrite removes it with its line. A
 * temporary file a dead run left is removed at the next start. */
Test(safety, a_rerun_redoes_changed_inputs_only)
{
	char *src = itest_path("src"), *out = itest_path("out");
	char *sum = itest_fmt("%s/vhprep-summary.json", out);
	char *changed = itest_fmt("%s/d000/img_00003.jpg", src);
	char *gone = itest_fmt("%s/d001/img_00012.jpg", src);
	char *stale = itest_fmt("%s/processed_images/d001/.vhprep-tmp.99999.7", out);
	struct itest_image info;
	json_t *s, *lines;

	make_jpegs(src, 20, 10);
	cr_assert_eq(vhprep_code(NULL, "-q", "-o", out, src, NULL), 0);
	itest_make_image(changed, 99, 77, 3, 5, 0);
	itest_write_file(stale, "partial", 7);
	cr_assert_eq(vhprep_code(NULL, "-q", "-o", out, src, NULL), 0);
	cr_expect(!itest_exists(stale), "the dead run's temporary file is still there");
	s = itest_read_json(sum);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.processed")), 1);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.replaced")), 1);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.already_done")), 19);
	json_decref(s);
	{
		char *res = itest_fmt("%s/processed_images/d000/img_00003.jpg", out);

		itest_image_info(res, &info, 0);
		cr_expect(info.w == 99 && info.h == 77, "the changed input's output is %dx%d",
			  info.w, info.h);
		free(res);
	}
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), 21);
	json_decref(lines);

	cr_assert_eq(unlink(gone), 0);
	cr_assert_eq(vhprep_code(NULL, "-q", "-o", out, src, NULL), 0);
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), 21, "a deleted input's output stays");
	json_decref(lines);
	cr_assert_eq(vhprep_code(NULL, "-q", "--overwrite", "-o", out, src, NULL), 0);
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), 20, "--overwrite removes what no input replaced");
	json_decref(lines);
	free(stale);
	free(gone);
	free(changed);
	free(sum);
	free(out);
	free(src);
}

/* ---- a full disk (item 6) ---- */

/* Outputs on a 400 KiB tmpfs that fills up part-way: exit 1 with a message, every record
 * file whole lines only, every line's output there, no temporary file, and never a pointer
 * to an empty errors file. After the disk grows, a rerun completes to exactly a clean
 * run's result. */
Test(safety, a_full_disk_never_cuts_a_record)
{
	char *src = itest_path("src"), *clean = itest_path("clean"), *out = itest_path("small");
	char *err, *errors_path = itest_fmt("%s/vhprep-errors.jsonl", out);
	json_t *lines;

	require_root("mounts a tmpfs");
	make_jpegs(src, 300, 100);
	cr_assert_eq(vhprep_code(NULL, "-q", "-o", clean, src, NULL), 0);
	itest_mkdirs(out);
	cr_assert_eq(mount("tmpfs", out, "tmpfs", 0, "size=400k"), 0, "mount: %s",
		     strerror(errno));
	mounted = itest_fmt("%s", out);
	cr_assert_eq(vhprep_code(&err, "-o", out, src, NULL), 1);
	cr_expect(strstr(err, "no space") || strstr(err, "No space"), "stderr: %s", err);
	if (!itest_exists(errors_path) || itest_file_size(errors_path) == 0)
		cr_expect(!strstr(err, "see vhprep-errors.jsonl"),
			  "stderr points to an empty errors file: %s", err);
	free(err);
	lines = itest_check_outputs(out, "processed_images", 0); /* whole JSON lines */
	cr_expect_gt(json_array_size(lines), 0);
	json_decref(lines);
	cr_assert_eq(mount("tmpfs", out, "tmpfs", MS_REMOUNT, "size=64m"), 0, "remount: %s",
		     strerror(errno));
	cr_assert_eq(vhprep_code(NULL, "-q", "-o", out, src, NULL), 0);
	json_decref(itest_check_outputs(out, "processed_images", 1));
	assert_same_run(clean, out);
	free(errors_path);
	free(out);
	free(clean);
	free(src);
}

/* ---- an unwritable outputs dir (item 9) ---- */

/* processed_images exists but is read-only: one fatal error naming the dir, exit 1, even
 * with a generous --max-errors, and no per-file failures for what is not the files'
 * fault. */
Test(safety, an_unwritable_prefix_is_fatal_at_once)
{
	char *src = itest_path("src"), *out = itest_path("out");
	char *images = itest_fmt("%s/processed_images", out);
	char *errors_path = itest_fmt("%s/vhprep-errors.jsonl", out);
	struct itest_spawn_opts so = {.drop_dac = 1};
	struct itest_argv a = {0};
	struct itest_proc p;
	json_t *errors;

	make_jpegs(src, 50, 50);
	itest_mkdirs(images);
	cr_assert_eq(chmod(images, 0555), 0);
	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "--max-errors");
	itest_argv_add(&a, "1000");
	itest_argv_add(&a, "-o");
	itest_argv_add(&a, out);
	itest_argv_add(&a, src);
	itest_run(a.v, &so, &p);
	cr_expect_eq(p.exit_code, 1, "exit %d; stderr:\n%s", p.exit_code, p.err);
	cr_expect(strstr(p.err, out), "the message does not name the outputs dir: %s", p.err);
	errors = itest_read_jsonl(errors_path);
	cr_expect_eq(json_array_size(errors), 0, "%zu per-file failures",
		     json_array_size(errors));
	json_decref(errors);
	itest_proc_release(&p);
	itest_argv_free(&a);
	chmod(images, 0755);
	free(errors_path);
	free(images);
	free(out);
	free(src);
}

/* ---- renames without RENAME_NOREPLACE (item 9) ---- */

/* renameat2 refused as an NFS outputs dir refuses RENAME_NOREPLACE (EINVAL), then hard
 * links refused too: the run still publishes every output, and never replaces a file it
 * did not record (one stands where an output would go). */
Test(safety, publishing_without_rename_noreplace_never_overwrites)
{
	static const char *const rules[] = {"renameat2=EINVAL",
					    "renameat2=EINVAL,link=EPERM,linkat=EPERM"};
	char *src = itest_path("src"), *clean = itest_path("clean");
	char *nosys = itest_fmt("%s/tests/integration/vhprep-nosys", itest_build_dir());

	make_jpegs(src, 40, 20);
	cr_assert_eq(vhprep_code(NULL, "-q", "-o", clean, src, NULL), 0);
	for (size_t r = 0; r < sizeof(rules) / sizeof(*rules); r++) {
		char *out = itest_fmt("%s/out%zu", itest_root, r);
		char *foreign = itest_fmt("%s/processed_images/d001/img_00025.jpg", out);
		struct itest_argv a = {0};
		struct itest_proc p;
		char *got;

		itest_write_file(foreign, "not vhprep's", 12);
		itest_argv_add(&a, nosys);
		itest_argv_add(&a, rules[r]);
		itest_argv_add(&a, "--");
		itest_argv_add(&a, itest_bin());
		itest_argv_add(&a, "-q");
		itest_argv_add(&a, "-o");
		itest_argv_add(&a, out);
		itest_argv_add(&a, src);
		itest_run(a.v, NULL, &p);
		cr_expect_eq(p.exit_code, 3, "%s: exit %d: %s", rules[r], p.exit_code, p.err);
		itest_proc_release(&p);
		got = itest_slurp(foreign, NULL);
		cr_expect_str_eq(got, "not vhprep's", "%s: a foreign file was replaced",
				 rules[r]);
		free(got);
		unlink(foreign);
		cr_assert_eq(vhprep_code(NULL, "-q", "-o", out, src, NULL), 0,
			     "the rerun completes the one that was blocked");
		assert_same_run(clean, out);
		itest_argv_free(&a);
		free(foreign);
		free(out);
	}
	free(nosys);
	free(clean);
	free(src);
}

/* ---- signals (item 9) ---- */

/* stdout closed by its reader (vhprep ... | head -1): the metrics lines stop, the run
 * does not. */
Test(safety, a_closed_stdout_stops_only_the_metrics)
{
	char *src = itest_path("src"), *out = itest_path("out");
	char *sum = itest_fmt("%s/vhprep-summary.json", out);
	int fds[2], status;
	pid_t pid;
	char c;
	json_t *s;

	make_jpegs(src, 600, 100);
	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(itest_bin(), itest_bin(), "-q", "-j", "1", "--metrics-interval", "0.01",
		      "-o", out, src, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (read(fds[0], &c, 1) == 1 && c != '\n')
		;
	close(fds[0]); /* like head -1: the next metrics line meets a closed pipe */
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status), "vhprep died of signal %d", WTERMSIG(status));
	cr_expect_eq(WEXITSTATUS(status), 0);
	s = itest_read_json(sum);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.processed")), 600);
	json_decref(s);
	free(sum);
	free(out);
	free(src);
}

/* SIGHUP (the terminal or the session went away) stops the run like SIGTERM: records
 * consistent, summary written, exit 129. */
Test(safety, sighup_stops_cleanly)
{
	char *src = itest_path("src"), *out = itest_path("out");
	char *sum = itest_fmt("%s/vhprep-summary.json", out);
	char *args[] = {"-j", "1",  "--io-depth", "2", "--metrics-interval",
			"0",  "-o", out,	  src, NULL};
	pid_t pid;
	json_t *s;
	char *err;

	make_jpegs(src, 400, 100);
	pid = spawn_vhprep("hup", args);
	wait_for_lines(out, 1, pid);
	kill(pid, SIGHUP);
	cr_expect_eq(finish_child(pid, 60, NULL), 129);
	err = stderr_of("hup");
	cr_expect(strstr(err, "SIGHUP"), "stderr: %s", err);
	free(err);
	json_decref(itest_check_outputs(out, "processed_images", 1));
	s = itest_read_json(sum);
	cr_expect_str_eq(itest_jstr(s, "interrupted_by"), "SIGHUP");
	cr_expect(json_is_false(json_object_get(s, "walk_complete")) ||
		      json_integer_value(itest_jget(s, "files.cancelled")) > 0,
		  "an interrupted run that cancelled nothing");
	json_decref(s);
	free(sum);
	free(out);
	free(src);
}

/* A walk stopped by --limit is not complete. */
Test(safety, walk_complete_only_when_the_walk_ended)
{
	char *src = itest_path("src"), *out = itest_path("out"), *out2 = itest_path("out2");
	char *sum = itest_fmt("%s/vhprep-summary.json", out);
	char *sum2 = itest_fmt("%s/vhprep-summary.json", out2);
	json_t *s;

	make_jpegs(src, 300, 10);
	cr_assert_eq(
	    vhprep_code(NULL, "-q", "--limit", "5", "--walkers", "1", "-o", out, src, NULL), 0);
	s = itest_read_json(sum);
	cr_expect(json_is_false(json_object_get(s, "walk_complete")));
	json_decref(s);
	cr_assert_eq(vhprep_code(NULL, "-q", "-o", out2, src, NULL), 0);
	s = itest_read_json(sum2);
	cr_expect(json_is_true(json_object_get(s, "walk_complete")));
	json_decref(s);
	free(sum2);
	free(sum);
	free(out2);
	free(out);
	free(src);
}

/* Runs tests/fixtures/latencyfs.sh with its arguments; returns its exit code. */
static int latencyfs(const char *verb, const char *a1, const char *a2, const char *a3)
{
	char *script = itest_fmt("%s/tests/fixtures/latencyfs.sh", itest_source_dir());
	struct itest_argv a = {0};
	struct itest_proc p;
	int code;

	itest_argv_add(&a, "/bin/bash");
	itest_argv_add(&a, script);
	itest_argv_add(&a, verb);
	itest_argv_add(&a, a1);
	if (a2)
		itest_argv_add(&a, a2);
	if (a3)
		itest_argv_add(&a, a3);
	itest_run(a.v, NULL, &p);
	code = p.exit_code;
	if (code != 0)
		cr_log_warn("latencyfs.sh %s: exit %d: %s", verb, code, p.err);
	itest_proc_release(&p);
	itest_argv_free(&a);
	free(script);
	return code;
}

/* Whether the metrics lines on stdout say that reads were submitted. */
static int reads_submitted(const char *stdout_path)
{
	char *text = itest_exists(stdout_path) ? itest_slurp(stdout_path, NULL) : NULL;
	int yes =
	    text && strstr(text, "\"files_selected\":") &&
	    !strstr(strrchr(text, '{') ? strrchr(text, '{') : text, "\"files_selected\":0,");

	free(text);
	return yes;
}

/* A second SIGTERM while reads are stuck in flight (a mount that takes 5 s an
 * operation): the run seals its records and writes its summary at once, long before
 * those reads could finish, then exits (the kernel may hold the exit until the FUSE
 * daemon answers the abandoned requests: that part is not vhprep's), nothing partial
 * left. */
Test(safety, a_second_signal_stops_at_once)
{
	char *src = itest_path("src"), *mnt = itest_path("mnt"), *out = itest_path("out");
	char *sum = itest_fmt("%s/vhprep-summary.json", out);
	char *so = itest_fmt("%s/twice.out", itest_root);
	char *args[] = {"-j",  "1",  "--io-depth", "8", "--metrics-interval",
			"0.2", "-o", out,	   mnt, NULL};
	double t;
	json_t *s;
	int code, rc;
	pid_t pid;

	require_root("mounts latencyfs");
	make_jpegs(src, 40, 40);
	rc = latencyfs("mount", src, mnt, "5000");
	if (rc == 77)
		vht_missing("FUSE is not available here");
	cr_assert_eq(rc, 0);
	mounted = itest_fmt("%s", mnt);
	pid = spawn_vhprep("twice", args);
	while (!reads_submitted(so)) /* start-up and the walk: a few 5 s round trips */
		cr_assert(!itest_wait(pid, 0.1, &code, &rc), "vhprep ended (exit %d)", code);
	usleep(500 * 1000);
	kill(pid, SIGTERM);
	usleep(300 * 1000);
	kill(pid, SIGTERM);
	t = now_s();
	while (!itest_exists(sum) && now_s() - t < 30)
		usleep(10 * 1000);
	t = now_s() - t;
	cr_expect_lt(t, 2.0,
		     "the summary came %.1f s after the second SIGTERM: the run "
		     "waited for the reads in flight",
		     t);
	code = finish_child(pid, 60, NULL);
	cr_expect_eq(code, 143);
	s = itest_read_json(sum);
	cr_expect_str_eq(itest_jstr(s, "interrupted_by"), "SIGTERM");
	json_decref(s);
	json_decref(itest_check_outputs(out, "processed_images", 1));
	latencyfs("umount", mnt, NULL, NULL);
	free(mounted);
	mounted = NULL;
	free(so);
	free(sum);
	free(out);
	free(mnt);
	free(src);
}
