/* io/nfs4dir against a real NFSv4 server: nfs-ganesha (VFS backend) on 127.0.0.1:20690,
 * started by tests/fixtures/ganesha.sh on a tree this test makes, with its own state dir
 * and ports so it never meets the other suites' servers (20490, 20590, 20790).
 * - lookup: the export root, a subdirectory; a missing path (ENOENT), a file and a
 *   symlink (ENOTDIR); "." and relative paths refused at submit;
 * - readdir: 5,000 files, subdirectories, a symlink and a fifo read in many small pages:
 *   every name exactly once, with lstat's type, size and mtime (to the nanosecond);
 *   every subdirectory's handle lists that subdirectory; the names-only variant; an
 *   empty directory (eof on the first page); a bad handle fails with one completion;
 * - the attribute decoder (no server): truncated, trailing, unknown and bad values.
 * Skipped when the fixture exits 77 (not root, ganesha missing). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "io/nfs4dir.h"
#include "io/nfs4rpc.h"
#include "io/nfsurl.h"
#include "tests/common/vhskip.h"

#define GANESHA_NFS_PORT "20690"
#define MNT_PORT	 "20691"
#define BIG_FILES	 5000
#define BIG_SUBDIR	 12
#define WAIT_MS		 30000

static char tmp[256];  /* this test's temp dir */
static char root[300]; /* the exported tree: tmp/export */
static int server_up;  /* the fixture started a server this test must stop */
static struct nfs_context *nfs;

/* ---- fixture ---- */

