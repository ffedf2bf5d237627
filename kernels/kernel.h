/* kernel: one image in (encoded bytes), one image out (encoded bytes).
 *
 * One struct kernel per worker thread: kernel_run is not thread-safe on one kernel,
 * and needs no lock across kernels. The process must have called kernel_global_init
 * once (from main) before any kernel_new.
 *
 * The output is always 8-bit sRGB with 3 bands (grey inputs too), or 1 band with
 * gray (alpha flattened onto background); an alpha band is kept for png/webp colour
 * output and flattened onto background for jpeg.
 * EXIF orientation is applied (autorotate) and all metadata is stripped. */
#ifndef VHPREP_KERNELS_KERNEL_H
#define VHPREP_KERNELS_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"
#include "kernels/geometry.h"

enum kernel_format { KFMT_KEEP, KFMT_JPEG, KFMT_PNG, KFMT_WEBP };
enum kernel_fail_on { KFAIL_NONE, KFAIL_TRUNCATED, KFAIL_ERROR, KFAIL_WARNING };
enum kernel_choice { KERNEL_AUTO, KERNEL_VIPS, KERNEL_JPEGFAST, KERNEL_PNGFAST };

/* What to do to every image. Set once at start, read-only afterwards (shared by threads). */
struct kernel_params {
	int resize_w, resize_h; /* 0,0: no resize (decode, orient, re-encode) */
	enum geometry_mode mode;
	int gray;	   /* output single-band grey */
	double blur_sigma; /* 0: none */
	int sharpen;
	int autorotate; /* apply EXIF orientation (default 1) */
	enum kernel_format format;
	int quality;	     /* 1..100 for jpeg/webp (0: 90; clamped) */
	uint64_t max_pixels; /* refuse images with more pixels (from the header, before
				any decode), and crop/short plans whose scaled image
				would have more; 0: no limit */
	enum kernel_fail_on fail_on;
	enum kernel_choice choice; /* AUTO: jpeg-fast or png-fast where they give the
				      same picture (jpegfast_accepts, pngfast_accepts),
				      else libvips */
	int png_level;		   /* png-fast's libdeflate level 1-12 (0: its default) */
	double dct_keep;	   /* jpeg-fast: the smallest DCT-scaled size as a multiple
				      of the planned size (0: JPEGFAST_DCT_KEEP; for
				      benchmarks, no option sets it) */
	uint8_t background[3];	   /* pad colour (opaque, also on png/webp with alpha) and
				      alpha flattening colour for jpeg (sRGB) */
};

/* The result of one kernel_run. data is owned by the result: kernel_result_release
 * frees it with g_free. It comes from libvips' save buffer (g_malloc, handed over
 * without a copy) or from malloc (jpeg-fast, png-fast): one allocator since GLib 2.46,
 * but free it only through kernel_result_release. */
struct kernel_result {
	uint8_t *data;
	size_t len;
	int in_w, in_h; /* the source's pixel size as stored (before orientation) */
	int out_w, out_h;
	enum kernel_format format; /* the format written (never KFMT_KEEP) */
	const char *kernel;	   /* "libvips", "jpeg-fast" or "png-fast"; static string */
};

/* Initialises process-wide state (libvips: concurrency 1, operation cache off, its
 * per-scanline warnings on stderr silenced unless VHPREP_VIPS_WARNINGS is set). Call
 * once from main before threads start. argv0 may be NULL. Returns 0 or a negative
 * code with err filled. */
int kernel_global_init(const char *argv0, struct vherr *err);
/* Releases process-wide state; call once at exit, after every kernel_free. */
void kernel_global_shutdown(void);

/* Returns a kernel for one thread; params must outlive it. NULL on allocation failure. */
struct kernel *kernel_new(const struct kernel_params *params);
/* Frees k; k may be NULL. Call from the thread that used it. */
void kernel_free(struct kernel *k);

/* Transforms in[0..len) into *res. Returns 0, or a negative code with err filled
 * (stage DECODE/TRANSFORM/ENCODE, message without the path), and res left empty.
 * in is borrowed for the call only. Codes: EMPTY (len 0), NOT_IMAGE, TOO_LARGE,
 * TRUNCATED, CORRUPT, NOMEM (stage DECODE; pixels are decoded lazily, so a bad
 * input may fail only while encoding and is still reported as DECODE), TRANSFORM,
 * ENCODE (e.g. wider than the format allows: jpeg 65500, webp 16383). */
int kernel_run(struct kernel *k, const uint8_t *in, size_t len, struct kernel_result *res,
	       struct vherr *err);
/* Frees res->data and zeroes res; safe on an empty result. */
void kernel_result_release(struct kernel_result *res);

/* Returns the file extension (no dot) for a concrete format: "jpg", "png", "webp";
 * "" for KFMT_KEEP or an unknown value. Never NULL. */
const char *kernel_format_ext(enum kernel_format fmt);
/* Parses "jpg|jpeg|png|webp|keep" (lowercase); 0 ok, -1 unknown or NULL. */
int kernel_format_parse(const char *s, enum kernel_format *fmt);
/* Parses "none|truncated|error|warning" (libvips' fail_on levels, each implying the
 * ones before; "corrupt JPEG data" is only a warning to libjpeg); 0 ok, -1 unknown. */
int kernel_fail_on_parse(const char *s, enum kernel_fail_on *f);
#define KERNEL_OP_MAX 48
/* Writes the operation chain that params asks for, in the order applied, one step per
 * row: "autorotate", "resize:224x224:stretch", "gray", "blur:1.5", "sharpen",
 * "format:jpg:q90" (format:keep:q90 for keep, format:png without a quality).
 * Rows beyond max are dropped. Returns the number of rows written (<= max). */
int kernel_describe(const struct kernel_params *params, char ops[][KERNEL_OP_MAX], int max);

#endif
