#include "engine/benchcmd.h"

#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/budget.h"
#include "common/oplat.h"
#include "common/waitgroup.h"
#include "engine/config.h"
#include "engine/options.h"
#include "engine/stats.h"
#include "io/entrybuf.h"
#include "io/httpsrc.h"
#include "io/source.h"

enum bench_mode { BENCH_WALK_READ, BENCH_WALK_ONLY, BENCH_READ_ONLY };

struct bench {
	enum bench_mode mode;	   /* set at creation */
	struct source *source;	   /* set at creation */
	struct budget *budget;	   /* set at creation */
	atomic_ullong entries;	   /* files the walk found */
	atomic_ullong files;	   /* files read whole */
	atomic_ullong failed;	   /* reads that failed */
	atomic_ullong walk_errors; /* directories (or entries) the walk could not list */
	atomic_ullong bytes;
	struct waitgroup reads; /* reads submitted, not completed */
	pthread_mutex_t lock;	/* guards kept */
	struct entrybuf kept;	/* --read-only: the walked entries, hints and all */
	int kept_failed;
};

struct bench_read {
	struct source_read rd;
	struct bench *b;
	char relpath[]; /* then the hint's handle bytes */
};

static void on_done(struct source_read *req)
{
	struct bench_read *r = req->user;
	struct bench *b = r->b;

	if (req->status == SOURCE_READ_OK) {
		atomic_fetch_add(&b->files, 1);
		atomic_fetch_add(&b->bytes, req->len);
	} else if (req->err.code != VHERR_CANCELLED) {
		atomic_fetch_add(&b->failed, 1);
	}
	if (req->charged)
		budget_release(b->budget, req->charged);
	json_decref(req->prov);
	free(req->data);
	free(r);
	waitgroup_done(&b->reads);
}

static enum source_next submit(struct bench *b, const struct source_entry *e)
{
	struct bench_read *r = calloc(1, sizeof(*r) + source_entry_size(e));

	if (!r)
		return SOURCE_STOP;
	r->b = b;
	source_read_adopt(&r->rd, r->relpath, e);
	r->rd.max_size = UINT64_MAX;
	r->rd.done = on_done;
	r->rd.user = r;
	waitgroup_add(&b->reads);
	if (source_read_submit(b->source, &r->rd) != 0) {
		waitgroup_done(&b->reads);
		free(r);
		return SOURCE_STOP;
	}
	return SOURCE_CONTINUE;
}

/* --read-only keeps the walked entries (it is a benchmark: memory grows with the tree). */
static enum source_next keep_entry(struct bench *b, const struct source_entry *e)
{
	int rc;

	pthread_mutex_lock(&b->lock);
	rc = entrybuf_add(&b->kept, "", e->relpath, &e->hint);
	if (rc < 0)
		b->kept_failed = 1;
	pthread_mutex_unlock(&b->lock);
	return rc < 0 ? SOURCE_STOP : SOURCE_CONTINUE;
}

/* A directory or entry the walk could not list: counted (the benchmark did not see the
 * whole tree), and the first few said on stderr. */
static void on_walk_error(void *ctx, const char *relpath, const struct vherr *err)
{
	struct bench *b = ctx;

	(void)relpath;
	if (atomic_fetch_add(&b->walk_errors, 1) < 5)
		fprintf(stderr, "vhprep bench: %s\n", err->msg);
}

static enum source_next on_emit(void *ctx, const struct source_entry *e)
{
	struct bench *b = ctx;

	atomic_fetch_add(&b->entries, 1);
	if (b->mode == BENCH_WALK_ONLY || e->kind != SOURCE_KIND_FILE)
		return SOURCE_CONTINUE;
	if (b->mode == BENCH_READ_ONLY)
		return keep_entry(b, e);
	return submit(b, e);
}

/* Adds OP_count, OP_p50_ms, OP_p90_ms, OP_p99_ms for each operation seen to o: flat, as
 * Valohai reads a metrics line (numbers at the top level only). */
static void add_latency(json_t *o, const struct oplat *lat)
{
	static const char *const q_name[] = {"p50_ms", "p90_ms", "p99_ms"};
	static const double q[] = {0.50, 0.90, 0.99};
	char key[64];

	for (int op = 0; o && op < OPLAT__COUNT; op++) {
		uint64_t n = oplat_count(lat, op);

		if (!n)
			continue;
		snprintf(key, sizeof(key), "%s_count", oplat_name(op));
		json_object_set_new(o, key, json_integer((json_int_t)n));
		for (int i = 0; i < 3; i++) {
			snprintf(key, sizeof(key), "%s_%s", oplat_name(op), q_name[i]);
			json_object_set_new(
			    o, key, json_real((double)oplat_quantile(lat, op, q[i]) / 1e6));
		}
	}
}

