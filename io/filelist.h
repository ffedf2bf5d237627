/* filelist: the --files-from source of relative paths, one per line, streamed. */
#ifndef VHPREP_IO_FILELIST_H
#define VHPREP_IO_FILELIST_H

#include <stdatomic.h>
#include <stddef.h>

#include "io/source.h"

/* Normalises a relative path in place: drops "./" parts, repeated and trailing '/'.
 * Returns 0, or -1 if it is empty, absolute, or has a ".." part (never leaves the root). */
int filelist_clean_relpath(char *path);

/* Reads path line by line ("-" is stdin), calling emit for each non-empty line
 * (trailing CR/LF removed) after filelist_clean_relpath; a line that is not a clean
 * relative path goes to on_error (stage SELECT) and is skipped. Stops when *stop is
 * raised or emit returns SOURCE_STOP. Returns 0, or a negative code with err set when
 * the list cannot be opened or read. */
int filelist_run(const char *path, atomic_int *stop, source_emit_fn emit, void *ctx,
		 void (*on_error)(void *ctx, const char *relpath, const struct vherr *err),
		 struct vherr *err);

#endif
