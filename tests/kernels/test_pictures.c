/* Pictures that are not plain stills, through kernel_run on both paths where both
 * apply: TIFF extra channels that are not alpha, multi-frame inputs, 12-bit JPEG.
 * Inputs are made here: TIFFs byte by byte (ExtraSamples is ours to set), the rest
 * with libvips. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "kernels/kernel.h"

struct buf {
	uint8_t *data;
	size_t len;
};

static void setup(void)
{
	struct vherr err = {0};

	cr_assert_eq(kernel_global_init("test_pictures", &err), 0, "%s", err.msg);
}

static void teardown(void)
{
	kernel_global_shutdown();
}

TestSuite(pictures, .init = setup, .fini = teardown);

static struct kernel_params defaults(enum kernel_choice choice)
{
	struct kernel_params p = {
	    .mode = GEOMETRY_STRETCH,
	    .autorotate = 1,
	    .format = KFMT_KEEP,
	    .max_pixels = 100000000,
	    .fail_on = KFAIL_TRUNCATED,
	    .choice = choice,
	};
	return p;
}

static void *count_object(void *obj, void *a, void *b)
{
	(void)obj;
	(void)b;
	(*(int *)a)++;
	return NULL;
}

/* The number of live libvips objects (libvips tracks every one). */
static int objects_alive(void)
{
	int n = 0;

	vips_object_map(count_object, &n, NULL);
	return n;
}

/* Runs in through a fresh kernel; *rc gets kernel_run's return. The run leaves no
 * libvips object behind, on any path. */
static struct kernel_result run(const struct kernel_params *p, const struct buf *in, int *rc,
				struct vherr *err)
{
	int before = objects_alive();
	struct kernel *k = kernel_new(p);
	struct kernel_result res = {0};

	cr_assert_not_null(k);
	*rc = kernel_run(k, in->data, in->len, &res, err);
	kernel_free(k);
	cr_assert_eq(objects_alive(), before, "kernel_run leaked %d libvips objects",
		     objects_alive() - before);
	return res;
}

static VipsImage *decode(const struct kernel_result *res)
{
	VipsImage *im = vips_image_new_from_buffer(res->data, res->len, "", NULL);

	cr_assert_not_null(im, "%s", vips_error_buffer());
	return im;
}

static double pixel(VipsImage *im, int x, int y, int band)
{
	double *v = NULL;
	int n = 0;
	double out;

	cr_assert_eq(vips_getpoint(im, &v, &n, x, y, NULL), 0);
	cr_assert_lt(band, n);
	out = v[band];
	g_free(v);
	return out;
}

/* ---- TIFF extra channels --------------------------------------------------- */

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v & 0xffff);
	put16(p + 2, v >> 16);
}

/* A little-endian uncompressed w x h TIFF of spp 8-bit samples per pixel, photometric
 * 2 (RGB) or 1 (grey), ExtraSamples = extra (-1: no such tag); the colour is (40, 160,
 * 220) on the left half, (250, 20, 20) on the right (grey: 100, 200), every extra
 * sample 0. */
static struct buf tiff(int w, int h, int spp, int photometric, int extra)
{
	int ntags = extra >= 0 ? 10 : 9, colours = photometric == 2 ? 3 : 1;
	size_t ifd = 8, bps = ifd + 2 + 12 * (size_t)ntags + 4, pixels = bps + 2 * (size_t)spp;
	size_t n = (size_t)w * h * spp;
	struct buf b = {calloc(1, pixels + n), pixels + n};
	uint8_t *e = b.data + ifd + 2;
	static const uint8_t left[] = {40, 160, 220}, right[] = {250, 20, 20},
			     grey[] = {100, 200};
	struct {
		unsigned tag, type;
		uint32_t count, value;
	} tags[10] = {
	    {256, 4, 1, (uint32_t)w},
	    {257, 4, 1, (uint32_t)h},
	    {258, 3, (uint32_t)spp, spp <= 2 ? 8 | 8u << 16 : (uint32_t)bps},
	    {259, 3, 1, 1},
	    {262, 3, 1, (uint32_t)photometric},
	    {273, 4, 1, (uint32_t)pixels},
	    {277, 3, 1, (uint32_t)spp},
	    {278, 4, 1, (uint32_t)h},
	    {279, 4, 1, (uint32_t)n},
	    {338, 3, 1, (uint32_t)extra},
	};

