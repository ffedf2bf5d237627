#include "kernels/contact.h"

#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <vips/vips.h>

#include "kernels/jpegfast.h"
#include "kernels/kernel.h"
#include "kernels/vipskernel.h"

/* Every image made for one thumbnail or one sheet; released in one place. */
#define CJOB_MAX 16

struct cjob {
	VipsImage *im[CJOB_MAX];
	int n;
};

/* Takes ownership of im (NULL is kept out) and returns it. */
static VipsImage *cjob_keep(struct cjob *j, VipsImage *im)
{
	if (im) {
		g_assert(j->n < CJOB_MAX);
		j->im[j->n++] = im;
	}
	return im;
}

static void cjob_release(struct cjob *j)
{
	for (int i = 0; i < j->n; i++)
		VIPS_UNREF(j->im[i]);
	j->n = 0;
}

/* Fails with code at stage, with the first line of libvips' error text (process-wide:
 * copied and cleared right after the failing call). */
static int fail_vips(struct vherr *err, enum vherr_code code, enum vhstage stage,
		     const char *what)
{
	char *all = vips_error_buffer_copy();
	size_t n = all ? strcspn(all, "\n") : 0;

	vips_error_clear();
	vherr_set(err, code, stage, "%s%s%.*s", what, n ? ": " : "", (int)n, all ? all : "");
	g_free(all);
	return -(int)code;
}

void contact_thumb_release(struct contact_thumb *t)
{
	free(t->px);
	memset(t, 0, sizeof(*t));
}

/* Copies the pixels of im (uchar, 1 or 3 bands) into t. */
static int thumb_take(VipsImage *im, struct contact_thumb *t, struct vherr *err)
{
	size_t size = 0;
	void *px = vips_image_write_to_memory(im, &size);

	if (!px)
		return fail_vips(err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
				 "cannot make a thumbnail");
	t->px = malloc(size);
	if (!t->px) {
		g_free(px);
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_TRANSFORM, NULL);
	}
	memcpy(t->px, px, size);
	g_free(px);
	t->w = vips_image_get_width(im);
	t->h = vips_image_get_height(im);
	t->bands = vips_image_get_bands(im);
	return 0;
}

/* im as 8-bit sRGB (3 bands) or grey (1 band), alpha flattened onto mid grey. */
static VipsImage *to_display(struct cjob *j, VipsImage *im)
{
	static const double grey[3] = {128, 128, 128};
	VipsInterpretation want = vips_image_guess_interpretation(im);
	VipsImage *out = NULL;

	want = want == VIPS_INTERPRETATION_B_W || want == VIPS_INTERPRETATION_GREY16
		   ? VIPS_INTERPRETATION_B_W
		   : VIPS_INTERPRETATION_sRGB;
	if (vips_colourspace(im, &out, want, NULL))
		return NULL;
	im = cjob_keep(j, out);
	if (vips_image_hasalpha(im)) {
		VipsArrayDouble *bg =
		    vips_array_double_new(grey, want == VIPS_INTERPRETATION_B_W ? 1 : 3);
		int rc = vips_flatten(im, &out, "background", bg, NULL);

		vips_area_unref(VIPS_AREA(bg));
		if (rc)
			return NULL;
		im = cjob_keep(j, out);
	}
	if (vips_image_get_format(im) != VIPS_FORMAT_UCHAR) {
		if (vips_cast_uchar(im, &out, NULL))
			return NULL;
		im = cjob_keep(j, out);
	}
	return im;
}

/* Shrinks the decoded pixels px (w x h x bands, borrowed) to fit box and applies the
 * orientation o, through libvips: only for the rare thumbnails that need either. */
static int thumb_finish_vips(uint8_t *px, int w, int h, int bands, int o, int box,
			     struct contact_thumb *t, struct vherr *err)
{
	struct cjob j = {0};
	VipsImage *im, *out = NULL;
	int rc;

	im = cjob_keep(&j, vips_image_new_from_memory(px, (size_t)w * h * bands, w, h, bands,
						      VIPS_FORMAT_UCHAR));
	if (!im) {
		rc = fail_vips(err, VHERR_NOMEM, VHSTAGE_TRANSFORM, "cannot wrap pixels");
		goto out;
	}
	vips_image_set_int(im, VIPS_META_ORIENTATION, o);
	if (vips_thumbnail_image(im, &out, box, "height", box, "size", VIPS_SIZE_DOWN, NULL)) {
		rc = fail_vips(err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
			       "cannot shrink a thumbnail");
		goto out;
	}
	rc = thumb_take(cjob_keep(&j, out), t, err);
out:
	cjob_release(&j);
	return rc;
}

