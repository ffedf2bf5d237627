/* mkplan: what a preset generates, as a list of jobs (one per file), decided up front.
 *
 * The plan is pure: names, formats, sizes and per-file seeds come from the run seed and the
 * file's index only, so a run's output does not depend on threads or timing. */
#ifndef VHPREP_BENCH_MKPLAN_H
#define VHPREP_BENCH_MKPLAN_H

#include <stddef.h>
#include <stdint.h>

/* The options a plan depends on (filled by the CLI). 0 means "the preset's default". */
struct mkplan_opts {
	const char *preset; /* photos | sample | bad | flat | wide */
	long count;	    /* files (photos, sample, flat; wide: total if --files is unset) */
	uint64_t seed;
	int width, height; /* photos */
	int quality;	   /* JPEG/WebP quality; sample picks 75-95 per file when 0 */
	long per_dir;	   /* photos: files per class folder */
	long dirs, files;  /* wide */
	int empty;	   /* flat/wide: 0-byte files instead of tiny JPEGs */
};

enum mkjob_type {
	MKJOB_IMAGE, /* a painted picture; kind = enum mkencode_kind */
	MKJOB_BAD,   /* a crafted bad input; kind = enum mkbad_kind */
	MKJOB_POOL,  /* a copy of tiny JPEG number `kind` of the plan's pool */
	MKJOB_EMPTY, /* 0 bytes */
};

struct mkjob {
	char *relpath; /* owned by the plan */
	enum mkjob_type type;
	int kind;
	int width, height; /* upright picture size (MKJOB_IMAGE) */
	int quality;
	uint64_t seed;
	/* Results, written only by the worker that makes this file. */
	size_t bytes;
	int out_width, out_height, out_bands; /* what a header reader reports; 0 if none */
};

struct mkplan {
	struct mkjob *jobs;
	size_t n;
	int pool_size; /* tiny JPEGs shared by MKJOB_POOL jobs (flat, wide) */
	int pool_width, pool_height;
};

/* Builds the plan for opts->preset. Returns 0, or -1 with a message in err (unknown preset,
 * bad count). The plan owns its jobs; free them with mkplan_release. */
int mkplan_build(struct mkplan *plan, const struct mkplan_opts *opts, char *err, size_t errlen);

/* Frees the jobs and zeroes the plan; a zeroed plan is fine. */
void mkplan_release(struct mkplan *plan);

/* Per-preset salt for mkrng_seed, so presets with one seed still differ. */
uint64_t mkplan_salt(const char *preset);

#endif
