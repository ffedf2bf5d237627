/* The records of a run over a mixed tree: valohai.metadata.jsonl (one line per output,
 * dataset binding, provenance), processing_metadata.csv, vhprep-summary.json, and the
 * source left byte-for-byte and mtime-for-mtime as it was. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include "itest.h"
#include "tests/common/vhskip.h"

TestSuite(records, .init = itest_setup, .fini = itest_teardown, .timeout = 120);

/* One input: where it is, what it is, and what --resize 64 --resize-mode fit makes of it
 * (the fit sizes are worked out by hand: the long side becomes 64, the other rounds). */
static const struct input {
	const char *rel;
	const char *ext; /* encoder; NULL: from rel */
	int w, h, bands;
	const char *out_rel; /* under processed_images */
	const char *format;  /* of the output */
	int out_w, out_h;
} inputs[] = {
    {"plain.jpg", NULL, 320, 240, 3, "plain.jpg", "jpg", 64, 48},
    {"UPPER.JPEG", NULL, 100, 80, 3, "UPPER.JPEG", "jpg", 64, 51},
    {"nested/deeper/still deeper/leaf.png", NULL, 64, 64, 3,
     "nested/deeper/still deeper/leaf.png", "png", 64, 64},
    {"with space/a b c.png", NULL, 50, 70, 4, "with space/a b c.png", "png", 46, 64},
    {"caf\xc3\xa9/r\xc3\xa9sum\xc3\xa9 \xc3\xa9.jpg", NULL, 90, 60, 3,
     "caf\xc3\xa9/r\xc3\xa9sum\xc3\xa9 \xc3\xa9.jpg", "jpg", 64, 43},
    {"\xe6\x97\xa5\xe6\x9c\xac/\xe5\x86\x99\xe7\x9c\x9f 1.webp", NULL, 120, 90, 3,
     "\xe6\x97\xa5\xe6\x9c\xac/\xe5\x86\x99\xe7\x9c\x9f 1.webp", "webp", 64, 48},
    {"quotes/it's.png", NULL, 40, 40, 1, "quotes/it's.png", "png", 64, 64},
    {"quotes/say \"cheese\".jpg", NULL, 48, 36, 3, "quotes/say \"cheese\".jpg", "jpg", 64, 48},
    {"quotes/a,b.jpg", NULL, 30, 60, 3, "quotes/a,b.jpg", "jpg", 32, 64},
    {"mixed/it's \"all\", here.gif", NULL, 80, 40, 3, "mixed/it's \"all\", here.png", "png", 64,
     32},
    {"deep/a/b/c/d.tif", NULL, 200, 100, 3, "deep/a/b/c/d.png", "png", 64, 32},
    {"misc/noext", "jpg", 60, 45, 3, "misc/noext.jpg", "jpg", 64, 48},
};
#define NINPUTS (sizeof(inputs) / sizeof(inputs[0]))

static const char *const ops_fit64[] = {"autorotate", "resize:64x64:fit",
					"format:keep:q75:420"};

static char *make_tree(void)
{
	char *src = itest_path("src tree");

	for (size_t i = 0; i < NINPUTS; i++) {
		char *path = itest_fmt("%s/%s", src, inputs[i].rel);
		size_t len;
		void *data;

		if (inputs[i].ext) {
			data = itest_encode_image(inputs[i].ext, inputs[i].w, inputs[i].h,
						  inputs[i].bands, (unsigned)i, 0, &len);
			itest_write_file(path, data, len);
			free(data);
		} else {
			itest_make_image(path, inputs[i].w, inputs[i].h, inputs[i].bands,
					 (unsigned)i, 0);
		}
		free(path);
	}
	return src;
}

static const struct input *input_by_out(const char *out_rel)
{
	for (size_t i = 0; i < NINPUTS; i++)
		if (!strcmp(inputs[i].out_rel, out_rel))
			return &inputs[i];
	return NULL;
}

static const struct input *input_by_rel(const char *rel)
{
	for (size_t i = 0; i < NINPUTS; i++)
		if (!strcmp(inputs[i].rel, rel))
			return &inputs[i];
	return NULL;
}

