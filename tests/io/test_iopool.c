#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bqueue.h"
#include "common/budget.h"
#include "io/iopool.h"
#include "tests/common/vhtest.h"

static char dir[PATH_MAX];
static int rootfd = -1;

static void setup(void)
{
	vht_tmpdir(dir, sizeof(dir));
	rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(rootfd, 0);
}

static void teardown(void)
{
	close(rootfd);
	vht_rm_rf(dir);
}

static struct source_read request(const char *relpath)
{
	return (struct source_read){.relpath = relpath, .max_size = UINT64_MAX};
}

/* ---- iopool_read_one ---- */

Test(iopool_read_one, reads_content_size_and_mtime, .init = setup, .fini = teardown)
{
	const struct timespec times[2] = {{1600000000, 123456789}, {1600000000, 123456789}};
	struct source_read req = request("sub/hello.txt");
	struct budget *b = budget_new(1 << 20);
	char path[PATH_MAX];

	vht_put(dir, "sub/hello.txt", "hello world");
	cr_assert_eq(
	    utimensat(AT_FDCWD, vht_join(path, sizeof(path), dir, "sub/hello.txt"), times, 0),
	    0);
	req.data = (uint8_t *)"stale";
	iopool_read_one(rootfd, b, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_OK, "%s", req.err.msg);
	cr_assert_eq(req.len, 11);
	cr_assert_eq(req.size, 11);
	cr_assert_not_null(req.data);
	cr_assert_arr_eq(req.data, "hello world", 11);
	cr_assert_eq(req.mtime_ns, 1600000000123456789LL);
	cr_assert_eq(req.charged, 11);
	cr_assert_eq(budget_used(b), 11, "the read's bytes stay charged until the caller");
	cr_assert_eq(req.err.code, VHERR_OK);
	budget_release(b, req.charged);
	free(req.data);
	budget_free(b);
}

Test(iopool_read_one, without_budget_charges_nothing, .init = setup, .fini = teardown)
{
	struct source_read req = request("a.bin");
	static uint8_t blob[70000];
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (uint8_t)(i * 131 + 7);
	vht_write(vht_join(path, sizeof(path), dir, "a.bin"), blob, sizeof(blob));
	iopool_read_one(rootfd, NULL, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_OK);
	cr_assert_eq(req.len, sizeof(blob));
	cr_assert_arr_eq(req.data, blob, sizeof(blob));
	cr_assert_eq(req.charged, 0);
	free(req.data);
}

Test(iopool_read_one, empty_file_is_ok, .init = setup, .fini = teardown)
{
	struct source_read req = request("empty.jpg");

	vht_put(dir, "empty.jpg", "");
	iopool_read_one(rootfd, NULL, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_OK);
	cr_assert_eq(req.len, 0);
	cr_assert_eq(req.size, 0);
	free(req.data);
}

/* What a judge saw, and what it decides. */
static uint64_t judged_len, judged_size;
static enum source_admit judge_answer;

static enum source_admit judge(struct source_read *req)
{
	judged_len = req->len;
	judged_size = req->size;
	if (judge_answer == SOURCE_ADMIT_FAIL)
		vherr_set(&req->err, VHERR_NOT_IMAGE, VHSTAGE_READ, "not an image");
	return judge_answer;
}

/* A 1 MiB file: the judge sees its first 64 KiB only, budgeted alone; refused, nothing
 * more is read or charged; let through, the whole file arrives intact. */
