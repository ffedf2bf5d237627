/* mkdraw: solid shapes rasterised straight into a libvips memory image.
 *
 * Every function takes a uchar image whose pixels are in memory (vips_image_copy_memory)
 * and an ink of im->Bands values; shapes are clipped to the image. No antialiasing: the
 * point is hard edges. The caller owns `im` and must be its only user during the call. */
#ifndef VHPREP_BENCH_MKDRAW_H
#define VHPREP_BENCH_MKDRAW_H

#include <vips/vips.h>

/* The rectangle [x, x+w) x [y, y+h): filled when thick is 0, else an outline thick wide. */
void mkdraw_rect(VipsImage *im, int x, int y, int w, int h, int thick, const VipsPel *ink);

/* The disc of radius r at (cx, cy): filled when thick is 0, else a ring thick wide. */
void mkdraw_circle(VipsImage *im, int cx, int cy, int r, int thick, const VipsPel *ink);

/* A straight line from (x1, y1) to (x2, y2) drawn with a thick x thick square brush. */
void mkdraw_line(VipsImage *im, int x1, int y1, int x2, int y2, int thick, const VipsPel *ink);

/* Lines one pixel wide, `period` apart, over [x, x+w) x [y, y+h): dir 0 vertical,
 * 1 horizontal, 2 diagonal. */
void mkdraw_hatch(VipsImage *im, int x, int y, int w, int h, int period, int dir,
		  const VipsPel *ink);

/* Blends ink through a 1-band uchar memory mask (255 = ink) placed at (x, y). */
void mkdraw_mask(VipsImage *im, VipsImage *mask, int x, int y, const VipsPel *ink);

#endif