static char *version_of_binary(void)
{
	struct itest_proc p;
	char *v, *nl;

	itest_vhprep(&p, "--version", NULL);
	itest_assert_exit(&p, 0);
	cr_assert(!strncmp(p.out, "vhprep ", 7));
	v = itest_fmt("%s", p.out + 7);
	nl = strchr(v, '\n');
	if (nl)
		*nl = '\0';
	itest_proc_release(&p);
	return v;
}

/* The binding every line must carry: --dataset (+ alias, from) and --tag. */
static void check_binding(json_t *meta, const char *file, int full)
{
	json_t *dv = json_object_get(meta, "valohai.dataset-versions");
	json_t *v, *tags;

	cr_assert(json_is_array(dv) && json_array_size(dv) == 1,
		  "%s: \"valohai.dataset-versions\" is not a list of one", file);
	v = json_array_get(dv, 0);
	cr_assert(json_is_object(v), "%s: the dataset version is not an object", file);
	cr_expect_str_eq(itest_jstr(v, "uri"), "dataset://preprocessed-images/v1", "%s", file);
	if (!full) {
		cr_expect_null(json_object_get(v, "targeting_aliases"), "%s", file);
		cr_expect_null(json_object_get(v, "from"), "%s", file);
		cr_expect_null(json_object_get(meta, "valohai.tags"), "%s", file);
		return;
	}
	{
		json_t *want = json_pack("[s, s]", "latest", "nightly");

		cr_expect(json_equal(json_object_get(v, "targeting_aliases"), want),
			  "%s: targeting_aliases are not [latest, nightly]", file);
		json_decref(want);
	}
	cr_expect_str_eq(itest_jstr(v, "from"), "dataset://preprocessed-images/v0", "%s", file);
	tags = json_object_get(meta, "valohai.tags");
	{
		json_t *want = json_pack("[s, s]", "raw-2024", "night shift");

		cr_expect(json_equal(tags, want),
			  "%s: valohai.tags are not [raw-2024, night shift]", file);
		json_decref(want);
	}
}

/* Every provenance field of one image's line, against the source file and the output. */
static void check_provenance(const char *src, const char *out, json_t *line,
			     const char *version)
{
	const char *file = itest_jstr(line, "file");
	json_t *meta = json_object_get(line, "metadata");
	const char *out_rel = file + strlen("processed_images/");
	const struct input *in = input_by_out(out_rel);
	char *src_path, *out_path, *want_source, sha[65], mtime[64];
	struct itest_image img;
	json_t *ops;

	cr_assert_not_null(in, "an output nobody asked for: %s", file);
	src_path = itest_fmt("%s/%s", src, in->rel);
	out_path = itest_fmt("%s/%s", out, file);
	want_source = itest_fmt("%s/%s", src, in->rel);
	cr_expect_str_eq(itest_jstr(meta, "source"), want_source, "%s", file);
	cr_expect(itest_exists(itest_jstr(meta, "source")), "%s: source does not exist", file);
	cr_expect_eq(itest_jint(meta, "source_bytes"), (json_int_t)itest_file_size(src_path),
		     "%s", file);
	itest_sha256_file(src_path, sha);
	cr_expect_str_eq(itest_jstr(meta, "source_sha256"), sha, "%s", file);
	itest_mtime_string(src_path, mtime, sizeof(mtime));
	cr_expect_str_eq(itest_jstr(meta, "source_mtime"), mtime, "%s", file);
	cr_expect_eq(itest_jint(meta, "original_width"), in->w, "%s", file);
	cr_expect_eq(itest_jint(meta, "original_height"), in->h, "%s", file);
	cr_expect_eq(itest_jint(meta, "width"), in->out_w, "%s", file);
	cr_expect_eq(itest_jint(meta, "height"), in->out_h, "%s", file);
	cr_expect_str_eq(itest_jstr(meta, "format"), in->format, "%s", file);
	{
		const char *k = itest_jstr(meta, "kernel");

		cr_expect(!strcmp(k, "libvips") || !strcmp(k, "jpeg-fast") ||
			      !strcmp(k, "png-fast"),
			  "%s: kernel '%s'", file, k);
	}
	ops = json_object_get(meta, "operations");
	cr_assert(json_is_array(ops), "%s: operations is not a list", file);
	cr_expect_eq(json_array_size(ops), 3, "%s: %zu operations", file, json_array_size(ops));
	for (size_t i = 0; i < json_array_size(ops) && i < 3; i++)
		cr_expect_str_eq(json_string_value(json_array_get(ops, i)), ops_fit64[i], "%s",
				 file);
	cr_expect_str_eq(itest_jstr(meta, "vhprep_version"), version, "%s", file);
	/* and the output is what the line says */
	itest_image_info(out_path, &img, 0);
	cr_expect_eq(img.w, in->out_w, "%s decodes as %dx%d", file, img.w, img.h);
	cr_expect_eq(img.h, in->out_h, "%s decodes as %dx%d", file, img.w, img.h);
	cr_expect_str_eq(itest_sniff(out_path), in->format, "%s", file);
	free(src_path);
	free(out_path);
	free(want_source);
}

