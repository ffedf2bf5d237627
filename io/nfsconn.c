/* nfsconn: open, pick, drop and remount the connections of the nfs:// source (see
 * nfsconn.h). */
#include "io/nfsconn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

#include "common/vhclock.h"
#include "io/nfserr.h"

#define POLL_MS	       100
#define BACKOFF_MIN_MS 100 /* first wait before remounting a dropped connection */
#define BACKOFF_MAX_MS 1000

/* ---- picking and retrying ---- */

int nfsconn_pick(struct nfsconns *cs)
{
	int best = -1;

	for (int k = 0; k < cs->n; k++) {
		int i = (cs->next + k) % cs->n;

		if (nfsconn_up(cs, i) &&
		    (best < 0 || cs->c[i].busy + cs->c[i].seq_wait.n <
				     cs->c[best].busy + cs->c[best].seq_wait.n))
			best = i;
	}
	cs->next = (cs->next + 1) % cs->n;
	return best;
}

bool nfsconn_retry(struct nfsconns *cs, int i, int *attempts, bool cancelled)
{
	cs->c[i].broken = true;
	if (cs->lost || cancelled)
		return false;
	return ++*attempts <= NFSCONN_RETRIES;
}

/* ---- mounting one connection ---- */

static void on_mounted(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct conn *c = priv;

	(void)nfs;
	c->mount_done = 1;
	c->mount_rc = err;
	if (err < 0)
		nfserr_one_line(data, c->mount_msg, sizeof(c->mount_msg));
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

/* Creates c's context and starts its mount (on_mounted says when it is done). */
static int conn_init(struct nfsconns *cs, struct conn *c, struct vherr *err)
{
	const struct nfsurl *u = cs->url;

	c->nfs = nfs_init_context();
	if (!c->nfs)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK,
				 "cannot create an nfs context");
	if (nfs_set_version(c->nfs, u->version) < 0 || set_ports(c->nfs, u) < 0)
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_WALK, "cannot configure '%s': %s",
				 cs->base, nfs_get_error(c->nfs));
	if (u->version == 4) {
		/* one NFSv4 client per connection: a shared name makes the server drop the
		 * earlier connections' client ids (SETCLIENTID_CONFIRM: STALE_CLIENTID) */
		char name[96];

		snprintf(name, sizeof(name), "vhprep.%ld.%d.%p", (long)getpid(),
			 (int)(c - cs->c), cs->owner);
		nfs4_set_client_name(c->nfs, name);
	}
	if (u->uid >= 0)
		nfs_set_uid(c->nfs, (int)u->uid);
	if (u->gid >= 0)
		nfs_set_gid(c->nfs, (int)u->gid);
	nfs_set_timeout(c->nfs, (cs->timeout_ms + 999) / 1000 * 1000);
	/* our own reconnect: requests retried on other connections, backoff, a timeout */
	nfs_set_autoreconnect(c->nfs, 0);
	if (nfs_mount_async(c->nfs, u->host, u->path, on_mounted, c) != 0)
		return vherr_set(err, VHERR_NET, VHSTAGE_WALK, "cannot mount '%s': %s",
				 cs->base, nfs_get_error(c->nfs));
	return 0;
}

/* ---- open: connect and mount every connection, bounded by the timeout ---- */

/* Returns the first failed connection's rc with err set, or 0. */
static int mount_result(struct nfsconns *cs, struct vherr *err)
{
	for (int i = 0; i < cs->n; i++) {
		struct conn *c = &cs->c[i];

		/* libnfs 4.0 says "Socket failed with POLLHUP" for a refused connection */
		if (c->mount_rc < 0 && strstr(c->mount_msg, "POLLHUP"))
			return vherr_set(
			    err, VHERR_NET, VHSTAGE_WALK,
			    "cannot mount '%s': connection refused or closed by the "
			    "server (wrong host, port or version?)",
			    cs->base);
		if (c->mount_rc < 0)
			return vherr_set(err, nfserr_code_of(-c->mount_rc), VHSTAGE_WALK,
					 "cannot mount '%s': %s", cs->base, c->mount_msg);
	}
	return 0;
}

