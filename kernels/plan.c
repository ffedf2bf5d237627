#include "kernels/plan.h"

#include <string.h>

static int check_pixels(const struct kernel_params *p, int w, int h, struct vherr *err)
{
	uint64_t px = (uint64_t)w * (uint64_t)h;

	if (p->max_pixels && px > p->max_pixels)
		return vherr_set(err, VHERR_TOO_LARGE, VHSTAGE_DECODE,
				 "image is %dx%d (%llu pixels), over the limit of %llu", w, h,
				 (unsigned long long)px, (unsigned long long)p->max_pixels);
	return 0;
}

int plan_image(const struct kernel_params *p, int in_w, int in_h, int swap,
	       struct geometry *geo, struct vherr *err)
{
	int ow = swap ? in_h : in_w, oh = swap ? in_w : in_h;
	uint64_t scaled;
	int rc = check_pixels(p, in_w, in_h, err);

	if (rc)
		return rc;
	if (p->resize_w <= 0 || p->resize_h <= 0) {
		if (geometry_plan(GEOMETRY_STRETCH, ow, oh, ow, oh, geo))
			return vherr_set(err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
					 "image is %dx%d, over %d pixels per side", ow, oh,
					 GEOMETRY_MAX_SIDE);
		return 0;
	}
	if (geometry_plan(p->mode, ow, oh, p->resize_w, p->resize_h, geo))
		return vherr_set(err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
				 "cannot %s %dx%d to %dx%d: a side would exceed %d",
				 geometry_mode_name(p->mode), ow, oh, p->resize_w, p->resize_h,
				 GEOMETRY_MAX_SIDE);
	/* A very long thin image covering a square target scales to a huge
	 * intermediate; it obeys the same pixel limit as the input. */
	scaled = (uint64_t)geo->scaled_w * (uint64_t)geo->scaled_h;
	if (p->max_pixels && scaled > p->max_pixels)
		return vherr_set(err, VHERR_TOO_LARGE, VHSTAGE_TRANSFORM,
				 "scaling %dx%d to %dx%d (%s) exceeds the pixel limit of %llu",
				 ow, oh, geo->scaled_w, geo->scaled_h, geometry_mode_name(p->mode),
				 (unsigned long long)p->max_pixels);
	return 0;
}

enum vherr_code plan_jpeg_warning(const char *msg, enum kernel_fail_on f)
{
	if (f == KFAIL_NONE)
		return 0;
	if (f == KFAIL_WARNING) /* any warning, as libvips' reader fails it there */
		return VHERR_CORRUPT;
	if (strcasestr(msg, "premature end"))
		return VHERR_TRUNCATED;
	if (strcasestr(msg, "instead of RST"))
		return VHERR_CORRUPT;
	return 0;
}
