#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/source.h"
#include "tests/common/vhtest.h"

static char dir[PATH_MAX];
static struct budget *budget;

static void setup(void)
{
	vht_tmpdir(dir, sizeof(dir));
	budget = budget_new(1 << 20);
}

static void teardown(void)
{
	budget_free(budget);
	vht_rm_rf(dir);
}

static struct source_opts opts(const char *files_from)
{
	return (struct source_opts){.walkers = 4,
				    .io_depth = 4,
				    .budget = budget,
				    .files_from = files_from,
				    .quiet = 1};
}

/* Runs fn with stderr sent to a file; returns what was written (caller frees). */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	long n;
	char *text;

	fflush(stderr);
	dup2(fileno(f), STDERR_FILENO);
	fn(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = ftell(f);
	text = calloc(1, (size_t)n + 1);
	rewind(f);
	cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return text;
}

Test(source, open_missing_root_is_noent, .init = setup, .fini = teardown)
{
	struct source_opts o = opts(NULL);
	struct source *s = (struct source *)0x1;
	struct vherr err = {0};
	char path[PATH_MAX];

	cr_assert_eq(source_open(vht_join(path, sizeof(path), dir, "nope"), &o, &s, &err),
		     -VHERR_NOENT);
	cr_assert_null(s);
	cr_assert_eq(err.code, VHERR_NOENT);
	cr_assert_not_null(strstr(err.msg, "nope"), "message: %s", err.msg);
}

Test(source, open_a_file_is_notdir, .init = setup, .fini = teardown)
{
	struct source_opts o = opts(NULL);
	struct source *s = (struct source *)0x1;
	struct vherr err = {0};
	char path[PATH_MAX];

	vht_put(dir, "file.jpg", "x");
	cr_assert_eq(source_open(vht_join(path, sizeof(path), dir, "file.jpg"), &o, &s, &err),
		     -VHERR_NOTDIR);
	cr_assert_null(s);
	cr_assert_eq(err.code, VHERR_NOTDIR);
}

