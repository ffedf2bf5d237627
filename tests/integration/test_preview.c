/* The preview sheet of real runs of the built binary, looked at: vhprep-preview.jpg in
 * the outputs root has the size its layout gives; each cell is the sample it should be
 * (the files of smallest preview_hash, in path order), its left half the source's own
 * colour and its right half the grey output (--gray) of that colour; its caption band,
 * the title and the failure strip hold text (ink). --preview 0 writes no sheet; only
 * --preview-in-dataset binds it to the dataset version; SIGTERM still writes it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <vips/vips.h>

#include "engine/preview.h"
#include "itest.h"
#include "kernels/contact.h"

TestSuite(preview, .init = itest_setup, .fini = itest_teardown, .timeout = 120);

#define NGOOD	30
#define NBAD	2
#define SAMPLES 12

static const char *bad_names[NBAD] = {"b/zero.jpg", "c/notimage.jpg"};

static char *good_name(int i)
{
	return itest_fmt("%s/img_%02d.jpg", i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "c/d", i);
}

/* File i's colour: distinct for every i, away from black and white. */
static void colour(int i, uint8_t rgb[3])
{
	rgb[0] = (uint8_t)(40 + (i * 53) % 170);
	rgb[1] = (uint8_t)(40 + (i * 97) % 170);
	rgb[2] = (uint8_t)(40 + (i * 31) % 170);
}

/* Writes a 200 x 150 JPEG of one colour to path. */
static void write_solid(const char *path, const uint8_t rgb[3])
{
	double c[3] = {rgb[0], rgb[1], rgb[2]}, one[3] = {1, 1, 1};
	VipsImage *black, *lin, *u;
	void *buf;
	size_t len;

	cr_assert_eq(vips_black(&black, 200, 150, "bands", 3, NULL), 0);
	cr_assert_eq(vips_linear(black, &lin, one, c, 3, NULL), 0);
	cr_assert_eq(vips_cast_uchar(lin, &u, NULL), 0);
	cr_assert_eq(vips_jpegsave_buffer(u, &buf, &len, "Q", 95, NULL), 0);
	itest_write_file(path, buf, len);
	g_free(buf);
	g_object_unref(u);
	g_object_unref(lin);
	g_object_unref(black);
}

static char *make_tree(void)
{
	char *src = itest_path("src");

	for (int i = 0; i < NGOOD; i++) {
		uint8_t rgb[3];
		char *rel = good_name(i), *p = itest_fmt("%s/%s", src, rel);

		colour(i, rgb);
		write_solid(p, rgb);
		free(p);
		free(rel);
	}
	for (int i = 0; i < NBAD; i++) {
		char *p = itest_fmt("%s/%s", src, bad_names[i]);

		itest_write_file(p, i ? "not an image" : "", i ? 12 : 0);
		free(p);
	}
	return src;
}

/* The sample at cell k: the good file of the k-th name, in path order, among the
 * SAMPLES smallest hashes of every selected file (a bad one among them leaves a hole).
 * Returns its index, and how many cells there are in *ncells. */
static int sample_at(int k, int *ncells)
{
	enum { ALL = NGOOD + NBAD };
	char *names[ALL];
	int idx[ALL], n = 0, picked[ALL] = {0}, good = 0, at = -1;

	for (int i = 0; i < ALL; i++) {
		names[i] = i < NGOOD ? good_name(i) : strdup(bad_names[i - NGOOD]);
		idx[i] = i;
	}
	/* pick the SAMPLES smallest hashes */
	for (int s = 0; s < SAMPLES; s++) {
		int best = -1;

		for (int i = 0; i < ALL; i++)
			if (!picked[i] &&
			    (best < 0 || preview_hash(names[i]) < preview_hash(names[best])))
				best = i;
		picked[best] = 1;
	}
	/* the good ones in path order */
	for (int i = 0; i < ALL; i++)
		if (picked[i] && idx[i] < NGOOD)
			idx[n++] = i;
	for (int a = 0; a < n; a++)
		for (int b = a + 1; b < n; b++)
			if (strcmp(names[idx[b]], names[idx[a]]) < 0) {
				int t = idx[a];

				idx[a] = idx[b];
				idx[b] = t;
			}
	good = n;
	if (k < good)
		at = idx[k];
	*ncells = good;
	for (int i = 0; i < ALL; i++)
		free(names[i]);
	return at;
}

