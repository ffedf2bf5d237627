/* dirsink: writes outputs as files under the outputs directory, mirroring the source's
 * relative tree. Each file is written under a hidden temporary name in its final
 * directory (dirsink_stage) and renamed into place (dirsink_commit), so no half-written
 * file is ever visible (Valohai uploads whatever is in the outputs directory). A commit
 * never replaces a file: renameat2(RENAME_NOREPLACE), or where the filesystem does not
 * support that flag (NFS, some FUSE), link(2) then unlink(2), or where there are no hard
 * links either, an exclusive create of the name followed by a rename onto it. A caller
 * that means to replace an output removes it first (dirsink_remove).
 *
 * Temporary names are "DIR/.vhprep-tmp.PID.N": DIRSINK_TMP_MARK in a name means a
 * temporary file, which a later run removes. */
#ifndef VHPREP_IO_DIRSINK_H
#define VHPREP_IO_DIRSINK_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"

#define DIRSINK_TMP_MARK ".vhprep-tmp."

struct dirsink;

/* An output written under its temporary name, not yet visible. */
struct dirsink_staged {
	char tmp[PATH_MAX]; /* relative to the outputs dir; "" when nothing is staged */
	uint64_t len;       /* bytes written */
};

/* Opens outputs_dir (created with parents if missing) for writing. live_upload makes each
 * committed file read-only (0444: Valohai uploads it at once). Returns 0 and *out
 * (caller owns), or a negative code with err set. */
int dirsink_open(const char *outputs_dir, int live_upload, struct dirsink **out,
		 struct vherr *err);
/* Returns an O_DIRECTORY fd of the outputs directory, owned by the sink. */
int dirsink_dirfd(const struct dirsink *s);
/* Writes data[0..len) to a temporary file in relout's directory (relative to the outputs
 * dir, parents created) and fills *st. Thread-safe. Returns 0, or a negative code with
 * err set (stage WRITE) and nothing left behind. */
int dirsink_stage(struct dirsink *s, const char *relout, const uint8_t *data, size_t len,
		  struct dirsink_staged *st, struct vherr *err);
/* Makes the staged file visible as relout, never replacing an existing file
 * (-VHERR_EXISTS), then read-only with live upload. Thread-safe. Returns 0, or a
 * negative code with err set; on failure the staged file is removed. */
int dirsink_commit(struct dirsink *s, struct dirsink_staged *st, const char *relout,
		   struct vherr *err);
/* Removes the staged file (nothing staged: nothing done). Thread-safe. */
void dirsink_discard(struct dirsink *s, struct dirsink_staged *st);
/* Removes the output relout if it exists. Thread-safe. Returns 0 (also when there was
 * nothing), or a negative code with err set. */
int dirsink_remove(struct dirsink *s, const char *relout, struct vherr *err);
/* dirsink_stage then dirsink_commit. Thread-safe; on failure nothing is left behind. */
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
