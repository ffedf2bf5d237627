/* mkpaint: photo-like synthetic content. See mkpaint.h. */
#include "mkpaint.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mkdraw.h"
#include "mkrng.h"

/* The smooth layer is computed at 1/MKPAINT_SMOOTH_SCALE and upsampled: it has no detail
 * to lose, and Perlin noise at full size would be the most expensive step. */
#define MKPAINT_SMOOTH_SCALE 4
/* Grain tile: standard deviation as stored (char pixels), and the margin for offsets. */
#define MKPAINT_GRAIN_SIGMA  24.0
#define MKPAINT_GRAIN_MARGIN 256

/* Text masks: MKPAINT_TEXT_VARIANTS runs of words at each pixel size that fits. */
static const int mkpaint_text_sizes[] = {7, 9, 11, 13, 16, 20, 24, 30, 38, 48, 60};
#define MKPAINT_NSIZES	      ((int)(sizeof(mkpaint_text_sizes) / sizeof(mkpaint_text_sizes[0])))
#define MKPAINT_TEXT_VARIANTS 6

/* All fields set at creation, read-only afterwards. */
struct mkpaint_assets {
	VipsImage *grain; /* char, 1 band, in memory */
	int nsizes; /* text sizes rendered (a prefix of mkpaint_text_sizes); 0 = no text */
	VipsImage *text[MKPAINT_NSIZES][MKPAINT_TEXT_VARIANTS]; /* uchar masks, in memory */
};

static const char *const mkpaint_words[] = {
    "harbour", "Quartz",     "lynx",  "vivid",	   "MMXXIV",   "jump",	  "fog",    "Zebra",
    "wharf",   "0123456789", "glyph", "Valohai",   "kilowatt", "oxbow",	  "Rhythm", "sphinx",
    "#42",     "quay",	     "ferry", "BLUE",	   "minimum",  "ill-lit", "W/m2",   "saffron",
    "jackdaw", "pixel",	     "lilt",  "IIIlll111", "crisp",    "Nyquist",
};
#define MKPAINT_NWORDS ((int)(sizeof(mkpaint_words) / sizeof(mkpaint_words[0])))

static const char *const mkpaint_fonts[] = {"Sans", "Sans Bold", "Serif", "Monospace"};

static void mkpaint_ink(uint64_t *rng, VipsPel ink[3])
{
	for (int b = 0; b < 3; b++)
		ink[b] = (VipsPel)mkrng_range(rng, 0, 255);
}

/* A linear colour gradient: band b = m[2b] * x + m[2b+1] * y (float), spanning up to
 * +-90 levels over the image. */
static int mkpaint_gradient(VipsObject *scope, VipsImage **out, int w, int h, uint64_t *rng)
{
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 2);
	double angle = mkrng_unit(rng) * 2.0 * M_PI;
	double m[6];

	for (int b = 0; b < 3; b++) {
		double span = 40.0 + 140.0 * mkrng_unit(rng);

		m[2 * b] = span * cos(angle) / w;
		m[2 * b + 1] = span * sin(angle) / h;
	}
	t[0] = vips_image_new_matrix_from_array(2, 3, m, 6);
	if (!t[0] || vips_xyz(&t[1], w, h, NULL))
		return -1;
	return vips_recomb(t[1], out, t[0], NULL);
}

/* Three Perlin bands (one seed each), scaled to soft colour blobs around a base colour. */
static int mkpaint_blobs(VipsObject *scope, VipsImage **out, int w, int h, uint64_t *rng)
{
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 4);
	int cell = MAX(2, MIN(w, h) / mkrng_range(rng, 1, 4));
	double amp[3], base[3];

	for (int b = 0; b < 3; b++) {
		int seed = mkrng_vseed(rng);

		amp[b] = 40.0 + 80.0 * mkrng_unit(rng);
		base[b] = 30.0 + 150.0 * mkrng_unit(rng);
		if (vips_perlin(&t[b], w, h, "cell_size", cell, "seed", seed, NULL))
			return -1;
	}
	if (vips_bandjoin(t, &t[3], 3, NULL))
		return -1;
	return vips_linear(t[3], out, amp, base, 3, NULL);
}

/* Bilinear upsampling of a float memory image to a w x h uchar memory image (clipped).
 * libvips' resize and affine spend 10-25 ms on a 500x375 upsample; this loop ~1. */