	b.data[0] = b.data[1] = 'I';
	put16(b.data + 2, 42);
	put32(b.data + 4, (uint32_t)ifd);
	put16(b.data + ifd, (unsigned)ntags);
	for (int i = 0; i < ntags; i++, e += 12) {
		put16(e, tags[i].tag);
		put16(e + 2, tags[i].type);
		put32(e + 4, tags[i].count);
		put32(e + 8, tags[i].value);
	}
	for (int i = 0; i < spp; i++)
		put16(b.data + bps + 2 * i, 8);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < colours; c++)
				b.data[pixels + ((size_t)y * w + x) * spp + c] =
				    colours == 1 ? grey[x >= w / 2]
						 : (x < w / 2 ? left : right)[c];
	return b;
}

/* RGBX (ExtraSamples 0, "unspecified") is colour and nothing else: PNG out has no
 * alpha and the colours are the stored ones. Alpha (ExtraSamples 2) stays alpha. */
Test(pictures, tiff_unspecified_extra_channel_is_not_alpha)
{
	static const struct {
		int spp, photometric, extra, bands;
	} cases[] = {{4, 2, 0, 3}, {4, 2, -1, 3}, {2, 1, 0, 3}, {4, 2, 2, 4}};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf in =
		    tiff(64, 48, cases[i].spp, cases[i].photometric, cases[i].extra);
		struct kernel_params p = defaults(KERNEL_AUTO);
		struct vherr err = {0};
		int rc;
		struct kernel_result res = run(&p, &in, &rc, &err);
		VipsImage *out;

		cr_assert_eq(rc, 0, "case %zu: %s", i, err.msg);
		cr_assert_eq(res.format, KFMT_PNG);
		out = decode(&res);
		cr_assert_eq(out->Bands, cases[i].bands, "case %zu: %d bands, want %d", i,
			     out->Bands, cases[i].bands);
		if (cases[i].bands == 4) { /* a real alpha of 0 stays 0 */
			cr_assert_eq(pixel(out, 5, 5, 3), 0);
		} else if (cases[i].photometric == 2) {
			cr_assert_eq(pixel(out, 5, 5, 0), 40, "case %zu", i);
			cr_assert_eq(pixel(out, 5, 5, 2), 220, "case %zu", i);
			cr_assert_eq(pixel(out, 60, 40, 0), 250, "case %zu", i);
		} else {
			cr_assert_eq(pixel(out, 5, 5, 1), 100, "case %zu", i);
			cr_assert_eq(pixel(out, 60, 40, 1), 200, "case %zu", i);
		}
		g_object_unref(out);
		kernel_result_release(&res);
		/* and when resized: the X band must not weigh the resampling */
		p.resize_w = p.resize_h = 32;
		res = run(&p, &in, &rc, &err);
		cr_assert_eq(rc, 0, "case %zu resized: %s", i, err.msg);
		out = decode(&res);
		cr_assert_eq(out->Bands, cases[i].bands);
		if (cases[i].bands == 3 && cases[i].photometric == 2)
			cr_assert_eq(pixel(out, 3, 3, 1), 160, "case %zu resized", i);
		g_object_unref(out);
		kernel_result_release(&res);
		free(in.data);
	}
}

/* ---- multi-frame inputs ---------------------------------------------------- */

/* Three frames of w x h stacked as libvips' pages: red, green, blue. */
static VipsImage *three_frames(int w, int h)
{
	VipsImage *frames[3], *all = NULL, *out = NULL;
	static const double colours[3][3] = {{230, 20, 20}, {20, 230, 20}, {20, 20, 230}};

	for (int i = 0; i < 3; i++) {
		VipsImage *black = NULL, *lin = NULL;

		cr_assert_eq(vips_black(&black, w, h, "bands", 3, NULL), 0);
		cr_assert_eq(vips_linear(black, &lin, (double[]){1, 1, 1}, (double *)colours[i],
					 3, NULL),
			     0);
		cr_assert_eq(vips_cast_uchar(lin, &frames[i], NULL), 0);
		g_object_unref(black);
		g_object_unref(lin);
	}
	cr_assert_eq(vips_arrayjoin(frames, &all, 3, "across", 1, NULL), 0);
	for (int i = 0; i < 3; i++)
		g_object_unref(frames[i]);
	cr_assert_eq(vips_copy(all, &out, "interpretation", VIPS_INTERPRETATION_sRGB, NULL), 0);
	g_object_unref(all);
	vips_image_set_int(out, "page-height", h);
	return out;
}

static struct buf saved(VipsImage *im, const char *suffix)
{
	void *data = NULL;
	size_t len = 0;
	struct buf b;

