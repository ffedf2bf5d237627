#include "engine/run.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/benchcmd.h"
#include "engine/claims.h"
#include "engine/config.h"
#include "engine/options.h"
#include "engine/outsink.h"
#include "engine/pipeline.h"
#include "engine/progress.h"
#include "engine/resume.h"
#include "engine/since.h"
#include "engine/stats.h"
#include "engine/vhstatus.h"
#include "io/httpsrc.h"
#include "io/jsonname.h"
#include "io/outlock.h"
#include "kernels/kernel.h"

#include <curl/curl.h>

/* Everything one run opens; run_close frees what was opened, in any state. */
struct run {
	struct config cfg;
	struct metadata_binding binding;
	struct budget *budget;
	struct source *source;
	struct httpsrc_opts http; /* --urls: what the source borrows */
	struct dirsink *sink;
	struct sink *out; /* where the outputs go (engine/outsink.h) */
	struct outsink_report packed; /* what earlier runs' shards hold */
	atomic_ullong shards;	      /* shards this run published */
	struct outlock *lock;
	struct metadata *metadata;
	struct report *report;
	struct claims *claims;
	struct resume *resume;
	struct since *since;
	struct strlist excludes; /* the CSV line's exclude list (strings owned) */
	struct resume_report resumed;
	char ops[8][KERNEL_OP_MAX];
	const char *opv[8];
	int nops;
	struct stats stats;
	int stats_ready;
	int kernel_ready;
	struct pipeline *pipeline;
	struct preview *preview;
	int preview_written; /* the sheet is there, to be bound to the dataset */
	sigset_t signals;
	atomic_int signal; /* the signal that stopped the run, or 0 */
	time_t started;
};