static void check_csv(const char *out)
{
	char *path = itest_fmt("%s/processing_metadata.csv", out);
	struct itest_csv csv;
	struct itest_list seen = {0};

	itest_read_csv(path, &csv);
	cr_assert_eq(csv.nrows, NINPUTS + 1, "%zu CSV rows, want a header and %zu", csv.nrows,
		     NINPUTS);
	cr_assert_eq(csv.rows[0].n, 3);
	cr_expect_str_eq(csv.rows[0].v[0], "filename");
	cr_expect_str_eq(csv.rows[0].v[1], "original_size");
	cr_expect_str_eq(csv.rows[0].v[2], "processed_size");
	for (size_t r = 1; r < csv.nrows; r++) {
		struct itest_list *row = &csv.rows[r];
		const struct input *in;
		char want[64];

		cr_assert_eq(row->n, 3, "CSV row %zu has %zu fields (bad quoting?)", r, row->n);
		in = input_by_rel(row->v[0]);
		cr_assert_not_null(in, "CSV row %zu names '%s', not an input", r, row->v[0]);
		cr_expect(!itest_list_has(&seen, row->v[0]), "'%s' has two CSV rows",
			  row->v[0]);
		itest_list_add(&seen, row->v[0]);
		snprintf(want, sizeof(want), "(%d, %d)", in->w, in->h);
		cr_expect_str_eq(row->v[1], want, "%s original_size", row->v[0]);
		snprintf(want, sizeof(want), "(%d, %d)", in->out_w, in->out_h);
		cr_expect_str_eq(row->v[2], want, "%s processed_size", row->v[0]);
	}
	itest_list_free(&seen);
	itest_csv_free(&csv);
	free(path);
}

static void check_summary(const char *src, const char *out)
{
	char *path = itest_fmt("%s/vhprep-summary.json", out);
	json_t *s = itest_read_json(path);
	json_t *failures = json_object_get(s, "failures");

	cr_expect_eq(json_integer_value(itest_jget(s, "files.found")), (json_int_t)NINPUTS);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.selected")), (json_int_t)NINPUTS);
	cr_expect_eq(json_integer_value(itest_jget(s, "files.processed")), (json_int_t)NINPUTS);
	cr_expect(json_is_integer(itest_jget(s, "files.failed")));
	cr_expect_eq(json_integer_value(itest_jget(s, "files.failed")), 0);
	cr_expect_eq(itest_jint(s, "exit_code"), 0);
	cr_expect(json_is_null(json_object_get(s, "interrupted_by")));
	cr_expect(json_is_true(json_object_get(s, "walk_complete")));
	cr_expect(json_is_object(failures) && json_object_size(failures) == 0);
	cr_expect_str_eq(itest_jstr(s, "source"), src);
	cr_expect_str_eq(itest_jstr(s, "outputs"), out);
	json_decref(s);
	free(path);
}

