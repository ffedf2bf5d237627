/* Fuzzes kernel_probe (kernels/probe.c: the JPEG, PNG, GIF, WebP, TIFF and BMP header
 * parsers behind it). Input: a file's bytes. Each input is probed whole and from its
 * first half (the file size still the whole's), each copy in a buffer of exactly its
 * size so that any read past it is caught. Every answer must be one the engine can act
 * on: a known code with err filled, MORE asking for more bytes than it had (or the whole
 * file), or a plan with sizes, names and a non-zero estimate. */
#include "kernels/kernel.h"
#include "tests/fuzz/fuzz.h"

static void check(const struct kernel_params *p, const uint8_t *data, size_t len, size_t size)
{
	uint8_t *buf = malloc(len ? len : 1);
	struct kernel_probe o;
	struct vherr err = {0};
	int rc;

	if (!buf)
		abort();
	memcpy(buf, data, len);
	rc = kernel_probe(p, len ? buf : NULL, len, size, &o, &err);
	FUZZ_CHECK(rc == 0 || rc == KERNEL_PROBE_MORE || rc == -VHERR_EMPTY ||
		       rc == -VHERR_NOT_IMAGE || rc == -VHERR_TOO_LARGE ||
		       rc == -VHERR_TRUNCATED || rc == -VHERR_CORRUPT || rc == -VHERR_TRANSFORM,
		   "returned %d", rc);
	FUZZ_CHECK(size > 0 || rc == -VHERR_EMPTY, "empty file: %d", rc);
	if (rc < 0)
		FUZZ_CHECK(err.code == (enum vherr_code) - rc && err.msg[0],
			   "err %d '%s' for %d", err.code, err.msg, rc);
	if (rc == KERNEL_PROBE_MORE)
		FUZZ_CHECK(o.need_bytes <= size && (o.need_bytes > len || o.need_bytes == size),
			   "need %llu of %zu, had %zu", (unsigned long long)o.need_bytes, size,
			   len);
	if (rc == 0) {
		FUZZ_CHECK(o.width > 0 && o.height > 0 && o.out_w > 0 && o.out_h > 0,
			   "%dx%d -> %dx%d", o.width, o.height, o.out_w, o.out_h);
		FUZZ_CHECK(o.format && o.loader && o.kernel && o.peak_bytes > 0, "%s", "empty");
		FUZZ_CHECK(o.orientation >= 1 && o.orientation <= 8, "orientation %d",
			   o.orientation);
		FUZZ_CHECK(o.out_format != KFMT_KEEP, "%s", "keep");
		FUZZ_CHECK((uint64_t)o.width * (uint64_t)o.height <= p->max_pixels, "%dx%d",
			   o.width, o.height);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct kernel_params p = {
	    .resize_w = 224,
	    .resize_h = 224,
	    .mode = GEOMETRY_CROP,
	    .autorotate = 1,
	    .format = KFMT_KEEP,
	    .quality = 75,
	    .max_pixels = 100000000,
	    .fail_on = KFAIL_TRUNCATED,
	    .choice = KERNEL_AUTO,
	};

	if (!ready) {
		struct vherr err = {0};

		FUZZ_CHECK(kernel_global_init("fuzz_probe", &err) == 0, "%s", err.msg);
		ready = 1;
	}
	if (size > (1u << 20))
		return 0;
	check(&p, data, size, size);
	check(&p, data, size / 2, size);
	return 0;
}
