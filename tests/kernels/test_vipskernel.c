/* The libvips kernel through kernel.h, on images made in memory with libvips. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <vips/vips.h>

#include "kernels/kernel.h"

struct buf {
	void *data;
	size_t len;
};

static void setup(void)
{
	struct vherr err = {0};

	cr_assert_eq(kernel_global_init("test_vipskernel", &err), 0, "%s", err.msg);
}

static void teardown(void)
{
	kernel_global_shutdown();
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

TestSuite(vipskernel, .init = setup, .fini = teardown);

static struct kernel_params defaults(void)
{
	struct kernel_params p = {
	    .mode = GEOMETRY_STRETCH,
	    .autorotate = 1,
	    .format = KFMT_KEEP,
	    .quality = KERNEL_QUALITY_DEFAULT,
	    .max_pixels = 100000000,
	    .fail_on = KFAIL_TRUNCATED,
	    .choice = KERNEL_VIPS, /* this file tests the libvips path */
	    .background = {255, 255, 255},
	};
	return p;
}

/* Replaces im by the result of call, which writes its output to &t_. */
#define STEP(im, call)                                                                         \
	do {                                                                                   \
		VipsImage *t_ = NULL;                                                          \
		cr_assert_eq((call), 0, "libvips: %s", vips_error_buffer());                   \
		g_object_unref(im);                                                            \
		(im) = t_;                                                                     \
	} while (0)

/* A w x h sRGB 8-bit image: gradients plus a little noise (photo-like for codecs). */
static VipsImage *make_rgb(int w, int h)
{
	VipsImage *xyz, *x, *y, *noise, *r, *g, *b, *bands[3], *im;

	cr_assert_eq(vips_xyz(&xyz, w, h, NULL), 0);
	cr_assert_eq(vips_extract_band(xyz, &x, 0, NULL), 0);
	cr_assert_eq(vips_extract_band(xyz, &y, 1, NULL), 0);
	cr_assert_eq(vips_gaussnoise(&noise, w, h, "mean", 0.0, "sigma", 4.0, NULL), 0);
	cr_assert_eq(vips_linear1(x, &r, 255.0 / w, 0, NULL), 0);
	cr_assert_eq(vips_linear1(y, &g, 255.0 / h, 0, NULL), 0);
	cr_assert_eq(vips_add(noise, r, &b, NULL), 0);
	bands[0] = r;
	bands[1] = g;
	bands[2] = b;
	cr_assert_eq(vips_bandjoin(bands, &im, 3, NULL), 0);
	STEP(im, vips_cast_uchar(im, &t_, NULL));
	STEP(im, vips_copy(im, &t_, "interpretation", VIPS_INTERPRETATION_sRGB, NULL));
	g_object_unref(xyz);
	g_object_unref(x);
	g_object_unref(y);
	g_object_unref(noise);
	g_object_unref(r);
	g_object_unref(g);
	g_object_unref(b);
	return im;
}

/* A w x h image: left half white, right half black. */
static VipsImage *make_halves(int w, int h)
{
	VipsImage *xyz, *x, *mask, *im;

	cr_assert_eq(vips_xyz(&xyz, w, h, NULL), 0);
	cr_assert_eq(vips_extract_band(xyz, &x, 0, NULL), 0);
	cr_assert_eq(vips_less_const1(x, &mask, w / 2, NULL), 0);
	{
		VipsImage *bands[3] = {mask, mask, mask};
		cr_assert_eq(vips_bandjoin(bands, &im, 3, NULL), 0);
	}
	STEP(im, vips_copy(im, &t_, "interpretation", VIPS_INTERPRETATION_sRGB, NULL));
	g_object_unref(xyz);
	g_object_unref(x);
	g_object_unref(mask);
	return im;
}

/* Adds a constant alpha band. */
static VipsImage *with_alpha(VipsImage *im, double alpha)
{
	VipsImage *out = NULL;

	cr_assert_eq(vips_bandjoin_const1(im, &out, alpha, NULL), 0);
	g_object_unref(im);
	return out;
}

enum fmt { F_JPEG, F_PNG, F_WEBP, F_TIFF, F_GIF };

static struct buf save(VipsImage *im, enum fmt f)
{
	struct buf b = {0};
	int rc;

	switch (f) {
	case F_JPEG:
		rc = vips_jpegsave_buffer(im, &b.data, &b.len, "Q", 92, NULL);
		break;
	case F_PNG:
		rc = vips_pngsave_buffer(im, &b.data, &b.len, NULL);
		break;
	case F_WEBP:
		rc = vips_webpsave_buffer(im, &b.data, &b.len, NULL);
		break;
	case F_TIFF:
		rc = vips_tiffsave_buffer(im, &b.data, &b.len, NULL);
		break;
	default:
		rc = vips_gifsave_buffer(im, &b.data, &b.len, NULL);
		break;
	}
	cr_assert_eq(rc, 0, "save: %s", vips_error_buffer());
	return b;
}

static struct buf make_file(int w, int h, enum fmt f)
{
	VipsImage *im = make_rgb(w, h);
	struct buf b = save(im, f);

	g_object_unref(im);
	return b;
}

/* Runs one image through a fresh kernel. */
static int run(const struct kernel_params *p, const struct buf *in, struct kernel_result *res,
	       struct vherr *err)
{
	int before = objects_alive();
	struct kernel *k = kernel_new(p);
	int rc;

	cr_assert_not_null(k);
	rc = kernel_run(k, in->data, in->len, res, err);
	kernel_free(k);
	/* a run leaves no image or loader referenced, on any path */
	cr_assert_eq(objects_alive(), before, "kernel_run leaked %d libvips objects",
		     objects_alive() - before);
	if (rc) {
		cr_assert_null(res->data, "no output on failure");
		cr_assert_eq(res->len, 0);
		cr_assert_eq(rc, -(int)err->code);
	}
	return rc;
}