/* Services the connections still mounting for revents (pfd); a failed service is a
 * refused connection. */
static void mount_service(struct nfsconns *cs, const struct pollfd *pfd)
{
	for (int i = 0; i < cs->n; i++) {
		struct conn *c = &cs->c[i];

		if (c->mount_done || nfs_service(c->nfs, pfd[i].revents) >= 0)
			continue;
		c->mount_done = 1;
		c->mount_rc = -ECONNREFUSED;
		nfserr_one_line(nfs_get_error(c->nfs), c->mount_msg, sizeof(c->mount_msg));
	}
}

static int mount_wait(struct nfsconns *cs, struct vherr *err)
{
	uint64_t deadline = vhclock_ms() + (uint64_t)cs->timeout_ms;
	struct pollfd pfd[cs->n];
	int pending;

	for (;;) {
		pending = 0;
		for (int i = 0; i < cs->n; i++) {
			struct conn *c = &cs->c[i];

			pfd[i] = (struct pollfd){.fd = c->mount_done ? -1 : nfs_get_fd(c->nfs),
						 .events = (short)nfs_which_events(c->nfs)};
			pending += !c->mount_done;
		}
		if (!pending)
			return mount_result(cs, err);
		if (vhclock_ms() >= deadline)
			return vherr_set(err, VHERR_TIMEOUT, VHSTAGE_WALK,
					 "cannot mount '%s': no answer within %d ms", cs->base,
					 cs->timeout_ms);
		if (poll(pfd, (nfds_t)cs->n, POLL_MS) < 0 && errno != EINTR)
			return vherr_errno(err, errno, VHSTAGE_WALK, "poll");
		mount_service(cs, pfd);
	}
}

/* Checks that the root is a directory (one synchronous GETATTR, bounded by the timeout). */
static int check_root(struct nfsconns *cs, struct vherr *err)
{
	struct nfs_stat_64 st;
	int rc = nfs_stat64(cs->c[0].nfs, "/", &st);
	char line[256];

	if (rc < 0)
		return vherr_set(
		    err, nfserr_code_of(-rc), VHSTAGE_WALK, "cannot open source '%s': %s",
		    cs->base, nfserr_one_line(nfs_get_error(cs->c[0].nfs), line, sizeof(line)));
	if (!S_ISDIR(st.nfs_mode))
		return vherr_set(err, VHERR_NOTDIR, VHSTAGE_WALK,
				 "cannot open source '%s': not a directory", cs->base);
	return 0;
}

int nfsconn_open(struct nfsconns *cs, const struct nfsurl *url, const char *base, void *owner,
		 int n, int timeout_ms, struct vherr *err)
{
	int rc;

	*cs = (struct nfsconns){
	    .url = url, .base = base, .owner = owner, .timeout_ms = timeout_ms};
	cs->c = calloc((size_t)n, sizeof(*cs->c));
	if (!cs->c)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	cs->n = n;
	for (int i = 0; i < n; i++) {
		cs->c[i].backoff_ms = BACKOFF_MIN_MS;
		if ((rc = conn_init(cs, &cs->c[i], err)) < 0)
			return rc;
	}
	if ((rc = mount_wait(cs, err)) < 0)
		return rc;
	return check_root(cs, err);
}

void nfsconn_close(struct nfsconns *cs)
{
	for (int i = 0; cs->c && i < cs->n; i++)
		if (cs->c[i].nfs)
			nfs_destroy_context(cs->c[i].nfs); /* cancels what is left */
	free(cs->c);
	cs->c = NULL;
	cs->n = 0;
}

/* ---- the loop's phase: drop, remount with backoff, or give up ---- */

/* Drops c: destroying its context completes each request still on it as cancelled
 * (each is retried elsewhere or later); v4 reads waiting to OPEN or CLOSE on it go to
 * *resume. The next remount is due after the backoff. */