static VipsImage *load_sheet(const char *path)
{
	VipsImage *im = vips_image_new_from_file(path, NULL), *mem;

	cr_assert_not_null(im, "%s: %s", path, vips_error_buffer());
	mem = vips_image_copy_memory(im);
	g_object_unref(im);
	cr_assert_not_null(mem);
	cr_assert_eq(mem->Bands, 3);
	return mem;
}

static const uint8_t *px(VipsImage *im, int x, int y)
{
	return VIPS_IMAGE_ADDR(im, x, y);
}

/* Pixels of a rectangle much brighter than the sheet's background (text). */
static int ink(VipsImage *im, int x, int y, int w, int h)
{
	int n = 0;

	for (int r = y; r < y + h; r++)
		for (int q = x; q < x + w; q++)
			n += px(im, q, r)[0] > 120 || px(im, q, r)[1] > 120 ||
			     px(im, q, r)[2] > 120;
	return n;
}

static void assert_near(const uint8_t *p, const uint8_t want[3], int tol, const char *what,
			int cell)
{
	for (int b = 0; b < 3; b++)
		cr_assert(abs(p[b] - want[b]) <= tol, "cell %d %s: %d,%d,%d, want %d,%d,%d",
			  cell, what, p[0], p[1], p[2], want[0], want[1], want[2]);
}

Test(preview, the_sheet_shows_each_sample_where_the_layout_says)
{
	char *src = make_tree(), *out = itest_path("out");
	char *sheet_path = itest_fmt("%s/" PREVIEW_FILE, out);
	char n[8];
	struct itest_proc p;
	struct contact_layout l;
	VipsImage *im;
	int ncells;

	snprintf(n, sizeof(n), "%d", SAMPLES);
	itest_vhprep(&p, "--resize", "64", "--gray", "--preview", n, "--max-errors", "9",
		     "--metrics-interval", "0", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	sample_at(0, &ncells);
	cr_assert_geq(ncells, SAMPLES - NBAD);
	im = load_sheet(sheet_path);
	contact_layout(ncells, NBAD, 1, &l);
	cr_assert_eq(im->Xsize, l.width, "sheet %dx%d, layout %dx%d", im->Xsize, im->Ysize,
		     l.width, l.height);
	cr_assert_eq(im->Ysize, l.height);
	for (int k = 0; k < ncells; k++) {
		int i = sample_at(k, &ncells), x, y;
		uint8_t rgb[3], grey[3];

		colour(i, rgb);
		grey[0] = grey[1] = grey[2] =
		    (uint8_t)(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] + 0.5);
		contact_cell_box(&l, k, 0, &x, &y);
		assert_near(px(im, x + l.box / 2, y + l.box / 2), rgb, 14, "source", k);
		contact_cell_box(&l, k, 1, &x, &y);
		assert_near(px(im, x + l.box / 2, y + l.box / 2), grey, 14, "output", k);
		contact_cell_caption(&l, k, &x, &y);
		cr_assert_gt(ink(im, x, y, l.cell_w, l.caption_h), 50, "cell %d: no caption",
			     k);
	}
	cr_assert_gt(ink(im, l.grid_x, l.title_y, l.width - 2 * l.gap, l.title_h), 100);
	cr_assert_gt(ink(im, l.grid_x, l.strip_y, l.width - 2 * l.gap, l.strip_h), 100,
		     "no failure strip");
	g_object_unref(im);
	itest_proc_release(&p);
	free(sheet_path);
	free(out);
	free(src);
}

Test(preview, preview_0_writes_no_sheet)
{
	char *src = make_tree(), *out = itest_path("out"),
	     *sheet = itest_fmt("%s/" PREVIEW_FILE, out);
	struct itest_proc p;

	itest_vhprep(&p, "--preview", "0", "--max-errors", "9", "--metrics-interval", "0", "-o",
		     out, src, NULL);
	itest_assert_exit(&p, 0);
	cr_assert_not(itest_exists(sheet));
	itest_proc_release(&p);
	free(sheet);
	free(out);
	free(src);
}