Test(iopool_read_one, the_judge_sees_the_head_first, .init = setup, .fini = teardown)
{
	static char big[1 << 20];
	struct budget *b = budget_new(16 << 20);
	struct source_read req;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + i / 4096);
	{
		char path[PATH_MAX];
		FILE *f = fopen(vht_join(path, sizeof(path), dir, "big.jpg"), "w");

		cr_assert_eq(fwrite(big, 1, sizeof(big), f), sizeof(big));
		fclose(f);
	}
	req = request("big.jpg");
	req.judge = judge;
	judge_answer = SOURCE_ADMIT_FAIL;
	iopool_read_one(rootfd, b, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_FAILED);
	cr_assert_eq(req.err.code, VHERR_NOT_IMAGE);
	cr_assert_eq(judged_len, SOURCE_HEAD_MAX);
	cr_assert_eq(judged_size, sizeof(big));
	cr_assert_null(req.data);
	cr_assert_eq(req.charged, SOURCE_HEAD_MAX, "only the head was budgeted");
	budget_release(b, req.charged);

	req = request("big.jpg");
	req.judge = judge;
	judge_answer = SOURCE_ADMIT_READ;
	iopool_read_one(rootfd, b, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_OK, "%s", req.err.msg);
	cr_assert_eq(req.len, sizeof(big));
	cr_assert_eq(req.charged, sizeof(big));
	cr_assert_arr_eq(req.data, big, sizeof(big));
	budget_release(b, req.charged);
	free(req.data);
	budget_free(b);
}

/* Names that lead out of the root are never read, also when a list names them (a walk
 * already skips them); a FIFO is not opened for reading (that would block). */
Test(iopool_read_one, nothing_outside_the_root_and_no_special_file_is_read, .init = setup,
     .fini = teardown)
{
	char path[PATH_MAX], inside[PATH_MAX];
	struct source_read req;

	vht_put(dir, "real.jpg", "data");
	cr_assert_eq(symlink("/etc/hostname", vht_join(path, sizeof(path), dir, "out.jpg")), 0);
	cr_assert_eq(symlink("../../etc/hostname", vht_join(path, sizeof(path), dir, "up.jpg")),
		     0);
	cr_assert_eq(symlink(vht_join(inside, sizeof(inside), dir, "real.jpg"),
			     vht_join(path, sizeof(path), dir, "abs-inside.jpg")),
		     0);
	cr_assert_eq(mkfifo(vht_join(path, sizeof(path), dir, "pipe.jpg"), 0644), 0);
	for (int i = 0; i < 2; i++) {
		req = request(i ? "up.jpg" : "out.jpg");
		iopool_read_one(rootfd, NULL, NULL, &req);
		cr_assert_eq(req.status, SOURCE_READ_FAILED);
		cr_assert_not_null(strstr(req.err.msg, "outside the source root"), "%s",
				   req.err.msg);
		cr_assert_null(req.data);
	}
	req = request("abs-inside.jpg");
	iopool_read_one(rootfd, NULL, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_OK, "an absolute link inside the root: %s",
		     req.err.msg);
	cr_assert_arr_eq(req.data, "data", 4);
	free(req.data);
	req = request("pipe.jpg");
	iopool_read_one(rootfd, NULL, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_FAILED);
	cr_assert_eq(req.err.code, VHERR_NOTFILE);
}

Test(iopool_read_one, size_bounds_skip_without_reading, .init = setup, .fini = teardown)
{
	struct budget *b = budget_new(1 << 20);
	struct source_read req;

	vht_put(dir, "f.jpg", "0123456789"); /* 10 bytes */

	req = request("f.jpg");
	req.min_size = 11;
	iopool_read_one(rootfd, b, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_SKIPPED);
	cr_assert_null(req.data);
	cr_assert_eq(req.len, 0);
	cr_assert_eq(req.size, 10, "size is known from stat");
	cr_assert_eq(req.charged, 0);
	cr_assert_eq(budget_used(b), 0, "a skipped file must not take budget");

	req = request("f.jpg");
	req.max_size = 9;
	iopool_read_one(rootfd, b, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_SKIPPED);
	cr_assert_null(req.data);
	cr_assert_eq(budget_used(b), 0);

	req = request("f.jpg"); /* the bounds are inclusive */
	req.min_size = 10;
	req.max_size = 10;
	iopool_read_one(rootfd, b, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_OK);
	cr_assert_eq(req.len, 10);
	budget_release(b, req.charged);
	free(req.data);
	budget_free(b);
}

Test(iopool_read_one, missing_file_vanished, .init = setup, .fini = teardown)
{
	struct source_read req = request("gone/file.jpg");

	iopool_read_one(rootfd, NULL, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_FAILED);
	cr_assert_eq(req.err.code, VHERR_VANISHED);
	cr_assert_eq(req.err.stage, VHSTAGE_READ);
	cr_assert_not_null(strstr(req.err.msg, "gone/file.jpg"), "message: %s", req.err.msg);
	cr_assert_null(req.data);
	cr_assert_eq(req.charged, 0);
}