Test(source, root_is_normalised_and_locations_join, .init = setup, .fini = teardown)
{
	struct source_opts o = opts(NULL);
	struct source *s;
	struct vherr err = {0};
	char spec[PATH_MAX], buf[PATH_MAX], want[PATH_MAX];

	vht_join(spec, sizeof(spec), dir, "//");
	cr_assert_eq(source_open(spec, &o, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(source_root(s), dir);
	vht_join(want, sizeof(want), dir, "a/b.jpg");
	cr_assert_str_eq(source_location(s, "a/b.jpg", buf, sizeof(buf)), want);
	source_free(s);

	cr_assert_eq(source_open("/", &o, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(source_root(s), "/");
	cr_assert_str_eq(source_location(s, "etc/hostname", buf, sizeof(buf)), "/etc/hostname");
	source_free(s);
	source_free(NULL);
}

struct open_args {
	const char *spec;
	int quiet;
};

static void open_and_free(void *arg)
{
	struct open_args *a = arg;
	struct source_opts o = opts(NULL);
	struct source *s;
	struct vherr err = {0};

	o.quiet = a->quiet;
	cr_assert_eq(source_open(a->spec, &o, &s, &err), 0, "%s", err.msg);
	source_free(s);
}

Test(source, warns_when_not_a_mount_point_unless_quiet, .init = setup, .fini = teardown)
{
	char sub[PATH_MAX], *text;
	struct open_args a = {.spec = sub};

	vht_mkdirs(vht_join(sub, sizeof(sub), dir, "plain"));
	text = capture_stderr(open_and_free, &a);
	cr_assert_not_null(strstr(text, "not a mount point"), "stderr: %s", text);
	cr_assert_not_null(strstr(text, sub), "stderr: %s", text);
	free(text);
	a.quiet = 1;
	text = capture_stderr(open_and_free, &a);
	cr_assert_str_eq(text, "");
	free(text);
	a.spec = "/"; /* the root of the filesystem tree is a mount point */
	a.quiet = 0;
	text = capture_stderr(open_and_free, &a);
	cr_assert_str_eq(text, "");
	free(text);
}

struct seen {
	pthread_mutex_t lock;
	int n;
	char paths[16][64];
};

static enum source_next on_emit(void *ctx, const struct source_entry *e)
{
	const char *relpath = e->relpath;
	struct seen *s = ctx;

	pthread_mutex_lock(&s->lock);
	if (s->n < 16)
		snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", relpath);
	s->n++;
	pthread_mutex_unlock(&s->lock);
	return SOURCE_CONTINUE;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(a, b);
}

Test(source, walks_the_tree, .init = setup, .fini = teardown)
{
	struct source_opts o = opts(NULL);
	struct source *s;
	struct vherr err = {0};
	static struct seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

	vht_put(dir, "a/1.jpg", "1");
	vht_put(dir, "b/c/2.png", "2");
	cr_assert_eq(source_open(dir, &o, &s, &err), 0);
	cr_assert_eq(source_walk(s, on_emit, &seen, NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(seen.n, 2);
	qsort(seen.paths, 2, sizeof(seen.paths[0]), cmp_path);
	cr_assert_str_eq(seen.paths[0], "a/1.jpg");
	cr_assert_str_eq(seen.paths[1], "b/c/2.png");
	source_free(s);
}

Test(source, files_from_replaces_the_walk, .init = setup, .fini = teardown)
{
	char list[PATH_MAX];
	struct source_opts o = opts(vht_join(list, sizeof(list), dir, "list.txt"));
	struct source *s;
	struct vherr err = {0};
	static struct seen seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

	vht_put(dir, "a/1.jpg", "1");
	vht_put(dir, "b/2.jpg", "2");
	vht_put(dir, "list.txt", "./b/2.jpg\nnot/there.jpg\n");
	cr_assert_eq(source_open(dir, &o, &s, &err), 0);
	cr_assert_eq(source_walk(s, on_emit, &seen, NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(seen.n, 2, "the list is the enumeration, existing or not");
	cr_assert_str_eq(seen.paths[0], "b/2.jpg");
	cr_assert_str_eq(seen.paths[1], "not/there.jpg");
	source_free(s);
}

struct reads {
	atomic_int done[4];
};

static void read_done(struct source_read *req)
{
	struct reads *r = req->user;

	atomic_fetch_add(&r->done[req->max_size == UINT64_MAX ? 0 : 1], 1);
}

Test(source, read_submit_completes_once, .init = setup, .fini = teardown, .timeout = 20)
{
	struct source_opts o = opts(NULL);
	struct source *s;
	struct vherr err = {0};
	static struct reads r;
	struct source_read req = {
	    .relpath = "x/data.bin", .max_size = UINT64_MAX, .done = read_done, .user = &r};

	vht_put(dir, "x/data.bin", "0123456789");
	cr_assert_eq(source_open(dir, &o, &s, &err), 0);
	cr_assert_eq(source_read_submit(s, &req), 0);
	source_free(s); /* waits for the I/O threads */
	cr_assert_eq(atomic_load(&r.done[0]), 1);
	cr_assert_eq(req.status, SOURCE_READ_OK, "%s", req.err.msg);
	cr_assert_arr_eq(req.data, "0123456789", 10);
	budget_release(budget, req.charged);
	free(req.data);
}

Test(source, cancel_refuses_later_reads, .init = setup, .fini = teardown, .timeout = 20)
{
	struct source_opts o = opts(NULL);
	struct source *s;
	struct vherr err = {0};
	static struct reads r;
	struct source_read req = {
	    .relpath = "f", .max_size = UINT64_MAX, .done = read_done, .user = &r};

	vht_put(dir, "f", "x");
	cr_assert_eq(source_open(dir, &o, &s, &err), 0);
	source_cancel(s);
	cr_assert_lt(source_read_submit(s, &req), 0);
	source_free(s);
	cr_assert_eq(atomic_load(&r.done[0]), 0, "a refused read must not complete");
}
