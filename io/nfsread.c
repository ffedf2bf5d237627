/* nfsread: the reads of the nfs:// source (see nfssrc.h). By handle (the listing gave
 * it, with size and mtime): the byte budget (on the budget thread), then raw READs, up
 * to HANDLE_CHUNKS in flight. By path (no hint, or the file changed since its listing):
 * open, fstat, the budget, pread chunks, close. Then the completion thread. A transport
 * failure sends a read back to start again (NFSCONN_RETRIES times). Loop thread. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>

#include "io/nfs3read.h"
#include "io/nfs4dir.h"
#include "io/nfs4rpc.h"
#include "io/nfs4read.h"
#include "io/nfsconn.h"
#include "io/nfserr.h"
#include "io/nfsint.h"

#define NFSREAD_CHUNK (16u << 20) /* one nfs_pread_async (split at readmax by libnfs) */

/* Exported by libnfs 4.0 (and later), declared only in its private header: frees a file
 * handle without a CLOSE, for files whose connection is gone. */
void nfs_free_nfsfh(struct nfsfh *nfsfh);

/* ---- the read's state ---- */

static const char *const state_names[] = {
#define NREAD_STATE_NAME(name, word) [NREAD_##name] = word,
    NREAD_STATE_LIST(NREAD_STATE_NAME)
#undef NREAD_STATE_NAME
};

const char *nfsread_state_name(enum nread_state st)
{
	return (unsigned)st < sizeof(state_names) / sizeof(state_names[0]) ? state_names[st]
									   : "?";
}

#define S(x) (1u << NREAD_##x)
/* The states each state may move to (staying is always allowed). */
static const unsigned next_states[] = {
    [NREAD_QUEUED] = S(BY_HANDLE) | S(BY_PATH_OPEN) | S(DONE),
    [NREAD_BY_HANDLE] = S(READING) | S(RETRYING) | S(DONE),
    [NREAD_BY_PATH_OPEN] =
	S(BY_HANDLE) | S(READING) | S(JUDGING) | S(RETRYING) | S(QUEUED) | S(DONE),
    [NREAD_READING] = S(JUDGING) | S(RETRYING) | S(BY_PATH_OPEN) | S(QUEUED) | S(DONE),
    [NREAD_JUDGING] = S(RETRYING) | S(DONE),
    [NREAD_RETRYING] = S(READING) | S(BY_HANDLE) | S(BY_PATH_OPEN) | S(QUEUED) | S(DONE),
    [NREAD_DONE] = 0,
};
#undef S

bool nfsread_transition_ok(enum nread_state from, enum nread_state st)
{
	if ((unsigned)from > NREAD_DONE || (unsigned)st > NREAD_DONE)
		return false;
	return from == st || (next_states[from] & (1u << st)) != 0;
}

/* The one place a read's state changes. A debug build checks the transition and, with
 * VHPREP_NFS_TRACE set in the environment, prints it on stderr. */
static void read_state_set(struct nread *nr, enum nread_state st)
{
#ifndef NDEBUG
	static int trace = -1;

	if (trace < 0)
		trace = getenv("VHPREP_NFS_TRACE") != NULL;
	if (trace && nr->state != st)
		fprintf(stderr, "vhprep: nfs read '%s': %s -> %s\n", nr->path + 1,
			nfsread_state_name(nr->state), nfsread_state_name(st));
	assert(nfsread_transition_ok(nr->state, st));
#endif
	nr->state = st;
}

/* ---- completing ---- */

/* Hands a finished read to the completion thread (any thread, lock not held). */
static void read_complete(struct nread *nr)
{
	struct nfshub *hub = nr->env->hub;

	read_state_set(nr, NREAD_DONE);
	if (nr->req->status != SOURCE_READ_OK)
		VH_FREE(nr->req->data);
	nfshub_push(hub, &hub->completed, nr);
}