/* The largest of 1, 1/2, 1/4, 1/8 at which w x h fits box (1/8 if none does). */
static tjscalingfactor fit_scale(int w, int h, int box)
{
	tjscalingfactor sf = {1, 1};

	while (sf.denom < 8 && (TJSCALED(w, sf) > box || TJSCALED(h, sf) > box))
		sf.denom *= 2;
	return sf;
}

/* A plain JPEG (jpegfast_accepts' kind): a DCT-scaled decode, nothing resampled
 * unless even 1/8 is over the box or the picture must be turned. */
static int thumb_jpeg(const uint8_t *in, size_t len, int box, int autorotate,
		      struct contact_thumb *t, struct vherr *err)
{
	tjhandle h = tjInitDecompress();
	int w, ht, ss, cs, o, dw, dh, bands, rc = 0;
	tjscalingfactor sf;
	uint8_t *px = NULL;

	if (!h)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_DECODE, "cannot start libturbojpeg");
	if (tjDecompressHeader3(h, in, (unsigned long)len, &w, &ht, &ss, &cs)) {
		rc = vherr_set(err, VHERR_CORRUPT, VHSTAGE_DECODE, "%s", tjGetErrorStr2(h));
		goto out;
	}
	sf = fit_scale(w, ht, box);
	dw = TJSCALED(w, sf);
	dh = TJSCALED(ht, sf);
	bands = cs == TJCS_GRAY ? 1 : 3;
	px = malloc((size_t)dw * dh * bands);
	if (!px) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_DECODE, NULL);
		goto out;
	}
	/* a warning (damaged data the kernel let through) still decodes the pixels */
	if (tjDecompress2(h, in, (unsigned long)len, px, dw, 0, dh,
			  bands == 1 ? TJPF_GRAY : TJPF_RGB, 0) &&
	    tjGetErrorCode(h) != TJERR_WARNING) {
		rc = vherr_set(err, VHERR_CORRUPT, VHSTAGE_DECODE, "%s", tjGetErrorStr2(h));
		goto out;
	}
	o = autorotate ? jpegfast_exif_orientation(in, len) : 1;
	if (o != 1 || dw > box || dh > box) {
		rc = thumb_finish_vips(px, dw, dh, bands, o, box, t, err);
		goto out;
	}
	*t = (struct contact_thumb){.px = px, .w = dw, .h = dh, .bands = bands};
	px = NULL;
out:
	free(px);
	tjDestroy(h);
	return rc;
}

/* Anything else: libvips' thumbnail (shrink-on-load, orientation, CMYK to sRGB; an
 * embedded profile is honoured, as the libvips kernel does). */
static int thumb_vips(const uint8_t *in, size_t len, int box, int autorotate,
		      struct contact_thumb *t, struct vherr *err)
{
	struct cjob j = {0};
	VipsImage *hdr, *out = NULL, *im;
	int rc;

	hdr = cjob_keep(&j, vips_image_new_from_buffer(in, len, "", NULL));
	if (!hdr) {
		rc = fail_vips(err,
			       vips_foreign_find_load_buffer(in, len) ? VHERR_CORRUPT
								      : VHERR_NOT_IMAGE,
			       VHSTAGE_DECODE, "cannot read the image");
		goto out;
	}
	if (vips_image_get_typeof(hdr, VIPS_META_ICC_NAME)
		? vips_thumbnail_buffer((void *)in, len, &out, box, "height", box, "size",
					VIPS_SIZE_DOWN, "no_rotate", !autorotate,
					"export_profile", "srgb", NULL)
		: vips_thumbnail_buffer((void *)in, len, &out, box, "height", box, "size",
					VIPS_SIZE_DOWN, "no_rotate", !autorotate, NULL)) {
		rc = fail_vips(err, VHERR_CORRUPT, VHSTAGE_DECODE, "cannot make a thumbnail");
		goto out;
	}
	im = to_display(&j, cjob_keep(&j, out));
	rc = im ? thumb_take(im, t, err)
		: fail_vips(err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
			    "cannot convert a thumbnail");
out:
	cjob_release(&j);
	return rc;
}

int contact_thumb_make(const uint8_t *in, size_t len, int box, int autorotate,
		       struct contact_thumb *t, struct vherr *err)
{
	static const struct kernel_params plain = {.format = KFMT_JPEG};
	int rc;

