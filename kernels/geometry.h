/* geometry: pure arithmetic of the resize modes. No I/O, no libvips. */
#ifndef VHPREP_KERNELS_GEOMETRY_H
#define VHPREP_KERNELS_GEOMETRY_H

enum geometry_mode {
	GEOMETRY_STRETCH, /* exactly WxH, aspect ignored (PIL img.resize((W, H))) */
	GEOMETRY_FIT,	  /* largest size inside WxH, aspect kept */
	GEOMETRY_SHORT,	  /* smallest size covering WxH, aspect kept, no crop
			     (--resize N: the short side becomes N) */
	GEOMETRY_CROP,	  /* cover WxH, then centre-crop to exactly WxH */
	GEOMETRY_PAD,	  /* fit inside WxH, then pad (centred) to exactly WxH */
};

/* The largest side geometry_plan accepts or produces (libvips' VIPS_MAX_COORD). */
#define GEOMETRY_MAX_SIDE 10000000

/* The plan for one image: scale the (oriented) input to scaled_w x scaled_h, then
 * take the window (crop_x, crop_y, out_w, out_h) of it (crop) or place it at
 * (pad_x, pad_y) on an out_w x out_h canvas (pad). For other modes out = scaled.
 *
 * Rounding (fit, short, crop, pad): the constraining side equals the target exactly;
 * the other side is round-half-up(side * target / source side), at least 1. So fit
 * lies inside WxH and short covers it, both with one side equal, and the aspect
 * error is at most half a pixel (except where the side is clamped to 1).
 * Centring: crop_x = (scaled_w - W) / 2, pad_x = (W - scaled_w) / 2, rounded down
 * (an odd remainder leaves the extra pixel right/bottom); likewise for y.
 * Sources smaller than the target are scaled up. */
struct geometry {
	int scaled_w, scaled_h;
	int crop_x, crop_y; /* CROP only, else 0 */
	int pad_x, pad_y;   /* PAD only, else 0 */
	int out_w, out_h;
};

/* Computes the plan for an in_w x in_h image and a target tw x th in mode.
 * Every size in the result is >= 1. Returns 0 and fills *out, or -1 (out untouched)
 * if an input is < 1, the mode is unknown, or a side would exceed GEOMETRY_MAX_SIDE.
 * Pure and thread-safe. */
int geometry_plan(enum geometry_mode mode, int in_w, int in_h, int tw, int th,
		  struct geometry *out);

/* Parses "stretch|fit|short|crop|pad"; returns 0 and sets *mode, or -1. */
int geometry_mode_parse(const char *s, enum geometry_mode *mode);
/* Returns the mode's name; never NULL. */
const char *geometry_mode_name(enum geometry_mode mode);

#endif
