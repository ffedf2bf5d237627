/* mkencode: one painted picture -> the bytes of one file in a given format variant.
 *
 * The variants are the shapes of real inputs the engine must handle: plain and progressive
 * JPEG, JPEG with EXIF orientation 6 or 8 (pixels stored rotated, as a phone writes them),
 * CMYK JPEG and a Display-P3 JPEG (both with an embedded ICC profile), 8-bit RGB, RGBA, grey
 * and 16-bit PNG, WebP and LZW TIFF. Thread-safe; output depends only on the inputs. */
#ifndef VHPREP_BENCH_MKENCODE_H
#define VHPREP_BENCH_MKENCODE_H

#include <stddef.h>
#include <stdint.h>
#include <vips/vips.h>

/* X(NAME, "name", ".ext") */
#define MKENCODE_KINDS(X)                                                                      \
	X(JPEG, "jpeg", ".jpg")                                                                \
	X(JPEG_PROGRESSIVE, "jpeg-progressive", ".jpg")                                        \
	X(JPEG_ORIENT6, "jpeg-orientation-6", ".jpg")                                          \
	X(JPEG_ORIENT8, "jpeg-orientation-8", ".jpg")                                          \
	X(JPEG_CMYK, "jpeg-cmyk", ".jpg")                                                      \
	X(JPEG_P3, "jpeg-icc-p3", ".jpg")                                                      \
	X(PNG, "png", ".png")                                                                  \
	X(PNG_RGBA, "png-rgba", ".png")                                                        \
	X(PNG_GREY, "png-grey", ".png")                                                        \
	X(PNG16, "png-16bit", ".png")                                                          \
	X(WEBP, "webp", ".webp")                                                               \
	X(TIFF, "tiff", ".tif")

enum mkencode_kind {
#define MKENCODE_ENUM(name, str, ext) MKENCODE_##name,
	MKENCODE_KINDS(MKENCODE_ENUM)
#undef MKENCODE_ENUM
	    MKENCODE__COUNT
};

/* One encoded file. data is g_malloc'd and owned by the struct (mkencode_release frees it);
 * width/height/bands are what a header reader reports for the stored pixels (an oriented
 * JPEG stores its upright width x height rotated, so they are swapped). */
struct mkencode_file {
	void *data;
	size_t len;
	int width, height, bands;
};

/* Encodes `rgb` (3-band uchar sRGB, upright) as `kind` at `quality` (JPEG/WebP/TIFF-JPEG Q).
 * `seed` drives variant content (the alpha mask). Returns 0 and fills *out, or -1 with the
 * libvips error buffer set. */
int mkencode_image(VipsImage *rgb, enum mkencode_kind kind, int quality, uint64_t seed,
		   struct mkencode_file *out);

/* Frees out->data (NULL is fine) and zeroes the struct. */
void mkencode_release(struct mkencode_file *out);

/* The variant's name ("jpeg-cmyk") and its file extension (".jpg"). */
const char *mkencode_name(enum mkencode_kind kind);
const char *mkencode_ext(enum mkencode_kind kind);

#endif
