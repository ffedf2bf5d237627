/* resume: what an outputs dir already holds when a run starts, made consistent before
 * anything is written, so that running the same command again continues where the last
 * run stopped (however it stopped: SIGKILL, host crash, disk full).
 *
 * The outputs dir is consistent when every line of valohai.metadata.jsonl names a file
 * that is there with the size the line says, every output has one line, and no temporary
 * file is left. A run publishes an output by writing it under a temporary name, appending
 * its line, then renaming it into place (and removes an output it replaces before
 * appending the new line), so after a crash at any instant the only inconsistencies are:
 * temporary files (removed here), and lines whose output is missing or short (dropped
 * here, and their inputs redone). What stands is indexed: an input whose relative path,
 * size and mtime match its earlier line, and whose output still stands, is skipped
 * (already_done); a changed input is redone and replaces its output. A URL input (--urls)
 * is done when its earlier output stands and was made from the same URL, and the server
 * answers the earlier ETag / Last-Modified with 304 (or gave neither): see resume_url.
 *
 * A rerun must ask for the same operations and dataset binding as the records under its
 * prefix (else its outputs would mix two recipes): resume_open refuses a difference,
 * naming it, unless overwrite is set, which redoes every input and, once the walk has
 * completed, removes the outputs (and lines) of the prefix that no input replaced.
 * Memory: about 64 bytes per recorded output (claims + this index). */
#ifndef VHPREP_ENGINE_RESUME_H
#define VHPREP_ENGINE_RESUME_H

#include <jansson.h>
#include <stdint.h>

#include "common/vherr.h"
#include "engine/claims.h"
#include "engine/earlierurl.h"
#include "io/dirsink.h"
#include "io/metadata.h"

struct resume_opts {
	const char *outputs; /* for messages */
	const char *prefix;  /* the outputs' sub-directory ("" allowed) */
	int overwrite, live_upload;
	const char *const *ops; /* this run's operation chain */
	int nops;
	const struct metadata_binding *binding; /* this run's dataset binding */
};

/* What resume_open found and did. */
struct resume_report {
	uint64_t earlier;	/* outputs of the prefix recorded and standing */
	uint64_t temps_removed; /* temporary files of dead runs removed */
	uint64_t lines_dropped; /* lines dropped: output missing or short, or not JSON */
	int compacted;		/* the metadata file was rewritten */
	json_t *csv_line;	/* the last line binding processing_metadata.csv (new
				   reference, the caller decrefs), or NULL */
	json_t *preview_line;	/* the same for the preview sheet (engine/preview.h) */
};

struct resume;

/* Reconciles the outputs dir open as dirfd (borrowed) whose records m holds, loads the
 * earlier outputs' names into c, and indexes them. Returns 0 and *out (caller owns), or a
 * negative code with err set: -VHERR_USAGE when the records under the prefix were made
 * with other settings (err names the difference), or an I/O error. All borrowed
 * arguments must outlive the result. Call before any output is written. */
int resume_open(int dirfd, struct metadata *m, struct claims *c, const struct resume_opts *o,
		struct resume **out, struct resume_report *rep, struct vherr *err);
/* Whether the input at relpath (relative to the source root), of size and mtime_ns now,
 * has its earlier output standing (then its name is confirmed in the claims and the input is to
 * be skipped). Always 0 with overwrite. Thread-safe. */
int resume_done(struct resume *r, const char *relpath, uint64_t size, int64_t mtime_ns);
/* For a URL input (--urls) at relpath whose redacted URL is url: EARLIERURL_SAME when its
 * earlier output stands, was made from the same URL and no validator was recorded (skip
 * it unfetched), EARLIERURL_ASK when the same holds with validators, copied into v (fetch
 * it conditionally: a 304 means it is done); either way its name is confirmed in the
 * claims. Otherwise EARLIERURL_NONE or EARLIERURL_OTHER (fetch it). Always NONE with
 * overwrite. Thread-safe. */
enum earlierurl_verdict resume_url(struct resume *r, const char *relpath, const char *url,
				   struct source_validators *v);
/* With overwrite and a completed walk: removes the outputs of the prefix that no input
 * of this run replaced or confirmed, and their lines. *removed (may be NULL) gets their
 * number. Single-threaded, after the workers. Returns 0 or a negative code with err set. */
int resume_finish(struct resume *r, struct dirsink *sink, int walk_complete, uint64_t *removed,
		  struct vherr *err);
/* Frees r; r may be NULL. */
void resume_free(struct resume *r);

/* Parses "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (the mtime metadata lines hold) into ns since
 * the epoch. Returns 0, or -1 if s is not of that form. */
int resume_parse_mtime(const char *s, int64_t *ns);

/* Records that an output named relout (a decoded pack key: pack.h) stands in a published
 * shard: from then on resume_done says done for every input whose output would have
 * relout's name up to its extension, whatever its size and mtime (a published shard is
 * never rewritten, so a changed input cannot replace its output there). Call before the
 * run starts, from one thread. Returns 0, or -VHERR_NOMEM. */
int resume_add_packed(struct resume *r, const char *relout);
/* Returns the number of distinct output names resume_add_packed recorded. */
uint64_t resume_packed(const struct resume *r);

#endif
