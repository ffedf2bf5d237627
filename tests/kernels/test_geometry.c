#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/geometry.h"

static const int sides[] = {1,	 2,   3,   5,	7,   10,  16,  37,   99,   100,	 101,  223,
			    224, 225, 299, 300, 333, 500, 640, 1000, 1023, 1920, 4000, 10000};
static const int targets[][2] = {{1, 1},     {2, 3},	  {224, 224}, {224, 100},
				 {100, 224}, {1, 500},	  {500, 1},   {299, 299},
				 {640, 480}, {37, 10000}, {10000, 37}};

#define N(a) ((int)(sizeof(a) / sizeof(a[0])))

/* The other side's exact value when `side` is scaled so that `from` becomes `to`. */
static double exact(int side, int to, int from)
{
	return (double)side * to / from;
}

/* Whether side is the exact value rounded to nearest, or 1 where that is < 1. */
static int rounded(int side, double e)
{
	return fabs(side - e) <= 0.5 || (side == 1 && e < 1);
}

/* One side equals its target and the other is the exact value rounded (or 1). */
static void check_aspect(int in_w, int in_h, int tw, int th, const struct geometry *g)
{
	int width_exact = g->scaled_w == tw && rounded(g->scaled_h, exact(in_h, tw, in_w));
	int height_exact = g->scaled_h == th && rounded(g->scaled_w, exact(in_w, th, in_h));

	cr_assert(width_exact || height_exact, "%dx%d → %dx%d: %dx%d (exact %.3f x %.3f)", in_w,
		  in_h, tw, th, g->scaled_w, g->scaled_h, exact(in_w, th, in_h),
		  exact(in_h, tw, in_w));
}

static void check_centred(int offset, int inner, int outer, const char *what)
{
	int left = offset, right = outer - inner - offset;

	cr_assert(left >= 0 && right >= 0, "%s: %d in %d at %d", what, inner, outer, offset);
	cr_assert(right - left == 0 || right - left == 1, "%s not centred: left %d right %d",
		  what, left, right);
}

static void check_plan(enum geometry_mode mode, int in_w, int in_h, int tw, int th)
{
	struct geometry g;
	int rc = geometry_plan(mode, in_w, in_h, tw, th, &g);

	if (rc != 0) {
		/* only a cover of an extreme aspect may need a side over the limit */
		double need = fmax(exact(in_w, th, in_h), exact(in_h, tw, in_w));

		cr_assert((mode == GEOMETRY_SHORT || mode == GEOMETRY_CROP) &&
			      need > GEOMETRY_MAX_SIDE,
			  "%s %dx%d → %dx%d failed", geometry_mode_name(mode), in_w, in_h, tw,
			  th);
		return;
	}
	cr_assert(g.scaled_w >= 1 && g.scaled_h >= 1 && g.out_w >= 1 && g.out_h >= 1);
	switch (mode) {
	case GEOMETRY_STRETCH:
		cr_assert(g.scaled_w == tw && g.scaled_h == th);
		break;
	case GEOMETRY_FIT:
	case GEOMETRY_PAD:
		cr_assert(g.scaled_w <= tw && g.scaled_h <= th, "%s %dx%d → %dx%d: %dx%d",
			  geometry_mode_name(mode), in_w, in_h, tw, th, g.scaled_w, g.scaled_h);
		check_aspect(in_w, in_h, tw, th, &g);
		break;
	case GEOMETRY_SHORT:
	case GEOMETRY_CROP:
		cr_assert(g.scaled_w >= tw && g.scaled_h >= th, "%s %dx%d → %dx%d: %dx%d",
			  geometry_mode_name(mode), in_w, in_h, tw, th, g.scaled_w, g.scaled_h);
		check_aspect(in_w, in_h, tw, th, &g);
		break;
	}
	if (mode == GEOMETRY_CROP) {
		cr_assert(g.out_w == tw && g.out_h == th);
		check_centred(g.crop_x, tw, g.scaled_w, "crop x");
		check_centred(g.crop_y, th, g.scaled_h, "crop y");
	} else {
		cr_assert(g.crop_x == 0 && g.crop_y == 0);
	}
	if (mode == GEOMETRY_PAD) {
		cr_assert(g.out_w == tw && g.out_h == th);
		check_centred(g.pad_x, g.scaled_w, tw, "pad x");
		check_centred(g.pad_y, g.scaled_h, th, "pad y");
	} else {
		cr_assert(g.pad_x == 0 && g.pad_y == 0);
	}
	if (mode == GEOMETRY_STRETCH || mode == GEOMETRY_FIT || mode == GEOMETRY_SHORT)
		cr_assert(g.out_w == g.scaled_w && g.out_h == g.scaled_h);
}

Test(geometry, sweep_every_mode_size_and_target)
{
	static const enum geometry_mode modes[] = {GEOMETRY_STRETCH, GEOMETRY_FIT,
						   GEOMETRY_SHORT, GEOMETRY_CROP, GEOMETRY_PAD};

	for (int m = 0; m < N(modes); m++)
		for (int w = 0; w < N(sides); w++)
			for (int h = 0; h < N(sides); h++)
				for (int t = 0; t < N(targets); t++)
					check_plan(modes[m], sides[w], sides[h], targets[t][0],
						   targets[t][1]);
}

