/* Bad inputs never stop a run: each is recorded in vhprep-errors.jsonl with its reason
 * and stage, produces no output and no metadata line, and the good files beside it are
 * processed. The exit code says whether there were more failures than --max-errors. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"
#include "tests/common/vhskip.h"

TestSuite(badinput, .init = itest_setup, .fini = itest_teardown, .timeout = 120);

static uint32_t crc32_png(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffU;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320U & (0U - (c & 1U)));
	}
	return c ^ 0xffffffffU;
}

static size_t put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	return 4;
}

/* Appends a PNG chunk to buf at *o. */
static void png_chunk(unsigned char *buf, size_t *o, const char *type,
		      const unsigned char *data, uint32_t len)
{
	size_t start;

	*o += put_be32(buf + *o, len);
	start = *o;
	memcpy(buf + *o, type, 4);
	*o += 4;
	if (len)
		memcpy(buf + *o, data, len);
	*o += len;
	*o += put_be32(buf + *o, crc32_png(buf + start, len + 4));
}

/* A PNG whose header says 60000x60000 (3.6 gigapixels) with a few bytes of data. */
static void write_bomb(const char *path)
{
	unsigned char buf[256], ihdr[13];
	static const unsigned char idat[] = {0x78, 0x01, 0x01, 0x00, 0x00, 0xff,
					     0xff, 0x00, 0x00, 0x00, 0x01};
	size_t o = 0;

	memcpy(buf, "\x89PNG\r\n\x1a\n", 8);
	o = 8;
	put_be32(ihdr, 60000);
	put_be32(ihdr + 4, 60000);
	ihdr[8] = 1;  /* bit depth */
	ihdr[9] = 0;  /* grey */
	ihdr[10] = 0; /* deflate */
	ihdr[11] = 0; /* filter */
	ihdr[12] = 0; /* no interlace */
	png_chunk(buf, &o, "IHDR", ihdr, sizeof(ihdr));
	png_chunk(buf, &o, "IDAT", idat, sizeof(idat));
	png_chunk(buf, &o, "IEND", NULL, 0);
	itest_write_file(path, buf, o);
}

/* A JPEG whose scan refers to Huffman table 3, which it never defines: the header reads,
 * the decode fails. */
static void write_corrupt_jpeg(const char *path)
{
	size_t len, i = 2;
	unsigned char *p = itest_encode_image("jpg", 160, 120, 3, 5, 0, &len);
	int patched = 0;

	while (i + 4 < len && p[i] == 0xff) {
		size_t seg = ((size_t)p[i + 2] << 8) | p[i + 3];

		if (p[i + 1] == 0xda) {
			int ns = p[i + 4];

			for (int k = 0; k < ns; k++)
				p[i + 5 + 2 * k + 1] = 0x33;
			patched = 1;
			break;
		}
		i += 2 + seg;
	}
	cr_assert(patched, "no SOS marker in the generated JPEG");
	itest_write_file(path, p, len);
	free(p);
}

/* The first fraction of a good image of format ext. */
static void write_truncated(const char *path, const char *ext, double fraction)
{
	size_t len;
	void *p = itest_encode_image(ext, 320, 240, 3, 9, 0, &len);

	itest_write_file(path, p, (size_t)((double)len * fraction));
	free(p);
}

struct bad {
	const char *rel;
	const char *reason, *alt_reason; /* alt_reason: also accepted, or NULL */
	const char *stage;
};

static const struct bad bads[] = {
    {"bad/corrupt.jpg", "corrupt", NULL, "decode"},
    {"bad/truncated.jpg", "truncated", "corrupt", "decode"},
    {"bad/truncated.png", "truncated", "corrupt", "decode"},
    {"bad/zero.jpg", "empty", NULL, "decode"},
    {"bad/notimage.jpg", "not_image", NULL, "decode"},
    {"bad/readme.png", "not_image", NULL, "decode"},
    {"bad/bomb.png", "too_large", NULL, "decode"},
};
#define NBADS (sizeof(bads) / sizeof(bads[0]))

static const char *const goods[] = {"good1.jpg", "bad/good2.png", "bad/deeper/good3.webp"};
#define NGOODS (sizeof(goods) / sizeof(goods[0]))

