/* delayproxy.c: user-space TCP delay proxy for benchmarks (see dpopts.c for the CLI).
 *
 * One thread, one epoll loop. Each loop turn is a list of phases:
 *   wait      epoll_wait; a timerfd armed at the earliest pending release wakes it
 *   events    accept new connections, finish connects, read into the pipes
 *   pump      write what is due in every pipe, forward due FINs, update epoll interest
 *   reap      free connections closed in this turn
 * A connection owns two sockets (0 = client, 1 = server) and two pipes: dir[0] carries
 * client->server bytes, dir[1] server->client. A pipe holding more than DP_QUEUE_CAP bytes
 * of memory stops reading its source (back-pressure): at most ~2 x 4 MiB per connection. */
#include "bench/delayproxy/dpopts.h"
#include "bench/delayproxy/dppipe.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define DP_QUEUE_CAP (4u << 20) /* memory queued per direction before reading stops */
#define DP_READ_SIZE 65536
#define DP_MAX_EVENTS 256

enum dp_kind { DP_LISTENER, DP_SOCKET, DP_SIGNAL, DP_TIMER };

struct dp_tag {
	enum dp_kind kind;
	struct dp_conn *conn; /* DP_SOCKET */
	int side;             /* DP_SOCKET: 0 client, 1 server; DP_LISTENER: forward index */
};

struct dp_conn {
	struct dp_conn *prev, *next;
	int fd[2];
	struct dp_tag tag[2];
	uint32_t events[2];  /* current epoll interest; 0 = not registered */
	int connecting;      /* server connect in progress */
	int hup[2];          /* socket hung up: removed from epoll for good */
	int dead;            /* closed this turn: freed in the reap phase */
	struct dppipe dir[2];
};

struct dp_stats {
	uint64_t connections, failed_connects, resets, bytes_up, bytes_down;
};

struct dp_proxy {
	struct dpopts opts;
	struct dpshape shape;
	int epfd, sigfd, timerfd;
	int lfd[DPOPTS_MAX_FORWARDS];
	struct dp_tag ltag[DPOPTS_MAX_FORWARDS];
	struct dp_tag sigtag, timertag;
	struct dp_conn *conns;
	struct dp_stats stats;
	int stop;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int ep_add(struct dp_proxy *px, int fd, uint32_t ev, struct dp_tag *tag)
{
	struct epoll_event e = { .events = ev, .data.ptr = tag };

	return epoll_ctl(px->epfd, EPOLL_CTL_ADD, fd, &e);
}

/* ---- connection state ---- */

static void conn_set_events(struct dp_proxy *px, struct dp_conn *c, int side, uint32_t ev)
{
	struct epoll_event e = { .events = ev, .data.ptr = &c->tag[side] };
	int op = c->events[side] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	if (ev == c->events[side] || c->fd[side] < 0)
		return;
	if (ev == 0)
		op = EPOLL_CTL_DEL;
	if (epoll_ctl(px->epfd, op, c->fd[side], &e) == 0)
		c->events[side] = ev;
}

/* Close both sockets; with rst, reset them (SO_LINGER 0) so the peers see the error. */
static void conn_close(struct dp_proxy *px, struct dp_conn *c, int rst)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int s;

	if (c->dead)
		return;
	for (s = 0; s < 2; s++) {
		if (c->fd[s] < 0)
			continue;
		if (rst)
			setsockopt(c->fd[s], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c->fd[s]);
		c->fd[s] = -1;
	}
	px->stats.resets += rst ? 1 : 0;
	c->dead = 1;
}

static void conn_free(struct dp_proxy *px, struct dp_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		px->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	px->stats.bytes_up += c->dir[0].bytes_out;
	px->stats.bytes_down += c->dir[1].bytes_out;
	dppipe_release(&c->dir[0]);
	dppipe_release(&c->dir[1]);
	free(c);
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct dp_conn *conn_new(struct dp_proxy *px, int cfd, const struct sockaddr_in *to)
{
	struct dp_conn *c = calloc(1, sizeof(*c));
	int64_t t = now_ns();
	int s;

	if (!c)
		return NULL;
	c->fd[0] = cfd;
	c->fd[1] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd[1] < 0 || (connect(c->fd[1], (const struct sockaddr *)to, sizeof(*to)) < 0 &&
			     errno != EINPROGRESS)) {
		if (c->fd[1] >= 0)
			close(c->fd[1]);
		free(c);
		return NULL;
	}
	c->connecting = 1;
	for (s = 0; s < 2; s++) {
		c->tag[s] = (struct dp_tag){ .kind = DP_SOCKET, .conn = c, .side = s };
		set_nodelay(c->fd[s]);
		dppipe_init(&c->dir[s], &px->shape, t);
	}
	c->next = px->conns;
	if (c->next)
		c->next->prev = c;
	px->conns = c;
	return c;
}

/* ---- events phase ---- */