	cr_assert_eq(vips_image_write_to_buffer(im, suffix, &data, &len, NULL), 0, "%s: %s",
		     suffix, vips_error_buffer());
	b.data = malloc(len);
	memcpy(b.data, data, len);
	b.len = len;
	g_free(data);
	return b;
}

/* Animated GIF, animated WebP and a 3-page TIFF: the first frame is transformed and
 * the result says 3 frames, frame 0 used; a still says 1 on every kernel. */
Test(pictures, multi_frame_inputs_record_frames_and_use_the_first)
{
	static const char *const suffixes[] = {".gif", ".webp", ".tif"};
	VipsImage *anim = three_frames(40, 30);

	for (size_t i = 0; i < 3; i++) {
		struct buf in = saved(anim, suffixes[i]);
		struct kernel_params p = defaults(KERNEL_AUTO);
		struct vherr err = {0};
		int rc;
		struct kernel_result res;
		VipsImage *out;

		p.format = KFMT_PNG;
		res = run(&p, &in, &rc, &err);
		cr_assert_eq(rc, 0, "%s: %s", suffixes[i], err.msg);
		cr_assert_eq(res.frames, 3, "%s: %d frames", suffixes[i], res.frames);
		cr_assert_eq(res.frame_used, 0);
		cr_assert_eq(res.out_h, 30, "%s: one frame high, not %d", suffixes[i],
			     res.out_h);
		out = decode(&res);
		cr_assert_gt(pixel(out, 20, 15, 0), 200, "%s: the first (red) frame",
			     suffixes[i]);
		cr_assert_lt(pixel(out, 20, 15, 1), 60, "%s: the first (red) frame",
			     suffixes[i]);
		g_object_unref(out);
		kernel_result_release(&res);
		free(in.data);
	}
	g_object_unref(anim);
	{
		VipsImage *still = NULL;
		static const char *const stills[] = {".jpg", ".png", ".webp", ".tif"};

		cr_assert_eq(vips_black(&still, 40, 30, "bands", 3, NULL), 0);
		for (size_t i = 0; i < 4; i++) {
			VipsImage *u = NULL;
			struct buf in;
			struct kernel_params p = defaults(KERNEL_AUTO);
			struct vherr err = {0};
			int rc;
			struct kernel_result res;

			cr_assert_eq(vips_cast_uchar(still, &u, NULL), 0);
			in = saved(u, stills[i]);
			g_object_unref(u);
			res = run(&p, &in, &rc, &err);
			cr_assert_eq(rc, 0, "%s: %s", stills[i], err.msg);
			cr_assert_eq(res.frames, 1, "%s (%s): %d frames", stills[i], res.kernel,
				     res.frames);
			kernel_result_release(&res);
			free(in.data);
		}
		g_object_unref(still);
	}
}

/* ---- 12-bit JPEG ------------------------------------------------------------- */

/* A 12-bit JPEG's header (an 8-bit one's SOF with precision 12): libjpeg-turbo 2.1 as
 * Debian builds it decodes 8-bit only, so it fails as unsupported, and says 12-bit,
 * on every kernel choice that can see a JPEG. */
Test(pictures, twelve_bit_jpeg_fails_saying_twelve_bit)
{
	VipsImage *black = NULL, *u = NULL;
	struct buf in;
	static const enum kernel_choice choices[] = {KERNEL_AUTO, KERNEL_VIPS};
	uint8_t *sof;

	cr_assert_eq(vips_black(&black, 40, 30, "bands", 3, NULL), 0);
	cr_assert_eq(vips_cast_uchar(black, &u, NULL), 0);
	in = saved(u, ".jpg");
	g_object_unref(black);
	g_object_unref(u);
	sof = memmem(in.data, in.len, "\xff\xc0", 2);
	cr_assert_not_null(sof);
	sof[1] = 0xc1; /* extended sequential: the SOF a 12-bit baseline-like file has */
	sof[4] = 12;
	for (size_t i = 0; i < 2; i++) {
		struct kernel_params p = defaults(choices[i]);
		struct vherr err = {0};
		int rc;
		struct kernel_result res = run(&p, &in, &rc, &err);

		cr_assert_eq(rc, -VHERR_UNSUPPORTED, "choice %d: rc %d, %s", choices[i], rc,
			     err.msg);
		cr_assert_str_eq(vherr_reason(err.code), "unsupported");
		cr_assert_not_null(strstr(err.msg, "12-bit"), "'%s'", err.msg);
		cr_assert_null(res.data);
	}
	free(in.data);
}
