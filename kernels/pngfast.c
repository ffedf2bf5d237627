/* pngfast: one PNG in, one PNG or JPEG out, through libspng 0.7, libswscale 6,
 * libdeflate 1.14 and libturbojpeg 2.1.
 *
 * The path of one file (pngfast_run), each step one function on a struct pfjob:
 *   read_header   our chunk walk up to the first IDAT (pngfast_accepts' rules, tRNS,
 *                 eXIf orientation)
 *   plan          plan_image (kernels/plan.c): width * height > max_pixels → TOO_LARGE
 *                 before any pixel decode, then geometry_plan on the oriented size
 *   decode        libspng, whole image, into 8- or 16-bit samples (palette and tRNS
 *                 expanded, low bit depths scaled to 8 bits)
 *   split         samples → 8-bit planes (16-bit: the high byte, as PIL), colour
 *                 premultiplied by alpha (Pillow's rounding), so resampling lets no
 *                 transparent pixel's colour bleed into its neighbours
 *   resample      every plane to the planned size with Pillow's bicubic (libswscale,
 *                 kernels/plane.c);
 *                 an alpha plane that is 255 everywhere is filled, not resampled
 *   orient        eXIf orientation 2-8 applied to every plane
 *   compose       crop window or pad canvas, alpha unpremultiplied (PNG out) or
 *                 flattened onto the background (JPEG out, --gray), grey to RGB or
 *                 RGB to Rec. 601 luma, into interleaved rows
 *   encode        PNG: adaptive row filters (libpng's minimum sum of absolute
 *                 differences, as Pillow's writer), one zlib stream from libdeflate;
 *                 JPEG: libturbojpeg from the rows
 *
 * Codecs, chosen by bench/png-codecs.sh (callgrind, instructions per file, 20 files
 * of each set of bench/shapes-bench.sh; bytes against Pillow's PNGs of the same inputs):
 *   decoding to RGBA8     icons     cifar 32x32   gray16 512x512
 *   libspng 0.7            145 k      375 k        42.6 M
 *   libpng 1.6             139 k      327 k        37.0 M
 *   deflating png-fast's rows (224x224): Minstr/file, bytes vs Pillow
 *   libdeflate 6          10.4 1.01   20.2 1.12     8.0 0.16
 *   libdeflate 7          14.9 0.98   32.7 1.10    13.0 0.16
 *   libdeflate 9          40.7 0.96  109.8 1.07    47.5 0.15
 *   zlib 6 (Pillow's)     21.0 1.02   51.5 1.14    16.8 0.16
 *   zlib 3 (libvips path)  8.8 1.21   18.1 1.27     6.2 0.19
 *   ISA-L igzip 3          5.0 1.28    4.4 1.29     3.9 0.22
 * libdeflate writes Pillow's bytes for under half zlib's instructions; ISA-L is far
 * faster but 30% larger, outside the 15%. Level 7 is the default: on 300
 * CIFAR-like files level 6 wrote 1.16x Pillow's bytes, level 7 1.14x. The decoders
 * differ by 4-13%, about 1% of the kernel on icons and CIFAR (the encoder dominates)
 * and ~6% on 16-bit grey; libspng stays for its whole-buffer API (no setjmp) and
 * because its CRC and Adler-32 switches reproduce libvips' verdicts (below).
 * The row filters are plain loops built with -fvect-cost-model=dynamic
 * (kernels/CMakeLists.txt): 23.7 M instructions per CIFAR file in one generic loop,
 * 13.7 M in five, 4.2 M vectorised.
 *
 * libspng 0.7.3 behaviours relied on (checked by experiment against libvips 8.14's
 * libpng loader on PngSuite, tests/kernels/test_pngfast.c):
 * - A bad CRC on a critical chunk or data that fails to inflate fails the decode;
 *   spng_set_crc_action(SPNG_CRC_DISCARD) for ancillary chunks drops them silently,
 *   as libpng does with a warning (which only fail_on=warning turns into a failure,
 *   and that level goes to libvips).
 * - SPNG_FMT_G8/GA8 scale grey of 1, 2 and 4 bits to 8 (v * 255 / max), as libpng's
 *   png_set_expand_gray_1_2_4_to_8; SPNG_FMT_RGB8/RGBA8 expand the palette. */
#include "kernels/pngfast.h"

#include <libdeflate.h>
#include <libswscale/swscale.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "kernels/exif.h"
#include "kernels/geometry.h"
#include "kernels/plan.h"
#include "kernels/plane.h"