	memset(t, 0, sizeof(*t));
	if (!in || len == 0)
		return vherr_set(err, VHERR_EMPTY, VHSTAGE_DECODE, NULL);
	if (box < 1)
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_TRANSFORM, "box %d", box);
	vipskernel_shared_begin(); /* libvips work: not during a failed run's replay */
	rc = jpegfast_accepts(&plain, in, len) ? thumb_jpeg(in, len, box, autorotate, t, err)
					       : thumb_vips(in, len, box, autorotate, t, err);
	vipskernel_shared_end();
	return rc;
}

/* ---- the sheet ------------------------------------------------------------- */

#define GAP	  8
#define INNER_GAP 4  /* between the two boxes of a cell */
#define LINE_H	  15 /* the line pitch of TEXT_FONT at TEXT_DPI (Pango, DejaVu 2.37) */
#define MAX_COLS  8
#define MIN_WIDTH 640
#define TEXT_FONT "DejaVu Sans Mono 9"
#define TEXT_DPI  96
#define ELLIPSIS  "\xe2\x80\xa6" /* U+2026 */

static const uint8_t bg_ink[3] = {30, 30, 30};	       /* the sheet */
static const uint8_t box_ink[3] = {48, 48, 48};	       /* an empty half */
static const uint8_t caption_ink[3] = {220, 220, 220}; /* captions and title */
static const uint8_t strip_ink[3] = {255, 140, 130};   /* the failures */

void contact_layout(int ncells, int nstrip, int has_title, struct contact_layout *l)
{
	memset(l, 0, sizeof(*l));
	l->gap = GAP;
	l->box = CONTACT_BOX;
	l->line_h = LINE_H;
	l->caption_h = CONTACT_CAPTION_LINES * LINE_H + 8;
	l->cell_w = 2 * l->box + INNER_GAP;
	l->cell_h = l->box + l->caption_h;
	if (ncells > 0) {
		/* cols * cell_w about rows * cell_h, with rows = ncells / cols */
		l->cols = (int)ceil(sqrt((double)ncells * l->cell_h / l->cell_w));
		l->cols = l->cols < 1 ? 1 : l->cols > MAX_COLS ? MAX_COLS : l->cols;
		l->cols = l->cols > ncells ? ncells : l->cols;
		l->rows = (ncells + l->cols - 1) / l->cols;
	}
	l->width = GAP + l->cols * (l->cell_w + GAP);
	l->width = l->width < MIN_WIDTH ? MIN_WIDTH : l->width;
	l->title_y = GAP;
	l->title_h = has_title ? CONTACT_TITLE_LINES * LINE_H + GAP : 0;
	l->grid_x = GAP;
	l->grid_y = l->title_y + l->title_h;
	l->strip_y = l->grid_y + l->rows * (l->cell_h + GAP);
	l->strip_h = nstrip > 0 ? nstrip * LINE_H + GAP : 0;
	l->height = l->strip_y + l->strip_h + GAP;
}

void contact_cell_box(const struct contact_layout *l, int i, int side, int *x, int *y)
{
	*x = l->grid_x + (i % l->cols) * (l->cell_w + l->gap) + (side ? l->box + INNER_GAP : 0);
	*y = l->grid_y + (i / l->cols) * (l->cell_h + l->gap);
}

void contact_cell_caption(const struct contact_layout *l, int i, int *x, int *y)
{
	contact_cell_box(l, i, 0, x, y);
	*y += l->box;
}

/* The sheet being drawn: packed RGB pixels, and the text metric. Boxes, thumbnails and
 * text are put in place by the loops below rather than by vips_draw_rect, _image and
 * _mask: each libvips call costs 0.15-0.25 ms of operation set-up, ~20 ms for a sheet
 * of 24, more than all the pixels take. libvips renders the text and saves the JPEG. */
struct canvas {
	uint8_t *px; /* w * h * 3 */
	int w, h;
	int char_w; /* the advance of one character of TEXT_FONT, pixels */
};

/* Fills the rectangle (x, y, w, h), clipped to the canvas, with ink. */
static void fill(struct canvas *c, const uint8_t ink[3], int x, int y, int w, int h)
{
	for (int r = VIPS_MAX(y, 0); r < VIPS_MIN(y + h, c->h); r++)
		for (int q = VIPS_MAX(x, 0); q < VIPS_MIN(x + w, c->w); q++)
			memcpy(c->px + ((size_t)r * c->w + q) * 3, ink, 3);
}

