/* jpegfast: the jpeg-fast path of kernel_run, plain JPEG in, JPEG out, without libvips.
 *
 * libturbojpeg decodes to YCbCr planes (DCT scaling at 1/2, 1/4 or 1/8 while the
 * decoded image stays at least JPEGFAST_DCT_KEEP times the planned size), libswscale resamples
 * each plane, libturbojpeg encodes from the planes. No colour conversion, no chroma upsampling.
 * The pictures match the libvips path (vipskernel.h) to within a few levels; the
 * error codes and stages are the same.
 *
 * The caller is kernels/kernel.c: it asks jpegfast_accepts per file and runs the
 * libvips kernel when the answer is no. */
#ifndef VHPREP_KERNELS_JPEGFAST_H
#define VHPREP_KERNELS_JPEGFAST_H

#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"
#include "kernels/kernel.h"

/* Returns 1 if the jpeg-fast path gives the picture params asks for in[0..len), else 0:
 * JPEG in (SOI magic), format keep or jpg out, no blur or sharpen, 8-bit YCbCr or
 * greyscale with a subsampling libturbojpeg names (not CMYK, YCCK, RGB, 12-bit,
 * lossless), and no embedded ICC profile (colour management stays in libvips).
 * Reads the markers and the frame header only (a few microseconds). A file whose
 * header libturbojpeg rejects gives 0, so the libvips path reports its error.
 * in is borrowed for the call; NULL is accepted with len 0. Thread-safe. */
int jpegfast_accepts(const struct kernel_params *params, const uint8_t *in, size_t len);

/* The DCT scale: the smallest of 1, 1/2, 1/4, 1/8 whose decoded image is still at
 * least this many times the planned size on both axes (before the final resample);
 * measured in jpegfast.c at pick_dct_shift (it was 2). */
#define JPEGFAST_DCT_KEEP 1.25

/* Returns a jpeg-fast kernel for one thread; params must outlive it. NULL on
 * allocation failure. The kernel owns its libturbojpeg handles, its plane buffers
 * and a few libswscale contexts, all reused from one file to the next: buffers
 * only grow (up to JPEGFAST_KEEP_BYTES each; a bigger one is freed after the file
 * that needed it), so steady state allocates nothing of ours per file but the
 * output. libjpeg's own working memory is allocated per decode. */
struct jpegfast *jpegfast_new(const struct kernel_params *params);
/* Frees jf; jf may be NULL. */
void jpegfast_free(struct jpegfast *jf);

/* The largest of its five buffers a kernel keeps between files (224-pixel work on
 * camera-sized JPEGs needs about 2 MB in all); larger ones are released after use. */
#define JPEGFAST_KEEP_BYTES (16u << 20)

/* Decodes in[0..len) (a whole JPEG, borrowed for the call), applies params, encodes
 * a JPEG into *res with res->kernel = "jpeg-fast" and res->format = KFMT_JPEG.
 * res->data is allocated with malloc (GLib >= 2.46 frees it with g_free, so
 * kernel_result_release frees it). The output has no metadata (EXIF stripped, so
 * orientation 1); a colour input, and a grey one without params->gray, gives a
 * YCbCr JPEG (grey in, grey pixels out, as libvips makes it sRGB), subsampled 4:2:0
 * or 4:4:4 as params->subsample says (PIL's default 4:2:0 whatever the quality). With
 * params->gray the output is the luma plane alone (Rec. 601 luma, as PIL's convert("L")).
 * Returns 0, or a negative code with err filled (message without the path) and
 * *res zeroed:
 *   -VHERR_EMPTY      (DECODE)    len == 0
 *   -VHERR_NOT_IMAGE  (DECODE)    not a JPEG (no SOI)
 *   -VHERR_TOO_LARGE  (DECODE)    width * height from the header > max_pixels
 *                                 (nothing decoded); TRANSFORM if the scaled image
 *                                 of a crop/short plan would be
 *   -VHERR_TRUNCATED  (DECODE)    the data ends before its EOI marker (unless
 *                                 fail_on is none), or the header is cut short
 *   -VHERR_CORRUPT    (DECODE)    libjpeg could not decode; or (fail_on warning
 *                                 only) it decoded with a "corrupt data" warning
 *   -VHERR_INTERNAL   (DECODE)    a JPEG jpegfast_accepts refuses (CMYK, RGB, ...)
 *   -VHERR_TRANSFORM  (TRANSFORM) no plan (a side over GEOMETRY_MAX_SIDE) or the
 *                                 scaler failed
 *   -VHERR_ENCODE     (ENCODE)    an output side over 65500, or the encoder failed
 *   -VHERR_NOMEM      (any)       a buffer could not be allocated
 * Damaged data is judged as libvips 8.14's jpegload judges it: data that ends before
 * the EOI marker fails from fail_on=truncated up (also when only the EOI is missing:
 * libvips reads past the end there too); libjpeg's "Corrupt JPEG data" warnings fail
 * only with fail_on=warning (except "extraneous bytes before marker 0xd9", which
 * libvips never reads far enough to meet). Nothing is written to *res on any failure.
 * Not thread-safe on one jf; distinct jfs need no lock. */
/* Makes the next jpegfast_runs fill res->src_thumb fitting box x box (0: none), from
 * the decoded planes (see kernel_want_thumb). */
void jpegfast_want_thumb(struct jpegfast *jf, int box);
int jpegfast_run(struct jpegfast *jf, const uint8_t *in, size_t len, struct kernel_result *res,
		 struct vherr *err);

/* Returns the EXIF orientation (1..8) of the JPEG in[0..len): the IFD0 Orientation
 * tag of the last APP1 "Exif" segment before the first scan, as libvips reads it;
 * 1 when there is none or it is out of range or malformed. Never reads outside
 * in[0..len). Pure and thread-safe (exposed for tests and fuzzing). */
int jpegfast_exif_orientation(const uint8_t *in, size_t len);

#endif
