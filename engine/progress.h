/* progress: what a long run tells while it works. On a terminal, one self-rewriting line
 * on stderr (files, files/s, MB/s, errors, ETA once the walk is complete); every few
 * seconds one JSON object on its own stdout line, which Valohai reads as execution
 * metrics. Called from one thread (the run's monitor). */
#ifndef VHPREP_ENGINE_PROGRESS_H
#define VHPREP_ENGINE_PROGRESS_H

#include <jansson.h>
#include <stdio.h>

#include "engine/stats.h"

struct progress {
	struct stats *stats;     /* borrowed */
	FILE *line_out;          /* stderr, or NULL for no progress line */
	FILE *metrics_out;       /* stdout, or NULL for no metrics lines */
	double metrics_interval; /* seconds */
	double next_line, next_metrics; /* monotonic deadlines */
	int line_shown;          /* a progress line is on screen (to clear) */
};

/* Sets up pr; line_out/metrics_out may be NULL to turn that output off. */
void progress_init(struct progress *pr, struct stats *stats, FILE *line_out,
		   FILE *metrics_out, double metrics_interval);
/* Prints what is due at monotonic time now. */
void progress_tick(struct progress *pr, double now);
/* Prints a last metrics line and clears the progress line. */
void progress_finish(struct progress *pr);
/* Returns the metrics object for this moment (new reference), or NULL. */
json_t *progress_metrics(struct stats *stats);
/* Formats the human progress line into buf. */
void progress_format_line(struct stats *stats, char *buf, size_t size);

#endif
