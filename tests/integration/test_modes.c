/* A sweep of the resize modes over many sizes and aspect ratios, checking each output's
 * dimensions as the modes define them; then format conversion, --gray, EXIF orientation
 * and alpha flattening. One vhprep run per (mode, target), over every input at once. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "itest.h"

TestSuite(modes, .init = itest_setup, .fini = itest_teardown, .timeout = 120);

/* Inputs: tiny, extreme aspect ratios both ways, off-by-one, common photo sizes, and
 * several smaller than every target (scaled up). The extreme ones are PNG: a JPEG side
 * cannot exceed 65535, and covering 224x160 with a 3000x7 image needs 68571. */
static const struct sweep_input {
	const char *name;
	int w, h, bands;
} sweep_inputs[] = {
    {"one_1x1.png", 1, 1, 3},
    {"tall_7x3000.png", 7, 3000, 3},
    {"wide_3000x7.png", 3000, 7, 3},
    {"small_64x48.jpg", 64, 48, 3},
    {"offby1_223x224.jpg", 223, 224, 3},
    {"land_500x375.jpg", 500, 375, 3},
    {"port_375x500.jpg", 375, 500, 3},
    {"big_2000x1500.jpg", 2000, 1500, 3},
    {"up_50x30.png", 50, 30, 3},
    {"up_30x50.jpg", 30, 50, 3},
    {"up_100x100.png", 100, 100, 4},
    {"up_10x200.png", 10, 200, 1},
    {"exact_224x224.jpg", 224, 224, 3},
    {"exact_224x160.webp", 224, 160, 3},
    {"odd_101x37.png", 101, 37, 3},
};
#define NSWEEP (sizeof(sweep_inputs) / sizeof(sweep_inputs[0]))

static const struct target {
	const char *arg;
	int w, h;
} targets[] = {{"224", 224, 224}, {"224x160", 224, 160}, {"100x300", 100, 300}};

static char *make_sweep_source(void)
{
	char *src = itest_path("src");

	for (size_t i = 0; i < NSWEEP; i++) {
		char *path = itest_fmt("%s/%s", src, sweep_inputs[i].name);

		itest_make_image(path, sweep_inputs[i].w, sweep_inputs[i].h,
				 sweep_inputs[i].bands, (unsigned)i + 1, 0);
		free(path);
	}
	return src;
}

/* Whether side is other_in scaled by target_side / constrained_in (the aspect kept):
 * within half a pixel of exact, or 1 where exact is below 1. */
static int side_ok(int side, int other_in, int target_side, int constrained_in)
{
	double exact = (double)other_in * target_side / constrained_in;

	if (exact < 1.0)
		return side == 1;
	return fabs(side - exact) <= 0.5 + 1e-9;
}

/* Checks one output's size against the mode's definition; returns nothing, asserts. */
static void check_dims(const char *mode, const struct target *t, const struct sweep_input *in,
		       int w, int h)
{
	const char *what = in->name;

	if (!strcmp(mode, "stretch") || !strcmp(mode, "crop") || !strcmp(mode, "pad")) {
		cr_expect(w == t->w && h == t->h, "%s %s %s: %dx%d, want exactly %dx%d", mode,
			  t->arg, what, w, h, t->w, t->h);
		return;
	}
	if (!strcmp(mode, "fit"))
		cr_expect(w <= t->w && h <= t->h, "fit %s %s: %dx%d is not inside %dx%d",
			  t->arg, what, w, h, t->w, t->h);
	else
		cr_expect(w >= t->w && h >= t->h, "short %s %s: %dx%d does not cover %dx%d",
			  t->arg, what, w, h, t->w, t->h);
	cr_expect(w == t->w || h == t->h, "%s %s %s: %dx%d has no side equal to %dx%d", mode,
		  t->arg, what, w, h, t->w, t->h);
	if (w == t->w)
		cr_expect(side_ok(h, in->h, t->w, in->w),
			  "%s %s %s: %dx%d does not keep the aspect of %dx%d (height %.2f)",
			  mode, t->arg, what, w, h, in->w, in->h, (double)in->h * t->w / in->w);
	else
		cr_expect(side_ok(w, in->w, t->h, in->h),
			  "%s %s %s: %dx%d does not keep the aspect of %dx%d (width %.2f)",
			  mode, t->arg, what, w, h, in->w, in->h, (double)in->w * t->h / in->h);
}

