/* nfssrc: the nfs:// source (see nfssrc.h). One event-loop thread owns every libnfs
 * context; other threads talk to it through lists under s->lock and an eventfd.
 *
 * The loop, one iteration:  take_posted → start reads → start dirs → check walk end →
 * poll (connections + eventfd, 100 ms) → service (also on timeout: libnfs' RPC timers).
 *
 * Reads are in nfsread.c, directory listing in nfswalk.c; nfsint.h is what they share. */
#include "io/nfssrc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/nfsint.h"

/* Exported by libnfs 4.0 (and later) but declared only in its private header: the file
 * handle of the mounted export (v3), where the raw READDIRPLUS walk starts. Its layout,
 * also private, has been {int len; char *val;} from 4.0 to 6.x: rootfh_layout mirrors it. */
const struct nfs_fh *nfs_get_rootfh(struct nfs_context *nfs);
struct rootfh_layout {
	int len;
	char *val;
};

#define DEFAULT_CONNECTIONS 4
#define DEFAULT_TIMEOUT_MS  10000
#define POLL_MS		    100
#define BACKOFF_MIN_MS	    100 /* first wait before remounting a dropped connection */
#define BACKOFF_MAX_MS	    1000

/* ---- cross-thread signalling ---- */

void nfssrc_wake(struct nfssrc *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->efd, &one, sizeof(one));

	(void)n; /* a full counter still wakes the loop */
}

bool nfssrc_cancelled(struct nfssrc *s)
{
	bool c;

	pthread_mutex_lock(&s->lock);
	c = s->cancelled;
	pthread_mutex_unlock(&s->lock);
	return c;
}

/* ---- errors ---- */

enum vherr_code nfssrc_code_of(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ESTALE:
		return VHERR_NOENT;
	case EACCES:
	case EPERM:
		return VHERR_ACCESS;
	case ENOTDIR:
		return VHERR_NOTDIR;
	case ENOMEM:
		return VHERR_NOMEM;
	case ETIMEDOUT:
		return VHERR_TIMEOUT;
	case EIO:
		return VHERR_IO;
	default:
		return VHERR_NET;
	}
}

