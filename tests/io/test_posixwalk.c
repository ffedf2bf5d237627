#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/posixwalk.h"
#include "tests/common/vhtest.h"

/* ---- a filesystem without d_type, simulated ----
 * Some filesystems (and some FUSE and network ones) answer DT_UNKNOWN for every entry,
 * and the walk must then find the type itself. This readdir wraps the real one and,
 * while hide_d_type is set, blanks d_type the way such a filesystem does. */
static atomic_int hide_d_type;
static struct dirent *(*real_readdir)(DIR *);

__attribute__((constructor)) static void find_real_readdir(void)
{
	real_readdir = (struct dirent * (*)(DIR *)) dlsym(RTLD_NEXT, "readdir");
}

struct dirent *readdir(DIR *d)
{
	struct dirent *de = real_readdir(d);

	if (de && atomic_load(&hide_d_type))
		de->d_type = DT_UNKNOWN;
	return de;
}

/* ---- what a walk emitted ---- */

struct collect {
	pthread_mutex_t lock;
	char **paths;
	size_t n, cap;
	atomic_int calls;
	int stop_after; /* return SOURCE_STOP from this call on (0: never) */
	int delay_ms;	/* per emit */
	int nerr;
	char errpath[8][PATH_MAX];
	struct vherr errs[8];
	atomic_int kinds[SOURCE_KIND__COUNT]; /* entries emitted by kind */
};

static struct collect *live; /* the collect in use, released by teardown if still live */

static void collect_init(struct collect *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	live = c;
}

static void collect_release(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->paths[i]);
	free(c->paths);
	c->paths = NULL;
	c->n = 0;
	pthread_mutex_destroy(&c->lock);
	live = NULL;
}

static enum source_next on_emit(void *ctx, const struct source_entry *e)
{
	const char *relpath = e->relpath;
	struct collect *c = ctx;
	int call = atomic_fetch_add(&c->calls, 1) + 1;

	if (c->delay_ms)
		vht_sleep_ms(c->delay_ms);
	atomic_fetch_add(&c->kinds[e->kind], 1);
	if (e->kind != SOURCE_KIND_FILE)
		return SOURCE_CONTINUE;
	pthread_mutex_lock(&c->lock);
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->paths = realloc(c->paths, c->cap * sizeof(*c->paths));
	}
	c->paths[c->n++] = strdup(relpath);
	pthread_mutex_unlock(&c->lock);
	return c->stop_after && call >= c->stop_after ? SOURCE_STOP : SOURCE_CONTINUE;
}

static void on_err(void *ctx, const char *relpath, const struct vherr *err)
{
	struct collect *c = ctx;

	pthread_mutex_lock(&c->lock);
	if (c->nerr < 8) {
		snprintf(c->errpath[c->nerr], PATH_MAX, "%s", relpath);
		c->errs[c->nerr] = *err;
	}
	c->nerr++;
	pthread_mutex_unlock(&c->lock);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Asserts that c emitted exactly want[0..n) (any order), each once. Compares first and
 * asserts after freeing, so a failure leaks nothing (the ASan build checks leaks). */
static void expect_paths(struct collect *c, const char **want, size_t n)
{
	const char **w = malloc(n * sizeof(*w));
	char dup[PATH_MAX] = "", got[PATH_MAX] = "", exp[PATH_MAX] = "";
	size_t at = SIZE_MAX;

	memcpy(w, want, n * sizeof(*w));
	qsort(w, n, sizeof(*w), cmp_str);
	qsort(c->paths, c->n, sizeof(*c->paths), cmp_str);
	for (size_t i = 0; i + 1 < c->n && !dup[0]; i++)
		if (strcmp(c->paths[i], c->paths[i + 1]) == 0)
			snprintf(dup, sizeof(dup), "%s", c->paths[i]);
	for (size_t i = 0; i < n && i < c->n && at == SIZE_MAX; i++)
		if (strcmp(c->paths[i], w[i]) != 0) {
			at = i;
			snprintf(got, sizeof(got), "%s", c->paths[i]);
			snprintf(exp, sizeof(exp), "%s", w[i]);
		}
	free(w);
	cr_assert_eq(dup[0], '\0', "'%s' emitted twice", dup);
	cr_assert_eq(at, SIZE_MAX, "emitted set differs at %zu: '%s' vs '%s'", at, got, exp);
	cr_assert_eq(c->n, n, "emitted %zu paths, want %zu", c->n, n);
}

static char dir[PATH_MAX];
static int rootfd = -1;

static void setup(void)
{
	vht_tmpdir(dir, sizeof(dir));
}

static void teardown(void)
{
	if (live)
		collect_release(live);
	if (rootfd >= 0)
		close(rootfd);
	vht_rm_rf(dir);
}

static int open_root(void)
{
	rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(rootfd, 0);
	return rootfd;
}

static void link_at(const char *target, const char *rel)
{
	char path[PATH_MAX];

	cr_assert_eq(symlink(target, vht_join(path, sizeof(path), dir, rel)), 0, "symlink %s",
		     rel);
}

/* ---- the mixed tree ---- */

static const char *mixed_files[] = {
    "top.jpg",
    "empty.bin",
    "a/with space.jpg",
    "a/\xc3\xbcn\xc3\xaf\x63\xc3\xb6\x64\xc3\xa9-\xe5\x90\x8d\xe5\x89\x8d.jpg",
    "a/quote'\"s.jpg",
    "a/new\nline.jpg",
    "a/back\\slash.jpg",
    "a/b/c/deep.png",
};

static void make_mixed_tree(void)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(mixed_files) / sizeof(*mixed_files); i++)
		vht_put(dir, mixed_files[i], i < 2 ? "" : "data");
	vht_mkdirs(vht_join(path, sizeof(path), dir, "empty-dir"));
	link_at("a/with space.jpg", "link-to-file"); /* a file */
	link_at("a", "link-to-dir");		     /* link_to_dir */
	link_at("..", "a/b/up");		     /* a loop: link_to_dir */
	link_at("self-loop", "a/b/self-loop");	     /* link_loop */
	link_at("nowhere", "dangling");		     /* dangling_link */
	link_at("/etc/hostname", "outside");	     /* outside_root: never opened */
	link_at("/proc/self/mem", "a/mem");	     /* outside_root */
	link_at("/dev/null", "null");		     /* device */
	/* an absolute link that lands inside the root is a file like any other */
	link_at(vht_join(path, sizeof(path), dir, "top.jpg"), "absolute-inside");
	cr_assert_eq(mkfifo(vht_join(path, sizeof(path), dir, "fifo"), 0644), 0);
}

