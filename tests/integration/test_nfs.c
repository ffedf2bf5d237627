/* The nfs:// source against a real NFS server: nfs-ganesha (VFS backend) on 127.0.0.1,
 * started by tests/fixtures/ganesha.sh on a tree this test generates.
 * - vhprep over NFSv3 and NFSv4 gives the same output bytes, CSV rows and metadata
 *   (except the source location) as over the local path;
 * - an unknown export and a wrong port end with exit 2 and one line, quickly;
 * - the source itself (io/nfssrc, linked in): v3 and v4 walks of a nested tree list
 *   exactly the local files; a file deleted between the walk and its read fails with
 *   VHERR_VANISHED while the others read byte-identical.
 *
 * Needs root, nfs-ganesha, nfs-ganesha-vfs, rpcbind and libnfs-utils: the fixture exits
 * 77 where it cannot run and the test is skipped. The server is stopped in .fini. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/nfssrc.h"
#include "itest.h"
#include "tests/common/vhskip.h"

#define GANESHA_NFS_PORT "20490"

static int server_up;	  /* the fixture started a server this test must stop */
static char *url3, *url4; /* the fixture's URLs for the exported directory */

/* Runs ganesha.sh with verb (and dir); returns its exit code; *out and *err get its output. */
static int fixture(const char *verb, const char *dir, char **out, char **err)
{
	struct itest_argv a = {0};
	struct itest_proc p;
	int code;

	itest_argv_add(&a, "/bin/bash");
	itest_argv_addf(&a, "%s/tests/fixtures/ganesha.sh", itest_source_dir());
	itest_argv_add(&a, verb);
	if (dir)
		itest_argv_add(&a, dir);
	itest_run(a.v, NULL, &p);
	code = p.exit_code;
	if (out)
		*out = itest_fmt("%s", p.out);
	if (err)
		*err = itest_fmt("%s", p.err);
	itest_proc_release(&p);
	itest_argv_free(&a);
	return code;
}

static json_t *read_out_jsonl(const char *out, const char *name);

/* Value of the line "KEY=..." in text (malloc'd), asserted present. */
static char *line_value(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, key, klen) && l[klen] == '=')
			return itest_fmt("%.*s", (int)strcspn(l + klen + 1, "\n"),
					 l + klen + 1);
	cr_assert_fail("no %s= line in the fixture's output: %s", key, text);
	return NULL;
}

/* Exports dir; skips the test when the fixture exits 77. */
static void serve(const char *dir)
{
	char *out = NULL, *err = NULL;
	int code = fixture("start", dir, &out, &err);

	if (code == 77) {
		char *why = itest_fmt("%s", err);

		free(out);
		free(err);
		vht_missing("nfs-ganesha is unavailable here (fixture exit 77): %s", why);
	}
	server_up = 1;
	cr_assert_eq(code, 0, "ganesha.sh start: exit %d: %s", code, err);
	url3 = line_value(out, "NFS3_URL");
	url4 = line_value(out, "NFS4_URL");
	free(out);
	free(err);
}

static void nfs_setup(void)
{
	itest_setup();
	/* a test rewrites a file behind the server: no attribute cache there */
	setenv("GANESHA_ATTR_EXPIRATION", "0", 1);
	server_up = 0;
}

static void nfs_teardown(void)
{
	if (server_up) {
		char *err = NULL;
		int code = fixture("stop", NULL, NULL, &err);

		if (code != 0)
			cr_log_error("ganesha.sh stop: exit %d: %s", code, err);
		free(err);
		server_up = 0;
	}
	VH_FREE(url3);
	VH_FREE(url4);
	itest_teardown();
}

TestSuite(nfs, .init = nfs_setup, .fini = nfs_teardown, .timeout = 180);

