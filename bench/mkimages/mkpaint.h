/* mkpaint: photo-like synthetic content for vhprep-mkimages.
 *
 * A picture is smooth colour (a gradient plus Perlin blobs), hard edges (rectangles,
 * circles, thick lines), fine high-frequency detail (text strokes when fonts are installed,
 * hatch patches always) and film grain (gaussnoise). libvips makes the gradient, the Perlin
 * noise, the text masks and the grain tile; per-pixel work on the full-size picture (the
 * upsampling of the smooth layer, shapes, text, grain) is plain loops over the memory
 * image: at 500x375 a libvips draw call costs ~0.4 ms of fixed overhead, a resize 10-25 ms
 * and a vips_text 3-4 ms, more than the whole picture is worth.
 * Every random choice and every libvips seed comes from the caller's seed, so the same seed
 * gives the same pixels on the same machine (text also depends on the installed fonts). */
#ifndef VHPREP_BENCH_MKPAINT_H
#define VHPREP_BENCH_MKPAINT_H

#include <stdint.h>
#include <vips/vips.h>

/* What all pictures of a run share, made once because making it per picture would cost
 * more than the rest of the picture: a gaussnoise tile from which each picture takes its
 * grain at its own random offset, and a set of text masks (pango is slow and serialised
 * behind a libvips lock). Immutable after mkpaint_assets_new, so any thread may use it. */
struct mkpaint_assets;

/* Makes assets for pictures up to max_width x max_height; no text masks when `text` is 0
 * or no font renders. Returns NULL with the libvips error buffer set on failure; the
 * caller frees it with mkpaint_assets_free (NULL is fine). Not thread-safe (pango). */
struct mkpaint_assets *mkpaint_assets_new(int max_width, int max_height, uint64_t seed,
					  int text);
void mkpaint_assets_free(struct mkpaint_assets *assets);

/* Paints a width x height, 3-band uchar sRGB image, fully computed in memory.
 * assets may be NULL (no grain, no text) and must cover width x height otherwise.
 * Returns 0 and sets *out (the caller unrefs it), or -1 with the libvips error buffer set.
 * Any thread. */
int mkpaint_photo(VipsImage **out, int width, int height, uint64_t seed,
		  const struct mkpaint_assets *assets);

/* Paints a width x height, 1-band uchar alpha mask: opaque centre, soft transparent edges
 * and a few transparent holes. Same contract as mkpaint_photo. */
int mkpaint_alpha(VipsImage **out, int width, int height, uint64_t seed);

#endif
