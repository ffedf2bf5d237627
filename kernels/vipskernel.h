/* vipskernel: the libvips path of kernel_run: any format libvips reads (JPEG, PNG,
 * WebP, TIFF, GIF, HEIF...), CMYK and ICC-tagged inputs, every filter.
 *
 * The caller is kernels/kernel.c; nothing else should need this header. */
#ifndef VHPREP_KERNELS_VIPSKERNEL_H
#define VHPREP_KERNELS_VIPSKERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"
#include "kernels/kernel.h"

/* Initialises libvips for this process: VIPS_INIT, one libvips worker per
 * pipeline (vips_concurrency_set(1): the engine's threads give the parallelism),
 * operation cache off, and libvips' own warnings (one per bad scanline, to stderr)
 * silenced unless VHPREP_VIPS_WARNINGS is set in the environment. Call once from
 * the main thread before any vipskernel_new. argv0 may be NULL. Returns 0 or
 * -VHERR_INTERNAL with err filled. */
int vipskernel_global_init(const char *argv0, struct vherr *err);
/* Shuts libvips down; call once at exit after every vipskernel_free. libvips cannot
 * be initialised again afterwards. */
void vipskernel_global_shutdown(void);

/* Returns a libvips kernel for one thread; params must outlive it. NULL on
 * allocation failure. */
struct vipskernel *vipskernel_new(const struct kernel_params *params);
/* Frees vk; vk may be NULL. */
void vipskernel_free(struct vipskernel *vk);

/* Decodes in[0..len) (a whole encoded file, borrowed for the call), applies
 * params, encodes into *res. res->data is allocated with g_malloc (libvips' own
 * save buffer, handed over without a copy); kernel_result_release frees it.
 * Returns 0, or a negative code with err filled and *res zeroed:
 *   -VHERR_EMPTY      (DECODE)    len == 0
 *   -VHERR_NOT_IMAGE  (DECODE)    no libvips loader recognises the bytes
 *   -VHERR_TOO_LARGE  (DECODE)    width * height from the header > max_pixels
 *                                 (nothing decoded); TRANSFORM if the scaled image
 *                                 of a crop/short plan would be
 *   -VHERR_TRUNCATED  (DECODE)    the data ends early (per fail_on)
 *   -VHERR_CORRUPT    (DECODE)    any other decode failure (per fail_on)
 *   -VHERR_TRANSFORM  (TRANSFORM) an image operation failed
 *   -VHERR_ENCODE     (ENCODE)    the output format cannot hold the image, or the
 *                                 saver failed for a reason not traced to the input
 * Pixels are decoded lazily while saving, so a failure during the save is
 * reported as a DECODE error unless its message names the saver.
 * The message's libvips text is this file's own at any thread count: a run that
 * failed inside libvips is replayed alone (a process-wide reader/writer lock that
 * good runs only read-hold), so it is the same at -j1 and -j8.
 * Not thread-safe on one vk; distinct vks need no lock of ours but that one. */
int vipskernel_run(struct vipskernel *vk, const uint8_t *in, size_t len,
		   struct kernel_result *res, struct vherr *err);

/* Read-holds the lock a failed vipskernel_run is replayed under, for libvips work
 * done outside vipskernel_run (the preview's thumbnails and sheet, kernels/contact.c),
 * so that work cannot clear or add to a replay's error text. Pair each begin with an
 * end on the same thread; do not nest, nor call from inside vipskernel_run. */
void vipskernel_shared_begin(void);
/* Ends vipskernel_shared_begin. */
void vipskernel_shared_end(void);

#endif