#define JPEG_MAX_SIDE 65500
#define PF_MAX_PLANES 4
/* An ancillary chunk larger than this fails the decode (libpng's default limit on
 * a chunk it keeps is 8 MB); the image data is not counted. */
#define PF_CHUNK_LIMIT (8u << 20)
/* A zlib stream longer than this is split over several IDAT chunks. */
#define PF_IDAT_MAX (1u << 30)

/* Pillow's bicubic (a = -0.5: libswscale's B = 0, C = 0.5; its default C is 0.6),
 * with the vertical pass rounded accurately: on 32x32 → 224x224 the default's
 * rounding noise cost 20% more PNG bytes than Pillow's output (3.5% with accurate
 * rounding) and MAD 0.30 against Pillow (0.16). */
#define PF_SCALER (SWS_BICUBIC | SWS_ACCURATE_RND)
static const double pil_cubic[2] = {0, 0.5};

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* One per worker thread. Every field but params is worker-only. */
struct pngfast {
	const struct kernel_params *params; /* set at creation, shared read-only */
	struct libdeflate_compressor *deflate;
	tjhandle enc;
	struct plane_buf decoded;   /* libspng's output */
	struct plane_buf split;	    /* premultiplied planes */
	struct plane_buf resampled; /* planes at the scaled size */
	struct plane_buf oriented;
	struct plane_buf rows;	   /* composed output rows */
	struct plane_buf filtered; /* PNG: rows with their filter byte */
	struct plane_buf coded;	   /* deflate or JPEG output */
	struct plane_scalers scalers;
};

/* What the chunks before the first IDAT say. */
struct pfinfo {
	int w, h, depth, ctype;
	int has_trns, has_iccp;
	size_t exif_off, exif_len; /* the first eXIf chunk's data; len 0: none */
};

/* Everything about one file; lives for one pngfast_run. */
struct pfjob {
	struct pngfast *pf;
	const struct kernel_params *p;
	const uint8_t *in;
	size_t len;
	struct pfinfo info;
	int orientation;     /* applied: 1 without autorotate */
	int swap;	     /* orientation 5-8: width and height swap */
	struct geometry geo; /* on the oriented size */
	int pre_w, pre_h;    /* the scaled size before orientation */
	enum kernel_format out_fmt;
	int colours;  /* colour planes: 1 (grey) or 3 */
	int alpha;    /* an alpha plane follows the colour planes */
	int opaque;   /* alpha is 255 everywhere */
	int out_ch;   /* channels of the output rows: 1, 3 or 4 */
	int fmt, bps; /* libspng's output format, bytes per sample */
	struct plane cur[PF_MAX_PLANES];
};

/* ---- bytes ----------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int is_png(const uint8_t *in, size_t len)
{
	return in && len >= sizeof(png_sig) && memcmp(in, png_sig, sizeof(png_sig)) == 0;
}

/* Whether an IEND chunk type sits in the last 64 bytes (vipskernel.c's test). */
static int has_iend(const uint8_t *in, size_t len)
{
	size_t from = len > 64 ? len - 64 : 0;

	return len >= 4 && memmem(in + from, len - from, "IEND", 4) != NULL;
}

/* ---- chunks ---------------------------------------------------------------- */

/* Whether the bit depth is valid for the colour type (PNG spec, table 11.1). */
static int depth_ok(int ctype, int depth)
{
	switch (ctype) {
	case 0:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16;
	case 3:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8;
	case 2:
	case 4:
	case 6:
		return depth == 8 || depth == 16;
	default:
		return 0;
	}
}

/* The chunk at in[pos] (length, type, data, CRC) if it lies within len, else NULL;
 * *n is its data length. */
static const uint8_t *chunk_at(const uint8_t *in, size_t len, size_t pos, uint32_t *n)
{
	if (pos > len || len - pos < 12)
		return NULL;
	*n = be32(in + pos);
	if (*n > 0x7fffffffu || *n > len - pos - 12)
		return NULL;
	return in + pos;
}

static int crc_ok(const uint8_t *chunk, uint32_t n)
{
	return libdeflate_crc32(0, chunk + 4, (size_t)n + 4) == be32(chunk + 8 + n);
}

/* Reads the IHDR and the chunk headers up to the first IDAT into *info. Returns 0,
 * or -1 when the signature or IHDR is missing or invalid. Chunks after a damaged
 * length are left to the decoder to judge. */
