/* kernel_probe against kernel_run: the same verdicts, sizes and kernel from the first
 * 64 KiB, and a heap estimate never under what kernel_run really takes.
 *
 * Inputs are made here with libvips (noise, so encoders and buffers work hard), some
 * of them damaged on purpose. The heap kernel_run takes is counted exactly: this file
 * defines malloc and friends (glibc lets a program replace them) and keeps the live
 * and peak bytes of every allocation of every library; only mmap that a library makes
 * itself escapes (libvips 8.14 and the codecs allocate pixels with malloc). Under
 * AddressSanitizer, which owns malloc, the peak tests are left out. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <libdeflate.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vips/vips.h>

#include "kernels/kernel.h"

#define HEAD_MAX (64 * 1024) /* io/source.h's SOURCE_HEAD_MAX */

/* ---- counting the heap ---------------------------------------------------------------- */

#if !defined(__SANITIZE_ADDRESS__)
#define PEAK_COUNTING 1
extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t a, size_t b);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

static size_t heap_live, heap_peak;

static void *counted(void *p)
{
	if (p) {
		size_t v =
		    __atomic_add_fetch(&heap_live, malloc_usable_size(p), __ATOMIC_RELAXED);
		size_t pk = __atomic_load_n(&heap_peak, __ATOMIC_RELAXED);

		while (v > pk && !__atomic_compare_exchange_n(
				     &heap_peak, &pk, v, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
	return p;
}

static void uncount(void *p)
{
	if (p)
		__atomic_sub_fetch(&heap_live, malloc_usable_size(p), __ATOMIC_RELAXED);
}

void *malloc(size_t n)
{
	return counted(__libc_malloc(n));
}

void free(void *p)
{
	uncount(p);
	__libc_free(p);
}

void *calloc(size_t a, size_t b)
{
	return counted(__libc_calloc(a, b));
}

void *realloc(void *p, size_t n)
{
	size_t old = p ? malloc_usable_size(p) : 0;
	void *q = __libc_realloc(p, n);

	if (!q && n)
		return NULL; /* p untouched */
	__atomic_sub_fetch(&heap_live, old, __ATOMIC_RELAXED);
	return counted(q);
}

void *memalign(size_t align, size_t n)
{
	return counted(__libc_memalign(align, n));
}

void *aligned_alloc(size_t align, size_t n)
{
	return counted(__libc_memalign(align, n));
}

int posix_memalign(void **out, size_t align, size_t n)
{
	void *p = counted(__libc_memalign(align, n));

	if (!p)
		return 12; /* ENOMEM */
	*out = p;
	return 0;
}

void *valloc(size_t n)
{
	return counted(__libc_memalign((size_t)sysconf(_SC_PAGESIZE), n));
}

void *pvalloc(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return counted(__libc_memalign(page, (n + page - 1) / page * page));
}
#endif

/* ---- setup ----------------------------------------------------------------------------- */

static void setup(void)
{
	struct vherr err = {0};

	cr_assert_eq(kernel_global_init("test_probe", &err), 0, "%s", err.msg);
}

static void teardown(void)
{
	kernel_global_shutdown();
}

TestSuite(probe, .init = setup, .fini = teardown);

static struct kernel_params defaults(void)
{
	struct kernel_params p = {
	    .resize_w = 224,
	    .resize_h = 224,
	    .mode = GEOMETRY_STRETCH,
	    .autorotate = 1,
	    .format = KFMT_KEEP,
	    .quality = 90,
	    .max_pixels = 100000000,
	    .fail_on = KFAIL_TRUNCATED,
	    .choice = KERNEL_AUTO,
	    .background = {255, 255, 255},
	};
	return p;
}

/* ---- making images --------------------------------------------------------------------- */

enum kind {
	K_JPEG,
	K_JPEG_PROG,
	K_JPEG_CMYK,
	K_PNG,
	K_PNG_ILACE,
	K_WEBP,
	K_WEBP_LOSSLESS,
	K_GIF,
	K_TIFF,
	K_TIFF_TILED,
	K_TIFF_BIG,
	K_AVIF,
	K_HEIC,
	K_BMP
};

/* One image to make: kind, size, bands, 16 bits, EXIF orientation (0: none). */
struct shape {
	enum kind kind;
	int w, h, bands, wide, orientation, q;
};

struct buf {
	uint8_t *data;
	size_t len;
};

/* Noise of the shape's size and bands (16-bit with wide), with its orientation set. */
static VipsImage *noise(const struct shape *s)
{
	VipsImage *base = vips_image_new(),
		  **t = (VipsImage **)vips_object_local_array(VIPS_OBJECT(base), 6);
	VipsImage *bands[4], *out;

	cr_assert_eq(vips_gaussnoise(&t[0], s->w, s->h, "mean", 128.0, "sigma", 50.0, NULL), 0);
	cr_assert_eq(vips_gaussnoise(&t[1], s->w, s->h, "mean", 100.0, "sigma", 60.0, NULL), 0);
	for (int i = 0; i < s->bands; i++)
		bands[i] = t[i & 1];
	cr_assert_eq(vips_bandjoin(bands, &t[2], s->bands, NULL), 0);
	if (s->wide)
		cr_assert_eq(vips_linear1(t[2], &t[3], 257.0, 0.0, NULL), 0);
	cr_assert_eq(vips_cast(s->wide ? t[3] : t[2], &t[4],
			       s->wide ? VIPS_FORMAT_USHORT : VIPS_FORMAT_UCHAR, NULL),
		     0);
	cr_assert_eq(vips_copy(t[4], &t[5], "interpretation",
			       s->kind == K_JPEG_CMYK ? VIPS_INTERPRETATION_CMYK
			       : s->bands >= 3	      ? (s->wide ? VIPS_INTERPRETATION_RGB16
								 : VIPS_INTERPRETATION_sRGB)
			       : s->wide	      ? VIPS_INTERPRETATION_GREY16
						      : VIPS_INTERPRETATION_B_W,
			       NULL),
		     0);
	out = vips_image_copy_memory(t[5]);
	cr_assert_not_null(out);
	g_object_unref(base);
	if (s->orientation)
		vips_image_set_int(out, VIPS_META_ORIENTATION, s->orientation);
	return out;
}

/* libvips 8.14's pngsave writes no eXIf: splice one after the IHDR, little-endian TIFF
 * data whose IFD0 holds Orientation = o. Takes png (g_malloc'd). */
static struct buf png_with_orientation(uint8_t *png, size_t len, int o)
{
	const uint8_t tiff[26] = {'I', 'I', 42, 0, 8, 0,	  0, 0, 1, 0, 0x12, 0x01, 3,
				  0,   1,   0,	0, 0, (uint8_t)o, 0, 0, 0, 0, 0,    0,	  0};
	struct buf b = {g_malloc(len + 12 + sizeof(tiff)), len + 12 + sizeof(tiff)};
	uint8_t *c = b.data + 33;
	uint32_t crc;

	memcpy(b.data, png, 33);
	c[0] = c[1] = c[2] = 0;
	c[3] = sizeof(tiff);
	memcpy(c + 4, "eXIf", 4);
	memcpy(c + 8, tiff, sizeof(tiff));
	crc = libdeflate_crc32(0, c + 4, sizeof(tiff) + 4);
	for (int i = 0; i < 4; i++)
		c[8 + sizeof(tiff) + i] = (uint8_t)(crc >> (24 - 8 * i));
	memcpy(c + 12 + sizeof(tiff), png + 33, len - 33);
	g_free(png);
	return b;
}

static struct buf encode(const struct shape *s)
{
	VipsImage *im = noise(s);
	void *data = NULL;
	size_t len = 0;
	int q = s->q ? s->q : 90, rc;

	switch (s->kind) {
	case K_JPEG:
	case K_JPEG_CMYK:
		rc = vips_jpegsave_buffer(im, &data, &len, "Q", q, NULL);
		break;
	case K_JPEG_PROG:
		rc = vips_jpegsave_buffer(im, &data, &len, "Q", q, "interlace", TRUE, NULL);
		break;
	case K_PNG:
		rc = vips_pngsave_buffer(im, &data, &len, "compression", 1, NULL);
		break;
	case K_PNG_ILACE:
		rc = vips_pngsave_buffer(im, &data, &len, "compression", 1, "interlace", TRUE,
					 NULL);
		break;
	case K_WEBP:
		rc = vips_webpsave_buffer(im, &data, &len, "Q", q, NULL);
		break;
	case K_WEBP_LOSSLESS:
		rc = vips_webpsave_buffer(im, &data, &len, "lossless", TRUE, NULL);
		break;
	case K_GIF:
		rc = vips_gifsave_buffer(im, &data, &len, NULL);
		break;
	case K_TIFF:
		rc = vips_tiffsave_buffer(im, &data, &len, NULL);
		break;
	case K_TIFF_TILED:
		rc = vips_tiffsave_buffer(im, &data, &len, "tile", TRUE, "compression",
					  VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE, NULL);
		break;
	case K_AVIF:
		rc = vips_heifsave_buffer(im, &data, &len, "compression",
					  VIPS_FOREIGN_HEIF_COMPRESSION_AV1, "Q", q, NULL);
		break;
	case K_HEIC:
		rc = vips_heifsave_buffer(im, &data, &len, "compression",
					  VIPS_FOREIGN_HEIF_COMPRESSION_HEVC, "Q", q, NULL);
		break;
	case K_TIFF_BIG:
		rc = vips_tiffsave_buffer(im, &data, &len, "bigtiff", TRUE, NULL);
		break;
	case K_BMP:
	default:
		rc = vips_magicksave_buffer(im, &data, &len, "format", "bmp", NULL);
		break;
	}
	cr_assert_eq(rc, 0, "cannot encode: %s", vips_error_buffer());
	g_object_unref(im);
	if ((s->kind == K_PNG || s->kind == K_PNG_ILACE) && s->orientation)
		return png_with_orientation(data, len, s->orientation);
	return (struct buf){data, len};
}

static void free_buf(struct buf *b)
{
	g_free(b->data);
	b->data = NULL;
	b->len = 0;
}

/* ---- the probe against kernel_run ----------------------------------------------------- */

static int probe_head(const struct kernel_params *p, const struct buf *b,
		      struct kernel_probe *o, struct vherr *err)
{
	return kernel_probe(p, b->data, b->len < HEAD_MAX ? b->len : HEAD_MAX, b->len, o, err);
}

/* Probes b (first 64 KiB, then as much as it asks for), runs kernel_run on the whole,
 * and checks they agree: a final verdict is kernel_run's; an accepted file has the size,
 * format and kernel kernel_run reports. Returns kernel_run's code. */
static int agree(const struct kernel_params *p, const struct buf *b, struct kernel_probe *o)
{
	struct kernel *k = kernel_new(p);
	struct kernel_result res = {0};
	struct vherr perr = {0}, kerr = {0};
	int prc = probe_head(p, b, o, &perr), krc;

	if (prc == KERNEL_PROBE_MORE && o->need_bytes > HEAD_MAX) {
		cr_assert_leq(o->need_bytes, b->len);
		prc = kernel_probe(p, b->data, o->need_bytes, b->len, o, &perr);
	}
	cr_assert_not_null(k);
	krc = kernel_run(k, b->data, b->len, &res, &kerr);
	if (prc == -VHERR_NOT_IMAGE || prc == -VHERR_EMPTY || prc == -VHERR_TOO_LARGE)
		cr_assert_eq(krc, prc, "probe says %s (%s), kernel_run %d (%s)",
			     vherr_reason(-prc), perr.msg, krc, kerr.msg);
	if (prc == 0 && krc == 0) {
		cr_assert_eq(o->out_w, res.out_w, "out_w %d, kernel_run %d", o->out_w,
			     res.out_w);
		cr_assert_eq(o->out_h, res.out_h);
		cr_assert_eq(o->width, res.in_w, "%s %dx%d, kernel_run %dx%d", o->format,
			     o->width, o->height, res.in_w, res.in_h);
		cr_assert_eq(o->height, res.in_h);
		cr_assert_eq(o->out_format, res.format);
		cr_assert_str_eq(o->kernel, res.kernel);
	}
	kernel_result_release(&res);
	kernel_free(k);
	return krc;
}

Test(probe, formats_sizes_bands)
{
	static const struct {
		struct shape s;
		const char *format, *kernel;
		int bands;
	} cases[] = {
	    {{K_JPEG, 301, 207, 3, 0, 0, 0}, "jpeg", "jpeg-fast", 3},
	    {{K_JPEG, 300, 200, 1, 0, 0, 0}, "jpeg", "jpeg-fast", 1},
	    {{K_JPEG_PROG, 320, 240, 3, 0, 0, 0}, "jpeg", "jpeg-fast", 3},
	    {{K_JPEG_CMYK, 200, 100, 4, 0, 0, 0}, "jpeg", "libvips", 4},
	    {{K_PNG, 123, 77, 4, 1, 0, 0}, "png", "png-fast", 4},
	    {{K_PNG, 90, 60, 1, 0, 0, 0}, "png", "png-fast", 1},
	    {{K_PNG_ILACE, 90, 60, 2, 0, 0, 0}, "png", "png-fast", 2},
	    {{K_WEBP, 250, 180, 3, 0, 0, 0}, "webp", "libvips", 3},
	    {{K_WEBP_LOSSLESS, 120, 100, 4, 0, 0, 0}, "webp", "libvips", 4},
	    {{K_GIF, 160, 120, 3, 0, 0, 0}, "gif", "libvips", 4},
	    {{K_TIFF, 150, 110, 3, 0, 0, 0}, "tiff", "libvips", 3},
	    {{K_TIFF_TILED, 300, 300, 1, 1, 0, 0}, "tiff", "libvips", 1},
	    {{K_TIFF_BIG, 150, 110, 3, 0, 0, 0}, "tiff", "libvips", 3},
	    {{K_GIF, 2100, 40, 3, 0, 0, 0}, "gif", "libvips", 4},
	    {{K_AVIF, 200, 100, 3, 0, 0, 0}, "avif", "libvips", 3},
	    {{K_HEIC, 160, 120, 3, 0, 0, 0}, "heif", "libvips", 3},
	    {{K_BMP, 130, 70, 3, 0, 0, 0}, "bmp", "libvips", 3},
	};
	struct kernel_params p = defaults();

	p.resize_w = 100;
	p.resize_h = 0;
	p.mode = GEOMETRY_SHORT;
	p.resize_h = 100;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b = encode(&cases[i].s);
		struct kernel_probe o;

		cr_assert_eq(agree(&p, &b, &o), 0, "case %zu", i);
		cr_assert_str_eq(o.format, cases[i].format, "case %zu", i);
		cr_assert_str_eq(o.kernel, cases[i].kernel, "case %zu: %s", i, o.format);
		cr_assert_eq(o.width, cases[i].s.w, "case %zu", i);
		cr_assert_eq(o.height, cases[i].s.h, "case %zu", i);
		cr_assert_eq(o.bands, cases[i].bands, "case %zu (%s)", i, o.format);
		cr_assert_eq(o.bits, cases[i].s.wide ? 16 : 8, "case %zu", i);
		cr_assert_gt(o.peak_bytes, 0);
		cr_assert_not_null(o.loader);
		free_buf(&b);
	}
}

Test(probe, orientation)
{
	static const struct shape shapes[] = {
	    {K_JPEG, 320, 200, 3, 0, 6, 0}, {K_JPEG, 320, 200, 3, 0, 3, 0},
	    {K_TIFF, 200, 120, 3, 0, 8, 0}, {K_WEBP, 200, 120, 3, 0, 5, 0},
	    {K_PNG, 200, 120, 3, 0, 6, 0},  {K_JPEG, 320, 200, 3, 0, 7, 0},
	    {K_PNG, 200, 120, 4, 0, 8, 0},
	};
	struct kernel_params p = defaults();

	p.resize_w = 160;
	p.resize_h = 160;
	p.mode = GEOMETRY_FIT;
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct buf b = encode(&shapes[i]);
		struct kernel_probe o;

		p.blur_sigma = i >= 5 ? 1.0 : 0; /* the last ones through libvips */
		cr_assert_eq(agree(&p, &b, &o), 0, "case %zu", i);
		cr_assert_eq(o.orientation, shapes[i].orientation, "case %zu (%s)", i,
			     o.format);
		cr_assert_eq(o.out_w > o.out_h, shapes[i].orientation < 5, "case %zu", i);
		free_buf(&b);
	}
}

Test(probe, tiff_ifd_beyond_the_head)
{
	struct shape s = {K_TIFF, 400, 300, 3, 0, 0, 0}; /* 360 kB of strips, IFD after */
	struct kernel_params p = defaults();
	struct buf b = encode(&s);
	struct kernel_probe o;
	struct vherr err = {0};

	cr_assert_gt(b.len, 2 * HEAD_MAX);
	cr_assert_eq(probe_head(&p, &b, &o, &err), KERNEL_PROBE_MORE);
	cr_assert_gt(o.need_bytes, HEAD_MAX);
	cr_assert_leq(o.need_bytes, b.len);
	cr_assert_eq(kernel_probe(&p, b.data, o.need_bytes, b.len, &o, &err), 0, "%s", err.msg);
	cr_assert_eq(o.width, 400);
	cr_assert_eq(o.height, 300);
	cr_assert_eq(agree(&p, &b, &o), 0);
	free_buf(&b);
}

Test(probe, empty_and_not_images)
{
	static const char *const texts[] = {
	    "hello, this is a README\n",
	    "<!DOCTYPE html>\n<html><head><title>x</title></head><body>hi</body></html>\n",
	    "{\"metadata\": {\"name\": \"wallpaper\"}}\n",
	    "[Desktop Entry]\nName=x\n",
	    "BM",
	};
	struct kernel_params p = defaults();
	struct kernel_probe o;
	struct vherr err = {0};

	cr_assert_eq(kernel_probe(&p, NULL, 0, 0, &o, &err), -VHERR_EMPTY);
	cr_assert_eq(err.code, VHERR_EMPTY);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct buf b = {(uint8_t *)g_strdup(texts[i]), strlen(texts[i])};

		cr_assert_eq(probe_head(&p, &b, &o, &err), -VHERR_NOT_IMAGE, "text %zu", i);
		cr_assert_eq(agree(&p, &b, &o), -VHERR_NOT_IMAGE, "text %zu", i);
		free_buf(&b);
	}
}

