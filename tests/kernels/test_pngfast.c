/* The png-fast kernel, against the libvips kernel: verdicts, pictures, bands.
 *
 * Inputs: the public PngSuite (tests/fixtures/pngsuite, free to use and redistribute:
 * see its PngSuite.LICENSE), and PNGs drawn and encoded here with libvips (8- and 16-bit,
 * alpha, an eXIf chunk spliced in). Outputs are decoded with libvips. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "kernels/kernel.h"
#include "kernels/pngfast.h"
#include "kernels/vipskernel.h"

/* A malloc'd encoded file. */
struct buf {
	uint8_t *data;
	size_t len;
};

/* Decoded 8-bit pixels (malloc'd). */
struct pix {
	uint8_t *p;
	int w, h, bands;
};

static void setup(void)
{
	struct vherr err = {0};

	cr_assert_eq(kernel_global_init("test_pngfast", &err), 0, "%s", err.msg);
}

static void teardown(void)
{
	kernel_global_shutdown();
}

TestSuite(pngfast, .init = setup, .fini = teardown);

static struct kernel_params defaults(void)
{
	struct kernel_params p = {
	    .resize_w = 224,
	    .resize_h = 224,
	    .mode = GEOMETRY_STRETCH,
	    .autorotate = 1,
	    .format = KFMT_KEEP,
	    .quality = KERNEL_QUALITY_DEFAULT,
	    .max_pixels = 100000000,
	    .fail_on = KFAIL_TRUNCATED,
	    .choice = KERNEL_AUTO,
	    .background = {255, 255, 255},
	};
	return p;
}