static void on_accept(struct dp_proxy *px, int idx)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int cfd;

	while ((cfd = accept4(px->lfd[idx], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		px->stats.connections++;
		if (!conn_new(px, cfd, &px->opts.fwd[idx].to)) {
			px->stats.failed_connects++;
			setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(cfd);
		}
	}
}

static void on_connected(struct dp_proxy *px, struct dp_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		px->stats.failed_connects++;
		conn_close(px, c, 1);
		return;
	}
	c->connecting = 0;
}

/* Read once from side s into dir[s]. With drain, read until EOF or EAGAIN (used on HUP,
 * where the kernel buffer bounds what is read). */
static void on_readable(struct dp_proxy *px, struct dp_conn *c, int s, int drain)
{
	unsigned char buf[DP_READ_SIZE];
	struct dppipe *p = &c->dir[s];
	ssize_t n;

	do {
		n = recv(c->fd[s], buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0 && dppipe_push(p, &px->shape, buf, (size_t)n, now_ns()) < 0)
			n = -1;
	} while (drain && n > 0);
	if (n == 0)
		dppipe_mark_eof(p, &px->shape, now_ns());
	else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		conn_close(px, c, 1);
}

static void on_socket(struct dp_proxy *px, struct dp_conn *c, int s, uint32_t ev)
{
	if (c->dead)
		return;
	if (s == 1 && c->connecting) {
		if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_connected(px, c);
		return;
	}
	if (ev & EPOLLOUT)
		c->dir[1 - s].blocked = 0;
	if (ev & (EPOLLHUP | EPOLLERR)) {
		/* HUP would be reported forever: read what is left, leave epoll, and let the
		 * next write to this socket tell whether it still takes data */
		if (!c->dir[s].eof)
			on_readable(px, c, s, 1);
		c->hup[s] = 1;
		c->dir[1 - s].blocked = 0;
		if (!c->dead)
			conn_set_events(px, c, s, 0);
	} else if ((ev & EPOLLIN) && !c->dir[s].eof) {
		on_readable(px, c, s, 0);
	}
}

static void on_signal(struct dp_proxy *px)
{
	struct signalfd_siginfo si;

	if (read(px->sigfd, &si, sizeof(si)) > 0)
		px->stop = 1;
}

static void dispatch(struct dp_proxy *px, struct epoll_event *e)
{
	struct dp_tag *tag = e->data.ptr;
	uint64_t expirations;

	switch (tag->kind) {
	case DP_LISTENER:
		on_accept(px, tag->side);
		break;
	case DP_SOCKET:
		on_socket(px, tag->conn, tag->side, e->events);
		break;
	case DP_SIGNAL:
		on_signal(px);
		break;
	case DP_TIMER:
		if (read(px->timerfd, &expirations, sizeof(expirations)) < 0)
			break;
		break;
	}
}

/* ---- pump phase ---- */

/* Flush dir[d] into the socket on side 1-d. Returns 0, or -1 when the connection died. */
static int pump_dir(struct dp_proxy *px, struct dp_conn *c, int d, int64_t t, int64_t *next)
{
	struct dppipe *p = &c->dir[d];
	int rc;

	if (p->blocked || p->shut || (d == 0 && c->connecting))
		return 0;
	rc = dppipe_flush(p, &px->shape, c->fd[1 - d], t, next);
	if (rc < 0) {
		conn_close(px, c, 1);
		return -1;
	}
	return 0;
}

static uint32_t wanted_events(const struct dp_conn *c, int s)
{
	uint32_t ev = 0;

	if (c->hup[s])
		return 0;
	if (s == 1 && c->connecting)
		return EPOLLOUT;
	if (!c->dir[s].eof && c->dir[s].mem < DP_QUEUE_CAP)
		ev |= EPOLLIN;
	if (c->dir[1 - s].blocked)
		ev |= EPOLLOUT;
	return ev;
}

static void pump_conn(struct dp_proxy *px, struct dp_conn *c, int64_t t, int64_t *next)
{
	int s;

	if (c->dead || pump_dir(px, c, 0, t, next) < 0 || pump_dir(px, c, 1, t, next) < 0)
		return;
	if (c->dir[0].shut && c->dir[1].shut) {
		conn_close(px, c, 0);
		return;
	}
	for (s = 0; s < 2; s++)
		conn_set_events(px, c, s, wanted_events(c, s));
}

