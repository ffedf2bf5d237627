/* nfsread: the reads of the nfs:// source (see nfssrc.h). By handle (the listing gave
 * it, with size and mtime): the byte budget (on the budget thread), then raw READs, up
 * to HANDLE_CHUNKS in flight. By path (no hint, or the file changed since its listing):
 * open, fstat, the budget, pread chunks, close. Then the completion thread. A transport
 * failure sends a read back to start again (NFS_RETRIES times). Loop thread. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/nfs4dir.h"
#include "io/nfs4read.h"
#include "io/nfsint.h"

/* Exported by libnfs 4.0 (and later), declared only in its private header: frees a file
 * handle without a CLOSE, for files whose connection is gone. */
void nfs_free_nfsfh(struct nfsfh *nfsfh);

/* Hands a finished read to the completion thread (any thread, lock not held). */
static void read_complete(struct nread *nr)
{
	struct nfssrc *s = nr->s;

	if (nr->req->status != SOURCE_READ_OK)
		VH_FREE(nr->req->data);
	pthread_mutex_lock(&s->lock);
	fifo_push(&s->completed, nr);
	nfssrc_broadcast(s);
	pthread_mutex_unlock(&s->lock);
}

static void read_fail(struct nread *nr, int errnum, const char *what, const char *msg)
{
	char line[256];
	struct source_read *req = nr->req;

	req->status = SOURCE_READ_FAILED;
	vherr_set(&req->err, nfssrc_code_of(errnum), VHSTAGE_READ, "cannot %s '%s': %s", what,
		  req->relpath, nfssrc_one_line(msg, line, sizeof(line)));
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
	struct conn *c = &nr->s->conns[nr->conn];

	if (!nfssrc_conn_up(nr->s, nr->conn)) { /* dropped: no CLOSE, OPEN elsewhere */
		if (closing) {
			nfs_free_nfsfh(nr->fh);
			nr->fh = NULL;
			read_complete(nr);
		} else {
			fifo_push(&nr->s->stalled, nr);
		}
		return;
	}
	nr->closing = closing;
	if (nr->s->url.version == 4) {
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

void nfsread_seq_kick(struct nfssrc *s)
{
	struct nread *next;

	if (s->url.version != 4)
		return;
	for (int i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];

		if (!c->seq_busy && nfssrc_conn_up(s, i) && (next = fifo_pop(&c->seq_wait))) {
			c->seq_busy = true;
			seq_issue(next);
		}
	}
}

static void on_close(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nread *nr = priv;
	struct nfssrc *s = nr->s;
	struct conn *c = &s->conns[nr->conn];

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
		nfs_free_nfsfh(nr->fh);
	nr->fh = NULL;
	if (req->charged)
		budget_release(nr->s->opts.budget, req->charged);
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
	if (!nfssrc_retry(nr->s, nr->conn, &nr->attempts))
		return false;
	read_reset(nr);
	fifo_push(&nr->s->stalled, nr);
	return true;
}

/* A request of a read by path failed, its error already in nr->req->err. Whether the
 * server or the transport failed shows only after this round of nfs_service: libnfs
 * fails every request of a broken connection with whatever text, then returns < 0. So
 * unless it is plain already (connection not UP, or libnfs' transport wording), the
 * read waits in its connection's suspects for nfsread_judge. */
static void path_failed(struct nread *nr, const char *msg)
{
	struct conn *c = &nr->s->conns[nr->conn];

	if (!nfssrc_conn_up(nr->s, nr->conn) || transport_message(msg)) {
		if (!path_retry(nr))
			read_finish(nr);
		return;
	}
	fifo_push(&c->suspects, nr);
}

void nfsread_judge(struct nfssrc *s, struct conn *c, bool broken)
{
	struct nread *nr;

	while ((nr = fifo_pop(&c->suspects)))
		if (!broken || !path_retry(nr))
			read_finish(nr);
	(void)s;
}

/* libnfs 4.0's pread reports a server error as -EFAULT with the reply, not a message:
 * the reason is only in nfs_get_error ("NFS: Read failed with NFS3ERR_STALE(-116)").
 * A stale handle or a missing file there means the file vanished after its OPEN. */
static void read_fail_pread(struct nread *nr, struct nfs_context *nfs, int err, void *data)
{
	const char *msg = err == -EFAULT ? nfs_get_error(nfs) : data;

	if (err == -EFAULT && msg && (strstr(msg, "ERR_STALE") || strstr(msg, "ERR_NOENT")))
		err = -ESTALE;
	read_fail(nr, -err, "read", msg);
}

static void on_pread(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nread *nr = priv;
	struct source_read *req = nr->req;

	nr->s->conns[nr->conn].busy--;
	oplat_record(nr->s->opts.lat, OPLAT_READ, oplat_now() - nr->t0);
	if (err < 0) {
		read_fail_pread(nr, nfs, err, data);
		path_failed(nr, err == -EFAULT ? NULL : data); /* EFAULT: data is no text */
		return;
	}
	if (nfssrc_cancelled(nr->s)) {
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
	struct conn *c = &nr->s->conns[nr->conn];
	uint64_t n = nr->req->size - nr->off;

	if (n > NFS_READ_CHUNK)
		n = NFS_READ_CHUNK;
	c->busy++;
	nr->t0 = oplat_now();
	if (nfs_pread_async(c->nfs, nr->fh, nr->off, n, on_pread, nr) != 0) {
		c->busy--;
		read_fail(nr, EIO, "read", nfs_get_error(c->nfs));
		read_finish(nr);
	}
}

/* Sets nr's error to the source's loss (without completing it). */
static void nfsread_fail_lost(struct nread *nr)
{
	nr->req->status = SOURCE_READ_FAILED;
	nr->req->err = nr->s->lost_err;
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

/* Gives nr an UP connection; false if there is none (nr waits in s->stalled) or the
 * source is lost (nr is completed as lost). */
static bool take_conn(struct nread *nr)
{
	if (nr->s->lost) {
		nfsread_lost(nr);
		return false;
	}
	if ((nr->conn = nfssrc_pick_conn(nr->s)) < 0) {
		fifo_push(&nr->s->stalled, nr);
		return false;
	}
	return true;
}

/* Reads nr again from its first byte, keeping its budget and buffer, on a connection
 * that is UP (or waits in s->stalled for one). */
static void handle_restart(struct nread *nr)
{
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

/* One READ's outcome, whatever the NFS version. */
struct rdone {
	int errnum;	 /* 0, or a positive errno */
	bool transport;	 /* errnum is the connection's (retried), not the server's */
	const char *msg; /* with errnum */
	const char *data;
	uint32_t n; /* bytes at data */
	bool eof;
	bool have_attrs; /* size and mtime_ns are the file's after the READ */
	bool needs_open; /* the server wants the file OPENed: read it by path */
	uint64_t size;
	int64_t mtime_ns;
};

/* A READ of nr is back: copies its bytes, asks for the rest of a short one, keeps up to
 * HANDLE_CHUNKS in flight, and once none is, completes, retries or rereads by path. */
static void chunk_done(struct rchunk *ck, const struct rdone *d)
{
	struct nread *nr = ck->nr;
	struct nfssrc *s = nr->s;
	struct source_read *req = nr->req;

	nr->chunks--;
	s->conns[nr->conn].busy--;
	oplat_record(s->opts.lat, OPLAT_READ, oplat_now() - ck->t0);
	if (req->err.code) {
		/* an earlier READ of this file failed: nothing more to do */
	} else if (d->transport) {
		if (nfssrc_retry(s, nr->conn, &nr->attempts))
			nr->retry = true;
		else if (s->lost)
			nfsread_fail_lost(nr);
		else
			read_fail(nr, d->errnum, "read", d->msg);
	} else if (d->errnum) {
		read_fail(nr, d->errnum, "read", d->msg);
	} else if (d->needs_open) {
		nr->changed = true; /* handle_done reads it by path, with an OPEN */
	} else {
		uint32_t n = d->n < ck->len ? d->n : ck->len;

		memcpy(req->data + ck->off, d->data, n);
		if (d->have_attrs && (d->size != req->size || d->mtime_ns != req->mtime_ns))
			nr->changed = true; /* not the file listed: read it again by path */
		if (n < ck->len && d->eof) {
			if (ck->off + n < nr->end)
				nr->end = ck->off + n; /* the file shrank */
		} else if (n < ck->len) {
			ck->off += n; /* a short READ: ask for the rest */
			ck->len -= n;
			if (nfssrc_cancelled(s))
				read_cancel(nr);
			else if (handle_send(nr, ck) == 0)
				return;
		}
	}
	free(ck);
	if (nfssrc_cancelled(s) && !req->err.code)
		read_cancel(nr);
	if (!req->err.code && !nr->changed && !nr->retry)
		handle_issue(nr); /* more READs, or the end once none is in flight */
	else if (nr->chunks == 0 && nr->retry && !req->err.code)
		handle_restart(nr);
	else if (nr->chunks == 0)
		handle_done(nr);
}

static void on_read3(struct rpc_context *rpc, int status, void *data, void *priv)
{
	READ3res *res = data;
	struct rdone d = {0};

	if (status != RPC_STATUS_SUCCESS) {
		d.transport = true;
		d.errnum = status == RPC_STATUS_TIMEOUT ? ETIMEDOUT : EIO;
		d.msg = status == RPC_STATUS_TIMEOUT  ? "timed out"
			: status == RPC_STATUS_CANCEL ? "cancelled"
						      : rpc_get_error(rpc);
	} else if (res->status != NFS3_OK) {
		d.errnum =
		    nfsstat3_to_errno(res->status) < 0 ? -nfsstat3_to_errno(res->status) : EIO;
		d.msg = strerror(d.errnum);
	} else {
		const READ3resok *ok = &res->READ3res_u.resok;
		const fattr3 *a = &ok->file_attributes.post_op_attr_u.attributes;

		d.data = ok->data.data_val;
		d.n = ok->count < ok->data.data_len ? ok->count : ok->data.data_len;
		d.eof = ok->eof;
		d.have_attrs = ok->file_attributes.attributes_follow;
		d.size = a->size;
		d.mtime_ns = (int64_t)a->mtime.seconds * 1000000000 + a->mtime.nseconds;
	}
	chunk_done(priv, &d);
}

static void on_read4(int rc, const struct nfs4read_result *res, const char *msg, void *priv)
{
	struct rdone d = {0};

	if (rc == NFS4READ_NEEDS_OPEN) {
		d.needs_open = true;
	} else if (rc < 0) {
		d.errnum = -rc;
		d.transport = nfs4dir_rc_is_transport(rc);
		d.msg = msg;
	} else {
		d.data = res->data;
		d.n = res->len;
		d.eof = res->eof;
		d.have_attrs = res->have_attrs;
		d.size = res->size;
		d.mtime_ns = res->mtime_sec * 1000000000 + res->mtime_nsec;
	}
	chunk_done(priv, &d);
}

/* Sends the READ of ck; 0, or -1 with the read failed (ck is then the caller's). */
static int handle_send(struct nread *nr, struct rchunk *ck)
{
	struct conn *c = &nr->s->conns[nr->conn];
	READ3args a = {0};

	a.file.data.data_len = nr->req->hint.handle_len;
	a.file.data.data_val = (char *)nr->req->hint.handle;
	a.offset = ck->off;
	a.count = ck->len;
	ck->t0 = oplat_now();
	if (nr->s->url.version == 4
		? nfs4read_read(nfs_get_rpc_context(c->nfs), nr->req->hint.handle,
				nr->req->hint.handle_len, ck->off, ck->len, on_read4, ck) != 0
		: rpc_nfs3_read_async(nfs_get_rpc_context(c->nfs), on_read3, &a, ck) != 0) {
		read_fail(nr, EIO, "read", nfs_get_error(c->nfs));
		return -1;
	}
	c->busy++;
	nr->chunks++;
	return 0;
}

/* Keeps up to HANDLE_CHUNKS READs of at most readmax bytes in flight for nr. */
static void handle_issue(struct nread *nr)
{
	struct conn *c = &nr->s->conns[nr->conn];
	uint64_t max;

	if (!nfssrc_conn_up(nr->s, nr->conn)) { /* dropped while this file waited */
		nr->retry = true;
		if (nr->chunks == 0)
			handle_restart(nr);
		return;
	}
	max = nfs_get_readmax(c->nfs);
	if (max == 0 || max > NFS_READ_CHUNK)
		max = NFS_READ_CHUNK;
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
void nfsread_granted(struct nread *nr)
{
	struct source_read *req = nr->req;

	if (nr->cancelled || nfssrc_cancelled(nr->s)) {
		read_cancel(nr);
		read_finish(nr);
		return;
	}
	req->data = malloc(req->size ? req->size : 1);
	if (!req->data) {
		req->status = SOURCE_READ_FAILED;
		vherr_set(&req->err, VHERR_NOMEM, VHSTAGE_READ, NULL);
		read_finish(nr);
		return;
	}
	if (req->size == 0) {
		req->status = SOURCE_READ_OK;
		read_finish(nr);
		return;
	}
	nr->granted = true;
	if (nr->s->lost)
		nfsread_lost(nr);
	else if (nr->by_handle)
		handle_issue(nr);
	else if (!nfssrc_conn_up(nr->s, nr->conn)) { /* dropped while it waited: reopen */
		read_reset(nr);
		fifo_push(&nr->s->stalled, nr);
	} else
		read_next_chunk(nr);
}

void nfsread_resume(struct nread *nr)
{
	if (nr->closing && nr->fh) { /* read whole; only its CLOSE could not go out */
		nfs_free_nfsfh(nr->fh);
		nr->fh = NULL;
		read_complete(nr);
		return;
	}
	if (nr->s->lost)
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
	struct nfssrc *s = nr->s;
	struct source_read *req = nr->req;

	if (!source_read_admit(req)) {
		read_finish(nr);
		return;
	}
	if (!s->opts.budget) {
		nfsread_granted(nr);
		return;
	}
	pthread_mutex_lock(&s->lock);
	fifo_push(&s->want_budget, nr);
	nfssrc_broadcast(s);
	pthread_mutex_unlock(&s->lock);
}

static void on_fstat(int err, struct nfs_context *nfs, void *data, void *priv)
{
	struct nread *nr = priv;
	struct nfssrc *s = nr->s;
	struct source_read *req = nr->req;
	const struct nfs_stat_64 *st = data;

	(void)nfs;
	s->conns[nr->conn].busy--;
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
	struct nfssrc *s = nr->s;
	struct conn *c = &s->conns[nr->conn];

	c->busy--;
	oplat_record(s->opts.lat, OPLAT_OPEN, oplat_now() - nr->t0);
	if (err < 0) {
		read_fail(nr, -err, "open", data);
		path_failed(nr, data);
	} else {
		nr->fh = data;
		c->busy++;
		if (nfs_fstat64_async(nfs, nr->fh, on_fstat, nr) != 0) {
			c->busy--;
			read_fail(nr, EIO, "stat", nfs_get_error(nfs));
			read_finish(nr);
		}
	}
	seq_next(c);
}

static void seq_issue(struct nread *nr)
{
	struct nfssrc *s = nr->s;
	struct conn *c = &s->conns[nr->conn];
	int rc;

	c->busy++;
	nr->t0 = oplat_now();
	if (nr->closing)
		rc = nfs_close_async(c->nfs, nr->fh, on_close, nr);
	else
		rc = nfs_open_async(c->nfs, nr->path, O_RDONLY, on_open, nr);
	if (rc == 0)
		return;
	c->busy--;
	if (!nr->closing)
		read_fail(nr, EIO, "open", nfs_get_error(c->nfs));
	read_complete(nr);
	seq_next(c);
}

void nfsread_start(struct nread *nr)
{
	const struct source_hint *h = &nr->req->hint;

	if (nfssrc_cancelled(nr->s)) {
		read_cancel(nr);
		read_complete(nr);
		return;
	}
	if (!take_conn(nr))
		return;
	read_reset(nr); /* a read started again after a dropped connection */
	if (h->handle && h->has_attrs) {
		nr->by_handle = true;
		nr->req->size = nr->end = h->size;
		nr->req->mtime_ns = h->mtime_ns;
		want_budget(nr);
		return;
	}
	seq_submit(nr, false);
}
