/* dppipe.h: one direction of a proxied TCP connection (bench/delayproxy).
 *
 * A pipe holds the bytes read from its source socket, each chunk stamped with the time it
 * may be released to the destination (read time + one-way delay + jitter, never earlier
 * than the chunk before it, so bytes are never reordered), and a token bucket that caps
 * the rate at which released bytes are written. Single-threaded: every function is called
 * from the event loop only. */
#ifndef VHPREP_DPPIPE_H
#define VHPREP_DPPIPE_H

#include <stddef.h>
#include <stdint.h>

/* The emulated link, shared by every pipe. Set at creation; rng advances on every push. */
struct dpshape {
	int64_t delay_ns;     /* one-way delay */
	int64_t jitter_ns;    /* each chunk: delay + uniform(-jitter, +jitter), clamped at 0 */
	double bytes_per_ns;  /* token bucket rate; 0 = unlimited */
	double burst;         /* bucket size in bytes (>= DPPIPE_QUANTUM when limited) */
	uint64_t rng;         /* xorshift64* state, never 0 */
};

/* Largest write made at once under a rate limit: the bucket waits for this many tokens
 * (or for the whole chunk when it is smaller) instead of dribbling tiny writes. */
#define DPPIPE_QUANTUM 16384

struct dpchunk;

struct dppipe {
	struct dpchunk *head, *tail;
	size_t queued;           /* bytes read and not yet written */
	size_t mem;              /* memory those hold, chunk headers included: the measure
				  * of back-pressure (small reads cost more than their bytes) */
	int64_t last_release_ns; /* release time of the newest chunk: keeps the order */
	double tokens;           /* token bucket level in bytes */
	int64_t tokens_ns;       /* when tokens was last refilled */
	int eof;                 /* the source sent FIN */
	int64_t eof_release_ns;  /* when that FIN may be forwarded */
	int shut;                /* shutdown(SHUT_WR) done on the destination */
	int blocked;             /* the last write hit EAGAIN: wait for EPOLLOUT */
	uint64_t bytes_out;      /* bytes written to the destination */
};

/* Initialise an empty pipe whose bucket starts full. */
void dppipe_init(struct dppipe *p, const struct dpshape *s, int64_t now_ns);

/* Queue a copy of buf[0..len) read at now_ns. Returns 0, or -ENOMEM (nothing queued). */
int dppipe_push(struct dppipe *p, struct dpshape *s, const void *buf, size_t len,
		int64_t now_ns);

/* Record the source's FIN read at now_ns; it is forwarded after the queued bytes. */
void dppipe_mark_eof(struct dppipe *p, struct dpshape *s, int64_t now_ns);

/* Write every byte due at now_ns to fd (and shutdown(SHUT_WR) once the FIN is due and the
 * queue is empty). Lowers *next_ns to the next time this pipe has work, if any.
 * Returns 0, 1 when fd would block (p->blocked is set), or -errno on a write error. */
int dppipe_flush(struct dppipe *p, const struct dpshape *s, int fd, int64_t now_ns,
		 int64_t *next_ns);

/* Free every queued chunk. The pipe may be initialised again afterwards. */
void dppipe_release(struct dppipe *p);

#endif
