/* appendlog: a record file in the outputs root that many threads append whole lines to.
 * Each line is one write(2), taken under the log's mutex (held for that one call only),
 * so lines never interleave. A write that fails part-way (the disk fills up, EIO) is
 * undone with ftruncate back to where the line began: the file never holds a partial
 * line. A line is in the page cache the moment its call returns, so a crash of the
 * process loses nothing already recorded; appendlog_sync makes it survive the host. */
#ifndef VHPREP_IO_APPENDLOG_H
#define VHPREP_IO_APPENDLOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"

struct appendlog;

/* Opens (creating, and emptying it first when truncate is set) dirfd/name for appending.
 * Returns 0 and *out (caller owns), or a negative code with err set. */
int appendlog_open(int dirfd, const char *name, int truncate, struct appendlog **out,
		   struct vherr *err);
/* Appends line[0..len) (which should end with '\n') in one write; *at (may be NULL)
 * receives the file offset where it starts. Thread-safe. Returns 0, or a negative code
 * with err set (VHERR_NOSPC when the disk is full), and then nothing of the line is in
 * the file. */
int appendlog_append(struct appendlog *log, const char *line, size_t len, uint64_t *at,
		     struct vherr *err);
/* appendlog_append without the offset. */
int appendlog_write(struct appendlog *log, const char *line, size_t len, struct vherr *err);
/* Appends o (borrowed) as one compact ASCII-escaped JSON line. Thread-safe.
 * Returns 0, or a negative code with err set. */
int appendlog_write_json(struct appendlog *log, json_t *o, struct vherr *err);
/* Returns the bytes appended through log so far (a snapshot). */
size_t appendlog_bytes(struct appendlog *log);
/* Returns the number of lines appended through log so far (a snapshot). */
uint64_t appendlog_lines(struct appendlog *log);
/* Flushes the file to stable storage (fdatasync). Thread-safe. 0 or a negative code. */
int appendlog_sync(struct appendlog *log, struct vherr *err);
/* Closes and frees log; log may be NULL. Returns 0, or a negative code with err set when
 * close reports a deferred write error (NFS reports them there). err may be NULL. */
int appendlog_close(struct appendlog *log, struct vherr *err);

#endif