static void walk_mixed(int nwalkers)
{
	const char *want[16];
	size_t n = 0;
	struct posixwalk_stats st = {0};
	static struct collect c;
	struct vherr err = {0};
	atomic_int stop = 0;

	make_mixed_tree();
	for (size_t i = 0; i < sizeof(mixed_files) / sizeof(*mixed_files); i++)
		want[n++] = mixed_files[i];
	want[n++] = "link-to-file";
	want[n++] = "absolute-inside";
	collect_init(&c);
	cr_assert_eq(
	    posixwalk_run(open_root(), nwalkers, &stop, on_emit, &c, on_err, &st, NULL, &err), 0,
	    "walk failed: %s", err.msg);
	expect_paths(&c, want, n);
	cr_assert_eq(c.nerr, 0, "unexpected on_error for '%s': %s", c.errpath[0],
		     c.errs[0].msg);
	cr_expect_eq(atomic_load(&st.dirs), 5, "dirs listed"); /* ., a, a/b, a/b/c, empty-dir */
	cr_expect_eq(atomic_load(&c.kinds[SOURCE_KIND_LINK_DIR]), 2, "symlinks to directories");
	cr_expect_eq(atomic_load(&c.kinds[SOURCE_KIND_LOOP]), 1);
	cr_expect_eq(atomic_load(&c.kinds[SOURCE_KIND_DANGLING]), 1);
	cr_expect_eq(atomic_load(&c.kinds[SOURCE_KIND_OUTSIDE]), 2);
	cr_expect_eq(atomic_load(&c.kinds[SOURCE_KIND_DEVICE]), 1);
	cr_expect_eq(atomic_load(&c.kinds[SOURCE_KIND_FIFO]), 1);
	cr_expect_eq(atomic_load(&st.skipped), 8, "every name that is not a file to read");
	cr_assert_eq(atomic_load(&stop), 0);
	collect_release(&c);
}

Test(posixwalk, mixed_tree_one_walker, .init = setup, .fini = teardown, .timeout = 20)
{
	walk_mixed(1);
}

Test(posixwalk, mixed_tree_eight_walkers, .init = setup, .fini = teardown, .timeout = 20)
{
	walk_mixed(8);
}

/* On a filesystem that reports DT_UNKNOWN, the walk must decide the same things: every
 * name gets the kind it gets with d_type. */
Test(posixwalk, filesystem_without_d_type, .init = setup, .fini = teardown, .timeout = 20)
{
	atomic_store(&hide_d_type, 1);
	walk_mixed(4);
}