/* Copies a libnfs message (may be NULL) into one line. */
const char *nfssrc_one_line(const char *msg, char *buf, size_t size)
{
	snprintf(buf, size, "%s", msg && *msg ? msg : "unknown error");
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return buf;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
/* ---- the completion thread: runs req->done, one at a time, off the loop ---- */

static void *done_main(void *arg)
{
	struct nfssrc *s = arg;
	struct link *l;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->completed.head && !s->quit)
			pthread_cond_wait(&s->cond, &s->lock);
		l = fifo_pop(&s->completed);
		if (!l)
			break; /* quit and nothing left */
		pthread_mutex_unlock(&s->lock);
		{
			struct nread *nr = (struct nread *)l;
			struct source_read *req = nr->req;

			free(nr);
			req->done(req);
		}
		pthread_mutex_lock(&s->lock);
		s->reads--;
		nfssrc_broadcast(s);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- the budget thread: budget_acquire blocks here, never on the loop ---- */

static void *budget_main(void *arg)
{
	struct nfssrc *s = arg;
	struct nread *nr;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->want_budget.head && !s->quit)
			pthread_cond_wait(&s->cond, &s->lock);
		nr = fifo_pop(&s->want_budget);
		if (!nr)
			break;
		pthread_mutex_unlock(&s->lock);
		if (budget_acquire(s->opts.budget, nr->req->size) == 0)
			nr->req->charged = nr->req->size;
		else
			nr->cancelled = true;
		pthread_mutex_lock(&s->lock);
		fifo_push(&s->granted, nr);
		nfssrc_wake(s);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int nfssrc_pick_conn(struct nfssrc *s)
{
	int best = -1;

	for (int k = 0; k < s->nconns; k++) {
		int i = (s->next_conn + k) % s->nconns;

		if (nfssrc_conn_up(s, i) &&
		    (best < 0 || s->conns[i].busy + s->conns[i].seq_wait.n <
				     s->conns[best].busy + s->conns[best].seq_wait.n))
			best = i;
	}
	s->next_conn = (s->next_conn + 1) % s->nconns;
	return best;
}

bool nfssrc_retry(struct nfssrc *s, int conn, int *attempts)
{
	s->conns[conn].broken = true;
	if (s->lost || nfssrc_cancelled(s))
		return false;
	return ++*attempts <= NFS_RETRIES;
}

/* ---- connections: drop, remount with backoff, or give the source up ---- */

static int conn_init(struct nfssrc *s, struct conn *c, int timeout_ms, struct vherr *err);

/* Drops c: destroying its context completes each request still on it as cancelled
 * (each is retried elsewhere or later); v4 reads waiting to OPEN or CLOSE on it go on
 * elsewhere. The next remount is due after the backoff. */
static void conn_drop(struct conn *c)
{
	uint64_t now = now_ms();
	struct fifo waiting = c->seq_wait;
	struct nread *nr;

	c->state = CONN_DOWN;
	if (!c->down_since)
		c->down_since = now;
	c->retry_at = now + (uint64_t)c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
	c->seq_wait = (struct fifo){0};
	if (c->nfs)
		nfs_destroy_context(c->nfs);
	c->nfs = NULL;
	c->broken = false;
	c->busy = 0;
	c->seq_busy = false;
	while ((nr = fifo_pop(&waiting)))
		nfsread_resume(nr);
}

/* Starts mounting c again (MOUNTING), or schedules the next try. */
static void conn_remount(struct nfssrc *s, struct conn *c)
{
	struct vherr err;

	c->reconnects++;
	c->mount_done = 0;
	c->mount_rc = 0;
	if (conn_init(s, c, s->timeout_ms, &err) == 0) {
		c->state = CONN_MOUNTING;
		return;
	}
	conn_drop(c);
}

/* No connection came back within the timeout: every read and listing fails with one
 * error, the run ends. */
static void source_lost(struct nfssrc *s)
{
	struct nread *nr;
	int tries = 0;

	if (s->lost)
		return;
	for (int i = 0; i < s->nconns; i++)
		tries += s->conns[i].reconnects;
	s->lost = true;
	vherr_set(&s->lost_err, VHERR_LOST, VHSTAGE_WALK,
		  "lost the connection to '%s': no connection for %.1f s (%d reconnects)",
		  s->base, s->timeout_ms / 1000.0, tries);
	pthread_mutex_lock(&s->lock);
	if (s->walk_running && !s->walk_rc) {
		s->walk_rc = -VHERR_LOST;
		s->walk_err = s->lost_err;
	}
	pthread_mutex_unlock(&s->lock);
	while ((nr = fifo_pop(&s->stalled)))
		nfsread_lost(nr);
}

/* The connections' phase of the loop: drops broken ones, finishes or starts remounts,
 * resumes stalled reads once one is UP, gives the source up when none came back. */
static void conns_tick(struct nfssrc *s)
{
	uint64_t now = now_ms();
	bool up = false, waiting = false;
	struct fifo stalled;
	struct nread *nr;

	for (int i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];

		if (c->state == CONN_UP && c->broken)
			conn_drop(c);
		if (c->state == CONN_MOUNTING && c->mount_done) {
			if (c->mount_rc == 0) {
				c->state = CONN_UP;
				c->down_since = 0;
				c->backoff_ms = BACKOFF_MIN_MS;
			} else {
				conn_drop(c);
			}
		}
		up |= c->state == CONN_UP;
	}
	/* a connection down for longer than the timeout is tried again only while another
	 * one is UP (the server is there); with none UP, that is the end */
	for (int i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];
		bool in_time = now - c->down_since < (uint64_t)s->timeout_ms;

		if (c->state == CONN_DOWN && now >= c->retry_at && (up || in_time))
			conn_remount(s, c);
		waiting |= c->state == CONN_MOUNTING || (c->state == CONN_DOWN && in_time);
	}
	if (!up && !waiting)
		source_lost(s);
	if (!up || !s->stalled.head)
		return;
	stalled = s->stalled;
	s->stalled = (struct fifo){0};
	while ((nr = fifo_pop(&stalled)))
		nfsread_resume(nr);
}