static int fixture(const char *verb, char *out, size_t outsize)
{
	char cmd[1024];
	FILE *p;
	size_t n = 0;
	int st;

	snprintf(cmd, sizeof(cmd),
		 "bash '%s/tests/fixtures/ganesha.sh' %s %s 2>'%s/fixture.err'",
		 getenv("VHPREP_SOURCE_DIR"), verb, strcmp(verb, "start") ? "" : root, tmp);
	p = popen(cmd, "r");
	cr_assert_not_null(p, "popen: %s", strerror(errno));
	if (out) {
		n = fread(out, 1, outsize - 1, p);
		out[n] = '\0';
	} else {
		char sink[256];

		while (fread(sink, 1, sizeof(sink), p) > 0)
			;
	}
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void fixture_err(char *buf, size_t size)
{
	char path[400];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/fixture.err", tmp);
	f = fopen(path, "r");
	if (f) {
		n = fread(buf, 1, size - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

static void write_file(const char *path, size_t size, long sec, long nsec)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char buf[512];
	struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	memset(buf, 'x', sizeof(buf));
	cr_assert_eq(write(fd, buf, size), (ssize_t)size);
	cr_assert_eq(futimens(fd, ts), 0);
	close(fd);
}

static void mkdir_ok(const char *p)
{
	cr_assert_eq(mkdir(p, 0755), 0, "mkdir %s: %s", p, strerror(errno));
}

/* tmp/export: afile, link -> sub, sub/dir/leaf, empty/, big/ (BIG_FILES files of
 * 0..511 bytes with distinct mtimes, BIG_SUBDIR subdirectories of i files each, a
 * symlink and a fifo). */
static void make_tree(void)
{
	char p[512];

	snprintf(root, sizeof(root), "%s/export", tmp);
	mkdir_ok(root);
	snprintf(p, sizeof(p), "%s/afile", root);
	write_file(p, 3, 1700000000, 5);
	snprintf(p, sizeof(p), "%s/link", root);
	cr_assert_eq(symlink("sub", p), 0);
	snprintf(p, sizeof(p), "%s/sub", root);
	mkdir_ok(p);
	snprintf(p, sizeof(p), "%s/sub/dir", root);
	mkdir_ok(p);
	snprintf(p, sizeof(p), "%s/sub/dir/leaf", root);
	write_file(p, 1, 1700000000, 0);
	snprintf(p, sizeof(p), "%s/empty", root);
	mkdir_ok(p);
	snprintf(p, sizeof(p), "%s/big", root);
	mkdir_ok(p);
	for (int i = 0; i < BIG_FILES; i++) {
		snprintf(p, sizeof(p), "%s/big/file-%05d.jpg", root, i);
		write_file(p, (size_t)(i * 7) % 512, 1600000000L + i,
			   (i * 7919L) % 1000000000L);
	}
	for (int i = 0; i < BIG_SUBDIR; i++) {
		snprintf(p, sizeof(p), "%s/big/sub%02d", root, i);
		mkdir_ok(p);
		for (int k = 0; k < i; k++) {
			snprintf(p, sizeof(p), "%s/big/sub%02d/in-%d", root, i, k);
			write_file(p, (size_t)k, 1650000000L, 0);
		}
	}
	snprintf(p, sizeof(p), "%s/big/a-link", root);
	cr_assert_eq(symlink("file-00001.jpg", p), 0);
	snprintf(p, sizeof(p), "%s/big/a-fifo", root);
	cr_assert_eq(mkfifo(p, 0644), 0);
}

/* Sets the context's NFS port: libnfs 4.0 has no setter, only its URL arguments. */
static void set_port(struct nfs_context *c, int port)
{
	char args[64];
	struct nfs_url *u;

	snprintf(args, sizeof(args), "nfs://?nfsport=%d", port);
	u = nfs_parse_url_incomplete(c, args);
	cr_assert_not_null(u, "%s", nfs_get_error(c));
	nfs_destroy_url(u);
}

static void mount_v4(const char *url)
{
	struct nfsurl u;
	struct vherr err = {0};

	cr_assert_eq(nfsurl_parse(url, &u, &err), 0, "%s", err.msg);
	cr_assert_eq(u.version, 4);
	nfs = nfs_init_context();
	cr_assert_not_null(nfs);
	cr_assert_eq(nfs_set_version(nfs, NFS_V4), 0);
	set_port(nfs, u.nfsport);
	nfs_set_timeout(nfs, WAIT_MS);
	cr_assert_eq(nfs_mount(nfs, u.host, u.path), 0, "mount %s: %s", url,
		     nfs_get_error(nfs));
	nfsurl_release(&u);
}

/* Runs a shell command built printf-style; returns its exit code. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Stops the servers and removes the temp dirs of earlier runs of this test whose process
 * is gone (a sanitizer report exits without running .fini), so the port is free. */
static void reap_stale_runs(void)
{
	sh("for d in /tmp/test_nfs4dir.*; do [ -f \"$d/owner.pid\" ] || continue; "
	   "kill -0 \"$(cat \"$d/owner.pid\")\" 2>/dev/null && continue; "
	   "GANESHA_STATE_DIR=\"$d/ganesha-state\" bash '%s/tests/fixtures/ganesha.sh' stop; "
	   "rm -rf \"$d\"; done >/dev/null 2>&1",
	   getenv("VHPREP_SOURCE_DIR"));
}

/* Stops this run's server and removes tmp once this process is gone, however it ends;
 * detached (setsid, no inherited pipes). A normal .fini gets there first. */
static void start_watchdog(void)
{
	sh("setsid bash -c 'while kill -0 %ld 2>/dev/null; do sleep 0.2; done; "
	   "GANESHA_STATE_DIR=\"%s/ganesha-state\" bash \"%s/tests/fixtures/ganesha.sh\" stop; "
	   "rm -rf \"%s\"' </dev/null >/dev/null 2>&1 &",
	   (long)getpid(), tmp, getenv("VHPREP_SOURCE_DIR"), tmp);
}

static void setup(void)
{
	char out[2048], err[2048], state[400];
	const char *url;
	int code;

	snprintf(tmp, sizeof(tmp), "/tmp/test_nfs4dir.XXXXXX");
	reap_stale_runs();
	cr_assert_not_null(mkdtemp(tmp));
	cr_assert_eq(sh("echo %ld > '%s/owner.pid'", (long)getpid(), tmp), 0);
	make_tree();
	snprintf(state, sizeof(state), "%s/ganesha-state", tmp);
	setenv("GANESHA_STATE_DIR", state, 1);
	setenv("GANESHA_NFS_PORT", GANESHA_NFS_PORT, 1);
	setenv("GANESHA_MNT_PORT", MNT_PORT, 1);
	/* a server that exits at start may have met a port still held by a previous one: one
	 * more try before skipping */
	for (int tries = 0; tries < 2; tries++) {
		code = fixture("start", out, sizeof(out));
		fixture_err(err, sizeof(err));
		if (code != 77 || !strstr(err, "exited at start"))
			break;
		sleep(1);
	}
	if (code == 77) {
		sh("rm -rf '%s'", tmp);
		tmp[0] = '\0';
		vht_missing("nfs-ganesha is unavailable here (fixture exit 77): %s", err);
	}
	server_up = 1;
	start_watchdog();
	cr_assert_eq(code, 0, "ganesha.sh start: exit %d: %s", code, err);
	url = strstr(out, "NFS4_URL=");
	cr_assert_not_null(url, "no NFS4_URL line: %s", out);
	url += strlen("NFS4_URL=");
	((char *)url)[strcspn(url, "\n")] = '\0';
	mount_v4(url);
}

/* Crashes the test on a leak (after .fini an assertion no longer fails it). Without this,
 * LeakSanitizer's report at exit comes after Criterion recorded the test as passed and
 * the run still exits 0. */
static void check_leaks(void)
{
#ifdef __SANITIZE_ADDRESS__
	if (__lsan_do_recoverable_leak_check()) {
		fprintf(stderr, "test_nfs4dir: memory leaked (LeakSanitizer report above)\n");
		abort();
	}
#endif
}

static void teardown(void)
{
	if (nfs)
		nfs_destroy_context(nfs);
	nfs = NULL;
	if (server_up && fixture("stop", NULL, 0) != 0)
		cr_log_error("ganesha.sh stop failed");
	server_up = 0;
	if (tmp[0] && sh("rm -rf '%s'", tmp) != 0)
		cr_log_error("cannot remove %s", tmp);
	check_leaks();
}

TestSuite(nfs4dir, .init = setup, .fini = teardown, .timeout = 240);

/* ---- driving the loop ---- */

/* Services nfs until *calls reaches want; fails the test after WAIT_MS. */
static void run_until(const int *calls, int want)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (*calls < want) {
		struct pollfd p = {nfs_get_fd(nfs), (short)nfs_which_events(nfs), 0};

		cr_assert_geq(poll(&p, 1, 100), 0);
		cr_assert_geq(nfs_service(nfs, p.revents), 0, "%s", nfs_get_error(nfs));
		clock_gettime(CLOCK_MONOTONIC, &t);
		cr_assert_lt((t.tv_sec - t0.tv_sec) * 1000, WAIT_MS, "no completion in time");
	}
}

struct lk {
	int calls, rc;
	char *fh;
	uint32_t fhlen;
	char msg[512];
};

static void on_lk(int rc, char *fh, uint32_t fhlen, const char *msg, void *priv)
{
	struct lk *l = priv;

	l->calls++;
	l->rc = rc;
	l->fh = fh;
	l->fhlen = fhlen;
	snprintf(l->msg, sizeof(l->msg), "%s", msg ? msg : "");
}

static struct lk lookup(const char *path)
{
	struct lk l = {0};

	cr_assert_eq(nfs4dir_lookup(nfs_get_rpc_context(nfs), path, on_lk, &l), 0, "%s", path);
	run_until(&l.calls, 1);
	cr_assert_eq(l.calls, 1);
	return l;
}

/* One listed entry, copied out of the callback. */
struct ent {
	char *name;
	int err;
	enum nfs4dir_type type;
	unsigned have;
	uint64_t size;
	int64_t sec;
	uint32_t nsec;
	char fh[NFS4DIR_FH_MAX];
	uint32_t fhlen;
};

struct listing {
	struct ent *e;
	size_t n, cap;
	int pages, calls, rc;
	uint64_t cookie;
	char verf[NFS4DIR_VERF_SIZE];
	bool eof;
	char msg[512];
};

static void on_page(int rc, const struct nfs4dir_page *pg, const char *msg, void *priv)
{
	struct listing *l = priv;

	l->calls++;
	l->rc = rc;
	if (rc < 0) {
		cr_assert_null(pg);
		snprintf(l->msg, sizeof(l->msg), "%s", msg);
		return;
	}
	l->pages++;
	for (size_t i = 0; i < pg->count; i++) {
		const struct nfs4dir_entry *s = &pg->entries[i];
		struct ent *d;

		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 256;
			l->e = realloc(l->e, l->cap * sizeof(*l->e));
			cr_assert_not_null(l->e);
		}
		d = &l->e[l->n++];
		*d = (struct ent){strdup(s->name), s->err,	  s->type, s->have, s->size,
				  s->mtime_sec,	   s->mtime_nsec, {0},	   s->fhlen};
		cr_assert_eq(strlen(s->name), s->namelen);
		cr_assert_leq(s->fhlen, NFS4DIR_FH_MAX);
		if (s->fhlen)
			memcpy(d->fh, s->fh, s->fhlen);
	}
	l->cookie = pg->cookie;
	memcpy(l->verf, pg->cookieverf, sizeof(l->verf));
	l->eof = pg->eof;
}

/* Lists the directory fh page by page (maxcount bytes a page) into l. */
static void list_dir(const char *fh, uint32_t fhlen, enum nfs4dir_attrs attrs,
		     uint32_t maxcount, struct listing *l)
{
	*l = (struct listing){0};
	while (!l->eof) {
		struct nfs4dir_readdir_args a = {fh, fhlen, l->cookie, {0}, maxcount, 0, attrs};
		int before = l->calls;

		memcpy(a.cookieverf, l->verf, sizeof(a.cookieverf));
		cr_assert_eq(nfs4dir_readdir(nfs_get_rpc_context(nfs), &a, on_page, l), 0);
		run_until(&l->calls, before + 1);
		cr_assert_eq(l->calls, before + 1, "more than one completion");
		cr_assert_eq(l->rc, 0, "readdir: %s", l->msg);
		cr_assert_lt(l->pages, 100000, "no eof");
	}
}

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	free(l->e);
	*l = (struct listing){0};
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

/* Local directory names, sorted; returns the count, *names malloc'd. */
static size_t local_names(const char *dir, char ***names)
{
	char cmd[600];
	FILE *p;
	char line[512];
	size_t n = 0, cap = 0;

	snprintf(cmd, sizeof(cmd), "cd '%s' && LC_ALL=C ls -A1", dir);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	*names = NULL;
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			*names = realloc(*names, cap * sizeof(**names));
		}
		(*names)[n++] = strdup(line);
	}
	pclose(p);
	return n;
}

