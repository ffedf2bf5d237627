/* plane: 8-bit image planes and the work both fast paths do on them (jpegfast.c on
 * Y, Cb, Cr; pngfast.c on R, G, B, A): reused aligned buffers, resampling through a
 * small per-thread cache of libswscale contexts, EXIF orientation, crop windows and
 * pad canvases.
 *
 * Nothing here is shared between threads: a struct plane_buf or plane_scalers belongs
 * to one kernel, which belongs to one worker thread. */
#ifndef VHPREP_KERNELS_PLANE_H
#define VHPREP_KERNELS_PLANE_H

#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"

/* Plane rows start 64-byte aligned (libswscale's SIMD wants 16 at least). */
#define PLANE_ALIGN   64
#define PLANE_SCALERS 4

/* A grow-only buffer, PLANE_ALIGN-aligned. Zero-initialise; plane_buf_release frees. */
struct plane_buf {
	uint8_t *p;
	size_t cap;
};

/* One 8-bit plane: w x h pixels, rows stride bytes apart. A plane laid out by
 * plane_alloc has one spare column and one spare row (jpegfast's encoder padding). */
struct plane {
	uint8_t *p;
	int w, h, stride;
};

/* One cached libswscale context, keyed by its sizes and flags. */
struct plane_scaler {
	struct SwsContext *ctx;
	int sw, sh, dw, dh, flags;
	const double *param; /* as given to plane_scale: static storage or NULL */
	unsigned long used;  /* plane_scalers.tick at last use; 0 = empty slot */
};

/* The least recently used PLANE_SCALERS contexts (80-300 us each to build), so a
 * dataset of one size builds them once. Zero-initialise; plane_scalers_release frees. */
struct plane_scalers {
	struct plane_scaler s[PLANE_SCALERS];
	unsigned long tick;
};

/* Makes b hold at least size bytes; the old content is lost. Returns 0 or -1 (b
 * then empty). */
int plane_buf_reserve(struct plane_buf *b, size_t size);
/* Frees b's memory and empties it; safe on an empty buffer. */
void plane_buf_release(struct plane_buf *b);

/* Lays out n planes of w[i] x h[i] in b (grown if needed) and fills pl[0..n). Each
 * row is PLANE_ALIGN aligned with at least one spare byte; each plane has one spare
 * row, and the buffer ends with PLANE_ALIGN bytes of slack for SIMD over-reads.
 * Returns 0, or -VHERR_NOMEM (stage TRANSFORM) with err filled. */
int plane_alloc(struct plane_buf *b, struct plane *pl, int n, const int *w, const int *h,
		struct vherr *err);

/* Sets every pixel of pl to v. */
void plane_fill(const struct plane *pl, uint8_t v);
/* Copies src into dst at (x, y), clipped to dst. */
void plane_blit(const struct plane *src, const struct plane *dst, int x, int y);
/* Returns the window (x, y, w, h) of src, sharing its pixels (no bounds check). */
struct plane plane_window(const struct plane *src, int x, int y, int w, int h);

/* Writes src in EXIF orientation o (2..8: the stored image is shown after this
 * mirror, rotation or transposition) into dst, which must be src's size (5..8: with
 * width and height swapped). Works in bands 64 pixels wide so a transpose stays in
 * cache. */
void plane_orient(const struct plane *src, const struct plane *dst, int o);

/* Resamples src into dst (their sizes) with libswscale's filter flags (SWS_*) and
 * filter parameters param[2] (NULL: libswscale's defaults; else it must outlive c, e.g.
 * static: the cache keeps the pointer), through the cache c. Returns 0, or
 * -VHERR_TRANSFORM (stage TRANSFORM) with err filled when the context cannot be made
 * or the scale fails. */
int plane_scale(struct plane_scalers *c, const struct plane *src, const struct plane *dst,
		int flags, const double *param, struct vherr *err);
/* Frees every cached context; c may be NULL. */
void plane_scalers_release(struct plane_scalers *c);

#endif
