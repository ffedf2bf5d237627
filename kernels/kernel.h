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
/* JPEG chroma subsampling of colour output: 4:2:0 (the default, as PIL's and libvips'
 * defaults at quality 75) or 4:4:4; whatever the quality. */
enum kernel_subsample { KSUB_420, KSUB_444 };

/* The JPEG/WebP quality when params->quality is 0: PIL's Image.save and libvips' default. */
#define KERNEL_QUALITY_DEFAULT 75

/* What to do to every image. Set once at start, read-only afterwards (shared by threads). */
struct kernel_params {
	int resize_w, resize_h; /* 0,0: no resize (decode, orient, re-encode) */
	enum geometry_mode mode;
	int gray;	   /* output single-band grey */
	double blur_sigma; /* 0: none */
	int sharpen;
	int autorotate; /* apply EXIF orientation (default 1) */
	enum kernel_format format;
	int quality; /* 1..100 for jpeg/webp (0: KERNEL_QUALITY_DEFAULT; clamped) */
	enum kernel_subsample subsample; /* JPEG chroma (zero: 4:2:0) */
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

/* A small picture of the source that a kernel made from the pixels it decoded anyway
 * (for the preview sheet, see kernel_want_thumb): w x h pixels of bands bytes each
 * (1 grey, 3 sRGB), rows packed, the EXIF orientation applied as the kernel applies
 * it. px is malloc'd, or NULL for none. */
struct kernel_thumb {
	uint8_t *px;
	int w, h, bands;
	uint64_t cpu_ns; /* the thread CPU time it took (the preview's own accounting) */
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
	enum kernel_format format;     /* the format written (never KFMT_KEEP) */
	int frames;		       /* frames or pages in the input (animated GIF/WebP,
					  multi-page TIFF); 1 for a still image */
	int frame_used;		       /* the one transformed, zero-based: always 0 (the
					  first, as PIL's Image.open; --frames all may come) */
	const char *kernel;	       /* "libvips", "jpeg-fast" or "png-fast"; static string */
	struct kernel_thumb src_thumb; /* only after kernel_want_thumb, and only from the
					  paths that can (jpeg-fast); freed with the result */
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
/* Asks the next kernel_runs on k (until changed) for res->src_thumb, a picture of the
 * source fitting box x box (never enlarged), made from the planes the kernel decodes
 * anyway: ~0.1 ms where decoding the source again for it costs ~0.9 ms (500x375
 * JPEGs). box 0: none. Only jpeg-fast makes one; a failure to make it leaves it empty
 * and never fails the run. The worker that owns k. */
void kernel_want_thumb(struct kernel *k, int box);
/* Frees res->data and res->src_thumb and zeroes res; safe on an empty result. */
void kernel_result_release(struct kernel_result *res);

/* Returns the file extension (no dot) for a concrete format: "jpg", "png", "webp";
 * "" for KFMT_KEEP or an unknown value. Never NULL. */
const char *kernel_format_ext(enum kernel_format fmt);
/* Parses "jpg|jpeg|png|webp|keep" (lowercase); 0 ok, -1 unknown or NULL. */
int kernel_format_parse(const char *s, enum kernel_format *fmt);
/* Returns params' JPEG/WebP quality: 1..100, KERNEL_QUALITY_DEFAULT for 0. */
int kernel_quality(const struct kernel_params *params);
/* Parses "420|444" into *s; 0 ok, -1 unknown or NULL. */
int kernel_subsample_parse(const char *s, enum kernel_subsample *sub);
/* Parses "none|truncated|error|warning" (libvips' fail_on levels, each implying the
 * ones before; "corrupt JPEG data" is only a warning to libjpeg); 0 ok, -1 unknown. */
int kernel_fail_on_parse(const char *s, enum kernel_fail_on *f);
#define KERNEL_OP_MAX 48
/* Writes the operation chain that params asks for, in the order applied, one step per
 * row: "autorotate", "resize:224x224:stretch", "gray", "blur:1.5", "sharpen",
 * "format:jpg:q75:420" (format:keep:q75:420 for keep, format:webp:q75 without a
 * subsampling, format:png without a quality; jpg and keep name 420 or 444).
 * Rows beyond max are dropped. Returns the number of rows written (<= max). */
int kernel_describe(const struct kernel_params *params, char ops[][KERNEL_OP_MAX], int max);

/* ---- probe: judging a file from its first bytes (kernels/probe.c) ---------------------- */

/* kernel_probe's answer when it needs more of the file than it was given. */
#define KERNEL_PROBE_MORE 1

/* What kernel_run would do with one file, read from its header alone. */
struct kernel_probe {
	const char *format; /* "jpeg", "png", "webp", "gif", "tiff", "bmp", "heif", "avif";
			       with MORE for a format not parsed, the libvips loader's
			       nickname; static */
	const char *loader; /* "jpeg-fast" or "png-fast" when a fast path reads it, else
			       the libvips loader's nickname ("jpegload_buffer"); static */
	int width, height, bands, bits; /* as stored; bits per sample */
	int frames;			/* as the header says: 1 for a still format, PNG acTL's
					   count, 0 when only the whole file tells (GIF, an
					   animated WebP, TIFF pages); frame 1 is what runs */
	int orientation;		/* EXIF/TIFF orientation 1-8 as stored (1: none) */
	enum kernel_format out_format;	/* what kernel_run writes (never KFMT_KEEP) */
	int out_w, out_h;		/* the size kernel_run writes (plan_image) */
	const char *kernel;  /* "jpeg-fast", "png-fast" or "libvips": kernel_run's pick */
	uint64_t peak_bytes; /* estimated peak heap bytes of kernel_run on a fresh kernel (see
				kernel_retained_max for one that has run), the input bytes
				excluded: an upper bound, 1-4.5x the measured peak over the
				shapes of tests/kernels/test_probe.c, not a proof for every
				input */
	uint64_t need_bytes; /* with KERNEL_PROBE_MORE: leading bytes to give it next
				(<= file_size) */
};

/* Judges the image whose first len bytes are head (file_size: the whole file's size,
 * >= len) as kernel_run(params) would, without decoding. Returns
 *   0                  out filled: the file is an image kernel_run will try, and
 *                      peak_bytes is what to admit it against
 *   KERNEL_PROBE_MORE  out->need_bytes > len: the header lies further on (a TIFF IFD
 *                      past the head, JPEG markers longer than it); or need_bytes ==
 *                      file_size == len: a format whose header the probe does not
 *                      parse (JPEG 2000, JPEG XL, ImageMagick's formats, a HEIF with a
 *                      crop): run the kernel and take its verdict, unadmitted
 *   -VHERR_EMPTY       file_size == 0
 *   -VHERR_NOT_IMAGE   no loader of kernel_run's recognises the bytes (final: kernel_run
 *                      says the same)
 *   -VHERR_TOO_LARGE   over params->max_pixels from the header, or a crop/short plan's
 *                      intermediate over it (final: plan_image, as kernel_run)
 *   -VHERR_TRUNCATED, -VHERR_CORRUPT, or plan_image's -VHERR_TRANSFORM: the header looks
 *                      damaged or cannot be planned; not final, kernel_run decides
 * with err filled (stage DECODE, TRANSFORM for a plan) on every negative return.
 * head is borrowed for the call (NULL only with len 0). Thread-safe: reads libvips'
 * loader table (set up by kernel_global_init, which must have run) and never its
 * error buffer or caches. */
int kernel_probe(const struct kernel_params *params, const uint8_t *head, size_t len,
		 uint64_t file_size, struct kernel_probe *out, struct vherr *err);

/* Returns the most heap one struct kernel keeps between kernel_run calls (the fast
 * paths' reused buffers): on top of kernel_probe's peak_bytes for a kernel that has
 * run before. A constant; thread-safe. */
uint64_t kernel_retained_max(void);

/* Returns 1 if ext (a file name extension, no dot, any case) names a raster format a
 * kernel here loads (libvips 8.14's suffixes in Debian), else 0; NULL gives 0.
 * Document and vector formats (pdf, svg, svgz) are left out on purpose: an ML image
 * tree selects rasters, and a PDF beside the pictures is a document, not a sample.
 * Thread-safe, pure. */
int kernel_extension_readable(const char *ext);

#endif
