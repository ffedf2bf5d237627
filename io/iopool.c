#include "io/iopool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bqueue.h"

struct iopool {
	int rootfd;            /* set at creation */
	struct budget *budget; /* set at creation */
	struct oplat *lat;     /* set at creation */
	struct bqueue *queue;  /* set at creation; capacity = depth */
	atomic_int stopping;
	int nthreads;          /* set at creation */
	pthread_t *threads;    /* set at creation */
};

static int read_fully(int fd, uint8_t *buf, uint64_t size, struct oplat *lat, uint64_t *got)
{
	uint64_t off = 0;

	while (off < size) {
		uint64_t t0 = lat ? oplat_now() : 0;
		ssize_t n = pread(fd, buf + off, size - off, (off_t)off);

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

static void read_open_file(int fd, struct budget *budget, struct oplat *lat,
			   struct source_read *req)
{
	struct stat st;
	int rc;

	if (fstat(fd, &st) != 0) {
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
	if (budget && budget_acquire(budget, req->size) != 0) {
		req->status = SOURCE_READ_FAILED;
		vherr_set(&req->err, VHERR_CANCELLED, VHSTAGE_READ, NULL);
		return;
	}
	req->charged = budget ? req->size : 0;
	req->data = malloc(req->size ? req->size : 1);
	if (!req->data) {
		req->status = SOURCE_READ_FAILED;
		vherr_set(&req->err, VHERR_NOMEM, VHSTAGE_READ, NULL);
		return;
	}
	rc = read_fully(fd, req->data, req->size, lat, &req->len);
	if (rc < 0) {
		fail(req, -rc, "read");
		return;
	}
	req->status = SOURCE_READ_OK;
}

void iopool_read_one(int rootfd, struct budget *budget, struct oplat *lat,
		     struct source_read *req)
{
	uint64_t t0 = lat ? oplat_now() : 0;
	int fd;

	req->status = SOURCE_READ_FAILED;
	req->data = NULL;
	req->len = req->size = req->charged = 0;
	req->mtime_ns = 0;
	vherr_clear(&req->err);
	fd = openat(rootfd, req->relpath, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (lat)
		oplat_record(lat, OPLAT_OPEN, oplat_now() - t0);
	if (fd < 0) {
		fail(req, errno, "open");
		if (req->err.code == VHERR_NOENT)
			req->err.code = VHERR_VANISHED;
		return;
	}
	read_open_file(fd, budget, lat, req);
	close(fd);
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