static void run_and_check(int full_binding)
{
	char *src = make_tree();
	char *out = itest_path("out");
	char *version = version_of_binary();
	json_t *before = itest_snapshot(src), *after, *lines, *line;
	struct itest_argv a = {0};
	struct itest_proc p;
	size_t i;
	int images = 0;

	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "--resize");
	itest_argv_add(&a, "64");
	itest_argv_add(&a, "--resize-mode");
	itest_argv_add(&a, "fit");
	itest_argv_add(&a, "--dataset");
	itest_argv_add(&a, "dataset://preprocessed-images/v1");
	/* every file, misc/noext too (no image extension: by default skipped_type) */
	itest_argv_add(&a, "--include");
	itest_argv_add(&a, "*");
	if (full_binding) {
		const char *extra[] = {"--dataset-alias", "latest",
				       "--dataset-alias", "nightly",
				       "--dataset-from",  "dataset://preprocessed-images/v0",
				       "--tag",		  "raw-2024",
				       "--tag",		  "night shift"};

		for (size_t k = 0; k < sizeof(extra) / sizeof(extra[0]); k++)
			itest_argv_add(&a, extra[k]);
	}
	itest_argv_add(&a, "-o");
	itest_argv_add(&a, out);
	itest_argv_add(&a, src);
	itest_vhprep_argv(&p, &a);
	itest_assert_exit(&p, 0);

	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), NINPUTS + 1, "%zu metadata lines, want %zu + 1",
		     json_array_size(lines), NINPUTS);
	json_array_foreach(lines, i, line)
	{
		const char *file = itest_jstr(line, "file");
		json_t *meta = json_object_get(line, "metadata");

		check_binding(meta, file, full_binding);
		if (!strcmp(file, "processing_metadata.csv"))
			continue;
		images++;
		check_provenance(src, out, line, version);
	}
	cr_expect_eq(images, (int)NINPUTS);
	check_csv(out);
	check_summary(src, out);
	{
		char *errors = itest_fmt("%s/vhprep-errors.jsonl", out);
		json_t *e = itest_read_jsonl(errors);

		cr_expect_eq(json_array_size(e), 0, "errors recorded for good inputs");
		json_decref(e);
		free(errors);
	}
	after = itest_snapshot(src);
	itest_assert_snapshots_equal(before, after, "the source tree after the run");
	json_decref(after);
	json_decref(before);
	json_decref(lines);
	itest_proc_release(&p);
	itest_argv_free(&a);
	free(version);
	free(out);
	free(src);
}

Test(records, mixed_tree_full_binding)
{
	run_and_check(1);
}

Test(records, mixed_tree_dataset_only)
{
	run_and_check(0);
}

