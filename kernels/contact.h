/* contact: the pictures of a run's preview sheet (vhprep-preview.jpg): small
 * thumbnails made from encoded bytes already in memory, and the sheet that lays them
 * out in pairs (a source beside its output) with a caption under each pair, a title
 * line above the grid and a strip of text lines under it.
 *
 * Thumbnails are cheap because the engine takes one for every file whose path hash
 * makes the preview's cut (tens to a few hundred per run), on the worker threads:
 *   - a plain JPEG (what jpegfast_accepts takes: YCbCr or grey, no ICC profile) is
 *     decoded by libturbojpeg at the largest of 1, 1/2, 1/4, 1/8 that fits the box,
 *     with no resampling (a thumbnail's longest side is then between box/2 and box;
 *     a side over 8 x box is reduced by libvips after the 1/8 decode). Measured on
 *     500x375 q90 4:4:4 photos: 0.86 ms (8 M instructions, nearly all of it entropy
 *     decoding, which no scale skips) per thumbnail against 1.7 ms (13 M) for the
 *     whole jpeg-fast kernel run at 224 pixels; vips_thumbnail_buffer took 8-20 ms
 *     there (its graph build dominates at this size): 10-25% of a 2,000-photo run;
 *   - anything else goes through vips_thumbnail_buffer (shrink-on-load, CMYK and
 *     ICC profiles to sRGB, 16 to 8 bits), then alpha is flattened.
 * Either way the EXIF orientation is applied, as the kernels apply it.
 *
 * The sheet is built once, at the end of a run, on one thread: the thumbnails are
 * copied into a memory canvas, libvips renders the text with Pango (vips_text, in
 * Debian's libvips build; DejaVu fonts from fonts-dejavu-core, CJK names with
 * fonts-wqy-microhei) whose mask is blended in, and libvips saves the JPEG. contact_layout
 * gives every position, so a test can find each half of each cell. */
#ifndef VHPREP_KERNELS_CONTACT_H
#define VHPREP_KERNELS_CONTACT_H

#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"

/* The longest side of a thumbnail box, in pixels. */
#define CONTACT_BOX 128

/* A small decoded picture: w x h pixels of bands bytes each (1 grey, 3 sRGB), rows
 * packed. Zero-initialise; contact_thumb_release frees px. */
struct contact_thumb {
	uint8_t *px; /* malloc'd, or NULL for no picture */
	int w, h, bands;
};

/* Makes a thumbnail of the encoded image in[0..len) (borrowed for the call) fitting
 * box x box (never enlarged), with the EXIF orientation applied when autorotate.
 * Returns 0 with *t filled (caller releases), or a negative code with err set
 * (NOT_IMAGE, CORRUPT, NOMEM, TRANSFORM) and *t empty. Thread-safe: any thread, no
 * shared state (libvips must be initialised, see kernel_global_init). */
int contact_thumb_make(const uint8_t *in, size_t len, int box, int autorotate,
		       struct contact_thumb *t, struct vherr *err);
/* Frees t's pixels and zeroes it; safe on an empty thumb. */
void contact_thumb_release(struct contact_thumb *t);

/* One pair of the grid: the source's thumbnail on the left, the output's on the right
 * (either may be NULL or empty: that half stays blank), the caption under both. */
struct contact_cell {
	const struct contact_thumb *left, *right;
	const char *caption; /* plain UTF-8 text, lines split by '\n'; NULL: none */
};

/* The whole sheet. Text is plain UTF-8 (Pango markup characters are escaped here, and
 * invalid UTF-8 bytes are replaced); a line too long for its space is shortened in the
 * middle with an ellipsis. Everything is borrowed for the call. */
struct contact_sheet {
	const char *title; /* CONTACT_TITLE_LINES lines above the grid; NULL: none */
	const struct contact_cell *cells; /* ncells pairs, laid out row by row */
	int ncells;
	const char *const *strip; /* nstrip lines under the grid (the failures) */
	int nstrip;
	int quality; /* JPEG quality of the sheet, 1..100 */
};

/* Where everything goes on a sheet: pure arithmetic from the counts, in pixels. */
struct contact_layout {
	int width, height;  /* the sheet */
	int cols, rows;	    /* of the grid (rows 0 when there are no cells) */
	int cell_w, cell_h; /* one pair with its caption, gaps excluded */
	int gap;	    /* between cells and around the grid */
	int box;	    /* each half of a cell is a box x box square */
	int grid_x, grid_y; /* top-left of cell 0 */
	int caption_h;	    /* band under the two boxes of a cell, caption_lines lines */
	int title_y, title_h;
	int strip_y, strip_h; /* the strip under the grid (0 high without lines) */
	int line_h;	      /* one line of text */
};

/* The lines of each caption band, and of the title. */
#define CONTACT_CAPTION_LINES 2
#define CONTACT_TITLE_LINES   2

/* Fills *l for a sheet of ncells pairs (0 and more), nstrip strip lines and a title
 * when has_title. The grid is about as wide as it is tall in pixels, at most 8 cells
 * wide. */
void contact_layout(int ncells, int nstrip, int has_title, struct contact_layout *l);
/* The top-left corner of cell i's box (side 0: left, the source; 1: right, the
 * output); a thumbnail is centred in its box. */
void contact_cell_box(const struct contact_layout *l, int i, int side, int *x, int *y);
/* The top-left corner of cell i's caption band (l->box * 2 + gap wide, caption_h high). */
void contact_cell_caption(const struct contact_layout *l, int i, int *x, int *y);

/* Loads the font map and renders one character (Pango's first text costs 15-25 ms):
 * call once, early, from any thread, so the sheet at the end of a run does not pay it.
 * Optional; failures are ignored (the sheet reports them). */
void contact_warm_up(void);
/* Renders s as a JPEG into *out (malloc'd, caller frees) of *len bytes. Returns 0, or
 * a negative code with err set (TRANSFORM: a libvips step failed; ENCODE; NOMEM).
 * One thread at a time (Pango's font map is process-wide; libvips serialises
 * vips_text). */
int contact_sheet_jpeg(const struct contact_sheet *s, uint8_t **out, size_t *len,
		       struct vherr *err);

#endif