/* Moves what other threads posted into the loop's own lists. */
static void take_posted(struct nfssrc *s, struct fifo *granted)
{
	pthread_mutex_lock(&s->lock);
	fifo_splice(&s->reads_todo, &s->posted);
	fifo_splice(granted, &s->granted);
	if (s->walk_root) {
		fifo_push(&s->dirs, s->walk_root);
		s->walk_root = NULL;
	}
	pthread_mutex_unlock(&s->lock);
}

static void run_posted(struct nfssrc *s)
{
	struct fifo granted = {0};
	struct nread *nr;

	conns_tick(s);
	nfsread_seq_kick(s);
	take_posted(s, &granted);
	while ((nr = fifo_pop(&granted)))
		nfsread_granted(nr);
	while ((nr = fifo_pop(&s->reads_todo)))
		nfsread_start(nr);
	nfsread_seq_kick(s);
	nfswalk_start_dirs(s);
	nfswalk_check_end(s);
}

static void poll_and_service(struct nfssrc *s)
{
	struct pollfd pfd[s->nconns + 1];
	uint64_t junk;

	for (int i = 0; i < s->nconns; i++) {
		struct nfs_context *nfs = s->conns[i].nfs;

		pfd[i].fd = nfs ? nfs_get_fd(nfs) : -1;
		pfd[i].events = nfs ? (short)nfs_which_events(nfs) : 0;
		pfd[i].revents = 0;
	}
	pfd[s->nconns] = (struct pollfd){.fd = s->efd, .events = POLLIN};
	if (poll(pfd, (nfds_t)s->nconns + 1, POLL_MS) < 0 && errno != EINTR)
		return;
	if (pfd[s->nconns].revents & POLLIN) {
		ssize_t n = read(s->efd, &junk, sizeof(junk));

		(void)n;
	}
	/* revents 0 too: libnfs runs its RPC timeouts from nfs_service. < 0 is a broken
	 * connection (libnfs' autoreconnect is off): conns_tick drops and remounts it */
	for (int i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];

		if (!c->nfs)
			continue;
		if (nfs_service(c->nfs, pfd[i].revents) < 0) {
			if (c->state == CONN_MOUNTING && !c->mount_done) {
				c->mount_done = 1;
				c->mount_rc = -ECONNREFUSED;
			} else if (c->state == CONN_UP) {
				c->broken = true;
			}
		}
		nfsread_judge(s, c, c->broken);
	}
}

static bool loop_quit(struct nfssrc *s)
{
	bool q;

	pthread_mutex_lock(&s->lock);
	q = s->quit;
	pthread_mutex_unlock(&s->lock);
	return q;
}

static void *loop_main(void *arg)
{
	struct nfssrc *s = arg;

	while (!loop_quit(s)) {
		run_posted(s);
		poll_and_service(s);
	}
	return NULL;
}

/* ---- open: connect and mount every connection, bounded by the timeout ---- */

static void on_mounted(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct conn *c = priv;

	(void)nfs;
	c->mount_done = 1;
	c->mount_rc = err;
	if (err < 0)
		nfssrc_one_line(data, c->mount_msg, sizeof(c->mount_msg));
}

/* Returns the first failed connection's rc with err set, or 0. */
static int mount_result(struct nfssrc *s, struct vherr *err)
{
	for (int i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];

		/* libnfs 4.0 says "Socket failed with POLLHUP" for a refused connection */
		if (c->mount_rc < 0 && strstr(c->mount_msg, "POLLHUP"))
			return vherr_set(
			    err, VHERR_NET, VHSTAGE_WALK,
			    "cannot mount '%s': connection refused or closed by the "
			    "server (wrong host, port or version?)",
			    s->base);
		if (c->mount_rc < 0)
			return vherr_set(err, nfssrc_code_of(-c->mount_rc), VHSTAGE_WALK,
					 "cannot mount '%s': %s", s->base, c->mount_msg);
	}
	return 0;
}

