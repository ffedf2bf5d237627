/* Memory is bounded by what the user sets, never by the input (issue 13 item 2), tested
 * inside a real memory limit: each run is a process in a memory cgroup of its own
 * (tests/fixtures/cgroup.sh), which the kernel OOM-kills at the limit, as a Valohai
 * container is. vhprep's default --memory is that limit (it reads its cgroup). A test
 * passes when the run ends by itself with its summary, no process was killed for memory,
 * and the files got the verdicts expected. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

TestSuite(memory, .init = itest_setup, .fini = itest_teardown, .timeout = 600);

struct usage {
	long long peak;
	int oom_kill;
};

/* The container for a test's limit: the limit itself in a release build. A sanitizer
 * build (tests/run.sh exports ASAN_OPTIONS for it, as test_nfs.c reads it) carries shadow
 * memory, redzones and a quarantine of freed blocks, so it gets 4x the limit plus
 * 512 MiB: there the runs check the verdicts, the bound is the release build's. */
static unsigned long long container(unsigned long long limit)
{
	return getenv("ASAN_OPTIONS") ? limit * 4 + (512ULL << 20) : limit;
}

/* Runs vhprep with args (NULL-terminated) inside a cgroup of container(limit) bytes. */
static void run_limited(struct itest_proc *p, struct usage *u, unsigned long long limit, ...)
{
	struct itest_argv a = {0};
	char *stats = itest_path("cgroup.stats"), *text, *v;
	const char *s;
	va_list ap;

	limit = container(limit);

	itest_argv_add(&a, "/bin/bash");
	itest_argv_addf(&a, "%s/tests/fixtures/cgroup.sh", itest_source_dir());
	itest_argv_addf(&a, "%llu", limit);
	itest_argv_add(&a, stats);
	itest_argv_add(&a, "--");
	itest_argv_add(&a, itest_bin());
	va_start(ap, limit);
	while ((s = va_arg(ap, const char *)))
		itest_argv_add(&a, s);
	va_end(ap);
	unlink(stats);
	itest_run(a.v, NULL, p);
	itest_argv_free(&a);
	if (p->exit_code == 77 && !itest_exists(stats)) {
		if (getenv("VHPREP_CI"))
			cr_assert_fail("no memory cgroup here (CI must run this): %s", p->err);
		cr_skip_test("no memory cgroup here (needs root and a cgroup): %s", p->err);
	}
	text = itest_slurp(stats, NULL);
	v = itest_line_value(text, "peak");
	u->peak = atoll(v);
	free(v);
	v = itest_line_value(text, "oom_kill");
	u->oom_kill = atoi(v);
	free(v);
	free(text);
	free(stats);
}

static json_t *summary_of(const char *out)
{
	char *path = itest_fmt("%s/vhprep-summary.json", out);
	json_t *s = itest_read_json(path);

	free(path);
	return s;
}

/* The run ended by itself within the limit, with its summary. */
static json_t *assert_within(const struct itest_proc *p, const struct usage *u,
			     unsigned long long limit, const char *out)
{
	limit = container(limit);
	cr_assert_eq(u->oom_kill, 0, "OOM-killed at %llu MiB: %s", limit >> 20, p->err);
	cr_assert_neq(p->exit_code, 137, "killed: %s", p->err);
	cr_assert_lt(u->peak, (long long)limit);
	return summary_of(out);
}

/* A JPEG whose frame header claims w x h over a few real bytes: decoders size their
 * buffers from the header before they find the data short. */
static void write_claim(const char *path, int w, int h)
{
	size_t len;
	uint8_t *jpg = itest_encode_image("jpg", 64, 64, 3, 7, 0, &len);
	int patched = 0;

	for (size_t i = 2; i + 9 < len && !patched; i++)
		if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) { /* SOF0: len(2) P(1) Y(2) X(2) */
			jpg[i + 5] = (uint8_t)(h >> 8);
			jpg[i + 6] = (uint8_t)h;
			jpg[i + 7] = (uint8_t)(w >> 8);
			jpg[i + 8] = (uint8_t)w;
			patched = 1;
		}
	cr_assert(patched, "no SOF0 in the encoded JPEG");
	itest_write_file(path, jpg, len);
	free(jpg);
}

/* A 20 GB sparse file named x.jpg: too_large from its size (default --max-file-size 1G),
 * and with the cap raised, judged from its first 64 KiB, never read whole. */
