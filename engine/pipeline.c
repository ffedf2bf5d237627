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
#include "common/waitgroup.h"
#include "engine/select.h"
#include "kernels/kernel.h"

#define OPS_MAX	     8
#define LOCATION_MAX (PATH_MAX + 1024)

struct pipeline {
	struct pipeline_env env;	  /* set at creation */
	struct bqueue *ready;		  /* set at creation: read files waiting for a worker */
	int size_bounds;		  /* set at creation: a size filter was given */
	char ops[OPS_MAX][KERNEL_OP_MAX]; /* set at creation: the operation chain */
	const char *opv[OPS_MAX];	  /* set at creation: pointers into ops */
	int nops;			  /* set at creation */
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

/* The read's admit step: an input whose earlier output stands, or that --since's records
 * hold unchanged, is skipped unread. */
static enum source_admit admit(struct source_read *req)
{
	struct item *it = req->user;
	struct pipeline *p = it->p;
	enum since_verdict v;

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
	if (select_path(cfg, relpath) != SELECT_KEEP) {
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

/* The claimed part of publishing: remove what the name replaces, append the line, rename
 * into place. Under the claim's lock. *removed says whether an older output was removed. */
static int commit_claimed(struct pipeline *p, struct outfile *o, struct dirsink_staged *st,
			  const char *line, int replace, int *removed, struct vherr *err)
{
	uint64_t at;
	int rc = 0;

	if (replace) {
		rc = dirsink_remove(p->env.sink, o->relout, err);
		*removed = rc == 0;
	}
	if (rc == 0)
		rc = metadata_append_line(p->env.metadata, line, strlen(line), &at, err);
	if (rc == 0 && (rc = dirsink_commit(p->env.sink, st, o->relout, err)) < 0 &&
	    metadata_retract(p->env.metadata, at) < 0)
		set_fatal(p, err); /* a line we cannot take back: stop before it spreads */
	return rc;
}

/* Writes, claims, records and renames one output (see pipeline.h). */
static int publish_output(struct pipeline *p, struct item *it, struct outfile *o,
			  struct vherr *err)
{
	const char *suffix = claims_suffix(it->relpath);
	struct dirsink_staged st;
	struct claim_ticket t;
	int removed = 0, rc;
	char *line = format_line(p, it, o);

	if (!line)
		return vherr_set(err, VHERR_BAD_NAME, VHSTAGE_RECORD,
				 "cannot encode metadata for '%s' (not valid UTF-8?)", o->relout);
	rc = dirsink_stage(p->env.sink, o->relout, o->res->data, o->res->len, &st, err);
	if (rc == 0 && claims_begin(p->env.claims, o->relout, it->relpath, suffix, &t) < 0)
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WRITE, NULL);
	else if (rc == 0) {
		if (t.verdict == CLAIM_LOSE)
			rc = lost(it, o, &t, err);
		else
			rc = commit_claimed(p, o, &st, line, t.verdict == CLAIM_REPLACE, &removed,
					    err);
		claims_end(p->env.claims, &t, it->relpath, suffix, rc == 0, removed);
		if (rc == 0 && t.verdict == CLAIM_REPLACE) {
			metadata_superseded(p->env.metadata);
			atomic_fetch_add(&p->env.stats->replaced, 1);
			unpublish_loser(p, it, o, &t);
		}
		dirsink_discard(p->env.sink, &st);
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
	rc = kernel_run(k, it->rd.data, it->rd.len, &res, &err);
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
	struct item *it;

	if (!k) {
		struct vherr err;

		vherr_set(&err, VHERR_NOMEM, VHSTAGE_TRANSFORM, "cannot create a kernel");
		set_fatal(p, &err);
	}
	while ((it = bqueue_pop(p->ready))) {
		if (!k || atomic_load(&p->cancelled))
			atomic_fetch_add(&p->env.stats->cancelled, 1);
		else
			process(p, k, it, worker);
		item_release(it);
	}
	kernel_free(k);
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
	if (!p->ready || !p->publishing) {
		bqueue_free(p->ready);
		free(p->publishing);
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
	pthread_mutex_destroy(&p->lock);
	waitgroup_destroy(&p->reads);
	free(p);
}