static void say(const struct run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Prints one line of chatter on stderr unless --quiet. */
static void say(const struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (r->cfg.quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Whether the outputs dir holds no records yet (then the CSV starts afresh). */
static int records_empty(int dfd)
{
	struct stat st;

	return fstatat(dfd, METADATA_FILE, &st, 0) != 0 || st.st_size == 0;
}

/* Reconciles what earlier runs left (resume.h) and says what it found. */
static int open_resume(struct run *r, int dfd, int *exit_code, struct vherr *err)
{
	int rc;

	r->nops = kernel_describe(&r->cfg.kernel, r->ops, 8);
	for (int i = 0; i < r->nops; i++)
		r->opv[i] = r->ops[i];

	struct resume_opts o = {
	    .outputs = r->cfg.outputs,
	    .prefix = r->cfg.prefix,
	    .overwrite = r->cfg.overwrite,
	    .live_upload = r->cfg.live_upload,
	    .ops = r->opv,
	    .nops = r->nops,
	    .binding = &r->binding,
	};
	struct resume_report *rep = &r->resumed;

	r->claims = claims_new();
	if (!r->claims)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, NULL);
	rc = resume_open(dfd, r->metadata, r->claims, &o, &r->resume, rep, err);
	if (rc == -VHERR_USAGE)
		*exit_code = RUN_EXIT_USAGE;
	if (rc < 0)
		return rc;
	if (rep->earlier || rep->temps_removed || rep->lines_dropped)
		say(r,
		    "vhprep: '%s' holds %llu outputs of an earlier run: %s (removed %llu "
		    "temporary files, dropped %llu records whose output was missing)",
		    r->cfg.outputs, (unsigned long long)rep->earlier,
		    r->cfg.overwrite ? "redoing every input (--overwrite)"
				     : "resuming, unchanged inputs are skipped",
		    (unsigned long long)rep->temps_removed,
		    (unsigned long long)rep->lines_dropped);
	return 0;
}

/* pack sink: one shard published (its lines are in the records). */
static int on_shard(void *ctx, const struct pack_shard *shard, struct vherr *err)
{
	struct run *r = ctx;

	(void)shard;
	(void)err;
	atomic_fetch_add(&r->shards, 1);
	return 0;
}

/* Opens the sink the config asks for (engine/outsink.h) and says what earlier shards
 * hold. */
static int open_sink(struct run *r, struct vherr *err)
{
	struct outsink_env e = {
	    .cfg = &r->cfg,
	    .ds = r->sink,
	    .metadata = r->metadata,
	    .binding = &r->binding,
	    .resume = r->resume,
	    .on_shard = on_shard,
	    .ctx = r,
	};
	struct outsink_report *rep = &r->packed;

	if (outsink_open(&e, &r->out, rep, err) < 0)
		return -1;
	if (rep->shards)
		say(r,
		    "vhprep: '%s' holds %llu shards of an earlier run with %llu outputs: "
		    "resuming, their inputs are skipped, new shards follow (restored %llu "
		    "records)",
		    r->cfg.outputs, (unsigned long long)rep->shards,
		    (unsigned long long)rep->keys, (unsigned long long)rep->lines_restored);
	return 0;
}

/* Opens the outputs side: the dir, its lock, the records, and what earlier runs left.
 * Returns 0, or a negative code (err set) and *exit_code. */
static int open_outputs(struct run *r, int *exit_code, struct vherr *err)
{
	int dfd, fresh, rc;

	*exit_code = RUN_EXIT_FATAL;
	if (dirsink_open(r->cfg.outputs, r->cfg.live_upload, &r->sink, err) < 0)
		return -1;
	dfd = dirsink_dirfd(r->sink);
	rc = outlock_acquire(dfd, r->cfg.outputs, &r->lock, err);
	if (rc == -VHERR_EXISTS)
		*exit_code = RUN_EXIT_USAGE;
	if (rc < 0)
		return -1;
	config_binding(&r->cfg, &r->binding);
	fresh = records_empty(dfd);
	if (metadata_open(dfd, &r->binding, &r->metadata, err) < 0 ||
	    open_resume(r, dfd, exit_code, err) < 0 ||
	    report_open(dfd, fresh, &r->report, err) < 0)
		return -1;
	if (r->resumed.compacted && report_csv_rebuild(r->report, err) < 0)
		return -1;
	return open_sink(r, err);
}

static int open_all(struct run *r, int *exit_code, struct vherr *err)
{
	struct source_opts so = {
		.walkers = r->cfg.walkers,
		.io_depth = r->cfg.io_depth,
		.files_from = r->cfg.files_from,
		.quiet = r->cfg.quiet,
		.nfs = {.connections = r->cfg.nfs_connections,
			.timeout_ms = (int)(r->cfg.nfs_timeout * 1000)},
	};

	*exit_code = RUN_EXIT_FATAL;
	if (kernel_global_init("vhprep", err) < 0)
		return -1;
	r->kernel_ready = 1;
	r->budget = budget_new(r->cfg.read_budget);
	if (!r->budget)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, NULL);
	so.budget = r->budget;
	if (r->cfg.urls) {
		r->http = (struct httpsrc_opts){
			.url_column = r->cfg.url_column,
			.key_column = r->cfg.key_column,
			.per_host = r->cfg.per_host,
			.timeout_s = r->cfg.http_timeout,
			.retries = r->cfg.retries,
			.keep_query = r->cfg.keep_query,
			.insecure = r->cfg.insecure,
			.cacert = r->cfg.cacert,
			.netrc_file = r->cfg.netrc_file,
			.allow_metadata_ip = r->cfg.allow_metadata_ip,
		};
		so.http = &r->http;
	}
	if (source_open(r->cfg.source, &so, &r->source, err) < 0) {
		*exit_code = RUN_EXIT_USAGE;
		return -1;
	}
	if (open_outputs(r, exit_code, err) < 0)
		return -1;
	if (r->cfg.since && since_open(r->cfg.since, r->cfg.since_checksum, &r->since, err) < 0) {
		*exit_code = RUN_EXIT_USAGE;
		return -1;
	}
	stats_init(&r->stats);
	r->stats_ready = 1;
	r->preview = preview_new(&r->cfg); /* NULL: --preview 0 (or no memory: no sheet) */
	return 0;
}

static const char *signal_name(int sig)
{
	return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : NULL;
}

static int finish(struct run *r, int fatal, int forced);

/* A second stop signal: the files in flight are abandoned, the records sealed and the
 * summary written now, and the process exits (the threads still reading or transforming
 * go with it; none of them holds a file of the outputs open: pipeline_abort). */
static void stop_now(struct run *r, int sig)
{
	int code;

	say(r, "\nvhprep: %s again: stopping now, abandoning the files in flight",
	    signal_name(sig));
	pipeline_abort(r->pipeline);
	code = finish(r, 0, 1);
	fflush(stdout);
	fflush(stderr);
	_exit(code);
}

/* The monitor thread: turns SIGINT/SIGTERM/SIGHUP into a clean stop (a second one into
 * an immediate one) and prints progress; SIGUSR1 from execute() says the pipeline is
 * over. */
static void *monitor_main(void *arg)
{
	struct run *r = arg;
	struct timespec tick = {0, 200 * 1000 * 1000};
	int progress_on = r->cfg.progress == 1 || (r->cfg.progress == -1 && isatty(2));
	struct progress pr;

	progress_init(&pr, &r->stats, progress_on && !r->cfg.quiet ? stderr : NULL, stdout,
		      r->cfg.metrics_interval);
	while (!pipeline_finished(r->pipeline)) {
		int sig = sigtimedwait(&r->signals, NULL, &tick);

		if (signal_name(sig) && atomic_load(&r->signal))
			stop_now(r, sig);
		if (signal_name(sig) && !atomic_exchange(&r->signal, sig)) {
			say(r, "\nvhprep: %s received: finishing the files in flight (send it "
			       "again to stop at once)",
			    signal_name(sig));
			pipeline_cancel(r->pipeline);
		}
		progress_tick(&pr, stats_now());
	}
	progress_finish(&pr);
	return NULL;
}

static json_t *summary_json(struct run *r, double seconds, int exit_code)
{
	struct stats *s = &r->stats;
	double done = (double)atomic_load(&s->processed);
	char started[32];
	struct tm tm;
	int sig = atomic_load(&r->signal);

	char source[4 * PATH_MAX], outputs[4 * PATH_MAX];

	gmtime_r(&r->started, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (jsonname_escape(r->cfg.source, source, sizeof(source)) < 0 ||
	    jsonname_escape(r->cfg.outputs, outputs, sizeof(outputs)) < 0)
		return NULL;
	return json_pack(
		"{s:s, s:s, s:s, s:s, s:f, s:o, s:{s:I, s:I}, s:f, s:f, s:f, s:o, s:b, s:s?, "
		"s:i, s:{s:i, s:i, s:i, s:I, s:I, s:s, s:I}}",
		"vhprep_version", VHPREP_VERSION, "source", source, "outputs", outputs,
		"started_at", started, "seconds", seconds, "files",
		stats_files_json(s), "bytes", "read", (json_int_t)atomic_load(&s->bytes_read),
		"written", (json_int_t)atomic_load(&s->bytes_written), "files_per_s",
		seconds > 0 ? done / seconds : 0.0, "mb_per_s",
		seconds > 0 ? (double)atomic_load(&s->bytes_read) / 1e6 / seconds : 0.0,
		"peak_rss_mb", (double)stats_peak_rss() / 1e6, "failures",
		stats_failures_json(s), "walk_complete", atomic_load(&s->walk_complete),
		"interrupted_by", signal_name(sig), "exit_code", exit_code, "config", "threads",
		r->cfg.threads, "io_depth", r->cfg.io_depth, "walkers", r->cfg.walkers,
		"read_budget", (json_int_t)r->cfg.read_budget, "memory", (json_int_t)r->cfg.memory,
		"memory_from", r->cfg.memory_from, "max_file_size",
		(json_int_t)r->cfg.max_file_size);
}

static void print_summary(struct run *r, double seconds)
{
	struct stats *s = &r->stats;
	unsigned long long done = atomic_load(&s->processed);
	uint64_t logged = r->report ? report_errors(r->report) : 0;

	if (r->cfg.quiet)
		return;
	fprintf(stderr,
		"vhprep: %llu processed, %llu already done, %llu failed, %llu filtered out, "
		"%llu not images by name, %llu skipped by size (of %llu found) in %.2f s: "
		"%.1f files/s\n",
		done, (unsigned long long)atomic_load(&s->already_done),
		(unsigned long long)atomic_load(&s->failed),
		(unsigned long long)atomic_load(&s->filtered),
		(unsigned long long)atomic_load(&s->skipped_type),
		(unsigned long long)atomic_load(&s->skipped_size),
		(unsigned long long)atomic_load(&s->found), seconds,
		seconds > 0 ? (double)done / seconds : 0.0);
	for (int c = 1; c < VHERR__COUNT; c++)
		if (atomic_load(&s->by_reason[c]))
			fprintf(stderr, "vhprep:   %s: %llu%s%s%s\n", vherr_reason(c),
				(unsigned long long)atomic_load(&s->by_reason[c]),
				logged ? " (see " : "", logged ? REPORT_ERRORS_FILE : "",
				logged ? ")" : "");
	fprintf(stderr, "vhprep: outputs in %s/%s, records in %s\n", r->cfg.outputs,
		r->cfg.prefix, r->cfg.outputs);
}

/* Appends " --NAME 'v'" for each of list's words to buf (of size, used so far *n). */
static void name_list(char *buf, size_t size, size_t *n, const char *name,
		      const struct strlist *list)
{
	for (int i = 0; i < list->n && *n < size; i++)
		*n += (size_t)snprintf(buf + *n, size - *n, " %s '%s'", name, list->v[i]);
}

/* A complete walk that found files and selected none of them (not because they are other
 * --shard members' share): says which filters did it on stderr and returns 1. */
static int none_selected(struct run *r)
{
	struct stats *s = &r->stats;
	const struct config *c = &r->cfg;
	uint64_t found = atomic_load(&s->found);
	char filters[1024] = "";
	size_t n = 0;
	int commas = 0;

	if (!atomic_load(&s->walk_complete) || !found ||
	    atomic_load(&s->submitted) != atomic_load(&s->skipped_size) ||
	    atomic_load(&s->other_shard))
		return 0;
	name_list(filters, sizeof(filters), &n, "--include", &c->includes);
	name_list(filters, sizeof(filters), &n, "--exclude", &c->excludes);
	for (int i = 0; i < c->includes.n; i++)
		commas |= strchr(c->includes.v[i], ',') != NULL;
	if (c->sample < 1.0 && n < sizeof(filters))
		n += (size_t)snprintf(filters + n, sizeof(filters) - n, " --sample %g", c->sample);
	if ((c->min_size || c->max_size != UINT64_MAX) && n < sizeof(filters))
		n += (size_t)snprintf(filters + n, sizeof(filters) - n, " --min-size/--max-size");
	if (!c->includes.n && atomic_load(&s->skipped_type) == found)
		fprintf(stderr,
			"vhprep: none of the %llu files found has an extension of an image format "
			"vhprep reads (jpg, jpeg, png, webp, gif, tif, tiff, bmp, ...): choose "
			"files by name with --include GLOB (e.g. --include '*')\n",
			(unsigned long long)found);
	else
		fprintf(stderr, "vhprep: selected 0 of the %llu files found:%s%s\n",
			(unsigned long long)found, n ? " the filters" : "",
			n ? filters : " every file was filtered out");
	if (c->includes.n)
		fprintf(stderr,
			"vhprep: %sglobs are not comma-separated: repeat the option, e.g. "
			"--include '*.jpg' --include '*.png'\n",
			commas ? "a glob holds a comma, but " : "");
	return 1;
}

static int exit_code_of(struct run *r, int fatal)
{
	int sig = atomic_load(&r->signal);

	if (sig)
		return sig == SIGINT ? RUN_EXIT_SIGINT
		       : sig == SIGHUP ? RUN_EXIT_SIGHUP
				       : RUN_EXIT_SIGTERM;
	if (fatal)
		return RUN_EXIT_FATAL;
	if (atomic_load(&r->stats.failed) > r->cfg.max_errors)
		return RUN_EXIT_FAILURES;
	return RUN_EXIT_OK;
}

static int add_exclude(void *ctx, const char *file)
{
	struct run *r = ctx;
	char *copy = strdup(file);

	if (!copy || strlist_add(&r->excludes, copy) < 0) {
		free(copy);
		return -VHERR_NOMEM;
	}
	return 0;
}

/* The new version's exclude list: --dataset-exclude, then what --since found changed or
 * deleted. It goes on the CSV's line, the last one written, when the list is complete
 * (Valohai's own example, valohai/dataset-update-example uds.py, writes
 * {"uri", "from", "exclude"} on the files of the new version; see README). */
static int collect_excludes(struct run *r, struct vherr *err)
{
	int rc = 0;

	if (!r->cfg.dataset_from)
		return 0;
	for (int i = 0; rc == 0 && i < r->cfg.dataset_excludes.n; i++)
		rc = add_exclude(r, r->cfg.dataset_excludes.v[i]);
	if (rc == 0 && r->since)
		rc = since_excluded(r->since, atomic_load(&r->stats.walk_complete), add_exclude, r,
				    err);
	if (rc == -VHERR_NOMEM)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	return rc;
}

/* Binds file (one of the run's own: the CSV, the preview sheet) to the dataset, with
 * the exclude list when excludes, unless a line equal to it stands already (earlier, the
 * last line for file an earlier run left). */
static int bind_file(struct run *r, const char *file, int excludes, json_t *earlier,
		     struct vherr *err)
{
	struct metadata_binding b = r->binding;
	char *line;
	int rc = excludes ? collect_excludes(r, err) : 0;

	if (rc < 0)
		return rc;
	if (excludes) {
		b.excludes = r->excludes.v;
		b.nexcludes = r->excludes.n;
	}
	line = metadata_format_line(&b, file, NULL);
	json_t *want = line ? json_loads(line, 0, NULL) : NULL;

	if (!want)
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	else if (!earlier || !json_equal(want, earlier)) {
		rc = metadata_append_line(r->metadata, line, strlen(line), NULL, err);
		if (rc == 0 && earlier)
			metadata_superseded(r->metadata);
	}
	json_decref(want);
	free(line);
	return rc;
}

/* Makes the records final and durable: the CSV's own line, the compaction a superseded
 * or retracted line calls for (and the CSV rebuilt to match), everything flushed to
 * stable storage (outputs included: syncfs), the files closed. */
static int seal_records(struct run *r, struct vherr *err)
{
	int dfd = dirsink_dirfd(r->sink), compacted = 0, rc;
	uint64_t removed = 0;

	rc = sink_close(r->out, err); /* the pack's last shard, and its lines */
	if (rc == 0)
		rc = resume_finish(r->resume, r->sink, atomic_load(&r->stats.walk_complete), &removed,
			   err);
	if (rc == 0 && removed)
		say(r, "vhprep: removed %llu outputs of an earlier run that no input replaced "
		       "(--overwrite)",
		    (unsigned long long)removed);
	if (rc == 0 && r->preview_written)
		rc = bind_file(r, PREVIEW_FILE, 0, r->resumed.preview_line, err);
	if (rc == 0)
		rc = bind_file(r, REPORT_CSV_FILE, 1, r->resumed.csv_line, err);
	if (rc == 0)
		rc = metadata_finish(r->metadata, &compacted, err);
	if (rc == 0 && compacted)
		rc = report_csv_rebuild(r->report, err);
	if (rc == 0)
		rc = report_sync(r->report, err);
	if (rc == 0 && syncfs(dfd) != 0)
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot flush '%s'", r->cfg.outputs);
	if (rc == 0)
		rc = metadata_close(r->metadata, err);
	else
		metadata_close(r->metadata, NULL);
	r->metadata = NULL;
	return rc;
}

/* The end of a run: the records sealed, the summary file and the summary on stderr. Any
 * failure here is said on stderr and makes the exit code 1. forced: the process exits
 * right after, with workers still alive (the report stays open for their failure lines). */
static int finish(struct run *r, int fatal, int forced)
{
	double seconds = stats_elapsed(&r->stats);
	int code = exit_code_of(r, fatal);
	struct vherr err = {0};
	json_t *summary;

	if (code == RUN_EXIT_OK && none_selected(r))
		code = RUN_EXIT_USAGE;
	if (!forced && preview_finish(r->preview, r->sink, &r->stats, atomic_load(&r->signal)) &&
	    r->cfg.preview_in_dataset)
		r->preview_written = 1;
	if (seal_records(r, &err) < 0) {
		fprintf(stderr, "vhprep: %s\n", err.msg);
		code = RUN_EXIT_FATAL;
	}
	summary = summary_json(r, seconds, code);
	if (summary && r->cfg.pack &&
	    (json_object_set_new(summary, "sink", json_string(sink_kind(r->out))) != 0 ||
	     json_object_set_new(summary, "shards",
				 json_integer((json_int_t)atomic_load(&r->shards))) != 0)) {
		json_decref(summary);
		summary = NULL;
	}
	if (!summary || report_write_summary(dirsink_dirfd(r->sink), summary, &err) < 0) {
		fprintf(stderr, "vhprep: cannot write %s: %s\n", REPORT_SUMMARY_FILE,
			summary ? err.msg : "out of memory");
		code = RUN_EXIT_FATAL;
	}
	json_decref(summary);
	print_summary(r, seconds);
	if (forced)
		return code;
	if (report_close(r->report, &err) < 0) {
		fprintf(stderr, "vhprep: %s\n", err.msg);
		code = RUN_EXIT_FATAL;
	}
	r->report = NULL;
	return code;
}

static int execute(struct run *r, struct vherr *err)
{
	struct pipeline_env env = {
		.cfg = &r->cfg,
		.source = r->source,
		.budget = r->budget,
		.sink = r->out,
		.report = r->report,
		.stats = &r->stats,
		.claims = r->claims,
		.resume = r->resume,
		.since = r->since,
		.preview = r->preview,
	};
	pthread_t monitor;
	struct vhstatus *status;
	int rc, code;

	r->pipeline = pipeline_new(&env);
	if (!r->pipeline || pthread_create(&monitor, NULL, monitor_main, r) != 0) {
		vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, "cannot start the pipeline");
		return RUN_EXIT_FATAL;
	}
	status = vhstatus_start(&r->stats, r->cfg.quiet);
	rc = pipeline_run(r->pipeline, err);
	pthread_kill(monitor, SIGUSR1);
	pthread_join(monitor, NULL);
	if (rc < 0 && !r->cfg.quiet)
		fprintf(stderr, "vhprep: %s\n", err->msg);
	code = finish(r, rc < 0, 0);
	if (rc < 0 && err->code == VHERR_NOENT && atomic_load(&r->stats.found) == 0)
		code = RUN_EXIT_USAGE; /* the root vanished or could not be listed */
	vhstatus_stop(status, code);
	return code;
}

static void run_close(struct run *r)
{
	pipeline_free(r->pipeline);
	sink_free(r->out);
	preview_free(r->preview);
	metadata_close(r->metadata, NULL);
	report_close(r->report, NULL);
	resume_free(r->resume);
	claims_free(r->claims);
	since_free(r->since);
	for (int i = 0; i < r->excludes.n; i++)
		free((char *)r->excludes.v[i]);
	free(r->excludes.v);
	json_decref(r->resumed.csv_line);
	json_decref(r->resumed.preview_line);
	source_free(r->source);
	outlock_release(r->lock); /* last: the records are closed */
	dirsink_free(r->sink);
	budget_free(r->budget);
	if (r->stats_ready)
		stats_release(&r->stats);
	config_release(&r->cfg);
}

int run_main(int argc, char **argv)
{
	struct run r;
	struct vherr err = {0};
	int code = RUN_EXIT_USAGE, rc;

	curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread: --urls, status detail */
	if (argc > 1 && strcmp(argv[1], "bench") == 0) {
		code = benchcmd_main(argc - 1, argv + 1);
		curl_global_cleanup();
		return code;
	}

	memset(&r, 0, sizeof(r));
	/* first: from here on SIGINT/SIGTERM wait for the monitor thread, which turns
	 * them into a clean stop with records and a summary */
	sigemptyset(&r.signals);
	sigaddset(&r.signals, SIGINT);
	sigaddset(&r.signals, SIGTERM);
	sigaddset(&r.signals, SIGHUP);
	sigaddset(&r.signals, SIGUSR1); /* the pipeline's end wakes the monitor */
	pthread_sigmask(SIG_BLOCK, &r.signals, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed stdout: EPIPE ends the metrics lines only */
	r.started = time(NULL);
	config_defaults(&r.cfg);
	rc = options_parse(argc, argv, &r.cfg, stdout, &err);
	if (rc == OPTIONS_EXIT) {
		code = RUN_EXIT_OK;
		goto out;
	}
	if (rc < 0 || config_finish(&r.cfg, &err) < 0)
		goto fail;
	json_object_seed(0);
	if (open_all(&r, &code, &err) < 0)
		goto fail;
	code = execute(&r, &err);
	goto out;
fail:
	fprintf(stderr, "vhprep: %s\n", err.msg);
out:
	run_close(&r);
	if (r.kernel_ready)
		kernel_global_shutdown();
	curl_global_cleanup();
	return code;
}