Test(posixwalk, relpaths_have_no_dot_prefix, .init = setup, .fini = teardown, .timeout = 20)
{
	static struct collect c;
	struct vherr err = {0};
	atomic_int stop = 0;

	vht_put(dir, "x/y/z.jpg", "1");
	vht_put(dir, "r.jpg", "1");
	collect_init(&c);
	cr_assert_eq(posixwalk_run(open_root(), 2, &stop, on_emit, &c, on_err, NULL, NULL, &err), 0);
	expect_paths(&c, (const char *[]){"r.jpg", "x/y/z.jpg"}, 2);
	collect_release(&c);
}

Test(posixwalk, empty_root, .init = setup, .fini = teardown, .timeout = 20)
{
	struct posixwalk_stats st = {0};
	static struct collect c;
	struct vherr err = {0};
	atomic_int stop = 0;

	collect_init(&c);
	cr_assert_eq(posixwalk_run(open_root(), 8, &stop, on_emit, &c, on_err, &st, NULL, &err), 0);
	cr_assert_eq(c.n, 0);
	cr_assert_eq(atomic_load(&st.dirs), 1);
	collect_release(&c);
}

Test(posixwalk, unreadable_subdir_goes_to_on_error, .init = setup, .fini = teardown,
     .timeout = 20)
{
	char path[PATH_MAX];
	static struct collect c;
	struct vherr err = {0};
	atomic_int stop = 0;

	vht_put(dir, "ok/1.jpg", "1");
	vht_put(dir, "ok/secret/2.jpg", "2");
	vht_put(dir, "zz.jpg", "3");
	open_root();
	cr_assert_eq(chmod(vht_join(path, sizeof(path), dir, "ok/secret"), 0), 0);
	vht_require_permissions(dir);
	collect_init(&c);
	cr_assert_eq(posixwalk_run(rootfd, 4, &stop, on_emit, &c, on_err, NULL, NULL, &err), 0,
		     "a sub-directory failure must not fail the walk: %s", err.msg);
	expect_paths(&c, (const char *[]){"ok/1.jpg", "zz.jpg"}, 2);
	cr_assert_eq(c.nerr, 1);
	cr_assert_str_eq(c.errpath[0], "ok/secret");
	cr_assert_eq(c.errs[0].code, VHERR_ACCESS);
	cr_assert_eq(c.errs[0].stage, VHSTAGE_WALK);
	cr_assert_not_null(strstr(c.errs[0].msg, "ok/secret"), "message: %s", c.errs[0].msg);
	collect_release(&c);
}

Test(posixwalk, unlistable_root_fails_the_walk, .init = setup, .fini = teardown, .timeout = 20)
{
	char sub[PATH_MAX];
	static struct collect c;
	struct vherr err = {0};
	atomic_int stop = 0;
	int fd;

	vht_put(dir, "locked/1.jpg", "1");
	vht_join(sub, sizeof(sub), dir, "locked");
	fd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(chmod(sub, 0), 0);
	vht_require_permissions(dir);
	collect_init(&c);
	cr_assert_eq(posixwalk_run(fd, 4, &stop, on_emit, &c, on_err, NULL, NULL, &err),
		     -VHERR_ACCESS);
	cr_assert_eq(err.code, VHERR_ACCESS);
	cr_assert_eq(err.stage, VHSTAGE_WALK);
	cr_assert_eq(c.n, 0);
	cr_assert_eq(c.nerr, 0, "the root's failure goes to err, not on_error");
	close(fd);
	collect_release(&c);
}

/* ---- the wide tree: ~2000 files in 50 directories ---- */

#define TOPS	      10
#define SUBS	      4
#define FILES_PER_DIR 40
#define WIDE_FILES    ((TOPS + TOPS * SUBS) * FILES_PER_DIR)

static const char **wide_names(void)
{
	const char **v = malloc(WIDE_FILES * sizeof(*v));
	char buf[64];
	size_t n = 0;

	for (int t = 0; t < TOPS; t++) {
		for (int s = -1; s < SUBS; s++) {
			for (int f = 0; f < FILES_PER_DIR; f++) {
				if (s < 0)
					snprintf(buf, sizeof(buf), "d%d/f%03d.jpg", t, f);
				else
					snprintf(buf, sizeof(buf), "d%d/s%d/f%03d.jpg", t, s,
						 f);
				v[n++] = strdup(buf);
			}
		}
	}
	cr_assert_eq(n, WIDE_FILES);
	return v;
}

static void free_names(const char **v)
{
	for (size_t i = 0; i < WIDE_FILES; i++)
		free((char *)v[i]);
	free(v);
}