/* The probe leaves libvips' process-wide error text alone, misses included. */
Test(probe, leaves_the_libvips_error_buffer_alone)
{
	struct kernel_params p = defaults();
	struct buf t = {(uint8_t *)g_strdup("not an image at all, just some words"), 36};
	struct kernel_probe o;
	struct vherr err = {0};

	vips_error_clear();
	cr_assert_eq(probe_head(&p, &t, &o, &err), -VHERR_NOT_IMAGE);
	cr_assert_str_eq(vips_error_buffer(), "");
	free_buf(&t);
}

struct probe_thread {
	const struct kernel_params *p;
	const struct buf *files;
	int n, mismatches;
	struct kernel_probe first[4];
};

static void *probe_many(void *arg)
{
	struct probe_thread *t = arg;

	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < t->n; i++) {
			struct kernel_probe o;
			struct vherr err = {0};

			if (probe_head(t->p, &t->files[i], &o, &err) != 0 ||
			    o.width != t->first[i].width ||
			    o.peak_bytes != t->first[i].peak_bytes ||
			    strcmp(o.loader, t->first[i].loader) != 0)
				t->mismatches++;
		}
	}
	return NULL;
}

/* Four threads probing four formats at once give the answers one thread gives. */
Test(probe, thread_safe)
{
	static const struct shape shapes[] = {
	    {K_JPEG, 300, 200, 3, 0, 6, 0},
	    {K_PNG, 200, 100, 4, 0, 0, 0},
	    {K_WEBP, 210, 90, 3, 0, 0, 0},
	    {K_TIFF, 100, 90, 1, 0, 0, 0},
	};
	struct kernel_params p = defaults();
	struct buf files[4];
	struct probe_thread t[4];
	pthread_t tid[4];
	struct vherr err = {0};

	p.blur_sigma = 1; /* every file through libvips' loader table */
	for (int i = 0; i < 4; i++)
		files[i] = encode(&shapes[i]);
	for (int k = 0; k < 4; k++) {
		t[k] = (struct probe_thread){.p = &p, .files = files, .n = 4};
		for (int i = 0; i < 4; i++)
			cr_assert_eq(probe_head(&p, &files[i], &t[k].first[i], &err), 0, "%s",
				     err.msg);
	}
	for (int k = 0; k < 4; k++)
		cr_assert_eq(pthread_create(&tid[k], NULL, probe_many, &t[k]), 0);
	for (int k = 0; k < 4; k++) {
		pthread_join(tid[k], NULL);
		cr_assert_eq(t[k].mismatches, 0, "thread %d", k);
	}
	for (int i = 0; i < 4; i++)
		free_buf(&files[i]);
}

