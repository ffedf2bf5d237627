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
	pthread_mutex_t lock;	/* guards fatal */
	struct waitgroup reads; /* reads submitted, not yet completed */
	int fatal_code;		/* under lock: 0, or the first fatal error */
	struct vherr fatal;	/* under lock */
};

/* One input file on its way through the pipeline; item_release frees all of it. */
struct item {
	struct source_read rd; /* the read request and its result */
	struct pipeline *p;
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

/* Records a failed input in vhprep-errors.jsonl and the stats. */
static void record_failure(struct pipeline *p, const char *relpath, const struct vherr *err)
{
	char where[LOCATION_MAX];
	struct vherr werr;

	source_location(p->env.source, relpath, where, sizeof(where));
	stats_fail(p->env.stats, err->code, where);
	preview_fail(p->env.preview, relpath, err);
	if (report_error(p->env.report, where, err, &werr) < 0)
		set_fatal(p, &werr);
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
		atomic_fetch_add(&st->skipped_size, 1);
		item_release(it);
	} else if (req->status == SOURCE_READ_FAILED) {
		if (req->err.code ==
		    VHERR_LOST) /* the source is gone: one error ends the run */
			set_fatal(p, &req->err);
		if (req->err.code == VHERR_CANCELLED || req->err.code == VHERR_LOST)
			atomic_fetch_add(&st->cancelled, 1);
		else
			record_failure(p, it->relpath, &req->err);
		item_release(it);
	} else if (p->size_bounds && over_limit(p)) {
		atomic_fetch_add(&st->over_limit, 1);
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

static int valid_utf8(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
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

static enum source_next on_emit(void *ctx, const struct source_entry *e)
{
	struct pipeline *p = ctx;
	const struct config *cfg = p->env.cfg;
	const char *relpath = e->relpath;
	struct item *it;
	struct vherr err;

	atomic_fetch_add(&p->env.stats->found, 1);
	if (atomic_load(&p->cancelled) || (p->size_bounds && at_limit(p)))
		return SOURCE_STOP;
	if (select_path(cfg, relpath) != SELECT_KEEP) {
		atomic_fetch_add(&p->env.stats->filtered, 1);
		return SOURCE_CONTINUE;
	}
	if (!valid_utf8(relpath)) {
		vherr_set(&err, VHERR_BAD_NAME, VHSTAGE_SELECT, NULL);
		record_failure(p, relpath, &err);
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
	it->rd.done = on_read_done;
	it->rd.user = it;
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

/* The walk thread: walks, waits for the last read, then closes the ready queue so the
 * workers end once it is empty. */
static void *walk_main(void *arg)
{
	struct pipeline *p = arg;
	struct vherr err = {0};

	if (source_walk(p->env.source, on_emit, p, on_walk_error, &err) < 0)
		set_fatal(p, &err);
	atomic_store(&p->env.stats->walk_complete, 1);
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

/* Records a written output: one metadata line, one CSV row. On failure the output is
 * removed again, so every output on disk has its line. */
static int record_output(struct pipeline *p, struct item *it, const char *relout,
			 const struct kernel_result *res, const char *sha, struct vherr *err)
{
	char where[LOCATION_MAX];
	struct metadata_provenance prov = {
	    .source = source_location(p->env.source, it->relpath, where, sizeof(where)),
	    .source_bytes = it->rd.size,
	    .source_mtime_ns = it->rd.mtime_ns,
	    .source_sha256 = sha,
	    .original_width = res->in_w,
	    .original_height = res->in_h,
	    .width = res->out_w,
	    .height = res->out_h,
	    .format = kernel_format_ext(res->format),
	    .kernel = res->kernel,
	    .operations = p->opv,
	    .noperations = p->nops,
	    .version = VHPREP_VERSION,
	};
	int rc = metadata_append(p->env.metadata, relout, &prov, err);

	if (rc == 0)
		rc = report_csv_row(p->env.report, it->relpath, res->in_w, res->in_h,
				    res->out_w, res->out_h, err);
	if (rc < 0)
		unlinkat(dirsink_dirfd(p->env.sink), relout, 0);
	return rc;
}

/* Transforms, writes and records one file (a worker's whole job for it). */
static void process(struct pipeline *p, struct kernel *k, struct item *it)
{
	struct kernel_result res = {0};
	struct vherr err = {0};
	char sha[65], relout[PATH_MAX];
	int rc;

	sha256_hex(it->rd.data, it->rd.len, sha);
	rc = kernel_run(k, it->rd.data, it->rd.len, &res, &err);
	if (rc == 0)
		preview_offer(p->env.preview, it->relpath, it->rd.data, it->rd.len, &res);
	item_drop_input(it);
	if (rc == 0 &&
	    dirsink_output_name(p->env.cfg->prefix, it->relpath, kernel_format_ext(res.format),
				relout, sizeof(relout)) != 0)
		rc = vherr_set(&err, VHERR_BAD_NAME, VHSTAGE_WRITE, "output path too long");
	if (rc == 0)
		rc = dirsink_write(p->env.sink, relout, res.data, res.len, &err);
	if (rc == 0)
		rc = record_output(p, it, relout, &res, sha, &err);
	if (rc == 0) {
		atomic_fetch_add(&p->env.stats->processed, 1);
		atomic_fetch_add(&p->env.stats->bytes_written, res.len);
	} else if (err.code == VHERR_NOSPC || err.stage == VHSTAGE_RECORD) {
		set_fatal(p, &err);
		record_failure(p, it->relpath, &err);
	} else {
		record_failure(p, it->relpath, &err);
	}
	kernel_result_release(&res);
}

static void worker_loop(struct pipeline *p)
{
	struct kernel *k = kernel_new(&p->env.cfg->kernel);
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
			process(p, k, it);
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
	if (!p->ready) {
		free(p);
		return NULL;
	}
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

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	bqueue_free(p->ready);
	pthread_mutex_destroy(&p->lock);
	waitgroup_destroy(&p->reads);
	free(p);
}