static const char *mode_name(enum bench_mode m)
{
	return m == BENCH_WALK_ONLY   ? "walk-only"
	       : m == BENCH_READ_ONLY ? "read-only"
				      : "walk+read";
}

static void report(struct bench *b, const struct config *cfg, const struct oplat *lat,
		   double walk_s, double read_s)
{
	double total = b->mode == BENCH_READ_ONLY ? read_s : walk_s;
	double entries = (double)atomic_load(&b->entries),
	       files = (double)atomic_load(&b->files);
	double mb = (double)atomic_load(&b->bytes) / 1e6;
	json_t *o = json_pack(
	    "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:i, s:i, s:i}",
	    "source", cfg->source, "mode", mode_name(b->mode), "entries", (json_int_t)entries,
	    "files", (json_int_t)files, "failed", (json_int_t)atomic_load(&b->failed),
	    "walk_errors", (json_int_t)atomic_load(&b->walk_errors), "bytes",
	    (json_int_t)atomic_load(&b->bytes), "walk_seconds", walk_s, "read_seconds", read_s,
	    "entries_per_s", walk_s > 0 ? entries / walk_s : 0.0, "files_per_s",
	    total > 0 ? files / total : 0.0, "mb_per_s", total > 0 ? mb / total : 0.0,
	    "io_depth", cfg->io_depth, "walkers", cfg->walkers, "nfs_connections",
	    cfg->nfs_connections);

	add_latency(o, lat);

	fprintf(stderr, "vhprep bench %s: %.0f entries in %.3f s (%.0f entries/s)", cfg->source,
		entries, walk_s, walk_s > 0 ? entries / walk_s : 0.0);
	if (b->mode != BENCH_WALK_ONLY)
		fprintf(stderr,
			"; %.0f files, %.1f MB read in %.3f s (%.0f files/s, %.1f MB/s)", files,
			mb, total, total > 0 ? files / total : 0.0,
			total > 0 ? mb / total : 0.0);
	fputc('\n', stderr);
	for (int op = 0; op < OPLAT__COUNT; op++)
		if (oplat_count(lat, op))
			fprintf(stderr,
				"  %-5s p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  (%llu)\n",
				oplat_name(op), (double)oplat_quantile(lat, op, 0.5) / 1e6,
				(double)oplat_quantile(lat, op, 0.9) / 1e6,
				(double)oplat_quantile(lat, op, 0.99) / 1e6,
				(unsigned long long)oplat_count(lat, op));
	if (o) {
		json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
		fputc('\n', stdout);
		fflush(stdout);
	}
	json_decref(o);
}

static void usage(FILE *out)
{
	fputs(
	    "Usage: vhprep bench [OPTIONS] SOURCE\n"
	    "       vhprep bench [OPTIONS] --urls FILE   (download the list alone)\n"
	    "\n"
	    "Walk and read SOURCE (a directory, mount or nfs:// URL) as a run would, without\n"
	    "transforming or writing: entries/s, files/s, MB/s and latency percentiles of\n"
	    "directory listings (nfs: READDIRPLUS pages), opens and reads. Text on stderr,\n"
	    "one JSON line on stdout.\n"
	    "\n"
	    "  --walk-only             list only\n"
	    "  --read-only             list first (untimed), then time the reads alone\n"
	    "  --io-depth N            opens+reads in flight (default 64)\n"
	    "  --walkers N             directories listed at once (default 16)\n"
	    "  --nfs-connections N     nfs://: TCP connections (default 4)\n"
	    "  --nfs-timeout S         nfs://: seconds to mount and per request (default 10)\n"
	    "  --read-budget SIZE      bytes in flight at most (default 256M)\n"
	    "  --urls FILE             fetch a URL list (see vhprep --help) instead of SOURCE\n"
	    "  --per-host N            --urls: connections per host (default 16)\n"
	    "  --cacert FILE           --urls: trust the CA certificates in FILE\n"
	    "  -h, --help              this text\n"
	    "\n"
	    "Exit codes: 0 done; 1 some reads failed or some directories could not be listed;\n"
	    "2 usage error or unreadable source.\n",
	    out);
}

