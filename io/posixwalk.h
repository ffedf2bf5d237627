/* posixwalk: a parallel, streaming walk of a local directory or kernel mount.
 * Several directories are listed at once (one per walker thread), so on a network
 * mount the getdents round trips of a wide tree overlap. Files are emitted as they are
 * read from each directory: nothing but the pending directories is kept in memory.
 * Every name is emitted with its kind (io/source.h): regular files, and symbolic links to
 * files that resolve inside the root, as SOURCE_KIND_FILE; links to directories are never
 * followed (no loops); links out of the root, dangling links, loops, FIFOs, sockets and
 * devices are emitted with their kind, never opened. */
#ifndef VHPREP_IO_POSIXWALK_H
#define VHPREP_IO_POSIXWALK_H

#include <stdatomic.h>

#include "io/source.h"

/* What a walk saw besides the files it emitted (set during the walk, read after it). */
struct posixwalk_stats {
	atomic_ullong dirs;    /* directories listed */
	atomic_ullong skipped; /* names emitted with a kind other than SOURCE_KIND_FILE */
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

/* Writes the resolved path of the directory open as rootfd into buf. 0, or -1 (errno). */
int posixwalk_root_real(int rootfd, char *buf, size_t size);
/* Whether the resolved path lies at or under the resolved root. */
int posixwalk_within(const char *path, const char *root);

#endif
