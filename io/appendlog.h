/* appendlog: a record file in the outputs root that many threads append whole lines to.
 * Each line is one write(2) on an O_APPEND descriptor: lines never interleave, need no
 * lock of ours, and a line is on disk (in the page cache) the moment the call returns,
 * so a crash loses nothing already recorded. */
#ifndef VHPREP_IO_APPENDLOG_H
#define VHPREP_IO_APPENDLOG_H

#include <jansson.h>
#include <stddef.h>

#include "common/vherr.h"

struct appendlog;

/* Opens (creating, and emptying it first when truncate is set) dirfd/name for appending.
 * Returns 0 and *out (caller owns), or a negative code with err set. */
int appendlog_open(int dirfd, const char *name, int truncate, struct appendlog **out,
		   struct vherr *err);
/* Appends line[0..len) (which should end with '\n') in one write. Thread-safe.
 * Returns 0, or a negative code with err set (VHERR_NOSPC when the disk is full). */
int appendlog_write(struct appendlog *log, const char *line, size_t len, struct vherr *err);
/* Appends o (borrowed) as one compact ASCII-escaped JSON line. Thread-safe.
 * Returns 0, or a negative code with err set. */
int appendlog_write_json(struct appendlog *log, json_t *o, struct vherr *err);
/* Returns the bytes written through log so far (a snapshot). */
size_t appendlog_bytes(struct appendlog *log);
/* Closes and frees log; log may be NULL. Returns 0, or -1 if close reported an error. */
int appendlog_close(struct appendlog *log);

#endif
