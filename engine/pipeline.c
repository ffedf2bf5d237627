#include "engine/pipeline.h"

#include <jansson.h>
#include <limits.h>
#include <omp.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bqueue.h"
#include "common/budget.h"
#include "common/waitgroup.h"
#include "engine/select.h"
#include "kernels/kernel.h"

#define OPS_MAX	     8
#define LOCATION_MAX (PATH_MAX + 1024)
/* A worker takes up to this many ready files per visit to the queue (and at most its
 * share of what is queued): one lock and, when it slept, one wake-up per run of small
 * files instead of per file (bench/overhead-bench.sh). */
#define READY_BATCH 8
/* What --memory keeps back from decoding: the process itself, libvips' and libjpeg's
 * fixed parts, and per worker its stack and kernel buffers kept between files. */
#define DECODE_RESERVE	      (48ULL << 20)
#define DECODE_RESERVE_THREAD (4ULL << 20)
#define DECODE_MIN	      (16ULL << 20)

struct pipeline {
	struct pipeline_env env;	  /* set at creation */
	struct bqueue *ready;		  /* set at creation: read files waiting for a worker */
	int size_bounds;		  /* set at creation: a size filter was given */
	char ops[OPS_MAX][KERNEL_OP_MAX]; /* set at creation: the operation chain */
	const char *opv[OPS_MAX];	  /* set at creation: pointers into ops */
	int nops;			  /* set at creation */
	struct budget *decode;		  /* set at creation: heap bytes decodes may hold */
	uint64_t decode_cap;		  /* set at creation: its size */
	atomic_int cancelled;
	atomic_int finished;
	atomic_ullong selected; /* files counted against --limit */
	atomic_int walk_cut;    /* the walk was told to stop before its end */
	pthread_mutex_t lock;	/* guards fatal */
	pthread_mutex_t *publishing; /* set at creation: one per worker, held while that
					worker writes and records an output (pipeline_abort
					takes them all) */
	int nworkers;		/* set at creation */
	struct waitgroup reads; /* reads submitted, not yet completed */
	int fatal_code;		/* under lock: 0, or the first fatal error */
	struct vherr fatal;	/* under lock */
};

/* One input file on its way through the pipeline; item_release frees all of it. */
struct item {
	struct source_read rd; /* the read request and its result */
	struct pipeline *p;
	int asked;             /* a URL input fetched conditionally: 1 resume, 2 --since */
	int done_already;      /* admit found its earlier output standing */
	int unchanged;         /* the same as in --since's records: skipped */
	int verify;            /* --since-checksum: compare its SHA-256 once read */
	uint64_t decode_bytes; /* kernel_probe's peak estimate; 0: not probed yet */
	char relpath[]; /* then the hint's handle bytes (rd.hint.handle points there) */
};

static void item_drop_input(struct item *it)
{
	if (it->rd.charged)
		budget_release(it->p->env.budget, it->rd.charged);
	it->rd.charged = 0;
	VH_FREE(it->rd.data);
}

static void item_release(struct item *it)
{
	item_drop_input(it);
	json_decref(it->rd.prov);
	free(it);
}

/* Stops the run for good (disk full, outputs gone): the first reason wins. */
static void set_fatal(struct pipeline *p, const struct vherr *err)
{
	pthread_mutex_lock(&p->lock);
	if (!p->fatal_code) {
		p->fatal_code = err->code ? (int)err->code : VHERR_INTERNAL;
		p->fatal = *err;
	}
	pthread_mutex_unlock(&p->lock);
	pipeline_cancel(p);
}

/* Records a failed input in vhprep-errors.jsonl and the stats; rd (NULL for a walk's
 * error) names it by its hint and adds its provenance. */
static void record_failure_of(struct pipeline *p, const char *relpath,
			      const struct source_read *rd, const struct vherr *err)
{
	char where[LOCATION_MAX];
	struct vherr werr;

	source_hint_location(p->env.source, relpath, rd ? &rd->hint : NULL, where,
			     sizeof(where));
	stats_fail(p->env.stats, err->code, where);
	preview_fail(p->env.preview, relpath, err);
	if (report_error_with(p->env.report, where, err, rd ? rd->prov : NULL, &werr) < 0)
		set_fatal(p, &werr);
}