/* pad: where the fitted image leaves a margin of 2+ pixels, the margin is the default
 * background, black. Only for PNG outputs (lossless). */
static void check_pad_margin(const char *path, const struct target *t,
			     const struct sweep_input *in)
{
	int width_exact = (long)t->w * in->h <= (long)t->h * in->w;
	int fw = width_exact ? t->w : (int)lround((double)in->w * t->h / in->h);
	int fh = width_exact ? (int)lround((double)in->h * t->w / in->w) : t->h;
	int x = 0, y = 0;
	struct itest_image img;

	if (!strstr(in->name, ".png") || (t->w - fw < 4 && t->h - fh < 4))
		return;
	if (t->w - fw >= 4)
		y = t->h / 2;
	else
		x = t->w / 2;
	itest_image_info(path, &img, 0);
	for (int b = 0; b < img.bands && b < 3; b++)
		cr_expect_eq(itest_image_pixel(path, x, y, b), 0.0,
			     "pad %s %s: the margin pixel (%d,%d) band %d is not black", t->arg,
			     in->name, x, y, b);
}

/* short keeps the whole covering image: 3000x7 covering 100x300 is 128571x300. Such
 * outputs (tens of megapixels of PNG) are left out of the sweep to keep it fast; each
 * extreme input still meets short with at least one target. */
static int too_big_for_the_sweep(const char *mode, const struct target *t,
				 const struct sweep_input *in)
{
	double s;

	if (strcmp(mode, "short") != 0)
		return 0;
	s = fmax((double)t->w / in->w, (double)t->h / in->h);
	return (double)in->w * s * (double)in->h * s > 12e6;
}

static void sweep(const char *mode)
{
	char *src = make_sweep_source();

	for (size_t ti = 0; ti < sizeof(targets) / sizeof(targets[0]); ti++) {
		const struct target *t = &targets[ti];
		char *out = itest_fmt("%s/out-%s-%s", itest_root, mode, t->arg);
		struct itest_proc p;
		json_t *lines, *line;
		size_t i;
		int seen = 0;

		struct itest_argv a = {0};
		size_t expected = NSWEEP;

		itest_argv_add(&a, itest_bin());
		itest_argv_add(&a, "-q");
		itest_argv_add(&a, "--resize");
		itest_argv_add(&a, t->arg);
		itest_argv_add(&a, "--resize-mode");
		itest_argv_add(&a, mode);
		for (size_t k = 0; k < NSWEEP; k++)
			if (too_big_for_the_sweep(mode, t, &sweep_inputs[k])) {
				itest_argv_add(&a, "--exclude");
				itest_argv_add(&a, sweep_inputs[k].name);
				expected--;
			}
		itest_argv_add(&a, "-o");
		itest_argv_add(&a, out);
		itest_argv_add(&a, src);
		itest_vhprep_argv(&p, &a);
		itest_argv_free(&a);
		itest_assert_exit(&p, 0);
		lines = itest_check_outputs(out, "processed_images", 1);
		json_array_foreach(lines, i, line)
		{
			const char *file = itest_jstr(line, "file");
			json_t *meta = json_object_get(line, "metadata");
			const struct sweep_input *in = NULL;
			struct itest_image img;
			char *path;

			if (!strcmp(file, "processing_metadata.csv"))
				continue;
			for (size_t k = 0; k < NSWEEP; k++) {
				size_t n = strcspn(sweep_inputs[k].name, ".");

				if (!strncmp(file + strlen("processed_images/"),
					     sweep_inputs[k].name, n) &&
				    file[strlen("processed_images/") + n] == '.')
					in = &sweep_inputs[k];
			}
			cr_assert_not_null(in, "unexpected output %s", file);
			seen++;
			path = itest_fmt("%s/%s", out, file);
			itest_image_info(path, &img, 0);
			check_dims(mode, t, in, img.w, img.h);
			cr_expect_eq(itest_jint(meta, "width"), img.w, "%s: metadata width",
				     file);
			cr_expect_eq(itest_jint(meta, "height"), img.h, "%s: metadata height",
				     file);
			cr_expect_eq(itest_jint(meta, "original_width"), in->w, "%s", file);
			cr_expect_eq(itest_jint(meta, "original_height"), in->h, "%s", file);
			if (!strcmp(mode, "pad"))
				check_pad_margin(path, t, in);
			free(path);
		}
		cr_expect_eq(seen, (int)expected, "%s %s: %d outputs of %zu inputs", mode,
			     t->arg, seen, expected);
		json_decref(lines);
		itest_proc_release(&p);
		itest_rmtree(out);
		free(out);
	}
	free(src);
}