Test(records, packaging_and_second_dataset_pass_through)
{
	char *src = itest_path("src");
	char *img = itest_fmt("%s/x.png", src);
	char *out = itest_path("out");
	struct itest_proc p;
	json_t *lines, *line;
	size_t i;

	itest_make_image(img, 10, 10, 3, 1, 0);
	itest_vhprep(&p, "-q", "--dataset", "dataset://a/v1", "--dataset", "dataset://b/v2",
		     "--packaging", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_assert_eq(json_array_size(lines), 2);
	json_array_foreach(lines, i, line)
	{
		json_t *dv = itest_jget(line, "metadata");
		json_t *want =
		    json_pack("[{s:s, s:b}, {s:s, s:b}]", "uri", "dataset://a/v1", "packaging",
			      1, "uri", "dataset://b/v2", "packaging", 1);

		dv = json_object_get(dv, "valohai.dataset-versions");
		cr_expect(json_equal(dv, want),
			  "%s: the dataset versions are not both URIs "
			  "with \"packaging\": true",
			  itest_jstr(line, "file"));
		json_decref(want);
	}
	json_decref(lines);
	itest_proc_release(&p);
	free(out);
	free(img);
	free(src);
}

Test(records, live_upload_and_prefix)
{
	char *src = itest_path("src");
	char *a = itest_fmt("%s/a.jpg", src), *b = itest_fmt("%s/sub/b.png", src);
	char *out = itest_path("out");
	struct itest_list files;
	struct itest_proc p;
	json_t *lines, *line;
	size_t i;

	itest_make_image(a, 30, 20, 3, 1, 0);
	itest_make_image(b, 20, 30, 3, 2, 0);
	itest_vhprep(&p, "-q", "--live-upload", "--prefix", "imgs/v1", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	lines = itest_check_outputs(out, "imgs/v1", 1);
	cr_expect_eq(json_array_size(lines), 3);
	{
		char *dflt = itest_fmt("%s/processed_images", out);

		cr_expect(!itest_exists(dflt),
			  "--prefix imgs/v1 still wrote processed_images/");
		free(dflt);
	}
	{
		char *root = itest_fmt("%s/imgs/v1", out);

		itest_list_files(root, &files);
		free(root);
	}
	cr_assert_eq(files.n, 4, "two outputs and their two sidecars, got %zu files", files.n);
	for (i = 0; i < files.n; i++) {
		char *path = itest_fmt("%s/imgs/v1/%s", out, files.v[i]);
		int sidecar = strstr(files.v[i], ".metadata.json") != NULL;
		struct stat st;

		cr_assert_eq(stat(path, &st), 0);
		/* a sidecar stays writable: Valohai reads it when it uploads its file */
		cr_expect_eq(st.st_mode & 0777, sidecar ? 0644 : 0444,
			     "--live-upload: %s has mode %o", files.v[i], st.st_mode & 0777);
		free(path);
	}
	json_array_foreach(lines, i, line) /* each output's sidecar is its line's metadata */
	{
		const char *file = itest_jstr(line, "file");
		char *sc;
		json_t *j;

		if (!strcmp(file, "processing_metadata.csv"))
			continue;
		sc = itest_fmt("%s/%s.metadata.json", out, file);
		j = itest_read_json(sc);
		cr_expect(json_equal(j, json_object_get(line, "metadata")),
			  "sidecar of '%s' differs from its line", file);
		json_decref(j);
		free(sc);
	}
	/* the records are written to the end, so they must not be uploaded early */
	{
		const char *recs[] = {"valohai.metadata.jsonl", "processing_metadata.csv",
				      "vhprep-summary.json"};

		for (i = 0; i < 3; i++) {
			char *path = itest_fmt("%s/%s", out, recs[i]);
			struct stat st;

			cr_assert_eq(stat(path, &st), 0);
			cr_expect(st.st_mode & 0200,
				  "%s is read-only: Valohai would upload it "
				  "before the run ends",
				  recs[i]);
			free(path);
		}
	}
	itest_list_free(&files);
	json_decref(lines);
	itest_proc_release(&p);
	free(out);
	free(a);
	free(b);
	free(src);
}

Test(records, empty_source_and_trailing_slash)
{
	char *empty = itest_path("empty");
	char *src = itest_path("src");
	char *slashed = itest_fmt("%s/", src);
	char *img = itest_fmt("%s/x/one.jpg", src);
	char *out = itest_path("out"), *out2 = itest_path("out2");
	struct itest_proc p;
	json_t *lines;

	itest_mkdirs(empty);
	itest_vhprep(&p, "-q", "--dataset", "dataset://d/v1", "-o", out, empty, NULL);
	itest_assert_exit(&p, 0);
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), 1, "an empty source: only the CSV's line");
	json_decref(lines);
	itest_proc_release(&p);

	itest_make_image(img, 10, 10, 3, 1, 0);
	itest_vhprep(&p, "-q", "-o", out2, slashed, NULL);
	itest_assert_exit(&p, 0);
	lines = itest_check_outputs(out2, "processed_images", 1);
	{
		json_t *meta = json_object_get(json_array_get(lines, 0), "metadata");
		char *want = itest_fmt("%s/x/one.jpg", src);

		cr_expect_str_eq(itest_jstr(meta, "source"), want,
				 "SOURCE with a trailing '/'");
		free(want);
	}
	json_decref(lines);
	itest_proc_release(&p);
	free(out);
	free(out2);
	free(img);
	free(slashed);
	free(src);
	free(empty);
}