static char *make_bad_tree(void)
{
	char *src = itest_path("src");
	char *p;

	for (size_t i = 0; i < NGOODS; i++) {
		p = itest_fmt("%s/%s", src, goods[i]);
		itest_make_image(p, 64, 48, 3, (unsigned)i, 0);
		free(p);
	}
	p = itest_fmt("%s/bad/corrupt.jpg", src);
	write_corrupt_jpeg(p);
	free(p);
	p = itest_fmt("%s/bad/truncated.jpg", src);
	write_truncated(p, "jpg", 0.6);
	free(p);
	p = itest_fmt("%s/bad/truncated.png", src);
	write_truncated(p, "png", 0.6);
	free(p);
	p = itest_fmt("%s/bad/zero.jpg", src);
	itest_write_file(p, "", 0);
	free(p);
	p = itest_fmt("%s/bad/notimage.jpg", src);
	{
		const char *text = "This is not a JPEG, only text with a .jpg name.\n";

		itest_write_file(p, text, strlen(text));
	}
	free(p);
	p = itest_fmt("%s/bad/readme.png", src);
	itest_write_file(p, "# notes\n", 8);
	free(p);
	/* a file no image name claims is no failure: it is counted skipped_type */
	p = itest_fmt("%s/bad/readme.txt", src);
	itest_write_file(p, "# notes\n", 8);
	free(p);
	p = itest_fmt("%s/bad/bomb.png", src);
	write_bomb(p);
	free(p);
	return src;
}

/* Whether any output's name starts with the stem of rel (its path without extension). */
static int has_output_for(const struct itest_list *outs, const char *rel)
{
	const char *dot = strrchr(rel, '.');
	size_t n = dot ? (size_t)(dot - rel) : strlen(rel);

	for (size_t i = 0; i < outs->n; i++)
		if (!strncmp(outs->v[i], rel, n) && outs->v[i][n] == '.')
			return 1;
	return 0;
}

/* The checks of one run over the bad tree. */
static void check_bad_run(const char *src, const char *out)
{
	char *errors_path = itest_fmt("%s/vhprep-errors.jsonl", out);
	char *img_root = itest_fmt("%s/processed_images", out);
	json_t *errors = itest_read_jsonl(errors_path), *lines;
	struct itest_list outs;
	json_t *e;
	size_t i;

	lines = itest_check_outputs(out, "processed_images", 1);
	itest_list_files(img_root, &outs);
	cr_expect_eq(outs.n, NGOODS, "%zu outputs, want the %zu good files", outs.n, NGOODS);
	for (i = 0; i < NGOODS; i++)
		cr_expect(has_output_for(&outs, goods[i]), "good file %s was not processed",
			  goods[i]);
	cr_expect_eq(json_array_size(errors), NBADS, "%zu error lines, want %zu",
		     json_array_size(errors), NBADS);
	for (size_t b = 0; b < NBADS; b++) {
		char *want_path = itest_fmt("%s/%s", src, bads[b].rel);
		int found = 0;

		json_array_foreach(errors, i, e)
		{
			const char *reason;

			if (strcmp(itest_jstr(e, "path"), want_path))
				continue;
			found++;
			reason = itest_jstr(e, "reason");
			cr_expect(
			    !strcmp(reason, bads[b].reason) ||
				(bads[b].alt_reason && !strcmp(reason, bads[b].alt_reason)),
			    "%s: reason '%s', want '%s'", bads[b].rel, reason, bads[b].reason);
			cr_expect_str_eq(itest_jstr(e, "stage"), bads[b].stage, "%s",
					 bads[b].rel);
			cr_expect(strlen(itest_jstr(e, "message")) > 0, "%s: empty message",
				  bads[b].rel);
		}
		cr_expect_eq(found, 1, "%s: %d error lines, want 1", bads[b].rel, found);
		cr_expect(!has_output_for(&outs, bads[b].rel), "%s has an output", bads[b].rel);
		free(want_path);
	}
	json_array_foreach(lines, i, e)
	{
		json_t *src_v = itest_jget(e, "metadata.source");

		for (size_t b = 0; src_v && b < NBADS; b++)
			cr_expect(!strstr(json_string_value(src_v), bads[b].rel),
				  "%s has a metadata line", bads[b].rel);
	}
	{
		char *sum_path = itest_fmt("%s/vhprep-summary.json", out);
		json_t *s = itest_read_json(sum_path);

		cr_expect_eq(json_integer_value(itest_jget(s, "files.failed")),
			     (json_int_t)NBADS);
		cr_expect_eq(json_integer_value(itest_jget(s, "files.processed")),
			     (json_int_t)NGOODS);
		cr_expect_eq(json_integer_value(itest_jget(s, "failures.empty.count")), 1);
		cr_expect_eq(json_integer_value(itest_jget(s, "failures.too_large.count")), 1);
		cr_expect_eq(json_integer_value(itest_jget(s, "failures.not_image.count")), 2);
		cr_expect_eq(json_integer_value(itest_jget(s, "files.skipped_type")), 1);
		json_decref(s);
		free(sum_path);
	}
	itest_list_free(&outs);
	json_decref(lines);
	json_decref(errors);
	free(img_root);
	free(errors_path);
}