static void record_failure(struct pipeline *p, const char *relpath, const struct vherr *err)
{
	record_failure_of(p, relpath, NULL, err);
}

static void on_walk_error(void *ctx, const char *relpath, const struct vherr *err)
{
	record_failure(ctx, relpath, err);
}

/* Counts one file against --limit; 0 if it is within the limit. */
static int over_limit(struct pipeline *p)
{
	uint64_t limit = p->env.cfg->limit;

	return limit && atomic_fetch_add(&p->selected, 1) >= limit;
}

static int at_limit(struct pipeline *p)
{
	uint64_t limit = p->env.cfg->limit;

	return limit && atomic_load(&p->selected) >= limit;
}

static void on_read_done(struct source_read *req)
{
	struct item *it = req->user;
	struct pipeline *p = it->p;
	struct stats *st = p->env.stats;

	if (req->status == SOURCE_READ_SKIPPED) {
		atomic_fetch_add(it->done_already ? &st->already_done
				 : it->unchanged   ? &st->unchanged
						   : &st->skipped_size,
				 1);
		item_release(it);
	} else if (req->status == SOURCE_READ_FAILED) {
		if (req->err.code ==
		    VHERR_LOST) /* the source is gone: one error ends the run */
			set_fatal(p, &req->err);
		if (req->err.code == VHERR_CANCELLED || req->err.code == VHERR_LOST)
			atomic_fetch_add(&st->cancelled, 1);
		else
			record_failure_of(p, it->relpath, req, &req->err);
		item_release(it);
	} else if (p->size_bounds && over_limit(p)) {
		atomic_fetch_add(&st->over_limit, 1);
		atomic_store(&p->walk_cut, 1);
		source_stop(p->env.source);
		item_release(it);
	} else {
		atomic_fetch_add(&st->bytes_read, req->len);
		if (bqueue_push(p->ready, it) != 0) {
			atomic_fetch_add(&st->cancelled, 1);
			item_release(it);
		}
	}
	waitgroup_done(&p->reads);
}

/* The read's admit step: an input larger than --max-file-size fails unread; one whose
 * earlier output stands, or that --since's records hold unchanged, is skipped unread. */
static enum source_admit admit(struct source_read *req)
{
	struct item *it = req->user;
	struct pipeline *p = it->p;
	enum since_verdict v;

	if (req->size > p->env.cfg->max_file_size) {
		vherr_set(&req->err, VHERR_TOO_LARGE, VHSTAGE_READ,
			  "%llu bytes, more than --max-file-size (%llu)",
			  (unsigned long long)req->size,
			  (unsigned long long)p->env.cfg->max_file_size);
		return SOURCE_ADMIT_FAIL;
	}

	if (p->env.resume && resume_done(p->env.resume, it->relpath, req->size, req->mtime_ns)) {
		it->done_already = 1;
		return SOURCE_ADMIT_SKIP;
	}
	if (!p->env.since)
		return SOURCE_ADMIT_READ;
	v = since_check(p->env.since, it->relpath, req->size, req->mtime_ns);
	it->unchanged = v == SINCE_UNCHANGED;
	it->verify = v == SINCE_VERIFY;
	return it->unchanged ? SOURCE_ADMIT_SKIP : SOURCE_ADMIT_READ;
}

/* Whether decoding it needs more than all the room decoding has: fails it too_large. */
static int over_memory(const struct pipeline *p, const struct item *it, struct vherr *err)
{
	if (it->decode_bytes <= p->decode_cap)
		return 0;
	vherr_set(err, VHERR_TOO_LARGE, VHSTAGE_DECODE,
		  "needs about %llu MiB to decode (estimated from its header), more than the "
		  "%llu MiB --memory leaves for decoding (%s: %llu MiB)",
		  (unsigned long long)(it->decode_bytes >> 20),
		  (unsigned long long)(p->decode_cap >> 20), p->env.cfg->memory_from,
		  (unsigned long long)(p->env.cfg->memory >> 20));
	return 1;
}