static int scan_chunks(const uint8_t *in, size_t len, struct pfinfo *info)
{
	const uint8_t *c = is_png(in, len) ? chunk_at(in, len, 8, &(uint32_t){0}) : NULL;
	size_t pos = 33;
	uint32_t n;

	memset(info, 0, sizeof(*info));
	if (!c || be32(c) != 13 || memcmp(c + 4, "IHDR", 4) || !crc_ok(c, 13))
		return -1;
	info->w = (int)be32(c + 8);
	info->h = (int)be32(c + 12);
	info->depth = c[16];
	info->ctype = c[17];
	if (be32(c + 8) - 1 >= 0x7fffffffu || be32(c + 12) - 1 >= 0x7fffffffu ||
	    !depth_ok(info->ctype, info->depth) || c[18] || c[19] || c[20] > 1)
		return -1;
	while ((c = chunk_at(in, len, pos, &n)) && memcmp(c + 4, "IDAT", 4)) {
		if (!memcmp(c + 4, "iCCP", 4))
			info->has_iccp = 1;
		else if (!memcmp(c + 4, "tRNS", 4) && crc_ok(c, n))
			info->has_trns = 1;
		else if (!memcmp(c + 4, "eXIf", 4) && !info->exif_len && crc_ok(c, n)) {
			info->exif_off = pos + 8;
			info->exif_len = n;
		}
		pos += 12 + (size_t)n;
	}
	return 0;
}

/* Whether params ask for work this path does (pngfast_accepts). */
static int params_ok(const struct kernel_params *p)
{
	return p->format != KFMT_WEBP && p->blur_sigma <= 0 && !p->sharpen &&
	       (p->fail_on == KFAIL_TRUNCATED || p->fail_on == KFAIL_ERROR);
}

/* Whether the chunks describe a PNG this path takes (pngfast_accepts). */
static int info_ok(const struct pfinfo *i)
{
	/* tRNS beside an alpha channel is invalid: libpng ignores it, libspng fails */
	return !i->has_iccp && !(i->has_trns && (i->ctype == 4 || i->ctype == 6));
}

/* ---- header and plan ------------------------------------------------------- */

static int read_header(struct pfjob *j, struct vherr *err)
{
	struct pfinfo *i = &j->info;

	if (!is_png(j->in, j->len))
		return vherr_set(err, VHERR_NOT_IMAGE, VHSTAGE_DECODE, NULL);
	if (!params_ok(j->p) || scan_chunks(j->in, j->len, i) || !info_ok(i))
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_DECODE,
				 "the png-fast path cannot take this PNG");
	if (j->p->autorotate && i->exif_len)
		j->orientation = exif_orientation(j->in + i->exif_off, i->exif_len);
	j->swap = j->orientation >= 5;
	j->colours = i->ctype == 0 || i->ctype == 4 ? 1 : 3;
	j->alpha = i->ctype == 4 || i->ctype == 6 || i->has_trns;
	return 0;
}

static int plan(struct pfjob *j, struct vherr *err)
{
	const struct kernel_params *p = j->p;
	int rc = plan_image(p, j->info.w, j->info.h, j->swap, &j->geo, err);

	if (rc)
		return rc;
	j->out_fmt = p->format == KFMT_JPEG ? KFMT_JPEG : KFMT_PNG;
	if (j->out_fmt == KFMT_JPEG &&
	    (j->geo.out_w > JPEG_MAX_SIDE || j->geo.out_h > JPEG_MAX_SIDE))
		return vherr_set(err, VHERR_ENCODE, VHSTAGE_ENCODE,
				 "image is %dx%d, over the JPEG limit of %d pixels per side",
				 j->geo.out_w, j->geo.out_h, JPEG_MAX_SIDE);
	j->pre_w = j->swap ? j->geo.scaled_h : j->geo.scaled_w;
	j->pre_h = j->swap ? j->geo.scaled_w : j->geo.scaled_h;
	j->out_ch = p->gray ? 1 : j->alpha && j->out_fmt == KFMT_PNG ? 4 : 3;
	return 0;
}

/* ---- decode ---------------------------------------------------------------- */

/* libspng's output format for this file: the stored samples (8 or 16 bits) where
 * they need no conversion; 8 bits from a palette or grey of 1-4 bits; alpha from tRNS
 * (SPNG_FMT_GA8/GA16 exist for grey sources only). */
static void pick_format(struct pfjob *j)
{
	const struct pfinfo *i = &j->info;
	int wide = i->depth == 16;

	j->bps = wide ? 2 : 1;
	if (i->ctype == 3)
		j->fmt = i->has_trns ? SPNG_FMT_RGBA8 : SPNG_FMT_RGB8;
	else if (i->has_trns && j->colours == 1)
		j->fmt = wide ? SPNG_FMT_GA16 : SPNG_FMT_GA8;
	else if (i->has_trns)
		j->fmt = wide ? SPNG_FMT_RGBA16 : SPNG_FMT_RGBA8;
	else if (i->depth < 8)
		j->fmt = SPNG_FMT_G8;
	else
		j->fmt = SPNG_FMT_PNG;
}