Test(probe, extensions)
{
	static const char *const yes[] = {"jpg", "JPEG", "jpe",	 "jfif", "png",	 "PNG",	 "webp",
					  "gif", "tif",	 "TIFF", "bmp",	 "heic", "avif", "jp2"};
	static const char *const no[] = {"pdf",	    "svg", "svgz", "txt", "json",
					 "desktop", "",	   "jpgx", "csv", "mat"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_assert(kernel_extension_readable(yes[i]), "%s", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_assert_not(kernel_extension_readable(no[i]), "%s", no[i]);
	cr_assert_not(kernel_extension_readable(NULL));
}

/* ---- header bombs and damage ------------------------------------------------------- */

static void put16be(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32be(uint8_t *p, uint32_t v)
{
	put16be(p, v >> 16);
	put16be(p + 2, v & 0xffff);
}

/* Rewrites a JPEG's frame size. */
static void jpeg_claim(struct buf *b, unsigned w, unsigned h)
{
	for (size_t i = 2; i + 9 < b->len; i++)
		if (b->data[i] == 0xff && (b->data[i + 1] == 0xc0 || b->data[i + 1] == 0xc2)) {
			put16be(b->data + i + 5, h);
			put16be(b->data + i + 7, w);
			return;
		}
	cr_assert_fail("no SOF");
}

/* Rewrites a PNG's IHDR size (with a correct CRC). */
static void png_claim(struct buf *b, uint32_t w, uint32_t h)
{
	put32be(b->data + 16, w);
	put32be(b->data + 20, h);
	put32be(b->data + 29, libdeflate_crc32(0, b->data + 12, 17));
}

Test(probe, header_bombs_are_too_large)
{
	struct shape js = {K_JPEG, 64, 64, 3, 0, 0, 0}, ps = {K_PNG, 64, 64, 3, 0, 0, 0};
	struct kernel_params p = defaults();
	struct buf j = encode(&js), g = encode(&ps);
	struct kernel_probe o;
	struct vherr err = {0};

	jpeg_claim(&j, 30000, 30000);
	png_claim(&g, 20000, 20000);
	cr_assert_eq(probe_head(&p, &j, &o, &err), -VHERR_TOO_LARGE, "%s", err.msg);
	cr_assert_eq(agree(&p, &j, &o), -VHERR_TOO_LARGE);
	cr_assert_eq(probe_head(&p, &g, &o, &err), -VHERR_TOO_LARGE, "%s", err.msg);
	cr_assert_eq(agree(&p, &g, &o), -VHERR_TOO_LARGE);
	/* under the limit, a 10000x10000 claim is admitted with its real cost */
	jpeg_claim(&j, 10000, 10000);
	p.resize_w = p.resize_h = 0;
	cr_assert_eq(probe_head(&p, &j, &o, &err), 0, "%s", err.msg);
	cr_assert_geq(o.peak_bytes, 10000ull * 10000 * 3);
	free_buf(&j);
	free_buf(&g);
}

/* Sets the precision byte, or the SOF marker, of a JPEG's frame header. */
static void jpeg_sof_byte(struct buf *b, int precision, int marker)
{
	for (size_t i = 2; i + 9 < b->len; i++)
		if (b->data[i] == 0xff && b->data[i + 1] == 0xc0) {
			if (precision)
				b->data[i + 4] = (uint8_t)precision;
			if (marker)
				b->data[i + 1] = (uint8_t)marker;
			return;
		}
	cr_assert_fail("no SOF0");
}

Test(probe, jpeg_the_library_cannot_decode)
{
	struct shape js = {K_JPEG, 64, 48, 3, 0, 0, 0};
	struct kernel_params p = defaults();
	struct buf a = encode(&js), l = encode(&js);
	struct kernel_probe o;
	struct vherr err = {0};

	jpeg_sof_byte(&a, 12, 0);
	cr_assert_eq(probe_head(&p, &a, &o, &err), -VHERR_CORRUPT);
	cr_assert(strstr(err.msg, "12-bit"), "%s", err.msg);
	cr_assert_neq(agree(&p, &a, &o), 0, "kernel_run decodes a 12-bit JPEG here");
	jpeg_sof_byte(&l, 0, 0xc3);
	cr_assert_eq(probe_head(&p, &l, &o, &err), -VHERR_CORRUPT);
	cr_assert_neq(agree(&p, &l, &o), 0, "kernel_run decodes a lossless JPEG here");
	free_buf(&a);
	free_buf(&l);
}

/* Damages a copy of b: 0 truncate at `at`, 1 zero 64 bytes at `at`, 2 flip a bit. */
static struct buf damage(const struct buf *b, int how, size_t at)
{
	struct buf d = {g_memdup2(b->data, b->len), b->len};

	if (how == 0)
		d.len = at;
	else if (how == 1)
		memset(d.data + at, 0, at + 64 <= d.len ? 64 : d.len - at);
	else
		d.data[at] ^= (uint8_t)(1u << (at % 8));
	return d;
}

Test(probe, damaged_files_agree_with_kernel_run)
{
	static const struct shape shapes[] = {
	    {K_JPEG, 200, 150, 3, 0, 6, 0}, {K_JPEG_PROG, 200, 150, 3, 0, 0, 0},
	    {K_PNG, 150, 100, 4, 0, 0, 0},  {K_WEBP, 150, 100, 3, 0, 0, 0},
	    {K_GIF, 100, 80, 3, 0, 0, 0},   {K_TIFF, 100, 80, 3, 0, 0, 0},
	    {K_AVIF, 64, 48, 3, 0, 0, 0},
	};
	struct kernel_params p = defaults();
	int agreed = 0;

	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct buf b = encode(&shapes[i]);

		for (int how = 0; how < 3; how++) {
			/* every header byte, then a dozen places in the data */
			for (size_t at = 0; at < b.len; at += at < 48 ? 1 : b.len / 13 + 1) {
				struct buf d = damage(&b, how, at);
				struct kernel_probe o;

				if (d.len > 0)
					agree(&p, &d, &o);
				free_buf(&d);
				agreed++;
			}
		}
		free_buf(&b);
	}
	cr_log_info("damaged files judged alike: %d", agreed);
}

/* ---- the heap estimate against the heap kernel_run takes --------------------------- */

#ifdef PEAK_COUNTING
/* One shape, one set of params. */
struct peak_case {
	struct shape s;
	int resize, gray, blur; /* resize: 224x224 (stretch), 0: none */
	enum kernel_format format;
	enum geometry_mode mode;
};

/* The shape encoded in a child process, so this one's libvips has made nothing yet. */
static struct buf encode_elsewhere(const struct shape *s)
{
	int fd[2];
	pid_t pid;
	struct buf b = {0};
	size_t cap = 1 << 20;
	ssize_t n;
	int status;

	cr_assert_eq(pipe(fd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct buf e = encode(s);
		size_t off = 0;

		close(fd[0]);
		while (off < e.len) {
			n = write(fd[1], e.data + off, e.len - off);
			if (n <= 0)
				_exit(1);
			off += (size_t)n;
		}
		_exit(0);
	}
	close(fd[1]);
	b.data = g_malloc(cap);
	while ((n = read(fd[0], b.data + b.len, cap - b.len)) > 0) {
		b.len += (size_t)n;
		if (b.len == cap)
			b.data = g_realloc(b.data, cap *= 2);
	}
	close(fd[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the encoder child failed");
	return b;
}

static struct peak_case peak_cases[] = {
    {{K_JPEG, 500, 375, 3, 0, 0, 0}, 224, 0, 0, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_JPEG, 4000, 3000, 3, 0, 0, 75}, 224, 0, 0, KFMT_KEEP, GEOMETRY_SHORT},
    {{K_JPEG, 8000, 6000, 3, 0, 0, 75}, 224, 0, 0, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_JPEG, 3000, 2000, 3, 0, 0, 75}, 0, 0, 0, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_JPEG_PROG, 3000, 2000, 3, 0, 0, 75}, 224, 0, 0, KFMT_KEEP, GEOMETRY_CROP},
    {{K_JPEG, 4000, 3000, 3, 0, 6, 75}, 224, 0, 0, KFMT_KEEP, GEOMETRY_PAD},
    {{K_JPEG, 4000, 3000, 3, 0, 0, 75}, 224, 0, 1, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_JPEG, 2000, 1500, 3, 0, 6, 75}, 0, 0, 0, KFMT_PNG, GEOMETRY_STRETCH},
    {{K_JPEG, 2000, 1500, 3, 0, 0, 75}, 0, 0, 0, KFMT_WEBP, GEOMETRY_STRETCH},
    {{K_JPEG_CMYK, 1500, 1000, 4, 0, 0, 75}, 224, 0, 0, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_PNG, 1024, 768, 4, 1, 0, 0}, 224, 0, 0, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_PNG, 1500, 1000, 3, 0, 0, 0}, 0, 0, 0, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_PNG, 2000, 1500, 3, 0, 0, 0}, 224, 0, 0, KFMT_WEBP, GEOMETRY_STRETCH},
    {{K_PNG_ILACE, 1500, 1000, 4, 0, 0, 0}, 224, 1, 0, KFMT_WEBP, GEOMETRY_STRETCH},
    {{K_PNG_ILACE, 1500, 1000, 3, 0, 0, 0}, 224, 0, 0, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_JPEG, 8000, 6000, 3, 0, 0, 75}, 224, 0, 1, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_WEBP, 2000, 1500, 3, 0, 0, 75}, 224, 0, 0, KFMT_JPEG, GEOMETRY_STRETCH},
    {{K_WEBP_LOSSLESS, 1000, 800, 4, 0, 0, 0}, 0, 0, 0, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_GIF, 800, 600, 3, 0, 0, 0}, 224, 0, 0, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_TIFF, 3000, 2000, 3, 0, 0, 0}, 224, 0, 0, KFMT_JPEG, GEOMETRY_STRETCH},
    {{K_TIFF, 6000, 4000, 3, 0, 0, 0}, 224, 0, 0, KFMT_JPEG, GEOMETRY_STRETCH},
    {{K_TIFF_TILED, 2000, 2000, 3, 0, 0, 0}, 0, 0, 0, KFMT_JPEG, GEOMETRY_STRETCH},
    {{K_BMP, 800, 600, 3, 0, 0, 0}, 224, 0, 0, KFMT_JPEG, GEOMETRY_STRETCH},
    {{K_AVIF, 1200, 900, 3, 0, 0, 75}, 224, 0, 0, KFMT_KEEP, GEOMETRY_STRETCH},
    {{K_HEIC, 1200, 900, 3, 0, 0, 75}, 0, 0, 0, KFMT_JPEG, GEOMETRY_STRETCH},
};