static void free_buf(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

static struct buf read_fixture(const char *name)
{
	const char *src = getenv("VHPREP_SOURCE_DIR");
	char path[4096];
	struct buf b = {0};
	FILE *f;
	long n;

	cr_assert_not_null(src, "VHPREP_SOURCE_DIR is not set (run through ctest)");
	snprintf(path, sizeof(path), "%s/tests/fixtures/pngsuite/%s", src, name);
	f = fopen(path, "rb");
	cr_assert_not_null(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b.len = (size_t)n;
	b.data = malloc(b.len + 1);
	cr_assert_eq(fread(b.data, 1, b.len, f), b.len);
	fclose(f);
	return b;
}

/* ---- drawing and encoding ---------------------------------------------------- */

/* A w x h picture of `bands` 8-bit bands (or 16-bit with wide), photo-like: smooth
 * gradients, a hard-edged disc and a few thin lines; with alpha (bands 2 or 4), a
 * transparent border, a half-transparent band and an opaque middle. */
static void *draw(int w, int h, int bands, int wide)
{
	size_t n = (size_t)w * h * bands;
	uint16_t *p16 = wide ? malloc(n * 2) : NULL;
	uint8_t *p8 = wide ? NULL : malloc(n);
	int colours = bands >= 3 ? 3 : 1;

	cr_assert(p16 || p8);
	for (int y = 0; y < h; y++) {
		for (int x = 0; x < w; x++) {
			int dx = x - w / 2, dy = y - h / 3;
			int disc = dx * dx + dy * dy < (w * w) / 25;
			int line = (x + 2 * y) % (w / 5 + 1) < 2 && y > h / 2;
			size_t k = ((size_t)y * w + x) * bands;

			for (int c = 0; c < colours; c++) {
				int v = 30 + (x * 150 / w) * (c + 1) / 3 + y * 60 / h;

				v = disc ? 230 - c * 90 : line ? 25 : v;
				if (wide)
					p16[k + c] = (uint16_t)(v * 257 + (x * 31 + y) % 200);
				else
					p8[k + c] = (uint8_t)v;
			}
			if (bands == 2 || bands == 4) {
				int edge =
				    x < w / 8 || y < h / 8 || x >= w - w / 8 || y >= h - h / 8;
				int a = edge ? 0 : y < h / 4 ? 128 : 255;

				if (wide)
					p16[k + colours] = (uint16_t)(a * 257);
				else
					p8[k + colours] = (uint8_t)a;
			}
		}
	}
	return wide ? (void *)p16 : (void *)p8;
}

/* The pixels encoded as a PNG by libvips. */
static struct buf encode_png(const void *pixels, int w, int h, int bands, int wide)
{
	VipsImage *im = vips_image_new_from_memory_copy(
	    pixels, (size_t)w * h * bands * (wide ? 2 : 1), w, h, bands,
	    wide ? VIPS_FORMAT_USHORT : VIPS_FORMAT_UCHAR);
	void *out = NULL;
	size_t len = 0;
	struct buf b;

	cr_assert_not_null(im);
	im->Type = bands >= 3 ? (wide ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_sRGB)
			      : (wide ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_B_W);
	cr_assert_eq(
	    vips_pngsave_buffer(im, &out, &len, "bitdepth", wide ? 16 : 8, "strip", TRUE, NULL),
	    0, "%s", vips_error_buffer());
	g_object_unref(im);
	b.data = malloc(len);
	memcpy(b.data, out, len);
	b.len = len;
	g_free(out);
	return b;
}

static struct buf drawn_png(int w, int h, int bands, int wide)
{
	void *px = draw(w, h, bands, wide);
	struct buf b = encode_png(px, w, h, bands, wide);

	free(px);
	return b;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* png with one chunk (type, data[0..n)) spliced in after its IHDR. */
static struct buf with_chunk(const struct buf *png, const char *type, const uint8_t *data,
			     size_t n)
{
	struct buf b = {malloc(png->len + 12 + n), png->len + 12 + n};
	uint8_t *c = b.data + 33;

	memcpy(b.data, png->data, 33);
	put32(c, (uint32_t)n);
	memcpy(c + 4, type, 4);
	memcpy(c + 8, data, n);
	put32(c + 8 + n, libdeflate_crc32(0, c + 4, n + 4));
	memcpy(c + 12 + n, png->data + 33, png->len - 33);
	return b;
}

/* An eXIf chunk's data: little-endian TIFF, IFD0 holding Orientation = o. */
static struct buf with_orientation(const struct buf *png, int o)
{
	uint8_t tiff[26] = {'I', 'I', 42, 0, 8, 0,	    0, 0, 1, 0, 0x12, 0x01, 3,
			    0,	 1,   0,  0, 0, (uint8_t)o, 0, 0, 0, 0, 0,    0,    0};

	return with_chunk(png, "eXIf", tiff, sizeof(tiff));
}

/* ---- running and decoding ----------------------------------------------------- */

static struct pix decode(const struct kernel_result *res)
{
	VipsImage *im = vips_image_new_from_buffer(res->data, res->len, "", NULL);
	struct pix x = {0};
	size_t n;
	void *mem;

	cr_assert_not_null(im, "%s", vips_error_buffer());
	mem = vips_image_write_to_memory(im, &n);
	cr_assert_not_null(mem);
	cr_assert_eq(im->BandFmt, VIPS_FORMAT_UCHAR);
	x.w = im->Xsize;
	x.h = im->Ysize;
	x.bands = im->Bands;
	x.p = malloc(n);
	memcpy(x.p, mem, n);
	g_free(mem);
	g_object_unref(im);
	return x;
}

/* Runs kernel_run (choice in p) on in; asserts success and the kernel's name. */
static struct pix run_ok(const struct kernel_params *p, const struct buf *in, const char *want,
			 struct kernel_result *res_out)
{
	struct kernel *k = kernel_new(p);
	struct kernel_result res = {0};
	struct vherr err = {0};
	struct pix x;

	cr_assert_not_null(k);
	cr_assert_eq(kernel_run(k, in->data, in->len, &res, &err), 0, "%s", err.msg);
	cr_assert_str_eq(res.kernel, want);
	x = decode(&res);
	if (res_out)
		*res_out = res;
	else
		kernel_result_release(&res);
	kernel_free(k);
	return x;
}

/* png-fast's and libvips' pictures of in under p. */
static void both(struct kernel_params p, const struct buf *in, struct pix *fast,
		 struct pix *vips)
{
	p.choice = KERNEL_AUTO;
	*fast = run_ok(&p, in, "png-fast", NULL);
	p.choice = KERNEL_VIPS;
	*vips = run_ok(&p, in, "libvips", NULL);
	cr_assert_eq(fast->w, vips->w);
	cr_assert_eq(fast->h, vips->h);
	cr_assert_eq(fast->bands, vips->bands, "bands: png-fast %d, libvips %d", fast->bands,
		     vips->bands);
}

/* Mean absolute difference of the colour bands (premultiplied when there is alpha: what
 * shows) and, in *alpha, of the alpha band (0 without). */
static double mad(const struct pix *a, const struct pix *b, double *alpha)
{
	int colours = a->bands >= 3 ? 3 : 1, has_alpha = a->bands == 2 || a->bands == 4;
	double sum = 0, asum = 0;
	size_t n = (size_t)a->w * a->h;

	for (size_t i = 0; i < n; i++) {
		const uint8_t *x = a->p + i * a->bands, *y = b->p + i * b->bands;
		int ax = has_alpha ? x[colours] : 255, ay = has_alpha ? y[colours] : 255;

		for (int c = 0; c < colours; c++)
			sum += abs(x[c] * ax - y[c] * ay) / 255.0;
		asum += abs(ax - ay);
	}
	if (alpha)
		*alpha = asum / n;
	return sum / n / colours;
}

static void free_pix(struct pix *x)
{
	free(x->p);
	x->p = NULL;
}

/* ---- which files it takes --------------------------------------------------------- */

Test(pngfast, accepts_png_work_without_filters_or_colour_management)
{
	struct kernel_params p = defaults();
	struct buf png = drawn_png(40, 30, 3, 0);
	uint8_t icc[16] = "sRGB\0\0x";
	struct buf tagged = with_chunk(&png, "iCCP", icc, sizeof(icc));

	cr_assert(pngfast_accepts(&p, png.data, png.len));
	p.format = KFMT_JPEG;
	cr_assert(pngfast_accepts(&p, png.data, png.len), "PNG to JPEG");
	p.format = KFMT_WEBP;
	cr_assert_not(pngfast_accepts(&p, png.data, png.len), "webp out is libvips'");
	p = defaults();
	p.sharpen = 1;
	cr_assert_not(pngfast_accepts(&p, png.data, png.len));
	p = defaults();
	p.blur_sigma = 1;
	cr_assert_not(pngfast_accepts(&p, png.data, png.len));
	p = defaults();
	p.fail_on = KFAIL_WARNING;
	cr_assert_not(pngfast_accepts(&p, png.data, png.len), "libpng's warnings");
	p.fail_on = KFAIL_NONE;
	cr_assert_not(pngfast_accepts(&p, png.data, png.len));
	p = defaults();
	cr_assert_not(pngfast_accepts(&p, tagged.data, tagged.len), "ICC profile");
	cr_assert_not(pngfast_accepts(&p, png.data, 20), "cut inside the IHDR");
	cr_assert_not(pngfast_accepts(&p, NULL, 0));
	png.data[30] ^= 1; /* the IHDR CRC */
	cr_assert_not(pngfast_accepts(&p, png.data, png.len), "bad IHDR CRC");
	free_buf(&png);
	free_buf(&tagged);
}

/* ---- verdicts ------------------------------------------------------------------- */

/* The code kernel_run (choice) gives for in under p, 0 for success. */
static int verdict(struct kernel_params p, enum kernel_choice choice, const struct buf *in,
		   const char **kernel)
{
	struct kernel *k;
	struct kernel_result res = {0};
	struct vherr err = {0};
	int rc;

	p.choice = choice;
	k = kernel_new(&p);
	cr_assert_not_null(k);
	rc = kernel_run(k, in->data, in->len, &res, &err);
	if (kernel)
		*kernel = rc ? NULL : res.kernel;
	kernel_result_release(&res);
	kernel_free(k);
	return rc;
}

/* Every PngSuite file: the same verdict from the automatic pick and from libvips, at
 * fail_on truncated and error; every valid file goes through png-fast. */
Test(pngfast, pngsuite_verdicts_match_libvips, .timeout = 120)
{
	char dir[4096];
	DIR *d;
	struct dirent *e;
	int files = 0, invalid = 0;

	snprintf(dir, sizeof(dir), "%s/tests/fixtures/pngsuite", getenv("VHPREP_SOURCE_DIR"));
	d = opendir(dir);
	cr_assert_not_null(d, "%s", dir);
	while ((e = readdir(d))) {
		struct kernel_params p = defaults();
		struct buf in;

		if (!strstr(e->d_name, ".png"))
			continue;
		in = read_fixture(e->d_name);
		p.resize_w = p.resize_h = 48;
		for (int f = KFAIL_TRUNCATED; f <= KFAIL_ERROR; f++) {
			const char *used = NULL;
			int want, got;

			p.fail_on = (enum kernel_fail_on)f;
			want = verdict(p, KERNEL_VIPS, &in, NULL);
			got = verdict(p, KERNEL_AUTO, &in, &used);
			cr_expect_eq(got, want, "%s (fail_on %d): png-fast path %s, libvips %s",
				     e->d_name, f, vherr_reason(got), vherr_reason(want));
			if (e->d_name[0] != 'x')
				cr_expect_str_eq(used ? used : "(failed)", "png-fast", "%s",
						 e->d_name);
		}
		invalid += e->d_name[0] == 'x';
		files++;
		free_buf(&in);
	}
	closedir(d);
	cr_assert_geq(files, 170);
	cr_assert_eq(invalid, 14, "PngSuite has 14 invalid x*.png files");
}

/* Damaged copies of a valid file: the same verdicts as libvips (truncated data, missing
 * IEND, a flipped bit under a good or a bad CRC). */
Test(pngfast, damaged_files_get_libvips_verdicts)
{
	struct kernel_params p = defaults();
	struct buf png = drawn_png(300, 200, 4, 0);
	struct buf cut = {png.data, png.len * 6 / 10}, no_iend = {png.data, png.len - 12};
	struct buf flipped = {malloc(png.len), png.len};
	const char *used;

	cr_assert_eq(verdict(p, KERNEL_AUTO, &cut, NULL), -VHERR_TRUNCATED);
	cr_assert_eq(verdict(p, KERNEL_VIPS, &cut, NULL), -VHERR_TRUNCATED);
	cr_assert_eq(verdict(p, KERNEL_AUTO, &no_iend, &used), 0, "libvips passes it too");
	cr_assert_str_eq(used, "png-fast");
	cr_assert_eq(verdict(p, KERNEL_VIPS, &no_iend, NULL), 0);
	memcpy(flipped.data, png.data, png.len);
	flipped.data[png.len / 2] ^= 0x40; /* inside the image data: its CRC fails */
	cr_assert_eq(verdict(p, KERNEL_AUTO, &flipped, NULL), -VHERR_CORRUPT);
	cr_assert_eq(verdict(p, KERNEL_VIPS, &flipped, NULL), -VHERR_CORRUPT);
	free_buf(&flipped);
	free_buf(&png);
}

Test(pngfast, too_many_pixels_fail_from_the_header)
{
	struct kernel_params p = defaults();
	struct buf png = drawn_png(300, 200, 3, 0);
	struct kernel *k;
	struct kernel_result res = {0};
	struct vherr err = {0};

	p.max_pixels = 299 * 200;
	k = kernel_new(&p);
	cr_assert_eq(kernel_run(k, png.data, png.len, &res, &err), -VHERR_TOO_LARGE);
	cr_assert_eq(err.stage, VHSTAGE_DECODE);
	kernel_free(k);
	free_buf(&png);
}

/* ---- pictures ------------------------------------------------------------------- */

/* Shrinking RGB, RGBA, grey and grey+alpha, 8 and 16 bits: the picture of libvips' path
 * to within the bar (MAD <= 1.5, alpha too). Enlarging hard edges differs more:
 * png-fast's bicubic is Pillow's, libvips 8.14 enlarges with its own kernel (on the
 * CIFAR-like set of bench/shapes-bench.sh, 32 -> 224: png-fast 0.16 from Pillow and
 * 0.95 from libvips, libvips 0.97 from Pillow); these drawn edges are a harder case,
 * held to 3.0. */
Test(pngfast, same_pictures_as_libvips)
{
	static const struct {
		int w, h, bands, wide, tw, th;
		double bar;
	} cases[] = {
	    {500, 375, 3, 0, 224, 224, 1.5}, {500, 375, 4, 0, 224, 224, 1.5},
	    {333, 500, 1, 0, 224, 224, 1.5}, {400, 300, 2, 0, 160, 120, 1.5},
	    {512, 512, 1, 1, 224, 224, 1.5}, {300, 300, 4, 1, 224, 224, 1.5},
	    {120, 90, 3, 0, 224, 224, 3.0},  {64, 64, 4, 0, 224, 224, 3.0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kernel_params p = defaults();
		struct buf png =
		    drawn_png(cases[i].w, cases[i].h, cases[i].bands, cases[i].wide);
		struct pix fast, vips;
		double alpha, m;

		p.resize_w = cases[i].tw;
		p.resize_h = cases[i].th;
		both(p, &png, &fast, &vips);
		m = mad(&fast, &vips, &alpha);
		cr_expect_leq(m, cases[i].bar, "case %zu (%dx%dx%d%s): MAD %.3f", i, cases[i].w,
			      cases[i].h, cases[i].bands, cases[i].wide ? " 16-bit" : "", m);
		cr_expect_leq(alpha, cases[i].bar, "case %zu: alpha MAD %.3f", i, alpha);
		free_pix(&fast);
		free_pix(&vips);
		free_buf(&png);
	}
}

/* An opaque red square on transparent black: resampled with premultiplied alpha, every
 * visible edge pixel stays red (no dark fringe from the black under alpha 0). */
Test(pngfast, alpha_edges_have_no_dark_fringe)
{
	int w = 97, h = 97;
	uint8_t *px = calloc((size_t)w * h, 4);
	struct kernel_params p = defaults();
	struct buf png;
	struct pix out;

	for (int y = 30; y < 67; y++)
		for (int x = 30; x < 67; x++)
			memcpy(px + ((size_t)y * w + x) * 4, (uint8_t[]){255, 0, 0, 255}, 4);
	png = encode_png(px, w, h, 4, 0);
	p.resize_w = p.resize_h = 40;
	out = run_ok(&p, &png, "png-fast", NULL);
	cr_assert_eq(out.bands, 4);
	for (int i = 0; i < out.w * out.h; i++) {
		const uint8_t *q = out.p + (size_t)i * 4;

		if (q[3] >= 16)
			cr_assert(q[0] >= 235 && q[1] <= 20 && q[2] <= 20,
				  "pixel %d: %d,%d,%d alpha %d", i, q[0], q[1], q[2], q[3]);
	}
	free_pix(&out);
	free_buf(&png);
	free(px);
}

/* 16-bit samples become round(v / 257), with no resize in between. */
/* 16-bit PNG becomes 8-bit by the high byte, as PIL opens 16-bit RGB(A) (its "RGB;16B"
 * unpacking), on both kernels, grey, RGB and RGBA; PNG out keeps the alpha band. */
Test(pngfast, sixteen_bits_become_eight_by_the_high_byte)
{
	int w = 256, h = 4;
	static const int bandses[] = {1, 3, 4};
	static const enum kernel_choice choices[] = {KERNEL_AUTO, KERNEL_VIPS};
	static const char *const names[] = {"png-fast", "libvips"};

	for (size_t b = 0; b < 3; b++) {
		int bands = bandses[b];
		uint16_t *px = malloc((size_t)w * h * bands * 2);
		struct buf png;

		for (int i = 0; i < w * h; i++)
			for (int c = 0; c < bands;
			     c++) /* alpha: opaque on row 0, varied after */
				px[i * bands + c] =
				    c == 3 ? (uint16_t)(i < w ? 65535 : i * 61 + 200)
					   : (uint16_t)(i * 64 + 31 + c * 4099);
		png = encode_png(px, w, h, bands, 1);
		for (size_t k = 0; k < 2; k++) {
			struct kernel_params p = defaults();
			struct pix out;

			p.resize_w = p.resize_h = 0;
			p.choice = choices[k];
			out = run_ok(&p, &png, names[k], NULL);
			cr_assert_eq(out.bands, bands == 1 ? 3 : bands,
				     "%s: %d bands in, %d out", names[k], bands, out.bands);
			for (int i = 0; i < w * h; i++) {
				int a = bands == 4 ? px[i * 4 + 3] >> 8 : 255;

				if (bands == 4)
					cr_assert_eq(out.p[i * 4 + 3], a, "%s alpha %d",
						     names[k], i);
				for (int c = 0; c < 3 && a == 255; c++)
					cr_assert_eq(out.p[i * out.bands + c],
						     px[i * bands + (bands == 1 ? 0 : c)] >> 8,
						     "%s: %d bands, sample %d.%d", names[k],
						     bands, i, c);
			}
			free_pix(&out);
		}
		free_buf(&png);
		free(px);
	}
}

/* eXIf orientation 6 (and 8, 3): turned like libvips turns it. */
Test(pngfast, exif_orientation_is_applied)
{
	struct buf png = drawn_png(300, 200, 3, 0);

	for (int o = 2; o <= 8; o++) {
		struct buf oriented = with_orientation(&png, o);
		struct kernel_params p = defaults();
		struct pix fast, vips;
		double m;

		p.resize_w = 150;
		p.resize_h = 120;
		p.mode = GEOMETRY_FIT;
		both(p, &oriented, &fast, &vips);
		cr_assert_eq(fast.w, o >= 5 ? 80 : 150, "orientation %d", o);
		cr_assert_eq(vips.w, fast.w, "libvips, orientation %d", o);
		m = mad(&fast, &vips, NULL);
		cr_expect_leq(m, 1.5, "orientation %d: MAD %.3f", o, m);
		free_pix(&fast);
		free_pix(&vips);
		free_buf(&oriented);
	}
	free_buf(&png);
}

/* JPEG out and --gray flatten alpha onto the background; pad and crop place the picture
 * as libvips does. */
Test(pngfast, jpeg_gray_pad_and_crop_match_libvips)
{
	struct buf png = drawn_png(320, 200, 4, 0);
	struct {
		enum kernel_format fmt;
		int gray;
		enum geometry_mode mode;
		int bands;
	} cases[] = {
	    {KFMT_JPEG, 0, GEOMETRY_STRETCH, 3}, {KFMT_PNG, 1, GEOMETRY_STRETCH, 1},
	    {KFMT_PNG, 0, GEOMETRY_PAD, 4},	 {KFMT_JPEG, 0, GEOMETRY_CROP, 3},
	    {KFMT_KEEP, 1, GEOMETRY_PAD, 1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kernel_params p = defaults();
		struct pix fast, vips;
		double m;

		p.format = cases[i].fmt;
		p.gray = cases[i].gray;
		p.mode = cases[i].mode;
		p.resize_w = 160;
		p.resize_h = 160;
		p.background[0] = 200;
		p.background[1] = 30;
		p.background[2] = 90;
		both(p, &png, &fast, &vips);
		cr_assert_eq(fast.bands, cases[i].bands, "case %zu", i);
		m = mad(&fast, &vips, NULL);
		cr_expect_leq(m, cases[i].fmt == KFMT_JPEG ? 2.5 : 1.5, "case %zu: MAD %.3f", i,
			      m);
		free_pix(&fast);
		free_pix(&vips);
	}
	free_buf(&png);
}

/* An output is a pure function of its input and options: the same bytes from a fresh
 * kernel whatever ran before; another --png-level, other bytes. */
Test(pngfast, outputs_are_deterministic)
{
	struct kernel_params p = defaults();
	struct buf png = drawn_png(257, 181, 4, 0), other = drawn_png(64, 48, 3, 0);
	struct kernel_result a = {0}, b = {0}, c = {0}, tmp = {0};
	struct pix x;

	x = run_ok(&p, &png, "png-fast", &a);
	free_pix(&x);
	x = run_ok(&p, &other, "png-fast", &tmp);
	free_pix(&x);
	kernel_result_release(&tmp);
	x = run_ok(&p, &png, "png-fast", &b);
	free_pix(&x);
	p.png_level = 1;
	x = run_ok(&p, &png, "png-fast", &c);
	free_pix(&x);
	cr_assert_eq(a.len, b.len);
	cr_assert_eq(memcmp(a.data, b.data, a.len), 0);
	cr_assert_neq(a.len, c.len, "--png-level changes the bytes");
	kernel_result_release(&a);
	kernel_result_release(&b);
	kernel_result_release(&c);
	free_buf(&png);
	free_buf(&other);
}