/* Writes a 16-bit (ushort) version of a generated image, or a CMYK JPEG. */
static void write_special(const char *path, const char *kind, int w, int h)
{
	size_t len;
	void *png = itest_encode_image("png", w, h, !strcmp(kind, "cmyk") ? 4 : 3, 5, 0, &len);
	VipsImage *in = vips_image_new_from_buffer(png, len, "", NULL), *t1 = NULL, *t2 = NULL;
	void *buf = NULL;
	size_t blen = 0;
	int rc;

	cr_assert_not_null(in, "%s", vips_error_buffer());
	if (!strcmp(kind, "rgb16") || !strcmp(kind, "grey16")) {
		VipsImage *src = in;

		if (!strcmp(kind, "grey16")) {
			cr_assert_eq(vips_extract_band(in, &t1, 0, NULL), 0);
			src = t1;
		}
		cr_assert_eq(vips_linear1(src, &t2, 257.0, 0.0, NULL), 0);
		{
			VipsImage *t3 = NULL, *t4 = NULL;

			cr_assert_eq(vips_cast_ushort(t2, &t3, NULL), 0);
			cr_assert_eq(vips_copy(t3, &t4, "interpretation",
					       !strcmp(kind, "grey16")
						   ? VIPS_INTERPRETATION_GREY16
						   : VIPS_INTERPRETATION_RGB16,
					       NULL),
				     0);
			rc = vips_pngsave_buffer(t4, &buf, &blen, "bitdepth", 16, NULL);
			g_object_unref(t3);
			g_object_unref(t4);
		}
	} else {
		cr_assert_eq(
		    vips_copy(in, &t2, "interpretation", VIPS_INTERPRETATION_CMYK, NULL), 0);
		rc = vips_jpegsave_buffer(t2, &buf, &blen, "Q", 90, NULL);
	}
	cr_assert_eq(rc, 0, "%s: %s", kind, vips_error_buffer());
	itest_write_file(path, buf, blen);
	g_free(buf);
	if (t1)
		g_object_unref(t1);
	if (t2)
		g_object_unref(t2);
	g_object_unref(in);
	free(png);
}

Test(records, unusual_pixel_formats_come_out_8bit)
{
	static const struct {
		const char *rel, *kind, *out_rel;
		int bands;
	} ins[] = {
	    {"deep16.png", "rgb16", "deep16.png", 3},
	    {"grey16.png", "grey16", "grey16.png", 3}, /* README: "8-bit sRGB out" */
	    {"print/cmyk.jpg", "cmyk", "print/cmyk.jpg", 3},
	};
	char *src = itest_path("src");
	char *out = itest_path("out");
	struct itest_proc p;

	for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
		char *path = itest_fmt("%s/%s", src, ins[i].rel);
		struct itest_image info;

		write_special(path, ins[i].kind, 80, 60);
		itest_image_info(path, &info, 0);
		cr_assert(!strcmp(ins[i].kind, "cmyk") ? info.bands == 4 : !info.uchar,
			  "the generated %s input is not what it should be", ins[i].kind);
		free(path);
	}
	itest_vhprep(&p, "-q", "--resize", "40x30", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
		char *path = itest_fmt("%s/processed_images/%s", out, ins[i].out_rel);
		struct itest_image info;

		itest_image_info(path, &info, 0);
		cr_expect(info.uchar, "%s: the output is not 8-bit", ins[i].rel);
		cr_expect_eq(info.bands, ins[i].bands, "%s: %d bands, want %d", ins[i].rel,
			     info.bands, ins[i].bands);
		cr_expect(info.w == 40 && info.h == 30, "%s: %dx%d", ins[i].rel, info.w,
			  info.h);
		free(path);
	}
	json_decref(itest_check_outputs(out, "processed_images", 1));
	itest_proc_release(&p);
	free(out);
	free(src);
}

/* The project's own demo dataset (bench/vhprep-mkimages --preset sample): every file is
 * processed, the records hold, and every output is 8-bit. */