Test(modes, stretch)
{
	sweep("stretch");
}

Test(modes, fit)
{
	sweep("fit");
}

Test(modes, short_side)
{
	sweep("short");
}

Test(modes, crop)
{
	sweep("crop");
}

Test(modes, pad)
{
	sweep("pad");
}

/* --resize N with short: the short side becomes N (the help's promise), both ways. */
Test(modes, short_n_makes_the_short_side_n)
{
	char *src = itest_path("src");
	char *out = itest_path("out");
	char *a = itest_fmt("%s/land.jpg", src), *b = itest_fmt("%s/port.jpg", src);
	char *oa = itest_fmt("%s/processed_images/land.jpg", out);
	char *ob = itest_fmt("%s/processed_images/port.jpg", out);
	struct itest_image ia, ib;
	struct itest_proc p;

	itest_make_image(a, 640, 480, 3, 1, 0);
	itest_make_image(b, 480, 640, 3, 2, 0);
	itest_vhprep(&p, "-q", "--resize", "224", "--resize-mode", "short", "-o", out, src,
		     NULL);
	itest_assert_exit(&p, 0);
	itest_image_info(oa, &ia, 0);
	itest_image_info(ob, &ib, 0);
	cr_expect(ia.w == 299 && ia.h == 224, "640x480 short 224: %dx%d, want 299x224", ia.w,
		  ia.h);
	cr_expect(ib.w == 224 && ib.h == 299, "480x640 short 224: %dx%d, want 224x299", ib.w,
		  ib.h);
	itest_proc_release(&p);
	free(a);
	free(b);
	free(oa);
	free(ob);
	free(out);
	free(src);
}