static const char **make_wide_tree(void)
{
	const char **v = wide_names();
	char path[PATH_MAX];

	for (int t = 0; t < TOPS; t++)
		for (int s = 0; s < SUBS; s++) {
			char rel[32];

			snprintf(rel, sizeof(rel), "d%d/s%d", t, s);
			vht_mkdirs(vht_join(path, sizeof(path), dir, rel));
		}
	for (size_t i = 0; i < WIDE_FILES; i++) {
		vht_join(path, sizeof(path), dir, v[i]);
		vht_write(path, "", 0);
	}
	return v;
}

static void walk_wide(int nwalkers)
{
	const char **want = make_wide_tree();
	struct posixwalk_stats st = {0};
	static struct collect c;
	struct vherr err = {0};
	atomic_int stop = 0;

	collect_init(&c);
	cr_assert_eq(
	    posixwalk_run(open_root(), nwalkers, &stop, on_emit, &c, on_err, &st, NULL, &err), 0);
	expect_paths(&c, want, WIDE_FILES);
	cr_assert_eq(atomic_load(&c.calls), WIDE_FILES);
	cr_assert_eq(atomic_load(&st.dirs), 1 + TOPS + TOPS * SUBS);
	cr_assert_eq(c.nerr, 0);
	collect_release(&c);
	free_names(want);
}

Test(posixwalk, exactly_once_one_walker, .init = setup, .fini = teardown, .timeout = 60)
{
	walk_wide(1);
}

Test(posixwalk, exactly_once_eight_walkers, .init = setup, .fini = teardown, .timeout = 60)
{
	walk_wide(8);
}

Test(posixwalk, exactly_once_more_walkers_than_dirs, .init = setup, .fini = teardown,
     .timeout = 60)
{
	walk_wide(64);
}

Test(posixwalk, emit_stop_ends_the_walk, .init = setup, .fini = teardown, .timeout = 30)
{
	const char **names = make_wide_tree();

	for (int nwalkers = 1; nwalkers <= 8; nwalkers += 7) {
		static struct collect c;
		struct vherr err = {0};
		atomic_int stop = 0;

		collect_init(&c);
		c.stop_after = 10;
		cr_assert_eq(posixwalk_run(open_root(), nwalkers, &stop, on_emit, &c, on_err,
					   NULL, NULL, &err),
			     0, "a stopped walk is not a failure");
		cr_assert_eq(atomic_load(&stop), 1, "SOURCE_STOP must raise *stop");
		if (nwalkers == 1)
			cr_assert_eq(atomic_load(&c.calls), 10);
		else /* emits already under way in other walkers may finish */
			cr_assert(atomic_load(&c.calls) >= 10 &&
				      atomic_load(&c.calls) < 10 + nwalkers,
				  "%d walkers: %d emits after a stop at 10", nwalkers,
				  atomic_load(&c.calls));
		collect_release(&c);
		close(rootfd);
		rootfd = -1;
	}
	free_names(names);
}

Test(posixwalk, stop_raised_before_emits_nothing, .init = setup, .fini = teardown,
     .timeout = 20)
{
	static struct collect c;
	struct vherr err = {0};
	atomic_int stop = 1;

	vht_put(dir, "a/1.jpg", "1");
	collect_init(&c);
	cr_assert_eq(posixwalk_run(open_root(), 4, &stop, on_emit, &c, on_err, NULL, NULL, &err), 0);
	cr_assert_eq(c.n, 0);
	collect_release(&c);
}

struct stopper {
	atomic_int *stop;
	int after_ms;
};

static void *raise_stop(void *arg)
{
	struct stopper *s = arg;

	vht_sleep_ms(s->after_ms);
	atomic_store(s->stop, 1);
	return NULL;
}

Test(posixwalk, stop_raised_from_outside_ends_the_walk, .init = setup, .fini = teardown,
     .timeout = 30)
{
	const char **names = make_wide_tree();
	static struct collect c;
	struct vherr err = {0};
	atomic_int stop = 0;
	struct stopper s = {.stop = &stop, .after_ms = 100};
	pthread_t t;
	struct timespec a, b;
	double took;

	collect_init(&c);
	c.delay_ms = 5; /* 2000 files x 5 ms / 4 walkers: ~2.5 s if not stopped */
	open_root();
	cr_assert_eq(pthread_create(&t, NULL, raise_stop, &s), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_assert_eq(posixwalk_run(rootfd, 4, &stop, on_emit, &c, on_err, NULL, NULL, &err), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	took = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	pthread_join(t, NULL);
	cr_assert_lt(c.n, WIDE_FILES, "the walk ignored the stop");
	cr_assert_lt(took, 1.5, "the walk took %.2f s to notice the stop", took);
	collect_release(&c);
	free_names(names);
}