static int mount_wait(struct nfssrc *s, int timeout_ms, struct vherr *err)
{
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	struct pollfd pfd[s->nconns];
	int pending;

	for (;;) {
		pending = 0;
		for (int i = 0; i < s->nconns; i++) {
			struct conn *c = &s->conns[i];

			pfd[i] = (struct pollfd){.fd = c->mount_done ? -1 : nfs_get_fd(c->nfs),
						 .events = (short)nfs_which_events(c->nfs)};
			pending += !c->mount_done;
		}
		if (!pending)
			return mount_result(s, err);
		if (now_ms() >= deadline)
			return vherr_set(err, VHERR_TIMEOUT, VHSTAGE_WALK,
					 "cannot mount '%s': no answer within %d ms", s->base,
					 timeout_ms);
		if (poll(pfd, (nfds_t)s->nconns, POLL_MS) < 0 && errno != EINTR)
			return vherr_errno(err, errno, VHSTAGE_WALK, "poll");
		for (int i = 0; i < s->nconns; i++) {
			struct conn *c = &s->conns[i];

			if (c->mount_done || nfs_service(c->nfs, pfd[i].revents) >= 0)
				continue;
			c->mount_done = 1;
			c->mount_rc = -ECONNREFUSED;
			nfssrc_one_line(nfs_get_error(c->nfs), c->mount_msg,
					sizeof(c->mount_msg));
		}
	}
}

/* Sets the URL's ports on nfs: libnfs 4.0 has no setter, only its URL arguments. */
static int set_ports(struct nfs_context *nfs, const struct nfsurl *u)
{
	char args[96];
	struct nfs_url *parsed;

	if (!u->nfsport && !u->mountport)
		return 0;
	snprintf(args, sizeof(args), "nfs://?nfsport=%d&mountport=%d", u->nfsport,
		 u->mountport);
	parsed = nfs_parse_url_incomplete(nfs, args);
	if (!parsed)
		return -1;
	nfs_destroy_url(parsed);
	return 0;
}

static int conn_init(struct nfssrc *s, struct conn *c, int timeout_ms, struct vherr *err)
{
	c->nfs = nfs_init_context();
	if (!c->nfs)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK,
				 "cannot create an nfs context");
	if (nfs_set_version(c->nfs, s->url.version) < 0 || set_ports(c->nfs, &s->url) < 0)
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_WALK, "cannot configure '%s': %s",
				 s->base, nfs_get_error(c->nfs));
	if (s->url.version == 4) {
		/* one NFSv4 client per connection: a shared name makes the server drop the
		 * earlier connections' client ids (SETCLIENTID_CONFIRM: STALE_CLIENTID) */
		char name[96];

		snprintf(name, sizeof(name), "vhprep.%ld.%d.%p", (long)getpid(),
			 (int)(c - s->conns), (void *)s);
		nfs4_set_client_name(c->nfs, name);
	}
	if (s->url.uid >= 0)
		nfs_set_uid(c->nfs, (int)s->url.uid);
	if (s->url.gid >= 0)
		nfs_set_gid(c->nfs, (int)s->url.gid);
	nfs_set_timeout(c->nfs, (timeout_ms + 999) / 1000 * 1000);
	/* our own reconnect: requests retried on other connections, backoff, a timeout */
	nfs_set_autoreconnect(c->nfs, 0);
	if (nfs_mount_async(c->nfs, s->url.host, s->url.path, on_mounted, c) != 0)
		return vherr_set(err, VHERR_NET, VHSTAGE_WALK, "cannot mount '%s': %s", s->base,
				 nfs_get_error(c->nfs));
	return 0;
}

/* Checks that the root is a directory (one synchronous GETATTR, bounded by the timeout). */
static int check_root(struct nfssrc *s, struct vherr *err)
{
	struct nfs_stat_64 st;
	int rc = nfs_stat64(s->conns[0].nfs, "/", &st);
	char line[256];

	if (rc < 0)
		return vherr_set(
		    err, nfssrc_code_of(-rc), VHSTAGE_WALK, "cannot open source '%s': %s",
		    s->base,
		    nfssrc_one_line(nfs_get_error(s->conns[0].nfs), line, sizeof(line)));
	if (!S_ISDIR(st.nfs_mode))
		return vherr_set(err, VHERR_NOTDIR, VHSTAGE_WALK,
				 "cannot open source '%s': not a directory", s->base);
	return 0;
}