static void read_fail(struct nread *nr, int errnum, const char *what, const char *msg)
{
	char line[256];
	struct source_read *req = nr->req;

	req->status = SOURCE_READ_FAILED;
	vherr_set(&req->err, nfserr_code_of(errnum), VHSTAGE_READ, "cannot %s '%s': %s", what,
		  req->relpath, nfserr_one_line(msg, line, sizeof(line)));
	if (errnum == ENOENT || errnum == ESTALE)
		req->err.code = VHERR_VANISHED;
}

static void read_cancel(struct nread *nr)
{
	nr->req->status = SOURCE_READ_FAILED;
	vherr_set(&nr->req->err, VHERR_CANCELLED, VHSTAGE_READ, NULL);
}

/* NFSv4.0 numbers the OPENs and CLOSEs of one open-owner (libnfs 4.0: one per context)
 * and libnfs 4.0 does not order them: concurrent OPENs on a context fail with
 * BAD_SEQID/BAD_STATEID. So for v4 one OPEN or CLOSE is in flight per connection and the
 * rest wait in conn.seq_wait; READs and GETATTRs stay parallel. v3 has no such state. */
static void seq_issue(struct nread *nr);

static void seq_submit(struct nread *nr, bool closing)
{
	struct conn *c = &nr->env->conns->c[nr->conn];

	if (!nfsconn_up(nr->env->conns, nr->conn)) { /* dropped: no CLOSE, OPEN elsewhere */
		if (closing) {
			nr->env->io->free_fh(nr->fh);
			nr->fh = NULL;
			read_complete(nr);
		} else {
			read_state_set(nr, NREAD_QUEUED);
			fifo_push(&nr->env->stalled, nr);
		}
		return;
	}
	if (!closing)
		read_state_set(nr, NREAD_BY_PATH_OPEN);
	nr->closing = closing;
	if (nr->env->version == 4) {
		fifo_push(&c->seq_wait, nr); /* nfsread_seq_kick sends it, from the loop */
		return;
	}
	seq_issue(nr);
}

/* The sequenced operation of connection c is over: the loop starts the next one (in
 * nfsread_seq_kick). Never from a callback: one may run while libnfs fails every request
 * of a broken connection, and a request queued on it then trips libnfs' assertion
 * (rpc_purge_all_pdus: !rpc->outqueue.head). */
static void seq_next(struct conn *c)
{
	c->seq_busy = false;
}

void nfsread_seq_kick(struct nfsread_env *env)
{
	struct nread *next;

	if (env->version != 4)
		return;
	for (int i = 0; i < env->conns->n; i++) {
		struct conn *c = &env->conns->c[i];

		if (!c->seq_busy && nfsconn_up(env->conns, i) &&
		    (next = fifo_pop(&c->seq_wait))) {
			c->seq_busy = true;
			seq_issue(next);
		}
	}
}

static void on_close(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nread *nr = priv;
	struct nfsread_env *env = nr->env;
	struct conn *c = &env->conns->c[nr->conn];

	(void)err, (void)nfs, (void)data;
	c->busy--;
	read_complete(nr);
	seq_next(c);
}

/* Closes the file (if open) and completes the read. */
static void read_finish(struct nread *nr)
{
	if (nr->fh)
		seq_submit(nr, true);
	else
		read_complete(nr);
}

static void read_next_chunk(struct nread *nr);

/* Forgets what a read took (its open file, budget, buffer, progress) so it can start
 * again from its OPEN. */
static void read_reset(struct nread *nr)
{
	struct source_read *req = nr->req;

	if (nr->fh)
		nr->env->io->free_fh(nr->fh);
	nr->fh = NULL;
	if (req->charged)
		budget_release(nr->env->budget, req->charged);
	req->charged = 0;
	VH_FREE(req->data);
	req->len = req->size = 0;
	req->status = SOURCE_READ_FAILED;
	vherr_clear(&req->err);
	nr->granted = nr->by_handle = nr->changed = nr->retry = false;
	nr->off = nr->issued = nr->end = 0;
}