/* Runs and requires success; returns the decoded output (caller unrefs). */
static VipsImage *run_ok(const struct kernel_params *p, const struct buf *in,
			 struct kernel_result *res)
{
	struct vherr err = {0};
	VipsImage *out;

	cr_assert_eq(run(p, in, res, &err), 0, "%s: %s", vherr_reason(err.code), err.msg);
	cr_assert_not_null(res->data);
	cr_assert_gt(res->len, 0);
	cr_assert_str_eq(res->kernel, "libvips");
	out = vips_image_new_from_buffer(res->data, res->len, "", NULL);
	cr_assert_not_null(out, "output does not decode: %s", vips_error_buffer());
	cr_assert_eq(out->Xsize, res->out_w);
	cr_assert_eq(out->Ysize, res->out_h);
	return out;
}

static const char *loader_of(VipsImage *im)
{
	const char *l = "";

	vips_image_get_string(im, VIPS_META_LOADER, &l);
	return l;
}

static int is_format(VipsImage *im, enum kernel_format f)
{
	const char *l = loader_of(im);

	switch (f) {
	case KFMT_JPEG:
		return vips_isprefix("jpegload", l);
	case KFMT_PNG:
		return vips_isprefix("pngload", l);
	case KFMT_WEBP:
		return vips_isprefix("webpload", l);
	default:
		return 0;
	}
}

/* The pixel at (x, y), band b. */
static double pixel(VipsImage *im, int x, int y, int b)
{
	double *v = NULL;
	int n = 0;
	double r;

	cr_assert_eq(vips_getpoint(im, &v, &n, x, y, NULL), 0, "%s", vips_error_buffer());
	cr_assert_lt(b, n);
	r = v[b];
	g_free(v);
	return r;
}

static double mean(VipsImage *im)
{
	double m = 0;

	cr_assert_eq(vips_avg(im, &m, NULL), 0);
	return m;
}

static void free_buf(struct buf *b)
{
	g_free(b->data);
	b->data = NULL;
}

/* ---- geometry through libvips --------------------------------------------- */

Test(vipskernel, every_mode_every_format_exact_dims)
{
	static const enum fmt fmts[] = {F_JPEG, F_PNG, F_WEBP, F_TIFF, F_GIF};
	static const enum kernel_format kept[] = {KFMT_JPEG, KFMT_PNG, KFMT_WEBP, KFMT_PNG,
						  KFMT_PNG};
	static const int sizes[][2] = {{300, 200}, {50, 30}, {37, 211}, {1, 1}};
	static const int targets[][2] = {{224, 224}, {100, 150}, {64, 17}};

	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			struct buf in = make_file(sizes[s][0], sizes[s][1], fmts[f]);
			/* cgif may write a 1x1 GIF with transparency: png keeps it */
			VipsImage *src = vips_image_new_from_buffer(in.data, in.len, "", NULL);
			int want_bands = vips_image_hasalpha(src) ? 4 : 3;

			g_object_unref(src);

			for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
				for (int m = GEOMETRY_STRETCH; m <= GEOMETRY_PAD; m++) {
					struct kernel_params p = defaults();
					struct kernel_result res = {0};
					struct geometry g;
					VipsImage *out;

					p.resize_w = targets[t][0];
					p.resize_h = targets[t][1];
					p.mode = (enum geometry_mode)m;
					cr_assert_eq(geometry_plan(p.mode, sizes[s][0],
								   sizes[s][1], p.resize_w,
								   p.resize_h, &g),
						     0);
					out = run_ok(&p, &in, &res);
					cr_assert(
					    res.out_w == g.out_w && res.out_h == g.out_h,
					    "fmt %zu %dx%d %s %dx%d: got %dx%d want %dx%d", f,
					    sizes[s][0], sizes[s][1],
					    geometry_mode_name(p.mode), p.resize_w, p.resize_h,
					    res.out_w, res.out_h, g.out_w, g.out_h);
					cr_assert_eq(res.in_w, sizes[s][0]);
					cr_assert_eq(res.in_h, sizes[s][1]);
					cr_assert_eq(res.format, kept[f]);
					cr_assert(is_format(out, kept[f]), "fmt %zu wrote %s",
						  f, loader_of(out));
					cr_assert_eq(out->BandFmt, VIPS_FORMAT_UCHAR);
					cr_assert_eq(out->Bands, want_bands,
						     "fmt %zu %dx%d: %d bands", f, sizes[s][0],
						     sizes[s][1], out->Bands);
					g_object_unref(out);
					kernel_result_release(&res);
					cr_assert_null(res.data);
				}
			}
			free_buf(&in);
		}
	}
}

Test(vipskernel, large_jpeg_shrink_on_load_exact)
{
	struct buf in = make_file(4000, 3000, F_JPEG);
	static const int targets[][2] = {{224, 224}, {333, 100}, {17, 1001}, {250, 188}};

	for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
		for (int m = GEOMETRY_STRETCH; m <= GEOMETRY_PAD; m++) {
			struct kernel_params p = defaults();
			struct kernel_result res = {0};
			struct geometry g;
			VipsImage *out;

			p.resize_w = targets[t][0];
			p.resize_h = targets[t][1];
			p.mode = (enum geometry_mode)m;
			geometry_plan(p.mode, 4000, 3000, p.resize_w, p.resize_h, &g);
			out = run_ok(&p, &in, &res);
			cr_assert(res.out_w == g.out_w && res.out_h == g.out_h,
				  "%s %dx%d: %dx%d", geometry_mode_name(p.mode), p.resize_w,
				  p.resize_h, res.out_w, res.out_h);
			g_object_unref(out);
			kernel_result_release(&res);
		}
	}
	free_buf(&in);
}

