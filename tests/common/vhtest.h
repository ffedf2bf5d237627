/* vhtest: small helpers shared by the Criterion unit tests (header only).
 *
 * Every helper asserts on failure, so a test that uses one never goes on with a half-made
 * fixture. Criterion runs each test in its own process: a scratch directory made in a
 * test's .init and removed in its .fini belongs to that test alone. */
#ifndef VHPREP_TESTS_VHTEST_H
#define VHPREP_TESTS_VHTEST_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vhskip.h"

/* Makes a fresh directory under $TMPDIR (or /tmp) into buf and returns buf. */
static inline char *vht_tmpdir(char *buf, size_t size)
{
	const char *base = getenv("TMPDIR");
	int n = snprintf(buf, size, "%s/vhtest.XXXXXX", base && *base ? base : "/tmp");

	cr_assert(n > 0 && (size_t)n < size, "tmpdir name too long");
	cr_assert_not_null(mkdtemp(buf), "mkdtemp: %s", strerror(errno));
	return buf;
}

static inline int vht_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D || flag == FTW_DNR)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static inline int vht_chmod_dirs(const char *path, const struct stat *st, int flag,
				 struct FTW *ftw)
{
	(void)ftw;
	if (flag == FTW_D || flag == FTW_DNR || (st && S_ISDIR(st->st_mode)))
		chmod(path, 0700);
	return 0;
}

/* Removes path and everything under it (best effort: a test's mess must not hide its
 * verdict). Directories made unreadable by a test are opened up first. */
static inline void vht_rm_rf(const char *path)
{
	if (!path || !*path)
		return;
	chmod(path, 0700);
	nftw(path, vht_chmod_dirs, 16, FTW_PHYS);
	nftw(path, vht_rm_one, 16, FTW_PHYS | FTW_DEPTH);
}

/* Joins a and b with '/' into buf; returns buf. */
static inline char *vht_join(char *buf, size_t size, const char *a, const char *b)
{
	int n = snprintf(buf, size, "%s/%s", a, b);

	cr_assert(n > 0 && (size_t)n < size, "path too long: %s/%s", a, b);
	return buf;
}

/* Creates every directory of path (like mkdir -p). */
static inline void vht_mkdirs(const char *path)
{
	char buf[PATH_MAX];

	cr_assert_lt(strlen(path), sizeof(buf));
	strcpy(buf, path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		cr_assert(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf,
			  strerror(errno));
		*p = '/';
	}
	cr_assert(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf,
		  strerror(errno));
}

/* Writes data[0..len) to path (created or truncated). */
static inline void vht_write(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, data, len), (ssize_t)len, "write %s", path);
	cr_assert_eq(close(fd), 0);
}

/* Writes the string s to dir/rel (parents created). */
static inline void vht_put(const char *dir, const char *rel, const char *s)
{
	char path[PATH_MAX], parent[PATH_MAX];
	char *slash;

	vht_join(path, sizeof(path), dir, rel);
	strcpy(parent, path);
	slash = strrchr(parent, '/');
	*slash = '\0';
	vht_mkdirs(parent);
	vht_write(path, s, strlen(s));
}

/* Returns the whole of path, NUL-terminated (caller frees); *len (may be NULL) gets the
 * size. Asserts that the file exists. */
static inline char *vht_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0, got;
	char *buf = malloc(cap);

	cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
	cr_assert_not_null(buf);
	while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += got;
		if (cap - n - 1 == 0) {
			cap *= 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
	}
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/* Whether path exists (without following a final symlink). */
static inline int vht_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static const char *vht_find_needle;
static int vht_find_hits;

static inline int vht_find_one(const char *path, const struct stat *st, int flag,
			       struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (strstr(path + ftw->base, vht_find_needle))
		vht_find_hits++;
	return 0;
}

/* Returns how many names under dir (recursively) contain needle. */
static inline int vht_count_names(const char *dir, const char *needle)
{
	vht_find_needle = needle;
	vht_find_hits = 0;
	nftw(dir, vht_find_one, 16, FTW_PHYS);
	return vht_find_hits;
}

/* Drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this process's effective set, so
 * file permissions apply even to root. Returns 0 when permissions now apply (also when
 * not root to start with), -1 if they could not be dropped. Criterion runs each test in
 * its own process, so this lasts for one test only. */
static inline int vht_drop_dac(void)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];

	if (geteuid() != 0)
		return 0;
	if (syscall(SYS_capget, &hdr, data) != 0)
		return -1;
	data[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
	if (syscall(SYS_capset, &hdr, data) != 0)
		return -1;
	return 0;
}

/* Drops the DAC capabilities (see vht_drop_dac) and checks, with a mode-000 file made
 * in dir, that permissions now apply; skips the test (with the reason) when they do not. */
static inline void vht_require_permissions(const char *dir)
{
	char probe[PATH_MAX];
	int fd;

	vht_join(probe, sizeof(probe), dir, ".vht-perm-probe");
	vht_write(probe, "x", 1);
	cr_assert_eq(chmod(probe, 0), 0);
	if (vht_drop_dac() != 0)
		vht_missing("running as root and cannot drop CAP_DAC_OVERRIDE: root ignores "
			    "file permissions, so a permission failure cannot be staged");
	fd = open(probe, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		unlink(probe);
		vht_missing("a mode-000 file is still readable (root privileges): a "
			    "permission failure cannot be staged here");
	}
	unlink(probe);
}

/* Sleeps ms milliseconds. */
static inline void vht_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

#endif
