/* dirsink: writes outputs as files under the outputs directory, mirroring the source's
 * relative tree. Each file is written under a hidden temporary name in its final
 * directory and renamed into place, so no half-written file is ever visible (Valohai
 * uploads whatever is in the outputs directory). */
#ifndef VHPREP_IO_DIRSINK_H
#define VHPREP_IO_DIRSINK_H

#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"

struct dirsink;

/* Opens outputs_dir (created with parents if missing) for writing. live_upload makes each
 * finished file read-only (0444: Valohai uploads it at once); overwrite lets an output
 * replace an existing file (else an existing file is VHERR_EXISTS). Returns 0 and *out
 * (caller owns), or a negative code with err set. */
int dirsink_open(const char *outputs_dir, int live_upload, int overwrite,
		 struct dirsink **out, struct vherr *err);
/* Returns an O_DIRECTORY fd of the outputs directory, owned by the sink. */
int dirsink_dirfd(const struct dirsink *s);
/* Writes data[0..len) to relout (relative to the outputs dir, parents created), through a
 * temporary file and a rename. Thread-safe. Returns 0, or a negative code with err set
 * (stage WRITE); on failure nothing is left behind. */
int dirsink_write(struct dirsink *s, const char *relout, const uint8_t *data, size_t len,
		  struct vherr *err);
/* Frees s; s may be NULL. */
void dirsink_free(struct dirsink *s);

/* Maps a source relative path to its output path "prefix/relpath" with the extension
 * changed to ext unless the name already has an extension meaning the same format
 * (jpg/jpeg/jpe in any case for "jpg"). prefix may be "" (no prefix). Returns 0, or -1
 * if the result does not fit in size bytes. */
int dirsink_output_name(const char *prefix, const char *relpath, const char *ext, char *buf,
			size_t size);

#endif
