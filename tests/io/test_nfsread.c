/* The read decisions of the nfs:// source (io/nfsread.c) against a scripted transport:
 * no server. Each test starts one read of a listed file (its handle, size 10, mtime 5),
 * sees which requests it sends, answers them as the script says, and checks what the
 * read decides: its state, its requests, its connections' accounting and its outcome.
 * The real transport is covered by tests/integration/test_nfs.c (ganesha). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/nfsconn.h"
#include "io/nfsint.h"

/* ---- the scripted transport: records every request, answers nothing by itself ---- */

#define SENT_MAX 16

struct sent {
	int conn;
	uint64_t off;
	uint32_t count;
	void *chunk;
};

static struct {
	struct sent reads[SENT_MAX]; /* READs by handle, in the order sent */
	int nreads;
	int opens; /* OPENs by path */
	char open_path[64];
	nfs_cb open_cb;
	void *open_priv;
	uint64_t readmax;
} sc;

static int fake_read_fh(struct nfsread_env *env, int conn, const char *fh, uint32_t fhlen,
			uint64_t off, uint32_t count, void *chunk)
{
	(void)env, (void)fh, (void)fhlen;
	cr_assert_lt(sc.nreads, SENT_MAX);
	sc.reads[sc.nreads++] = (struct sent){conn, off, count, chunk};
	return 0;
}

static uint64_t fake_readmax(struct nfs_context *nfs)
{
	(void)nfs;
	return sc.readmax;
}

static int fake_open(struct nfs_context *nfs, const char *path, int flags, nfs_cb cb,
		     void *priv)
{
	(void)nfs, (void)flags;
	sc.opens++;
	snprintf(sc.open_path, sizeof(sc.open_path), "%s", path);
	sc.open_cb = cb;
	sc.open_priv = priv;
	return 0;
}

/* Requests no test here answers: refused at once, as libnfs refuses a request. */
static int fake_fstat(struct nfs_context *nfs, struct nfsfh *fh, nfs_cb cb, void *priv)
{
	(void)nfs, (void)fh, (void)cb, (void)priv;
	return -1;
}

static int fake_pread(struct nfs_context *nfs, struct nfsfh *fh, uint64_t off, uint64_t count,
		      nfs_cb cb, void *priv)
{
	(void)nfs, (void)fh, (void)off, (void)count, (void)cb, (void)priv;
	return -1;
}

static char *fake_error(struct nfs_context *nfs)
{
	(void)nfs;
	return "refused by the script";
}

static void fake_free_fh(struct nfsfh *fh)
{
	(void)fh;
}

static const struct nfsread_io scripted = {
    .read_fh = fake_read_fh,
    .readmax = fake_readmax,
    .open = fake_open,
    .fstat = fake_fstat,
    .pread = fake_pread,
    .close = fake_fstat,
    .error = fake_error,
    .free_fh = fake_free_fh,
};

/* ---- one source's worth of state around the read ---- */

static const char file[] = "0123456789"; /* the listed file: size 10, mtime 5 */
static struct nfsconns conns;
static struct nfshub hub;
static struct nfsread_env env;
static struct source_read req;

static void setup(int nconns, int version, uint64_t readmax)
{
	memset(&sc, 0, sizeof(sc));
	sc.readmax = readmax;
	conns = (struct nfsconns){.n = nconns, .timeout_ms = 1000};
	conns.c = calloc((size_t)nconns, sizeof(*conns.c));
	cr_assert(conns.c);
	for (int i = 0; i < nconns; i++)
		conns.c[i].state = CONN_UP;
	memset(&hub, 0, sizeof(hub));
	hub.efd = -1;
	pthread_mutex_init(&hub.lock, NULL);
	pthread_cond_init(&hub.cond, NULL);
	env = (struct nfsread_env){
	    .conns = &conns, .hub = &hub, .io = &scripted, .version = version};
	req = (struct source_read){
	    .relpath = "d/a.jpg",
	    .hint = {.handle = "H", .handle_len = 1, .has_attrs = 1, .size = 10, .mtime_ns = 5},
	    .max_size = UINT64_MAX,
	};
}

/* Starts the read as the loop does with a posted one. */
static struct nread *start(void)
{
	struct nread *nr = calloc(1, sizeof(*nr) + strlen(req.relpath) + 2);

	cr_assert(nr);
	nr->env = &env;
	nr->req = &req;
	nr->path[0] = '/';
	strcpy(nr->path + 1, req.relpath);
	nfsread_start(nr);
	return nr;
}