Test(vipskernel, no_resize_reencodes_same_size)
{
	struct buf in = make_file(123, 45, F_PNG);
	struct kernel_params p = defaults();
	struct kernel_result res = {0};
	VipsImage *out;

	p.format = KFMT_WEBP;
	out = run_ok(&p, &in, &res);
	cr_assert(res.out_w == 123 && res.out_h == 45);
	cr_assert_eq(res.format, KFMT_WEBP);
	cr_assert(is_format(out, KFMT_WEBP));
	g_object_unref(out);
	kernel_result_release(&res);
	free_buf(&in);
}

Test(vipskernel, no_resize_png_is_pixel_identical)
{
	VipsImage *src = make_rgb(97, 61), *out, *diff = NULL;
	struct buf in = save(src, F_PNG);
	struct kernel_params p = defaults();
	struct kernel_result res = {0};
	double max = -1;

	out = run_ok(&p, &in, &res);
	cr_assert_eq(vips_subtract(src, out, &diff, NULL), 0);
	STEP(diff, vips_abs(diff, &t_, NULL));
	cr_assert_eq(vips_max(diff, &max, NULL), 0);
	cr_assert_eq(max, 0, "no resampling without resize");
	g_object_unref(diff);
	g_object_unref(out);
	g_object_unref(src);
	kernel_result_release(&res);
	free_buf(&in);
}

Test(vipskernel, explicit_formats_and_quality)
{
	struct buf in = make_file(300, 200, F_JPEG);
	static const enum kernel_format fmts[] = {KFMT_JPEG, KFMT_PNG, KFMT_WEBP};
	size_t len_q30 = 0;

	for (size_t i = 0; i < 3; i++) {
		struct kernel_params p = defaults();
		struct kernel_result res = {0};
		VipsImage *out;

		p.resize_w = p.resize_h = 128;
		p.format = fmts[i];
		out = run_ok(&p, &in, &res);
		cr_assert_eq(res.format, fmts[i]);
		cr_assert(is_format(out, fmts[i]));
		g_object_unref(out);
		kernel_result_release(&res);
	}
	for (int q = 30; q <= 95; q += 65) {
		struct kernel_params p = defaults();
		struct kernel_result res = {0};
		VipsImage *out;

		p.quality = q;
		out = run_ok(&p, &in, &res);
		if (q == 30)
			len_q30 = res.len;
		else
			cr_assert_gt(res.len, len_q30, "q95 bigger than q30");
		g_object_unref(out);
		kernel_result_release(&res);
	}
	free_buf(&in);
}

Test(vipskernel, crop_and_pad_place_pixels)
{
	struct buf in;
	struct kernel_params p = defaults();
	struct kernel_result res = {0};
	VipsImage *im = make_halves(200, 100), *out;

	in = save(im, F_PNG);
	g_object_unref(im);
	/* pad 200x100 into 100x100: 100x50 at y 25, red background */
	p.resize_w = p.resize_h = 100;
	p.mode = GEOMETRY_PAD;
	p.background[0] = 255;
	p.background[1] = 0;
	p.background[2] = 0;
	out = run_ok(&p, &in, &res);
	cr_assert(res.out_w == 100 && res.out_h == 100);
	cr_assert_eq(pixel(out, 50, 5, 0), 255);
	cr_assert_eq(pixel(out, 50, 5, 1), 0);
	cr_assert_eq(pixel(out, 50, 94, 2), 0);
	cr_assert_eq(pixel(out, 10, 50, 1), 255, "image: white left");
	cr_assert_eq(pixel(out, 90, 50, 0), 0, "image: black right");
	g_object_unref(out);
	kernel_result_release(&res);
	/* crop 200x100 to 100x100: the centre, half white, half black */
	p.mode = GEOMETRY_CROP;
	out = run_ok(&p, &in, &res);
	cr_assert(res.out_w == 100 && res.out_h == 100);
	cr_assert_eq(pixel(out, 10, 50, 0), 255);
	cr_assert_eq(pixel(out, 90, 50, 0), 0);
	g_object_unref(out);
	kernel_result_release(&res);
	free_buf(&in);
}

Test(vipskernel, tall_crop_skips_rows_sequentially)
{
	struct buf in = make_file(100, 3000, F_JPEG);
	struct kernel_params p = defaults();
	struct kernel_result res = {0};
	VipsImage *out;

	p.resize_w = p.resize_h = 50;
	p.mode = GEOMETRY_CROP;
	out = run_ok(&p, &in, &res);
	cr_assert(res.out_w == 50 && res.out_h == 50);
	g_object_unref(out);
	kernel_result_release(&res);
	free_buf(&in);
}

/* ---- orientation ----------------------------------------------------------- */

static struct buf oriented_jpeg(int w, int h, int orientation)
{
	VipsImage *im = make_halves(w, h), *o = NULL;
	struct buf b;

	cr_assert_eq(vips_copy(im, &o, NULL), 0);
	vips_image_set_int(o, VIPS_META_ORIENTATION, orientation);
	b = save(o, F_JPEG);
	g_object_unref(o);
	g_object_unref(im);
	return b;
}

Test(vipskernel, exif_orientation_6_swaps_with_autorotate)
{
	struct buf in = oriented_jpeg(300, 200, 6);
	struct kernel_params p = defaults();
	struct kernel_result res = {0};
	VipsImage *out;

	/* no resize: rotated 90 clockwise, the white left half is now on top */
	out = run_ok(&p, &in, &res);
	cr_assert(res.out_w == 200 && res.out_h == 300, "%dx%d", res.out_w, res.out_h);
	cr_assert(res.in_w == 300 && res.in_h == 200, "in is the stored size");
	cr_assert_gt(pixel(out, 100, 20, 0), 200);
	cr_assert_lt(pixel(out, 100, 280, 0), 50);
	cr_assert_eq(vips_image_get_typeof(out, VIPS_META_ORIENTATION), 0, "metadata stripped");
	g_object_unref(out);
	kernel_result_release(&res);
	/* fit 100x100 is planned on the oriented 200x300 */
	p.resize_w = p.resize_h = 100;
	p.mode = GEOMETRY_FIT;
	out = run_ok(&p, &in, &res);
	cr_assert(res.out_w == 67 && res.out_h == 100, "%dx%d", res.out_w, res.out_h);
	g_object_unref(out);
	kernel_result_release(&res);
	/* stretch to a non-square target: exact after rotation */
	p.resize_w = 120;
	p.resize_h = 40;
	p.mode = GEOMETRY_STRETCH;
	out = run_ok(&p, &in, &res);
	cr_assert(res.out_w == 120 && res.out_h == 40, "%dx%d", res.out_w, res.out_h);
	g_object_unref(out);
	kernel_result_release(&res);
	free_buf(&in);
}