/* Whether a libnfs failure message (may be NULL) is the transport's, not the server's:
 * libnfs 4.0 words them "RPC ERROR: ..." (connection lost), "Command was cancelled"
 * (context destroyed), "command timed out". */
static bool transport_message(const char *msg)
{
	return msg && (strstr(msg, "RPC ERROR") || strstr(msg, "cancelled") ||
		       strstr(msg, "timed out"));
}

/* Queues nr to start again from its OPEN (what it took forgotten) if attempts are left;
 * true then. */
static bool path_retry(struct nread *nr)
{
	if (!nfsconn_retry(nr->env->conns, nr->conn, &nr->attempts,
			   nfshub_cancelled(nr->env->hub)))
		return false;
	read_reset(nr);
	read_state_set(nr, NREAD_RETRYING);
	fifo_push(&nr->env->stalled, nr);
	return true;
}

/* A request of a read by path failed, its error already in nr->req->err. Whether the
 * server or the transport failed shows only after this round of nfs_service: libnfs
 * fails every request of a broken connection with whatever text, then returns < 0. So
 * unless it is plain already (connection not UP, or libnfs' transport wording), the
 * read waits in its connection's suspects for nfsread_judge. */
static void path_failed(struct nread *nr, const char *msg)
{
	struct conn *c = &nr->env->conns->c[nr->conn];

	if (!nfsconn_up(nr->env->conns, nr->conn) || transport_message(msg)) {
		if (!path_retry(nr))
			read_finish(nr);
		return;
	}
	read_state_set(nr, NREAD_JUDGING);
	fifo_push(&c->suspects, nr);
}

void nfsread_judge(struct conn *c, bool broken)
{
	struct nread *nr;

	while ((nr = fifo_pop(&c->suspects)))
		if (!broken || !path_retry(nr))
			read_finish(nr);
}

/* libnfs 4.0's pread reports a server error as -EFAULT with the reply, not a message:
 * the reason is only in nfs_get_error ("NFS: Read failed with NFS3ERR_STALE(-116)").
 * A stale handle or a missing file there means the file vanished after its OPEN. */
static void read_fail_pread(struct nread *nr, struct nfs_context *nfs, int err, void *data)
{
	const char *msg = err == -EFAULT ? nr->env->io->error(nfs) : data;

	if (err == -EFAULT && msg && (strstr(msg, "ERR_STALE") || strstr(msg, "ERR_NOENT")))
		err = -ESTALE;
	read_fail(nr, -err, "read", msg);
}

static void on_pread(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nread *nr = priv;
	struct source_read *req = nr->req;

	nr->env->conns->c[nr->conn].busy--;
	oplat_record(nr->env->lat, OPLAT_READ, oplat_now() - nr->t0);
	if (err < 0) {
		read_fail_pread(nr, nfs, err, data);
		path_failed(nr, err == -EFAULT ? NULL : data); /* EFAULT: data is no text */
		return;
	}
	if (nfshub_cancelled(nr->env->hub)) {
		read_cancel(nr);
		read_finish(nr);
		return;
	}
	(void)nfs;
	if ((uint64_t)err > req->size - nr->off)
		err = (int)(req->size - nr->off);
	memcpy(req->data + nr->off, data, (size_t)err);
	nr->off += (uint64_t)err;
	req->len = nr->off;
	if (err == 0 ||
	    nr->off == req->size) { /* done, or the file shrank: keep what is there */
		req->status = SOURCE_READ_OK;
		read_finish(nr);
		return;
	}
	read_next_chunk(nr);
}

