/* kernels/contact: thumbnails from encoded bytes (both paths, orientation, bands,
 * damaged input) and the sheet, decoded again and looked at: its size, each half of
 * each cell where the layout says with its own colour, ink where text goes and none
 * where it does not. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "kernels/contact.h"
#include "kernels/kernel.h"

static void setup(void)
{
	struct vherr err = {0};

	cr_assert_eq(kernel_global_init("test_contact", &err), 0, "%s", err.msg);
}

static void teardown(void)
{
	kernel_global_shutdown();
}

TestSuite(contact, .init = setup, .fini = teardown);

struct buf {
	void *data;
	size_t len;
};

/* A w x h image of bands (1 grey, 3 RGB, 4 RGBA): the top half colour top, the bottom
 * half colour bottom (the first bands of each; alpha 0 on the left quarter). */
static VipsImage *two_halves(int w, int h, int bands, const uint8_t top[4],
			     const uint8_t bottom[4])
{
	uint8_t *px = malloc((size_t)w * h * bands);
	VipsImage *im;

	cr_assert_not_null(px);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int b = 0; b < bands; b++)
				px[((size_t)y * w + x) * bands + b] =
				    b == 3 && x < w / 4 ? 0 : (y < h / 2 ? top : bottom)[b];
	im = vips_image_new_from_memory_copy(px, (size_t)w * h * bands, w, h, bands,
					     VIPS_FORMAT_UCHAR);
	cr_assert_not_null(im);
	free(px);
	if (bands >= 3)
		im->Type = VIPS_INTERPRETATION_sRGB;
	else
		im->Type = VIPS_INTERPRETATION_B_W;
	return im;
}

/* Encodes im to ext ("jpg", "png") with EXIF orientation o (0: none); frees im. */
static struct buf encode(VipsImage *im, const char *ext, int o)
{
	struct buf b = {0};
	char suffix[16];

	if (o)
		vips_image_set_int(im, VIPS_META_ORIENTATION, o);
	snprintf(suffix, sizeof(suffix), ".%s[Q=95]", ext);
	if (!strcmp(ext, "png"))
		snprintf(suffix, sizeof(suffix), ".png");
	cr_assert_eq(vips_image_write_to_buffer(im, suffix, &b.data, &b.len, NULL), 0, "%s",
		     vips_error_buffer());
	g_object_unref(im);
	return b;
}

static const uint8_t red[4] = {220, 30, 30, 255}, blue[4] = {30, 40, 220, 255};

/* Asserts pixel (x, y) of t is within tol of want (its first t->bands values). */
static void assert_px(const struct contact_thumb *t, int x, int y, const uint8_t *want, int tol)
{
	const uint8_t *p = t->px + ((size_t)y * t->w + x) * t->bands;

	for (int b = 0; b < t->bands; b++)
		cr_assert(abs(p[b] - want[b]) <= tol, "(%d,%d) band %d: %d, want %d", x, y, b,
			  p[b], want[b]);
}

Test(contact, plain_jpeg_fits_the_box_without_resampling)
{
	struct buf b = encode(two_halves(500, 376, 3, red, blue), "jpg", 0);
	struct contact_thumb t;
	struct vherr err = {0};

	cr_assert_eq(contact_thumb_make(b.data, b.len, CONTACT_BOX, 1, &t, &err), 0, "%s",
		     err.msg);
	/* 1/4: 125 x 94, between half the box and the box */
	cr_assert_eq(t.w, 125);
	cr_assert_eq(t.h, 94);
	cr_assert_eq(t.bands, 3);
	assert_px(&t, 60, 10, red, 24);
	assert_px(&t, 60, 84, blue, 24);
	contact_thumb_release(&t);
	cr_assert_null(t.px);
	g_free(b.data);
}