Test(vipskernel, exif_orientation_ignored_without_autorotate)
{
	struct buf in = oriented_jpeg(300, 200, 6);
	struct kernel_params p = defaults();
	struct kernel_result res = {0};
	VipsImage *out;

	p.autorotate = 0;
	out = run_ok(&p, &in, &res);
	cr_assert(res.out_w == 300 && res.out_h == 200);
	cr_assert_gt(pixel(out, 20, 100, 0), 200, "white still left");
	g_object_unref(out);
	kernel_result_release(&res);
	p.resize_w = p.resize_h = 100;
	p.mode = GEOMETRY_FIT;
	out = run_ok(&p, &in, &res);
	cr_assert(res.out_w == 100 && res.out_h == 67, "%dx%d", res.out_w, res.out_h);
	g_object_unref(out);
	kernel_result_release(&res);
	free_buf(&in);
}

/* ---- colour and depth ------------------------------------------------------ */

Test(vipskernel, png16_to_8bit)
{
	VipsImage *im = make_rgb(160, 120), *out = NULL;
	struct buf in;
	struct kernel_params p = defaults();
	struct kernel_result res = {0};

	STEP(im, vips_cast_ushort(im, &t_, NULL));
	STEP(im, vips_linear1(im, &t_, 257, 0, NULL));
	STEP(im, vips_cast_ushort(im, &t_, NULL));
	STEP(im, vips_copy(im, &t_, "interpretation", VIPS_INTERPRETATION_RGB16, NULL));
	cr_assert_eq(vips_pngsave_buffer(im, &in.data, &in.len, "bitdepth", 16, NULL), 0);
	g_object_unref(im);
	for (int resize = 0; resize <= 1; resize++) {
		p.resize_w = p.resize_h = resize ? 64 : 0;
		out = run_ok(&p, &in, &res);
		cr_assert_eq(out->BandFmt, VIPS_FORMAT_UCHAR);
		cr_assert_eq(out->Bands, 3);
		cr_assert(mean(out) > 40 && mean(out) < 215, "levels kept: %g", mean(out));
		g_object_unref(out);
		kernel_result_release(&res);
	}
	free_buf(&in);
}

Test(vipskernel, rgba_png_keeps_alpha_for_png_flattens_for_jpeg)
{
	VipsImage *im = with_alpha(make_rgb(100, 80), 0); /* fully transparent */
	struct buf in = save(im, F_PNG);
	struct kernel_params p = defaults();
	struct kernel_result res = {0};
	VipsImage *out;

	g_object_unref(im);
	p.resize_w = p.resize_h = 50;
	out = run_ok(&p, &in, &res);
	cr_assert_eq(out->Bands, 4, "png keeps alpha");
	cr_assert_eq(out->BandFmt, VIPS_FORMAT_UCHAR);
	g_object_unref(out);
	kernel_result_release(&res);

	p.format = KFMT_JPEG;
	p.background[0] = 0;
	p.background[1] = 128;
	p.background[2] = 255;
	out = run_ok(&p, &in, &res);
	cr_assert_eq(out->Bands, 3, "jpeg has no alpha");
	cr_assert_lt(fabs(pixel(out, 25, 25, 0) - 0), 6, "flattened onto background");
	cr_assert_lt(fabs(pixel(out, 25, 25, 1) - 128), 6);
	cr_assert_lt(fabs(pixel(out, 25, 25, 2) - 255), 6);
	g_object_unref(out);
	kernel_result_release(&res);

	/* pad with alpha kept: the border is the background, opaque */
	p.format = KFMT_PNG;
	p.mode = GEOMETRY_PAD;
	p.resize_w = 100;
	p.resize_h = 50;
	out = run_ok(&p, &in, &res);
	cr_assert_eq(out->Bands, 4);
	cr_assert_eq(pixel(out, 2, 25, 3), 255);
	cr_assert_eq(pixel(out, 2, 25, 2), 255);
	g_object_unref(out);
	kernel_result_release(&res);
	free_buf(&in);
}

static VipsImage *cmyk_of(VipsImage *rgb)
{
	VipsImage *out = NULL;

	cr_assert_eq(vips_icc_transform(rgb, &out, "cmyk", NULL), 0, "%s", vips_error_buffer());
	cr_assert_eq(out->Bands, 4);
	return out;
}

Test(vipskernel, cmyk_jpeg_to_srgb)
{
	VipsImage *rgb = make_rgb(200, 150), *cmyk = cmyk_of(rgb), *out;
	double ref = mean(rgb);

	for (int strip = 0; strip <= 1; strip++) {
		struct buf in = {0};
		struct kernel_params p = defaults();
		struct kernel_result res = {0};

		cr_assert_eq(
		    vips_jpegsave_buffer(cmyk, &in.data, &in.len, "strip", strip, NULL), 0);
		for (int resize = 0; resize <= 1; resize++) {
			p.resize_w = p.resize_h = resize ? 100 : 0;
			out = run_ok(&p, &in, &res);
			cr_assert_eq(out->Bands, 3, "strip %d resize %d", strip, resize);
			cr_assert_eq(out->Type, VIPS_INTERPRETATION_sRGB);
			cr_assert_lt(fabs(mean(out) - ref), 25, "mean %g vs %g", mean(out),
				     ref);
			g_object_unref(out);
			kernel_result_release(&res);
		}
		free_buf(&in);
	}
	g_object_unref(cmyk);
	g_object_unref(rgb);
}