static void check_format(const char *fmt)
{
	static const struct {
		const char *rel;
		int bands;
	} ins[] = {{"a.jpg", 3}, {"b.png", 3}, {"c.webp", 3}, {"d.tif", 3}, {"e.png", 4}};
	char *src = itest_path("src");
	char *out = itest_fmt("%s/out-%s", itest_root, fmt);
	struct itest_list files;
	struct itest_proc p;
	json_t *lines, *line;
	size_t i;

	for (i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
		char *path = itest_fmt("%s/%s", src, ins[i].rel);

		if (!itest_exists(path))
			itest_make_image(path, 48, 32, ins[i].bands, (unsigned)i, 0);
		free(path);
	}
	itest_vhprep(&p, "-q", "--format", fmt, "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	lines = itest_check_outputs(out, "processed_images", 1);
	{
		char *root = itest_fmt("%s/processed_images", out);

		itest_list_files(root, &files);
		free(root);
	}
	cr_expect_eq(files.n, sizeof(ins) / sizeof(ins[0]), "--format %s: %zu outputs", fmt,
		     files.n);
	for (i = 0; i < files.n; i++) {
		char *path = itest_fmt("%s/processed_images/%s", out, files.v[i]);
		const char *dot = strrchr(files.v[i], '.');
		struct itest_image img;
		char want_loader[32];

		cr_expect(dot && !strcmp(dot + 1, fmt), "--format %s: output '%s'", fmt,
			  files.v[i]);
		cr_expect_str_eq(itest_sniff(path), fmt, "--format %s: %s is not that format",
				 fmt, files.v[i]);
		itest_image_info(path, &img, 0);
		snprintf(want_loader, sizeof(want_loader), "Load%s",
			 !strcmp(fmt, "jpg")   ? "Jpeg"
			 : !strcmp(fmt, "png") ? "Png"
					       : "Webp");
		cr_expect(strstr(img.loader, want_loader), "%s: read by %s", files.v[i],
			  img.loader);
		cr_expect(img.w == 48 && img.h == 32, "%s: %dx%d", files.v[i], img.w, img.h);
		if (!strcmp(fmt, "jpg"))
			cr_expect_eq(img.bands, 3, "%s: %d bands in a JPEG", files.v[i],
				     img.bands);
		free(path);
	}
	json_array_foreach(lines, i, line)
	{
		if (strcmp(itest_jstr(line, "file"), "processing_metadata.csv"))
			cr_expect_str_eq(
			    itest_jstr(json_object_get(line, "metadata"), "format"), fmt, "%s",
			    itest_jstr(line, "file"));
	}
	/* the stem is kept: a.jpg -> a.<fmt> */
	{
		char *want = itest_fmt("a.%s", fmt);

		cr_expect(itest_list_has(&files, want), "no %s among the outputs", want);
		free(want);
	}
	itest_list_free(&files);
	json_decref(lines);
	itest_proc_release(&p);
	free(out);
	free(src);
}

Test(modes, format_png)
{
	check_format("png");
}

Test(modes, format_webp)
{
	check_format("webp");
}

Test(modes, format_jpg)
{
	check_format("jpg");
}

Test(modes, keep_maps_other_formats_to_png)
{
	char *src = itest_path("src");
	char *out = itest_path("out");
	char *tif = itest_fmt("%s/scan.tif", src), *gif = itest_fmt("%s/anim.gif", src);
	char *otif = itest_fmt("%s/processed_images/scan.png", out);
	char *ogif = itest_fmt("%s/processed_images/anim.png", out);
	struct itest_proc p;

	itest_make_image(tif, 30, 20, 3, 1, 0);
	itest_make_image(gif, 30, 20, 3, 2, 0);
	itest_vhprep(&p, "-q", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	cr_expect(itest_exists(otif) && !strcmp(itest_sniff(otif), "png"), "tif -> png");
	cr_expect(itest_exists(ogif) && !strcmp(itest_sniff(ogif), "png"), "gif -> png");
	itest_proc_release(&p);
	free(tif);
	free(gif);
	free(otif);
	free(ogif);
	free(out);
	free(src);
}

Test(modes, gray_gives_one_band)
{
	static const struct {
		const char *rel;
		int bands;
	} ins[] = {
	    {"rgb.jpg", 3}, {"rgb.png", 3}, {"grey.png", 1}, {"rgb.webp", 3}, {"rgba.png", 4}};
	char *src = itest_path("src");
	char *out = itest_path("out");
	struct itest_proc p;

	for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
		char *path = itest_fmt("%s/%s", src, ins[i].rel);

		itest_make_image(path, 40, 30, ins[i].bands, (unsigned)i, 0);
		free(path);
	}
	itest_vhprep(&p, "-q", "--gray", "--resize", "20", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
		char *path = itest_fmt("%s/processed_images/%s", out, ins[i].rel);
		struct itest_image img;

		itest_image_info(path, &img, 0);
		if (strstr(ins[i].rel, ".webp") && img.bands == 3) {
			/* WebP has no grey mode: it decodes as RGB, with R = G = B */
			for (int xy = 0; xy < 20; xy += 7) {
				double r = itest_image_pixel(path, xy, xy, 0);

				cr_expect(r == itest_image_pixel(path, xy, xy, 1) &&
					      r == itest_image_pixel(path, xy, xy, 2),
					  "--gray: %s is not grey at (%d,%d)", ins[i].rel, xy,
					  xy);
			}
		} else {
			cr_expect_eq(img.bands, 1,
				     "--gray: %s has %d bands, want 1 (--help: "
				     "\"single-band grey output\")",
				     ins[i].rel, img.bands);
		}
		cr_expect(img.w == 20 && img.h == 20, "%s: %dx%d", ins[i].rel, img.w, img.h);
		free(path);
	}
	{
		json_t *lines = itest_check_outputs(out, "processed_images", 1);

		json_decref(lines);
	}
	itest_proc_release(&p);
	free(out);
	free(src);
}

/* The EXIF orientation of an output (1 when there is none). */
static int output_orientation(const char *path)
{
	size_t len;
	char *data = itest_slurp(path, &len);
	VipsImage *img = vips_image_new_from_buffer(data, len, "", NULL);
	int o;

	cr_assert_not_null(img, "%s: %s", path, vips_error_buffer());
	o = vips_image_get_orientation(img);
	g_object_unref(img);
	free(data);
	return o;
}

Test(modes, exif_orientation_6)
{
	char *src = itest_path("src");
	char *img = itest_fmt("%s/phone/IMG_0006.jpg", src);
	const char *variants[][2] = {{"out-auto", NULL}, {"out-raw", "--no-autorotate"}};

	itest_make_image(img, 300, 200, 3, 7, 6);
	for (int v = 0; v < 2; v++) {
		char *out = itest_path(variants[v][0]);
		char *res = itest_fmt("%s/processed_images/phone/IMG_0006.jpg", out);
		struct itest_proc p;
		struct itest_image info;
		json_t *lines, *meta;

		if (variants[v][1])
			itest_vhprep(&p, "-q", variants[v][1], "-o", out, src, NULL);
		else
			itest_vhprep(&p, "-q", "-o", out, src, NULL);
		itest_assert_exit(&p, 0);
		itest_image_info(res, &info, 0);
		if (v == 0) {
			cr_expect(info.w == 200 && info.h == 300,
				  "orientation 6, autorotated: %dx%d, want 200x300", info.w,
				  info.h);
			cr_expect_eq(
			    output_orientation(res), 1,
			    "the rotated output still says orientation %d: viewers would "
			    "turn it twice",
			    output_orientation(res));
		} else {
			cr_expect(info.w == 300 && info.h == 200,
				  "orientation 6, --no-autorotate: %dx%d, want 300x200", info.w,
				  info.h);
		}
		lines = itest_check_outputs(out, "processed_images", 1);
		meta = json_object_get(json_array_get(lines, 0), "metadata");
		cr_expect_eq(itest_jint(meta, "original_width"), 300, "stored width");
		cr_expect_eq(itest_jint(meta, "original_height"), 200, "stored height");
		cr_expect_eq(itest_jint(meta, "width"), info.w);
		cr_expect_eq(itest_jint(meta, "height"), info.h);
		json_decref(lines);
		itest_proc_release(&p);
		free(res);
		free(out);
	}
	/* with a resize: the target applies to the upright image */
	{
		char *out = itest_path("out-fit");
		char *res = itest_fmt("%s/processed_images/phone/IMG_0006.jpg", out);
		struct itest_image info;
		struct itest_proc p;

		itest_vhprep(&p, "-q", "--resize", "100x300", "--resize-mode", "fit", "-o", out,
			     src, NULL);
		itest_assert_exit(&p, 0);
		itest_image_info(res, &info, 0);
		cr_expect(info.w == 100 && info.h == 150,
			  "orientation 6 (upright 200x300) fit 100x300: %dx%d, want 100x150",
			  info.w, info.h);
		itest_proc_release(&p);
		free(res);
		free(out);
	}
	free(img);
	free(src);
}

Test(modes, rgba_png_to_jpg_has_three_bands)
{
	char *src = itest_path("src");
	char *in = itest_fmt("%s/logo.png", src);
	char *out = itest_path("out");
	char *res = itest_fmt("%s/processed_images/logo.jpg", out);
	struct itest_image info;
	struct itest_proc p;

	itest_make_image(in, 64, 64, 4, 3, 0);
	itest_vhprep(&p, "-q", "--format", "jpg", "--resize", "32", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	itest_image_info(res, &info, 0);
	cr_expect_eq(info.bands, 3, "RGBA PNG -> JPEG: %d bands", info.bands);
	cr_expect_str_eq(itest_sniff(res), "jpg");
	cr_expect(info.w == 32 && info.h == 32);
	itest_proc_release(&p);
	free(res);
	free(out);
	free(in);
	free(src);
}