static void read_next_chunk(struct nread *nr)
{
	struct conn *c = &nr->env->conns->c[nr->conn];
	uint64_t n = nr->req->size - nr->off;

	if (n > NFSREAD_CHUNK)
		n = NFSREAD_CHUNK;
	c->busy++;
	nr->t0 = oplat_now();
	if (nr->env->io->pread(c->nfs, nr->fh, nr->off, n, on_pread, nr) != 0) {
		c->busy--;
		read_fail(nr, EIO, "read", nr->env->io->error(c->nfs));
		read_finish(nr);
	}
}

/* Sets nr's error to the source's loss (without completing it). */
static void nfsread_fail_lost(struct nread *nr)
{
	nr->req->status = SOURCE_READ_FAILED;
	nr->req->err = nr->env->conns->lost_err;
	nr->req->err.stage = VHSTAGE_READ;
}

/* ---- reads by handle: the listing's handle, size and mtime; raw READs, no OPEN ---- */

#define HANDLE_CHUNKS 4 /* READs in flight per file */

/* One READ of a read by handle. */
struct rchunk {
	struct nread *nr;
	uint64_t off;
	uint32_t len;
	uint64_t t0;
};

static void handle_issue(struct nread *nr);
static void handle_restart(struct nread *nr);
static int handle_send(struct nread *nr, struct rchunk *ck);

/* Gives nr an UP connection; false if there is none (nr waits in env->stalled) or the
 * source is lost (nr is completed as lost). */
static bool take_conn(struct nread *nr)
{
	if (nr->env->conns->lost) {
		nfsread_lost(nr);
		return false;
	}
	if ((nr->conn = nfsconn_pick(nr->env->conns)) < 0) {
		fifo_push(&nr->env->stalled, nr);
		return false;
	}
	return true;
}

/* Reads nr again from its first byte, keeping its budget and buffer, on a connection
 * that is UP (or waits in env->stalled for one). */
static void handle_restart(struct nread *nr)
{
	read_state_set(nr, NREAD_RETRYING);
	nr->retry = false;
	nr->changed = false;
	nr->issued = 0;
	nr->end = nr->req->size;
	if (take_conn(nr))
		handle_issue(nr);
}

/* Every READ of nr is back: completes it, or starts it again by path if the file
 * changed since its listing (the budget taken for the listed size is given back). */
static void handle_done(struct nread *nr)
{
	struct source_read *req = nr->req;

	if (nr->changed && !req->err.code) {
		read_reset(nr); /* by path from here on: read_reset clears by_handle */
		seq_submit(nr, false);
		return;
	}
	if (!req->err.code) {
		req->len = nr->end < req->size ? nr->end : req->size;
		req->status = SOURCE_READ_OK;
	}
	read_complete(nr);
}

/* A READ failed in transport: nr is read again once its READs are back (handle_next),
 * or fails for good. */
static void chunk_transport_failed(struct nread *nr, const struct nfsread_reply *d)
{
	struct nfsread_env *env = nr->env;

	if (nfsconn_retry(env->conns, nr->conn, &nr->attempts, nfshub_cancelled(env->hub)))
		nr->retry = true;
	else if (env->conns->lost)
		nfsread_fail_lost(nr);
	else
		read_fail(nr, d->errnum, "read", d->msg);
}

/* Copies the bytes of a READ that succeeded; notes a file that changed or shrank since
 * its listing. Returns true if the rest of a short READ went out in ck. */
static bool chunk_copy(struct rchunk *ck, const struct nfsread_reply *d)
{
	struct nread *nr = ck->nr;
	struct source_read *req = nr->req;
	uint32_t n = d->n < ck->len ? d->n : ck->len;

	memcpy(req->data + ck->off, d->data, n);
	if (d->have_attrs && (d->size != req->size || d->mtime_ns != req->mtime_ns))
		nr->changed = true; /* not the file listed: read it again by path */
	if (n == ck->len)
		return false;
	if (d->eof) {
		if (ck->off + n < nr->end)
			nr->end = ck->off + n; /* the file shrank */
		return false;
	}
	ck->off += n; /* a short READ: ask for the rest */
	ck->len -= n;
	if (nfshub_cancelled(nr->env->hub)) {
		read_cancel(nr);
		return false;
	}
	return handle_send(nr, ck) == 0;
}

