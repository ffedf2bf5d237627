#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/appendlog.h"
#include "tests/common/vhtest.h"

static char dir[PATH_MAX];
static int dirfd_ = -1;

static void setup(void)
{
	vht_tmpdir(dir, sizeof(dir));
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dirfd_, 0);
}

static void teardown(void)
{
	close(dirfd_);
	vht_rm_rf(dir);
}

static char *contents(const char *name, size_t *len)
{
	char path[PATH_MAX];

	return vht_slurp(vht_join(path, sizeof(path), dir, name), len);
}

Test(appendlog, write_appends_whole_lines_and_counts_bytes, .init = setup, .fini = teardown)
{
	struct appendlog *log;
	struct vherr err = {0};
	char *text;

	cr_assert_eq(appendlog_open(dirfd_, "log.txt", 1, &log, &err), 0, "%s", err.msg);
	cr_assert_eq(appendlog_bytes(log), 0);
	cr_assert_eq(appendlog_write(log, "one\n", 4, &err), 0);
	cr_assert_eq(appendlog_write(log, "two\n", 4, &err), 0);
	cr_assert_eq(appendlog_bytes(log), 8);
	cr_assert_eq(appendlog_close(log, NULL), 0);
	text = contents("log.txt", NULL);
	cr_assert_str_eq(text, "one\ntwo\n");
	free(text);
}

Test(appendlog, truncate_flag_empties_else_appends, .init = setup, .fini = teardown)
{
	struct appendlog *log;
	struct vherr err = {0};
	char *text;

	vht_put(dir, "log.txt", "old\n");
	cr_assert_eq(appendlog_open(dirfd_, "log.txt", 0, &log, &err), 0);
	cr_assert_eq(appendlog_write(log, "new\n", 4, &err), 0);
	appendlog_close(log, NULL);
	text = contents("log.txt", NULL);
	cr_assert_str_eq(text, "old\nnew\n");
	free(text);

	cr_assert_eq(appendlog_open(dirfd_, "log.txt", 1, &log, &err), 0);
	cr_assert_eq(appendlog_write(log, "fresh\n", 6, &err), 0);
	appendlog_close(log, NULL);
	text = contents("log.txt", NULL);
	cr_assert_str_eq(text, "fresh\n");
	free(text);
}

Test(appendlog, write_json_is_one_compact_ascii_line, .init = setup, .fini = teardown)
{
	struct appendlog *log;
	struct vherr err = {0};
	json_t *o = json_pack("{s:s, s:i}", "name", "caf\xc3\xa9\n\"x\"", "n", 3);
	char *text;
	size_t len;

	cr_assert_eq(appendlog_open(dirfd_, "j.jsonl", 1, &log, &err), 0);
	cr_assert_eq(appendlog_write_json(log, o, &err), 0);
	cr_assert_eq(appendlog_write_json(log, o, &err), 0);
	json_decref(o);
	cr_assert_eq(appendlog_bytes(log),
		     2 * strlen("{\"name\":\"caf\\u00E9\\n\\\"x\\\"\",\"n\":3}\n"));
	appendlog_close(log, NULL);
	text = contents("j.jsonl", &len);
	cr_assert_str_eq(text, "{\"name\":\"caf\\u00E9\\n\\\"x\\\"\",\"n\":3}\n"
			       "{\"name\":\"caf\\u00E9\\n\\\"x\\\"\",\"n\":3}\n");
	free(text);
}

Test(appendlog, open_in_missing_dir_fails_with_message, .init = setup, .fini = teardown)
{
	struct appendlog *log = (struct appendlog *)0x1;
	struct vherr err = {0};

	cr_assert_eq(appendlog_open(dirfd_, "no/such/log.txt", 1, &log, &err), -VHERR_NOENT);
	cr_assert_null(log);
	cr_assert_eq(err.code, VHERR_NOENT);
	cr_assert_eq(err.stage, VHSTAGE_RECORD);
	cr_assert_not_null(strstr(err.msg, "no/such/log.txt"), "message: %s", err.msg);
}

