/* config: everything a run is asked to do, parsed from the command line (options.c)
 * and the environment, validated in one place. Read-only once the run starts. */
#ifndef VHPREP_ENGINE_CONFIG_H
#define VHPREP_ENGINE_CONFIG_H

#include <stdint.h>

#include "common/vherr.h"
#include "io/metadata.h"
#include "io/pack.h"
#include "kernels/kernel.h"

/* --max-file-size's default: a larger file is too_large from its size alone. */
#define CONFIG_MAX_FILE_SIZE (1ULL << 30)
/* The least --memory (or container limit) vhprep runs in. */
#define CONFIG_MEMORY_MIN (64ULL << 20)
/* The read budget's default, and its ceiling when it follows --memory (a quarter). */
#define CONFIG_READ_BUDGET (256ULL << 20)

/* A growable list of borrowed strings (they point into argv or the environment). */
struct strlist {
	const char **v;
	int n;
};

struct config {
	const char *source;       /* the SOURCE argument */
	struct kernel_params kernel;
	/* select */
	struct strlist includes, excludes;
	int select_by_type;       /* without --include, only names with an image extension
				     (config_finish: walks yes; --files-from and --urls no) */
	uint64_t min_size, max_size; /* max_size UINT64_MAX: no bound */
	uint64_t max_file_size;   /* --max-file-size: a larger file is too_large unread */
	uint64_t memory;          /* --memory; 0 until config_finish: the container's limit */
	const char *memory_from;  /* where memory came from: "--memory", "cgroup v1", ... */
	int read_budget_set;      /* --read-budget given (else it follows memory) */
	uint64_t limit;           /* 0: no limit */
	double sample;            /* keep this fraction, 1.0: all */
	uint64_t seed;            /* sample hash seed */
	uint32_t shard_index, shard_count; /* shard_count 1: no sharding */
	/* --shard auto[/N]: config_finish sets shard_index/count from the scheduler's
	 * environment (engine/shardenv.h) unless --shard I/N was given too */
	int shard_auto, shard_explicit;
	uint32_t shard_auto_count; /* N of auto/N, 0: from the environment */
	const char *files_from;
	/* write */
	const char *outputs;      /* resolved by config_finish */
	const char *prefix;
	int live_upload, overwrite;
	/* --pack (io/pack.h): shards instead of one file per output; pack 0: dir */
	int pack;
	enum pack_format pack_format;
	uint64_t shard_size;      /* --shard-size, 0: PACK_SHARD_SIZE_DEFAULT */
	int zstd_level;           /* --zstd-level, 0: PACK_ZSTD_LEVEL_DEFAULT */
	/* record */
	struct strlist datasets, aliases, tags;
	struct strlist owned; /* strings config_finish made ({shard} in --dataset); freed */
	const char *dataset_from;
	int packaging; /* --packaging: "packaging": true on each version */
	struct strlist dataset_excludes; /* --dataset-exclude: names the version leaves out */
	/* incremental */
	const char *since;        /* an earlier run's valohai.metadata.jsonl, or NULL */
	int since_checksum;       /* compare SHA-256 rather than size and mtime */
	/* preview (engine/preview.h) */
	int preview;		  /* samples on vhprep-preview.jpg, 0: no sheet */
	int preview_in_dataset;	  /* bind the sheet to the dataset version(s) too */
	/* run */
	int threads, io_depth, walkers;
	int nfs_connections;      /* nfs:// TCP connections */
	double nfs_timeout;       /* nfs:// mount and per-request timeout, seconds */
	uint64_t read_budget;
	uint64_t max_errors;
	int quiet;
	double metrics_interval;  /* seconds, 0: no metrics lines */
	int progress;             /* -1 auto (stderr is a TTY), 0 off, 1 on */
	/* --urls: the source is a list of http(s) URLs (io/httpsrc.h) */
	const char *urls;         /* the list's path, "-" stdin; NULL: SOURCE is a path/URL */
	const char *url_column, *key_column; /* NULL: "url", "key" */
	int per_host;             /* connections per host */
	double http_timeout;      /* seconds for one attempt (connect: at most 10 of them) */
	int retries;              /* retries of a 429/5xx/reset */
	int keep_query;           /* provenance keeps URL query strings */
	int insecure;             /* TLS unverified */
	int allow_metadata_ip;    /* cloud metadata addresses may be fetched */
	const char *cacert, *netrc_file; /* NULL: the system's CAs; no netrc */
};

/* Fills cfg with the defaults (before options). */
void config_defaults(struct config *cfg);
/* Frees what cfg allocated (its lists); the strings are borrowed. cfg may be NULL. */
void config_release(struct config *cfg);
/* Appends s to l. Returns 0, or -1 when memory runs out. */
int strlist_add(struct strlist *l, const char *s);

/* Resolves what depends on the environment (outputs dir, thread count) and checks the
 * whole config. Returns 0, or -VHERR_USAGE with err's message saying what is wrong. */
int config_finish(struct config *cfg, struct vherr *err);
/* Fills b with the dataset binding that cfg asks for (pointers into cfg). */
void config_binding(const struct config *cfg, struct metadata_binding *b);

/* Parsers for option values. Each returns 0 and sets its output, or -1. */
/* "1048576", "512k", "256M", "1.5G", "2T" (powers of 1024). */
int config_parse_size(const char *s, uint64_t *out);
/* "224" (224x224) or "224x160" (width x height), 1..65535 each. */
int config_parse_resize(const char *s, int *w, int *h);
/* "I/N" with 0 <= I < N. */
int config_parse_shard(const char *s, uint32_t *index, uint32_t *count);
/* "auto" (*count 0) or "auto/N" (N >= 1). */
int config_parse_shard_auto(const char *s, uint32_t *count);
/* Returns a copy of s (caller frees) with every "{shard}" written as "IofN" (0-based I,
 * the form of --shard I/N: "v1-part{shard}" -> "v1-part2of4"), or NULL without memory. */
char *config_expand_shard(const char *s, uint32_t index, uint32_t count);
/* A decimal in (0, 1]. */
int config_parse_fraction(const char *s, double *out);
/* An integer in [min, max]. */
int config_parse_long(const char *s, long min, long max, long *out);

#endif