static enum nfs4dir_type type_of_mode(mode_t m)
{
	return S_ISREG(m)   ? NFS4DIR_REG
	       : S_ISDIR(m) ? NFS4DIR_DIR
	       : S_ISLNK(m) ? NFS4DIR_LNK
			    : NFS4DIR_OTHER;
}

/* Checks l against the local directory dir: same names, each once; with full attrs also
 * type, size and mtime as lstat says. */
static void check_listing(struct listing *l, const char *dir, bool full)
{
	char **names;
	size_t n = local_names(dir, &names);

	if (l->n)
		qsort(l->e, l->n, sizeof(*l->e), by_name);
	cr_assert_eq(l->n, n, "%s: %zu entries over NFS, %zu local", dir, l->n, n);
	for (size_t i = 0; i < n; i++) {
		struct ent *e = &l->e[i];
		char p[1024];
		struct stat st;

		cr_assert_str_eq(e->name, names[i], "%s: entry %zu", dir, i);
		cr_assert_eq(e->err, 0, "%s/%s: err %d", dir, e->name, e->err);
		snprintf(p, sizeof(p), "%s/%s", dir, e->name);
		cr_assert_eq(lstat(p, &st), 0);
		cr_assert_eq(e->type, type_of_mode(st.st_mode), "%s: type %d", p, e->type);
		cr_assert(e->have & NFS4DIR_HAVE_TYPE);
		if (e->type == NFS4DIR_DIR)
			cr_assert(e->fhlen > 0, "%s: no handle", p);
		free(names[i]);
		if (!full) {
			cr_assert_eq(e->have & (NFS4DIR_HAVE_SIZE | NFS4DIR_HAVE_MTIME), 0);
			continue;
		}
		cr_assert(e->have & NFS4DIR_HAVE_SIZE && e->have & NFS4DIR_HAVE_MTIME);
		if (e->type != NFS4DIR_DIR)
			cr_assert_eq(e->size, (uint64_t)st.st_size, "%s: size %llu", p,
				     (unsigned long long)e->size);
		cr_assert_eq(e->sec, (int64_t)st.st_mtim.tv_sec, "%s: mtime", p);
		cr_assert_eq(e->nsec, (uint32_t)st.st_mtim.tv_nsec, "%s: mtime nsec %u vs %ld",
			     p, e->nsec, st.st_mtim.tv_nsec);
	}
	free(names);
}

