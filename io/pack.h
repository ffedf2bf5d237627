/* pack: writes outputs into size-bounded tar or tar.zst shards, WebDataset-style, each
 * with an index a reader can fetch one image through with one ranged read.
 *
 * Why: Valohai uploads every file of the outputs dir as its own request, and its own
 * guidance is to pack when an execution writes more than about a thousand files. A run
 * of 100,000 outputs writes a few shards of --shard-size instead.
 *
 * Members. Each output becomes two adjacent tar members: KEY (the output's bytes) and
 * KEY.json (its provenance, given by the caller). KEY is pack_key(relout), relout being
 * the path a dir run would write (e.g. "processed_images/cats/001.jpg"); for ordinary
 * names KEY == relout, so GNU tar -x of every shard in the outputs dir writes exactly the
 * image files of a dir run, at the same paths, byte for byte (plus one .json per image).
 * WebDataset groups adjacent members by the path up to the first '.' of the base name,
 * directories included, and names each member by the rest (webdataset/tariterators.py,
 * base_plus_ext and group_by_keys), so a sample is {"__key__":
 * "processed_images/cats/001", "jpg": ..., "jpg.json": ...}.
 *
 * pack_key: relout with '%' written as %25 anywhere, and every '.' of the base name
 * except the one before the extension written as %2E (so a leading dot too), and every
 * byte that is not part of valid UTF-8 as %XX (uppercase hex). Nothing else changes. It
 * is a pure function (stable across runs and machines) and injective (percent-decoding
 * gives relout back: urllib.parse.unquote_to_bytes), so two outputs never share a member
 * name. Names whose base name holds other dots ("img.v2.jpg" -> "img%2Ev2.jpg") are
 * changed because WebDataset would otherwise cut the key at the first dot and merge
 * unrelated files into one sample ("img.v2.jpg" and "img.v3.jpg" both have the key
 * "img"); '%' is escaped so the escape stays reversible. The provenance member is
 * KEY.json, not "<stem>.json": outputs that differ only in extension ("a.jpg", "a.png",
 * both kept by --format keep) would otherwise both write "a.json", and tar -x would keep
 * one; with KEY.json they stay "a.jpg.json" and "a.png.json" (WebDataset puts both
 * images of such a pair in one sample when they are adjacent, with nothing lost).
 *
 * Shards: NAME-MEMBER-SEQ.tar or .tar.zst in dir (e.g. processed_images-2of4-000001.tar;
 * SEQ is six digits or more, so names sort in order, and it continues after the highest
 * SEQ of that NAME-MEMBER found in dir, shard or index, so reruns and the N members of a
 * sharded job never clash). A shard is written under a hidden temporary name
 * (".NAME-MEMBER-SEQ.tar.vhprep-tmp.PID") and renamed into place only when complete,
 * after its index; with live_upload both are made read-only (0444) once the publish
 * callback has run, which Valohai takes as "upload now". A killed run leaves only hidden
 * temporary files, which the next pack_open in that dir removes (those of dead processes). A
 * published shard or index is never opened for writing again (renames use
 * RENAME_NOREPLACE). A shard stays within shard_size bytes (its whole file, trailer
 * included) unless one output alone is larger: that output gets a shard of its own.
 *
 * Index: one per shard, NAME-MEMBER-SEQ.tar[.zst].idx.jsonl, published with it (a run-wide
 * index would be complete only at the end, and rewriting it would break "published files
 * never change"; `cat *.idx.jsonl` gives the run-wide one, since every line names its
 * shard). One JSON line per output, in member order:
 *   tar:     {"key", "shard", "offset", "size", "json_offset", "json_size"}
 *            offset/size: the output's bytes in the shard file; json_*: its KEY.json.
 *   tar.zst: {"key", "shard", "frame_offset", "frame_size", "offset", "size",
 *             "json_offset", "json_size"}
 *            every output's two members are one zstd frame (with its content size and
 *            checksum) at frame_offset/frame_size in the shard file; offset/size and
 *            json_* are positions inside the decompressed frame. The shard is still one
 *            valid zstd stream (concatenated frames), so `tar --zstd -x` reads it.
 * A reader: read [offset, offset+size) of the shard; for tar.zst read the frame, `zstd
 * -d` it, and slice [offset, offset+size). tests/io/read_index.py does both with the
 * Python standard library and the zstd command.
 *
 * Compression: each output is one frame, compressed by the thread that adds it, outside
 * any lock; only the append to the shard file is serialised. zstd's own multi-threaded
 * mode is off for inputs of at most 512 KB (ZSTDMT_JOBSIZE_MIN; zstd 1.5
 * ZSTD_compressStream2), so it does nothing for a frame of one image: the workers
 * compressing their own frames are the parallelism (bench/pack-bench.sh measures both).
 * tar.zst barely shrinks JPEG or PNG outputs (ratio 1.00 at level 3, 1.03 at 19, in
 * bench/README.md); it wins back tar's 512-byte padding (shards 10% smaller than tar at
 * 17 KB outputs) for 2-3x tar's CPU per file.
 *
 * Threads: pack_add from any number of threads at once; everything else from one thread
 * while no pack_add runs. The publish callback runs on the thread whose pack_add (or
 * pack_close) completed the shard, one call at a time. Memory: per concurrent caller, one
 * encoder (a libarchive writer, a zstd context at the chosen level, and buffers as large
 * as the largest output, given back above 8 MiB); the shard's index goes to its temporary
 * file as it grows. */
