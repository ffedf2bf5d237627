/* select: which files a run takes, as pure functions of the relative path (and size).
 * Deterministic: the same path always gets the same answer, on every machine. */
#ifndef VHPREP_ENGINE_SELECT_H
#define VHPREP_ENGINE_SELECT_H

#include <stdint.h>

#include "engine/config.h"

/* Why a path was not taken (or SELECT_KEEP). */
enum select_verdict {
	SELECT_KEEP,
	SELECT_NOT_INCLUDED,
	SELECT_EXCLUDED,
	SELECT_NOT_SAMPLED,
	SELECT_OTHER_SHARD,
	SELECT_NOT_IMAGE_TYPE, /* by type (no --include): no extension of a format read here */
};

/* Matches one glob against relpath: a pattern without '/' is matched against the base
 * name, one with '/' against the whole path (fnmatch(3): '*' also crosses '/').
 * Returns 1 on a match. */
int select_glob_match(const char *pattern, const char *relpath);
/* Returns the verdict of cfg's includes (or, without any and with cfg->select_by_type,
 * the name's extension: select_readable_name), excludes, sample and shard for relpath
 * (size bounds and limit are applied where sizes and counts are known). Thread-safe. */
enum select_verdict select_path(const struct config *cfg, const char *relpath);
/* Returns 1 when relpath's base name ends in ".EXT" for an EXT the kernels read here
 * (kernel_extension_readable: jpg, png, webp, tif, ...; any case), else 0. */
int select_readable_name(const char *relpath);
/* Returns the 64-bit hash that sampling and sharding use (XXH3 of the path, seeded). */
uint64_t select_hash(const char *relpath, uint64_t seed);
/* Whether relpath falls in the sampled fraction for seed (a hash below fraction * 2^64). */
int select_sampled(const char *relpath, double fraction, uint64_t seed);
/* Returns the shard (0..count-1) that relpath belongs to. */
uint32_t select_shard_of(const char *relpath, uint32_t count);

#endif