/* Copies t (1 or 3 bands) with its top-left at (x, y); the caller keeps it inside. */
static void blit(struct canvas *c, const struct contact_thumb *t, int x, int y)
{
	for (int r = 0; r < t->h; r++) {
		const uint8_t *src = t->px + (size_t)r * t->w * t->bands;
		uint8_t *dst = c->px + ((size_t)(y + r) * c->w + x) * 3;

		if (t->bands == 3) {
			memcpy(dst, src, (size_t)t->w * 3);
			continue;
		}
		for (int q = 0; q < t->w; q++)
			memset(dst + q * 3, src[q], 3);
	}
}

/* Blends ink through mask (1-band uchar, as vips_text makes it) with its top-left at
 * (x, y), clipped to w x h there and to the canvas. */
static int blend(struct canvas *c, VipsImage *mask, const uint8_t ink[3], int x, int y, int w,
		 int h)
{
	int mw = VIPS_MIN(w, mask->Xsize), mh = VIPS_MIN(h, mask->Ysize);

	if (vips_image_wio_input(mask))
		return -1;
	for (int r = 0; r < mh && y + r < c->h; r++) {
		const uint8_t *m = VIPS_IMAGE_ADDR(mask, 0, r);
		uint8_t *dst = c->px + ((size_t)(y + r) * c->w + x) * 3;

		for (int q = 0; q < mw && x + q < c->w; q++)
			for (int b = 0; b < 3; b++)
				dst[q * 3 + b] += (ink[b] - dst[q * 3 + b]) * m[q] / 255;
	}
	return 0;
}

/* line (valid UTF-8) shortened in the middle to at most max characters; g_free it. */
static char *elide(const char *line, int max)
{
	glong n = g_utf8_strlen(line, -1), head, tail;
	char *first, *all;

	max = max < 3 ? 3 : max;
	if (n <= max)
		return g_strdup(line);
	head = (max - 1) / 2;
	tail = max - 1 - head;
	first = g_utf8_substring(line, 0, head);
	all = g_strconcat(first, ELLIPSIS, g_utf8_offset_to_pointer(line, n - tail), NULL);
	g_free(first);
	return all;
}

/* text (any bytes) as valid UTF-8 lines, each shortened to max characters. */
static char *fit_lines(const char *text, int max)
{
	char *valid = g_utf8_make_valid(text, -1);
	char **lines = g_strsplit(valid, "\n", -1);
	char *all;

	for (int i = 0; lines[i]; i++) {
		char *short_line = elide(lines[i], max);

		g_free(lines[i]);
		lines[i] = short_line;
	}
	all = g_strjoinv("\n", lines);
	g_strfreev(lines);
	g_free(valid);
	return all;
}

/* Renders plain text as a 1-band mask (Pango markup escaped); NULL on failure. */
static VipsImage *text_mask(const char *text)
{
	char *markup = g_markup_escape_text(text, -1);
	VipsImage *mask = NULL;

	if (vips_text(&mask, markup, "font", TEXT_FONT, "dpi", TEXT_DPI, NULL))
		mask = NULL;
	g_free(markup);
	return mask;
}

void contact_warm_up(void)
{
	VipsImage *mask;

	vipskernel_shared_begin();
	mask = text_mask("0");
	VIPS_UNREF(mask);
	vips_error_clear();
	vipskernel_shared_end();
}

/* Draws text in ink with the top of its ink at (x, y): each line shortened to fit w
 * pixels, and the whole clipped to w x h. Empty text draws nothing. */
static int draw_text(struct canvas *c, const char *text, const uint8_t ink[3], int x, int y,
		     int w, int h, struct vherr *err)
{
	char *fitted;
	VipsImage *mask;
	int rc = 0;

	if (!text || !*text || w < 1 || h < 1)
		return 0;
	fitted = fit_lines(text, w / c->char_w);
	mask = text_mask(fitted);
	g_free(fitted);
	if (!mask || blend(c, mask, ink, x, y, w, h))
		rc = fail_vips(err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM, "cannot render text");
	VIPS_UNREF(mask);
	return rc;
}

/* One half of a cell: its box, and the thumbnail centred in it (a thumbnail larger
 * than the box, which contact_thumb_make never makes, is left out). */
