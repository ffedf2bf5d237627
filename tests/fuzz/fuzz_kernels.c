/* A differential fuzz target over the kernels (kernels/kernel.h). For the same bytes:
 *
 *  1. where jpeg-fast accepts a file (jpegfast_accepts), jpeg-fast and libvips agree
 *     on accept/reject; where png-fast accepts it, png-fast and libvips agree;
 *  2. each kernel gives the same verdict and byte-identical output when run twice on
 *     the input with a different picture run in between: a noise image of
 *     DIRTY_W x DIRTY_H (JPEG for jpeg-fast, PNG for png-fast), whose decode overwrites
 *     the kernel's reused planes and rows with other values. A decoder that leaves part
 *     of a plane unwritten (a damaged scan, a missing row) then shows as a difference.
 *
 * One kernel per path lives for the whole process, as in a worker thread, so the
 * buffers are also dirtied by every earlier input. Inputs are bounded by
 * params.max_pixels (a bigger header is refused by both kernels before any decode). */
#include <vips/vips.h>

#include "kernels/jpegfast.h"
#include "kernels/kernel.h"
#include "kernels/pngfast.h"
#include "tests/fuzz/fuzz.h"

#define DIRTY_W 256
#define DIRTY_H 256

struct fuzz_kernels {
	struct kernel_params params;		    /* what every kernel does */
	struct kernel_params p_vips, p_fast, p_png; /* the same with the kernel forced */
	struct kernel *vips, *fast, *png;
	void *dirty_jpg, *dirty_png;
	size_t dirty_jpg_len, dirty_png_len;
};

/* Encodes DIRTY_W x DIRTY_H RGB noise (a fixed seed) as a JPEG or (png) a PNG. */
static void *noise_image(int png, size_t *len)
{
	size_t n = (size_t)DIRTY_W * DIRTY_H * 3;
	uint8_t *px = malloc(n);
	uint32_t x = 2463534242u;
	VipsImage *im;
	void *buf = NULL;

	if (!px)
		abort();
	for (size_t i = 0; i < n; i++) { /* xorshift32 */
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		px[i] = (uint8_t)x;
	}
	im = vips_image_new_from_memory(px, n, DIRTY_W, DIRTY_H, 3, VIPS_FORMAT_UCHAR);
	if (!im || (png ? vips_pngsave_buffer(im, &buf, len, NULL)
			: vips_jpegsave_buffer(im, &buf, len, "Q", 90, NULL)) != 0) {
		fprintf(stderr, "noise image: %s\n", vips_error_buffer());
		abort();
	}
	g_object_unref(im);
	free(px);
	return buf;
}

static struct fuzz_kernels *setup(void)
{
	static struct fuzz_kernels fk;
	static int done;
	struct vherr err = {0};

	if (done)
		return &fk;
	if (kernel_global_init("fuzz_kernels", &err) != 0) {
		fprintf(stderr, "kernel_global_init: %s\n", err.msg);
		abort();
	}
	fk.params = (struct kernel_params){.resize_w = 48,
					   .resize_h = 40,
					   .mode = GEOMETRY_STRETCH,
					   .autorotate = 1,
					   .format = KFMT_KEEP,
					   .quality = 90,
					   .max_pixels = 512 * 512,
					   .fail_on = KFAIL_TRUNCATED};
	fk.p_vips = fk.p_fast = fk.p_png = fk.params;
	fk.p_vips.choice = KERNEL_VIPS;
	fk.p_fast.choice = KERNEL_JPEGFAST;
	fk.p_png.choice = KERNEL_PNGFAST;
	fk.vips = kernel_new(&fk.p_vips);
	fk.fast = kernel_new(&fk.p_fast);
	fk.png = kernel_new(&fk.p_png);
	if (!fk.vips || !fk.fast || !fk.png)
		abort();
	fk.dirty_jpg = noise_image(0, &fk.dirty_jpg_len);
	fk.dirty_png = noise_image(1, &fk.dirty_png_len);
	done = 1;
	return &fk;
}

/* One run: the verdict (0 or a negative code) and, on success, the output in *res. */
static int run(struct kernel *k, const uint8_t *in, size_t len, struct kernel_result *res)
{
	struct vherr err = {0};
	int rc = kernel_run(k, in, len, res, &err);

	FUZZ_CHECK(rc <= 0, "kernel_run returned %d", rc);
	FUZZ_CHECK(rc == 0 || (!res->data && res->len == 0), "output left on failure");
	FUZZ_CHECK(rc == 0 || err.msg[0], "failure %d without a message", rc);
	return rc;
}

/* Runs k on in, then on the dirtying image, then on in again: same verdict, same bytes.
 * Returns the verdict. */
static int run_twice(struct kernel *k, const char *name, const uint8_t *in, size_t len,
		     const void *dirty, size_t dirty_len)
{
	struct kernel_result a = {0}, b = {0}, d = {0};
	int rc_a = run(k, in, len, &a), rc_b;

	FUZZ_CHECK(run(k, dirty, dirty_len, &d) == 0, "%s refused the dirtying image", name);
	kernel_result_release(&d);
	rc_b = run(k, in, len, &b);
	FUZZ_CHECK(rc_a == rc_b, "%s: verdict %d, then %d after another image", name, rc_a,
		   rc_b);
	FUZZ_CHECK(a.len == b.len && (a.len == 0 || !memcmp(a.data, b.data, a.len)),
		   "%s: the output changed after another image ran (%zu, %zu bytes): a "
		   "buffer not fully written by the decoder",
		   name, a.len, b.len);
	kernel_result_release(&a);
	kernel_result_release(&b);
	return rc_a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_kernels *fk = setup();
	int is_jpeg = jpegfast_accepts(&fk->params, data, size);
	int is_png = pngfast_accepts(&fk->params, data, size);
	int rc_vips;

	if (size > (1u << 20) || (!is_jpeg && !is_png))
		return 0; /* only libvips would run: nothing to compare */
	rc_vips =
	    run_twice(fk->vips, "libvips", data, size, is_jpeg ? fk->dirty_jpg : fk->dirty_png,
		      is_jpeg ? fk->dirty_jpg_len : fk->dirty_png_len);
	if (is_jpeg) {
		int rc = run_twice(fk->fast, "jpeg-fast", data, size, fk->dirty_jpg,
				   fk->dirty_jpg_len);

		FUZZ_CHECK((rc == 0) == (rc_vips == 0),
			   "jpeg-fast and libvips disagree: %d and %d", rc, rc_vips);
	}
	if (is_png) {
		int rc = run_twice(fk->png, "png-fast", data, size, fk->dirty_png,
				   fk->dirty_png_len);

		FUZZ_CHECK((rc == 0) == (rc_vips == 0),
			   "png-fast and libvips disagree: %d and %d", rc, rc_vips);
	}
	return 0;
}