Test(contact, exif_orientation_is_applied_unless_asked_not_to)
{
	/* stored 300 x 200, top red; orientation 6 shows it turned 90 degrees clockwise:
	 * 200 x 300 with red on the right */
	struct buf b = encode(two_halves(300, 200, 3, red, blue), "jpg", 6);
	struct contact_thumb t;
	struct vherr err = {0};

	cr_assert_eq(contact_thumb_make(b.data, b.len, CONTACT_BOX, 1, &t, &err), 0, "%s",
		     err.msg);
	cr_assert_lt(t.w, t.h, "%dx%d: not turned", t.w, t.h);
	assert_px(&t, t.w - 5, t.h / 2, red, 30);
	assert_px(&t, 4, t.h / 2, blue, 30);
	contact_thumb_release(&t);
	cr_assert_eq(contact_thumb_make(b.data, b.len, CONTACT_BOX, 0, &t, &err), 0);
	cr_assert_gt(t.w, t.h, "%dx%d: turned without autorotate", t.w, t.h);
	assert_px(&t, t.w / 2, 3, red, 30);
	contact_thumb_release(&t);
	g_free(b.data);
}

Test(contact, a_large_jpeg_is_shrunk_to_the_box)
{
	struct buf b = encode(two_halves(2400, 1600, 3, red, blue), "jpg", 0);
	struct contact_thumb t;
	struct vherr err = {0};

	cr_assert_eq(contact_thumb_make(b.data, b.len, CONTACT_BOX, 1, &t, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(t.w, CONTACT_BOX, "%dx%d", t.w, t.h);
	cr_assert_leq(t.h, CONTACT_BOX);
	assert_px(&t, t.w / 2, 4, red, 24);
	contact_thumb_release(&t);
	g_free(b.data);
}

Test(contact, grey_jpeg_gives_one_band)
{
	static const uint8_t light[4] = {200}, dark[4] = {40};
	struct buf b = encode(two_halves(160, 120, 1, light, dark), "jpg", 0);
	struct contact_thumb t;
	struct vherr err = {0};

	cr_assert_eq(contact_thumb_make(b.data, b.len, CONTACT_BOX, 1, &t, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(t.bands, 1);
	cr_assert_eq(t.w, 80, "1/2 of 160: %d", t.w);
	assert_px(&t, 40, 5, light, 12);
	assert_px(&t, 40, 55, dark, 12);
	contact_thumb_release(&t);
	g_free(b.data);
}

Test(contact, png_with_alpha_goes_through_libvips_flattened)
{
	struct buf b = encode(two_halves(400, 200, 4, red, blue), "png", 0);
	struct contact_thumb t;
	struct vherr err = {0};
	static const uint8_t grey[3] = {128, 128, 128};

	cr_assert_eq(contact_thumb_make(b.data, b.len, CONTACT_BOX, 1, &t, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(t.bands, 3);
	cr_assert_eq(t.w, CONTACT_BOX, "libvips fits the box exactly: %d", t.w);
	cr_assert_eq(t.h, CONTACT_BOX / 2);
	assert_px(&t, 4, 10, grey, 6); /* transparent left quarter: the flattening grey */
	assert_px(&t, 100, 10, red, 6);
	assert_px(&t, 100, 55, blue, 6);
	contact_thumb_release(&t);
	g_free(b.data);
}

Test(contact, damaged_or_foreign_bytes_fail_cleanly)
{
	static const uint8_t text[] = "not an image at all";
	struct buf b = encode(two_halves(64, 48, 3, red, blue), "jpg", 0);
	struct contact_thumb t;
	struct vherr err = {0};

	cr_assert_eq(contact_thumb_make(text, sizeof(text), CONTACT_BOX, 1, &t, &err),
		     -VHERR_NOT_IMAGE);
	cr_assert_null(t.px);
	cr_assert_eq(contact_thumb_make(text, 0, CONTACT_BOX, 1, &t, &err), -VHERR_EMPTY);
	/* a JPEG cut after its header: libturbojpeg decodes what there is, or fails */
	memset(&err, 0, sizeof(err));
	if (contact_thumb_make(b.data, 200, CONTACT_BOX, 1, &t, &err) == 0)
		cr_assert_not_null(t.px);
	else
		cr_assert_null(t.px);
	contact_thumb_release(&t);
	g_free(b.data);
}

Test(contact, layout_of_24_is_about_square_and_nothing_overlaps)
{
	struct contact_layout l;
	int x0, y0, x1, y1;

	contact_layout(24, 3, 1, &l);
	cr_assert_eq(l.cols * l.rows >= 24 && (l.cols - 1) * l.rows < 24, 1, "%dx%d", l.cols,
		     l.rows);
	cr_assert(l.width > l.height / 2 && l.width < l.height * 2, "%dx%d", l.width, l.height);
	for (int i = 0; i < 24; i++) {
		contact_cell_box(&l, i, 0, &x0, &y0);
		contact_cell_box(&l, i, 1, &x1, &y1);
		cr_assert_eq(y0, y1);
		cr_assert_geq(x1, x0 + l.box, "cell %d: the halves overlap", i);
		cr_assert_leq(x1 + l.box, l.width - l.gap);
		cr_assert_geq(y0, l.title_y + l.title_h);
		cr_assert_leq(y0 + l.cell_h, l.strip_y);
	}
	cr_assert_eq(l.strip_y + l.strip_h + l.gap, l.height);
	contact_layout(0, 0, 0, &l);
	cr_assert_eq(l.rows, 0);
	cr_assert_gt(l.width, 0);
	cr_assert_gt(l.height, 0);
}

/* A decoded sheet and its layout. */
struct sheet {
	VipsImage *im;
	struct contact_layout l;
};

static void sheet_load(struct sheet *s, const uint8_t *jpg, size_t len)
{
	VipsImage *im = vips_image_new_from_buffer(jpg, len, "", NULL);

	cr_assert_not_null(im, "%s", vips_error_buffer());
	s->im = vips_image_copy_memory(im);
	cr_assert_not_null(s->im);
	g_object_unref(im);
}

static const uint8_t *sheet_px(const struct sheet *s, int x, int y)
{
	return VIPS_IMAGE_ADDR(s->im, x, y);
}

/* Pixels of the rectangle brighter than the background by more than 60 in any band. */
static int ink(const struct sheet *s, int x, int y, int w, int h)
{
	int n = 0;

	for (int r = y; r < y + h; r++)
		for (int q = x; q < x + w; q++)
			for (int b = 0; b < 3; b++)
				if (sheet_px(s, q, r)[b] > 30 + 60) {
					n++;
					break;
				}
	return n;
}

/* A thumb of w x h in one colour. */
static struct contact_thumb solid(int w, int h, int bands, const uint8_t *rgb)
{
	struct contact_thumb t = {
	    .px = malloc((size_t)w * h * bands), .w = w, .h = h, .bands = bands};

	cr_assert_not_null(t.px);
	for (int i = 0; i < w * h; i++)
		memcpy(t.px + (size_t)i * bands, rgb, (size_t)bands);
	return t;
}

Test(contact, sheet_halves_and_text_are_where_the_layout_says)
{
	enum { N = 7 };
	struct contact_thumb th[N][2];
	struct contact_cell cells[N];
	char captions[N][64];
	const char *strip[] = {"bad/zero.jpg  empty: zero-byte file",
			       "x&<b>\xff\xfe.jpg  bad_name: not UTF-8"};
	struct contact_sheet sh = {.title = "vhprep: test <sheet> & more\nautorotate",
				   .cells = cells,
				   .ncells = N,
				   .strip = strip,
				   .nstrip = 2,
				   .quality = 95};
	struct sheet s;
	uint8_t *jpg;
	size_t len;
	struct vherr err = {0};

	for (int i = 0; i < N; i++) {
		uint8_t left[3] = {(uint8_t)(40 + 30 * i), 200, 60};
		uint8_t grey = (uint8_t)(90 + 20 * i);

		/* sizes of every shape the sheet centres: wide, tall, full, tiny */
		th[i][0] = solid(128 - 9 * i, 60 + 9 * i, 3, left);
		th[i][1] = solid(20 + 15 * i, 128 - 10 * i, 1, &grey);
		snprintf(captions[i], sizeof(captions[i]), "dir/img_%d.jpg\n500x375 -> 224x224",
			 i);
		cells[i] = (struct contact_cell){&th[i][0], &th[i][1], captions[i]};
	}
	cr_assert_eq(contact_sheet_jpeg(&sh, &jpg, &len, &err), 0, "%s", err.msg);
	sheet_load(&s, jpg, len);
	contact_layout(N, 2, 1, &s.l);
	cr_assert_eq(s.im->Xsize, s.l.width);
	cr_assert_eq(s.im->Ysize, s.l.height);
	cr_assert_eq(s.im->Bands, 3);
	for (int i = 0; i < N; i++) {
		int x, y, cx, cy;
		const uint8_t *p;

		contact_cell_box(&s.l, i, 0, &x, &y);
		p = sheet_px(&s, x + s.l.box / 2, y + s.l.box / 2);
		cr_assert(abs(p[0] - (40 + 30 * i)) < 12 && abs(p[1] - 200) < 12 &&
			      abs(p[2] - 60) < 12,
			  "cell %d left: %d,%d,%d", i, p[0], p[1], p[2]);
		contact_cell_box(&s.l, i, 1, &x, &y);
		p = sheet_px(&s, x + s.l.box / 2, y + s.l.box / 2);
		for (int b = 0; b < 3; b++)
			cr_assert(abs(p[b] - (90 + 20 * i)) < 12, "cell %d right band %d: %d",
				  i, b, p[b]);
		/* the box's corner, outside a narrow thumb: the empty box colour */
		p = sheet_px(&s, x + 1, y + 1);
		cr_assert(p[0] < 70 && p[0] > 35, "cell %d: box corner %d", i, p[0]);
		contact_cell_caption(&s.l, i, &cx, &cy);
		cr_assert_gt(ink(&s, cx, cy, s.l.cell_w, s.l.caption_h), 40,
			     "cell %d: no caption ink", i);
	}
	cr_assert_gt(ink(&s, s.l.grid_x, s.l.title_y, s.l.width - 2 * s.l.gap, s.l.title_h), 80,
		     "no title");
	cr_assert_gt(ink(&s, s.l.grid_x, s.l.strip_y, s.l.width - 2 * s.l.gap, s.l.strip_h), 80,
		     "no strip");
	{
		/* the grid's empty last slots (7 cells of a 3 x 3 grid) hold nothing */
		int x, y;

		cr_assert_eq(s.l.cols * s.l.rows, 9);
		contact_cell_box(&s.l, N, 0, &x, &y);
		cr_assert_eq(ink(&s, x, y, s.l.cell_w, s.l.cell_h), 0);
	}
	g_object_unref(s.im);
	free(jpg);
	for (int i = 0; i < N; i++) {
		contact_thumb_release(&th[i][0]);
		contact_thumb_release(&th[i][1]);
	}
}

Test(contact, long_lines_are_shortened_not_spilled)
{
	char caption[600];
	struct contact_thumb none = {0};
	struct contact_cell cells[2];
	struct contact_sheet sh = {.cells = cells, .ncells = 2, .quality = 90};
	struct sheet s;
	uint8_t *jpg;
	size_t len;
	struct vherr err = {0};
	int x, y;

	memset(caption, 'W', sizeof(caption) - 1);
	caption[sizeof(caption) - 1] = '\0';
	cells[0] = (struct contact_cell){&none, NULL, caption};
	cells[1] = (struct contact_cell){NULL, NULL, NULL};
	cr_assert_eq(contact_sheet_jpeg(&sh, &jpg, &len, &err), 0, "%s", err.msg);
	sheet_load(&s, jpg, len);
	contact_layout(2, 0, 0, &s.l);
	cr_assert_eq(s.l.cols, 2);
	/* cell 1 has no caption: its band stays empty although cell 0's is overlong */
	contact_cell_caption(&s.l, 1, &x, &y);
	cr_assert_eq(ink(&s, x, y, s.l.cell_w, s.l.caption_h), 0);
	contact_cell_caption(&s.l, 0, &x, &y);
	cr_assert_gt(ink(&s, x, y, s.l.cell_w, s.l.caption_h), 40);
	g_object_unref(s.im);
	free(jpg);
}