/* ---- lookup ---- */

Test(nfs4dir, lookup_root_and_subdir)
{
	struct lk a = lookup("/export"), b = lookup("/export/sub/dir"),
		  c = lookup("//export//sub/");

	cr_assert_eq(a.rc, 0, "%s", a.msg);
	cr_assert(a.fh && a.fhlen > 0 && a.fhlen <= NFS4DIR_FH_MAX);
	cr_assert_eq(b.rc, 0, "%s", b.msg);
	cr_assert(b.fhlen > 0);
	cr_assert(a.fhlen != b.fhlen || memcmp(a.fh, b.fh, a.fhlen), "same handle");
	cr_assert_eq(c.rc, 0, "%s", c.msg);
	free(a.fh);
	free(b.fh);
	free(c.fh);
}

Test(nfs4dir, lookup_errors)
{
	struct lk miss = lookup("/export/sub/nope/deeper"), file = lookup("/export/afile"),
		  link = lookup("/export/link"), under = lookup("/export/afile/x"),
		  through = lookup("/export/link/dir");
	struct lk none = {0};

	cr_assert_eq(miss.rc, -ENOENT, "%d %s", miss.rc, miss.msg);
	cr_assert_null(miss.fh);
	cr_assert(strstr(miss.msg, "NFS4ERR_NOENT") && strstr(miss.msg, "'nope'"), "%s",
		  miss.msg);
	cr_assert_eq(file.rc, -ENOTDIR, "%d %s", file.rc, file.msg);
	cr_assert_null(file.fh);
	cr_assert_eq(link.rc, -ENOTDIR, "%d %s", link.rc, link.msg);
	cr_assert(strstr(link.msg, "symbolic link"), "%s", link.msg);
	cr_assert_eq(through.rc, -ELOOP, "%d %s", through.rc, through.msg);
	cr_assert(strstr(through.msg, "NFS4ERR_SYMLINK") && strstr(through.msg, "'dir'"), "%s",
		  through.msg);
	cr_assert_eq(under.rc, -ENOTDIR, "%d %s", under.rc, under.msg);
	cr_assert(strstr(under.msg, "NFS4ERR_NOTDIR"), "%s", under.msg);
	/* refused at submit: the callback never runs */
	cr_assert_eq(nfs4dir_lookup(nfs_get_rpc_context(nfs), "export", on_lk, &none), -EINVAL);
	cr_assert_eq(nfs4dir_lookup(nfs_get_rpc_context(nfs), "/export/../x", on_lk, &none),
		     -EINVAL);
	cr_assert_eq(none.calls, 0);
}