/* Arm the timer at next (absolute CLOCK_MONOTONIC), or disarm it. */
static void arm_timer(struct dp_proxy *px, int64_t next)
{
	struct itimerspec its;

	memset(&its, 0, sizeof(its));
	if (next != INT64_MAX) {
		its.it_value.tv_sec = next / 1000000000;
		its.it_value.tv_nsec = next % 1000000000;
	}
	timerfd_settime(px->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void pump_all(struct dp_proxy *px)
{
	int64_t t = now_ns(), next = INT64_MAX;
	struct dp_conn *c;

	for (c = px->conns; c; c = c->next)
		pump_conn(px, c, t, &next);
	arm_timer(px, next);
}

static void reap(struct dp_proxy *px)
{
	struct dp_conn *c = px->conns, *n;

	for (; c; c = n) {
		n = c->next;
		if (c->dead)
			conn_free(px, c);
	}
}

/* ---- setup and teardown ---- */

static int open_listener(struct dp_proxy *px, int i)
{
	const struct sockaddr_in *sa = &px->opts.fwd[i].listen;
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	px->lfd[i] = fd;
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(fd, 512) < 0) {
		fprintf(stderr, "delayproxy: cannot listen on port %u: %s\n",
			(unsigned)ntohs(sa->sin_port), strerror(errno));
		return -1;
	}
	px->ltag[i] = (struct dp_tag){ .kind = DP_LISTENER, .side = i };
	return ep_add(px, fd, EPOLLIN, &px->ltag[i]);
}

static int open_signals(struct dp_proxy *px)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	px->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	px->sigtag.kind = DP_SIGNAL;
	return px->sigfd < 0 ? -1 : ep_add(px, px->sigfd, EPOLLIN, &px->sigtag);
}

static void init_shape(struct dp_proxy *px)
{
	const struct dpopts *o = &px->opts;
	double burst = (double)(o->burst_kb ? o->burst_kb : 64) * 1024.0;

	px->shape.delay_ns = (int64_t)(o->delay_ms * 1e6);
	px->shape.jitter_ns = (int64_t)(o->jitter_ms * 1e6);
	px->shape.bytes_per_ns = o->rate_mbit * 1e6 / 8.0 / 1e9;
	px->shape.burst = burst < DPPIPE_QUANTUM ? DPPIPE_QUANTUM : burst;
	px->shape.rng = o->seed ? o->seed : 0x9E3779B97F4A7C15ULL;
}

static int proxy_open(struct dp_proxy *px)
{
	int i;

	init_shape(px);
	for (i = 0; i < DPOPTS_MAX_FORWARDS; i++)
		px->lfd[i] = -1;
	px->sigfd = px->timerfd = -1;
	px->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (px->epfd < 0 || open_signals(px) < 0)
		return -1;
	px->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	px->timertag.kind = DP_TIMER;
	if (px->timerfd < 0 || ep_add(px, px->timerfd, EPOLLIN, &px->timertag) < 0)
		return -1;
	for (i = 0; i < px->opts.nfwd; i++)
		if (open_listener(px, i) < 0)
			return -1;
	return 0;
}

static void proxy_close(struct dp_proxy *px)
{
	int i;

	for (struct dp_conn *c = px->conns; c; c = c->next)
		conn_close(px, c, 0);
	reap(px);
	for (i = 0; i < DPOPTS_MAX_FORWARDS; i++)
		if (px->lfd[i] >= 0)
			close(px->lfd[i]);
	if (px->timerfd >= 0)
		close(px->timerfd);
	if (px->sigfd >= 0)
		close(px->sigfd);
	if (px->epfd >= 0)
		close(px->epfd);
}

static void write_stats(const struct dp_proxy *px)
{
	const struct dp_stats *st = &px->stats;
	char line[512];
	FILE *f;

	snprintf(line, sizeof(line),
		 "{\"connections\":%llu,\"failed_connects\":%llu,\"resets\":%llu,"
		 "\"bytes_client_to_server\":%llu,\"bytes_server_to_client\":%llu,"
		 "\"delay_ms\":%g,\"jitter_ms\":%g,\"rate_mbit\":%g}\n",
		 (unsigned long long)st->connections, (unsigned long long)st->failed_connects,
		 (unsigned long long)st->resets, (unsigned long long)st->bytes_up,
		 (unsigned long long)st->bytes_down, px->opts.delay_ms, px->opts.jitter_ms,
		 px->opts.rate_mbit);
	fputs(line, stderr);
	if (!px->opts.stats_file)
		return;
	f = fopen(px->opts.stats_file, "w");
	if (!f || fputs(line, f) < 0 || fclose(f) != 0)
		fprintf(stderr, "delayproxy: cannot write '%s': %s\n", px->opts.stats_file,
			strerror(errno));
}

static int run(struct dp_proxy *px)
{
	struct epoll_event ev[DP_MAX_EVENTS];
	int i, n;

	while (!px->stop) {
		n = epoll_wait(px->epfd, ev, DP_MAX_EVENTS, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		for (i = 0; i < n; i++)
			dispatch(px, &ev[i]);
		pump_all(px);
		reap(px);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct dp_proxy px;
	int rc = dpopts_parse(&px.opts, argc, argv);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (proxy_open(&px) < 0 || run(&px) < 0) {
		fprintf(stderr, "delayproxy: %s\n", strerror(errno));
		rc = 1;
	}
	proxy_close(&px);
	write_stats(&px);
	return rc;
}