/* The read's judge: the file's first bytes (at most SOURCE_HEAD_MAX) through
 * kernel_probe. What is no image, empty, over --max-pixels, or would alone need more
 * memory than decoding has, fails unread; a damaged header is read on and left to the
 * kernel, whose verdict is the one recorded. */
static enum source_admit judge(struct source_read *req)
{
	struct item *it = req->user;
	struct pipeline *p = it->p;
	struct kernel_probe pr;
	struct vherr err = {0};
	int rc = kernel_probe(&p->env.cfg->kernel, req->data, req->len, req->size, &pr, &err);

	if (rc == 0) {
		it->decode_bytes = pr.peak_bytes ? pr.peak_bytes : 1;
		return over_memory(p, it, &req->err) ? SOURCE_ADMIT_FAIL : SOURCE_ADMIT_READ;
	}
	if (rc == -VHERR_NOT_IMAGE || rc == -VHERR_EMPTY || rc == -VHERR_TOO_LARGE) {
		req->err = err;
		return SOURCE_ADMIT_FAIL;
	}
	/* KERNEL_PROBE_MORE, or damaged: judged once whole, if it fits where it will be */
	if (req->size > p->decode_cap) {
		vherr_set(&req->err, VHERR_TOO_LARGE, VHSTAGE_READ,
			  "%llu bytes whose first %zu do not tell what it needs to decode, more "
			  "than the %llu MiB --memory leaves for decoding (%s: %llu MiB)",
			  (unsigned long long)req->size, req->len,
			  (unsigned long long)(p->decode_cap >> 20), p->env.cfg->memory_from,
			  (unsigned long long)(p->env.cfg->memory >> 20));
		return SOURCE_ADMIT_FAIL;
	}
	return SOURCE_ADMIT_READ;
}

/* The room one decode takes: the judge's estimate, else a probe of the whole file, else
 * (a header the probe cannot read: the kernel will refuse it early) the file's size. */
static uint64_t decode_need(struct pipeline *p, struct item *it)
{
	struct kernel_probe pr;
	struct vherr err;

	if (!it->decode_bytes)
		it->decode_bytes = kernel_probe(&p->env.cfg->kernel, it->rd.data, it->rd.len,
						it->rd.len, &pr, &err) == 0 &&
					   pr.peak_bytes
				       ? pr.peak_bytes
				       : it->rd.len + (1ULL << 20);
	return it->decode_bytes;
}

/* A new item for entry e: relpath and the hint's handle copied in; NULL: no memory. */
static struct item *item_new(struct pipeline *p, const struct source_entry *e)
{
	struct item *it = calloc(1, sizeof(*it) + source_entry_size(e));

	if (!it)
		return NULL;
	it->p = p;
	source_read_adopt(&it->rd, it->relpath, e);
	return it;
}

/* The revalidate step of a URL input (--urls): one whose earlier output stands, or that
 * --since's records hold, from the same URL is skipped unfetched when the server gave no
 * validators, else fetched conditionally and skipped on a 304. */
static enum source_admit revalidate(struct source_read *req, struct source_validators *v,
				    int not_modified)
{
	struct item *it = req->user;
	struct pipeline *p = it->p;
	char url[LOCATION_MAX];
	enum since_verdict sv;

	if (not_modified) {
		it->done_already = it->asked == 1;
		it->unchanged = it->asked == 2;
		if (it->unchanged)
			since_url_unchanged(p->env.since, it->relpath);
		return SOURCE_ADMIT_SKIP;
	}
	source_hint_location(p->env.source, it->relpath, &req->hint, url, sizeof(url));
	switch (p->env.resume ? resume_url(p->env.resume, it->relpath, url, v) : EARLIERURL_NONE) {
	case EARLIERURL_SAME:
		it->done_already = 1;
		return SOURCE_ADMIT_SKIP;
	case EARLIERURL_ASK:
		it->asked = 1;
		return SOURCE_ADMIT_READ;
	default:
		break;
	}
	if (!p->env.since)
		return SOURCE_ADMIT_READ;
	sv = since_url(p->env.since, it->relpath, url, v);
	it->unchanged = sv == SINCE_UNCHANGED;
	it->asked = sv == SINCE_ASK ? 2 : 0;
	return it->unchanged ? SOURCE_ADMIT_SKIP : SOURCE_ADMIT_READ;
}

