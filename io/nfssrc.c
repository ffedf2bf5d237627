/* nfssrc: the nfs:// source (see nfssrc.h). One event-loop thread owns every libnfs
 * context; other threads talk to it through the hub (nfsint.h: lists under a lock and an
 * eventfd).
 *
 * The loop, one iteration: the connections' phase (nfsconn_tick) → posted and granted
 * reads → directory requests → walk end → poll (connections + eventfd, 100 ms) →
 * service each connection (also on timeout: libnfs' RPC timers) and judge its failed
 * reads.
 *
 * Reads are nfsread.c, the listing nfswalk.c, connections nfsconn.c: each sees only its
 * view (nfsread_env, nfswalk_env) and none calls back into this file. */
#include "io/nfssrc.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

#include "io/nfsconn.h"
#include "io/nfsint.h"
#include "io/nfsurl.h"

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

struct nfssrc {
	struct nfsurl url;	 /* set at creation */
	char *base;		 /* set at creation: "nfs://host[:port]/path" */
	struct source_opts opts; /* set at creation */
	struct nfshub hub;	 /* the threads' hand-offs (under hub.lock) */
	struct nfsconns conns;	 /* set at creation; loop-only after */
	struct nfsread_env rd;	 /* the reads' view; loop-only */
	struct nfswalk_env wk;	 /* the walk's view; loop-only */
	pthread_t loop_tid, budget_tid, done_tid; /* set at creation */
	int threads;				  /* set at creation: how many of them run */
};

/* ---- the completion thread: runs req->done, one at a time, off the loop ---- */

static void *done_main(void *arg)
{
	struct nfssrc *s = arg;
	struct link *l;

	pthread_mutex_lock(&s->hub.lock);
	for (;;) {
		while (!s->hub.completed.head && !s->hub.quit)
			pthread_cond_wait(&s->hub.cond, &s->hub.lock);
		l = fifo_pop(&s->hub.completed);
		if (!l)
			break; /* quit and nothing left */
		pthread_mutex_unlock(&s->hub.lock);
		{
			struct nread *nr = (struct nread *)l;
			struct source_read *req = nr->req;

			free(nr);
			req->done(req);
		}
		pthread_mutex_lock(&s->hub.lock);
		s->hub.reads--;
		pthread_cond_broadcast(&s->hub.cond);
	}
	pthread_mutex_unlock(&s->hub.lock);
	return NULL;
}

/* ---- the budget thread: budget_acquire blocks here, never on the loop ---- */

static void *budget_main(void *arg)
{
	struct nfssrc *s = arg;
	struct nread *nr;

	pthread_mutex_lock(&s->hub.lock);
	for (;;) {
		while (!s->hub.want_budget.head && !s->hub.quit)
			pthread_cond_wait(&s->hub.cond, &s->hub.lock);
		nr = fifo_pop(&s->hub.want_budget);
		if (!nr)
			break;
		pthread_mutex_unlock(&s->hub.lock);
		if (budget_acquire(s->opts.budget, nr->req->size) == 0)
			nr->req->charged = nr->req->size;
		else
			nr->cancelled = true;
		pthread_mutex_lock(&s->hub.lock);
		fifo_push(&s->hub.granted, nr);
		nfshub_wake(&s->hub);
	}
	pthread_mutex_unlock(&s->hub.lock);
	return NULL;
}

/* ---- the loop ---- */

/* The connections' phase: reads of dropped connections start again, the source is
 * given up once the connections are lost, stalled reads resume once one is UP. */
static void conns_phase(struct nfssrc *s)
{
	struct fifo resume = {0}, stalled;
	enum nfsconn_tick t = nfsconn_tick(&s->conns, &resume);
	struct nread *nr;

	while ((nr = fifo_pop(&resume)))
		nfsread_resume(nr);
	if (t == NFSCONN_LOST) {
		nfswalk_lost(&s->wk, &s->conns.lost_err);
		while ((nr = fifo_pop(&s->rd.stalled)))
			nfsread_lost(nr);
	}
	if (t != NFSCONN_SOME_UP || !s->rd.stalled.head)
		return;
	stalled = s->rd.stalled;
	s->rd.stalled = (struct fifo){0};
	while ((nr = fifo_pop(&stalled)))
		nfsread_resume(nr);
}