static char *make_base(const struct nfsurl *u)
{
	char *b = NULL;
	bool v6 = strchr(u->host, ':') != NULL;
	int n;

	if (u->nfsport)
		n = asprintf(&b, "nfs://%s%s%s:%d%s", v6 ? "[" : "", u->host, v6 ? "]" : "",
			     u->nfsport, strcmp(u->path, "/") ? u->path : "");
	else
		n = asprintf(&b, "nfs://%s%s%s%s", v6 ? "[" : "", u->host, v6 ? "]" : "",
			     strcmp(u->path, "/") ? u->path : "");
	return n < 0 ? NULL : b;
}

static int start_threads(struct nfssrc *s)
{
	if (pthread_create(&s->done_tid, NULL, done_main, s) != 0)
		return -1;
	s->threads++;
	if (pthread_create(&s->budget_tid, NULL, budget_main, s) != 0)
		return -1;
	s->threads++;
	if (pthread_create(&s->loop_tid, NULL, loop_main, s) != 0)
		return -1;
	s->threads++;
	return 0;
}

int nfssrc_open(const char *url, const struct source_opts *opts,
		const struct nfssrc_opts *nopts, struct nfssrc **out, struct vherr *err)
{
	struct nfssrc *s = calloc(1, sizeof(*s));
	int timeout_ms =
	    nopts && nopts->timeout_ms > 0 ? nopts->timeout_ms : DEFAULT_TIMEOUT_MS;
	int rc;

	*out = NULL;
	if (!s)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->efd = -1;
	s->opts = *opts;
	if (s->opts.walkers < 1)
		s->opts.walkers = 1;
	if (s->opts.io_depth < 1)
		s->opts.io_depth = 1;
	s->nconns = nopts && nopts->connections > 0 ? nopts->connections : DEFAULT_CONNECTIONS;
	s->timeout_ms = timeout_ms;
	if ((rc = nfsurl_parse(url, &s->url, err)) < 0)
		goto fail;
	s->base = make_base(&s->url);
	s->conns = calloc((size_t)s->nconns, sizeof(*s->conns));
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!s->base || !s->conns || s->efd < 0) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
		goto fail;
	}
	for (int i = 0; i < s->nconns; i++) {
		s->conns[i].backoff_ms = BACKOFF_MIN_MS;
		if ((rc = conn_init(s, &s->conns[i], timeout_ms, err)) < 0)
			goto fail;
	}
	if ((rc = mount_wait(s, timeout_ms, err)) < 0 || (rc = check_root(s, err)) < 0)
		goto fail;
	if (start_threads(s) < 0) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, "cannot start the nfs threads");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	nfssrc_free(s);
	return rc;
}

/* ---- the public operations ---- */

/* Calls emit for each entry of p; false once the walk should stop. */
static bool walk_page(struct nfssrc *s, struct page *p, source_emit_fn emit, void *ctx,
		      void (*on_error)(void *, const char *, const struct vherr *))
{
	struct source_entry e;
	size_t pos = 0;

	if (p->err.code) {
		if (on_error)
			on_error(ctx, p->errpath ? p->errpath : "", &p->err);
		return true;
	}
	while (entrybuf_next(&p->entries, &pos, &e) == 0) {
		if (atomic_load(&s->stopflag))
			return false;
		if (emit(ctx, &e) == SOURCE_STOP)
			return false;
	}
	return true;
}

int nfssrc_walk(struct nfssrc *s, source_emit_fn emit, void *ctx,
		void (*on_error)(void *ctx, const char *relpath, const struct vherr *err),
		struct vherr *err)
{
	struct dirwork *root = nfswalk_dir_new(s, "", "", NULL, 0);
	const struct rootfh_layout *fh =
	    s->url.version == 3 ? (const void *)nfs_get_rootfh(s->conns[0].nfs) : NULL;
	struct page *p;
	int rc;