static enum source_next emit_one(struct pipeline *p, const struct source_entry *e)
{
	const struct config *cfg = p->env.cfg;
	const char *relpath = e->relpath;
	struct item *it;
	struct vherr err;

	if (e->kind != SOURCE_KIND_FILE) { /* a name that is no file to read: counted */
		atomic_fetch_add(&p->env.stats->skipped_kind[e->kind], 1);
		return SOURCE_CONTINUE;
	}
	atomic_fetch_add(&p->env.stats->found, 1);
	if (p->env.since)
		since_seen(p->env.since, relpath);
	if (atomic_load(&p->cancelled) || (p->size_bounds && at_limit(p)))
		return SOURCE_STOP;
	switch (select_path(cfg, relpath)) {
	case SELECT_KEEP:
		break;
	case SELECT_NOT_IMAGE_TYPE:
		atomic_fetch_add(&p->env.stats->skipped_type, 1);
		return SOURCE_CONTINUE;
	case SELECT_OTHER_SHARD:
		atomic_fetch_add(&p->env.stats->other_shard, 1);
		/* fall through */
	default:
		atomic_fetch_add(&p->env.stats->filtered, 1);
		return SOURCE_CONTINUE;
	}
	if (!p->size_bounds && over_limit(p))
		return SOURCE_STOP;
	preview_seen(p->env.preview, relpath);
	it = item_new(p, e);
	if (!it) {
		vherr_set(&err, VHERR_NOMEM, VHSTAGE_SELECT, NULL);
		set_fatal(p, &err);
		return SOURCE_STOP;
	}
	it->rd.min_size = cfg->min_size;
	it->rd.max_size = cfg->max_size;
	it->rd.admit = admit;
	it->rd.judge = judge;
	it->rd.done = on_read_done;
	it->rd.user = it;
	it->rd.revalidate = revalidate;
	waitgroup_add(&p->reads);
	atomic_fetch_add(&p->env.stats->submitted, 1);
	if (source_read_submit(p->env.source, &it->rd) != 0) {
		atomic_fetch_add(&p->env.stats->cancelled, 1);
		waitgroup_done(&p->reads);
		free(it);
		return SOURCE_STOP;
	}
	return !p->size_bounds && at_limit(p) ? SOURCE_STOP : SOURCE_CONTINUE;
}

/* The walk's emit: one entry; remembers a stop, which leaves the walk incomplete. */
static enum source_next on_emit(void *ctx, const struct source_entry *e)
{
	struct pipeline *p = ctx;
	enum source_next next = emit_one(p, e);

	if (next == SOURCE_STOP)
		atomic_store(&p->walk_cut, 1);
	return next;
}

/* The walk thread: walks, waits for the last read, then closes the ready queue so the
 * workers end once it is empty. The walk is complete only when it ran to its end. */
static void *walk_main(void *arg)
{
	struct pipeline *p = arg;
	struct vherr err = {0};
	int rc = source_walk(p->env.source, on_emit, p, on_walk_error, &err);

	if (rc < 0)
		set_fatal(p, &err);
	atomic_store(&p->env.stats->walk_complete,
		     rc == 0 && !atomic_load(&p->walk_cut) && !atomic_load(&p->cancelled));
	waitgroup_wait(&p->reads);
	bqueue_close(p->ready);
	return NULL;
}

static void sha256_hex(const uint8_t *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1)
		n = 0;
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[2 * n] = '\0';
}

/* One output on its way out: what publish_output needs besides the item. */
struct outfile {
	const struct kernel_result *res;
	const char *sha;        /* the input's SHA-256, hex */
	char relout[PATH_MAX];  /* relative to the outputs dir */
	char where[LOCATION_MAX]; /* the input's location */
};