Test(memory, a_20_gb_sparse_file_is_never_read_whole)
{
	const unsigned long long limit = 256ULL << 20;
	char *src = itest_path("src"), *out = itest_path("out");
	char *big = itest_fmt("%s/x.jpg", src), *ok = itest_fmt("%s/ok.png", src);
	struct itest_proc p;
	struct usage u;
	json_t *s;
	int fd;

	itest_make_image(ok, 64, 48, 3, 1, 0);
	fd = open(big, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	cr_assert(fd >= 0 && ftruncate(fd, 20LL << 30) == 0);
	close(fd);
	run_limited(&p, &u, limit, "--resize", "224", "--metrics-interval", "0", "-o", out, src,
		    NULL);
	itest_assert_exit(&p, 3);
	s = assert_within(&p, &u, limit, out);
	cr_assert_eq(itest_jint(itest_jget(s, "failures.too_large"), "count"), 1);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "processed"), 1);
	cr_assert_lt(itest_jint(itest_jget(s, "bytes"), "read"), 1 << 20);
	json_decref(s);
	itest_proc_release(&p);
	itest_rmtree(out);
	run_limited(&p, &u, limit, "--resize", "224", "--max-file-size", "100G",
		    "--metrics-interval", "0", "-o", out, src, NULL);
	itest_assert_exit(&p, 3);
	s = assert_within(&p, &u, limit, out);
	/* its first 64 KiB (zeros) pass ImageMagick's TGA sniff, so the head cannot refuse
	 * it, but 20 GB cannot be decoded in 256 MiB: too_large, unread */
	cr_assert_eq(itest_jint(itest_jget(s, "failures.too_large"), "count"), 1);
	cr_assert_lt(itest_jint(itest_jget(s, "bytes"), "read"), 1 << 20,
		     "more than the head of the sparse file was read");
	json_decref(s);
	itest_proc_release(&p);
	free(ok);
	free(big);
	free(out);
	free(src);
}

/* n copies of a JPEG claiming 10000x10000 (within the default --max-pixels) at -j 32, no
 * resize, in a 2 GB container: decodes wait for room instead of growing past it. */
static void claims(int n)
{
	const unsigned long long limit = 2ULL << 30;
	char *src = itest_path("src"), *out = itest_path("out"), *one = itest_path("src/0.jpg");
	struct itest_proc p;
	struct usage u;
	json_t *s;

	write_claim(one, 10000, 10000);
	for (int i = 1; i < n; i++) {
		char *f = itest_fmt("%s/%d.jpg", src, i);

		cr_assert_eq(link(one, f), 0);
		free(f);
	}
	run_limited(&p, &u, limit, "-j", "32", "--max-errors", "1000", "--metrics-interval",
		    "0", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	s = assert_within(&p, &u, limit, out);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "failed"), n,
		     "each claim is a failure of its own");
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "cancelled"), 0);
	json_decref(s);
	itest_proc_release(&p);
	free(one);
	free(out);
	free(src);
}

Test(memory, thirty_two_10000x10000_claims_in_2_gb)
{
	claims(32);
}

Test(memory, sixty_four_10000x10000_claims_in_2_gb)
{
	claims(64);
}

/* Fifty 8000x6000 JPEGs to 224x224 at --read-budget 16M in 150 MB: freed buffers go back
 * to the system (mallopt in main), they do not pile up in per-thread arenas. */
Test(memory, fifty_8000x6000_jpegs_in_150_mb)
{
	const unsigned long long limit = 150ULL << 20;
	char *src = itest_path("src"), *out = itest_path("out"),
	     *one = itest_path("src/00.jpg");
	struct itest_proc p;
	struct usage u;
	json_t *s;

	itest_make_image(one, 8000, 6000, 3, 3, 0);
	for (int i = 1; i < 50; i++) {
		char *f = itest_fmt("%s/%02d.jpg", src, i);

		cr_assert_eq(link(one, f), 0);
		free(f);
	}
	run_limited(&p, &u, limit, "--resize", "224", "--read-budget", "16M", "-j", "4",
		    "--metrics-interval", "0", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	s = assert_within(&p, &u, limit, out);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "processed"), 50);
	cr_assert_eq(strncmp(itest_jstr(itest_jget(s, "config"), "memory_from"), "cgroup", 6),
		     0, "--memory did not follow the cgroup: %s",
		     itest_jstr(itest_jget(s, "config"), "memory_from"));
	json_decref(s);
	itest_proc_release(&p);
	free(one);
	free(out);
	free(src);
}