Test(vipskernel, icc_tagged_rgb_converted_and_bad_profile_tolerated)
{
	VipsImage *rgb = make_rgb(200, 150), *p3 = NULL, *cmyk = cmyk_of(rgb), *bad = NULL,
		  *out;
	struct kernel_params p = defaults();
	struct kernel_result res = {0};
	struct buf in;
	const void *prof;
	size_t prof_len;
	double ref = mean(rgb);

	/* Display P3 pixels with their profile: back in sRGB they match the source */
	cr_assert_eq(vips_icc_transform(rgb, &p3, "p3", NULL), 0);
	in = save(p3, F_JPEG);
	p.resize_w = p.resize_h = 100;
	out = run_ok(&p, &in, &res);
	cr_assert_lt(fabs(mean(out) - ref), 2.5, "mean %g vs %g", mean(out), ref);
	g_object_unref(out);
	kernel_result_release(&res);
	free_buf(&in);

	/* an RGB image carrying a CMYK profile: fall back to sRGB, no failure */
	cr_assert_eq(vips_image_get_blob(cmyk, VIPS_META_ICC_NAME, &prof, &prof_len), 0);
	cr_assert_eq(vips_copy(rgb, &bad, NULL), 0);
	vips_image_set_blob_copy(bad, VIPS_META_ICC_NAME, prof, prof_len);
	in = save(bad, F_PNG);
	out = run_ok(&p, &in, &res);
	cr_assert_eq(out->Bands, 3);
	g_object_unref(out);
	kernel_result_release(&res);
	free_buf(&in);
	g_object_unref(bad);
	g_object_unref(cmyk);
	g_object_unref(p3);
	g_object_unref(rgb);
}

Test(vipskernel, gray_gives_one_band)
{
	static const enum fmt fmts[] = {F_JPEG, F_PNG, F_WEBP};

	for (size_t f = 0; f < 3; f++) {
		struct buf in = make_file(120, 90, fmts[f]);
		struct kernel_params p = defaults();
		struct kernel_result res = {0};
		VipsImage *out;

		p.gray = 1;
		p.resize_w = p.resize_h = 60;
		p.mode = GEOMETRY_PAD;
		if (fmts[f] == F_WEBP)
			p.format = KFMT_PNG; /* webp always decodes as RGB */
		out = run_ok(&p, &in, &res);
		cr_assert_eq(out->Bands, 1, "fmt %zu: %d bands", f, out->Bands);
		cr_assert_eq(out->BandFmt, VIPS_FORMAT_UCHAR);
		g_object_unref(out);
		kernel_result_release(&res);
		free_buf(&in);
	}
}

Test(vipskernel, grey_input_becomes_srgb)
{
	VipsImage *rgb = make_rgb(80, 60), *grey = NULL, *out;
	struct buf in;
	struct kernel_params p = defaults();
	struct kernel_result res = {0};

	cr_assert_eq(vips_colourspace(rgb, &grey, VIPS_INTERPRETATION_B_W, NULL), 0);
	in = save(grey, F_JPEG);
	out = run_ok(&p, &in, &res);
	cr_assert_eq(out->Bands, 3);
	g_object_unref(out);
	kernel_result_release(&res);
	free_buf(&in);
	g_object_unref(grey);
	g_object_unref(rgb);
}

Test(vipskernel, blur_and_sharpen_keep_shape)
{
	struct buf in = make_file(200, 100, F_PNG);
	VipsImage *im = with_alpha(make_rgb(64, 64), 200);
	struct buf rgba = save(im, F_PNG);

	g_object_unref(im);
	for (int gray = 0; gray <= 1; gray++) {
		for (int i = 0; i < 2; i++) {
			struct buf *b = i ? &rgba : &in;
			struct kernel_params p = defaults();
			struct kernel_result res = {0};
			VipsImage *out;

			p.gray = gray;
			p.blur_sigma = 1.5;
			p.sharpen = 1;
			p.resize_w = p.resize_h = 50;
			out = run_ok(&p, b, &res);
			cr_assert(res.out_w == 50 && res.out_h == 50);
			/* --gray is one band: alpha is flattened; colour png keeps it */
			cr_assert_eq(out->Bands, gray ? 1 : 3 + i, "gray %d alpha %d", gray, i);
			cr_assert_eq(out->BandFmt, VIPS_FORMAT_UCHAR);
			g_object_unref(out);
			kernel_result_release(&res);
		}
	}
	free_buf(&rgba);
	free_buf(&in);
}

/* ---- failures -------------------------------------------------------------- */

static void expect_error(const struct kernel_params *p, const struct buf *in,
			 enum vherr_code code, enum vhstage stage)
{
	struct kernel_result res = {0};
	struct vherr err = {0};
	int rc = run(p, in, &res, &err);

	cr_assert_eq(rc, -(int)code, "want %s, got %s (%s)", vherr_reason(code),
		     rc ? vherr_reason(rc) : "success", err.msg);
	cr_assert_eq(err.code, code);
	cr_assert_eq(err.stage, stage, "stage %s", vherr_stage_name(err.stage));
	cr_assert_neq(err.msg[0], '\0');
	cr_assert_null(strchr(err.msg, '\n'), "one line: %s", err.msg);
}