static void conn_drop(struct conn *c, struct fifo *resume)
{
	uint64_t now = vhclock_ms();

	c->state = CONN_DOWN;
	if (!c->down_since)
		c->down_since = now;
	c->retry_at = now + (uint64_t)c->backoff_ms;
	c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
	fifo_splice(resume, &c->seq_wait);
	if (c->nfs)
		nfs_destroy_context(c->nfs);
	c->nfs = NULL;
	c->broken = false;
	c->busy = 0;
	c->seq_busy = false;
}

/* Starts mounting c again (MOUNTING), or schedules the next try. */
static void conn_remount(struct nfsconns *cs, struct conn *c, struct fifo *resume)
{
	struct vherr err;

	c->reconnects++;
	c->mount_done = 0;
	c->mount_rc = 0;
	if (conn_init(cs, c, &err) == 0) {
		c->state = CONN_MOUNTING;
		return;
	}
	conn_drop(c, resume);
}

/* Drops c if broken, settles its finished remount; returns whether it is UP. */
static bool conn_settle(struct conn *c, struct fifo *resume)
{
	if (c->state == CONN_UP && c->broken)
		conn_drop(c, resume);
	if (c->state == CONN_MOUNTING && c->mount_done) {
		if (c->mount_rc == 0) {
			c->state = CONN_UP;
			c->down_since = 0;
			c->backoff_ms = BACKOFF_MIN_MS;
		} else {
			conn_drop(c, resume);
		}
	}
	return c->state == CONN_UP;
}

/* None is UP and none may come back: one error for every request still to complete. */
static enum nfsconn_tick conns_lost(struct nfsconns *cs)
{
	int tries = 0;

	if (cs->lost)
		return NFSCONN_NONE_UP;
	for (int i = 0; i < cs->n; i++)
		tries += cs->c[i].reconnects;
	cs->lost = true;
	vherr_set(&cs->lost_err, VHERR_LOST, VHSTAGE_WALK,
		  "lost the connection to '%s': no connection for %.1f s (%d reconnects)",
		  cs->base, cs->timeout_ms / 1000.0, tries);
	return NFSCONN_LOST;
}

enum nfsconn_tick nfsconn_tick(struct nfsconns *cs, struct fifo *resume)
{
	uint64_t now = vhclock_ms();
	bool up = false, waiting = false;

	for (int i = 0; i < cs->n; i++)
		up |= conn_settle(&cs->c[i], resume);
	/* a connection down for longer than the timeout is tried again only while another
	 * one is UP (the server is there); with none UP, that is the end */
	for (int i = 0; i < cs->n; i++) {
		struct conn *c = &cs->c[i];
		bool in_time = now - c->down_since < (uint64_t)cs->timeout_ms;

		if (c->state == CONN_DOWN && now >= c->retry_at && (up || in_time))
			conn_remount(cs, c, resume);
		waiting |= c->state == CONN_MOUNTING || (c->state == CONN_DOWN && in_time);
	}
	if (!up && !waiting)
		return conns_lost(cs);
	return up ? NFSCONN_SOME_UP : NFSCONN_NONE_UP;
}

void nfsconn_poll_fds(const struct nfsconns *cs, struct pollfd *pfd)
{
	for (int i = 0; i < cs->n; i++) {
		struct nfs_context *nfs = cs->c[i].nfs;

		pfd[i].fd = nfs ? nfs_get_fd(nfs) : -1;
		pfd[i].events = nfs ? (short)nfs_which_events(nfs) : 0;
		pfd[i].revents = 0;
	}
}

bool nfsconn_service(struct nfsconns *cs, int i, short revents)
{
	struct conn *c = &cs->c[i];

	/* < 0 is a broken connection (autoreconnect is off): nfsconn_tick drops it */
	if (c->nfs && nfs_service(c->nfs, revents) < 0) {
		if (c->state == CONN_MOUNTING && !c->mount_done) {
			c->mount_done = 1;
			c->mount_rc = -ECONNREFUSED;
		} else if (c->state == CONN_UP) {
			c->broken = true;
		}
	}
	return c->broken;
}