Test(badinput, each_bad_file_is_recorded_and_the_run_goes_on)
{
	char *src = make_bad_tree();
	char *out = itest_path("out");
	struct itest_proc p;

	itest_vhprep(&p, "--resize", "32", "-o", out, src, NULL);
	itest_assert_exit(&p, 3);
	check_bad_run(src, out);
	{
		char *sum_path = itest_fmt("%s/vhprep-summary.json", out);
		json_t *s = itest_read_json(sum_path);

		cr_expect_eq(itest_jint(s, "exit_code"), 3, "the summary's exit_code");
		json_decref(s);
		free(sum_path);
	}
	itest_proc_release(&p);
	free(out);
	free(src);
}

Test(badinput, max_errors_decides_the_exit_code)
{
	char *src = make_bad_tree();
	char *n_ok = itest_fmt("%zu", NBADS), *n_short = itest_fmt("%zu", NBADS - 1);
	const struct {
		const char *max;
		int want;
	} cases[] = {{"10", 0}, {n_ok, 0}, {n_short, 3}};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		char *out = itest_fmt("%s/out-%zu", itest_root, c);
		struct itest_proc p;

		itest_vhprep(&p, "-q", "--max-errors", cases[c].max, "-o", out, src, NULL);
		cr_expect_eq(p.exit_code, cases[c].want,
			     "--max-errors %s with %zu failures: exit "
			     "%d, want %d; stderr: %s",
			     cases[c].max, NBADS, p.exit_code, cases[c].want, p.err);
		check_bad_run(src, out);
		itest_proc_release(&p);
		free(out);
	}
	free(n_ok);
	free(n_short);
	free(src);
}

Test(badinput, fail_on_none_lets_a_truncated_jpeg_through)
{
	char *src = itest_path("src");
	char *trunc = itest_fmt("%s/truncated.jpg", src), *good = itest_fmt("%s/good.jpg", src);
	char *out = itest_path("out"), *out2 = itest_path("out-default");
	char *res = itest_fmt("%s/processed_images/truncated.jpg", out);
	struct itest_image info;
	struct itest_proc p;
	json_t *lines;

	write_truncated(trunc, "jpg", 0.6);
	itest_make_image(good, 64, 48, 3, 1, 0);

	itest_vhprep(&p, "-q", "--fail-on", "none", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	cr_assert(itest_exists(res), "--fail-on none: the truncated JPEG has no output");
	itest_image_info(res, &info, 0);
	cr_expect(info.w == 320 && info.h == 240, "%dx%d", info.w, info.h);
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), 3);
	json_decref(lines);
	itest_proc_release(&p);

	/* and by default (--fail-on truncated) it is a failure */
	itest_vhprep(&p, "-q", "-o", out2, src, NULL);
	itest_assert_exit(&p, 3);
	lines = itest_check_outputs(out2, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), 2);
	json_decref(lines);
	itest_proc_release(&p);
	free(res);
	free(out2);
	free(out);
	free(good);
	free(trunc);
	free(src);
}