Test(iopool_read_one, directory_is_not_a_file, .init = setup, .fini = teardown)
{
	struct source_read req = request("adir");
	char path[PATH_MAX];

	vht_mkdirs(vht_join(path, sizeof(path), dir, "adir"));
	iopool_read_one(rootfd, NULL, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_FAILED);
	cr_assert_eq(req.err.code, VHERR_NOTFILE);
	cr_assert_eq(req.err.stage, VHSTAGE_READ);
	cr_assert_null(req.data);
}

/* A --files-from list may name a FIFO (or a device): opening it O_RDONLY without
 * O_NONBLOCK waits for a writer forever, and the I/O thread with it. Expected: FAILED
 * with VHERR_NOTFILE at once, like a directory. The read runs on a thread; if it is still
 * blocked after 2 s, the test opens the write end to free it, then fails. */
struct fifo_read {
	struct source_read req;
	atomic_int done;
};

static void *read_fifo(void *arg)
{
	struct fifo_read *f = arg;

	iopool_read_one(rootfd, NULL, NULL, &f->req);
	atomic_store(&f->done, 1);
	return NULL;
}

Test(iopool_read_one, fifo_is_not_a_file_and_does_not_hang, .init = setup, .fini = teardown,
     .timeout = 20)
{
	static struct fifo_read f;
	char path[PATH_MAX];
	pthread_t t;
	int hung;

	f.req = request("pipe");
	cr_assert_eq(mkfifo(vht_join(path, sizeof(path), dir, "pipe"), 0644), 0);
	cr_assert_eq(pthread_create(&t, NULL, read_fifo, &f), 0);
	for (int waited = 0; waited < 2000 && !atomic_load(&f.done); waited += 10)
		vht_sleep_ms(10);
	hung = !atomic_load(&f.done);
	if (hung) {
		int wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

		if (wfd >= 0)
			close(wfd);
	}
	pthread_join(t, NULL);
	free(f.req.data);
	cr_assert_eq(hung, 0,
		     "iopool_read_one blocked in open() on a FIFO until a writer came");
	cr_assert_eq(f.req.status, SOURCE_READ_FAILED);
	cr_assert_eq(f.req.err.code, VHERR_NOTFILE);
}

Test(iopool_read_one, symlink_to_file_reads_the_target, .init = setup, .fini = teardown)
{
	struct source_read req = request("link.jpg");
	char path[PATH_MAX];

	vht_put(dir, "real.jpg", "payload");
	cr_assert_eq(symlink("real.jpg", vht_join(path, sizeof(path), dir, "link.jpg")), 0);
	iopool_read_one(rootfd, NULL, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_OK);
	cr_assert_arr_eq(req.data, "payload", 7);
	free(req.data);
}

Test(iopool_read_one, cancelled_budget_fails_without_charge, .init = setup, .fini = teardown)
{
	struct budget *b = budget_new(100);
	struct source_read req = request("f.jpg");

	vht_put(dir, "f.jpg", "abc");
	budget_cancel(b);
	iopool_read_one(rootfd, b, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_FAILED);
	cr_assert_eq(req.err.code, VHERR_CANCELLED);
	cr_assert_eq(req.charged, 0);
	cr_assert_null(req.data);
	cr_assert_eq(budget_used(b), 0);
	budget_free(b);
}

Test(iopool_read_one, unreadable_file_is_a_permission_failure, .init = setup, .fini = teardown)
{
	struct source_read req = request("locked.jpg");
	char path[PATH_MAX];

	vht_put(dir, "locked.jpg", "x");
	cr_assert_eq(chmod(vht_join(path, sizeof(path), dir, "locked.jpg"), 0), 0);
	vht_require_permissions(dir);
	iopool_read_one(rootfd, NULL, NULL, &req);
	cr_assert_eq(req.status, SOURCE_READ_FAILED);
	cr_assert_eq(req.err.code, VHERR_ACCESS);
	cr_assert_null(req.data);
}