/* ---- readdir ---- */

Test(nfs4dir, big_directory_in_pages)
{
	struct lk d = lookup("/export/big");
	struct listing l;
	char dir[512];
	int subdirs = 0;

	cr_assert_eq(d.rc, 0, "%s", d.msg);
	list_dir(d.fh, d.fhlen, NFS4DIR_ATTRS_FULL, 16384, &l);
	cr_assert_gt(l.pages, 5, "only %d pages", l.pages);
	cr_log_info("big: %zu entries in %d pages", l.n, l.pages);
	snprintf(dir, sizeof(dir), "%s/big", root);
	check_listing(&l, dir, true);
	for (size_t i = 0; i < l.n; i++) {
		struct listing s;
		char sub[600];

		if (l.e[i].type != NFS4DIR_DIR)
			continue;
		subdirs++;
		list_dir(l.e[i].fh, l.e[i].fhlen, NFS4DIR_ATTRS_FULL, 0, &s);
		cr_assert_eq(s.pages, 1);
		snprintf(sub, sizeof(sub), "%s/%s", dir, l.e[i].name);
		check_listing(&s, sub, true);
		listing_free(&s);
	}
	cr_assert_eq(subdirs, BIG_SUBDIR);
	listing_free(&l);
	free(d.fh);
}