/* The metadata line for it (caller frees), or NULL when a name is not valid UTF-8. */
static char *format_line(struct pipeline *p, struct item *it, const struct outfile *o)
{
	struct metadata_binding b;
	struct metadata_provenance prov = {
	    .source = o->where,
	    .source_relpath = it->relpath,
	    .source_bytes = it->rd.size,
	    .source_mtime_ns = it->rd.mtime_ns,
	    .source_sha256 = o->sha,
	    .original_width = o->res->in_w,
	    .original_height = o->res->in_h,
	    .width = o->res->out_w,
	    .height = o->res->out_h,
	    .format = kernel_format_ext(o->res->format),
	    .kernel = o->res->kernel,
	    .operations = p->opv,
	    .noperations = p->nops,
	    .version = VHPREP_VERSION,
	    .output_bytes = o->res->len,
	    .frames = o->res->frames,
	    .frame_used = o->res->frame_used,
	    .extra = it->rd.prov,
	};

	config_binding(p->env.cfg, &b);
	return metadata_format_line(&b, o->relout, &prov);
}

/* "dir/stem" + suffix: the relative path of the other input of a collision, which
 * shares relpath's directory and stem. */
static void other_path(const char *relpath, const char *suffix, char *buf, size_t size)
{
	const char *mine = claims_suffix(relpath);

	snprintf(buf, size, "%.*s%s", (int)(mine - relpath), relpath, suffix);
}

/* The failure of an input that loses its name. */
static int lost(const struct item *it, const struct outfile *o, const struct claim_ticket *t,
		struct vherr *err)
{
	char other[PATH_MAX];

	if (t->prev_state == CLAIM_FOREIGN)
		return vherr_set(err, VHERR_EXISTS, VHSTAGE_WRITE,
				 "output '%s' already exists and is not one vhprep recorded",
				 o->relout);
	other_path(it->relpath, t->other_suffix, other, sizeof(other));
	return vherr_set(err, VHERR_COLLISION, VHSTAGE_WRITE,
			 "'%s' and '%s' both map to '%s': '%s' keeps it (the byte-smaller path)",
			 it->relpath, other, o->relout, other);
}

/* When this input took a name another input had published earlier in this run: that
 * one is no longer an output but a failure. */
static void unpublish_loser(struct pipeline *p, const struct item *it, const struct outfile *o,
			    const struct claim_ticket *t)
{
	char other[PATH_MAX];
	struct vherr err;

	if (t->prev_state != CLAIM_PUBLISHED || t->other_is_self)
		return;
	other_path(it->relpath, t->other_suffix, other, sizeof(other));
	vherr_set(&err, VHERR_COLLISION, VHSTAGE_WRITE,
		  "'%s' and '%s' both map to '%s': '%s' keeps it (the byte-smaller path)", other,
		  it->relpath, o->relout, it->relpath);
	atomic_fetch_sub(&p->env.stats->processed, 1);
	record_failure(p, other, &err);
}

/* The input that loses its name to an output a pack already holds: a published shard is
 * never rewritten, so the first published keeps it (a dir run would replace it with the
 * byte-smaller path's output). */
static int lost_to_pack(const struct item *it, const struct outfile *o,
			const struct claim_ticket *t, struct vherr *err)
{
	char other[PATH_MAX];

	other_path(it->relpath, t->other_suffix, other, sizeof(other));
	return vherr_set(err, VHERR_COLLISION, VHSTAGE_WRITE,
			 "'%s' and '%s' both map to '%s': '%s' keeps it (published first, into "
			 "a shard)",
			 it->relpath, other, o->relout, other);
}

/* Writes, claims, records and publishes one output through the sink (see pipeline.h). */
static int publish_output(struct pipeline *p, struct item *it, struct outfile *o,
			  struct vherr *err)
{
	const char *suffix = claims_suffix(it->relpath);
	struct sink_staged st;
	struct claim_ticket t;
	int removed = 0, rc;
	char *line = format_line(p, it, o);
	struct sink_output out = {
	    .relout = o->relout, .data = o->res->data, .len = o->res->len, .line = line};