static void draw_half(struct canvas *c, const struct contact_layout *l, int x, int y,
		      const struct contact_thumb *t)
{
	fill(c, box_ink, x, y, l->box, l->box);
	if (t && t->px && t->w <= l->box && t->h <= l->box && (t->bands == 1 || t->bands == 3))
		blit(c, t, x + (l->box - t->w) / 2, y + (l->box - t->h) / 2);
}

static int draw_cell(struct canvas *c, const struct contact_layout *l, int i,
		     const struct contact_cell *cell, struct vherr *err)
{
	int x, y;

	for (int side = 0; side < 2; side++) {
		contact_cell_box(l, i, side, &x, &y);
		draw_half(c, l, x, y, side ? cell->right : cell->left);
	}
	contact_cell_caption(l, i, &x, &y);
	return draw_text(c, cell->caption, caption_ink, x + 1, y + 4, l->cell_w - 2,
			 l->caption_h - 4, err);
}

/* A canvas of the layout's size in the background colour, and the font's advance. */
static int canvas_open(struct canvas *c, const struct contact_layout *l, struct vherr *err)
{
	VipsImage *probe;

	c->w = l->width;
	c->h = l->height;
	c->px = malloc((size_t)c->w * c->h * 3);
	if (!c->px)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_TRANSFORM, NULL);
	fill(c, bg_ink, 0, 0, c->w, c->h);
	/* 40 characters: the ink width is 40 advances less the side bearings */
	probe = text_mask("0123456789012345678901234567890123456789");
	if (!probe)
		return fail_vips(err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM, "cannot render text");
	c->char_w = VIPS_MAX(1, (probe->Xsize + 39) / 40);
	g_object_unref(probe);
	return 0;
}

/* Encodes the canvas as a JPEG into a malloc'd buffer. */
static int canvas_jpeg(struct canvas *c, int quality, uint8_t **out, size_t *len,
		       struct vherr *err)
{
	VipsImage *im = vips_image_new_from_memory(c->px, (size_t)c->w * c->h * 3, c->w, c->h,
						   3, VIPS_FORMAT_UCHAR);
	void *buf = NULL;
	size_t n = 0;
	int rc;

	if (!im)
		return fail_vips(err, VHERR_NOMEM, VHSTAGE_ENCODE, "cannot wrap the sheet");
	rc = vips_jpegsave_buffer(im, &buf, &n, "Q", quality < 1 ? 85 : VIPS_MIN(quality, 100),
				  "strip", TRUE, NULL);
	g_object_unref(im);
	if (rc)
		return fail_vips(err, VHERR_ENCODE, VHSTAGE_ENCODE, "cannot encode the sheet");
	*out = malloc(n);
	if (*out) {
		memcpy(*out, buf, n);
		*len = n;
	}
	g_free(buf);
	return *out ? 0 : vherr_set(err, VHERR_NOMEM, VHSTAGE_ENCODE, NULL);
}

/* lines[0..n) joined by newlines; g_free it. */
static char *join_lines(const char *const *lines, int n)
{
	GString *all = g_string_new(NULL);

	for (int i = 0; i < n; i++)
		g_string_append_printf(all, "%s%s", i ? "\n" : "", lines[i] ? lines[i] : "");
	return g_string_free(all, FALSE);
}

int contact_sheet_jpeg(const struct contact_sheet *s, uint8_t **out, size_t *len,
		       struct vherr *err)
{
	struct contact_layout l;
	struct canvas c = {0};
	char *strip = NULL;
	int rc;

	*out = NULL;
	*len = 0;
	contact_layout(s->ncells, s->nstrip, s->title != NULL, &l);
	vipskernel_shared_begin();
	rc = canvas_open(&c, &l, err);
	if (rc == 0 && s->title)
		rc = draw_text(&c, s->title, caption_ink, l.grid_x, l.title_y,
			       l.width - 2 * l.gap, l.title_h, err);
	for (int i = 0; rc == 0 && i < s->ncells; i++)
		rc = draw_cell(&c, &l, i, &s->cells[i], err);
	if (rc == 0 && s->nstrip > 0) {
		strip = join_lines(s->strip, s->nstrip);
		rc = draw_text(&c, strip, strip_ink, l.grid_x, l.strip_y, l.width - 2 * l.gap,
			       l.strip_h, err);
	}
	if (rc == 0)
		rc = canvas_jpeg(&c, s->quality, out, len, err);
	vipskernel_shared_end();
	g_free(strip);
	free(c.px);
	return rc;
}