Test(badinput, max_pixels_is_checked_from_the_header)
{
	char *src = itest_path("src");
	char *big = itest_fmt("%s/big.png", src), *small = itest_fmt("%s/small.png", src);
	char *out = itest_path("out");
	char *errors_path = itest_fmt("%s/vhprep-errors.jsonl", out);
	struct itest_proc p;
	json_t *errors;

	itest_make_image(big, 200, 100, 3, 1, 0);   /* 20000 pixels */
	itest_make_image(small, 100, 100, 3, 2, 0); /* 10000 pixels */
	itest_vhprep(&p, "-q", "--max-pixels", "10000", "-o", out, src, NULL);
	itest_assert_exit(&p, 3);
	errors = itest_read_jsonl(errors_path);
	cr_assert_eq(json_array_size(errors), 1);
	cr_expect(strstr(itest_jstr(json_array_get(errors, 0), "path"), "big.png"));
	cr_expect_str_eq(itest_jstr(json_array_get(errors, 0), "reason"), "too_large");
	json_decref(errors);
	json_decref(itest_check_outputs(out, "processed_images", 1));
	itest_proc_release(&p);
	free(errors_path);
	free(out);
	free(big);
	free(small);
	free(src);
}

Test(badinput, unreadable_file_and_directory)
{
	char *src = itest_path("src");
	char *good = itest_fmt("%s/good.jpg", src);
	char *locked = itest_fmt("%s/locked.jpg", src);
	char *lockdir = itest_fmt("%s/lockdir", src);
	char *inlocked = itest_fmt("%s/lockdir/inside.jpg", src);
	char *out = itest_path("out");
	char *errors_path = itest_fmt("%s/vhprep-errors.jsonl", out);
	struct itest_spawn_opts o = {.drop_dac = geteuid() == 0};
	struct itest_argv a = {0};
	struct itest_proc p;
	json_t *errors, *e;
	size_t i;
	int saw_file = 0, saw_dir = 0;

	itest_make_image(good, 32, 32, 3, 1, 0);
	itest_make_image(locked, 32, 32, 3, 2, 0);
	itest_make_image(inlocked, 32, 32, 3, 3, 0);
	cr_assert_eq(chmod(locked, 0), 0);
	cr_assert_eq(chmod(lockdir, 0), 0);
	/* do permissions apply to a child of ours? (root: only without DAC capabilities) */
	itest_argv_add(&a, "/bin/cat");
	itest_argv_add(&a, locked);
	itest_run(a.v, &o, &p);
	itest_argv_free(&a);
	if (p.exit_code == 0 || p.exit_code == 125 || p.exit_code == 126) {
		itest_proc_release(&p);
		chmod(lockdir, 0755);
		vht_missing(
		    "file permissions do not apply to this test's children (root that "
		    "cannot drop CAP_DAC_OVERRIDE): the unreadable-file case is untestable");
	}
	itest_proc_release(&p);

	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "-q");
	itest_argv_add(&a, "-o");
	itest_argv_add(&a, out);
	itest_argv_add(&a, src);
	itest_run(a.v, &o, &p);
	itest_argv_free(&a);
	itest_assert_exit(&p, 3);
	errors = itest_read_jsonl(errors_path);
	json_array_foreach(errors, i, e)
	{
		const char *path = itest_jstr(e, "path");

		if (!strcmp(path, locked)) {
			saw_file++;
			cr_expect_str_eq(itest_jstr(e, "reason"), "permission");
			cr_expect_str_eq(itest_jstr(e, "stage"), "read");
		} else if (strstr(path, "lockdir")) {
			saw_dir++;
			cr_expect_str_eq(itest_jstr(e, "reason"), "permission");
			cr_expect_str_eq(itest_jstr(e, "stage"), "walk");
		}
	}
	cr_expect_eq(saw_file, 1, "the unreadable file has %d error lines", saw_file);
	cr_expect_eq(saw_dir, 1, "the unreadable directory has %d error lines", saw_dir);
	cr_expect_eq(json_array_size(errors), 2);
	{
		json_t *lines = itest_check_outputs(out, "processed_images", 1);

		cr_expect_eq(json_array_size(lines), 2, "good.jpg and the CSV");
		json_decref(lines);
	}
	chmod(lockdir, 0755);
	json_decref(errors);
	itest_proc_release(&p);
	free(errors_path);
	free(out);
	free(inlocked);
	free(lockdir);
	free(locked);
	free(good);
	free(src);
}