	if (!line)
		return vherr_set(err, VHERR_BAD_NAME, VHSTAGE_RECORD,
				 "cannot encode metadata for '%s' (not valid UTF-8?)", o->relout);
	out.line_len = strlen(line);
	rc = sink_stage(p->env.sink, &out, &st, err);
	if (rc == 0 && claims_begin(p->env.claims, o->relout, it->relpath, suffix, &t) < 0)
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WRITE, NULL);
	else if (rc == 0) {
		int replace = t.verdict == CLAIM_REPLACE;

		if (t.verdict == CLAIM_LOSE)
			rc = lost(it, o, &t, err);
		else if (replace && !sink_can_replace(p->env.sink))
			rc = lost_to_pack(it, o, &t, err);
		else
			rc = sink_publish(p->env.sink, &st, &out, replace, &removed, err);
		claims_end(p->env.claims, &t, it->relpath, suffix, rc == 0, removed);
		if (rc == 0 && replace) {
			atomic_fetch_add(&p->env.stats->replaced, 1);
			unpublish_loser(p, it, o, &t);
		}
		sink_discard(p->env.sink, &st);
	}
	free(line);
	if (rc == 0)
		rc = report_csv_row(p->env.report, it->relpath, o->res->in_w, o->res->in_h,
				    o->res->out_w, o->res->out_h, err);
	return rc;
}

/* Whether a failure is the outputs' (full, read-only, broken), not the input's: the run
 * cannot go on. */
static int outputs_broken(const struct vherr *err)
{
	if (err->stage == VHSTAGE_RECORD)
		return err->code != VHERR_BAD_NAME;
	if (err->stage != VHSTAGE_WRITE)
		return err->code == VHERR_NOSPC;
	return err->code == VHERR_NOSPC || err->code == VHERR_ACCESS || err->code == VHERR_IO ||
	       err->code == VHERR_NOMEM;
}

/* Counts one finished file: processed, failed, or (when the outputs broke) cancelled
 * and the run stopped with one message naming the outputs dir. */
static void account(struct pipeline *p, struct item *it, int rc, const struct vherr *err,
		    uint64_t written)
{
	struct vherr fatal;

	if (rc == 0) {
		atomic_fetch_add(&p->env.stats->processed, 1);
		atomic_fetch_add(&p->env.stats->bytes_written, written);
	} else if (outputs_broken(err)) {
		vherr_set(&fatal, err->code, err->stage, "outputs dir '%s': %s",
			  p->env.cfg->outputs, err->msg);
		set_fatal(p, &fatal);
		atomic_fetch_add(&p->env.stats->cancelled, 1);
	} else {
		record_failure_of(p, it->relpath, &it->rd, err);
	}
}

/* Transforms, writes and records one file (a worker's whole job for it). The writing
 * and recording happen under the worker's publishing lock. */
static void process(struct pipeline *p, struct kernel *k, struct item *it, int worker)
{
	struct kernel_result res = {0};
	struct outfile o = {.res = &res};
	struct vherr err = {0};
	char sha[65];
	int rc;

	sha256_hex(it->rd.data, it->rd.len, sha);
	o.sha = sha;
	if (it->verify && since_same_content(p->env.since, it->relpath, sha)) {
		atomic_fetch_add(&p->env.stats->unchanged, 1);
		return;
	}
	decode_need(p, it);
	if (over_memory(p, it, &err)) {
		item_drop_input(it);
		account(p, it, -err.code, &err, 0);
		return;
	}
	if (budget_acquire(p->decode, it->decode_bytes) != 0) {
		atomic_fetch_add(&p->env.stats->cancelled, 1);
		return;
	}
	kernel_want_thumb(k, preview_thumb_box(p->env.preview, it->relpath));
	rc = kernel_run(k, it->rd.data, it->rd.len, &res, &err);
	budget_release(p->decode, it->decode_bytes);
	if (rc == 0)
		preview_offer(p->env.preview, it->relpath, it->rd.data, it->rd.len, &res);
	item_drop_input(it);
	if (rc == 0 &&
	    dirsink_output_name(p->env.cfg->prefix, it->relpath, kernel_format_ext(res.format),
				o.relout, sizeof(o.relout)) != 0)
		rc = vherr_set(&err, VHERR_BAD_NAME, VHSTAGE_WRITE, "output path too long");
	if (rc == 0) {
		source_hint_location(p->env.source, it->relpath, &it->rd.hint, o.where,
				     sizeof(o.where));
		pthread_mutex_lock(&p->publishing[worker]);
		rc = publish_output(p, it, &o, &err);
		pthread_mutex_unlock(&p->publishing[worker]);
	}
	account(p, it, rc, &err, res.len);
	kernel_result_release(&res);
}