ParameterizedTestParameters(probe, peak)
{
	return cr_make_param_array(struct peak_case, peak_cases,
				   sizeof(peak_cases) / sizeof(peak_cases[0]));
}

/* The estimate is never under the heap kernel_run takes on a fresh kernel, and not
 * wildly over it. Each case runs in its own process (Criterion's). */
ParameterizedTest(struct peak_case *c, probe, peak, .timeout = 120)
{
	struct kernel_params p = defaults();
	struct buf b = encode_elsewhere(&c->s);
	struct kernel_probe o;
	struct kernel_result res = {0};
	struct vherr err = {0};
	struct kernel *k;
	size_t base;
	double ratio;
	int rc;

	p.resize_w = p.resize_h = c->resize;
	p.gray = c->gray;
	p.blur_sigma = c->blur ? 1.0 : 0;
	p.format = c->format;
	p.mode = c->mode;
	p.quality = 75;
	rc = kernel_probe(&p, b.data, b.len < HEAD_MAX ? b.len : HEAD_MAX, b.len, &o, &err);
	if (rc == KERNEL_PROBE_MORE)
		rc = kernel_probe(&p, b.data, o.need_bytes, b.len, &o, &err);
	cr_assert_eq(rc, 0, "%s", err.msg);
	k = kernel_new(&p);
	cr_assert_not_null(k);
	base = __atomic_load_n(&heap_live, __ATOMIC_RELAXED);
	__atomic_store_n(&heap_peak, base, __ATOMIC_RELAXED);
	rc = kernel_run(k, b.data, b.len, &res, &err);
	cr_assert_eq(rc, 0, "%s", err.msg);
	size_t measured = __atomic_load_n(&heap_peak, __ATOMIC_RELAXED) - base;
	ratio = (double)o.peak_bytes / (double)measured;
	fprintf(stderr,
		"peak %-5s %5dx%-5d b%d -> %4dx%-4d %-9s est %8.1f MB measured %8.1f MB ratio "
		"%.2f\n",
		o.format, o.width, o.height, o.bands, o.out_w, o.out_h, o.kernel,
		o.peak_bytes / 1e6, measured / 1e6, ratio);
	cr_assert_geq(o.peak_bytes, measured, "%s %dx%d via %s: estimate %llu < measured %zu",
		      o.format, o.width, o.height, o.kernel, (unsigned long long)o.peak_bytes,
		      measured);
	/* an estimate many times the real cost would refuse files that fit */
	cr_expect_leq(ratio, 6.0, "%s %dx%d via %s: estimate %.1fx measured", o.format, o.width,
		      o.height, o.kernel, ratio);
	kernel_result_release(&res);
	kernel_free(k);
	free_buf(&b);
}