static void mkpaint_upsample(VipsImage *small, VipsImage *big)
{
	int bands = small->Bands, w = big->Xsize;
	float fx = (float)small->Xsize / w, fy = (float)small->Ysize / big->Ysize;
	int *x0 = g_new(int, 2 * w);
	int *x1 = x0 + w;
	float *wx = g_new(float, w);

	for (int x = 0; x < w; x++) {
		float sx = VIPS_CLIP(0.0f, (x + 0.5f) * fx - 0.5f, small->Xsize - 1.0f);

		x0[x] = (int)sx;
		x1[x] = MIN(x0[x] + 1, small->Xsize - 1);
		wx[x] = sx - x0[x];
		x0[x] *= bands;
		x1[x] *= bands;
	}
	for (int y = 0; y < big->Ysize; y++) {
		float sy = VIPS_CLIP(0.0f, (y + 0.5f) * fy - 0.5f, small->Ysize - 1.0f);
		int y0 = (int)sy, y1 = MIN(y0 + 1, small->Ysize - 1);
		float wy = sy - y0;
		const float *r0 = (const float *)VIPS_IMAGE_ADDR(small, 0, y0);
		const float *r1 = (const float *)VIPS_IMAGE_ADDR(small, 0, y1);
		VipsPel *out = VIPS_IMAGE_ADDR(big, 0, y);

		for (int x = 0; x < w; x++) {
			for (int b = 0; b < bands; b++) {
				float top =
				    r0[x0[x] + b] + (r0[x1[x] + b] - r0[x0[x] + b]) * wx[x];
				float bot =
				    r1[x0[x] + b] + (r1[x1[x] + b] - r1[x0[x] + b]) * wx[x];
				float v = top + (bot - top) * wy + 0.5f;

				*out++ = (VipsPel)VIPS_CLIP(0.0f, v, 255.0f);
			}
		}
	}
	g_free(x0);
	g_free(wx);
}

/* The smooth layer at full size, as a 3-band uchar memory image ready for drawing. */
static int mkpaint_smooth(VipsObject *scope, VipsImage **out, int w, int h, uint64_t *rng)
{
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 5);
	int f = MIN(w, h) >= 16 * MKPAINT_SMOOTH_SCALE ? MKPAINT_SMOOTH_SCALE : 1;
	int sw = (w + f - 1) / f, sh = (h + f - 1) / f;

	if (mkpaint_gradient(scope, &t[0], sw, sh, rng) ||
	    mkpaint_blobs(scope, &t[1], sw, sh, rng) || vips_add(t[0], t[1], &t[2], NULL) ||
	    vips_cast_float(t[2], &t[3], NULL) || !(t[4] = vips_image_copy_memory(t[3])))
		return -1;
	*out = vips_image_new_memory();
	vips_image_init_fields(*out, w, h, 3, VIPS_FORMAT_UCHAR, VIPS_CODING_NONE,
			       VIPS_INTERPRETATION_sRGB, 1.0, 1.0);
	if (vips_image_write_prepare(*out))
		return -1;
	mkpaint_upsample(t[4], *out);
	return 0;
}

/* Filled and outlined rectangles and circles: hard edges at every angle. */
static void mkpaint_shapes(VipsImage *im, uint64_t *rng)
{
	int n = mkrng_range(rng, 3, 8);

	for (int i = 0; i < n; i++) {
		VipsPel ink[3];
		int sw = 2 + (int)(im->Xsize * (0.04 + 0.3 * mkrng_unit(rng)));
		int sh = 2 + (int)(im->Ysize * (0.04 + 0.3 * mkrng_unit(rng)));
		int x = mkrng_range(rng, -sw / 2, im->Xsize - sw / 2);
		int y = mkrng_range(rng, -sh / 2, im->Ysize - sh / 2);
		int thick = mkrng_unit(rng) < 0.7 ? 0 : mkrng_range(rng, 1, 4);
		int circle = mkrng_unit(rng) < 0.35;

		mkpaint_ink(rng, ink);
		if (circle)
			mkdraw_circle(im, x + sw / 2, y + sw / 2, sw / 2, thick, ink);
		else
			mkdraw_rect(im, x, y, sw, sh, thick, ink);
	}
}