/* ---- the pool ---- */

#define NREQ	 200
#define DEPTH	 8
#define CAP	 16000
#define OVERSIZE 50000 /* one file larger than the whole budget */

struct poolrun {
	struct budget *b;
	struct bqueue *done_q; /* completions handed to the "worker" */
	struct source_read req[NREQ];
	char names[NREQ][32];
	atomic_int completions[NREQ];
	atomic_int over_cap;	      /* completions that saw more than CAP held */
	_Atomic uint64_t peak;	      /* budget_used seen by any completion */
	_Atomic uint64_t peak_normal; /* the same, seen by the completions that fit the cap */
	atomic_int oversize_not_alone;
	atomic_int bad_reads; /* wrong status, length or bytes (checked off the main thread) */
	int oversize_index;
};

static size_t size_of(int i, int oversize_index)
{
	return i == oversize_index ? OVERSIZE : (size_t)(i * 37 % 4000);
}

static uint8_t byte_of(int i, size_t off)
{
	return (uint8_t)(i * 7 + off * 13);
}

static void pool_done(struct source_read *req)
{
	struct poolrun *r = req->user;
	int i = (int)(req - r->req);
	uint64_t used = budget_used(r->b), peak = atomic_load(&r->peak);

	atomic_fetch_add(&r->completions[i], 1);
	while (used > peak && !atomic_compare_exchange_weak(&r->peak, &peak, used))
		;
	if (i == r->oversize_index) {
		if (used != OVERSIZE)
			atomic_fetch_add(&r->oversize_not_alone, 1);
	} else {
		if (used > CAP)
			atomic_fetch_add(&r->over_cap, 1);
		peak = atomic_load(&r->peak_normal);
		while (used > peak &&
		       !atomic_compare_exchange_weak(&r->peak_normal, &peak, used))
			;
	}
	bqueue_push(r->done_q, req);
}

/* The workers' side: holds each buffer a little, checks it, then gives its bytes back. */
static void *pool_worker(void *arg)
{
	struct poolrun *r = arg;
	struct source_read *req;

	while ((req = bqueue_pop(r->done_q))) {
		int i = (int)(req - r->req);
		size_t want = size_of(i, r->oversize_index);

		int bad = req->status != SOURCE_READ_OK || req->len != want;

		vht_sleep_ms(1);
		for (size_t off = 0; !bad && off < want; off++)
			bad = req->data[off] != byte_of(i, off);
		if (bad)
			atomic_fetch_add(&r->bad_reads, 1);
		budget_release(r->b, req->charged);
		free(req->data);
	}
	return NULL;
}

Test(iopool, every_submit_completes_once_within_budget, .init = setup, .fini = teardown,
     .timeout = 60)
{
	static struct poolrun r;
	struct iopool *p;
	pthread_t workers[2];
	uint8_t *buf = malloc(OVERSIZE);

	r.b = budget_new(CAP);
	r.done_q = bqueue_new(NREQ);
	r.oversize_index = 100;
	for (int i = 0; i < NREQ; i++) {
		char path[PATH_MAX];
		size_t n = size_of(i, r.oversize_index);

		snprintf(r.names[i], sizeof(r.names[i]), "d%d/f%03d.bin", i % 5, i);
		for (size_t off = 0; off < n; off++)
			buf[off] = byte_of(i, off);
		if (i < 5) {
			char sub[8];

			snprintf(sub, sizeof(sub), "d%d", i);
			vht_mkdirs(vht_join(path, sizeof(path), dir, sub));
		}
		vht_write(vht_join(path, sizeof(path), dir, r.names[i]), buf, n);
		r.req[i] = request(r.names[i]);
		r.req[i].done = pool_done;
		r.req[i].user = &r;
	}
	free(buf);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&workers[i], NULL, pool_worker, &r), 0);
	p = iopool_new(rootfd, DEPTH, r.b, NULL);
	cr_assert_not_null(p);
	for (int i = 0; i < NREQ; i++)
		cr_assert_eq(iopool_submit(p, &r.req[i]), 0);
	iopool_free(p); /* completes what is queued */
	bqueue_close(r.done_q);
	for (int i = 0; i < 2; i++)
		pthread_join(workers[i], NULL);

	for (int i = 0; i < NREQ; i++)
		cr_assert_eq(atomic_load(&r.completions[i]), 1, "request %d completed %d times",
			     i, atomic_load(&r.completions[i]));
	cr_assert_eq(atomic_load(&r.bad_reads), 0, "reads with wrong status or content");
	cr_assert_eq(atomic_load(&r.over_cap), 0, "budget above its cap (peak %llu)",
		     (unsigned long long)atomic_load(&r.peak));
	cr_assert_gt(atomic_load(&r.peak_normal), CAP / 2,
		     "the budget was never loaded (peak %llu): the test proves nothing",
		     (unsigned long long)atomic_load(&r.peak_normal));
	cr_assert_eq(atomic_load(&r.peak), OVERSIZE);
	cr_assert_eq(atomic_load(&r.oversize_not_alone), 0,
		     "the oversize read was granted beside others");
	cr_assert_eq(budget_used(r.b), 0);
	bqueue_free(r.done_q);
	budget_free(r.b);
}

