/* mkdraw: shapes on memory images. See mkdraw.h. */
#include "mkdraw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The horizontal run [x1, x2] of row y, clipped. */
static void mkdraw_span(VipsImage *im, int y, int x1, int x2, const VipsPel *ink)
{
	int bands = im->Bands;
	VipsPel *p;

	if (y < 0 || y >= im->Ysize)
		return;
	x1 = MAX(x1, 0);
	x2 = MIN(x2, im->Xsize - 1);
	p = VIPS_IMAGE_ADDR(im, 0, y);
	for (int x = x1; x <= x2; x++)
		memcpy(p + (size_t)x * bands, ink, (size_t)bands);
}

static void mkdraw_fill(VipsImage *im, int x, int y, int w, int h, const VipsPel *ink)
{
	for (int row = y; row < y + h; row++)
		mkdraw_span(im, row, x, x + w - 1, ink);
}

void mkdraw_rect(VipsImage *im, int x, int y, int w, int h, int thick, const VipsPel *ink)
{
	if (thick <= 0 || 2 * thick >= MIN(w, h)) {
		mkdraw_fill(im, x, y, w, h, ink);
		return;
	}
	mkdraw_fill(im, x, y, w, thick, ink);
	mkdraw_fill(im, x, y + h - thick, w, thick, ink);
	mkdraw_fill(im, x, y + thick, thick, h - 2 * thick, ink);
	mkdraw_fill(im, x + w - thick, y + thick, thick, h - 2 * thick, ink);
}

/* Half-width of the disc of radius r at height dy from its centre, or -1 outside. */
static int mkdraw_half(int r, int dy)
{
	return abs(dy) > r ? -1 : (int)sqrt((double)r * r - (double)dy * dy);
}

void mkdraw_circle(VipsImage *im, int cx, int cy, int r, int thick, const VipsPel *ink)
{
	int inner = thick > 0 ? r - thick : -1;

	for (int dy = -r; dy <= r; dy++) {
		int outer = mkdraw_half(r, dy), hole = inner >= 0 ? mkdraw_half(inner, dy) : -1;

		if (hole < 0) {
			mkdraw_span(im, cy + dy, cx - outer, cx + outer, ink);
			continue;
		}
		mkdraw_span(im, cy + dy, cx - outer, cx - hole - 1, ink);
		mkdraw_span(im, cy + dy, cx + hole + 1, cx + outer, ink);
	}
}

void mkdraw_line(VipsImage *im, int x1, int y1, int x2, int y2, int thick, const VipsPel *ink)
{
	int dx = abs(x2 - x1), dy = -abs(y2 - y1);
	int sx = x1 < x2 ? 1 : -1, sy = y1 < y2 ? 1 : -1;
	int err = dx + dy;

	for (;;) {
		mkdraw_fill(im, x1, y1, thick, thick, ink);
		if (x1 == x2 && y1 == y2)
			break;
		int e2 = 2 * err;

		if (e2 >= dy) {
			err += dy;
			x1 += sx;
		}
		if (e2 <= dx) {
			err += dx;
			y1 += sy;
		}
	}
}

void mkdraw_hatch(VipsImage *im, int x, int y, int w, int h, int period, int dir,
		  const VipsPel *ink)
{
	int bands = im->Bands;

	for (int row = MAX(y, 0); row < MIN(y + h, im->Ysize); row++) {
		VipsPel *p = VIPS_IMAGE_ADDR(im, 0, row);

		for (int col = MAX(x, 0); col < MIN(x + w, im->Xsize); col++) {
			int phase = dir == 0 ? col : dir == 1 ? row : col + h - (row - y);

			if (phase % period == 0)
				memcpy(p + (size_t)col * bands, ink, (size_t)bands);
		}
	}
}

void mkdraw_mask(VipsImage *im, VipsImage *mask, int x, int y, const VipsPel *ink)
{
	int bands = im->Bands;

	for (int my = MAX(0, -y); my < mask->Ysize && y + my < im->Ysize; my++) {
		const VipsPel *m = VIPS_IMAGE_ADDR(mask, 0, my);
		VipsPel *p = VIPS_IMAGE_ADDR(im, 0, y + my);

		for (int mx = MAX(0, -x); mx < mask->Xsize && x + mx < im->Xsize; mx++) {
			VipsPel *px = p + (size_t)(x + mx) * bands;
			int a = m[mx];

			for (int b = 0; a && b < bands; b++)
				px[b] = (VipsPel)((px[b] * (255 - a) + ink[b] * a + 127) / 255);
		}
	}
}