Test(nfs4dir, names_only)
{
	struct lk d = lookup("/export/big");
	struct listing l;
	char dir[512];

	cr_assert_eq(d.rc, 0, "%s", d.msg);
	list_dir(d.fh, d.fhlen, NFS4DIR_ATTRS_NAMES, 8192, &l);
	cr_assert_gt(l.pages, 5);
	snprintf(dir, sizeof(dir), "%s/big", root);
	check_listing(&l, dir, false);
	listing_free(&l);
	free(d.fh);
}

Test(nfs4dir, empty_directory)
{
	struct lk d = lookup("/export/empty");
	struct listing l;

	cr_assert_eq(d.rc, 0, "%s", d.msg);
	list_dir(d.fh, d.fhlen, NFS4DIR_ATTRS_FULL, 0, &l);
	cr_assert_eq(l.pages, 1);
	cr_assert_eq(l.n, 0);
	cr_assert(l.eof);
	listing_free(&l);
	free(d.fh);
}

Test(nfs4dir, bad_handle_and_file_handle)
{
	struct lk f = lookup("/export/sub/dir");
	struct listing l = {0}, m = {0};
	char junk[16] = "not a handle";
	struct nfs4dir_readdir_args a = {junk, sizeof(junk), 0, {0}, 0, 0, NFS4DIR_ATTRS_FULL};
	struct nfs4dir_readdir_args none = {NULL, 0, 0, {0}, 0, 0, NFS4DIR_ATTRS_FULL};
	struct listing leaf;

	cr_assert_eq(f.rc, 0);
	cr_assert_eq(nfs4dir_readdir(nfs_get_rpc_context(nfs), &a, on_page, &l), 0);
	run_until(&l.calls, 1);
	cr_assert_eq(l.calls, 1);
	cr_assert_lt(l.rc, 0);
	cr_assert(strstr(l.msg, "NFS4ERR_"), "%s", l.msg);
	/* READDIR of a file's handle: NOTDIR */
	list_dir(f.fh, f.fhlen, NFS4DIR_ATTRS_FULL, 0, &leaf);
	cr_assert_eq(leaf.n, 1);
	a.fh = leaf.e[0].fh;
	a.fhlen = leaf.e[0].fhlen;
	cr_assert_gt(a.fhlen, 0);
	cr_assert_eq(nfs4dir_readdir(nfs_get_rpc_context(nfs), &a, on_page, &m), 0);
	run_until(&m.calls, 1);
	cr_assert_eq(m.rc, -ENOTDIR, "%d %s", m.rc, m.msg);
	cr_assert(strstr(m.msg, "READDIR: NFS4ERR_NOTDIR"), "%s", m.msg);
	cr_assert_eq(nfs4dir_readdir(nfs_get_rpc_context(nfs), &none, on_page, &m), -EINVAL);
	listing_free(&leaf);
	free(f.fh);
}