/* A complete PNG (IEND and all) whose compressed pixel data is invalid: the first
 * deflate block of its first IDAT chunk has the reserved block type 3, and the chunk's
 * CRC is recomputed. The header reads, the pixels do not. (Garbling bytes in the middle
 * of the stream is not enough: libvips tells libpng to ignore the Adler-32, and garbled
 * deflate data often still inflates.) Returns a malloc'd buffer of *len bytes. */
static unsigned char *corrupt_png(size_t *len)
{
	unsigned char *p = itest_encode_image("png", 320, 240, 3, 11, 0, len);
	size_t i = 8;
	int patched = 0;

	while (i + 12 <= *len && !patched) {
		size_t n = ((size_t)p[i] << 24) | ((size_t)p[i + 1] << 16) |
			   ((size_t)p[i + 2] << 8) | p[i + 3];

		if (!memcmp(p + i + 4, "IDAT", 4) && n > 8) {
			p[i + 8 + 2] |= 0x06; /* after the 2-byte zlib header: BTYPE = 11 */
			put_be32(p + i + 8 + n, crc32_png(p + i + 4, n + 4));
			patched = 1;
		}
		i += 12 + n;
	}
	cr_assert(patched, "no IDAT chunk in the generated PNG");
	return p;
}

/* Several workers failing and succeeding at once: each failure keeps its own stage and
 * reason. libvips' error buffer is process-wide; a PNG whose pixels fail to decode fails
 * inside the save call (decoding is lazy), where the saver adds "vips2png: unable to
 * write to target". If another worker clears or takes the buffer in between, only the
 * saver's line is left, and the input is misreported as an encode failure. */
Test(badinput, parallel_failures_keep_their_reason)
{
	char *src = itest_path("src");
	char *out = itest_path("out");
	char *errors_path = itest_fmt("%s/vhprep-errors.jsonl", out);
	size_t tlen, clen, jlen, plen;
	void *png = itest_encode_image("png", 320, 240, 3, 9, 0, &tlen);
	unsigned char *bad_png = corrupt_png(&clen);
	void *jpg = itest_encode_image("jpg", 96, 64, 3, 1, 0, &jlen);
	void *good_png = itest_encode_image("png", 96, 64, 3, 2, 0, &plen);
	struct itest_proc p;
	json_t *errors, *e;
	size_t i;
	int wrong_t = 0, wrong_c = 0;

	for (int k = 0; k < 24; k++) {
		char *t = itest_fmt("%s/t%02d.png", src, k),
		     *c = itest_fmt("%s/c%02d.png", src, k),
		     *g = itest_fmt("%s/g%02d.jpg", src, k),
		     *q = itest_fmt("%s/p%02d.png", src, k);

		itest_write_file(t, png, tlen * 6 / 10);
		itest_write_file(c, bad_png, clen);
		itest_write_file(g, jpg, jlen);
		itest_write_file(q, good_png, plen);
		free(t);
		free(c);
		free(g);
		free(q);
	}
	itest_vhprep(&p, "-q", "--threads", "4", "-o", out, src, NULL);
	itest_assert_exit(&p, 3);
	errors = itest_read_jsonl(errors_path);
	cr_expect_eq(json_array_size(errors), 48,
		     "%zu error lines for 24 truncated and 24 "
		     "corrupt PNGs",
		     json_array_size(errors));
	json_array_foreach(errors, i, e)
	{
		const char *path = itest_jstr(e, "path"), *base = strrchr(path, '/');
		const char *reason = itest_jstr(e, "reason"), *stage = itest_jstr(e, "stage");
		int truncated = base && base[1] == 't';

		if ((!strcmp(reason, "truncated") || !strcmp(reason, "corrupt")) &&
		    !strcmp(stage, "decode"))
			continue;
		if (!wrong_t && !wrong_c)
			cr_log_error("first misreported: %s: stage %s, reason %s, message %s",
				     path, stage, reason, itest_jstr(e, "message"));
		if (truncated)
			wrong_t++;
		else
			wrong_c++;
	}
	cr_expect_eq(wrong_t, 0,
		     "%d of 24 truncated PNGs were recorded with another stage/reason than "
		     "decode/truncated (see the log line above)",
		     wrong_t);
	cr_expect_eq(wrong_c, 0,
		     "%d of 24 corrupt (complete) PNGs were recorded with another stage/reason "
		     "than decode/corrupt (see the log line above)",
		     wrong_c);
	json_decref(itest_check_outputs(out, "processed_images", 1));
	json_decref(errors);
	itest_proc_release(&p);
	free(good_png);
	free(jpg);
	free(bad_png);
	free(png);
	free(errors_path);
	free(out);
	free(src);
}

