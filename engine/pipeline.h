/* pipeline: the run's data path. A walk thread enumerates the source and submits reads
 * (io_depth in flight, bounded by the byte budget); read completions queue the files for
 * the OpenMP workers, which transform, write, and record each one.
 *
 *   walk ──emit──► select ──submit──► source reads ──done──► ready queue ──► workers
 *
 * Back-pressure: the ready queue and the budget block the readers, and a full read queue
 * blocks the walk, so memory stays bounded however large the tree.
 *
 * Publishing one output (publish_output): stage it in the sink (io/sink.h; the dir sink
 * writes it under a temporary name), claim its name (claims.h: the byte-smaller input
 * path wins a collision), publish it with its metadata line through the sink (the dir
 * sink removes the output it replaces if any, appends the line, renames into place; a
 * pack cannot replace, so there the first published keeps a contested name), add its
 * CSV row. The dir sink's line goes before the rename so that a crash at any instant
 * leaves at worst a line whose output is missing, which the next run drops and redoes
 * (resume.h). */
#ifndef VHPREP_ENGINE_PIPELINE_H
#define VHPREP_ENGINE_PIPELINE_H

#include "common/budget.h"
#include "engine/claims.h"
#include "engine/config.h"
#include "engine/resume.h"
#include "engine/since.h"
#include "engine/preview.h"
#include "engine/stats.h"
#include "io/report.h"
#include "io/sink.h"
#include "io/source.h"

/* What a run drives; everything borrowed, and must outlive the pipeline. */
struct pipeline_env {
	const struct config *cfg;
	struct source *source;
	struct budget *budget;  /* the same budget the source's reads take from */
	struct sink *sink;      /* where outputs and their records go */
	struct report *report;
	struct stats *stats;
	struct claims *claims;  /* who owns each output name */
	struct resume *resume;  /* what earlier runs left, or NULL */
	struct since *since;    /* --since's records, or NULL */
	struct preview *preview; /* NULL: no preview sheet */
};

struct pipeline;

/* Returns a pipeline over env, or NULL when memory runs out. */
struct pipeline *pipeline_new(const struct pipeline_env *env);
/* Runs to the end (or until cancelled): returns 0, or a negative code with fatal set
 * when the run had to stop (the root could not be walked, outputs not writable, disk
 * full). Per-file failures are recorded, not returned. Call once, from the main thread. */
int pipeline_run(struct pipeline *p, struct vherr *fatal);
/* Stops the run: no new files start; files being transformed finish and are recorded,
 * the rest are dropped. Thread-safe and idempotent. */
void pipeline_cancel(struct pipeline *p);
/* Stops the run at once, for a process about to exit (a second SIGINT/SIGTERM): like
 * pipeline_cancel, then waits only for the outputs being written and recorded right now,
 * and keeps every worker from writing another (their publishing locks stay taken; reads
 * and transforms in flight are abandoned). Returns with the records quiet: nothing is
 * being written to them but failure lines. Call once, from a thread that is not a
 * worker; the pipeline cannot go on afterwards. */
void pipeline_abort(struct pipeline *p);
/* Whether pipeline_run has returned. Thread-safe. */
int pipeline_finished(struct pipeline *p);
/* Frees p; p may be NULL. */
void pipeline_free(struct pipeline *p);

#endif