Test(appendlog, full_disk_is_no_space, .init = setup, .fini = teardown)
{
	struct appendlog *log;
	struct vherr err = {0};
	int devfd = open("/dev", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (access("/dev/full", W_OK) != 0)
		vht_missing("/dev/full is not available to stage a full disk");
	cr_assert_eq(appendlog_open(devfd, "full", 0, &log, &err), 0, "%s", err.msg);
	cr_assert_eq(appendlog_write(log, "x\n", 2, &err), -VHERR_NOSPC);
	cr_assert_eq(err.code, VHERR_NOSPC);
	cr_assert_eq(appendlog_bytes(log), 0, "a failed write counts no bytes");
	appendlog_close(log, NULL);
	close(devfd);
}

/* A line that fills the device part-way (here: the file-size limit, which makes write(2)
 * return a short count exactly as a full disk does) is cut back: the file ends with the
 * last whole line, and later lines that fit still go in after it. */
Test(appendlog, a_line_cut_short_is_undone, .init = setup, .fini = teardown)
{
	struct rlimit lim = {100, 100};
	struct appendlog *log;
	struct vherr err = {0};
	char line[61], *text;
	size_t len;

	memset(line, 'a', 59);
	line[59] = '\n';
	line[60] = '\0';
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	cr_assert_eq(appendlog_open(dirfd_, "log.txt", 1, &log, &err), 0, "%s", err.msg);
	cr_assert_eq(appendlog_write(log, line, 60, &err), 0, "%s", err.msg);
	cr_assert_lt(appendlog_write(log, line, 60, &err), 0, "past the limit");
	cr_assert_eq(err.code, VHERR_NOSPC, "a short write is no space: %s", err.msg);
	cr_assert_eq(appendlog_write(log, "fits\n", 5, &err), 0, "%s", err.msg);
	cr_assert_eq(appendlog_lines(log), 2);
	cr_assert_eq(appendlog_close(log, &err), 0);
	text = contents("log.txt", &len);
	cr_assert_eq(len, 65, "the cut line must be gone (file has %zu bytes)", len);
	cr_assert_eq(memcmp(text, line, 60), 0);
	cr_assert_eq(memcmp(text + 60, "fits\n", 5), 0);
	free(text);
}

Test(appendlog, close_accepts_null)
{
	cr_assert_eq(appendlog_close(NULL, NULL), 0);
}

/* 8 threads x 1000 lines of 1..6000 bytes (past a page, the size at which a pipe would
 * split a write): the file holds 8000 whole lines, each thread's in its own order. */
#define THREADS 8
#define LINES	1000
#define MAXLEN	6000

struct writer {
	struct appendlog *log;
	int id;
	atomic_int *failures;
};

static size_t line_len(int t, int i)
{
	return (size_t)((t * 7919 + i * 104729) % MAXLEN) + 20;
}

/* "T<t> L<i> " then a filler derived from (t, i), then '\n'. */
static size_t make_line(int t, int i, char *buf)
{
	size_t n = line_len(t, i);
	int head = snprintf(buf, n, "T%d L%d ", t, i);

	for (size_t k = (size_t)head; k < n - 1; k++)
		buf[k] = (char)('a' + (t * 31 + i * 17 + (int)k) % 26);
	buf[n - 1] = '\n';
	return n;
}

static void *write_lines(void *arg)
{
	struct writer *w = arg;
	char *buf = malloc(MAXLEN + 32);
	struct vherr err;

	for (int i = 0; i < LINES; i++) {
		size_t n = make_line(w->id, i, buf);

		if (appendlog_write(w->log, buf, n, &err) != 0)
			atomic_fetch_add(w->failures, 1);
	}
	free(buf);
	return NULL;
}

Test(appendlog, concurrent_lines_never_interleave, .init = setup, .fini = teardown,
     .timeout = 60)
{
	struct appendlog *log;
	struct vherr err = {0};
	struct writer w[THREADS];
	pthread_t t[THREADS];
	atomic_int failures = 0;
	int next[THREADS] = {0}, nlines = 0;
	char *text, *line, *want = malloc(MAXLEN + 32);
	size_t len, expect_len = 0;

	cr_assert_eq(appendlog_open(dirfd_, "c.log", 1, &log, &err), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct writer){.log = log, .id = i, .failures = &failures};
		cr_assert_eq(pthread_create(&t[i], NULL, write_lines, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&failures), 0);
	for (int ti = 0; ti < THREADS; ti++)
		for (int i = 0; i < LINES; i++)
			expect_len += line_len(ti, i);
	cr_assert_eq(appendlog_bytes(log), expect_len);
	appendlog_close(log, NULL);

	text = contents("c.log", &len);
	cr_assert_eq(len, expect_len);
	for (line = text; *line;) {
		char *end = strchr(line, '\n');
		int ti, i;
		size_t n;

		cr_assert_not_null(end, "the file does not end with a newline");
		cr_assert_eq(sscanf(line, "T%d L%d ", &ti, &i), 2, "line %d is torn", nlines);
		cr_assert(ti >= 0 && ti < THREADS && i == next[ti],
			  "line %d: thread %d line %d, want line %d", nlines, ti, i,
			  ti >= 0 && ti < THREADS ? next[ti] : -1);
		n = make_line(ti, i, want);
		cr_assert_eq((size_t)(end - line + 1), n, "line %d has the wrong length",
			     nlines);
		cr_assert_arr_eq(line, want, n, "line %d (T%d L%d) is not intact", nlines, ti,
				 i);
		next[ti]++;
		nlines++;
		line = end + 1;
	}
	cr_assert_eq(nlines, THREADS * LINES);
	free(text);
	free(want);
}