/* Parses the bench options into cfg and *mode. Returns 0, 1 for --help, or -1. */
static int parse(int argc, char **argv, struct config *cfg, enum bench_mode *mode)
{
	static const struct option opts[] = {
	    {"walk-only", no_argument, NULL, 'w'},
	    {"read-only", no_argument, NULL, 'r'},
	    {"io-depth", required_argument, NULL, 'v'},
	    {"walkers", required_argument, NULL, 'v'},
	    {"nfs-connections", required_argument, NULL, 'v'},
	    {"nfs-timeout", required_argument, NULL, 'v'},
	    {"read-budget", required_argument, NULL, 'v'},
	    {"urls", required_argument, NULL, 'v'},
	    {"per-host", required_argument, NULL, 'v'},
	    {"cacert", required_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vherr err;
	int opt, idx;

	optind = 0;
	opterr = 0;
	/* every option with a value is one a run has too: parsed by the run's code */
	while ((opt = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
		switch (opt) {
		case 'w':
			*mode = BENCH_WALK_ONLY;
			break;
		case 'r':
			*mode = BENCH_READ_ONLY;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case 'v':
			if (options_parse_shared(opts[idx].name, optarg, cfg, &err) == 0)
				break;
			fprintf(stderr, "vhprep bench: %s (try --help)\n", err.msg);
			return -1;
		default:
			fprintf(stderr,
				"vhprep bench: invalid option or value '%s' (try --help)\n",
				argv[optind - 1]);
			return -1;
		}
	}
	if (optind != argc - (cfg->urls ? 0 : 1)) {
		fprintf(stderr, "vhprep bench: %s (try --help)\n",
			cfg->urls ? "--urls replaces SOURCE" : "one SOURCE expected");
		return -1;
	}
	cfg->source = cfg->urls ? cfg->urls : argv[optind];
	return 0;
}

/* Reads every entry kept by a --read-only walk. */
static void read_kept(struct bench *b)
{
	struct source_entry e;
	size_t pos = 0;

	while (entrybuf_next(&b->kept, &pos, &e) == 0)
		if (submit(b, &e) == SOURCE_STOP)
			break;
}

static int run(struct bench *b, struct config *cfg, struct oplat *lat)
{
	struct vherr err = {0};
	double t0 = stats_now(), walk_s, read_s = 0;
	int rc = source_walk(b->source, on_emit, b, on_walk_error, &err);

	if (b->mode == BENCH_WALK_READ)
		waitgroup_wait(&b->reads);
	walk_s = stats_now() - t0;
	if (rc < 0 || b->kept_failed) {
		fprintf(stderr, "vhprep bench: %s\n", rc < 0 ? err.msg : "out of memory");
		return 2;
	}
	if (b->mode == BENCH_READ_ONLY) {
		double r0 = stats_now();

		read_kept(b);
		waitgroup_wait(&b->reads);
		read_s = stats_now() - r0;
	} else if (b->mode == BENCH_WALK_READ) {
		read_s = walk_s;
	}
	report(b, cfg, lat, walk_s, read_s);
	if (atomic_load(&b->walk_errors))
		fprintf(stderr,
			"vhprep bench: %llu directories or entries could not be listed\n",
			(unsigned long long)atomic_load(&b->walk_errors));
	return atomic_load(&b->failed) || atomic_load(&b->walk_errors) ? 1 : 0;
}

int benchcmd_main(int argc, char **argv)
{
	struct config cfg;
	struct bench b = {0};
	struct oplat *lat = oplat_new();
	struct vherr err = {0};
	int code = 2, rc;

	config_defaults(&cfg);
	rc = parse(argc, argv, &cfg, &b.mode);
	if (rc != 0 || !lat) {
		oplat_free(lat);
		return rc == 1 ? 0 : 2;
	}
	pthread_mutex_init(&b.lock, NULL);
	waitgroup_init(&b.reads);
	b.budget = budget_new(cfg.read_budget);
	if (b.budget) {
		struct source_opts so = {.walkers = cfg.walkers,
					 .io_depth = cfg.io_depth,
					 .budget = b.budget,
					 .lat = lat,
					 .quiet = 1,
					 .nfs = {.connections = cfg.nfs_connections,
						 .timeout_ms = (int)(cfg.nfs_timeout * 1000)}};
		struct httpsrc_opts h = {.per_host = cfg.per_host,
					 .timeout_s = cfg.http_timeout,
					 .retries = cfg.retries,
					 .cacert = cfg.cacert};

		if (cfg.urls)
			so.http = &h;

		if (source_open(cfg.source, &so, &b.source, &err) < 0)
			fprintf(stderr, "vhprep bench: %s\n", err.msg);
		else
			code = run(&b, &cfg, lat);
	}
	source_free(b.source);
	budget_free(b.budget);
	entrybuf_release(&b.kept);
	pthread_mutex_destroy(&b.lock);
	waitgroup_destroy(&b.reads);
	oplat_free(lat);
	config_release(&cfg);
	return code;
}
