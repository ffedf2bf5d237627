/* posixwalk: a parallel, streaming walk of a local directory or kernel mount.
 * Several directories are listed at once (one per walker thread), so on a network
 * mount the getdents round trips of a wide tree overlap. Files are emitted as they are
 * read from each directory: nothing but the pending directories is kept in memory.
 * Symbolic links to files are emitted; links to directories are never followed (no loops). */
#ifndef VHPREP_IO_POSIXWALK_H
#define VHPREP_IO_POSIXWALK_H

#include <stdatomic.h>

#include "io/source.h"

/* What a walk saw besides the files it emitted (set during the walk, read after it). */
struct posixwalk_stats {
	atomic_ullong dirs;          /* directories listed */
	atomic_ullong skipped_links; /* symlinks to directories, not followed */
	atomic_ullong skipped_other; /* sockets, fifos, devices, dangling links */
};

/* Walks the tree under rootfd (an O_DIRECTORY fd, borrowed) with nwalkers threads,
 * calling emit for every regular file. Stops early when *stop becomes non-zero or emit
 * returns SOURCE_STOP (which also sets *stop). A sub-directory that cannot be listed is
 * passed to on_error (may be NULL) and skipped. Returns 0, or a negative code with err
 * set when the root itself cannot be listed or memory runs out. stats may be NULL; lat
 * (NULL: none) records each directory's whole listing as one OPLAT_DIR. */
int posixwalk_run(int rootfd, int nwalkers, atomic_int *stop, source_emit_fn emit,
		  void *ctx,
		  void (*on_error)(void *ctx, const char *relpath, const struct vherr *err),
		  struct posixwalk_stats *stats, struct oplat *lat, struct vherr *err);

#endif