struct stoprun {
	struct source_read req[6];
	atomic_int completions[6];
};

static void stop_done(struct source_read *req)
{
	struct stoprun *r = req->user;

	atomic_fetch_add(&r->completions[req - r->req], 1);
}

/* Two I/O threads, a budget that holds one file: the first read completes and keeps its
 * bytes, the next two wait on the budget, two more wait in the queue. iopool_stop makes
 * all four complete as cancelled, and a later submit is refused without a completion. */
Test(iopool, stop_cancels_pending_and_refuses_new, .init = setup, .fini = teardown,
     .timeout = 30)
{
	static struct stoprun r;
	struct budget *b = budget_new(100);
	struct iopool *p;
	char name[6][16];

	for (int i = 0; i < 6; i++) {
		char path[PATH_MAX], content[81];

		memset(content, 'a' + i, 80);
		content[80] = '\0';
		snprintf(name[i], sizeof(name[i]), "f%d", i);
		vht_write(vht_join(path, sizeof(path), dir, name[i]), content, 80);
		r.req[i] = request(name[i]);
		r.req[i].done = stop_done;
		r.req[i].user = &r;
	}
	p = iopool_new(rootfd, 2, b, NULL);
	cr_assert_not_null(p);
	cr_assert_eq(iopool_submit(p, &r.req[0]), 0);
	for (int spin = 0; spin < 500 && !atomic_load(&r.completions[0]); spin++)
		vht_sleep_ms(10);
	cr_assert_eq(atomic_load(&r.completions[0]), 1);
	cr_assert_eq(r.req[0].status, SOURCE_READ_OK);
	for (int i = 1; i <= 4; i++)
		cr_assert_eq(iopool_submit(p, &r.req[i]), 0);
	vht_sleep_ms(100);
	for (int i = 1; i <= 4; i++)
		cr_assert_eq(atomic_load(&r.completions[i]), 0,
			     "request %d completed while the budget was full", i);

	iopool_stop(p);
	cr_assert_eq(iopool_submit(p, &r.req[5]), -VHERR_CANCELLED);
	iopool_free(p);
	for (int i = 1; i <= 4; i++) {
		cr_assert_eq(atomic_load(&r.completions[i]), 1, "request %d", i);
		cr_assert_eq(r.req[i].status, SOURCE_READ_FAILED);
		cr_assert_eq(r.req[i].err.code, VHERR_CANCELLED, "request %d: %s", i,
			     r.req[i].err.msg);
		cr_assert_null(r.req[i].data);
		cr_assert_eq(r.req[i].charged, 0);
	}
	cr_assert_eq(atomic_load(&r.completions[5]), 0, "a refused submit must not complete");
	cr_assert_eq(budget_used(b), 80, "only the finished read holds bytes");
	budget_release(b, r.req[0].charged);
	free(r.req[0].data);
	budget_free(b);
}

Test(iopool, free_accepts_null)
{
	iopool_free(NULL);
}
