/* Images selected by type (issue 13 item 1): without --include a file is taken when its
 * extension names a format vhprep reads, the rest are counted skipped_type and are no
 * failure; --include decides instead; the content is still sniffed; a walk that selects
 * nothing is exit 2 with the filters named. And a real tree nobody here made: Debian's
 * wallpapers (plasma-workspace-wallpapers: 72 images, 29 metadata.json, a .desktop). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"

TestSuite(bytype, .init = itest_setup, .fini = itest_teardown, .timeout = 240);

/* A tree like a dataset someone keeps: images (some in upper case), their notes. */
static char *make_tree(void)
{
	char *src = itest_path("src");
	static const char *const images[] = {"a.jpg",	   "b.PNG",	"sub/c.jpeg",
					     "sub/d.webp", "sub/e.TIF", "f.gif"};
	static const char *const others[] = {"README", "notes.txt", "sub/metadata.json",
					     "x.desktop", "sub/.hidden.json"};

	for (size_t i = 0; i < sizeof(images) / sizeof(*images); i++) {
		char *f = itest_fmt("%s/%s", src, images[i]);

		itest_make_image(f, 40, 30, 3, (unsigned)i + 1, 0);
		free(f);
	}
	for (size_t i = 0; i < sizeof(others) / sizeof(*others); i++) {
		char *f = itest_fmt("%s/%s", src, others[i]);

		itest_write_file(f, "{\"not\": \"an image\"}\n", 20);
		free(f);
	}
	return src;
}

static json_t *summary_of(const char *out)
{
	char *path = itest_fmt("%s/vhprep-summary.json", out);
	json_t *s = itest_read_json(path);

	free(path);
	return s;
}

Test(bytype, non_images_by_name_are_counted_not_failed)
{
	char *src = make_tree(), *out = itest_path("out");
	struct itest_proc p;
	json_t *s;

	itest_vhprep(&p, "--resize", "16", "--metrics-interval", "0", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	s = summary_of(out);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "found"), 11);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "processed"), 6);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "skipped_type"), 5);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "failed"), 0);
	cr_assert_not_null(strstr(p.err, "5 not images by name"), "%s", p.err);
	json_decref(s);
	itest_proc_release(&p);
	free(out);
	free(src);
}

/* With --include the globs decide, and the content is sniffed: a text file given as an
 * image is a not_image failure. */
Test(bytype, include_decides_and_content_is_sniffed)
{
	char *src = make_tree(), *out = itest_path("out");
	char *fake = itest_fmt("%s/sub/liar.jpg", src);
	struct itest_proc p;
	json_t *s;

	itest_write_file(fake, "just text\n", 10);
	itest_vhprep(&p, "--include", "*.json", "--max-errors", "99", "--metrics-interval", "0",
		     "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	s = summary_of(out);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "failed"), 2, "the two .json files");
	cr_assert_eq(itest_jint(itest_jget(s, "failures.not_image"), "count"), 2);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "skipped_type"), 0);
	json_decref(s);
	itest_proc_release(&p);
	itest_rmtree(out);
	itest_vhprep(&p, "--max-errors", "99", "--metrics-interval", "0", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	s = summary_of(out);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "processed"), 6);
	cr_assert_eq(itest_jint(itest_jget(s, "failures.not_image"), "count"), 1, "liar.jpg");
	json_decref(s);
	itest_proc_release(&p);
	free(fake);
	free(out);
	free(src);
}

/* One argument holding two globs (a Valohai `multiple: separate` parameter) selects
 * nothing: exit 2, the filter named, the comma explained. */
Test(bytype, nothing_selected_is_exit_2_naming_the_filters)
{
	char *src = make_tree(), *out = itest_path("out"), *empty = itest_path("empty/x");
	struct itest_proc p;

	itest_vhprep(&p, "--include", "*.jpg,*.PNG", "--metrics-interval", "0", "-o", out, src,
		     NULL);
	itest_assert_exit(&p, 2);
	cr_assert_not_null(strstr(p.err, "selected 0 of the 11 files found"), "%s", p.err);
	cr_assert_not_null(strstr(p.err, "--include '*.jpg,*.PNG'"), "%s", p.err);
	cr_assert_not_null(strstr(p.err, "not comma-separated"), "%s", p.err);
	itest_proc_release(&p);
	itest_rmtree(out);
	/* a tree of notes only */
	itest_mkdirs(empty);
	free(empty);
	empty = itest_path("empty/notes.txt");
	itest_write_file(empty, "x", 1);
	free(empty);
	empty = itest_path("empty");
	itest_vhprep(&p, "--metrics-interval", "0", "-o", out, empty, NULL);
	itest_assert_exit(&p, 2);
	cr_assert_not_null(strstr(p.err, "--include GLOB"), "%s", p.err);
	itest_proc_release(&p);
	itest_rmtree(out);
	/* another member's share is no error */
	itest_vhprep(&p, "--include", "a.jpg", "--shard", "1/2", "--metrics-interval", "0",
		     "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	/* an empty source is no error either: nothing was found */
	itest_rmtree(out);
	free(empty);
	empty = itest_path("void/");
	itest_mkdirs(empty);
	itest_vhprep(&p, "--metrics-interval", "0", "-o", out, empty, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	free(empty);
	free(out);
	free(src);
}

/* Debian's wallpapers, as the issue ran them: exit 0, one 224x224 output per image. */
Test(bytype, debian_wallpapers_tree)
{
	const char *tree = "/usr/share/wallpapers";
	char *src = itest_path("wallpapers"), *out = itest_path("out");
	struct itest_list files = {0}, outs = {0};
	struct itest_proc p;
	int images = 0, others = 0;
	json_t *s;

	if (access(tree, R_OK) != 0) {
		if (getenv("VHPREP_CI"))
			cr_assert_fail("%s missing: .ci/install-deps.sh installs "
				       "plasma-workspace-wallpapers",
				       tree);
		cr_skip_test("%s missing (apt-get install plasma-workspace-wallpapers)", tree);
	}
	itest_copy_tree(tree, src);
	itest_list_files(src, &files);
	for (size_t i = 0; i < files.n; i++) {
		const char *dot = strrchr(files.v[i], '.');

		if (dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".png")))
			images++;
		else
			others++;
	}
	cr_assert_gt(images, 50, "the package changed: %d images", images);
	itest_vhprep(&p, "--resize", "224", "--metrics-interval", "0", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	s = summary_of(out);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "processed"), images);
	cr_assert_eq(itest_jint(itest_jget(s, "files"), "skipped_type"), others);
	json_decref(s);
	free(out);
	out = itest_path("out/processed_images");
	itest_list_files(out, &outs);
	cr_assert_eq(outs.n, (size_t)images);
	for (size_t i = 0; i < outs.n; i++) {
		char *f = itest_fmt("%s/%s", out, outs.v[i]);
		struct itest_image info;

		cr_assert_eq(itest_image_info(f, &info, 0), 0);
		cr_assert(info.w == 224 && info.h == 224, "%s is %dx%d", outs.v[i], info.w,
			  info.h);
		free(f);
	}
	itest_list_free(&outs);
	itest_list_free(&files);
	itest_proc_release(&p);
	free(out);
	free(src);
}