/* What one READ's outcome means for its file. Returns true if ck went out again. */
static bool chunk_take(struct rchunk *ck, const struct nfsread_reply *d)
{
	struct nread *nr = ck->nr;

	if (nr->req->err.code)
		return false; /* an earlier READ of this file failed: nothing more to do */
	if (d->transport)
		chunk_transport_failed(nr, d);
	else if (d->errnum)
		read_fail(nr, d->errnum, "read", d->msg);
	else if (d->needs_open)
		nr->changed = true; /* handle_done reads it by path, with an OPEN */
	else
		return chunk_copy(ck, d);
	return false;
}

/* What the file does next once one of its READs is back: more READs, or, once none is
 * in flight, start again (retry), reread by path (changed), or complete. */
static void handle_next(struct nread *nr)
{
	struct source_read *req = nr->req;

	if (nfshub_cancelled(nr->env->hub) && !req->err.code)
		read_cancel(nr);
	if (!req->err.code && !nr->changed && !nr->retry)
		handle_issue(nr); /* more READs, or the end once none is in flight */
	else if (nr->chunks == 0 && nr->retry && !req->err.code)
		handle_restart(nr);
	else if (nr->chunks == 0)
		handle_done(nr);
}

void nfsread_chunk_reply(void *chunk, const struct nfsread_reply *d)
{
	struct rchunk *ck = chunk;
	struct nread *nr = ck->nr;

	nr->chunks--;
	nr->env->conns->c[nr->conn].busy--;
	oplat_record(nr->env->lat, OPLAT_READ, oplat_now() - ck->t0);
	if (chunk_take(ck, d))
		return;
	free(ck);
	handle_next(nr);
}

static void on_read3(int rc, const struct nfs3read_result *res, const char *msg, void *priv)
{
	struct nfsread_reply d = {0};

	if (rc < 0) {
		d.transport = nfs3read_rc_is_transport(rc);
		d.errnum = d.transport && rc != -ETIMEDOUT ? EIO : -rc;
		d.msg = msg;
	} else {
		d.data = res->data;
		d.n = res->len;
		d.eof = res->eof;
		d.have_attrs = res->have_attrs;
		d.size = res->size;
		d.mtime_ns = res->mtime_ns;
	}
	nfsread_chunk_reply(priv, &d);
}

static void on_read4(int rc, const struct nfs4read_result *res, const char *msg, void *priv)
{
	struct nfsread_reply d = {0};

	if (rc == NFS4READ_NEEDS_OPEN) {
		d.needs_open = true;
	} else if (rc < 0) {
		d.errnum = -rc;
		d.transport = nfs4rpc_rc_is_transport(rc);
		d.msg = msg;
	} else {
		d.data = res->data;
		d.n = res->len;
		d.eof = res->eof;
		d.have_attrs = res->have_attrs;
		d.size = res->size;
		d.mtime_ns = res->mtime_sec * 1000000000 + res->mtime_nsec;
	}
	nfsread_chunk_reply(priv, &d);
}

/* Sends the READ of ck; 0, or -1 with the read failed (ck is then the caller's). */
static int handle_send(struct nread *nr, struct rchunk *ck)
{
	struct conn *c = &nr->env->conns->c[nr->conn];

	ck->t0 = oplat_now();
	if (nr->env->io->read_fh(nr->env, nr->conn, nr->req->hint.handle,
				 nr->req->hint.handle_len, ck->off, ck->len, ck) != 0) {
		read_fail(nr, EIO, "read", nr->env->io->error(c->nfs));
		return -1;
	}
	c->busy++;
	nr->chunks++;
	return 0;
}

