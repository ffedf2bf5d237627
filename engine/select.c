#include "engine/select.h"

#include <fnmatch.h>
#include <string.h>
#include <xxhash.h>

#include "kernels/kernel.h"

/* Shard and sample use different seeds, so a sample of a shard is not skewed. */
#define SHARD_SEED 0x5348415244ULL /* "SHARD" */

int select_glob_match(const char *pattern, const char *relpath)
{
	const char *base = strrchr(relpath, '/');
	const char *subject = strchr(pattern, '/') ? relpath : (base ? base + 1 : relpath);

	return fnmatch(pattern, subject, 0) == 0;
}

static int any_match(const struct strlist *globs, const char *relpath)
{
	for (int i = 0; i < globs->n; i++)
		if (select_glob_match(globs->v[i], relpath))
			return 1;
	return 0;
}

uint64_t select_hash(const char *relpath, uint64_t seed)
{
	return XXH3_64bits_withSeed(relpath, strlen(relpath), seed);
}

int select_sampled(const char *relpath, double fraction, uint64_t seed)
{
	/* the top 53 bits as a double in [0, 1) */
	double u = (double)(select_hash(relpath, seed) >> 11) * 0x1.0p-53;

	return fraction >= 1.0 || u < fraction;
}

uint32_t select_shard_of(const char *relpath, uint32_t count)
{
	return count <= 1 ? 0 : (uint32_t)(select_hash(relpath, SHARD_SEED) % count);
}

int select_readable_name(const char *relpath)
{
	const char *base = strrchr(relpath, '/');
	const char *dot = strrchr(base ? base + 1 : relpath, '.');

	return dot && dot[1] && kernel_extension_readable(dot + 1);
}

enum select_verdict select_path(const struct config *cfg, const char *relpath)
{
	if (cfg->includes.n && !any_match(&cfg->includes, relpath))
		return SELECT_NOT_INCLUDED;
	if (!cfg->includes.n && cfg->select_by_type && !select_readable_name(relpath))
		return SELECT_NOT_IMAGE_TYPE;
	if (cfg->excludes.n && any_match(&cfg->excludes, relpath))
		return SELECT_EXCLUDED;
	if (cfg->shard_count > 1 && select_shard_of(relpath, cfg->shard_count) != cfg->shard_index)
		return SELECT_OTHER_SHARD;
	if (cfg->sample < 1.0 && !select_sampled(relpath, cfg->sample, cfg->seed))
		return SELECT_NOT_SAMPLED;
	return SELECT_KEEP;
}
