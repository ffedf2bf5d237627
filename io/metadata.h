/* metadata: valohai.metadata.jsonl in the outputs root, one JSON line per output file:
 * {"file": "<path relative to outputs>", "metadata": {"valohai.dataset-versions": [...],
 *  "valohai.tags": [...], <provenance>}}, encoded with jansson.
 *
 * The file is the run's commit point, and a log: lines are only ever appended (see
 * appendlog: never a partial line), runs after the first append to it, and when a file
 * has several lines the last one is the truth. metadata_compact rewrites it with one line
 * per file (through a temporary file and a rename) at the few moments that need it: a
 * resumed run's start, and the end of a run in which a line was superseded or retracted.
 * metadata_scan reads it back, for resuming and for --since. */
#ifndef VHPREP_IO_METADATA_H
#define VHPREP_IO_METADATA_H

#include <jansson.h>
#include <stdint.h>

#include "common/vherr.h"

#define METADATA_FILE "valohai.metadata.jsonl"

/* What every line binds the file to. Set once; arrays of ndatasets/naliases/ntags strings. */
struct metadata_binding {
	const char *const *datasets; /* dataset://name/version URIs */
	int ndatasets;
	const char *from;            /* "from" of each dataset version, or NULL */
	const char *const *aliases;  /* targeting_aliases, or none */
	int naliases;
	int packaging;               /* "packaging": true on each version when set */
	const char *const *tags;     /* valohai.tags */
	int ntags;
	const char *const *excludes; /* "exclude" of each dataset version (with from) */
	int nexcludes;
};

/* Where one output came from and what was done to it. */
struct metadata_provenance {
	const char *source;       /* the input's location (path or URL) */
	const char *source_relpath; /* its path relative to the source root (NULL: none) */
	uint64_t source_bytes;
	int64_t source_mtime_ns;
	const char *source_sha256; /* hex */
	int original_width, original_height;
	int width, height;
	const char *format;       /* output format word */
	const char *kernel;
	const char *const *operations;
	int noperations;
	const char *version;      /* vhprep version */
	uint64_t output_bytes;    /* size of the output file */
	int frames, frame_used;	  /* frames > 1 (animated or multi-page input): written as
				   * "frames" and "frame_used" (zero-based); else omitted */
	json_t *extra;            /* NULL, or members added where they replace none of the
				   * above (a URL source's provenance); borrowed */
};

/* One line of an existing metadata file, as metadata_scan and metadata_compact see it. */
struct metadata_line {
	uint64_t offset;  /* where the line starts in the file */
	size_t len;       /* its length, '\n' included */
	json_t *obj;      /* the parsed line (borrowed for the call), or NULL if it is not
			     one JSON object with a string "file" */
	char *file;       /* obj's "file" as raw bytes (jsonname.h), or NULL; freed by the
			     reader after the call */
};

/* Called for each line; a non-zero return stops the scan (and is returned). */
typedef int (*metadata_line_fn)(void *ctx, const struct metadata_line *l);

struct metadata;

/* Returns the "valohai.dataset-versions" value b writes (new reference), or NULL when b
 * binds no dataset (or memory ran out). */
json_t *metadata_dataset_versions(const struct metadata_binding *b);
/* Returns one encoded line ending in '\n' (caller frees), or NULL if memory ran out (or
 * a binding string is not valid UTF-8). Names that are not valid UTF-8 are escaped, their
 * bytes kept beside them in base64 (jsonname.h). prov may be NULL (binding only). */
char *metadata_format_line(const struct metadata_binding *b, const char *file,
			   const struct metadata_provenance *prov);
/* Opens dirfd/valohai.metadata.jsonl for appending (created if missing; what it holds is
 * kept). b must outlive the result. Returns 0 and *out (caller owns), or a negative code
 * with err set. */
int metadata_open(int dirfd, const struct metadata_binding *b, struct metadata **out,
		  struct vherr *err);
/* Appends the line for file. Thread-safe. Returns 0 or a negative code with err set
 * (VHERR_BAD_NAME when a name is not valid UTF-8). */
int metadata_append(struct metadata *m, const char *file,
		    const struct metadata_provenance *prov, struct vherr *err);
/* Appends line[0..len) (one metadata_format_line result) whole; *at (may be NULL) gets
 * its offset, for metadata_retract. Thread-safe. 0 or a negative code with err set. */
int metadata_append_line(struct metadata *m, const char *line, size_t len, uint64_t *at,
			 struct vherr *err);
/* Marks the line appended at offset as void (its output was never published): the next
 * metadata_compact drops it. Thread-safe. Returns 0, or -VHERR_NOMEM. */
int metadata_retract(struct metadata *m, uint64_t at);
/* Says that a line was appended for a file that already had one (the new one wins), so
 * the next metadata_finish compacts. Thread-safe. */
void metadata_superseded(struct metadata *m);
/* Rewrites the file keeping, of the lines keep accepts (keep may be NULL: all; it is
 * called twice per line and must answer the same), the last line of each file, in their
 * order; retracted lines and lines that are not JSON objects are dropped. Not concurrent
 * with appends. Returns 0 or a negative code with err set (the file is then unchanged). */
int metadata_compact(struct metadata *m, int (*keep)(void *ctx, const struct metadata_line *l),
		     void *ctx, struct vherr *err);
/* Compacts when a line was superseded or retracted since the last compaction (*did set
 * to whether it did; may be NULL), then flushes the file to stable storage.
 * Returns 0 or a negative code with err set. */
int metadata_finish(struct metadata *m, int *did, struct vherr *err);
/* Returns the number of lines appended (a snapshot). */
uint64_t metadata_lines(struct metadata *m);
/* Closes and frees m; m may be NULL. Returns 0, or a negative code with err set (may be
 * NULL) when closing reports a deferred write error. */
int metadata_close(struct metadata *m, struct vherr *err);

/* Reads dirfd/path (AT_FDCWD and an absolute path work) line by line, calling fn for each;
 * a missing file has no lines. Returns 0, fn's non-zero result, or a negative code with
 * err set when the file cannot be read. */
int metadata_scan(int dirfd, const char *path, metadata_line_fn fn, void *ctx,
		  struct vherr *err);

#endif
