/* report: the run's other records in the outputs root:
 *   processing_metadata.csv  filename,original_size,processed_size (the docs' example):
 *                            a row per output, appended like valohai.metadata.jsonl and
 *                            rebuilt from it whenever that file is compacted
 *   vhprep-errors.jsonl      one line per input this run failed: path, stage, reason,
 *                            message (emptied at each run's start: failures are retried)
 *   vhprep-summary.json      written once at the end (temporary file + rename)
 * Every line goes through appendlog: whole lines only, even on a full disk. */
#ifndef VHPREP_IO_REPORT_H
#define VHPREP_IO_REPORT_H

#include <jansson.h>
#include <stdint.h>

#include "common/vherr.h"

#define REPORT_CSV_FILE "processing_metadata.csv"
#define REPORT_ERRORS_FILE "vhprep-errors.jsonl"
#define REPORT_SUMMARY_FILE "vhprep-summary.json"

struct report;

/* Opens the CSV (emptied first when fresh_csv is set; its header written when it is
 * empty) and empties the error log, under dirfd (borrowed, must outlive r).
 * Returns 0 and *out (caller owns), or a negative code with err set. */
int report_open(int dirfd, int fresh_csv, struct report **out, struct vherr *err);
/* Rewrites the CSV from the lines of valohai.metadata.jsonl under the same dirfd: one
 * row per line whose metadata has source_relpath and sizes, in their order. Not
 * concurrent with report_csv_row. Returns 0 or a negative code with err set. */
int report_csv_rebuild(struct report *r, struct vherr *err);
/* Returns the number of error lines written this run (a snapshot). */
uint64_t report_errors(struct report *r);
/* Appends a CSV row: filename, "(w, h)", "(w, h)". Thread-safe. 0 or negative code. */
int report_csv_row(struct report *r, const char *filename, int orig_w, int orig_h,
		   int out_w, int out_h, struct vherr *err);
/* Appends one error line for the input at path (a location string). Thread-safe. */
int report_error(struct report *r, const char *path, const struct vherr *failure,
		 struct vherr *err);
/* Like report_error, adding extra's members (extra may be NULL; borrowed) where they do
 * not replace path, stage, reason or message (a URL source's url, HTTP status...). */
int report_error_with(struct report *r, const char *path, const struct vherr *failure,
		      json_t *extra, struct vherr *err);
/* Flushes the CSV and the error log to stable storage. 0 or a negative code. */
int report_sync(struct report *r, struct vherr *err);
/* Closes and frees r; r may be NULL. Returns 0, or a negative code with err set (may be
 * NULL) when closing reports a deferred write error. */
int report_close(struct report *r, struct vherr *err);

/* Writes summary (borrowed) as dirfd/vhprep-summary.json through a temporary file and a
 * rename. Returns 0 or a negative code with err set. */
int report_write_summary(int dirfd, json_t *summary, struct vherr *err);

/* Writes field to buf quoted as CSV needs (RFC 4180: quotes when it has , " CR or LF).
 * Returns the length, or -1 if it does not fit. */
int report_csv_field(const char *field, char *buf, size_t size);

#endif
