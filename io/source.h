/* source: where files come from. A source enumerates relative paths (walk) and reads
 * whole files (read) with many operations in flight; the pipeline does not know which
 * kind of source it drives (posix directory or mount, a files-from list, nfs://, a list
 * of http(s) URLs).
 *
 * Threads: walk() calls emit from several walker threads at once; read() completions
 * run on the source's I/O threads. Exactly one completion per accepted read. */
#ifndef VHPREP_IO_SOURCE_H
#define VHPREP_IO_SOURCE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/budget.h"
#include "common/oplat.h"
#include "common/vherr.h"

/* What emit returns: go on, or stop the whole walk (limit reached, cancelled). */
enum source_next { SOURCE_CONTINUE = 0, SOURCE_STOP = 1 };

/* What a listing already told about a file, so that its read can skip a round trip or
 * three on a network source (nfs://: READDIRPLUS gives attributes and the file handle).
 * A zero hint means nothing is known; a read then looks the path up. */
struct source_hint {
	const void *handle;  /* NULL, or the source's own handle of the file */
	uint32_t handle_len; /* bytes at handle */
	int has_attrs;       /* size and mtime_ns are from the listing */
	uint64_t size;
	int64_t mtime_ns;
};

/* What a walk found at a name. Only SOURCE_KIND_FILE is read; the others are passed on
 * so that every name is accounted for (the summary counts them by kind). */
#define SOURCE_KIND_LIST(X)                                                                    \
	X(FILE, "file")               /* a regular file, or a link to one inside the root */   \
	X(LINK_DIR, "link_to_dir")    /* a symlink to a directory: not followed (no loops) */  \
	X(DANGLING, "dangling_link")  /* a symlink to nothing */                               \
	X(LOOP, "link_loop")          /* a symlink that resolves to itself */                  \
	X(OUTSIDE, "outside_root")    /* a symlink out of the source root: never opened */     \
	X(FIFO, "fifo")                                                                        \
	X(SOCKET, "socket")                                                                    \
	X(DEVICE, "device")           /* a device, or a link to one */                         \
	X(OTHER, "other")             /* anything else the walk could not classify */

enum source_kind {
#define SOURCE_KIND_ENUM(name, word) SOURCE_KIND_##name,
	SOURCE_KIND_LIST(SOURCE_KIND_ENUM)
#undef SOURCE_KIND_ENUM
	    SOURCE_KIND__COUNT
};

/* Returns the word for kind ("fifo"); never NULL. */
const char *source_kind_name(enum source_kind kind);

/* One name found by a walk. Everything in it is borrowed for the emit call. */
struct source_entry {
	const char *relpath; /* '/'-separated, relative to the root, no leading "./" */
	struct source_hint hint;
	enum source_kind kind; /* SOURCE_KIND_FILE (0) for a file to read */
};

/* Called once per entry found (files and the skipped kinds). Must be thread-safe. */
typedef enum source_next (*source_emit_fn)(void *ctx, const struct source_entry *e);

/* Outcome of a read, in source_read.status. */
enum source_status {
	SOURCE_READ_OK,      /* data/len/size/mtime_ns are set */
	SOURCE_READ_SKIPPED, /* outside the size bounds: not an error, nothing read */
	SOURCE_READ_FAILED,  /* err says why (stage READ) */
};

/* What a read's admit callback decides once the file's size and mtime are known. */
enum source_admit {
	SOURCE_ADMIT_READ, /* read the file */
	SOURCE_ADMIT_SKIP, /* complete as SOURCE_READ_SKIPPED, nothing read */
	SOURCE_ADMIT_FAIL, /* complete as SOURCE_READ_FAILED with the err admit set */
};

/* What an earlier run recorded of a URL input (resume, --since): the server's validators,
 * which a URL source sends as If-None-Match / If-Modified-Since so that the server answers
 * 304 Not Modified, without the body, when the input did not change. "" when none. */
struct source_validators {
	char etag[256];
	char last_modified[64];
};

/* One read request. The caller owns it and everything in it until done() runs; from
 * done() on, data (malloc'd, may be NULL when len is 0) belongs to the caller too. */
struct source_read {
	/* set by the caller before source_read_submit */
	const char *relpath;  /* must live until done() */
	struct source_hint hint; /* the entry's hint (or zero); its handle must live until done() */
	uint64_t min_size;    /* skip files smaller than this */
	uint64_t max_size;    /* skip files larger than this; UINT64_MAX: no bound */
	/* NULL, or called at most once, on the source's thread, when size and mtime_ns are
	 * set and before any byte is read or budget taken (source_read_admit calls it):
	 * skip or refuse a file without reading it (e.g. already done by an earlier run) */
	enum source_admit (*admit)(struct source_read *req);
	/* NULL, or called at most once, on the source's thread, with the first
	 * min(size, SOURCE_HEAD_MAX) bytes of the file in data[0..len) (only these are
	 * budgeted so far), before the rest is read (source_read_judge calls it): refuse
	 * a file that is no image, or too large to decode, without reading it whole (a URL
	 * source: size is the Content-Length, or the bytes so far when none was sent, and
	 * a refusal ends the transfer) */
	enum source_admit (*judge)(struct source_read *req);
	/* NULL, or called by a URL source on its thread, at most twice. First before the
	 * first request (not_modified 0, v zeroed): return SOURCE_ADMIT_SKIP to complete it
	 * as SOURCE_READ_SKIPPED unfetched (an earlier output stands and there is nothing to
	 * ask), or SOURCE_ADMIT_READ to fetch it, conditionally when v was filled. Then
	 * (not_modified 1) only if the server answered that conditional request 304: return
	 * SOURCE_ADMIT_SKIP (no body is transferred) or SOURCE_ADMIT_FAIL with err set. */
	enum source_admit (*revalidate)(struct source_read *req, struct source_validators *v,
					int not_modified);
	void (*done)(struct source_read *req); /* the one completion, on an I/O thread */
	void *user;
	/* set by the source before done() */
	enum source_status status;
	uint8_t *data;
	uint64_t len;         /* bytes read into data */
	uint64_t size;        /* size from stat */
	int64_t mtime_ns;     /* modification time, ns since the epoch */
	uint64_t charged;     /* bytes taken from the budget for this read (caller releases) */
	json_t *prov;         /* NULL, or members the pipeline adds to this input's records
			       * (a URL source: url, HTTP status, ETag...); owned by the
			       * request from done() on (the caller json_decrefs it) */
	struct vherr err;
};