Test(vipskernel, truncated_jpeg_and_png_fail)
{
	static const enum fmt fmts[] = {F_JPEG, F_PNG};

	for (size_t f = 0; f < 2; f++) {
		struct buf full = make_file(400, 300, fmts[f]);

		for (int resize = 0; resize <= 1; resize++) {
			struct kernel_params p = defaults();
			struct buf half = {full.data, full.len / 2};

			p.resize_w = p.resize_h = resize ? 100 : 0;
			expect_error(&p, &half, VHERR_TRUNCATED, VHSTAGE_DECODE);
			p.format = KFMT_WEBP;
			expect_error(&p, &half, VHERR_TRUNCATED, VHSTAGE_DECODE);
		}
		free_buf(&full);
	}
}

Test(vipskernel, truncated_rotated_jpeg_fails_inside_thumbnail)
{
	struct buf full = oriented_jpeg(400, 300, 6);
	struct buf half = {full.data, full.len * 2 / 3};
	struct kernel_params p = defaults();

	p.resize_w = p.resize_h = 100;
	expect_error(&p, &half, VHERR_TRUNCATED, VHSTAGE_DECODE);
	free_buf(&full);
}

Test(vipskernel, fail_on_none_lets_truncated_jpeg_through)
{
	struct buf full = make_file(400, 300, F_JPEG);
	struct buf half = {full.data, full.len / 2};
	struct kernel_params p = defaults();
	struct kernel_result res = {0};
	VipsImage *out;

	p.fail_on = KFAIL_NONE;
	p.resize_w = p.resize_h = 100;
	out = run_ok(&p, &half, &res);
	cr_assert(res.out_w == 100 && res.out_h == 100);
	g_object_unref(out);
	kernel_result_release(&res);
	free_buf(&full);
}

Test(vipskernel, corrupt_png_is_corrupt)
{
	struct buf full = make_file(200, 150, F_PNG);
	struct kernel_params p = defaults();

	memset((uint8_t *)full.data + full.len / 2, 0xaa, 64);
	expect_error(&p, &full, VHERR_CORRUPT, VHSTAGE_DECODE);
	free_buf(&full);
}

Test(vipskernel, garbage_empty_and_header_only)
{
	static const char garbage[] = "this is not an image, just some text\n";
	struct buf g = {(void *)garbage, sizeof(garbage) - 1};
	struct buf empty = {(void *)garbage, 0};
	struct buf full = make_file(200, 150, F_JPEG);
	struct buf header = {full.data, 200};
	struct kernel_params p = defaults();

	expect_error(&p, &g, VHERR_NOT_IMAGE, VHSTAGE_DECODE);
	expect_error(&p, &empty, VHERR_EMPTY, VHSTAGE_DECODE);
	expect_error(&p, &header, VHERR_TRUNCATED, VHSTAGE_DECODE);
	free_buf(&full);
}

/* Sets the size in the SOF0 segment of a JPEG made by libjpeg. */
static void patch_jpeg_size(uint8_t *d, size_t len, int w, int h)
{
	for (size_t i = 2; i + 9 < len; i++) {
		if (d[i] == 0xff && d[i + 1] == 0xc0) {
			d[i + 5] = (uint8_t)(h >> 8);
			d[i + 6] = (uint8_t)h;
			d[i + 7] = (uint8_t)(w >> 8);
			d[i + 8] = (uint8_t)w;
			return;
		}
	}
	cr_assert_fail("no SOF0");
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return c ^ 0xffffffffu;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Sets the size in the IHDR chunk (always first, at byte 8) and fixes its CRC. */
static void patch_png_size(uint8_t *d, uint32_t w, uint32_t h)
{
	cr_assert_eq(memcmp(d + 12, "IHDR", 4), 0);
	put32(d + 16, w);
	put32(d + 20, h);
	put32(d + 29, crc32_png(d + 12, 17));
}

Test(vipskernel, decompression_bomb_refused_from_header)
{
	struct buf jpeg = make_file(16, 16, F_JPEG);
	struct buf png = make_file(16, 16, F_PNG);
	struct kernel_params p = defaults();
	gint64 t0;

	patch_jpeg_size(jpeg.data, jpeg.len, 60000, 60000);
	patch_png_size(png.data, 60000, 60000);
	p.resize_w = p.resize_h = 224;
	t0 = g_get_monotonic_time();
	expect_error(&p, &jpeg, VHERR_TOO_LARGE, VHSTAGE_DECODE);
	expect_error(&p, &png, VHERR_TOO_LARGE, VHSTAGE_DECODE);
	p.resize_w = p.resize_h = 0;
	expect_error(&p, &jpeg, VHERR_TOO_LARGE, VHSTAGE_DECODE);
	cr_assert_lt(g_get_monotonic_time() - t0, 500000, "refused from the header");
	free_buf(&jpeg);
	free_buf(&png);
}

Test(vipskernel, max_pixels_boundary_and_scaled_limit)
{
	struct buf in = make_file(100, 50, F_PNG);
	struct buf strip = make_file(2000, 1, F_PNG);
	struct kernel_params p = defaults();
	struct kernel_result res = {0};
	VipsImage *out;

	p.max_pixels = 5000;
	out = run_ok(&p, &in, &res);
	g_object_unref(out);
	kernel_result_release(&res);
	p.max_pixels = 4999;
	expect_error(&p, &in, VHERR_TOO_LARGE, VHSTAGE_DECODE);
	/* 2000x1 covering 224x224 would scale to 448000x224 */
	p.max_pixels = 1000000;
	p.resize_w = p.resize_h = 224;
	p.mode = GEOMETRY_CROP;
	expect_error(&p, &strip, VHERR_TOO_LARGE, VHSTAGE_TRANSFORM);
	free_buf(&in);
	free_buf(&strip);
}

Test(vipskernel, too_wide_for_jpeg_is_encode_error)
{
	struct buf in = make_file(66000, 2, F_PNG);
	struct kernel_params p = defaults();

	p.format = KFMT_JPEG;
	expect_error(&p, &in, VHERR_ENCODE, VHSTAGE_ENCODE);
	p.format = KFMT_WEBP;
	expect_error(&p, &in, VHERR_ENCODE, VHSTAGE_ENCODE);
	free_buf(&in);
}

Test(vipskernel, many_runs_one_kernel_per_format)
{
	struct buf in = make_file(320, 240, F_JPEG);
	struct buf bad = {in.data, in.len / 3};
	static const enum kernel_format fmts[] = {KFMT_JPEG, KFMT_PNG, KFMT_WEBP};

	for (int f = 0; f < 3; f++) {
		struct kernel_params p = defaults();
		struct kernel *k = kernel_new(&p);
		int before = objects_alive();

		p.resize_w = p.resize_h = 64;
		p.format = fmts[f];
		for (int i = 0; i < 30; i++) {
			struct kernel_result res = {0};
			struct vherr err = {0};
			int broken = i % 5 == 4;
			int rc = kernel_run(k, broken ? bad.data : in.data,
					    broken ? bad.len : in.len, &res, &err);

			cr_assert_eq(rc, broken ? -VHERR_TRUNCATED : 0, "%d: %s", i, err.msg);
			kernel_result_release(&res);
		}
		cr_assert_eq(objects_alive(), before, "format %d leaked", f);
		kernel_free(k);
	}
	free_buf(&in);
}

/* Several threads, one kernel each, no lock: every result is right and nothing
 * leaks. Assertions stay on the main thread. */
struct worker {
	const struct kernel_params *p;
	const struct buf *inputs; /* [0] good jpeg, [1] good png, [2] truncated jpeg */
	int wrong;		  /* results that did not match */
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct kernel *k = kernel_new(w->p);

	for (int i = 0; k && i < 40; i++) {
		const struct buf *in = &w->inputs[i % 3];
		struct kernel_result res = {0};
		struct vherr err = {0};
		int rc = kernel_run(k, in->data, in->len, &res, &err);
		int want = i % 3 == 2 ? -VHERR_TRUNCATED : 0;

		if (rc != want || (rc == 0 && (res.out_w != 96 || res.out_h != 96)) ||
		    strchr(err.msg, '\n'))
			w->wrong++;
		kernel_result_release(&res);
	}
	if (!k)
		w->wrong++;
	kernel_free(k);
	return NULL;
}

Test(vipskernel, threads_with_own_kernels)
{
	struct buf jpeg = make_file(300, 200, F_JPEG);
	struct buf inputs[3] = {jpeg, make_file(300, 200, F_PNG), {jpeg.data, jpeg.len / 2}};
	struct kernel_params p = defaults();
	struct worker w[4];
	pthread_t t[4];
	int before = objects_alive();

	p.resize_w = p.resize_h = 96;
	p.mode = GEOMETRY_CROP;
	p.format = KFMT_WEBP;
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.p = &p, .inputs = inputs};
		cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(w[i].wrong, 0, "thread %d: %d wrong results", i, w[i].wrong);
	}
	cr_assert_eq(objects_alive(), before);
	free_buf(&inputs[0]);
	free_buf(&inputs[1]);
}