/* Answers READ i with the file's bytes and the attributes size and mtime_ns. */
static void reply_bytes(int i, uint64_t size, int64_t mtime_ns)
{
	const struct sent *r = &sc.reads[i];
	uint32_t n = r->off >= 10 ? 0 : (uint32_t)(10 - r->off);
	struct nfsread_reply d = {.data = file + r->off,
				  .n = n < r->count ? n : r->count,
				  .have_attrs = true,
				  .size = size,
				  .mtime_ns = mtime_ns};

	d.eof = r->off + d.n >= 10;
	nfsread_chunk_reply(r->chunk, &d);
}

static void reply(int i, struct nfsread_reply d)
{
	nfsread_chunk_reply(sc.reads[i].chunk, &d);
}

/* The read handed to the completion thread, or NULL. */
static struct nread *completed(void)
{
	return fifo_pop(&hub.completed);
}

static void finish(struct nread *nr)
{
	free(req.data);
	free(nr);
	free(conns.c);
}

/* ---- the decisions ---- */

Test(nfsread, a_listed_file_is_read_by_handle_in_readmax_chunks_without_an_open)
{
	struct nread *nr;

	setup(2, 3, 4);
	nr = start();
	cr_assert_eq(nr->state, NREAD_READING);
	cr_assert_eq(sc.nreads, 3, "10 bytes at readmax 4: 3 READs in flight");
	cr_assert_eq(sc.reads[0].off, 0);
	cr_assert_eq(sc.reads[1].off, 4);
	cr_assert_eq(sc.reads[2].off, 8);
	cr_assert_eq(sc.reads[2].count, 2);
	for (int i = 2; i >= 0; i--) /* out of order, as replies may come */
		reply_bytes(i, 10, 5);
	cr_assert_eq(completed(), nr);
	cr_assert_eq(nr->state, NREAD_DONE);
	cr_assert_eq(req.status, SOURCE_READ_OK, "%s", req.err.msg);
	cr_assert_eq(req.len, 10);
	cr_assert_arr_eq(req.data, file, 10);
	cr_assert_eq(sc.opens, 0);
	cr_assert_eq(conns.c[0].busy + conns.c[1].busy, 0, "every READ accounted back");
	finish(nr);
}

Test(nfsread, changed_attributes_reread_the_file_by_path_and_a_missing_one_vanished)
{
	struct nread *nr;

	setup(1, 3, 4);
	nr = start();
	reply_bytes(0, 11, 5); /* the file grew since its listing */
	cr_assert_eq(sc.opens, 0, "not before every READ is back");
	reply_bytes(1, 11, 5);
	reply_bytes(2, 11, 5);
	cr_assert_eq(sc.opens, 1, "reread by path, with an OPEN");
	cr_assert_str_eq(sc.open_path, "/d/a.jpg");
	cr_assert_eq(nr->state, NREAD_BY_PATH_OPEN);
	cr_assert_null(completed());
	cr_assert_null(req.data, "the listed size's buffer is given back");
	/* the file is gone by then: a server answer, judged after the service round */
	sc.open_cb(-ENOENT, NULL, "No such file or directory", sc.open_priv);
	cr_assert_eq(nr->state, NREAD_JUDGING);
	cr_assert_null(completed());
	nfsread_judge(&conns.c[0], false);
	cr_assert_eq(completed(), nr);
	cr_assert_eq(req.status, SOURCE_READ_FAILED);
	cr_assert_eq(req.err.code, VHERR_VANISHED, "%s", req.err.msg);
	finish(nr);
}

Test(nfsread, a_refused_anonymous_stateid_rereads_by_path_with_one_open_at_a_time)
{
	struct nread *nr;

	setup(1, 4, 16);
	nr = start();
	cr_assert_eq(sc.nreads, 1);
	reply(0, (struct nfsread_reply){.needs_open = true});
	cr_assert_eq(nr->state, NREAD_BY_PATH_OPEN);
	cr_assert_eq(sc.opens, 0, "v4: the OPEN waits for the loop's sequencing phase");
	cr_assert_eq(conns.c[0].seq_wait.n, 1);
	nfsread_seq_kick(&env);
	cr_assert_eq(sc.opens, 1);
	cr_assert(conns.c[0].seq_busy);
	/* the connection breaks under the OPEN: retried, and the connection is to drop */
	sc.open_cb(-EIO, NULL, "RPC ERROR: connection lost", sc.open_priv);
	cr_assert_eq(nr->state, NREAD_RETRYING);
	cr_assert_eq(nr->attempts, 1);
	cr_assert(conns.c[0].broken);
	cr_assert_eq(env.stalled.n, 1, "waits for a connection");
	cr_assert_null(completed());
	cr_assert_eq(fifo_pop(&env.stalled), nr);
	finish(nr);
}