static int decode_failed(const struct pfjob *j, int rc, struct vherr *err)
{
	enum vherr_code code = rc == SPNG_EMEM		  ? VHERR_NOMEM
			       : !has_iend(j->in, j->len) ? VHERR_TRUNCATED
							  : VHERR_CORRUPT;

	return vherr_set(err, code, VHSTAGE_DECODE, "cannot decode image: %s",
			 spng_strerror(rc));
}

/* Whether the data ends inside an IDAT chunk: the walk over whole chunks stops at one
 * whose type is IDAT. */
static int idat_cut(const uint8_t *in, size_t len)
{
	size_t pos = 8;
	uint32_t n;

	while (chunk_at(in, len, pos, &n))
		pos += 12 + (size_t)n;
	return len - pos >= 8 && memcmp(in + pos + 4, "IDAT", 4) == 0;
}

/* Whether the walk over whole chunks meets an IDAT, and the last one it meets has a
 * good CRC. */
static int last_idat_ok(const uint8_t *in, size_t len)
{
	const uint8_t *c, *last = NULL;
	size_t pos = 8;
	uint32_t n, last_n = 0;

	while ((c = chunk_at(in, len, pos, &n))) {
		if (!memcmp(c + 4, "IDAT", 4)) {
			last = c;
			last_n = n;
		}
		pos += 12 + (size_t)n;
	}
	return last && crc_ok(last, last_n);
}

/* The verdict on the chunks after a complete image (rc from spng_decode_chunks).
 * libvips 8.14 reads through libpng up to the last IDAT's CRC and never calls
 * png_read_end: the data may end after the last IDAT (a missing or cut IEND), not
 * inside it; a bad CRC on the last IDAT fails; what follows it (a bad IEND CRC,
 * garbage) is never read. */
static int after_image(const struct pfjob *j, int rc)
{
	if (rc == SPNG_IO_EOF || rc == SPNG_EOF)
		return idat_cut(j->in, j->len) ? SPNG_EOF : 0;
	if (rc && rc != SPNG_EMEM && last_idat_ok(j->in, j->len))
		return 0;
	return rc;
}

static int decode(struct pfjob *j, struct vherr *err)
{
	/* libpng takes a bad Adler-32 at the end of the image data as a warning */
	spng_ctx *ctx = spng_ctx_new(SPNG_CTX_IGNORE_ADLER32);
	size_t size = 0;
	int rc;

	if (!ctx)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_DECODE, "cannot start the decoder");
	pick_format(j);
	rc = spng_set_crc_action(ctx, SPNG_CRC_ERROR, SPNG_CRC_DISCARD);
	if (!rc)
		rc = spng_set_chunk_limits(ctx, PF_CHUNK_LIMIT, 4 * (size_t)PF_CHUNK_LIMIT);
	if (!rc)
		rc = spng_set_image_limits(ctx, (uint32_t)j->info.w, (uint32_t)j->info.h);
	if (!rc)
		rc = spng_set_png_buffer(ctx, j->in, j->len);
	if (!rc)
		rc = spng_decoded_image_size(ctx, j->fmt, &size);
	if (!rc && plane_buf_reserve(&j->pf->decoded, size))
		rc = SPNG_EMEM;
	if (!rc)
		rc = spng_decode_image(ctx, j->pf->decoded.p, size, j->fmt,
				       j->info.has_trns ? SPNG_DECODE_TRNS : 0);
	if (!rc) /* the rest of the last IDAT (its CRC) and the chunks up to IEND */
		rc = after_image(j, spng_decode_chunks(ctx));
	spng_ctx_free(ctx);
	return rc ? decode_failed(j, rc, err) : 0;
}

/* ---- split ----------------------------------------------------------------- */

/* round(a * b / 255) for 8-bit a and b (Pillow's MULDIV255). */
static inline uint8_t mul255(unsigned a, unsigned b)
{
	unsigned t = a * b + 128;

	return (uint8_t)(((t >> 8) + t) >> 8);
}

/* Sample k of a decoded row as 8 bits. */
static inline unsigned sample(const uint8_t *row, size_t k, int bps)
{
	if (bps == 1)
		return row[k];
	return (unsigned)((const uint16_t *)(const void *)row)[k] >> 8; /* PIL: the high byte */
}

