/* since: incremental dataset versions. Every Valohai execution starts with an empty
 * outputs dir, so resuming cannot tell it what an earlier version already holds; the
 * earlier run's valohai.metadata.jsonl, given to the step as an input (--since FILE), can.
 * An input whose relative path, size and mtime (or, with --since-checksum, SHA-256) match
 * its line there is unchanged: skipped, no output. New inputs are processed; changed ones
 * are processed again, and their earlier outputs, with those of inputs deleted since
 * (known once the walk has completed), make the new version's "exclude" list when it is
 * built "from" the earlier one (--dataset-from).
 *
 * URL inputs (--urls) are compared by URL and the server's validators instead
 * (engine/earlierurl.h): the same URL is unchanged when the server answers the earlier
 * ETag / Last-Modified with 304, or when it gave neither.
 *
 * Memory: about 40 bytes per line of FILE (72 with --since-checksum; URL lines add
 * earlierurl's). Thread-safe. */
#ifndef VHPREP_ENGINE_SINCE_H
#define VHPREP_ENGINE_SINCE_H

#include <stdint.h>

#include "common/vherr.h"
#include "io/source.h"

/* What since_check says of an input. */
enum since_verdict {
	SINCE_NEW,	 /* not in the earlier run: process it */
	SINCE_UNCHANGED, /* same size and mtime: skip it */
	SINCE_CHANGED,	 /* in the earlier run but not the same: process it */
	SINCE_VERIFY,	 /* --since-checksum: read it and ask since_same_content */
	SINCE_ASK,	 /* a URL input: ask the server with the earlier validators */
};

struct since;

/* Reads path (an earlier run's valohai.metadata.jsonl) and indexes its outputs' inputs.
 * checksum: compare SHA-256 rather than size and mtime. Returns 0 and *out (caller owns),
 * or a negative code with err set (a missing or unreadable file is an error here). */
int since_open(const char *path, int checksum, struct since **out, struct vherr *err);
/* Notes that the walk found relpath (selected or not): it was not deleted. */
void since_seen(struct since *s, const char *relpath);
/* The verdict for relpath, whose size and mtime_ns are known now. */
enum since_verdict since_check(struct since *s, const char *relpath, uint64_t size,
			       int64_t mtime_ns);
/* --since-checksum: whether relpath's content (sha256_hex, 64 hex digits) is the
 * earlier one; if not, it counts as changed. */
int since_same_content(struct since *s, const char *relpath, const char *sha256_hex);
/* For a URL input (--urls) at relpath whose redacted URL is url: SINCE_NEW; SINCE_CHANGED
 * (another URL then); SINCE_UNCHANGED (the same URL, no validator recorded: skip it
 * unfetched); or SINCE_ASK with the earlier validators in v (fetch it conditionally; it
 * counts as changed unless since_url_unchanged is called after a 304). The URL decides
 * even with --since-checksum. */
enum since_verdict since_url(struct since *s, const char *relpath, const char *url,
			     struct source_validators *v);
/* After a 304 to SINCE_ASK's conditional request: relpath is unchanged after all. */
void since_url_unchanged(struct since *s, const char *relpath);
/* Calls fn with the "file" of every earlier output whose input changed, or was deleted
 * (only when walk_complete: an unfinished walk proves no deletion), in the earlier
 * file's order. Single-threaded, after the workers. Returns 0, or a negative code with
 * err set (fn returning non-zero stops it and is returned). */
int since_excluded(struct since *s, int walk_complete, int (*fn)(void *ctx, const char *file),
		   void *ctx, struct vherr *err);
/* Returns the number of earlier outputs indexed. */
uint64_t since_count(struct since *s);
/* Frees s; s may be NULL. */
void since_free(struct since *s);

#endif
