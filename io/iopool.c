#include "io/iopool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/bqueue.h"
#include "io/posixwalk.h"

struct iopool {
	int rootfd;            /* set at creation */
	struct budget *budget; /* set at creation */
	struct oplat *lat;     /* set at creation */
	struct bqueue *queue;  /* set at creation; capacity = depth */
	atomic_int stopping;
	int nthreads;          /* set at creation */
	pthread_t *threads;    /* set at creation */
};

/* Reads [off, end) of fd into buf + off; *got becomes the offset reached (short at EOF). */
static int read_fully(int fd, uint8_t *buf, uint64_t off, uint64_t end, struct oplat *lat,
		      uint64_t *got)
{
	while (off < end) {
		uint64_t t0 = lat ? oplat_now() : 0;
		ssize_t n = pread(fd, buf + off, end - off, (off_t)off);

		if (lat)
			oplat_record(lat, OPLAT_READ, oplat_now() - t0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* the file shrank: keep what is there */
		off += (uint64_t)n;
	}
	*got = off;
	return 0;
}

static int fail(struct source_read *req, int errnum, const char *what)
{
	req->status = SOURCE_READ_FAILED;
	return vherr_errno(&req->err, errnum, VHSTAGE_READ, "cannot %s '%s'", what,
			   req->relpath);
}

static int openat2_path(int dirfd, const char *path, uint64_t resolve)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = resolve};

	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/* An O_PATH descriptor of relpath that is sure to lie inside the root: resolved beneath
 * rootfd, or (an absolute symlink, which RESOLVE_BENEATH refuses) resolved by realpath,
 * checked against the resolved root, and opened with no symlink on the way. Nothing is
 * opened for reading here: a device or FIFO is never opened at all. -1 with errno (EXDEV:
 * the name leads out of the root). */
static int open_inside(int rootfd, const char *relpath)
{
	char probe[PATH_MAX + 32], real[PATH_MAX], root[PATH_MAX];
	int fd = openat2_path(rootfd, relpath, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);

	if (fd >= 0 || errno != EXDEV)
		return fd >= 0 || errno != ENOSYS ? fd : openat(rootfd, relpath, O_PATH | O_CLOEXEC);
	snprintf(probe, sizeof(probe), "/proc/self/fd/%d/%s", rootfd, relpath);
	if (!realpath(probe, real) || posixwalk_root_real(rootfd, root, sizeof(root)) < 0)
		return -1;
	if (!posixwalk_within(real, root)) {
		errno = EXDEV;
		return -1;
	}
	return openat2_path(AT_FDCWD, real, RESOLVE_NO_SYMLINKS);
}

/* Opens the file behind the O_PATH descriptor pfd for reading (the same inode). */
static int reopen(int pfd)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	return open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

/* Takes n more bytes of budget for req; 0, or -1 (cancelled: req failed). */
static int charge(struct budget *budget, struct source_read *req, uint64_t n)
{
	if (budget && budget_acquire(budget, n) != 0) {
		req->status = SOURCE_READ_FAILED;
		vherr_set(&req->err, VHERR_CANCELLED, VHSTAGE_READ, NULL);
		return -1;
	}
	req->charged += budget ? n : 0;
	return 0;
}

/* Reads the head (at most SOURCE_HEAD_MAX bytes) for req->judge, then, if it lets the
 * read go on, the rest, each part budgeted before it is read. */
static void read_content(int fd, struct budget *budget, struct oplat *lat,
			 struct source_read *req)
{
	uint64_t head = req->judge && req->size > SOURCE_HEAD_MAX ? SOURCE_HEAD_MAX : req->size;
	uint64_t got = 0;
	uint8_t *full;
	int rc;

	if (charge(budget, req, head) < 0)
		return;
	req->data = malloc(head ? head : 1);
	if (!req->data)
		goto nomem;
	rc = read_fully(fd, req->data, 0, head, lat, &req->len);
	if (rc < 0) {
		fail(req, -rc, "read");
		return;
	}
	if (req->judge && !source_read_judge(req))
		return;
	if (req->len < head || head == req->size) /* all of it, or the file shrank */
		goto done;
	/* the whole file's bytes at once, the head's given back first: one larger than the
	 * budget then runs alone (budget_acquire) instead of waiting on its own head */
	if (budget && req->charged) {
		budget_release(budget, req->charged);
		req->charged = 0;
	}
	if (charge(budget, req, req->size) < 0)
		return;
	full = realloc(req->data, req->size);
	if (!full)
		goto nomem;
	req->data = full;
	rc = read_fully(fd, req->data, head, req->size, lat, &got);
	if (rc < 0) {
		fail(req, -rc, "read");
		return;
	}
	req->len = got;
done:
	req->status = SOURCE_READ_OK;
	return;
nomem:
	req->status = SOURCE_READ_FAILED;
	vherr_set(&req->err, VHERR_NOMEM, VHSTAGE_READ, NULL);
}

