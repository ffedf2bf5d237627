/* plane: see plane.h. Moved out of jpegfast.c unchanged when pngfast.c came to need
 * the same steps (jpegfast's outputs stayed byte-identical). */
#include "kernels/plane.h"

#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

void plane_buf_release(struct plane_buf *b)
{
	VH_FREE(b->p);
	b->cap = 0;
}

int plane_buf_reserve(struct plane_buf *b, size_t size)
{
	void *p = NULL;

	if (b->cap >= size)
		return 0;
	plane_buf_release(b);
	if (posix_memalign(&p, PLANE_ALIGN, size))
		return -1;
	b->p = p;
	b->cap = size;
	return 0;
}

int plane_alloc(struct plane_buf *b, struct plane *pl, int n, const int *w, const int *h,
		struct vherr *err)
{
	size_t total = PLANE_ALIGN, off = 0;

	for (int i = 0; i < n; i++) {
		pl[i].w = w[i];
		pl[i].h = h[i];
		pl[i].stride = ALIGN_UP(w[i] + 1, PLANE_ALIGN);
		total += (size_t)pl[i].stride * ((size_t)h[i] + 1);
	}
	if (plane_buf_reserve(b, total))
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_TRANSFORM,
				 "cannot allocate %zu bytes of image planes", total);
	for (int i = 0; i < n; i++) {
		pl[i].p = b->p + off;
		off += (size_t)pl[i].stride * ((size_t)h[i] + 1);
	}
	return 0;
}

void plane_fill(const struct plane *pl, uint8_t v)
{
	for (int y = 0; y < pl->h; y++)
		memset(pl->p + (size_t)y * pl->stride, v, pl->w);
}

void plane_blit(const struct plane *src, const struct plane *dst, int x, int y)
{
	int w = src->w < dst->w - x ? src->w : dst->w - x;
	int h = src->h < dst->h - y ? src->h : dst->h - y;

	for (int r = 0; r < h && w > 0; r++)
		memcpy(dst->p + (size_t)(y + r) * dst->stride + x,
		       src->p + (size_t)r * src->stride, w);
}

struct plane plane_window(const struct plane *src, int x, int y, int w, int h)
{
	struct plane out = {src->p + (size_t)y * src->stride + x, w, h, src->stride};

	return out;
}

/* ---- orientation ----------------------------------------------------------- */

/* Where the pixel (0, y) of the oriented plane comes from in src, and the step in src
 * for one pixel right, for EXIF orientation o. */
static const uint8_t *orient_row(const struct plane *src, int o, int y, ptrdiff_t *step)
{
	ptrdiff_t s = src->stride;
	int w = src->w, h = src->h;

	switch (o) {
	case 2: /* mirror */
		*step = -1;
		return src->p + y * s + (w - 1);
	case 3: /* rotate 180 */
		*step = -1;
		return src->p + (h - 1 - y) * s + (w - 1);
	case 4: /* flip */
		*step = 1;
		return src->p + (h - 1 - y) * s;
	case 5: /* transpose */
		*step = s;
		return src->p + y;
	case 6: /* rotate 90 clockwise */
		*step = -s;
		return src->p + (h - 1) * s + y;
	case 7: /* transverse */
		*step = -s;
		return src->p + (h - 1) * s + (w - 1 - y);
	case 8: /* rotate 270 clockwise */
	default:
		*step = s;
		return src->p + (w - 1 - y);
	}
}

void plane_orient(const struct plane *src, const struct plane *dst, int o)
{
	for (int x0 = 0; x0 < dst->w; x0 += 64) {
		int x1 = x0 + 64 < dst->w ? x0 + 64 : dst->w;

		for (int y = 0; y < dst->h; y++) {
			ptrdiff_t step;
			const uint8_t *s = orient_row(src, o, y, &step);
			uint8_t *d = dst->p + (size_t)y * dst->stride;

			for (int x = x0; x < x1; x++)
				d[x] = s[x * step];
		}
	}
}

/* ---- resampling ------------------------------------------------------------ */

/* Whether two filter parameter pairs (NULL: libswscale's defaults) are the same. */
static int same_param(const double *a, const double *b)
{
	return a == b || (a && b && a[0] == b[0] && a[1] == b[1]);
}

/* A libswscale context for one plane size pair and filter, from the cache. */
static struct SwsContext *scaler_get(struct plane_scalers *c, int sw, int sh, int dw, int dh,
				     int flags, const double *param)
{
	struct plane_scaler *victim = &c->s[0];

	c->tick++;
	for (int i = 0; i < PLANE_SCALERS; i++) {
		struct plane_scaler *s = &c->s[i];

		if (s->ctx && s->sw == sw && s->sh == sh && s->dw == dw && s->dh == dh &&
		    s->flags == flags && same_param(s->param, param)) {
			s->used = c->tick;
			return s->ctx;
		}
		if (s->used < victim->used)
			victim = s;
	}
	sws_freeContext(victim->ctx);
	victim->ctx = sws_getContext(sw, sh, AV_PIX_FMT_GRAY8, dw, dh, AV_PIX_FMT_GRAY8, flags,
				     NULL, NULL, param);
	victim->sw = sw;
	victim->sh = sh;
	victim->dw = dw;
	victim->dh = dh;
	victim->flags = flags;
	victim->param = param;
	victim->used = victim->ctx ? c->tick : 0;
	return victim->ctx;
}

int plane_scale(struct plane_scalers *c, const struct plane *src, const struct plane *dst,
		int flags, const double *param, struct vherr *err)
{
	struct SwsContext *ctx = scaler_get(c, src->w, src->h, dst->w, dst->h, flags, param);
	const uint8_t *sp[4] = {src->p, NULL, NULL, NULL};
	uint8_t *dp[4] = {dst->p, NULL, NULL, NULL};
	int ss[4] = {src->stride, 0, 0, 0}, ds[4] = {dst->stride, 0, 0, 0};

	if (!ctx)
		return vherr_set(err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
				 "cannot set up scaling %dx%d to %dx%d", src->w, src->h, dst->w,
				 dst->h);
	if (sws_scale(ctx, sp, ss, 0, src->h, dp, ds) != dst->h)
		return vherr_set(err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
				 "cannot scale %dx%d to %dx%d", src->w, src->h, dst->w, dst->h);
	return 0;
}

void plane_scalers_release(struct plane_scalers *c)
{
	if (!c)
		return;
	for (int i = 0; i < PLANE_SCALERS; i++) {
		sws_freeContext(c->s[i].ctx);
		c->s[i].ctx = NULL;
		c->s[i].used = 0;
	}
}