/* The most a source reads of a file before its judge has seen it: enough for the magic
 * and header of every format (a JPEG's frame header may follow big EXIF and ICC
 * segments), far less than any image worth reading. */
#define SOURCE_HEAD_MAX (64 * 1024)

/* For sources: calls req->judge (if set) on the head in req->data[0..len). Returns 1 to
 * read on, or 0 with req->status set (SKIPPED or FAILED; the source completes req, and
 * frees data as on any failure). */
int source_read_judge(struct source_read *req);
/* For sources: applies req's size bounds, then req->admit, once req->size and
 * req->mtime_ns are set. Returns 1 to read the file, or 0 with req->status set to
 * SOURCE_READ_SKIPPED or SOURCE_READ_FAILED (the source then completes req). */
int source_read_admit(struct source_read *req);

/* Bytes source_read_adopt needs to hold e's relpath and handle. */
size_t source_entry_size(const struct source_entry *e);
/* Copies e's relpath and hint handle into buf (source_entry_size(e) bytes, which must
 * live until done()) and points rd's relpath and hint at them. */
void source_read_adopt(struct source_read *rd, char *buf, const struct source_entry *e);

/* The options of an nfs:// source (io/nfssrc.h), one struct for a run and vhprep bench. */
struct source_nfs_opts {
	int connections; /* nfs_contexts (TCP connections); <= 0: 4 */
	int timeout_ms;  /* mount and per-RPC timeout, and how long the source may have no
			  * connection up before it gives up; <= 0: 10000 */
};

/* Options common to every kind of source; set once at creation. */
struct source_opts {
	int walkers;           /* directories listed at once */
	int io_depth;          /* opens+reads in flight */
	struct budget *budget; /* borrowed; must outlive the source */
	struct oplat *lat;     /* borrowed, or NULL: per-operation latencies (vhprep bench) */
	const char *files_from; /* NULL, or a file of relative paths to read instead of walking */
	int quiet;             /* no warnings on stderr */
	struct source_nfs_opts nfs; /* nfs:// only */
	/* --urls: non-NULL makes the spec a URL list (a path, "-" for stdin) fetched over
	 * http(s) by io/httpsrc; borrowed, must outlive the source */
	const struct httpsrc_opts *http;
};

struct source;
struct httpsrc_opts;

/* Opens spec as a source: with opts->http, a URL list (a path, "-" for stdin); else an
 * nfs:// URL (io/nfssrc.h: mounts it, checks its root) or a directory path or mount
 * point (checks that the root exists and is a directory, else -VHERR_NOENT /
 * -VHERR_NOTDIR with err set: a usage error; warns on stderr when it is not a mount
 * point). On success *out is owned by the caller (source_free). */
int source_open(const char *spec, const struct source_opts *opts, struct source **out,
		struct vherr *err);
/* Walks the tree (or the files-from list, or the URL list), calling emit for each entry
 * (files, and the kinds of source_kind it does not read), and returns when done or stopped: 0, or a negative code with err set if the root itself
 * could not be listed. Errors on sub-directories are reported through on_error. Call once. */
int source_walk(struct source *s, source_emit_fn emit, void *ctx,
		void (*on_error)(void *ctx, const char *relpath, const struct vherr *err),
		struct vherr *err);
/* Submits req; blocks while io_depth requests are already queued (back-pressure).
 * Returns 0 when req->done will run exactly once, or a negative code (source stopped)
 * when it will not. Thread-safe. */
int source_read_submit(struct source *s, struct source_read *req);
/* Asks the walk to stop soon; reads already submitted go on. Thread-safe. */
void source_stop(struct source *s);
/* Stops the walk and makes pending and later reads complete as cancelled (and wakes
 * readers waiting on the budget). Thread-safe. */
void source_cancel(struct source *s);
/* Returns the root as given by the user, normalised (no trailing '/'); lives with s. */
const char *source_root(const struct source *s);
/* Writes "root/relpath" (the location recorded as provenance) into buf; returns buf. */
char *source_location(const struct source *s, const char *relpath, char *buf, size_t size);
/* Like source_location, knowing the entry's hint (NULL: none): a URL source names the
 * URL its entries carry (redacted), and a refused list record by the label given to
 * on_error (its relpath). */
char *source_hint_location(const struct source *s, const char *relpath,
			   const struct source_hint *hint, char *buf, size_t size);
/* Waits for the I/O threads and frees s; s may be NULL. No read may be pending. */
void source_free(struct source *s);

#endif