/* Whether msg names an image format other than own ("jpeg", "png", ...). */
static int names_other_format(const char *msg, const char *own)
{
	static const char *const words[] = {"jpeg", "png", "webp", "tiff", "gif"};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(words[i], own) != 0 && strcasestr(msg, words[i]))
			return 1;
	return 0;
}

/* The error lines of a run as one sorted text, one "path reason message" per line. */
static char *error_lines(const char *out)
{
	char *path = itest_fmt("%s/vhprep-errors.jsonl", out);
	json_t *errors = itest_read_jsonl(path), *e;
	struct itest_list l = {0};
	size_t i, n = 0;
	char *all;

	json_array_foreach(errors, i, e)
	{
		char *line = itest_fmt("%s %s %s", itest_jstr(e, "path"),
				       itest_jstr(e, "reason"), itest_jstr(e, "message"));

		itest_list_add(&l, line);
		n += strlen(line) + 1;
		free(line);
	}
	itest_list_sort(&l);
	all = calloc(1, n + 1);
	for (size_t k = 0; k < l.n; k++) {
		strcat(all, l.v[k]);
		strcat(all, "\n");
	}
	itest_list_free(&l);
	json_decref(errors);
	free(path);
	return all;
}

/* Damaged JPEG, PNG, WebP, TIFF and GIF files at once: every message is its own
 * file's (it names no other format) and the error lines are identical at -j1 and -j8
 * (with the preview on, whose thumbnails use libvips on the workers too). */
Test(badinput, messages_are_the_same_at_j1_and_j8)
{
	static const char *const exts[] = {"jpg", "png", "webp", "tif", "gif"};
	static const char *const owns[] = {"jpeg", "png", "webp", "tiff", "gif"};
	char *src = itest_path("src");
	char *runs[2] = {NULL, NULL};
	const char *threads[2] = {"1", "8"};

	for (size_t f = 0; f < 5; f++) {
		size_t len;
		unsigned char *img =
		    itest_encode_image(exts[f], 200, 150, 3, 5 + (unsigned)f, 0, &len);

		for (int k = 0; k < 6; k++) {
			char *path = itest_fmt("%s/%s-%d.%s", src, exts[f], k, exts[f]);

			if (k == 5) /* complete, with garbage in its middle third */
				memset(img + len / 3, 0x5a, len / 10);
			itest_write_file(path, img,
					 k == 5 ? len : len * (2 + 3 * (size_t)k) / 20);
			free(path);
		}
		free(img);
	}
	for (int r = 0; r < 2; r++) {
		char *out = itest_path(r ? "out-j8" : "out-j1");
		char *errors_path = itest_fmt("%s/vhprep-errors.jsonl", out);
		struct itest_proc p;
		json_t *errors, *e;
		size_t i;

		itest_vhprep(&p, "-q", "--threads", threads[r], "--resize", "64",
			     "--max-errors", "1000", "-o", out, src, NULL);
		itest_assert_exit(&p, 0);
		errors = itest_read_jsonl(errors_path);
		cr_assert_geq(json_array_size(errors), 15,
			      "only %zu of 30 damaged files failed", json_array_size(errors));
		json_array_foreach(errors, i, e)
		{
			const char *path = itest_jstr(e, "path"), *ext = strrchr(path, '.') + 1;

			for (size_t f = 0; f < 5; f++)
				if (!strcmp(ext, exts[f]))
					cr_expect_not(names_other_format(
							  itest_jstr(e, "message"), owns[f]),
						      "-j%s: %s: '%s' names another format",
						      threads[r], path,
						      itest_jstr(e, "message"));
		}
		runs[r] = error_lines(out);
		json_decref(errors);
		itest_proc_release(&p);
		free(errors_path);
		free(out);
	}
	cr_expect_str_eq(runs[1], runs[0], "the error lines differ between -j8 and -j1");
	free(runs[0]);
	free(runs[1]);
	free(src);
}