/* Keeps up to HANDLE_CHUNKS READs of at most readmax bytes in flight for nr. */
static void handle_issue(struct nread *nr)
{
	struct conn *c = &nr->env->conns->c[nr->conn];
	uint64_t max;

	if (!nfsconn_up(nr->env->conns, nr->conn)) { /* dropped while this file waited */
		nr->retry = true;
		if (nr->chunks == 0)
			handle_restart(nr);
		return;
	}
	read_state_set(nr, NREAD_READING);
	max = nr->env->io->readmax(c->nfs);
	if (max == 0 || max > NFSREAD_CHUNK)
		max = NFSREAD_CHUNK;
	while (nr->chunks < HANDLE_CHUNKS && nr->issued < nr->end && !nr->req->err.code) {
		struct rchunk *ck = calloc(1, sizeof(*ck));
		uint64_t n = nr->end - nr->issued;

		if (!ck) {
			read_fail(nr, ENOMEM, "read", "out of memory");
			break;
		}
		ck->nr = nr;
		ck->off = nr->issued;
		ck->len = (uint32_t)(n < max ? n : max);
		if (handle_send(nr, ck) < 0) {
			free(ck);
			break;
		}
		nr->issued += ck->len;
	}
	if (nr->chunks == 0)
		handle_done(nr);
}

/* The budget is held (or cancelled): read the bytes. */
/* Gives a granted read its buffer; false if there is nothing to read (cancelled, no
 * memory, an empty file): then nr is finished. */
static bool granted_buffer(struct nread *nr)
{
	struct source_read *req = nr->req;

	if (nr->cancelled || nfshub_cancelled(nr->env->hub)) {
		read_cancel(nr);
		read_finish(nr);
		return false;
	}
	req->data = malloc(req->size ? req->size : 1);
	if (!req->data) {
		req->status = SOURCE_READ_FAILED;
		vherr_set(&req->err, VHERR_NOMEM, VHSTAGE_READ, NULL);
		read_finish(nr);
		return false;
	}
	if (req->size == 0) {
		req->status = SOURCE_READ_OK;
		read_finish(nr);
		return false;
	}
	nr->granted = true;
	return true;
}

void nfsread_granted(struct nread *nr)
{
	if (!granted_buffer(nr))
		return;
	if (nr->env->conns->lost) {
		nfsread_lost(nr);
	} else if (nr->by_handle) {
		handle_issue(nr);
	} else if (!nfsconn_up(nr->env->conns, nr->conn)) { /* dropped while it waited */
		read_reset(nr);				    /* open it again */
		read_state_set(nr, NREAD_RETRYING);
		fifo_push(&nr->env->stalled, nr);
	} else {
		read_state_set(nr, NREAD_READING);
		read_next_chunk(nr);
	}
}

void nfsread_resume(struct nread *nr)
{
	if (nr->closing && nr->fh) { /* read whole; only its CLOSE could not go out */
		nr->env->io->free_fh(nr->fh);
		nr->fh = NULL;
		read_complete(nr);
		return;
	}
	if (nr->state != NREAD_QUEUED) /* not a first start: a dropped connection's */
		read_state_set(nr, NREAD_RETRYING);
	if (nr->env->conns->lost)
		nfsread_lost(nr);
	else if (nr->granted && nr->by_handle)
		handle_restart(nr);
	else
		nfsread_start(nr);
}

void nfsread_lost(struct nread *nr)
{
	nfsread_fail_lost(nr);
	read_finish(nr);
}

/* req->size is known: skips a file outside the size bounds, else takes the budget (on the
 * budget thread, which hands nr back to nfsread_granted through the loop). */
static void want_budget(struct nread *nr)
{
	struct nfsread_env *env = nr->env;
	struct source_read *req = nr->req;

	if (!source_read_admit(req)) {
		read_finish(nr);
		return;
	}
	if (!env->budget) {
		nfsread_granted(nr);
		return;
	}
	nfshub_push(env->hub, &env->hub->want_budget, nr);
}

