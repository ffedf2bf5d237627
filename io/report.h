/* report: the run's other records in the outputs root:
 *   processing_metadata.csv  filename,original_size,processed_size (the docs' example)
 *   vhprep-errors.jsonl      one line per failed input: path, stage, reason, message
 *   vhprep-summary.json      written once at the end (temporary file + rename) */
#ifndef VHPREP_IO_REPORT_H
#define VHPREP_IO_REPORT_H

#include <jansson.h>
#include <stdint.h>

#include "common/vherr.h"

#define REPORT_CSV_FILE "processing_metadata.csv"
#define REPORT_ERRORS_FILE "vhprep-errors.jsonl"
#define REPORT_SUMMARY_FILE "vhprep-summary.json"

struct report;

/* Creates (or empties) the CSV, writing its header, and the error log under dirfd.
 * Returns 0 and *out (caller owns), or a negative code with err set. */
int report_open(int dirfd, struct report **out, struct vherr *err);
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
/* Closes and frees r; r may be NULL. */
void report_close(struct report *r);

/* Writes summary (borrowed) as dirfd/vhprep-summary.json through a temporary file and a
 * rename. Returns 0 or a negative code with err set. */
int report_write_summary(int dirfd, json_t *summary, struct vherr *err);

/* Writes field to buf quoted as CSV needs (RFC 4180: quotes when it has , " CR or LF).
 * Returns the length, or -1 if it does not fit. */
int report_csv_field(const char *field, char *buf, size_t size);

#endif