/* The decoded samples as planes: colour premultiplied by alpha. Sets j->opaque. */
static int split(struct pfjob *j, struct vherr *err)
{
	int n = j->colours + j->alpha, w[PF_MAX_PLANES], h[PF_MAX_PLANES];
	size_t row_bytes = (size_t)j->info.w * n * j->bps;
	unsigned all = 255;
	int rc;

	for (int i = 0; i < n; i++) {
		w[i] = j->info.w;
		h[i] = j->info.h;
	}
	rc = plane_alloc(&j->pf->split, j->cur, n, w, h, err);
	if (rc)
		return rc;
	for (int y = 0; y < j->info.h; y++) {
		const uint8_t *row = j->pf->decoded.p + row_bytes * y;
		size_t off = (size_t)y * j->cur[0].stride;

		for (int x = 0; x < j->info.w; x++) {
			size_t k = (size_t)x * n;
			unsigned a = j->alpha ? sample(row, k + j->colours, j->bps) : 255;

			all &= a;
			for (int c = 0; c < j->colours; c++)
				j->cur[c].p[off + x] = mul255(sample(row, k + c, j->bps), a);
			if (j->alpha)
				j->cur[j->colours].p[off + x] = (uint8_t)a;
		}
	}
	j->opaque = all == 255;
	return 0;
}

/* ---- resample and orient --------------------------------------------------- */

static int resample(struct pfjob *j, struct vherr *err)
{
	int n = j->colours + j->alpha, w[PF_MAX_PLANES], h[PF_MAX_PLANES];
	struct plane out[PF_MAX_PLANES];
	int rc;

	if (j->pre_w == j->info.w && j->pre_h == j->info.h)
		return 0;
	for (int i = 0; i < n; i++) {
		w[i] = j->pre_w;
		h[i] = j->pre_h;
	}
	rc = plane_alloc(&j->pf->resampled, out, n, w, h, err);
	for (int i = 0; !rc && i < n; i++) {
		if (i == j->colours && j->opaque)
			plane_fill(&out[i], 255);
		else
			rc = plane_scale(&j->pf->scalers, &j->cur[i], &out[i], PF_SCALER,
					 pil_cubic, err);
	}
	if (!rc)
		memcpy(j->cur, out, sizeof(out));
	return rc;
}

static int orient(struct pfjob *j, struct vherr *err)
{
	int n = j->colours + j->alpha, w[PF_MAX_PLANES], h[PF_MAX_PLANES];
	struct plane out[PF_MAX_PLANES];
	int rc;

	if (j->orientation <= 1)
		return 0;
	for (int i = 0; i < n; i++) {
		w[i] = j->swap ? j->cur[i].h : j->cur[i].w;
		h[i] = j->swap ? j->cur[i].w : j->cur[i].h;
	}
	rc = plane_alloc(&j->pf->oriented, out, n, w, h, err);
	if (rc)
		return rc;
	for (int i = 0; i < n; i++)
		plane_orient(&j->cur[i], &out[i], j->orientation);
	memcpy(j->cur, out, sizeof(out));
	return 0;
}

/* ---- compose --------------------------------------------------------------- */