/* How many lines of outputs' metadata name the sheet, and whether they bind it. */
static int sheet_lines(const char *out, int *bound)
{
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	json_t *lines = itest_read_jsonl(meta), *line;
	size_t i;
	int n = 0;

	*bound = 0;
	json_array_foreach(lines, i, line)
	{
		if (strcmp(itest_jstr(line, "file"), PREVIEW_FILE) == 0) {
			n++;
			*bound = json_object_get(json_object_get(line, "metadata"),
						 "valohai.dataset-versions") != NULL;
		}
	}
	json_decref(lines);
	free(meta);
	return n;
}

Test(preview, bound_to_the_dataset_only_with_preview_in_dataset)
{
	char *src = make_tree(), *plain = itest_path("plain"), *in = itest_path("in");
	char *plain_sheet = itest_fmt("%s/" PREVIEW_FILE, plain), *other = itest_path("x");
	struct itest_proc p;
	int bound;

	itest_vhprep(&p, "--dataset", "dataset://images/v1", "--max-errors", "9",
		     "--metrics-interval", "0", "-o", plain, src, NULL);
	itest_assert_exit(&p, 0);
	cr_assert_eq(sheet_lines(plain, &bound), 0);
	cr_assert(itest_exists(plain_sheet));
	itest_proc_release(&p);
	itest_vhprep(&p, "--dataset", "dataset://images/v1", "--preview-in-dataset",
		     "--max-errors", "9", "--metrics-interval", "0", "-o", in, src, NULL);
	itest_assert_exit(&p, 0);
	cr_assert_eq(sheet_lines(in, &bound), 1);
	cr_assert(bound, "the sheet's line has no dataset version");
	itest_proc_release(&p);
	/* a rerun resumes: the sheet is drawn again, its line is not duplicated */
	itest_vhprep(&p, "--dataset", "dataset://images/v1", "--preview-in-dataset",
		     "--max-errors", "9", "--metrics-interval", "0", "-o", in, src, NULL);
	itest_assert_exit(&p, 0);
	cr_assert_eq(sheet_lines(in, &bound), 1, "a rerun duplicated the sheet's line");
	itest_proc_release(&p);
	itest_vhprep(&p, "--preview-in-dataset", "-o", other, src, NULL);
	itest_assert_exit(&p, 2); /* needs --dataset */
	itest_proc_release(&p);
	free(other);
	free(plain_sheet);
	free(in);
	free(plain);
	free(src);
}

Test(preview, sigterm_still_writes_the_sheet)
{
	char *src = itest_path("many"), *out = itest_path("out");
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	char *sheet = itest_fmt("%s/" PREVIEW_FILE, out);
	char *out_log = itest_path("stdout"), *err_log = itest_path("stderr");
	/* one thread, few reads ahead: the run is still going when the signal comes */
	static const char *const slow[] = {"--threads",		 "1", "--io-depth", "4",
					   "--metrics-interval", "0", "-o"};
	struct itest_argv a = {0};
	size_t len;
	void *jpg = itest_encode_image("jpg", 640, 480, 3, 9, 0, &len);
	int code = -1, term = 0;
	pid_t pid;
	VipsImage *im;

	for (int i = 0; i < 300; i++) {
		char *f = itest_fmt("%s/d%d/img_%03d.jpg", src, i % 5, i);

		itest_write_file(f, jpg, len);
		free(f);
	}
	free(jpg);
	itest_argv_add(&a, itest_bin());
	for (size_t i = 0; i < sizeof(slow) / sizeof(*slow); i++)
		itest_argv_add(&a, slow[i]);
	itest_argv_add(&a, out);
	itest_argv_add(&a, src);
	pid = itest_spawn(a.v, NULL, out_log, err_log);
	for (;;) { /* the first output recorded, then the signal */
		char *text = itest_exists(meta) ? itest_slurp(meta, NULL) : NULL;
		int ready = text && strstr(text, "processed_images/");

		free(text);
		if (ready)
			break;
		cr_assert_not(itest_wait(pid, 0.01, &code, &term), "vhprep ended before its "
								   "first output");
	}
	cr_assert_eq(kill(pid, SIGTERM), 0, "%s", strerror(errno));
	cr_assert(itest_wait(pid, 90.0, &code, &term));
	cr_assert_eq(code, 143);
	im = load_sheet(sheet);
	cr_assert_geq(im->Xsize, 300);
	g_object_unref(im);
	itest_argv_free(&a);
	free(err_log);
	free(out_log);
	free(sheet);
	free(meta);
	free(out);
	free(src);
}
