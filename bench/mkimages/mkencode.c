/* mkencode: format variants. See mkencode.h. */
#include "mkencode.h"

#include <string.h>

#include "mkpaint.h"

const char *mkencode_name(enum mkencode_kind kind)
{
	static const char *const names[] = {
#define MKENCODE_NAME(name, str, ext) str,
	    MKENCODE_KINDS(MKENCODE_NAME)
#undef MKENCODE_NAME
	};
	return kind < MKENCODE__COUNT ? names[kind] : "?";
}

const char *mkencode_ext(enum mkencode_kind kind)
{
	static const char *const exts[] = {
#define MKENCODE_EXT(name, str, ext) ext,
	    MKENCODE_KINDS(MKENCODE_EXT)
#undef MKENCODE_EXT
	};
	return kind < MKENCODE__COUNT ? exts[kind] : "";
}

void mkencode_release(struct mkencode_file *out)
{
	g_free(out->data);
	memset(out, 0, sizeof(*out));
}

/* Stores the upright picture rotated, tagged so that autorotation restores it:
 * orientation 6 is undone by a 90-degree clockwise turn, so store it turned 270; 8 the
 * reverse. */
static int mkencode_oriented(VipsObject *scope, VipsImage *in, int orientation, VipsImage **out)
{
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 2);
	VipsAngle angle = orientation == 6 ? VIPS_ANGLE_D270 : VIPS_ANGLE_D90;

	if (vips_rot(in, &t[0], angle, NULL) || vips_copy(t[0], &t[1], NULL))
		return -1;
	vips_image_set_int(t[1], VIPS_META_ORIENTATION, orientation);
	*out = t[1];
	return 0;
}

static int mkencode_rgba(VipsObject *scope, VipsImage *in, uint64_t seed, VipsImage **out)
{
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 2);

	if (mkpaint_alpha(&t[0], in->Xsize, in->Ysize, seed) ||
	    vips_bandjoin2(in, t[0], &t[1], NULL))
		return -1;
	*out = t[1];
	return 0;
}

static int mkencode_png16(VipsObject *scope, VipsImage *in, VipsImage **out)
{
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 3);

	if (vips_linear1(in, &t[0], 257.0, 0.0, NULL) || vips_cast_ushort(t[0], &t[1], NULL) ||
	    vips_copy(t[1], &t[2], "interpretation", VIPS_INTERPRETATION_RGB16, NULL))
		return -1;
	*out = t[2];
	return 0;
}

/* The pixels to store for `kind`: converted, rotated or extended from the upright sRGB. */
static int mkencode_pixels(VipsObject *scope, VipsImage *rgb, enum mkencode_kind kind,
			   uint64_t seed, VipsImage **out)
{
	VipsImage **t = (VipsImage **)vips_object_local_array(scope, 1);

	switch (kind) {
	case MKENCODE_JPEG_ORIENT6:
		return mkencode_oriented(scope, rgb, 6, out);
	case MKENCODE_JPEG_ORIENT8:
		return mkencode_oriented(scope, rgb, 8, out);
	case MKENCODE_JPEG_CMYK:
		if (vips_icc_transform(rgb, &t[0], "cmyk", "input_profile", "srgb", NULL))
			return -1;
		break;
	case MKENCODE_JPEG_P3:
		if (vips_icc_transform(rgb, &t[0], "p3", "input_profile", "srgb", NULL))
			return -1;
		break;
	case MKENCODE_PNG_RGBA:
		return mkencode_rgba(scope, rgb, seed, out);
	case MKENCODE_PNG_GREY:
		if (vips_colourspace(rgb, &t[0], VIPS_INTERPRETATION_B_W, NULL))
			return -1;
		break;
	case MKENCODE_PNG16:
		return mkencode_png16(scope, rgb, out);
	default:
		*out = rgb;
		return 0;
	}
	*out = t[0];
	return 0;
}

/* Metadata is kept only where it is the point of the variant (EXIF orientation, ICC). */
static int mkencode_save(VipsImage *im, enum mkencode_kind kind, int q, void **buf, size_t *len)
{
	switch (kind) {
	case MKENCODE_JPEG:
		return vips_jpegsave_buffer(im, buf, len, "Q", q, "strip", TRUE, NULL);
	case MKENCODE_JPEG_PROGRESSIVE:
		return vips_jpegsave_buffer(im, buf, len, "Q", q, "strip", TRUE, "interlace",
					    TRUE, NULL);
	case MKENCODE_JPEG_ORIENT6:
	case MKENCODE_JPEG_ORIENT8:
	case MKENCODE_JPEG_CMYK:
	case MKENCODE_JPEG_P3:
		return vips_jpegsave_buffer(im, buf, len, "Q", q, NULL);
	case MKENCODE_WEBP:
		return vips_webpsave_buffer(im, buf, len, "Q", q, "strip", TRUE, NULL);
	case MKENCODE_TIFF:
		return vips_tiffsave_buffer(im, buf, len, "compression",
					    VIPS_FOREIGN_TIFF_COMPRESSION_LZW, "strip", TRUE,
					    NULL);
	default:
		return vips_pngsave_buffer(im, buf, len, "compression", 6, "strip", TRUE, NULL);
	}
}

int mkencode_image(VipsImage *rgb, enum mkencode_kind kind, int quality, uint64_t seed,
		   struct mkencode_file *out)
{
	VipsObject *scope = VIPS_OBJECT(vips_image_new());
	VipsImage *im = NULL;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (mkencode_pixels(scope, rgb, kind, seed, &im) ||
	    mkencode_save(im, kind, quality, &out->data, &out->len))
		goto out;
	out->width = im->Xsize;
	out->height = im->Ysize;
	out->bands = im->Bands;
	rc = 0;
out:
	g_object_unref(scope);
	return rc;
}
