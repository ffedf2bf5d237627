/* sink: where a run's finished outputs go, and their records with them. It sits beside
 * the source interface (source.h): the pipeline hands each output to a sink and does not
 * know which kind it drives; engine/ chooses it; kernels never see it.
 *
 *   dir   dirsink.h: one file per output under the outputs dir (temporary name, then
 *         rename), and one line per output in valohai.metadata.jsonl, appended before
 *         the rename (a crash leaves at worst a line whose file is missing, which the
 *         next run drops: engine/resume.h).
 *   pack  pack.h: size-bounded tar or tar.zst shards. An output becomes the members
 *         KEY and KEY.json, where KEY.json is the line the dir sink would append (the
 *         output's provenance, Valohai's per-file form); valohai.metadata.jsonl gets
 *         one line per published shard and one per its index (sink_pack_line), not one
 *         per output. Published shards are never rewritten, so this sink cannot replace
 *         an output (sink_can_replace).
 *
 * Publishing is two steps so that a caller may decide, between them and under its own
 * lock, whether the output may take its name (engine/claims.h): sink_stage (the slow
 * part: the dir sink writes the bytes to a temporary file; the pack sink does nothing)
 * and sink_publish (the output and its record become durable together) or sink_discard.
 *
 * Threads: stage, publish, discard from any number of threads at once; open, close and
 * free from one thread while none of those runs. */
#ifndef VHPREP_IO_SINK_H
#define VHPREP_IO_SINK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"
#include "io/dirsink.h"
#include "io/metadata.h"
#include "io/pack.h"

/* One finished output, borrowed for the call. */
struct sink_output {
	const char *relout;  /* what a dir run names it, relative to the outputs dir */
	const uint8_t *data; /* the output's bytes */
	size_t len;
	const char *line; /* its metadata line (metadata_format_line: '\n'-ended) */
	size_t line_len;
};

/* An output between sink_stage and sink_publish/sink_discard. */
struct sink_staged {
	struct dirsink_staged dir; /* the dir sink's temporary file */
};

struct sink;

/* The dir sink over ds and m (both borrowed, must outlive the sink). sidecars (live
 * upload): each output also gets its metadata as Valohai's per-file sidecar
 * RELOUT.metadata.json, written before the output turns read-only (Valohai uploads it
 * then and removes it: a line appended to valohai.metadata.jsonl later may come too
 * late). Returns 0 and *out (caller owns), or -VHERR_NOMEM with err set. */
int sink_dir_open(struct dirsink *ds, struct metadata *m, int sidecars, struct sink **out,
		  struct vherr *err);

/* Writes file's sidecar FILE.metadata.json (relative to ds's dir): the "metadata" object
 * of line (one metadata_format_line result), replacing an earlier sidecar. Thread-safe.
 * Returns 0, or a negative code with err set. */
int sink_write_sidecar(struct dirsink *ds, const char *file, const char *line,
		       struct vherr *err);

/* What the pack sink needs besides pack_options (whose on_publish and ctx it sets). */
struct sink_pack_opts {
	const char *outputs;			/* the outputs dir: shards go in its root */
	struct pack_options pack;		/* copied; on_publish/ctx ignored */
	struct metadata *metadata;		/* borrowed: the shard lines go there */
	struct dirsink *ds;			/* borrowed: the outputs dir (sidecars) */
	const struct metadata_binding *binding; /* borrowed: what each shard line binds */
	/* called once per published shard, after its lines are appended and (with
	 * live_upload) before it turns read-only; may be NULL. 0, or a negative code with
	 * err set (the run stops). */
	int (*on_shard)(void *ctx, const struct pack_shard *shard, struct vherr *err);
	void *ctx;
};

/* The pack sink: a pack_open over o->outputs. With pack.live_upload each shard and index
 * gets its sidecar (sink_write_sidecar) before it turns read-only. Returns 0 and *out (caller
 * owns), or a negative code with err set (VHERR_USAGE for bad options). */
int sink_pack_open(const struct sink_pack_opts *o, struct sink **out, struct vherr *err);

/* Whether the sink can replace an output published earlier (dir: yes; pack: no). */
int sink_can_replace(const struct sink *s);
/* "dir", "tar" or "tar.zst". */
const char *sink_kind(const struct sink *s);

/* Prepares o (see above) and fills *st. Returns 0, or a negative code with err set and
 * nothing left behind. */
int sink_stage(struct sink *s, const struct sink_output *o, struct sink_staged *st,
	       struct vherr *err);
/* Makes the staged output and its record durable (the pack sink: once its shard is
 * published). replace (only where sink_can_replace): remove the output standing at
 * o->relout first, *removed (may be NULL) saying whether one was; the new line then
 * supersedes the old. Returns 0, or a negative code with err set: VHERR_EXISTS (a file
 * not ours holds the name), VHERR_COLLISION (the pack has the name already), stage
 * VHSTAGE_RECORD when a record could not be written or taken back (the outputs are
 * broken), or another write error. Nothing of o is visible after a failure. */
int sink_publish(struct sink *s, struct sink_staged *st, const struct sink_output *o,
		 int replace, int *removed, struct vherr *err);
/* Drops what sink_stage prepared and sink_publish did not take (none: nothing done). */
void sink_discard(struct sink *s, struct sink_staged *st);
/* Publishes what is still open (the pack's last shard). Call once, after the last
 * sink_publish. Returns 0 or the first fatal error. */
int sink_close(struct sink *s, struct vherr *err);
/* Frees s (NULL accepted); the pack sink drops an unpublished shard (see pack_free). */
void sink_free(struct sink *s);

/* The metadata line binding shard (or, when of_index, its index) with b: {"file": NAME,
 * "metadata": {binding..., "vhprep_shard": {"format", "seq", "members", "bytes",
 * "data_bytes", "first_key", "last_key", "index"}}} for a shard, {"file": INDEX,
 * "metadata": {binding..., "vhprep_index_of": SHARD}} for its index. Returns the line
 * ('\n'-ended, caller frees), or NULL without memory. fmt is the shard's format. */
char *sink_pack_line(const struct metadata_binding *b, enum pack_format fmt,
		     const struct pack_shard *shard, int of_index);

#endif