/* Requests in flight when the context is destroyed complete once, with -ECANCELED. */
Test(nfs4dir, destroy_cancels_in_flight)
{
	struct lk d = lookup("/export/big"), l = {0};
	struct listing pg = {0};
	struct nfs4dir_readdir_args a = {d.fh, d.fhlen, 0, {0}, 0, 0, NFS4DIR_ATTRS_FULL};

	cr_assert_eq(d.rc, 0, "%s", d.msg);
	cr_assert_eq(nfs4dir_readdir(nfs_get_rpc_context(nfs), &a, on_page, &pg), 0);
	cr_assert_eq(nfs4dir_lookup(nfs_get_rpc_context(nfs), "/export/sub", on_lk, &l), 0);
	nfs_destroy_context(nfs);
	nfs = NULL;
	cr_assert_eq(pg.calls, 1);
	cr_assert_eq(pg.rc, -ECANCELED, "%d %s", pg.rc, pg.msg);
	cr_assert(nfs4rpc_rc_is_transport(pg.rc));
	cr_assert_eq(l.calls, 1);
	cr_assert_eq(l.rc, -ECANCELED, "%d %s", l.rc, l.msg);
	cr_assert_null(l.fh);
	free(d.fh);
}

/* ---- the attribute decoder, without a server ---- */

/* Appends big-endian words to b at *n. */
static void put32(unsigned char *b, size_t *n, uint32_t v)
{
	b[(*n)++] = (unsigned char)(v >> 24);
	b[(*n)++] = (unsigned char)(v >> 16);
	b[(*n)++] = (unsigned char)(v >> 8);
	b[(*n)++] = (unsigned char)v;
}

static const uint32_t full_mask[2] = {1u << FATTR4_TYPE | 1u << FATTR4_SIZE |
					  1u << FATTR4_RDATTR_ERROR | 1u << FATTR4_FILEHANDLE |
					  1u << FATTR4_FILEID,
				      1u << (FATTR4_TIME_MODIFY - 32)};

/* A well-formed full attrlist for a directory with a 5-byte handle; returns its length. */
static size_t good_attrs(unsigned char *b)
{
	size_t n = 0;

	put32(b, &n, NF4DIR);		     /* type */
	put32(b, &n, 0), put32(b, &n, 4096); /* size */
	put32(b, &n, 0);		     /* rdattr_error */
	put32(b, &n, 5);		     /* filehandle */
	memcpy(b + n, "HANDL\0\0\0", 8), n += 8;
	put32(b, &n, 1), put32(b, &n, 2);			    /* fileid */
	put32(b, &n, 0), put32(b, &n, 1700000000), put32(b, &n, 7); /* mtime */
	return n;
}

TestSuite(nfs4dir_decode, .fini = check_leaks);

Test(nfs4dir_decode, well_formed)
{
	unsigned char b[128];
	size_t n = good_attrs(b);
	struct nfs4dir_entry e = {0};

	cr_assert_eq(nfs4dir_decode_attrs(full_mask, 2, (char *)b, (uint32_t)n, &e), 0);
	cr_assert_eq(e.err, 0);
	cr_assert_eq(e.type, NFS4DIR_DIR);
	cr_assert_eq(e.size, 4096);
	cr_assert_eq(e.fhlen, 5);
	cr_assert_eq(memcmp(e.fh, "HANDL", 5), 0);
	cr_assert_eq(e.fileid, (1ull << 32) | 2);
	cr_assert_eq(e.mtime_sec, 1700000000);
	cr_assert_eq(e.mtime_nsec, 7);
	cr_assert_eq(e.have, NFS4DIR_HAVE_TYPE | NFS4DIR_HAVE_SIZE | NFS4DIR_HAVE_FH |
				 NFS4DIR_HAVE_FILEID | NFS4DIR_HAVE_MTIME);
}

Test(nfs4dir_decode, every_truncation_fails_inside_the_buffer)
{
	unsigned char b[128];
	size_t n = good_attrs(b);

	for (size_t len = 0; len < n; len++) {
		/* a heap copy of exactly len bytes: ASan catches any read past it */
		char *copy = malloc(len ? len : 1);
		struct nfs4dir_entry e = {0};

		memcpy(copy, b, len);
		cr_assert_eq(nfs4dir_decode_attrs(full_mask, 2, copy, (uint32_t)len, &e),
			     -EBADMSG, "length %zu accepted", len);
		cr_assert_eq(e.err, -EBADMSG);
		cr_assert_not_null(e.errmsg);
		free(copy);
	}
}