	if (!root || (fh && !(root->fh = malloc((size_t)fh->len)))) {
		nfswalk_dir_free(root);
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	}
	if (fh) {
		memcpy(root->fh, fh->val, (size_t)fh->len);
		root->fhlen = (uint32_t)fh->len;
	}
	pthread_mutex_lock(&s->lock);
	s->walk_root = root;
	s->walk_running = true;
	nfssrc_wake(s);
	for (;;) {
		while (!s->pages.head && s->walk_running)
			pthread_cond_wait(&s->cond, &s->lock);
		p = fifo_pop(&s->pages);
		if (!p)
			break;
		pthread_mutex_unlock(&s->lock);
		if (!atomic_load(&s->stopflag) && !walk_page(s, p, emit, ctx, on_error))
			nfssrc_stop(s);
		nfswalk_page_free(p);
		nfssrc_wake(s); /* a page slot is free */
		pthread_mutex_lock(&s->lock);
	}
	rc = s->walk_rc;
	if (rc < 0)
		*err = s->walk_err;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int nfssrc_submit(struct nfssrc *s, struct source_read *req)
{
	size_t n = strlen(req->relpath);
	struct nread *nr = calloc(1, sizeof(*nr) + n + 2);

	if (!nr)
		return -VHERR_NOMEM;
	nr->s = s;
	nr->req = req;
	nr->path[0] = '/';
	memcpy(nr->path + 1, req->relpath, n + 1);
	req->status = SOURCE_READ_FAILED;
	req->data = NULL;
	req->len = req->size = req->charged = 0;
	req->mtime_ns = 0;
	vherr_clear(&req->err);
	pthread_mutex_lock(&s->lock);
	while (s->reads >= s->opts.io_depth && !s->cancelled)
		pthread_cond_wait(&s->cond, &s->lock);
	if (s->cancelled) {
		pthread_mutex_unlock(&s->lock);
		free(nr);
		return -VHERR_CANCELLED;
	}
	s->reads++;
	fifo_push(&s->posted, nr);
	nfssrc_wake(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void nfssrc_stop(struct nfssrc *s)
{
	pthread_mutex_lock(&s->lock);
	s->walk_stop = true;
	pthread_mutex_unlock(&s->lock);
	atomic_store(&s->stopflag, true);
	nfssrc_wake(s);
}

void nfssrc_cancel(struct nfssrc *s)
{
	pthread_mutex_lock(&s->lock);
	s->walk_stop = true;
	s->cancelled = true;
	atomic_store(&s->stopflag, true);
	nfssrc_broadcast(s);
	pthread_mutex_unlock(&s->lock);
	if (s->opts.budget)
		budget_cancel(s->opts.budget);
	nfssrc_wake(s);
}

char *nfssrc_location(const struct nfssrc *s, const char *relpath, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", s->base, relpath);
	return buf;
}

static void stop_threads(struct nfssrc *s)
{
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	nfssrc_broadcast(s);
	pthread_mutex_unlock(&s->lock);
	nfssrc_wake(s);
	if (s->threads > 2)
		pthread_join(s->loop_tid, NULL);
	if (s->threads > 1)
		pthread_join(s->budget_tid, NULL);
	if (s->threads > 0)
		pthread_join(s->done_tid, NULL);
	s->threads = 0;
}

void nfssrc_free(struct nfssrc *s)
{
	struct dirwork *w;

	if (!s)
		return;
	stop_threads(s);
	for (int i = 0; s->conns && i < s->nconns; i++)
		if (s->conns[i].nfs)
			nfs_destroy_context(s->conns[i].nfs); /* cancels what is left */
	while ((w = fifo_pop(&s->dirs)))
		nfswalk_dir_free(w);
	nfswalk_dir_free(s->walk_root);
	while (s->pages.head)
		nfswalk_page_free(fifo_pop(&s->pages));
	if (s->efd >= 0)
		close(s->efd);
	free(s->conns);
	free(s->base);
	nfsurl_release(&s->url);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
