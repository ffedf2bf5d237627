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
#include "engine/config.h"
#include "engine/options.h"
#include "engine/pipeline.h"
#include "engine/progress.h"
#include "engine/stats.h"
#include "kernels/kernel.h"

/* Everything one run opens; run_close frees what was opened, in any state. */
struct run {
	struct config cfg;
	struct metadata_binding binding;
	struct budget *budget;
	struct source *source;
	struct dirsink *sink;
	struct metadata *metadata;
	struct report *report;
	struct stats stats;
	int stats_ready;
	int kernel_ready;
	struct pipeline *pipeline;
	struct preview *preview;
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

/* Refuses an outputs dir that holds an earlier run's records, unless --overwrite: two
 * runs' lines in one valohai.metadata.jsonl would bind files that are not there. */
static int check_fresh_outputs(struct run *r, struct vherr *err)
{
	struct stat st;

	if (r->cfg.overwrite)
		return 0;
	if (fstatat(dirsink_dirfd(r->sink), METADATA_FILE, &st, 0) == 0 && st.st_size > 0)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "outputs dir '%s' already holds a run's %s: use a fresh "
				 "--outputs, or --overwrite",
				 r->cfg.outputs, METADATA_FILE);
	return 0;
}

/* Opens the outputs side. Returns 0, or a negative code (err set) and *exit_code. */
static int open_outputs(struct run *r, int *exit_code, struct vherr *err)
{
	int dfd;

	*exit_code = RUN_EXIT_FATAL;
	if (dirsink_open(r->cfg.outputs, r->cfg.live_upload, r->cfg.overwrite, &r->sink,
			 err) < 0)
		return -1;
	if (check_fresh_outputs(r, err) < 0) {
		*exit_code = RUN_EXIT_USAGE;
		return -1;
	}
	dfd = dirsink_dirfd(r->sink);
	config_binding(&r->cfg, &r->binding);
	if (metadata_open(dfd, &r->binding, &r->metadata, err) < 0 ||
	    report_open(dfd, &r->report, err) < 0)
		return -1;
	return 0;
}

static int open_all(struct run *r, int *exit_code, struct vherr *err)
{
	struct source_opts so = {
		.walkers = r->cfg.walkers,
		.io_depth = r->cfg.io_depth,
		.files_from = r->cfg.files_from,
		.quiet = r->cfg.quiet,
		.nfs_connections = r->cfg.nfs_connections,
		.nfs_timeout_ms = (int)(r->cfg.nfs_timeout * 1000),
	};

	*exit_code = RUN_EXIT_FATAL;
	if (kernel_global_init("vhprep", err) < 0)
		return -1;
	r->kernel_ready = 1;
	r->budget = budget_new(r->cfg.read_budget);
	if (!r->budget)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, NULL);
	so.budget = r->budget;
	if (source_open(r->cfg.source, &so, &r->source, err) < 0) {
		*exit_code = RUN_EXIT_USAGE;
		return -1;
	}
	if (open_outputs(r, exit_code, err) < 0)
		return -1;
	stats_init(&r->stats);
	r->stats_ready = 1;
	r->preview = preview_new(&r->cfg); /* NULL: --preview 0 (or no memory: no sheet) */
	return 0;
}