/* ---- error messages belong to their file ----------------------------------- */

#define BAD_MAX	    24
#define BAD_THREADS 8
#define BAD_ROUNDS  5

struct bad_file {
	struct buf in;
	enum fmt fmt;
	int rc;
	char msg[VHERR_MSG_MAX];
};

struct bad_worker {
	const struct kernel_params *p;
	struct bad_file *files;
	int n, seed, differed, wrong_format;
	char first[2 * VHERR_MSG_MAX + 16];
};

static const char *const fmt_words[] = {"jpeg", "png", "webp", "tiff", "gif"};

/* Whether msg names a format other than f's (the loaders name their own). */
static int names_other_format(const char *msg, enum fmt f)
{
	for (int i = 0; i < 5; i++)
		if (i != (int)f && strcasestr(msg, fmt_words[i]))
			return 1;
	return 0;
}

static void *bad_work(void *arg)
{
	struct bad_worker *w = arg;
	struct kernel *k = kernel_new(w->p);

	cr_assert_not_null(k);
	for (int r = 0; r < BAD_ROUNDS; r++) {
		for (int i = 0; i < w->n; i++) {
			struct bad_file *f = &w->files[(i * 7 + w->seed + r) % w->n];
			struct kernel_result res = {0};
			struct vherr err = {0};
			int rc = kernel_run(k, f->in.data, f->in.len, &res, &err);

			kernel_result_release(&res);
			if (rc != f->rc || (rc && strcmp(err.msg, f->msg) != 0)) {
				if (!w->differed++)
					snprintf(w->first, sizeof(w->first), "'%s' vs '%s'",
						 rc ? err.msg : "ok", f->msg);
			}
			if (rc && names_other_format(err.msg, f->fmt))
				w->wrong_format++;
		}
	}
	kernel_free(k);
	return NULL;
}

/* Damaged files of five formats, decoded on 8 threads at once: each failure's message
 * is exactly the one it gets alone (-j1), and names no other format. */