/* Straight lines 1-3 pixels thick across the picture. */
static void mkpaint_lines(VipsImage *im, uint64_t *rng)
{
	int n = mkrng_range(rng, 2, 6);

	for (int i = 0; i < n; i++) {
		VipsPel ink[3];
		int x1 = mkrng_range(rng, 0, im->Xsize - 1);
		int y1 = mkrng_range(rng, 0, im->Ysize - 1);
		int x2 = mkrng_range(rng, 0, im->Xsize - 1);
		int y2 = mkrng_range(rng, 0, im->Ysize - 1);
		int thick = mkrng_range(rng, 1, 3);

		mkpaint_ink(rng, ink);
		mkdraw_line(im, x1, y1, x2, y2, thick, ink);
	}
}

/* A patch of parallel lines 2-4 pixels apart: detail near the Nyquist limit of a
 * downscale, where a poor resampler aliases into moire. */
static void mkpaint_hatch(VipsImage *im, uint64_t *rng)
{
	int pw = MAX(4, im->Xsize / mkrng_range(rng, 3, 6));
	int ph = MAX(4, im->Ysize / mkrng_range(rng, 3, 6));
	int px = mkrng_range(rng, 0, im->Xsize - pw);
	int py = mkrng_range(rng, 0, im->Ysize - ph);
	int period = mkrng_range(rng, 2, 4);
	int dir = mkrng_range(rng, 0, 2);
	VipsPel ink[3];

	mkpaint_ink(rng, ink);
	mkdraw_hatch(im, px, py, pw, ph, period, dir, ink);
}

/* Renders one run of words in a random font at px pixels as an in-memory uchar mask. */
static VipsImage *mkpaint_render_text(int px, uint64_t *rng)
{
	char str[256] = "", font[64];
	int nwords = mkrng_range(rng, 2, 7);
	int fi = mkrng_range(rng, 0, 3);
	VipsImage *mask = NULL, *mem;

	for (int i = 0; i < nwords; i++) {
		size_t len = strlen(str);
		int wi = mkrng_range(rng, 0, MKPAINT_NWORDS - 1);

		snprintf(str + len, sizeof(str) - len, "%s%s", i ? " " : "", mkpaint_words[wi]);
	}
	snprintf(font, sizeof(font), "%s %d", mkpaint_fonts[fi], px);
	if (vips_text(&mask, str, "font", font, "width", 24 * px, "dpi", 72, NULL))
		return NULL;
	mem = vips_image_copy_memory(mask);
	g_object_unref(mask);
	return mem;
}

static int mkpaint_assets_text(struct mkpaint_assets *a, int max_height, uint64_t *rng)
{
	int top = MAX(mkpaint_text_sizes[0], max_height / 8);

	for (int s = 0; s < MKPAINT_NSIZES && mkpaint_text_sizes[s] <= top; s++) {
		for (int v = 0; v < MKPAINT_TEXT_VARIANTS; v++)
			if (!(a->text[s][v] = mkpaint_render_text(mkpaint_text_sizes[s], rng)))
				return -1;
		a->nsizes = s + 1;
	}
	return 0;
}

struct mkpaint_assets *mkpaint_assets_new(int max_width, int max_height, uint64_t seed,
					  int text)
{
	struct mkpaint_assets *a = g_new0(struct mkpaint_assets, 1);
	VipsImage *noise = NULL, *chars = NULL;
	uint64_t rng = seed;
	int vseed = mkrng_vseed(&rng);

	if (!vips_gaussnoise(&noise, max_width + MKPAINT_GRAIN_MARGIN,
			     max_height + MKPAINT_GRAIN_MARGIN, "sigma", MKPAINT_GRAIN_SIGMA,
			     "mean", 0.0, "seed", vseed, NULL) &&
	    !vips_cast_char(noise, &chars, NULL))
		a->grain = vips_image_copy_memory(chars);
	if (noise)
		g_object_unref(noise);
	if (chars)
		g_object_unref(chars);
	if (!a->grain || (text && mkpaint_assets_text(a, max_height, &rng))) {
		mkpaint_assets_free(a);
		return NULL;
	}
	return a;
}

void mkpaint_assets_free(struct mkpaint_assets *a)
{
	if (!a)
		return;
	for (int s = 0; s < MKPAINT_NSIZES; s++)
		for (int v = 0; v < MKPAINT_TEXT_VARIANTS; v++)
			if (a->text[s][v])
				g_object_unref(a->text[s][v]);
	if (a->grain)
		g_object_unref(a->grain);
	g_free(a);
}

