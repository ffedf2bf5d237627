/* pngfast: the png-fast path of kernel_run: PNG in; PNG or JPEG out, without libvips.
 *
 * libspng decodes the whole image (8- or 16-bit grey, grey+alpha, RGB, RGBA, palette,
 * with tRNS, interlaced or not) into memory; the samples are split into 8-bit planes
 * (alpha premultiplied, so no dark fringes), resampled with libswscale's bicubic
 * filter (what Pillow's resize uses), oriented by the eXIf chunk, cropped or padded,
 * put back together (alpha unpremultiplied, or flattened onto the background for JPEG
 * and --gray) and encoded: PNG with adaptive row filters and libdeflate, JPEG with
 * libturbojpeg. Same pictures as the libvips path (vipskernel.h) to within a level or
 * two, same verdicts and error codes.
 *
 * The caller is kernels/kernel.c: it asks pngfast_accepts per file and runs the
 * libvips kernel when the answer is no. */
#ifndef VHPREP_KERNELS_PNGFAST_H
#define VHPREP_KERNELS_PNGFAST_H

#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"
#include "kernels/kernel.h"

/* The zlib-like level (libdeflate 1-12) a PNG is written at when params->png_level is
 * 0; see pngfast.c for the measurement that chose it. */
#define PNGFAST_DEFAULT_LEVEL 7

/* Returns 1 if the png-fast path gives the picture params asks for in[0..len), else 0:
 * PNG in (signature, then a valid IHDR with a correct CRC), format keep, png or jpg out,
 * no blur or sharpen, fail_on truncated or error (none and warning follow libpng's
 * warnings, which only the libvips path sees), and no iCCP chunk before the image data
 * (colour management stays in libvips). Reads the chunk headers up to the first IDAT
 * (microseconds). A file it refuses goes to libvips, which reports its error.
 * in is borrowed for the call; NULL is accepted with len 0. Thread-safe. */
int pngfast_accepts(const struct kernel_params *params, const uint8_t *in, size_t len);

/* Returns a png-fast kernel for one thread; params must outlive it. NULL on allocation
 * failure. The kernel owns its buffers, libswscale contexts, libdeflate compressor and
 * libturbojpeg encoder, all reused from one file to the next; a buffer grown past
 * PNGFAST_KEEP_BYTES is freed after the file that needed it. libspng's own state is
 * made per file. */
struct pngfast *pngfast_new(const struct kernel_params *params);
/* Frees pf; pf may be NULL. */
void pngfast_free(struct pngfast *pf);

/* The largest buffer a kernel keeps between files. */
#define PNGFAST_KEEP_BYTES (16u << 20)

/* Decodes in[0..len) (a whole PNG, borrowed for the call), applies params, encodes
 * into *res with res->kernel = "png-fast", res->format KFMT_PNG (keep or png) or
 * KFMT_JPEG. res->data is allocated with malloc (kernel_result_release frees it).
 * The output has no metadata. Bands as the libvips path makes them: RGB, RGBA when
 * the input has alpha (an alpha channel or tRNS) and the output is PNG, one grey band
 * with params->gray (alpha flattened onto params->background first, as for JPEG);
 * grey inputs become RGB. 16-bit samples become 8-bit (round(v / 257)).
 * Returns 0, or a negative code with err filled (message without the path) and *res
 * zeroed:
 *   -VHERR_EMPTY      (DECODE)    len == 0
 *   -VHERR_NOT_IMAGE  (DECODE)    not a PNG (no signature)
 *   -VHERR_TOO_LARGE  (DECODE)    width * height from the header > max_pixels
 *                                 (nothing decoded); TRANSFORM if the scaled image
 *                                 of a crop/short plan would be
 *   -VHERR_TRUNCATED  (DECODE)    the data ends before the image does (no IEND
 *                                 chunk in the last 64 bytes, as vipskernel judges)
 *   -VHERR_CORRUPT    (DECODE)    libspng could not decode it (bad CRC on a critical
 *                                 chunk, bad zlib data, bad filter, ...)
 *   -VHERR_INTERNAL   (DECODE)    a PNG pngfast_accepts refuses
 *   -VHERR_TRANSFORM  (TRANSFORM) no plan or the scaler failed
 *   -VHERR_ENCODE     (ENCODE)    JPEG out with a side over 65500, or an encoder
 *                                 failed
 *   -VHERR_NOMEM      (any)       a buffer could not be allocated
 * Not thread-safe on one pf; distinct pfs need no lock. */
int pngfast_run(struct pngfast *pf, const uint8_t *in, size_t len, struct kernel_result *res,
		struct vherr *err);

#endif
