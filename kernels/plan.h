/* plan: the checks and geometry every kernel applies to one image before decoding it,
 * so both kernels refuse and size the same images the same way. */
#ifndef VHPREP_KERNELS_PLAN_H
#define VHPREP_KERNELS_PLAN_H

#include "common/vherr.h"
#include "kernels/geometry.h"
#include "kernels/kernel.h"

/* For an in_w x in_h image as stored (swap: the EXIF orientation that will be applied
 * swaps width and height): refuses it when it has more than p->max_pixels pixels
 * (VHERR_TOO_LARGE, stage DECODE: read from the header, nothing decoded yet), plans the
 * geometry on the oriented size (no resize keeps that size), and refuses a plan whose
 * scaled intermediate exceeds max_pixels (VHERR_TOO_LARGE, stage TRANSFORM) or a side
 * GEOMETRY_MAX_SIDE (VHERR_TRANSFORM). Returns 0 with *geo set, or a negative code. */
int plan_image(const struct kernel_params *p, int in_w, int in_h, int swap,
	       struct geometry *geo, struct vherr *err);

/* The verdict on a JPEG whose decoder's first warning (libjpeg's text) is msg, at
 * fail_on f: VHERR_TRUNCATED when it says the scan ended before the rows did (the
 * decoder fills the rest with grey: "premature end of data segment", "Premature end
 * of JPEG file"), VHERR_CORRUPT when it skipped data to resynchronise ("found marker
 * ... instead of RST"), each only when f is not KFAIL_NONE; 0 when the rows were all
 * decoded from the data (e.g. "extraneous bytes before marker"). At KFAIL_WARNING every
 * warning is VHERR_CORRUPT, libvips' verdict there. */
enum vherr_code plan_jpeg_warning(const char *msg, enum kernel_fail_on f);

#endif