#ifndef VHPREP_IO_PACK_H
#define VHPREP_IO_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"

enum pack_format {
	PACK_TAR,
	PACK_TAR_ZST,
};

#define PACK_SHARD_SIZE_DEFAULT (1ULL << 30) /* 1 GiB */
#define PACK_SHARD_SIZE_MIN	(64ULL << 10)
#define PACK_ZSTD_LEVEL_DEFAULT 3
#define PACK_KEY_MAX		4096 /* bytes of a key, NUL included */
#define PACK_INDEX_SUFFIX	".idx.jsonl"

/* A shard just published, as the callback sees it (every pointer valid for the call). */
struct pack_shard {
	const char *name;  /* "processed_images-0of1-000001.tar", relative to dir */
	const char *index; /* name + ".idx.jsonl" */
	uint64_t seq;
	uint64_t members;		  /* outputs (each two tar members) */
	uint64_t bytes;			  /* the shard file's size */
	uint64_t data_bytes;		  /* the outputs' own bytes, before compression */
	const char *first_key, *last_key; /* in member order */
};

/* Called once per published shard, after its renames and, with live_upload, before it
 * and its index turn read-only (so a sidecar NAME.metadata.json written here is there
 * when Valohai uploads them). Returns 0, or a negative code with err set: the run cannot
 * go on (the shard stays published, writable; pack_add and pack_close return the error). */
typedef int (*pack_publish_fn)(void *ctx, const struct pack_shard *shard, struct vherr *err);

struct pack_options {
	enum pack_format format;
	const char *name;    /* shard name prefix ("processed_images"): no '/', not "."-led */
	const char *member;  /* "0of1", "2of4": no '/' or '-' */
	uint64_t shard_size; /* bytes, at least PACK_SHARD_SIZE_MIN; 0: the default */
	int zstd_level;	     /* tar.zst: 1..ZSTD_maxCLevel(); 0: the default */
	int zstd_workers;    /* tar.zst: zstd's threads per frame (zstd: none below 512 KB) */
	int live_upload;     /* chmod 0444 each published shard and index */
	pack_publish_fn on_publish; /* may be NULL */
	void *ctx;		    /* passed to on_publish */
};

struct pack;

/* Opens a writer of shards into dir (which must exist: the outputs dir), removing the
 * temporary files that dead processes left for the same NAME-MEMBER. opt is copied (its
 * strings too). Returns 0 and *out (caller owns), or a negative code with err set
 * (VHERR_USAGE for bad options). */
int pack_open(const char *dir, const struct pack_options *opt, struct pack **out,
	      struct vherr *err);
/* Adds one output: data[0..len) as member pack_key(relout), json[0..json_len) as that
 * member + ".json". Borrowed for the call. Thread-safe. Returns 0 once both are appended to
 * the open shard (durable when that shard is published), or a negative code with err set:
 * VHERR_BAD_NAME (relout unusable) or VHERR_COLLISION (relout added to this pack before:
 * two inputs map to it), nothing written and the run goes on; or a fatal error
 * (VHERR_NOSPC, VHERR_IO...: the open shard's temporary files are removed, and every later
 * call returns the same error). */
int pack_add(struct pack *p, const char *relout, const uint8_t *data, size_t len,
	     const char *json, size_t json_len, struct vherr *err);
/* Publishes the open shard, if it holds anything, and waits for shards other threads are
 * publishing. Call once, after the last pack_add. Returns 0 or the first fatal error. */
int pack_close(struct pack *p, struct vherr *err);
/* Frees p (NULL accepted). An unpublished shard's temporary files are removed: without
 * pack_close, what was added since the last published shard is dropped. */
void pack_free(struct pack *p);

/* Writes pack_key(relout) (see above) to buf. relout must be relative, without empty,
 * "." or ".." components, and its base name must have an extension. Returns 0, or -1 if
 * relout is not of that form or the key does not fit in size bytes. Pure, thread-safe. */
int pack_key(const char *relout, char *buf, size_t size);

/* Returns "tar" or "tar.zst". */
const char *pack_format_ext(enum pack_format f);
/* Parses "tar" or "tar.zst" (also "tar.zstd"). Returns 0, or -1. */
int pack_format_parse(const char *s, enum pack_format *out);

/* Called once per key of a published shard; returns 0 to go on, or a negative code to stop
 * the scan (pack_scan then returns that code). */
typedef int (*pack_scan_fn)(void *ctx, const char *key, const char *shard);

/* Lists the keys of the published shards NAME-MEMBER-SEQ.tar[.zst] in dir, from their
 * indexes (member NULL: every member), calling fn (may be NULL) for each key, and sets
 * *next_seq (may be NULL) to one more than the highest SEQ of a shard or index found
 * (1 when none). A missing dir has no shards. Returns 0, fn's code, or a negative code
 * with err set (a published shard without its index, or an index that does not parse). */
int pack_scan(const char *dir, const char *name, const char *member, pack_scan_fn fn, void *ctx,
	      uint64_t *next_seq, struct vherr *err);

#endif