/* Rec. 601 luma, rounded, as Pillow's convert("L") (and vipskernel.c's gray). */
static inline uint8_t luma(unsigned r, unsigned g, unsigned b)
{
	return (uint8_t)((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

/* Writes one output pixel from premultiplied colour rgb and alpha a. */
static inline void put_pixel(const struct pfjob *j, uint8_t *d, unsigned rgb[3], unsigned a)
{
	const uint8_t *bg = j->p->background;

	if (a < 255 && j->out_ch != 4) { /* flatten onto the background */
		for (int c = 0; c < 3; c++)
			rgb[c] = (rgb[c] * 255 + bg[c] * (255 - a) + 127) / 255;
	} else if (a < 255) { /* unpremultiply */
		for (int c = 0; c < 3; c++) {
			unsigned v = a ? (rgb[c] * 255 + a / 2) / a : 0;

			rgb[c] = v > 255 ? 255 : v;
		}
	}
	if (j->out_ch == 1) {
		d[0] = luma(rgb[0], rgb[1], rgb[2]);
		return;
	}
	d[0] = (uint8_t)rgb[0];
	d[1] = (uint8_t)rgb[1];
	d[2] = (uint8_t)rgb[2];
	if (j->out_ch == 4)
		d[3] = (uint8_t)a;
}

/* Row y of the oriented planes from column x0, n pixels, into d. */
static void compose_span(const struct pfjob *j, int y, int x0, int n, uint8_t *d)
{
	size_t off = (size_t)y * j->cur[0].stride + x0;

	for (int x = 0; x < n; x++, d += j->out_ch) {
		unsigned rgb[3], a = j->alpha ? j->cur[j->colours].p[off + x] : 255;

		for (int c = 0; c < 3; c++)
			rgb[c] = j->cur[j->colours == 3 ? c : 0].p[off + x];
		put_pixel(j, d, rgb, a);
	}
}

/* The background pixel, n times, into d. */
static void compose_background(const struct pfjob *j, int n, uint8_t *d)
{
	const uint8_t *bg = j->p->background;

	for (int x = 0; x < n; x++, d += j->out_ch) {
		unsigned rgb[3] = {bg[0], bg[1], bg[2]};

		put_pixel(j, d, rgb, 255);
	}
}

/* The output rows: the oriented planes through the crop window or on the pad
 * canvas, as out_ch interleaved channels. */
static int compose(struct pfjob *j, struct vherr *err)
{
	const struct geometry *g = &j->geo;
	int crop = j->p->resize_w > 0 && j->p->mode == GEOMETRY_CROP;
	int pad = j->p->resize_w > 0 && j->p->mode == GEOMETRY_PAD;
	int iw = j->cur[0].w, ih = j->cur[0].h;
	int px = pad ? g->pad_x : 0, py = pad ? g->pad_y : 0;
	size_t stride = (size_t)g->out_w * j->out_ch;

	if (plane_buf_reserve(&j->pf->rows, stride * g->out_h))
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_TRANSFORM,
				 "cannot allocate %dx%d output rows", g->out_w, g->out_h);
	for (int y = 0; y < g->out_h; y++) {
		uint8_t *d = j->pf->rows.p + stride * y;
		int sy = crop ? y + g->crop_y : y - py;
		int x0 = crop ? g->crop_x : 0;
		int n = crop ? g->out_w : sy < 0 || sy >= ih ? 0 : iw;

		if (pad && n == 0) {
			compose_background(j, g->out_w, d);
			continue;
		}
		if (px > 0)
			compose_background(j, px, d);
		compose_span(j, sy, x0, n, d + (size_t)px * j->out_ch);
		if (g->out_w > px + n)
			compose_background(j, g->out_w - px - n,
					   d + (size_t)(px + n) * j->out_ch);
	}
	return 0;
}

/* ---- encode: PNG ----------------------------------------------------------- */

/* The five PNG row filters: each writes row cur (prev: the row above, zeros for the
 * first) filtered into out and returns the sum of the filtered bytes as signed
 * magnitudes, libpng's measure of how well the row will compress. Simple loops, so
 * the compiler vectorises them. */
static unsigned long magnitude(const uint8_t *v, size_t n)
{
	unsigned long sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += (unsigned)abs((int8_t)v[i]);
	return sum;
}

static unsigned long filter_sub(const uint8_t *cur, const uint8_t *prev, size_t n, int bpp,
				uint8_t *out)
{
	(void)prev;
	memcpy(out, cur, (size_t)bpp);
	for (size_t i = (size_t)bpp; i < n; i++)
		out[i] = (uint8_t)(cur[i] - cur[i - bpp]);
	return magnitude(out, n);
}

static unsigned long filter_up(const uint8_t *cur, const uint8_t *prev, size_t n, int bpp,
			       uint8_t *out)
{
	(void)bpp;
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(cur[i] - prev[i]);
	return magnitude(out, n);
}

static unsigned long filter_avg(const uint8_t *cur, const uint8_t *prev, size_t n, int bpp,
				uint8_t *out)
{
	for (size_t i = 0; i < (size_t)bpp; i++)
		out[i] = (uint8_t)(cur[i] - (prev[i] >> 1));
	for (size_t i = (size_t)bpp; i < n; i++)
		out[i] = (uint8_t)(cur[i] - ((cur[i - bpp] + prev[i]) >> 1));
	return magnitude(out, n);
}

static unsigned long filter_paeth(const uint8_t *cur, const uint8_t *prev, size_t n, int bpp,
				  uint8_t *out)
{
	for (size_t i = 0; i < (size_t)bpp; i++) /* a = c = 0: the predictor is b */
		out[i] = (uint8_t)(cur[i] - prev[i]);
	for (size_t i = (size_t)bpp; i < n; i++) {
		int a = cur[i - bpp], b = prev[i], c = prev[i - bpp];
		int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
		int pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;

		out[i] = (uint8_t)(cur[i] - pred);
	}
	return magnitude(out, n);
}

/* Each row with the filter of the smallest sum (libpng's heuristic, as Pillow's writer),
 * after its filter byte, into pf->filtered; the scratch rows follow the filtered data. */
static int filter_rows(struct pfjob *j, size_t *total, struct vherr *err)
{
	static unsigned long (*const filters[])(const uint8_t *, const uint8_t *, size_t, int,
						uint8_t *) = {filter_sub, filter_up, filter_avg,
							      filter_paeth};
	size_t n = (size_t)j->geo.out_w * j->out_ch, line = n + 1;
	uint8_t *zeros, *scratch;

	*total = line * j->geo.out_h;
	if (plane_buf_reserve(&j->pf->filtered, *total + 2 * n))
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_ENCODE,
				 "cannot allocate %zu bytes of filtered rows", *total);
	zeros = j->pf->filtered.p + *total;
	scratch = zeros + n;
	memset(zeros, 0, n);
	for (int y = 0; y < j->geo.out_h; y++) {
		const uint8_t *cur = j->pf->rows.p + n * y, *prev = y ? cur - n : zeros;
		uint8_t *best = j->pf->filtered.p + line * y + 1;
		unsigned long min = magnitude(cur, n);

		memcpy(best, cur, n);
		best[-1] = 0;
		for (int f = 0; f < 4; f++) {
			unsigned long sum = filters[f](cur, prev, n, j->out_ch, scratch);

			if (sum < min) {
				min = sum;
				memcpy(best, scratch, n);
				best[-1] = (uint8_t)(f + 1);
			}
		}
	}
	return 0;
}

/* Appends one chunk (length, type, data, CRC) at *d and advances it. */
static void put_chunk(uint8_t **d, const char *type, const uint8_t *data, size_t n)
{
	put32(*d, (uint32_t)n);
	memcpy(*d + 4, type, 4);
	if (n)
		memcpy(*d + 8, data, n);
	put32(*d + 8 + n, libdeflate_crc32(0, *d + 4, n + 4));
	*d += 12 + n;
}

static int encode_png(struct pfjob *j, struct kernel_result *res, struct vherr *err)
{
	struct pngfast *pf = j->pf;
	size_t raw, bound, zlen, chunks;
	uint8_t ihdr[13] = {0}, *d;
	int rc = filter_rows(j, &raw, err);

	if (rc)
		return rc;
	bound = libdeflate_zlib_compress_bound(pf->deflate, raw);
	if (plane_buf_reserve(&pf->coded, bound))
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_ENCODE,
				 "cannot allocate %zu bytes of compressed data", bound);
	zlen = libdeflate_zlib_compress(pf->deflate, pf->filtered.p, raw, pf->coded.p, bound);
	if (zlen == 0)
		return vherr_set(err, VHERR_ENCODE, VHSTAGE_ENCODE,
				 "cannot compress image data");
	chunks = (zlen + PF_IDAT_MAX - 1) / PF_IDAT_MAX;
	res->data = malloc(sizeof(png_sig) + 25 + zlen + 12 * chunks + 12);
	if (!res->data)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_ENCODE,
				 "cannot allocate %zu bytes of output", zlen);
	put32(ihdr, (uint32_t)j->geo.out_w);
	put32(ihdr + 4, (uint32_t)j->geo.out_h);
	ihdr[8] = 8;
	ihdr[9] = j->out_ch == 1 ? 0 : j->out_ch == 3 ? 2 : 6;
	d = res->data;
	memcpy(d, png_sig, sizeof(png_sig));
	d += sizeof(png_sig);
	put_chunk(&d, "IHDR", ihdr, sizeof(ihdr));
	for (size_t off = 0; off < zlen; off += PF_IDAT_MAX)
		put_chunk(&d, "IDAT", pf->coded.p + off,
			  zlen - off < PF_IDAT_MAX ? zlen - off : PF_IDAT_MAX);
	put_chunk(&d, "IEND", NULL, 0);
	res->len = (size_t)(d - res->data);
	res->format = KFMT_PNG;
	return 0;
}