Test(vipskernel, error_messages_belong_to_their_file, .timeout = 120)
{
	static const enum fmt fmts[] = {F_JPEG, F_PNG, F_WEBP, F_TIFF, F_GIF};
	struct bad_file files[BAD_MAX];
	struct bad_worker w[BAD_THREADS];
	pthread_t t[BAD_THREADS];
	struct kernel_params p = defaults();
	struct kernel *k;
	int n = 0, failing = 0, formats = 0;

	p.resize_w = p.resize_h = 64;
	p.format = KFMT_PNG;
	for (size_t f = 0; f < 5; f++) {
		struct buf whole = make_file(320, 240, fmts[f]);
		size_t cuts[] = {whole.len / 2, whole.len / 5, whole.len - 40};

		for (size_t c = 0; c < 3; c++) {
			struct bad_file *b = &files[n++];

			b->fmt = fmts[f];
			b->in.len = cuts[c];
			b->in.data = g_memdup2(whole.data, cuts[c]);
		}
		/* and one with garbage in its middle */
		files[n].fmt = fmts[f];
		files[n].in.len = whole.len;
		files[n].in.data = g_memdup2(whole.data, whole.len);
		memset((uint8_t *)files[n].in.data + whole.len / 3, 0x5a, whole.len / 8);
		n++;
		free_buf(&whole);
	}
	/* alone: the reference messages */
	k = kernel_new(&p);
	cr_assert_not_null(k);
	for (int i = 0; i < n; i++) {
		struct kernel_result res = {0};
		struct vherr err = {0};

		files[i].rc = kernel_run(k, files[i].in.data, files[i].in.len, &res, &err);
		kernel_result_release(&res);
		snprintf(files[i].msg, sizeof(files[i].msg), "%s", err.msg);
		if (files[i].rc) {
			failing++;
			cr_expect_not(names_other_format(err.msg, files[i].fmt),
				      "format %d: '%s' names another format", files[i].fmt,
				      err.msg);
		}
	}
	kernel_free(k);
	for (int f = 0; f < 5; f++)
		for (int i = 0; i < n; i++)
			if (files[i].fmt == fmts[f] && files[i].rc) {
				formats++;
				break;
			}
	cr_assert_geq(failing, 10, "only %d of %d damaged files fail", failing, n);
	cr_assert_geq(formats, 4, "failures in only %d formats", formats);
	for (int i = 0; i < BAD_THREADS; i++) {
		w[i] = (struct bad_worker){.p = &p, .files = files, .n = n, .seed = i * 5};
		cr_assert_eq(pthread_create(&t[i], NULL, bad_work, &w[i]), 0);
	}
	for (int i = 0; i < BAD_THREADS; i++) {
		pthread_join(t[i], NULL);
		cr_expect_eq(w[i].differed, 0,
			     "thread %d: %d messages differ from -j1, first %s", i,
			     w[i].differed, w[i].first);
		cr_expect_eq(w[i].wrong_format, 0, "thread %d: %d messages name another format",
			     i, w[i].wrong_format);
	}
	for (int i = 0; i < n; i++)
		g_free(files[i].in.data);
}

/* ---- small helpers of kernel.h -------------------------------------------- */

Test(vipskernel, result_release_is_idempotent)
{
	struct kernel_result res = {0};

	kernel_result_release(&res);
	kernel_result_release(&res);
	kernel_result_release(NULL);
	kernel_free(NULL);
}

Test(vipskernel, format_and_fail_on_parsers)
{
	enum kernel_format f;
	enum kernel_fail_on fo;

	cr_assert(kernel_format_parse("jpg", &f) == 0 && f == KFMT_JPEG);
	cr_assert(kernel_format_parse("jpeg", &f) == 0 && f == KFMT_JPEG);
	cr_assert(kernel_format_parse("png", &f) == 0 && f == KFMT_PNG);
	cr_assert(kernel_format_parse("webp", &f) == 0 && f == KFMT_WEBP);
	cr_assert(kernel_format_parse("keep", &f) == 0 && f == KFMT_KEEP);
	cr_assert_eq(kernel_format_parse("gif", &f), -1);
	cr_assert_eq(kernel_format_parse(NULL, &f), -1);
	cr_assert_str_eq(kernel_format_ext(KFMT_JPEG), "jpg");
	cr_assert_str_eq(kernel_format_ext(KFMT_PNG), "png");
	cr_assert_str_eq(kernel_format_ext(KFMT_WEBP), "webp");
	cr_assert_str_eq(kernel_format_ext(KFMT_KEEP), "");
	cr_assert(kernel_fail_on_parse("none", &fo) == 0 && fo == KFAIL_NONE);
	cr_assert(kernel_fail_on_parse("truncated", &fo) == 0 && fo == KFAIL_TRUNCATED);
	cr_assert(kernel_fail_on_parse("error", &fo) == 0 && fo == KFAIL_ERROR);
	cr_assert(kernel_fail_on_parse("warning", &fo) == 0 && fo == KFAIL_WARNING);
	cr_assert_eq(kernel_fail_on_parse("all", &fo), -1);
}

Test(vipskernel, describe_lists_ops_in_order)
{
	struct kernel_params p = defaults();
	char ops[8][KERNEL_OP_MAX];
	int n;

	n = kernel_describe(&p, ops, 8);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(ops[0], "autorotate");
	cr_assert_str_eq(ops[1], "format:keep:q75:420");

	p.resize_w = p.resize_h = 224;
	p.mode = GEOMETRY_CROP;
	p.gray = 1;
	p.blur_sigma = 1.5;
	p.sharpen = 1;
	p.format = KFMT_JPEG;
	p.quality = 85;
	p.subsample = KSUB_444;
	n = kernel_describe(&p, ops, 8);
	cr_assert_eq(n, 6);
	cr_assert_str_eq(ops[1], "resize:224x224:crop");
	cr_assert_str_eq(ops[2], "gray");
	cr_assert_str_eq(ops[3], "blur:1.5");
	cr_assert_str_eq(ops[4], "sharpen");
	cr_assert_str_eq(ops[5], "format:jpg:q85:444");

	p.autorotate = 0;
	p.format = KFMT_PNG;
	n = kernel_describe(&p, ops, 8);
	cr_assert_eq(n, 5);
	cr_assert_str_eq(ops[0], "resize:224x224:crop");
	cr_assert_str_eq(ops[4], "format:png");
	p.format = KFMT_WEBP;
	p.quality = 0; /* the default, named */
	cr_assert_eq(kernel_describe(&p, ops, 8), 5);
	cr_assert_str_eq(ops[4], "format:webp:q75");
	cr_assert_eq(kernel_describe(&p, ops, 2), 2, "truncated to max");
}
