/* stats: the run's counters, updated by every thread with relaxed atomics (no lock on
 * the hot path), and the failures by reason with a few example paths (a lock taken on
 * the failure path only). */
#ifndef VHPREP_ENGINE_STATS_H
#define VHPREP_ENGINE_STATS_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/vherr.h"
#include "io/source.h"

#define STATS_EXAMPLES 5

struct stats {
	double start;               /* set at creation: monotonic seconds */
	atomic_ullong found;        /* files the walk emitted */
	atomic_ullong filtered;     /* dropped by include/exclude/sample/shard */
	atomic_ullong other_shard;  /* of filtered: another --shard member's */
	atomic_ullong skipped_type; /* no --include, and no extension of a format read here */
	atomic_ullong skipped_size; /* dropped by --min-size/--max-size */
	atomic_ullong submitted;    /* reads submitted (selected files) */
	atomic_ullong processed;    /* outputs written and recorded */
	atomic_ullong failed;       /* inputs recorded in vhprep-errors.jsonl */
	atomic_ullong cancelled;    /* dropped unprocessed by a signal or a fatal error */
	atomic_ullong over_limit;   /* read but dropped because --limit was reached */
	atomic_ullong already_done; /* skipped: an earlier run's output stands */
	atomic_ullong replaced;     /* outputs that replaced an earlier one */
	atomic_ullong unchanged;    /* skipped: the same as in --since's records */
	atomic_ullong skipped_kind[SOURCE_KIND__COUNT]; /* names that are no file to read */
	atomic_ullong bytes_read;
	atomic_ullong bytes_written;
	atomic_int walk_complete;
	atomic_ullong by_reason[VHERR__COUNT];
	pthread_mutex_t examples_lock;
	char *examples[VHERR__COUNT][STATS_EXAMPLES]; /* under examples_lock */
};

/* Initialises s (start time = now). */
void stats_init(struct stats *s);
/* Frees the example paths. */
void stats_release(struct stats *s);
/* Counts one failure with reason code; keeps path (copied) as an example while the
 * reason has fewer than STATS_EXAMPLES. Thread-safe. */
void stats_fail(struct stats *s, int code, const char *path);
/* Inputs finished one way or another (for progress and ETA). */
uint64_t stats_finished(struct stats *s);
/* Seconds since stats_init. */
double stats_elapsed(const struct stats *s);
/* Returns the file counters as {"found": N, "selected": N, ...} (new reference) or NULL. */
json_t *stats_files_json(struct stats *s);
/* Returns {"reason": {"count": N, "examples": [...]}, ...} (new reference) or NULL. */
json_t *stats_failures_json(struct stats *s);
/* Returns the process's peak resident set size in bytes. */
uint64_t stats_peak_rss(void);
/* Returns the process's current resident set size in bytes (0 if unknown). */
uint64_t stats_current_rss(void);
/* Monotonic clock in seconds. */
double stats_now(void);

#endif