Test(geometry, pseudo_random_sweep)
{
	unsigned s = 12345;

	for (int i = 0; i < 200000; i++) {
		s = s * 1103515245u + 12345u;
		int in_w = 1 + (int)(s >> 8) % 5000;
		s = s * 1103515245u + 12345u;
		int in_h = 1 + (int)(s >> 8) % 5000;
		s = s * 1103515245u + 12345u;
		int tw = 1 + (int)(s >> 8) % 1024;
		s = s * 1103515245u + 12345u;
		int th = 1 + (int)(s >> 8) % 1024;

		check_plan((enum geometry_mode)(i % 5), in_w, in_h, tw, th);
	}
}

Test(geometry, known_values)
{
	struct geometry g;

	cr_assert_eq(geometry_plan(GEOMETRY_FIT, 2000, 1000, 224, 224, &g), 0);
	cr_assert(g.scaled_w == 224 && g.scaled_h == 112);
	cr_assert_eq(geometry_plan(GEOMETRY_SHORT, 2000, 1000, 224, 224, &g), 0);
	cr_assert(g.scaled_w == 448 && g.scaled_h == 224);
	cr_assert_eq(geometry_plan(GEOMETRY_CROP, 2000, 1000, 224, 224, &g), 0);
	cr_assert(g.scaled_w == 448 && g.crop_x == 112 && g.crop_y == 0);
	cr_assert(g.out_w == 224 && g.out_h == 224);
	cr_assert_eq(geometry_plan(GEOMETRY_PAD, 2000, 1000, 224, 224, &g), 0);
	cr_assert(g.scaled_h == 112 && g.pad_x == 0 && g.pad_y == 56);
	/* 500x375 → short 224: 298.67 rounds to 299 */
	cr_assert_eq(geometry_plan(GEOMETRY_SHORT, 500, 375, 224, 224, &g), 0);
	cr_assert(g.scaled_w == 299 && g.scaled_h == 224);
	/* 3x2 fit 2x2: 1.33 rounds to 1 */
	cr_assert_eq(geometry_plan(GEOMETRY_FIT, 3, 2, 2, 2, &g), 0);
	cr_assert(g.scaled_w == 2 && g.scaled_h == 1);
	/* half rounds up: 4x3 fit 2x2 → 2x1.5 → 2x2 */
	cr_assert_eq(geometry_plan(GEOMETRY_FIT, 4, 3, 2, 2, &g), 0);
	cr_assert(g.scaled_w == 2 && g.scaled_h == 2);
	/* a 1-pixel side never rounds to 0 */
	cr_assert_eq(geometry_plan(GEOMETRY_FIT, 10000, 37, 224, 224, &g), 0);
	cr_assert(g.scaled_w == 224 && g.scaled_h == 1);
	cr_assert_eq(geometry_plan(GEOMETRY_PAD, 1, 10000, 224, 224, &g), 0);
	cr_assert(g.scaled_w == 1 && g.scaled_h == 224 && g.pad_x == 111);
	/* extreme aspect, cover */
	cr_assert_eq(geometry_plan(GEOMETRY_CROP, 10000, 37, 224, 224, &g), 0);
	cr_assert(g.scaled_h == 224 && g.scaled_w == 60541);
	cr_assert(g.crop_x == (60541 - 224) / 2);
	/* upscale */
	cr_assert_eq(geometry_plan(GEOMETRY_SHORT, 10, 5, 100, 100, &g), 0);
	cr_assert(g.scaled_w == 200 && g.scaled_h == 100);
	cr_assert_eq(geometry_plan(GEOMETRY_STRETCH, 1, 1, 224, 100, &g), 0);
	cr_assert(g.out_w == 224 && g.out_h == 100);
}

Test(geometry, rejects_bad_input_and_overflow)
{
	struct geometry g = {.scaled_w = 77};

	cr_assert_eq(geometry_plan(GEOMETRY_FIT, 0, 10, 10, 10, &g), -1);
	cr_assert_eq(geometry_plan(GEOMETRY_FIT, 10, -1, 10, 10, &g), -1);
	cr_assert_eq(geometry_plan(GEOMETRY_FIT, 10, 10, 0, 10, &g), -1);
	cr_assert_eq(geometry_plan(GEOMETRY_FIT, 10, 10, 10, 0, &g), -1);
	cr_assert_eq(geometry_plan((enum geometry_mode)42, 10, 10, 10, 10, &g), -1);
	/* cover of a 10M x 1 strip to 10000x10000 needs a 10^11-pixel side */
	cr_assert_eq(geometry_plan(GEOMETRY_SHORT, 10000000, 1, 10000, 10000, &g), -1);
	cr_assert_eq(geometry_plan(GEOMETRY_STRETCH, 10, 10, GEOMETRY_MAX_SIDE + 1, 1, &g), -1);
	cr_assert_eq(g.scaled_w, 77, "out untouched on failure");
	/* the largest inputs still work without overflow */
	cr_assert_eq(
	    geometry_plan(GEOMETRY_FIT, 2147483647, 2147483647, 10000000, 10000000, &g), 0);
	cr_assert(g.scaled_w == 10000000 && g.scaled_h == 10000000);
}

Test(geometry, mode_names_round_trip)
{
	static const char *const names[] = {"stretch", "fit", "short", "crop", "pad"};
	enum geometry_mode m;

	for (int i = 0; i < N(names); i++) {
		cr_assert_eq(geometry_mode_parse(names[i], &m), 0);
		cr_assert_eq((int)m, i);
		cr_assert_str_eq(geometry_mode_name(m), names[i]);
	}
	cr_assert_eq(geometry_mode_parse("Fit", &m), -1);
	cr_assert_eq(geometry_mode_parse("", &m), -1);
	cr_assert_eq(geometry_mode_parse(NULL, &m), -1);
	cr_assert_str_eq(geometry_mode_name((enum geometry_mode)99), "unknown");
}