/* One kernel through files of several sizes: between runs it keeps at most
 * kernel_retained_max() bytes, and a run on a used kernel stays under the estimate. */
Test(probe, retained_between_files, .timeout = 120)
{
	static const struct shape shapes[] = {
	    {K_JPEG, 3000, 2000, 3, 0, 0, 75}, {K_PNG, 1500, 1000, 4, 0, 0, 0},
	    {K_JPEG, 600, 400, 3, 0, 6, 75},   {K_PNG, 3000, 2000, 3, 0, 0, 0},
	    {K_JPEG, 400, 300, 1, 0, 0, 75},
	};
	struct kernel_params p = defaults();
	struct kernel *k = kernel_new(&p);
	size_t base, kept = 0;

	p.resize_w = p.resize_h = 0; /* whole-size buffers, the most a file leaves behind */
	cr_assert_not_null(k);
	base = __atomic_load_n(&heap_live, __ATOMIC_RELAXED);
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct buf b = encode(&shapes[i]);
		struct kernel_result res = {0};
		struct kernel_probe o;
		struct vherr err = {0};
		size_t before;

		cr_assert_eq(probe_head(&p, &b, &o, &err), 0, "%s", err.msg);
		before = __atomic_load_n(&heap_live, __ATOMIC_RELAXED);
		__atomic_store_n(&heap_peak, before, __ATOMIC_RELAXED);
		cr_assert_eq(kernel_run(k, b.data, b.len, &res, &err), 0, "%s", err.msg);
		cr_assert_geq(o.peak_bytes,
			      __atomic_load_n(&heap_peak, __ATOMIC_RELAXED) - before);
		kernel_result_release(&res);
		free_buf(&b);
		kept = __atomic_load_n(&heap_live, __ATOMIC_RELAXED) - base;
		cr_assert_leq(kept, kernel_retained_max(), "file %zu: %zu bytes kept", i, kept);
	}
	fprintf(stderr, "retained after 5 files: %.1f MB (max %.1f MB)\n", kept / 1e6,
		kernel_retained_max() / 1e6);
	kernel_free(k);
}
#endif