/* Moves what other threads posted into the loop's own lists. */
static void take_posted(struct nfssrc *s, struct fifo *todo, struct fifo *granted)
{
	pthread_mutex_lock(&s->hub.lock);
	fifo_splice(todo, &s->hub.posted);
	fifo_splice(granted, &s->hub.granted);
	if (s->hub.walk_root) {
		fifo_push(&s->wk.dirs, s->hub.walk_root);
		s->hub.walk_root = NULL;
	}
	pthread_mutex_unlock(&s->hub.lock);
}

static void run_posted(struct nfssrc *s)
{
	struct fifo todo = {0}, granted = {0};
	struct nread *nr;

	conns_phase(s);
	nfsread_seq_kick(&s->rd);
	take_posted(s, &todo, &granted);
	while ((nr = fifo_pop(&granted)))
		nfsread_granted(nr);
	while ((nr = fifo_pop(&todo)))
		nfsread_start(nr);
	nfsread_seq_kick(&s->rd);
	nfswalk_start_dirs(&s->wk);
	nfswalk_check_end(&s->wk);
}

static void poll_and_service(struct nfssrc *s)
{
	int n = s->conns.n;
	struct pollfd pfd[n + 1];
	uint64_t junk;

	nfsconn_poll_fds(&s->conns, pfd);
	pfd[n] = (struct pollfd){.fd = s->hub.efd, .events = POLLIN};
	if (poll(pfd, (nfds_t)n + 1, POLL_MS) < 0 && errno != EINTR)
		return;
	if (pfd[n].revents & POLLIN) {
		ssize_t got = read(s->hub.efd, &junk, sizeof(junk));

		(void)got;
	}
	/* revents 0 too: libnfs runs its RPC timeouts from nfs_service */
	for (int i = 0; i < n; i++) {
		if (!s->conns.c[i].nfs)
			continue; /* DOWN: its failed reads wait for it */
		nfsread_judge(&s->conns.c[i], nfsconn_service(&s->conns, i, pfd[i].revents));
	}
}

static bool loop_quit(struct nfssrc *s)
{
	bool q;

	pthread_mutex_lock(&s->hub.lock);
	q = s->hub.quit;
	pthread_mutex_unlock(&s->hub.lock);
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

/* ---- open ---- */

/* Gives the reads and the walk their views of s. */
static void views_init(struct nfssrc *s)
{
	s->rd = (struct nfsread_env){.conns = &s->conns,
				     .hub = &s->hub,
				     .io = &nfsread_libnfs,
				     .version = s->url.version,
				     .budget = s->opts.budget,
				     .lat = s->opts.lat};
	s->wk = (struct nfswalk_env){.conns = &s->conns,
				     .hub = &s->hub,
				     .version = s->url.version,
				     .export_path = s->url.path,
				     .base = s->base,
				     .walkers = s->opts.walkers,
				     .lat = s->opts.lat};
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

int nfssrc_open(const char *url, const struct source_opts *opts, struct nfssrc **out,
		struct vherr *err)
{
	struct nfssrc *s = calloc(1, sizeof(*s));
	int timeout_ms = opts->nfs.timeout_ms > 0 ? opts->nfs.timeout_ms : DEFAULT_TIMEOUT_MS;
	int nconns = opts->nfs.connections > 0 ? opts->nfs.connections : DEFAULT_CONNECTIONS;
	int rc;

	*out = NULL;
	if (!s)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	pthread_mutex_init(&s->hub.lock, NULL);
	pthread_cond_init(&s->hub.cond, NULL);
	s->hub.efd = -1;
	s->opts = *opts;
	if (s->opts.walkers < 1)
		s->opts.walkers = 1;
	if (s->opts.io_depth < 1)
		s->opts.io_depth = 1;
	if ((rc = nfsurl_parse(url, &s->url, err)) < 0)
		goto fail;
	s->base = make_base(&s->url);
	s->hub.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!s->base || s->hub.efd < 0) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
		goto fail;
	}
	if ((rc = nfsconn_open(&s->conns, &s->url, s->base, s, nconns, timeout_ms, err)) < 0)
		goto fail;
	views_init(s);
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
		if (atomic_load(&s->hub.stopflag))
			return false;
		if (emit(ctx, &e) == SOURCE_STOP)
			return false;
	}
	return true;
}

/* The walk's first work item: the export's root, with its handle for v3 (v4 looks it up
 * on the loop); NULL if out of memory. */
static struct dirwork *walk_root_new(struct nfssrc *s)
{
	const struct rootfh_layout *fh =
	    s->url.version == 3 ? (const void *)nfs_get_rootfh(s->conns.c[0].nfs) : NULL;