static void worker_loop(struct pipeline *p)
{
	struct kernel *k = kernel_new(&p->env.cfg->kernel);
	int worker = omp_get_thread_num();
	void *batch[READY_BATCH];
	struct item *it;
	size_t n;

	if (!k) {
		struct vherr err;

		vherr_set(&err, VHERR_NOMEM, VHSTAGE_TRANSFORM, "cannot create a kernel");
		set_fatal(p, &err);
	}
	while ((n = bqueue_pop_many(p->ready, batch, READY_BATCH, (size_t)p->nworkers))) {
		for (size_t i = 0; i < n; i++) {
			it = batch[i];
			if (!k || atomic_load(&p->cancelled))
				atomic_fetch_add(&p->env.stats->cancelled, 1);
			else
				process(p, k, it, worker);
			item_release(it);
		}
	}
	kernel_free(k);
}

/* What --memory leaves for decoding: less the read budget and the reserve. */
static uint64_t decode_room(const struct config *cfg)
{
	uint64_t held = cfg->read_budget + DECODE_RESERVE +
			(uint64_t)cfg->threads * DECODE_RESERVE_THREAD;

	return cfg->memory > held + DECODE_MIN ? cfg->memory - held : DECODE_MIN;
}

struct pipeline *pipeline_new(const struct pipeline_env *env)
{
	struct pipeline *p = calloc(1, sizeof(*p));
	const struct config *cfg = env->cfg;

	if (!p)
		return NULL;
	p->env = *env;
	/* enough ready files to keep every worker busy while the readers refill */
	p->ready = bqueue_new((size_t)cfg->threads * 4 + (size_t)cfg->io_depth);
	p->publishing = calloc((size_t)cfg->threads, sizeof(*p->publishing));
	p->decode_cap = decode_room(cfg);
	p->decode = budget_new(p->decode_cap);
	if (!p->ready || !p->publishing || !p->decode) {
		bqueue_free(p->ready);
		free(p->publishing);
		budget_free(p->decode);
		free(p);
		return NULL;
	}
	p->nworkers = cfg->threads;
	for (int i = 0; i < p->nworkers; i++)
		pthread_mutex_init(&p->publishing[i], NULL);
	p->size_bounds = cfg->min_size > 0 || cfg->max_size != UINT64_MAX;
	p->nops = kernel_describe(&cfg->kernel, p->ops, OPS_MAX);
	for (int i = 0; i < p->nops; i++)
		p->opv[i] = p->ops[i];
	pthread_mutex_init(&p->lock, NULL);
	waitgroup_init(&p->reads);
	return p;
}

int pipeline_run(struct pipeline *p, struct vherr *fatal)
{
	pthread_t walker;
	int rc = 0;

	if (pthread_create(&walker, NULL, walk_main, p) != 0) {
		atomic_store(&p->finished, 1);
		return vherr_set(fatal, VHERR_INTERNAL, VHSTAGE_NONE, "cannot start the walk");
	}
#pragma omp parallel num_threads(p->env.cfg->threads)
	worker_loop(p);
	pthread_join(walker, NULL);
	pthread_mutex_lock(&p->lock);
	if (p->fatal_code) {
		if (fatal)
			*fatal = p->fatal;
		rc = -p->fatal_code;
	}
	pthread_mutex_unlock(&p->lock);
	atomic_store(&p->finished, 1);
	return rc;
}

void pipeline_cancel(struct pipeline *p)
{
	if (atomic_exchange(&p->cancelled, 1))
		return;
	budget_cancel(p->decode);
	source_cancel(p->env.source);
}

int pipeline_finished(struct pipeline *p)
{
	return atomic_load(&p->finished);
}

void pipeline_abort(struct pipeline *p)
{
	pipeline_cancel(p);
	for (int i = 0; i < p->nworkers; i++)
		pthread_mutex_lock(&p->publishing[i]);
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nworkers; i++)
		pthread_mutex_destroy(&p->publishing[i]);
	free(p->publishing);
	bqueue_free(p->ready);
	budget_free(p->decode);
	pthread_mutex_destroy(&p->lock);
	waitgroup_destroy(&p->reads);
	free(p);
}