Test(nfs4dir_decode, malformed_values)
{
	unsigned char b[160];
	size_t n = good_attrs(b), m;
	struct nfs4dir_entry e = {0};
	const uint32_t unknown[1] = {1u << FATTR4_TYPE | 1u << 2 /* FH_EXPIRE_TYPE */};

	/* trailing bytes */
	m = n;
	put32(b, &m, 0);
	cr_assert_eq(nfs4dir_decode_attrs(full_mask, 2, (char *)b, (uint32_t)m, &e), -EBADMSG);
	/* an attribute we never ask for */
	e = (struct nfs4dir_entry){0};
	cr_assert_eq(nfs4dir_decode_attrs(unknown, 1, (char *)b, (uint32_t)n, &e), -EBADMSG);
	/* unknown type */
	e = (struct nfs4dir_entry){0};
	m = 0;
	put32(b, &m, 42);
	cr_assert_eq(nfs4dir_decode_attrs(full_mask, 2, (char *)b, (uint32_t)n, &e), -EBADMSG);
	/* a handle longer than NFS4_FHSIZE, and one claiming 2^31 bytes */
	n = good_attrs(b);
	m = 16;
	put32(b, &m, NFS4DIR_FH_MAX + 1);
	e = (struct nfs4dir_entry){0};
	cr_assert_eq(nfs4dir_decode_attrs(full_mask, 2, (char *)b, (uint32_t)n, &e), -EBADMSG);
	m = 16;
	put32(b, &m, 0x80000000u);
	e = (struct nfs4dir_entry){0};
	cr_assert_eq(nfs4dir_decode_attrs(full_mask, 2, (char *)b, (uint32_t)n, &e), -EBADMSG);
	/* nseconds of a billion */
	n = good_attrs(b);
	m = n - 4;
	put32(b, &m, 1000000000u);
	e = (struct nfs4dir_entry){0};
	cr_assert_eq(nfs4dir_decode_attrs(full_mask, 2, (char *)b, (uint32_t)n, &e), -EBADMSG);
}

Test(nfs4dir_decode, rdattr_error_marks_the_entry)
{
	unsigned char b[16];
	size_t n = 0;
	const uint32_t mask[1] = {1u << FATTR4_RDATTR_ERROR};
	struct nfs4dir_entry e = {0};

	put32(b, &n, NFS4ERR_ACCESS);
	cr_assert_eq(nfs4dir_decode_attrs(mask, 1, (char *)b, (uint32_t)n, &e), 0);
	cr_assert_eq(e.err, -EACCES);
	cr_assert_str_eq(e.errmsg, "NFS4ERR_ACCESS");
}

Test(nfs4dir_decode, status_table)
{
	cr_assert_eq(nfs4rpc_status_errno(NFS4_OK), 0);
	cr_assert_eq(nfs4rpc_status_errno(NFS4ERR_NOENT), -ENOENT);
	cr_assert_eq(nfs4rpc_status_errno(NFS4ERR_ACCESS), -EACCES);
	cr_assert_eq(nfs4rpc_status_errno(NFS4ERR_PERM), -EPERM);
	cr_assert_eq(nfs4rpc_status_errno(NFS4ERR_NOTDIR), -ENOTDIR);
	cr_assert_eq(nfs4rpc_status_errno(NFS4ERR_STALE), -ESTALE);
	cr_assert_eq(nfs4rpc_status_errno(NFS4ERR_FHEXPIRED), -ESTALE);
	cr_assert_eq(nfs4rpc_status_errno(123456), -EIO);
	cr_assert_str_eq(nfs4rpc_status_name(NFS4ERR_STALE), "NFS4ERR_STALE");
	cr_assert_str_eq(nfs4rpc_status_name(123456), "NFS4ERR_?");
	/* no status maps to what marks an RPC failure */
	for (int st = 0; st < 20000; st++)
		cr_assert(!nfs4rpc_rc_is_transport(nfs4rpc_status_errno(st)), "status %d", st);
	cr_assert(nfs4rpc_rc_is_transport(-ETIMEDOUT) && nfs4rpc_rc_is_transport(-ECOMM) &&
		  nfs4rpc_rc_is_transport(-ECANCELED) && !nfs4rpc_rc_is_transport(-EIO));
}