static void on_fstat(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nread *nr = priv;
	struct nfsread_env *env = nr->env;
	struct source_read *req = nr->req;
	const struct nfs_stat_64 *st = data;

	(void)nfs;
	env->conns->c[nr->conn].busy--;
	if (err < 0) {
		read_fail(nr, -err, "stat", data);
		path_failed(nr, data);
		return;
	}
	if (!S_ISREG(st->nfs_mode)) {
		req->status = SOURCE_READ_FAILED;
		vherr_set(&req->err, VHERR_NOTFILE, VHSTAGE_READ, "'%s' is not a regular file",
			  req->relpath);
		read_finish(nr);
		return;
	}
	req->size = st->nfs_size;
	req->mtime_ns = (int64_t)st->nfs_mtime * 1000000000 + (int64_t)st->nfs_mtime_nsec;
	want_budget(nr);
}

static void on_open(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nread *nr = priv;
	struct nfsread_env *env = nr->env;
	struct conn *c = &env->conns->c[nr->conn];

	c->busy--;
	oplat_record(env->lat, OPLAT_OPEN, oplat_now() - nr->t0);
	if (err < 0) {
		read_fail(nr, -err, "open", data);
		path_failed(nr, data);
	} else {
		nr->fh = data;
		c->busy++;
		if (nr->env->io->fstat(nfs, nr->fh, on_fstat, nr) != 0) {
			c->busy--;
			read_fail(nr, EIO, "stat", nr->env->io->error(nfs));
			read_finish(nr);
		}
	}
	seq_next(c);
}

static void seq_issue(struct nread *nr)
{
	struct nfsread_env *env = nr->env;
	struct conn *c = &env->conns->c[nr->conn];
	int rc;

	c->busy++;
	nr->t0 = oplat_now();
	if (nr->closing)
		rc = nr->env->io->close(c->nfs, nr->fh, on_close, nr);
	else
		rc = nr->env->io->open(c->nfs, nr->path, O_RDONLY, on_open, nr);
	if (rc == 0)
		return;
	c->busy--;
	if (!nr->closing)
		read_fail(nr, EIO, "open", nr->env->io->error(c->nfs));
	read_complete(nr);
	seq_next(c);
}

void nfsread_start(struct nread *nr)
{
	const struct source_hint *h = &nr->req->hint;

	if (nfshub_cancelled(nr->env->hub)) {
		read_cancel(nr);
		read_complete(nr);
		return;
	}
	if (!take_conn(nr))
		return;
	read_reset(nr); /* a read started again after a dropped connection */
	if (h->handle && h->has_attrs) {
		read_state_set(nr, NREAD_BY_HANDLE);
		nr->by_handle = true;
		nr->req->size = nr->end = h->size;
		nr->req->mtime_ns = h->mtime_ns;
		want_budget(nr);
		return;
	}
	seq_submit(nr, false);
}

/* ---- the libnfs transport ---- */

static int libnfs_read_fh(struct nfsread_env *env, int conn, const char *fh, uint32_t fhlen,
			  uint64_t off, uint32_t count, void *chunk)
{
	struct rpc_context *rpc = nfs_get_rpc_context(env->conns->c[conn].nfs);

	return env->version == 4 ? nfs4read_read(rpc, fh, fhlen, off, count, on_read4, chunk)
				 : nfs3read_read(rpc, fh, fhlen, off, count, on_read3, chunk);
}

const struct nfsread_io nfsread_libnfs = {
    .read_fh = libnfs_read_fh,
    .readmax = nfs_get_readmax,
    .open = nfs_open_async,
    .fstat = nfs_fstat64_async,
    .pread = nfs_pread_async,
    .close = nfs_close_async,
    .error = nfs_get_error,
    .free_fh = nfs_free_nfsfh,
};