static const char *const names[] = {
    "top.jpg",
    "a/one.jpg",
    "a/two.png",
    "a/b/three.webp",
    "a/b/c/four.jpg",
    "with space/five six.jpg",
    "caf\xc3\xa9/\xe5\x86\x99.png",
    "many/m00.jpg",
    "many/m01.jpg",
    "many/m02.png",
    "many/m03.jpg",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

static void make_tree(const char *src)
{
	for (size_t i = 0; i < NNAMES; i++) {
		char *p = itest_fmt("%s/%s", src, names[i]);

		itest_make_image(p, 120 + 7 * (int)i, 90 + 3 * (int)i, 3, (unsigned)i, 0);
		free(p);
	}
	{
		char *bad = itest_fmt("%s/a/not-an-image.jpg", src);

		itest_write_file(bad, "junk", 4);
		free(bad);
	}
}

/* The metadata lines as file -> metadata without "source". */
static json_t *without_source(json_t *lines)
{
	json_t *by_file = json_object(), *line;
	size_t i;

	json_array_foreach(lines, i, line)
	{
		json_t *meta = json_deep_copy(json_object_get(line, "metadata"));

		json_object_del(meta, "source"); /* the CSV's line has none */
		json_object_set_new(by_file, itest_jstr(line, "file"), meta);
	}
	return by_file;
}

static void sorted_csv(const char *outputs, struct itest_list *rows)
{
	char *path = itest_fmt("%s/processing_metadata.csv", outputs);
	struct itest_csv c;

	itest_read_csv(path, &c);
	*rows = (struct itest_list){0};
	for (size_t i = 0; i < c.nrows; i++) {
		struct itest_list *r = &c.rows[i];
		char *row = itest_fmt("%s|%s|%s", r->v[0], r->n > 1 ? r->v[1] : "",
				      r->n > 2 ? r->v[2] : "");

		itest_list_add(rows, row);
		free(row);
	}
	itest_list_sort(rows);
	itest_csv_free(&c);
	free(path);
}

/* Runs vhprep --resize 64 -o out source; asserts exit code want. */
static void run_resize(const char *source, const char *out, int want)
{
	struct itest_proc p;

	itest_vhprep(&p, "--resize", "64", "-o", out, source, NULL);
	itest_assert_exit(&p, want);
	itest_proc_release(&p);
}

static void assert_same_run(const char *out_nfs, const char *out_local, const char *what)
{
	char *in = itest_fmt("%s/processed_images", out_nfs);
	char *il = itest_fmt("%s/processed_images", out_local);
	json_t *ln = itest_check_outputs(out_nfs, "processed_images", 1);
	json_t *ll = itest_check_outputs(out_local, "processed_images", 1);
	json_t *mn = without_source(ln), *ml = without_source(ll);
	struct itest_list rn, rl;
	const char *key;
	json_t *v;

	itest_assert_trees_identical(in, il);
	json_object_foreach(ml, key, v)
	{
		json_t *w = json_object_get(mn, key);

		cr_expect(w && json_equal(v, w), "%s: %s metadata differs from the local run's",
			  key, what);
	}
	cr_expect_eq(json_object_size(mn), json_object_size(ml), "%s: metadata lines", what);
	sorted_csv(out_nfs, &rn);
	sorted_csv(out_local, &rl);
	itest_assert_lists_equal(&rn, &rl, what);
	itest_list_free(&rn);
	itest_list_free(&rl);
	json_decref(mn);
	json_decref(ml);
	json_decref(ln);
	json_decref(ll);
	free(in);
	free(il);
}

Test(nfs, v3_and_v4_outputs_equal_the_local_run)
{
	char *src = itest_path("src");
	char *ol = itest_path("out-local"), *o3 = itest_path("out-v3"),
	     *o4 = itest_path("out-v4");
	struct itest_list files;

	make_tree(src);
	serve(src);
	run_resize(src, ol, 3); /* 3: one input failed (not-an-image.jpg) */
	itest_list_files(ol, &files);
	cr_assert_geq(files.n, NNAMES, "the local run wrote %zu files", files.n);
	itest_list_free(&files);
	run_resize(url3, o3, 3);
	assert_same_run(o3, ol, "NFSv3");
	run_resize(url4, o4, 3);
	assert_same_run(o4, ol, "NFSv4");
	{
		json_t *errs = read_out_jsonl(o3, "vhprep-errors.jsonl");

		cr_expect_eq(json_array_size(errs), 1);
		cr_expect_str_eq(itest_jstr(json_array_get(errs, 0), "reason"), "not_image");
		cr_expect(strstr(itest_jstr(json_array_get(errs, 0), "path"),
				 "nfs://127.0.0.1:" GANESHA_NFS_PORT "/"),
			  "error path is not an nfs:// location");
		json_decref(errs);
	}
	free(src);
	free(ol);
	free(o3);
	free(o4);
}

static double elapsed_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* vhprep on url exits 2 within 10 s with one line naming url's mount. */
static void assert_usage_failure(const char *url)
{
	struct itest_proc p;
	struct timespec t0;
	char *out = itest_path("out");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	itest_vhprep(&p, "--resize", "64", "-o", out, url, NULL);
	cr_expect_lt(elapsed_since(&t0), 10.0, "%s: took %.1f s", url, elapsed_since(&t0));
	itest_assert_exit(&p, 2);
	cr_expect(strstr(p.err, "cannot mount 'nfs://"), "%s: stderr: %s", url, p.err);
	itest_proc_release(&p);
	free(out);
}

Test(nfs, unknown_export_and_wrong_port_exit_2_quickly)
{
	char *src = itest_path("src");
	char *bad;

	make_tree(src);
	serve(src);
	bad = itest_fmt("nfs://127.0.0.1%s/no-such-dir", src);
	assert_usage_failure(bad);
	free(bad);
	assert_usage_failure(
	    "nfs://127.0.0.1/no-such-export?version=4&nfsport=" GANESHA_NFS_PORT);
	bad = itest_fmt("nfs://127.0.0.1%s?nfsport=1&mountport=2", src);
	assert_usage_failure(bad); /* nothing listens on ports 1 and 2 */
	free(bad);
	assert_usage_failure("nfs://127.0.0.1:1/export?version=4");
	free(src);
}

/* ---- the source itself ---- */

struct walked {
	pthread_mutex_t lock;
	struct itest_list names;
	const char *local; /* the exported directory, to check the hints against */
	int hints_checked; /* entries whose size, mtime and handle were checked */
	int want_handles;  /* every entry must come with its handle */
	size_t nhints;	   /* hints[i]: a copy of the hint of the entry names hint_of[i] */
	struct source_hint hints[64];
	char *hint_of[64];
};

/* Keeps a copy of e's hint (the first 64 entries) for reads by handle. */
static void keep_hint(struct walked *w, const struct source_entry *e)
{
	struct source_hint *h;
	void *fh;

	if (w->nhints >= 64)
		return;
	h = &w->hints[w->nhints];
	*h = e->hint;
	if (e->hint.handle) {
		fh = malloc(e->hint.handle_len);
		memcpy(fh, e->hint.handle, e->hint.handle_len);
		h->handle = fh;
	}
	w->hint_of[w->nhints++] = strdup(e->relpath);
}

/* The kept hint of relpath, or a zero one. */
static struct source_hint hint_of(const struct walked *w, const char *relpath)
{
	for (size_t i = 0; i < w->nhints; i++)
		if (!strcmp(w->hint_of[i], relpath))
			return w->hints[i];
	return (struct source_hint){0};
}

static void walked_free(struct walked *w)
{
	for (size_t i = 0; i < w->nhints; i++) {
		free((void *)w->hints[i].handle);
		free(w->hint_of[i]);
	}
	itest_list_free(&w->names);
}

/* Checks e's hint against lstat of the local file: the listing's size, mtime and a
 * handle come with every entry (READDIRPLUS / READDIR attributes). */
static void check_hint(struct walked *w, const struct source_entry *e)
{
	char *path = itest_fmt("%s/%s", w->local, e->relpath);
	struct stat st;

	cr_assert_eq(lstat(path, &st), 0, "%s", path);
	cr_expect(e->hint.has_attrs, "%s: no attributes in the listing", e->relpath);
	cr_expect(e->hint.handle && e->hint.handle_len > 0, "%s: no handle", e->relpath);
	cr_expect_eq(e->hint.size, (uint64_t)st.st_size, "%s: size", e->relpath);
	cr_expect_eq(e->hint.mtime_ns,
		     (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, "%s: mtime",
		     e->relpath);
	free(path);
}

static enum source_next collect(void *ctx, const struct source_entry *e)
{
	struct walked *w = ctx;

	pthread_mutex_lock(&w->lock);
	itest_list_add(&w->names, e->relpath);
	keep_hint(w, e);
	if (w->local) {
		check_hint(w, e);
		w->hints_checked++;
	}
	pthread_mutex_unlock(&w->lock);
	return SOURCE_CONTINUE;
}

static void walk_url(const char *url, const char *local, struct nfssrc **s, struct walked *w)
{
	struct source_opts o = {.walkers = 8, .io_depth = 8};
	struct vherr err = {0};

	cr_assert_eq(nfssrc_open(url, &o, s, &err), 0, "%s: %s", url, err.msg);
	*w = (struct walked){.lock = PTHREAD_MUTEX_INITIALIZER, .local = local};
	cr_assert_eq(nfssrc_walk(*s, collect, w, NULL, &err), 0, "%s: %s", url, err.msg);
	itest_list_sort(&w->names);
}

Test(nfs, walks_list_the_local_files)
{
	char *src = itest_path("src");
	struct itest_list local;
	struct walked w3, w4;
	struct nfssrc *s3, *s4;

	for (int d = 0; d < 30; d++)
		for (int f = 0; f < 20; f++) {
			char *p =
			    itest_fmt("%s/d%02d/%s/f%02d.bin", src, d, d % 3 ? "x" : "", f);

			itest_write_file(p, "", 0);
			free(p);
		}
	make_tree(src);
	serve(src);
	itest_list_files(src, &local);
	walk_url(url3, src, &s3, &w3);
	itest_assert_lists_equal(&w3.names, &local, "NFSv3 walk vs local");
	cr_expect_eq(w3.hints_checked, (int)local.n);
	walk_url(url4, src, &s4, &w4);
	itest_assert_lists_equal(&w4.names, &local, "NFSv4 walk vs local");
	cr_expect_eq(w4.hints_checked, (int)local.n);
	nfssrc_free(s3);
	nfssrc_free(s4);
	walked_free(&w3);
	walked_free(&w4);
	itest_list_free(&local);
	free(src);
}

static enum source_next stop_after_10(void *ctx, const struct source_entry *e)
{
	int *n = ctx;

	(void)e;
	return ++*n >= 10 ? SOURCE_STOP : SOURCE_CONTINUE;
}

Test(nfs, a_stopped_walk_returns_at_once)
{
	char *src = itest_path("src");
	struct source_opts o = {.walkers = 8, .io_depth = 8};
	struct vherr err = {0};
	struct nfssrc *s;
	int n = 0;

	for (int d = 0; d < 40; d++)
		for (int f = 0; f < 50; f++) {
			char *p = itest_fmt("%s/d%02d/f%02d.bin", src, d, f);

			itest_write_file(p, "", 0);
			free(p);
		}
	serve(src);
	cr_assert_eq(nfssrc_open(url3, &o, &s, &err), 0, "%s", err.msg);
	cr_assert_eq(nfssrc_walk(s, stop_after_10, &n, NULL, &err), 0, "%s", err.msg);
	cr_expect_eq(n, 10, "emit ran %d times after SOURCE_STOP at 10", n);
	nfssrc_free(s);
	free(src);
}

struct reads {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int pending;
};

static void read_done(struct source_read *req)
{
	struct reads *r = req->user;

	pthread_mutex_lock(&r->lock);
	r->pending--;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Reads every walked file through s, by path or (by_handle) with the walk's hints; the
 * deleted one must fail as vanished. */
static void read_all(struct nfssrc *s, const struct walked *w, const char *src,
		     const char *deleted, int by_handle, const char *what)
{
	struct reads r = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
	struct source_read *reqs = calloc(w->names.n, sizeof(*reqs));

	for (size_t i = 0; i < w->names.n; i++) {
		reqs[i] = (struct source_read){.relpath = w->names.v[i],
					       .hint = by_handle ? hint_of(w, w->names.v[i])
								 : (struct source_hint){0},
					       .max_size = UINT64_MAX,
					       .done = read_done,
					       .user = &r};
		pthread_mutex_lock(&r.lock);
		r.pending++;
		pthread_mutex_unlock(&r.lock);
		cr_assert_eq(nfssrc_submit(s, &reqs[i]), 0);
	}
	pthread_mutex_lock(&r.lock);
	while (r.pending)
		pthread_cond_wait(&r.cond, &r.lock);
	pthread_mutex_unlock(&r.lock);
	for (size_t i = 0; i < w->names.n; i++) {
		struct source_read *q = &reqs[i];

		if (!strcmp(q->relpath, deleted)) {
			cr_expect_eq(q->status, SOURCE_READ_FAILED, "%s: %s", what, q->relpath);
			cr_expect_eq(q->err.code, VHERR_VANISHED, "%s: %s: [%s] %s", what,
				     q->relpath, vherr_reason(q->err.code), q->err.msg);
		} else {
			char *p = itest_fmt("%s/%s", src, q->relpath);
			size_t len;
			char *want = itest_slurp(p, &len);

			cr_expect_eq(q->status, SOURCE_READ_OK, "%s: %s: %s", what, q->relpath,
				     q->err.msg);
			cr_expect(q->len == len && q->size == len &&
				      (!len || !memcmp(q->data, want, len)),
				  "%s: %s: bytes differ", what, q->relpath);
			free(want);
			free(p);
		}
		free(q->data);
	}
	free(reqs);
}

Test(nfs, a_file_deleted_after_the_walk_fails_as_vanished)
{
	char *src = itest_path("src");
	char *victim = itest_fmt("%s/a/one.jpg", src);
	char *grown = itest_fmt("%s/top.jpg", src);
	struct walked w3, w4;
	struct nfssrc *s3, *s4;

	make_tree(src);
	serve(src);
	walk_url(url3, NULL, &s3, &w3);
	walk_url(url4, NULL, &s4, &w4);
	cr_assert(itest_list_has(&w3.names, "a/one.jpg"));
	cr_assert_eq(unlink(victim), 0);
	/* a file rewritten after the listing: a read by handle sees other attributes than
	 * the listing's and reads it again by path, so the bytes are today's */
	itest_write_file(grown, "rewritten after the walk, longer than it was", 45);
	read_all(s3, &w3, src, "a/one.jpg", 0, "NFSv3 by path");
	read_all(s3, &w3, src, "a/one.jpg", 1, "NFSv3 by handle");
	read_all(s4, &w4, src, "a/one.jpg", 0, "NFSv4 by path");
	read_all(s4, &w4, src, "a/one.jpg", 1, "NFSv4 by handle");
	nfssrc_free(s3);
	nfssrc_free(s4);
	walked_free(&w3);
	walked_free(&w4);
	free(victim);
	free(grown);
	free(src);
}

/* ---- the server goes away mid-run ---- */

#define OUTAGE_FILES 300

/* OUTAGE_FILES small JPEGs in 3 folders: enough for a slow run (libvips, one thread). */
static void make_many(const char *src)
{
	for (int i = 0; i < OUTAGE_FILES; i++) {
		char *p = itest_fmt("%s/c%d/img_%04d.jpg", src, i % 3, i);

		itest_make_image(p, 320, 240, 3, (unsigned)i, 0);
		free(p);
	}
}

/* Starts a slow vhprep run of url into out (one thread, libvips) with --nfs-timeout
 * timeout, and returns once its first output is recorded. */
static pid_t start_slow_run(const char *url, const char *out, const char *timeout)
{
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	char *out_path = itest_fmt("%s.stdout", out), *err_path = itest_fmt("%s.stderr", out);
	struct itest_argv a = {0};
	pid_t pid;

	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "--resize");
	itest_argv_add(&a, "64");
	itest_argv_add(&a, "--kernel");
	itest_argv_add(&a, "vips");
	itest_argv_add(&a, "--threads");
	itest_argv_add(&a, "1");
	itest_argv_add(&a, "--nfs-timeout");
	itest_argv_add(&a, timeout);
	itest_argv_add(&a, "-o");
	itest_argv_add(&a, out);
	itest_argv_add(&a, url);
	pid = itest_spawn(a.v, NULL, out_path, err_path);
	for (;;) {
		char *text = itest_exists(meta) ? itest_slurp(meta, NULL) : NULL;
		int started = text && strchr(text, '\n');
		int code, term;

		free(text);
		if (started)
			break;
		cr_assert(!itest_wait(pid, 0.01, &code, &term),
			  "vhprep ended (exit %d) before its first output", code);
	}
	itest_argv_free(&a);
	free(meta);
	free(out_path);
	free(err_path);
	return pid;
}

/* The JSON lines of out/name (asserted to exist; caller decrefs). */
static json_t *read_out_jsonl(const char *out, const char *name)
{
	char *path = itest_fmt("%s/%s", out, name);
	json_t *j;

	cr_assert(itest_exists(path), "%s is missing", path);
	j = itest_read_jsonl(path);
	free(path);
	return j;
}

/* Waits for pid (at most limit_s) and returns its exit code and stderr (*err, malloc'd). */
static int wait_run(pid_t pid, const char *out, double limit_s, char **err)
{
	char *err_path = itest_fmt("%s.stderr", out);
	int code = -1, term = 0;

	if (!itest_wait(pid, limit_s, &code, &term)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		cr_assert_fail("vhprep did not end within %.0f s of the outage", limit_s);
	}
	cr_assert_eq(term, 0, "vhprep died of signal %d", term);
	*err = itest_slurp(err_path, NULL);
	free(err_path);
	return code;
}

Test(nfs, a_server_that_stays_down_ends_the_run_with_one_error)
{
	char *src = itest_path("src"), *out = itest_path("out"), *err;
	json_t *lines, *errors;
	pid_t pid;
	double t0;
	int code;

	make_many(src);
	serve(src);
	pid = start_slow_run(url3, out, "2");
	cr_assert_eq(fixture("stop", NULL, NULL, NULL), 0);
	server_up = 0;
	t0 = (double)time(NULL);
	code = wait_run(pid, out, 60, &err);
	cr_expect_eq(code, 1, "exit %d, want 1 (fatal); stderr:\n%s", code, err);
	cr_expect(strstr(err, "lost the connection to 'nfs://127.0.0.1"), "stderr:\n%s", err);
	cr_expect_leq((double)time(NULL) - t0, 20, "the run went on long after the outage");
	/* what was written is whole and recorded; what was not is not an error per file */
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_lt(json_array_size(lines) - 1, OUTAGE_FILES, "nothing was left to do");
	errors = read_out_jsonl(out, "vhprep-errors.jsonl");
	if (json_array_size(errors)) {
		char *text = json_dumps(errors, JSON_COMPACT);

		cr_expect_fail("per-file errors for a lost server: %.2000s\nstderr:\n%s", text,
			       err);
		free(text);
	}
	{
		char *sum = itest_fmt("%s/vhprep-summary.json", out);
		json_t *j = itest_read_json(sum);

		cr_expect_eq(itest_jint(j, "exit_code"), 1, "the summary's exit code");
		json_decref(j);
		free(sum);
	}
	json_decref(lines);
	json_decref(errors);
	free(err);
	free(src);
	free(out);
}

/* The server restarts (same export, same ports) while a run is going: the dropped
 * connections are mounted again, the requests retried, and nothing is lost. */
static void outage_and_back(const char *version)
{
	char *src = itest_path("src"), *out = itest_path("out"), *err;
	json_t *lines, *errors;
	pid_t pid;
	int code;

	make_many(src);
	serve(src);
	pid = start_slow_run(strcmp(version, "4") ? url3 : url4, out, "30");
	cr_assert_eq(fixture("stop", NULL, NULL, NULL), 0);
	usleep(500 * 1000);
	VH_FREE(url3);
	VH_FREE(url4);
	serve(src);
	code = wait_run(pid, out, 120, &err);
	cr_expect_eq(code, 0, "NFSv%s: exit %d; stderr:\n%s", version, code, err);
	lines = itest_check_outputs(out, "processed_images", 1);
	{
		char *sum = itest_fmt("%s/vhprep-summary.json", out);
		json_t *j = itest_read_json(sum);

		cr_expect_eq(json_array_size(lines) - 1, OUTAGE_FILES,
			     "NFSv%s: outputs lost: found %lld, processed %lld, cancelled %lld",
			     version, (long long)itest_jint(itest_jget(j, "files"), "found"),
			     (long long)itest_jint(itest_jget(j, "files"), "processed"),
			     (long long)itest_jint(itest_jget(j, "files"), "cancelled"));
		json_decref(j);
		free(sum);
	}
	errors = read_out_jsonl(out, "vhprep-errors.jsonl");
	cr_expect_eq(
	    json_array_size(errors), 0, "NFSv%s: errors after the outage, first: %s", version,
	    json_array_size(errors) ? itest_jstr(json_array_get(errors, 0), "message") : "");
	json_decref(lines);
	json_decref(errors);
	free(err);
	free(src);
	free(out);
}

Test(nfs, a_server_restart_mid_run_loses_nothing_v3)
{
	outage_and_back("3");
}

Test(nfs, a_server_restart_mid_run_loses_nothing_v4)
{
	outage_and_back("4");
}

/* ---- a huge flat directory ---- */

#define FLAT_FILES 100000

/* Walks url with `vhprep bench --walk-only` under /usr/bin/time; returns the entries it
 * listed and its peak RSS in KiB (*rss_kb). */
static long long walk_entries(const char *url, long *rss_kb)
{
	struct itest_argv a = {0};
	struct itest_proc p;
	json_error_t jerr;
	json_t *j;
	const char *m;
	long long n;

	itest_argv_add(&a, "/usr/bin/time");
	itest_argv_add(&a, "-f");
	itest_argv_add(&a, "maxrss_kb=%M");
	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "bench");
	itest_argv_add(&a, "--walk-only");
	itest_argv_add(&a, url);
	itest_run(a.v, NULL, &p);
	cr_assert_eq(p.exit_code, 0, "%s: exit %d: %s", url, p.exit_code, p.err);
	j = json_loads(p.out, 0, &jerr);
	cr_assert_not_null(j, "%s: stdout: %s", url, p.out);
	n = (long long)itest_jint(j, "entries");
	m = strstr(p.err, "maxrss_kb=");
	cr_assert_not_null(m, "no peak RSS from /usr/bin/time: %s", p.err);
	*rss_kb = strtol(m + strlen("maxrss_kb="), NULL, 10);
	json_decref(j);
	itest_proc_release(&p);
	itest_argv_free(&a);
	return n;
}

/* One directory of 100,000 entries is listed page by page over v3 and v4: every entry
 * arrives and memory stays bounded (pages stream to the walker, never the whole list). */
Test(nfs, a_100k_entry_directory_streams_in_bounded_memory)
{
	char *src = itest_path("flat");
	/* sanitizer builds carry shadow memory: the bound is for the release build */
	long bound_kb = getenv("ASAN_OPTIONS") ? 1024 * 1024 : 200 * 1024, rss3, rss4;

	itest_mkdirs(src);
	for (int i = 0; i < FLAT_FILES; i++) {
		char *p = itest_fmt("%s/f%06d.jpg", src, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

		cr_assert_geq(fd, 0, "%s", p);
		close(fd);
		free(p);
	}
	serve(src);
	cr_expect_eq(walk_entries(url3, &rss3), FLAT_FILES, "NFSv3 entries");
	cr_expect_eq(walk_entries(url4, &rss4), FLAT_FILES, "NFSv4 entries");
	cr_expect_lt(rss3, bound_kb, "NFSv3 walk peak RSS %ld KiB", rss3);
	cr_expect_lt(rss4, bound_kb, "NFSv4 walk peak RSS %ld KiB", rss4);
	cr_log_info("100k flat: peak RSS v3 %ld KiB, v4 %ld KiB", rss3, rss4);
	free(src);
}
