/* dppipe.c: one direction of a proxied connection: delay queue and token bucket. */
#include "bench/delayproxy/dppipe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* malloc's own header on top of struct dpchunk, as counted in p->mem */
#define CHUNK_OVERHEAD (sizeof(struct dpchunk) + 16)

struct dpchunk {
	struct dpchunk *next;
	int64_t release_ns;
	size_t len, off;
	unsigned char data[];
};

static uint64_t shape_rand(struct dpshape *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545F4914F6CDD1DULL;
}

/* The release time of something read at now_ns: delay + jitter, never before the last. */
static int64_t release_time(struct dppipe *p, struct dpshape *s, int64_t now_ns)
{
	int64_t d = s->delay_ns;

	if (s->jitter_ns > 0) {
		double u = (double)(shape_rand(s) >> 11) / 9007199254740992.0; /* [0,1) */
		d += (int64_t)((2.0 * u - 1.0) * (double)s->jitter_ns);
		if (d < 0)
			d = 0;
	}
	if (now_ns + d > p->last_release_ns)
		p->last_release_ns = now_ns + d;
	return p->last_release_ns;
}

void dppipe_init(struct dppipe *p, const struct dpshape *s, int64_t now_ns)
{
	memset(p, 0, sizeof(*p));
	p->tokens = s->burst;
	p->tokens_ns = now_ns;
}

int dppipe_push(struct dppipe *p, struct dpshape *s, const void *buf, size_t len,
		int64_t now_ns)
{
	struct dpchunk *c = malloc(sizeof(*c) + len);

	if (!c)
		return -ENOMEM;
	c->next = NULL;
	c->len = len;
	c->off = 0;
	memcpy(c->data, buf, len);
	c->release_ns = release_time(p, s, now_ns);
	if (p->tail)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = c;
	p->queued += len;
	p->mem += len + CHUNK_OVERHEAD;
	return 0;
}

void dppipe_mark_eof(struct dppipe *p, struct dpshape *s, int64_t now_ns)
{
	p->eof = 1;
	p->eof_release_ns = release_time(p, s, now_ns);
}

static void lower(int64_t *next_ns, int64_t t)
{
	if (t < *next_ns)
		*next_ns = t;
}

/* How many bytes of n the bucket lets through now; 0 sets *next_ns to when it will. */
static size_t bucket_allow(struct dppipe *p, const struct dpshape *s, size_t n,
			   int64_t now_ns, int64_t *next_ns)
{
	size_t want = n < DPPIPE_QUANTUM ? n : DPPIPE_QUANTUM;

	if (s->bytes_per_ns <= 0)
		return n;
	p->tokens += (double)(now_ns - p->tokens_ns) * s->bytes_per_ns;
	if (p->tokens > s->burst)
		p->tokens = s->burst;
	p->tokens_ns = now_ns;
	if (p->tokens < (double)want) {
		lower(next_ns, now_ns + 1 + (int64_t)(((double)want - p->tokens) / s->bytes_per_ns));
		return 0;
	}
	return p->tokens < (double)n ? (size_t)p->tokens : n;
}

static void pop(struct dppipe *p)
{
	struct dpchunk *c = p->head;

	p->head = c->next;
	if (!p->head)
		p->tail = NULL;
	p->mem -= c->len + CHUNK_OVERHEAD;
	free(c);
}

int dppipe_flush(struct dppipe *p, const struct dpshape *s, int fd, int64_t now_ns,
		 int64_t *next_ns)
{
	while (p->head) {
		struct dpchunk *c = p->head;
		size_t n;
		ssize_t w;

		if (c->release_ns > now_ns) {
			lower(next_ns, c->release_ns);
			return 0;
		}
		n = bucket_allow(p, s, c->len - c->off, now_ns, next_ns);
		if (n == 0)
			return 0;
		w = send(fd, c->data + c->off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			p->blocked = 1;
			return 1;
		}
		if (w < 0)
			return -errno;
		if (s->bytes_per_ns > 0)
			p->tokens -= (double)w;
		c->off += (size_t)w;
		p->queued -= (size_t)w;
		p->bytes_out += (uint64_t)w;
		if (c->off == c->len)
			pop(p);
	}
	if (p->eof && !p->shut) {
		if (p->eof_release_ns > now_ns) {
			lower(next_ns, p->eof_release_ns);
			return 0;
		}
		if (shutdown(fd, SHUT_WR) < 0 && errno != ENOTCONN)
			return -errno;
		p->shut = 1;
	}
	return 0;
}

void dppipe_release(struct dppipe *p)
{
	while (p->head)
		pop(p);
	p->queued = 0;
	p->mem = 0;
}