/* ---- encode: JPEG ---------------------------------------------------------- */

static int encode_jpeg(struct pfjob *j, struct kernel_result *res, struct vherr *err)
{
	struct pngfast *pf = j->pf;
	int w = j->geo.out_w, h = j->geo.out_h;
	int q = kernel_quality(j->p);
	int samp = j->out_ch == 1		 ? TJSAMP_GRAY
		   : j->p->subsample == KSUB_444 ? TJSAMP_444
						 : TJSAMP_420;
	unsigned long size = tjBufSize(w, h, samp);
	uint8_t *buf;

	if (size == (unsigned long)-1 || plane_buf_reserve(&pf->coded, size))
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_ENCODE,
				 "cannot allocate the output buffer for %dx%d", w, h);
	buf = pf->coded.p;
	if (tjCompress2(pf->enc, pf->rows.p, w, w * j->out_ch, h,
			j->out_ch == 1 ? TJPF_GRAY : TJPF_RGB, &buf, &size, samp, q,
			TJFLAG_NOREALLOC | TJFLAG_ACCURATEDCT)) {
		char line[VHERR_MSG_MAX / 2];

		snprintf(line, sizeof(line), "%s", tjGetErrorStr2(pf->enc));
		return vherr_set(err, VHERR_ENCODE, VHSTAGE_ENCODE, "cannot encode image: %s",
				 line);
	}
	res->data = malloc(size);
	if (!res->data)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_ENCODE,
				 "cannot allocate %lu bytes of output", size);
	memcpy(res->data, buf, size);
	res->len = size;
	res->format = KFMT_JPEG;
	return 0;
}