/* The monitor thread: turns SIGINT/SIGTERM into a clean stop and prints progress;
 * SIGUSR1 from execute() says the pipeline is over. */
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

		if ((sig == SIGINT || sig == SIGTERM) && !atomic_exchange(&r->signal, sig)) {
			say(r, "\nvhprep: %s received: finishing the files in flight",
			    sig == SIGINT ? "SIGINT" : "SIGTERM");
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

	gmtime_r(&r->started, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_pack(
		"{s:s, s:s, s:s, s:s, s:f, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, "
		"s:{s:I, s:I}, s:f, s:f, s:f, s:o, s:b, s:s?, s:i, "
		"s:{s:i, s:i, s:i, s:I}}",
		"vhprep_version", VHPREP_VERSION, "source", r->cfg.source, "outputs",
		r->cfg.outputs, "started_at", started, "seconds", seconds, "files", "found",
		(json_int_t)atomic_load(&s->found), "selected",
		(json_int_t)atomic_load(&s->submitted), "processed", (json_int_t)done, "failed",
		(json_int_t)atomic_load(&s->failed), "filtered",
		(json_int_t)atomic_load(&s->filtered), "skipped_size",
		(json_int_t)atomic_load(&s->skipped_size), "cancelled",
		(json_int_t)atomic_load(&s->cancelled), "over_limit",
		(json_int_t)atomic_load(&s->over_limit), "bytes", "read",
		(json_int_t)atomic_load(&s->bytes_read), "written",
		(json_int_t)atomic_load(&s->bytes_written), "files_per_s",
		seconds > 0 ? done / seconds : 0.0, "mb_per_s",
		seconds > 0 ? (double)atomic_load(&s->bytes_read) / 1e6 / seconds : 0.0,
		"peak_rss_mb", (double)stats_peak_rss() / 1e6, "failures",
		stats_failures_json(s), "walk_complete", atomic_load(&s->walk_complete),
		"interrupted_by", sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : NULL,
		"exit_code", exit_code, "config", "threads", r->cfg.threads, "io_depth",
		r->cfg.io_depth, "walkers", r->cfg.walkers, "read_budget",
		(json_int_t)r->cfg.read_budget);
}

static void print_summary(struct run *r, double seconds)
{
	struct stats *s = &r->stats;
	unsigned long long done = atomic_load(&s->processed);

	if (r->cfg.quiet)
		return;
	fprintf(stderr,
		"vhprep: %llu processed, %llu failed, %llu filtered out, %llu skipped by size "
		"(of %llu found) in %.2f s: %.1f files/s\n",
		done, (unsigned long long)atomic_load(&s->failed),
		(unsigned long long)atomic_load(&s->filtered),
		(unsigned long long)atomic_load(&s->skipped_size),
		(unsigned long long)atomic_load(&s->found), seconds,
		seconds > 0 ? (double)done / seconds : 0.0);
	for (int c = 1; c < VHERR__COUNT; c++)
		if (atomic_load(&s->by_reason[c]))
			fprintf(stderr, "vhprep:   %s: %llu (see %s)\n", vherr_reason(c),
				(unsigned long long)atomic_load(&s->by_reason[c]),
				REPORT_ERRORS_FILE);
	fprintf(stderr, "vhprep: outputs in %s/%s, records in %s\n", r->cfg.outputs,
		r->cfg.prefix, r->cfg.outputs);
}

static int exit_code_of(struct run *r, int fatal)
{
	int sig = atomic_load(&r->signal);

	if (sig)
		return sig == SIGINT ? RUN_EXIT_SIGINT : RUN_EXIT_SIGTERM;
	if (fatal)
		return RUN_EXIT_FATAL;
	if (atomic_load(&r->stats.failed) > r->cfg.max_errors)
		return RUN_EXIT_FAILURES;
	return RUN_EXIT_OK;
}

/* The end of a run: the CSV's own metadata line, the summary file and line. */
static int finish(struct run *r, int fatal, struct vherr *err)
{
	double seconds = stats_elapsed(&r->stats);
	int code = exit_code_of(r, fatal);
	json_t *summary;

	if (metadata_append(r->metadata, REPORT_CSV_FILE, NULL, err) < 0 ||
	    preview_finish(r->preview, r->sink, r->metadata, &r->stats, atomic_load(&r->signal),
			   err) < 0)
		code = RUN_EXIT_FATAL;
	summary = summary_json(r, seconds, code);
	if (!summary || report_write_summary(dirsink_dirfd(r->sink), summary, err) < 0)
		code = RUN_EXIT_FATAL;
	json_decref(summary);
	print_summary(r, seconds);
	return code;
}

static int execute(struct run *r, struct vherr *err)
{
	struct pipeline_env env = {
		.cfg = &r->cfg,
		.source = r->source,
		.budget = r->budget,
		.sink = r->sink,
		.metadata = r->metadata,
		.report = r->report,
		.stats = &r->stats,
		.preview = r->preview,
	};
	pthread_t monitor;
	int rc, code;

	r->pipeline = pipeline_new(&env);
	if (!r->pipeline || pthread_create(&monitor, NULL, monitor_main, r) != 0) {
		vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, "cannot start the pipeline");
		return RUN_EXIT_FATAL;
	}
	rc = pipeline_run(r->pipeline, err);
	pthread_kill(monitor, SIGUSR1);
	pthread_join(monitor, NULL);
	if (rc < 0 && !r->cfg.quiet)
		fprintf(stderr, "vhprep: %s\n", err->msg);
	code = finish(r, rc < 0, err);
	if (rc < 0 && err->code == VHERR_NOENT && atomic_load(&r->stats.found) == 0)
		code = RUN_EXIT_USAGE; /* the root vanished or could not be listed */
	return code;
}

static void run_close(struct run *r)
{
	pipeline_free(r->pipeline);
	preview_free(r->preview);
	metadata_close(r->metadata);
	report_close(r->report);
	source_free(r->source);
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

	if (argc > 1 && strcmp(argv[1], "bench") == 0)
		return benchcmd_main(argc - 1, argv + 1);

	memset(&r, 0, sizeof(r));
	/* first: from here on SIGINT/SIGTERM wait for the monitor thread, which turns
	 * them into a clean stop with records and a summary */
	sigemptyset(&r.signals);
	sigaddset(&r.signals, SIGINT);
	sigaddset(&r.signals, SIGTERM);
	sigaddset(&r.signals, SIGUSR1); /* the pipeline's end wakes the monitor */
	pthread_sigmask(SIG_BLOCK, &r.signals, NULL);
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
	return code;
}
