/* lfsops: latencyfs' filesystem, the low-level FUSE operations over a read-only source
 * directory. Every request that an NFS client would send over the network (lookup,
 * getattr, open, read, opendir, readdir/readdirplus, readlink, statfs, access) sleeps one
 * emulated round trip in its serving thread (a readdir that finds nothing left is free:
 * an NFS reply carries its EOF); bookkeeping (release, releasedir, flush,
 * forget) is free; every write (create, write, setattr, unlink, rename, ...) fails with
 * EROFS at once and is counted as denied. */
#ifndef VHPREP_BENCH_LFSOPS_H
#define VHPREP_BENCH_LFSOPS_H

#include <fuse_lowlevel.h>
#include <stddef.h>

#include "bench/latencyfs/lfsstats.h"

struct lfsops_config {
	const char *src;      /* source directory; read only at lfsops_new */
	double delay_ms;      /* one round trip, >= 0 */
	double jitter_ms;     /* uniform +/- around delay_ms, >= 0 */
	double attr_timeout;  /* kernel attribute cache, seconds (NFS acregmin/acdirmin) */
	double entry_timeout; /* kernel name cache incl. negative entries, seconds */
	unsigned threads;     /* serving threads = kernel max_background, >= 1 */
	unsigned readahead_kb; /* kernel readahead window, KiB; 0: kernel default (128) */
};

struct lfsops;

/* Opens cfg->src and returns a filesystem for it in *out (the caller owns it, see
 * lfsops_free). Returns 0, or a negative errno with "cannot open 'SRC': reason" in err. */
int lfsops_new(const struct lfsops_config *cfg, struct lfsops **out, char *err, size_t errlen);
/* Frees fs and closes the source; fs may be NULL. Only once the session is destroyed. */
void lfsops_free(struct lfsops *fs);
/* Returns the operation table to give fuse_session_new with fs as userdata (static). */
const struct fuse_lowlevel_ops *lfsops_table(void);
/* Arms a one-shot write of cfg.readahead_kb to the read_ahead_kb file bdi_path, done by
 * the first request served after INIT (INIT would undo an earlier write). Call once the
 * session is mounted, before its loop starts. */
void lfsops_set_bdi(struct lfsops *fs, const char *bdi_path);
/* Routes se's device I/O through lfsinitfix (see lfsinitfix.h). Call after
 * fuse_session_mount and before the loop, only if lfsinitfix_needed(). Returns 0 or a
 * negative errno (libfuse printed why). */
int lfsops_use_initfix(struct lfsops *fs, struct fuse_session *se);
/* Returns fs's counters; they live as long as fs. Any thread. */
struct lfsstats *lfsops_stats(struct lfsops *fs);

#endif