static int encode(struct pfjob *j, struct kernel_result *res, struct vherr *err)
{
	int rc = j->out_fmt == KFMT_JPEG ? encode_jpeg(j, res, err) : encode_png(j, res, err);

	if (rc)
		return rc;
	res->in_w = j->info.w;
	res->in_h = j->info.h;
	res->out_w = j->geo.out_w;
	res->out_h = j->geo.out_h;
	res->frames = 1; /* APNG frames are not read: libvips 8.14 reads the still too */
	res->frame_used = 0;
	res->kernel = "png-fast";
	return 0;
}

/* ---- interface ------------------------------------------------------------- */

int pngfast_accepts(const struct kernel_params *p, const uint8_t *in, size_t len)
{
	struct pfinfo info;

	return is_png(in, len) && params_ok(p) && !scan_chunks(in, len, &info) &&
	       info_ok(&info);
}

struct pngfast *pngfast_new(const struct kernel_params *params)
{
	struct pngfast *pf = calloc(1, sizeof(*pf));
	int level = params->png_level > 0 ? params->png_level : PNGFAST_DEFAULT_LEVEL;

	if (!pf)
		return NULL;
	pf->params = params;
	pf->deflate = libdeflate_alloc_compressor(level > 12 ? 12 : level);
	pf->enc = tjInitCompress();
	if (!pf->deflate || !pf->enc) {
		pngfast_free(pf);
		return NULL;
	}
	return pf;
}

void pngfast_free(struct pngfast *pf)
{
	if (!pf)
		return;
	plane_scalers_release(&pf->scalers);
	if (pf->deflate)
		libdeflate_free_compressor(pf->deflate);
	if (pf->enc)
		tjDestroy(pf->enc);
	plane_buf_release(&pf->decoded);
	plane_buf_release(&pf->split);
	plane_buf_release(&pf->resampled);
	plane_buf_release(&pf->oriented);
	plane_buf_release(&pf->rows);
	plane_buf_release(&pf->filtered);
	plane_buf_release(&pf->coded);
	free(pf);
}

/* Frees the buffers one big file grew past PNGFAST_KEEP_BYTES. */
static void trim_buffers(struct pngfast *pf)
{
	struct plane_buf *all[] = {&pf->decoded, &pf->split,	&pf->resampled, &pf->oriented,
				   &pf->rows,	 &pf->filtered, &pf->coded};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i]->cap > PNGFAST_KEEP_BYTES)
			plane_buf_release(all[i]);
}

int pngfast_run(struct pngfast *pf, const uint8_t *in, size_t len, struct kernel_result *res,
		struct vherr *err)
{
	struct pfjob j = {.pf = pf, .p = pf->params, .in = in, .len = len, .orientation = 1};
	int rc;

	memset(res, 0, sizeof(*res));
	if (len == 0 || !in)
		return vherr_set(err, VHERR_EMPTY, VHSTAGE_DECODE, NULL);
	rc = read_header(&j, err);
	if (!rc)
		rc = plan(&j, err);
	if (!rc)
		rc = decode(&j, err);
	if (!rc)
		rc = split(&j, err);
	if (!rc)
		rc = resample(&j, err);
	if (!rc)
		rc = orient(&j, err);
	if (!rc)
		rc = compose(&j, err);
	if (!rc)
		rc = encode(&j, res, err);
	if (rc) {
		free(res->data);
		memset(res, 0, sizeof(*res));
	}
	trim_buffers(pf);
	return rc;
}