/* stat, admit (size bounds, the caller's admit), then the content. */
static void read_file(int pfd, struct budget *budget, struct oplat *lat, struct source_read *req)
{
	struct stat st;
	int fd;

	if (fstat(pfd, &st) != 0) {
		fail(req, errno, "stat");
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		req->status = SOURCE_READ_FAILED;
		vherr_set(&req->err, VHERR_NOTFILE, VHSTAGE_READ, "'%s' is not a regular file",
			  req->relpath);
		return;
	}
	req->size = (uint64_t)st.st_size;
	req->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (!source_read_admit(req))
		return;
	fd = reopen(pfd);
	if (fd < 0) {
		fail(req, errno, "open");
		return;
	}
	read_content(fd, budget, lat, req);
	close(fd);
}

void iopool_read_one(int rootfd, struct budget *budget, struct oplat *lat,
		     struct source_read *req)
{
	uint64_t t0 = lat ? oplat_now() : 0;
	int pfd;

	req->status = SOURCE_READ_FAILED;
	req->data = NULL;
	req->len = req->size = req->charged = 0;
	req->mtime_ns = 0;
	vherr_clear(&req->err);
	pfd = open_inside(rootfd, req->relpath);
	if (lat)
		oplat_record(lat, OPLAT_OPEN, oplat_now() - t0);
	if (pfd < 0 && errno == EXDEV) {
		vherr_set(&req->err, VHERR_NOTFILE, VHSTAGE_READ,
			  "'%s' leads outside the source root: not read", req->relpath);
		return;
	}
	if (pfd < 0) {
		fail(req, errno, "open");
		if (req->err.code == VHERR_NOENT)
			req->err.code = VHERR_VANISHED;
		return;
	}
	read_file(pfd, budget, lat, req);
	close(pfd);
	if (req->status != SOURCE_READ_OK)
		VH_FREE(req->data);
}

static void complete_cancelled(struct source_read *req)
{
	req->status = SOURCE_READ_FAILED;
	req->data = NULL;
	req->len = req->charged = 0;
	vherr_set(&req->err, VHERR_CANCELLED, VHSTAGE_READ, NULL);
	req->done(req);
}

static void *io_thread(void *arg)
{
	struct iopool *p = arg;
	struct source_read *req;

	while ((req = bqueue_pop(p->queue))) {
		if (atomic_load(&p->stopping))
			complete_cancelled(req);
		else {
			iopool_read_one(p->rootfd, p->budget, p->lat, req);
			req->done(req);
		}
	}
	return NULL;
}

struct iopool *iopool_new(int rootfd, int depth, struct budget *budget, struct oplat *lat)
{
	struct iopool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (depth < 1)
		depth = 1;
	p->rootfd = rootfd;
	p->budget = budget;
	p->lat = lat;
	p->queue = bqueue_new((size_t)depth);
	p->threads = calloc((size_t)depth, sizeof(*p->threads));
	if (!p->queue || !p->threads)
		goto fail;
	for (; p->nthreads < depth; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], NULL, io_thread, p) != 0)
			break;
	if (p->nthreads == 0)
		goto fail;
	return p;
fail:
	bqueue_free(p->queue);
	free(p->threads);
	free(p);
	return NULL;
}

int iopool_submit(struct iopool *p, struct source_read *req)
{
	if (atomic_load(&p->stopping) || bqueue_push(p->queue, req) != 0)
		return -VHERR_CANCELLED;
	return 0;
}

void iopool_stop(struct iopool *p)
{
	atomic_store(&p->stopping, 1);
	if (p->budget)
		budget_cancel(p->budget);
}

void iopool_free(struct iopool *p)
{
	if (!p)
		return;
	bqueue_close(p->queue);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	bqueue_free(p->queue);
	free(p->threads);
	free(p);
}