	return nfswalk_dir_new(&s->wk, "", "", fh ? fh->val : NULL, fh ? (uint32_t)fh->len : 0);
}

int nfssrc_walk(struct nfssrc *s, source_emit_fn emit, void *ctx,
		void (*on_error)(void *ctx, const char *relpath, const struct vherr *err),
		struct vherr *err)
{
	struct dirwork *root = walk_root_new(s);
	struct page *p;
	int rc;

	if (!root)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	pthread_mutex_lock(&s->hub.lock);
	s->hub.walk_root = root;
	s->hub.walk_running = true;
	nfshub_wake(&s->hub);
	for (;;) {
		while (!s->hub.pages.head && s->hub.walk_running)
			pthread_cond_wait(&s->hub.cond, &s->hub.lock);
		p = fifo_pop(&s->hub.pages);
		if (!p)
			break;
		pthread_mutex_unlock(&s->hub.lock);
		if (!atomic_load(&s->hub.stopflag) && !walk_page(s, p, emit, ctx, on_error))
			nfssrc_stop(s);
		nfswalk_page_free(p);
		nfshub_wake(&s->hub); /* a page slot is free */
		pthread_mutex_lock(&s->hub.lock);
	}
	rc = s->hub.walk_rc;
	if (rc < 0)
		*err = s->hub.walk_err;
	pthread_mutex_unlock(&s->hub.lock);
	return rc;
}

int nfssrc_submit(struct nfssrc *s, struct source_read *req)
{
	size_t n = strlen(req->relpath);
	struct nread *nr = calloc(1, sizeof(*nr) + n + 2);

	if (!nr)
		return -VHERR_NOMEM;
	nr->env = &s->rd;
	nr->req = req;
	nr->path[0] = '/';
	memcpy(nr->path + 1, req->relpath, n + 1);
	req->status = SOURCE_READ_FAILED;
	req->data = NULL;
	req->len = req->size = req->charged = 0;
	req->mtime_ns = 0;
	vherr_clear(&req->err);
	pthread_mutex_lock(&s->hub.lock);
	while (s->hub.reads >= s->opts.io_depth && !s->hub.cancelled)
		pthread_cond_wait(&s->hub.cond, &s->hub.lock);
	if (s->hub.cancelled) {
		pthread_mutex_unlock(&s->hub.lock);
		free(nr);
		return -VHERR_CANCELLED;
	}
	s->hub.reads++;
	fifo_push(&s->hub.posted, nr);
	nfshub_wake(&s->hub);
	pthread_mutex_unlock(&s->hub.lock);
	return 0;
}

void nfssrc_stop(struct nfssrc *s)
{
	pthread_mutex_lock(&s->hub.lock);
	s->hub.walk_stop = true;
	pthread_mutex_unlock(&s->hub.lock);
	atomic_store(&s->hub.stopflag, true);
	nfshub_wake(&s->hub);
}

void nfssrc_cancel(struct nfssrc *s)
{
	pthread_mutex_lock(&s->hub.lock);
	s->hub.walk_stop = true;
	s->hub.cancelled = true;
	atomic_store(&s->hub.stopflag, true);
	pthread_cond_broadcast(&s->hub.cond);
	pthread_mutex_unlock(&s->hub.lock);
	if (s->opts.budget)
		budget_cancel(s->opts.budget);
	nfshub_wake(&s->hub);
}

char *nfssrc_location(const struct nfssrc *s, const char *relpath, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", s->base, relpath);
	return buf;
}

static void stop_threads(struct nfssrc *s)
{
	pthread_mutex_lock(&s->hub.lock);
	s->hub.quit = true;
	pthread_cond_broadcast(&s->hub.cond);
	pthread_mutex_unlock(&s->hub.lock);
	nfshub_wake(&s->hub);
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
	nfsconn_close(&s->conns);
	while ((w = fifo_pop(&s->wk.dirs)))
		nfswalk_dir_free(w);
	nfswalk_dir_free(s->hub.walk_root);
	while (s->hub.pages.head)
		nfswalk_page_free(fifo_pop(&s->hub.pages));
	if (s->hub.efd >= 0)
		close(s->hub.efd);
	free(s->base);
	nfsurl_release(&s->url);
	pthread_cond_destroy(&s->hub.cond);
	pthread_mutex_destroy(&s->hub.lock);
	free(s);
}
