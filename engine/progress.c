#include "engine/progress.h"

#include <stdatomic.h>
#include <string.h>

#define LINE_INTERVAL 0.5

void progress_init(struct progress *pr, struct stats *stats, FILE *line_out,
		   FILE *metrics_out, double metrics_interval)
{
	memset(pr, 0, sizeof(*pr));
	pr->stats = stats;
	pr->line_out = line_out;
	pr->metrics_out = metrics_interval > 0 ? metrics_out : NULL;
	pr->metrics_interval = metrics_interval;
	pr->next_line = stats->start + LINE_INTERVAL;
	pr->next_metrics = stats->start + metrics_interval;
}

json_t *progress_metrics(struct stats *s)
{
	double t = stats_elapsed(s);
	double done = (double)atomic_load(&s->processed);
	double mb = (double)atomic_load(&s->bytes_read) / 1e6;

	return json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:i, s:f}", "files_found",
			 (json_int_t)atomic_load(&s->found), "files_selected",
			 (json_int_t)atomic_load(&s->submitted), "files_processed",
			 (json_int_t)done, "files_failed",
			 (json_int_t)atomic_load(&s->failed), "files_per_s",
			 t > 0 ? done / t : 0.0, "mb_per_s", t > 0 ? mb / t : 0.0,
			 "elapsed_s", t, "rss_mb", (double)stats_current_rss() / 1e6,
			 "walk_complete", atomic_load(&s->walk_complete), "mb_read", mb);
}

static void format_eta(double seconds, char *buf, size_t size)
{
	long s = (long)(seconds + 0.5);

	snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

void progress_format_line(struct stats *s, char *buf, size_t size)
{
	double t = stats_elapsed(s);
	uint64_t done = atomic_load(&s->processed);
	double rate = t > 0 ? (double)done / t : 0;
	double mbs = t > 0 ? (double)atomic_load(&s->bytes_read) / 1e6 / t : 0;
	char eta[32] = "?";

	if (atomic_load(&s->walk_complete) && rate > 0) {
		uint64_t total = atomic_load(&s->submitted), fin = stats_finished(s);

		format_eta(fin < total ? (double)(total - fin) / rate : 0, eta, sizeof(eta));
	}
	snprintf(buf, size,
		 "vhprep: %llu files (%llu found)  %.1f files/s  %.1f MB/s  %llu errors  "
		 "ETA %s",
		 (unsigned long long)done, (unsigned long long)atomic_load(&s->found), rate,
		 mbs, (unsigned long long)atomic_load(&s->failed), eta);
}

static void print_metrics(struct progress *pr)
{
	json_t *m = progress_metrics(pr->stats);

	if (!m)
		return;
	if (json_dumpf(m, pr->metrics_out, JSON_COMPACT | JSON_REAL_PRECISION(6)) != 0 ||
	    fputc('\n', pr->metrics_out) == EOF || fflush(pr->metrics_out) != 0)
		pr->metrics_out = NULL; /* the reader went away (EPIPE): no more lines */
	json_decref(m);
}

void progress_tick(struct progress *pr, double now)
{
	char line[256];

	if (pr->line_out && now >= pr->next_line) {
		progress_format_line(pr->stats, line, sizeof(line));
		fprintf(pr->line_out, "\r\033[K%s", line);
		fflush(pr->line_out);
		pr->line_shown = 1;
		pr->next_line = now + LINE_INTERVAL;
	}
	if (pr->metrics_out && now >= pr->next_metrics) {
		print_metrics(pr);
		pr->next_metrics = now + pr->metrics_interval;
	}
}

void progress_finish(struct progress *pr)
{
	if (pr->line_out && pr->line_shown) {
		fputs("\r\033[K", pr->line_out);
		fflush(pr->line_out);
	}
	if (pr->metrics_out)
		print_metrics(pr);
}