Test(nfsread, a_stale_handle_fails_the_read_as_vanished_once_every_read_is_back)
{
	struct nread *nr;

	setup(1, 3, 4);
	nr = start();
	reply(0, (struct nfsread_reply){.errnum = ESTALE, .msg = "Stale file handle"});
	cr_assert_null(completed(), "two READs are still out");
	reply_bytes(1, 10, 5);
	reply_bytes(2, 10, 5);
	cr_assert_eq(completed(), nr);
	cr_assert_eq(req.status, SOURCE_READ_FAILED);
	cr_assert_eq(req.err.code, VHERR_VANISHED);
	cr_assert(strstr(req.err.msg, "cannot read 'd/a.jpg'"), "%s", req.err.msg);
	cr_assert_null(req.data);
	cr_assert_eq(sc.opens, 0);
	finish(nr);
}

Test(nfsread, transport_failures_are_retried_on_other_connections_then_fail)
{
	struct nfsread_reply lost = {.errnum = EIO, .transport = true, .msg = "RPC ERROR"};
	struct nread *nr;

	setup(NFSCONN_RETRIES + 1, 3, 16);
	nr = start();
	for (int k = 0; k < NFSCONN_RETRIES; k++) {
		cr_assert_eq(sc.nreads, k + 1);
		reply(k, lost);
		cr_assert(conns.c[sc.reads[k].conn].broken, "attempt %d: connection marked", k);
		cr_assert_eq(nr->attempts, k + 1);
		cr_assert_eq(nr->state, NREAD_READING, "restarted at once on an UP connection");
		cr_assert_null(completed());
	}
	for (int k = 0; k < NFSCONN_RETRIES + 1; k++)
		for (int j = 0; j < k; j++)
			cr_assert_neq(sc.reads[k].conn, sc.reads[j].conn, "never a broken one");
	reply(NFSCONN_RETRIES, lost);
	cr_assert_eq(completed(), nr, "failed for good after %d retries", NFSCONN_RETRIES);
	cr_assert_eq(req.err.code, VHERR_IO, "%s", req.err.msg);
	cr_assert_eq(sc.nreads, NFSCONN_RETRIES + 1);
	finish(nr);
}

Test(nfsread, with_no_connection_up_a_read_waits_and_fails_with_the_loss)
{
	struct nread *nr;

	setup(1, 3, 16);
	nr = start();
	reply(0, (struct nfsread_reply){
		     .errnum = ETIMEDOUT, .transport = true, .msg = "timed out"});
	cr_assert_eq(nr->state, NREAD_RETRYING);
	cr_assert_eq(env.stalled.n, 1);
	cr_assert_eq(sc.nreads, 1, "nothing sent on the broken connection");
	/* nfsconn_tick gives the connections up; the loop resumes what waited */
	conns.lost = true;
	vherr_set(&conns.lost_err, VHERR_LOST, VHSTAGE_WALK, "lost the connection");
	nfsread_resume(fifo_pop(&env.stalled));
	cr_assert_eq(completed(), nr);
	cr_assert_eq(req.err.code, VHERR_LOST);
	cr_assert_eq(req.err.stage, VHSTAGE_READ);
	finish(nr);
}

Test(nfsread, a_transport_failure_after_the_loss_is_not_retried)
{
	struct nread *nr;

	setup(2, 3, 16);
	nr = start();
	conns.lost = true;
	vherr_set(&conns.lost_err, VHERR_LOST, VHSTAGE_WALK, "lost the connection");
	reply(0, (struct nfsread_reply){.errnum = EIO, .transport = true, .msg = "cancelled"});
	cr_assert_eq(completed(), nr);
	cr_assert_eq(req.err.code, VHERR_LOST);
	cr_assert_eq(nr->attempts, 0, "the loss is no attempt");
	cr_assert_eq(sc.nreads, 1);
	finish(nr);
}

Test(nfsread, the_state_table)
{
	cr_assert(nfsread_transition_ok(NREAD_QUEUED, NREAD_BY_HANDLE));
	cr_assert(nfsread_transition_ok(NREAD_RETRYING, NREAD_READING));
	cr_assert(nfsread_transition_ok(NREAD_JUDGING, NREAD_DONE));
	cr_assert(!nfsread_transition_ok(NREAD_QUEUED, NREAD_READING), "budget first");
	cr_assert(!nfsread_transition_ok(NREAD_JUDGING, NREAD_READING));
	for (int st = NREAD_QUEUED; st < NREAD_DONE; st++)
		cr_assert(!nfsread_transition_ok(NREAD_DONE, (enum nread_state)st));
	cr_assert_str_eq(nfsread_state_name(NREAD_BY_PATH_OPEN), "by-path-open");
	cr_assert_str_eq(nfsread_state_name((enum nread_state)99), "?");
}