/* 1-3 runs of words, each at the largest rendered size up to 1/8-1/30 of the height. */
static void mkpaint_text(VipsImage *im, const struct mkpaint_assets *a, uint64_t *rng)
{
	int n = mkrng_range(rng, 1, 3);

	for (int i = 0; i < n; i++) {
		int want = im->Ysize / mkrng_range(rng, 8, 30), s = 0;
		int v = mkrng_range(rng, 0, MKPAINT_TEXT_VARIANTS - 1);
		VipsPel ink[3];
		VipsImage *mask;

		while (s + 1 < a->nsizes && mkpaint_text_sizes[s + 1] <= want)
			s++;
		mask = a->text[s][v];
		int x = mkrng_range(rng, -8, MAX(0, im->Xsize - mask->Xsize));
		int y = mkrng_range(rng, -4, MAX(0, im->Ysize - mask->Ysize));

		mkpaint_ink(rng, ink);
		mkdraw_mask(im, mask, x, y, ink);
	}
}

/* Luminance grain, in place: a window of the shared tile at a random offset, scaled to
 * this picture's strength (fixed point, /256), added to every colour band and clipped. */
static void mkpaint_add_grain(VipsImage *im, const VipsImage *grain, uint64_t *rng)
{
	int k = (int)((2.0 + 6.0 * mkrng_unit(rng)) / MKPAINT_GRAIN_SIGMA * 256.0);
	int ox = mkrng_range(rng, 0, grain->Xsize - im->Xsize);
	int oy = mkrng_range(rng, 0, grain->Ysize - im->Ysize);
	int bands = im->Bands;

	for (int y = 0; y < im->Ysize; y++) {
		const signed char *n = (const signed char *)VIPS_IMAGE_ADDR(grain, ox, oy + y);
		VipsPel *p = VIPS_IMAGE_ADDR(im, 0, y);

		for (int x = 0; x < im->Xsize; x++) {
			int d = (n[x] * k + 128) / 256;

			for (int b = 0; b < bands; b++, p++)
				*p = (VipsPel)VIPS_CLIP(0, *p + d, 255);
		}
	}
}

int mkpaint_photo(VipsImage **out, int width, int height, uint64_t seed,
		  const struct mkpaint_assets *assets)
{
	VipsObject *scope = VIPS_OBJECT(vips_image_new());
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 1);
	uint64_t rng = seed;
	int rc = -1;

	*out = NULL;
	if (mkpaint_smooth(scope, &t[0], width, height, &rng))
		goto out;
	mkpaint_shapes(t[0], &rng);
	mkpaint_lines(t[0], &rng);
	mkpaint_hatch(t[0], &rng);
	if (assets && assets->nsizes && height >= 48)
		mkpaint_text(t[0], assets, &rng);
	if (assets)
		mkpaint_add_grain(t[0], assets->grain, &rng);
	*out = t[0];
	g_object_ref(*out);
	rc = 0;
out:
	g_object_unref(scope);
	return rc;
}

int mkpaint_alpha(VipsImage **out, int width, int height, uint64_t seed)
{
	VipsObject *scope = VIPS_OBJECT(vips_image_new());
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 6);
	double scale[2] = {2.0 / width, 2.0 / height}, offset[2] = {-1.0, -1.0},
	       sum[2] = {1, 1};
	const VipsPel clear[1] = {0};
	uint64_t rng = seed;
	int rc = -1;

	*out = NULL;
	/* r^2 = x^2 + y^2 over [-1, 1]^2; alpha = 255 * (1.4 - r^2), clipped. */
	t[0] = vips_image_new_matrix_from_array(2, 1, sum, 2);
	if (!t[0] || vips_xyz(&t[1], width, height, NULL) ||
	    vips_linear(t[1], &t[2], scale, offset, 2, NULL) ||
	    vips_multiply(t[2], t[2], &t[3], NULL) || vips_recomb(t[3], &t[4], t[0], NULL) ||
	    vips_linear1(t[4], &t[5], -255.0, 1.4 * 255.0, "uchar", TRUE, NULL))
		goto out;
	if (!(*out = vips_image_copy_memory(t[5])))
		goto out;
	for (int i = mkrng_range(&rng, 1, 4); i > 0; i--) {
		int r = MAX(2, MIN(width, height) / mkrng_range(&rng, 6, 16));
		int cx = mkrng_range(&rng, 0, width - 1);
		int cy = mkrng_range(&rng, 0, height - 1);

		mkdraw_circle(*out, cx, cy, r, 0, clear);
	}
	rc = 0;
out:
	g_object_unref(scope);
	return rc;
}
