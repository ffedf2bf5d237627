/* outsink: the run's choice of sink (io/sink.h). Without --pack, the dir sink over the
 * outputs dir. With --pack tar|tar.zst, the pack sink writing shards
 * NAME-IofN-SEQ.tar[.zst] into the outputs root, where NAME is --prefix with each '/'
 * written as '_' ("processed_images"; "shard" for an empty prefix) and IofN this run's
 * --shard (0of1 without one), so N members and reruns never clash.
 *
 * Resuming a pack (engine/resume.h for the dir sink's): what earlier runs published
 * stands for good. Before the first output, outsink_open
 *   - reads the index of every published shard NAME-*-SEQ in the outputs root and hands
 *     each key to resume_add_packed, so inputs whose output is in a shard are skipped
 *     (the new shards continue the sequence: pack.h);
 *   - appends the lines of valohai.metadata.jsonl a run killed between a shard's rename
 *     and its lines did not write (a shard line without "data_bytes", which only the
 *     writer knew), so every published shard and index is bound;
 *   - and removes the temporary files of dead runs (pack_open those of shards, this
 *     module the sidecars' in the root): a killed run leaves no partial shard visible,
 *     and the next one never rewrites a published one.
 * With --live-upload Valohai removes a shard once uploaded, so a rerun in the same
 * outputs dir cannot see it and would redo its inputs; Valohai starts every execution
 * with empty outputs, so this only matters for a rerun by hand. */
#ifndef VHPREP_ENGINE_OUTSINK_H
#define VHPREP_ENGINE_OUTSINK_H

#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"
#include "engine/config.h"
#include "engine/resume.h"
#include "io/sink.h"

/* What outsink_open needs; everything borrowed, and must outlive the sink. */
struct outsink_env {
	const struct config *cfg;
	struct dirsink *ds;
	struct metadata *metadata;
	const struct metadata_binding *binding;
	struct resume *resume; /* NULL: nothing to resume */
	/* pack: called per published shard (sink_pack_opts.on_shard); may be NULL */
	int (*on_shard)(void *ctx, const struct pack_shard *shard, struct vherr *err);
	void *ctx;
};

/* What outsink_open found of earlier runs (pack only; zeros for dir). */
struct outsink_report {
	uint64_t shards;	 /* published shards found */
	uint64_t keys;		 /* outputs in them */
	uint64_t lines_restored; /* metadata lines appended for them */
};

/* Opens the sink cfg asks for (see above). Returns 0 and *out (caller owns), or a
 * negative code with err set. rep may be NULL. Call once, before the pipeline. */
int outsink_open(const struct outsink_env *e, struct sink **out, struct outsink_report *rep,
		 struct vherr *err);
/* Writes the shard name prefix for --prefix prefix (see above) to buf. Returns 0, or -1
 * if it does not fit in size bytes. */
int outsink_pack_name(const char *prefix, char *buf, size_t size);
/* Percent-decodes a pack key (pack.h) into buf: the output's relative path. Returns 0, or
 * -1 if key is not well-formed or does not fit in size bytes. */
int outsink_key_decode(const char *key, char *buf, size_t size);

#endif