Test(records, mkimages_sample_preset)
{
	char *tool = itest_fmt("%s/bench/vhprep-mkimages", itest_build_dir());
	char *src = itest_path("sample");
	char *out = itest_path("out");
	char *manifest = itest_path("manifest.tsv");
	struct itest_argv a = {0};
	struct itest_proc p;
	json_t *lines, *line;
	size_t i;

	if (access(tool, X_OK) != 0)
		vht_missing("%s is not built (VHPREP_BENCH=OFF?)", tool);
	itest_argv_add(&a, tool);
	itest_argv_add(&a, "--preset");
	itest_argv_add(&a, "sample");
	itest_argv_add(&a, "--count");
	itest_argv_add(&a, "60");
	itest_argv_add(&a, "--out");
	itest_argv_add(&a, src);
	itest_argv_add(&a, "--manifest");
	itest_argv_add(&a, manifest);
	{
		/* the generator is a fixture, not the subject: under ASan its fontconfig
		 * caches (text strokes) would fail it at exit (see lsan-notes.txt) */
		const char *asan = getenv("ASAN_OPTIONS");
		char *saved = asan ? itest_fmt("%s", asan) : NULL;
		char *quiet =
		    itest_fmt("%s%sdetect_leaks=0", asan ? asan : "", asan ? ":" : "");

		setenv("ASAN_OPTIONS", quiet, 1);
		itest_run(a.v, NULL, &p);
		if (saved)
			setenv("ASAN_OPTIONS", saved, 1);
		else
			unsetenv("ASAN_OPTIONS");
		free(saved);
		free(quiet);
	}
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	itest_argv_free(&a);

	itest_vhprep(&p, "-q", "--resize", "64", "--resize-mode", "crop", "--dataset",
		     "dataset://sample/v1", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_expect_eq(json_array_size(lines), 61, "%zu metadata lines for 60 files",
		     json_array_size(lines));
	json_array_foreach(lines, i, line)
	{
		const char *file = itest_jstr(line, "file");
		char *path;
		struct itest_image info;

		if (!strcmp(file, "processing_metadata.csv"))
			continue;
		path = itest_fmt("%s/%s", out, file);
		itest_image_info(path, &info, 0);
		cr_expect(info.w == 64 && info.h == 64, "%s: %dx%d", file, info.w, info.h);
		cr_expect(info.uchar, "%s is not 8-bit", file);
		cr_expect(info.bands >= 1 && info.bands <= 4, "%s: %d bands", file, info.bands);
		free(path);
	}
	json_decref(lines);
	itest_proc_release(&p);
	free(manifest);
	free(out);
	free(src);
	free(tool);
}

/* Two inputs that map to one output name (x.tif and x.png both become x.png): the one
 * whose relative path sorts first byte by byte (x.png) is written, every time; the other
 * is a name_collision failure naming both, never a silent overwrite; the metadata line
 * describes the file that is there. */
Test(records, colliding_output_names)
{
	char *src = itest_path("src");
	char *tif = itest_fmt("%s/x.tif", src), *png = itest_fmt("%s/x.png", src);
	char *out = itest_path("out");
	char *res = itest_fmt("%s/processed_images/x.png", out);
	char *errors_path = itest_fmt("%s/vhprep-errors.jsonl", out);
	struct itest_image info;
	struct itest_proc p;
	json_t *lines, *meta, *errors;
	const char *source;

	itest_make_image(tif, 30, 20, 3, 1, 0);
	itest_make_image(png, 20, 30, 3, 2, 0);
	itest_vhprep(&p, "-q", "-o", out, src, NULL);
	itest_assert_exit(&p, 3);
	lines = itest_check_outputs(out, "processed_images", 1);
	cr_assert_eq(json_array_size(lines), 2);
	meta = json_object_get(json_array_get(lines, 0), "metadata");
	source = itest_jstr(meta, "source");
	itest_image_info(res, &info, 0);
	cr_expect_str_eq(source, png, "x.png (byte-smaller than x.tif) must keep the name");
	cr_expect(info.w == 20 && info.h == 30, "x.png is %dx%d, its line says %s", info.w,
		  info.h, source);
	errors = itest_read_jsonl(errors_path);
	cr_assert_eq(json_array_size(errors), 1);
	cr_expect_str_eq(itest_jstr(json_array_get(errors, 0), "reason"), "name_collision");
	cr_expect_str_eq(itest_jstr(json_array_get(errors, 0), "path"), tif);
	cr_expect(strstr(itest_jstr(json_array_get(errors, 0), "message"), "x.png") &&
		      strstr(itest_jstr(json_array_get(errors, 0), "message"), "x.tif"),
		  "the failure must name both inputs: %s",
		  itest_jstr(json_array_get(errors, 0), "message"));
	json_decref(errors);
	json_decref(lines);
	itest_proc_release(&p);
	free(errors_path);
	free(res);
	free(out);
	free(png);
	free(tif);
	free(src);
}
