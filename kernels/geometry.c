#include "kernels/geometry.h"

#include <stdint.h>
#include <string.h>

static const char *const mode_names[] = {
    [GEOMETRY_STRETCH] = "stretch", [GEOMETRY_FIT] = "fit", [GEOMETRY_SHORT] = "short",
    [GEOMETRY_CROP] = "crop",	    [GEOMETRY_PAD] = "pad",
};

#define N_MODES ((int)(sizeof(mode_names) / sizeof(mode_names[0])))

/* Returns round(num / den) for num >= 0, den > 0 (halves round up). */
static int64_t div_round(int64_t num, int64_t den)
{
	return (2 * num + den) / (2 * den);
}

/* Scales side so that `from` becomes `to`: round(side * to / from), at least 1. */
static int64_t scale_side(int side, int to, int from)
{
	int64_t v = div_round((int64_t)side * to, from);

	return v < 1 ? 1 : v;
}

/* Sets *w x *h to the size with the aspect of in_w x in_h that fits inside
 * (cover = 0) or covers (cover = 1) tw x th; the constraining side is exact. */
static int scale_keep_aspect(int in_w, int in_h, int tw, int th, int cover, int *w, int *h)
{
	/* tw / in_w <= th / in_h  <=>  tw * in_h <= th * in_w */
	int width_ratio_smaller = (int64_t)tw * in_h <= (int64_t)th * in_w;
	int width_exact = cover ? !width_ratio_smaller : width_ratio_smaller;
	int64_t sw, sh;

	if (width_exact) {
		sw = tw;
		sh = scale_side(in_h, tw, in_w);
	} else {
		sh = th;
		sw = scale_side(in_w, th, in_h);
	}
	if (sw > GEOMETRY_MAX_SIDE || sh > GEOMETRY_MAX_SIDE)
		return -1;
	*w = (int)sw;
	*h = (int)sh;
	return 0;
}

int geometry_plan(enum geometry_mode mode, int in_w, int in_h, int tw, int th,
		  struct geometry *out)
{
	int cover = mode == GEOMETRY_SHORT || mode == GEOMETRY_CROP;
	struct geometry g = {0};

	if (in_w < 1 || in_h < 1 || tw < 1 || th < 1 || tw > GEOMETRY_MAX_SIDE ||
	    th > GEOMETRY_MAX_SIDE || (unsigned)mode >= (unsigned)N_MODES)
		return -1;
	if (mode == GEOMETRY_STRETCH) {
		g.scaled_w = tw;
		g.scaled_h = th;
	} else if (scale_keep_aspect(in_w, in_h, tw, th, cover, &g.scaled_w, &g.scaled_h)) {
		return -1;
	}
	g.out_w = g.scaled_w;
	g.out_h = g.scaled_h;
	if (mode == GEOMETRY_CROP) {
		g.crop_x = (g.scaled_w - tw) / 2;
		g.crop_y = (g.scaled_h - th) / 2;
		g.out_w = tw;
		g.out_h = th;
	} else if (mode == GEOMETRY_PAD) {
		g.pad_x = (tw - g.scaled_w) / 2;
		g.pad_y = (th - g.scaled_h) / 2;
		g.out_w = tw;
		g.out_h = th;
	}
	*out = g;
	return 0;
}

int geometry_mode_parse(const char *s, enum geometry_mode *mode)
{
	for (int i = 0; s && i < N_MODES; i++) {
		if (strcmp(s, mode_names[i]) == 0) {
			*mode = (enum geometry_mode)i;
			return 0;
		}
	}
	return -1;
}

const char *geometry_mode_name(enum geometry_mode mode)
{
	return (unsigned)mode < (unsigned)N_MODES ? mode_names[mode] : "unknown";
}
