#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/filelist.h"
#include "tests/common/vhtest.h"

/* ---- filelist_clean_relpath ---- */

static void expect_clean(const char *in, const char *want)
{
	char buf[256];

	strcpy(buf, in);
	cr_assert_eq(filelist_clean_relpath(buf), 0, "'%s' was rejected", in);
	cr_assert_str_eq(buf, want, "'%s' cleaned to '%s', want '%s'", in, buf, want);
}

static void expect_rejected(const char *in)
{
	char buf[256];

	strcpy(buf, in);
	cr_assert_eq(filelist_clean_relpath(buf), -1, "'%s' was accepted as '%s'", in, buf);
}

Test(filelist_clean_relpath, normalises)
{
	expect_clean("./a//b/", "a/b");
	expect_clean("a", "a");
	expect_clean("a/b/c.jpg", "a/b/c.jpg");
	expect_clean("a/./b", "a/b");
	expect_clean("././a", "a");
	expect_clean("a/", "a");
	expect_clean("a///", "a");
	expect_clean(".//./a/.//b/.", "a/b");
	expect_clean("a b/c d.jpg", "a b/c d.jpg");
	expect_clean(".hidden/.x", ".hidden/.x");
}

Test(filelist_clean_relpath, dots_inside_names_are_names)
{
	expect_clean("...", "...");
	expect_clean("..a", "..a");
	expect_clean("a..", "a..");
	expect_clean("a/..b/c", "a/..b/c");
	expect_clean("a/.../c", "a/.../c");
}

Test(filelist_clean_relpath, rejects_what_leaves_or_is_not_a_path)
{
	expect_rejected("");
	expect_rejected(".");
	expect_rejected("./");
	expect_rejected("./.");
	expect_rejected("/abs");
	expect_rejected("/");
	expect_rejected("..");
	expect_rejected("../a");
	expect_rejected("a/..");
	expect_rejected("a/../b");
	expect_rejected("./a/../../b");
}

/* ---- filelist_run ---- */

#define MAXSEEN 64

struct seen {
	int n, nerr, stop_after;
	char *paths[MAXSEEN];
	char *errpaths[MAXSEEN];
	struct vherr errs[MAXSEEN];
};

static enum source_next on_emit(void *ctx, const struct source_entry *e)
{
	const char *relpath = e->relpath;
	struct seen *s = ctx;

	cr_assert_lt(s->n, MAXSEEN);
	s->paths[s->n++] = strdup(relpath);
	return s->stop_after && s->n >= s->stop_after ? SOURCE_STOP : SOURCE_CONTINUE;
}

static void on_err(void *ctx, const char *relpath, const struct vherr *err)
{
	struct seen *s = ctx;

	cr_assert_lt(s->nerr, MAXSEEN);
	s->errpaths[s->nerr] = strdup(relpath);
	s->errs[s->nerr++] = *err;
}

static void seen_free(struct seen *s)
{
	for (int i = 0; i < s->n; i++)
		free(s->paths[i]);
	for (int i = 0; i < s->nerr; i++)
		free(s->errpaths[i]);
}

static char dir[PATH_MAX];

static void setup(void)
{
	vht_tmpdir(dir, sizeof(dir));
}

static void teardown(void)
{
	vht_rm_rf(dir);
}

static char *list_file(const char *content, char *buf, size_t size)
{
	vht_join(buf, size, dir, "list.txt");
	vht_write(buf, content, strlen(content));
	return buf;
}

Test(filelist_run, lines_crlf_blank_and_bad, .init = setup, .fini = teardown)
{
	char path[PATH_MAX];
	struct seen s = {0};
	struct vherr err = {0};
	atomic_int stop = 0;

	list_file("a.jpg\r\n"
		  "\n"
		  "\r\n"
		  "./b//c.png\n"
		  "../escape.jpg\n"
		  "/etc/passwd\n"
		  "sub dir/with space.jpg\r\n"
		  "d/e.jpg", /* last line without a newline */
		  path, sizeof(path));
	cr_assert_eq(filelist_run(path, &stop, on_emit, &s, on_err, &err), 0);
	cr_assert_eq(s.n, 4);
	cr_assert_str_eq(s.paths[0], "a.jpg");
	cr_assert_str_eq(s.paths[1], "b/c.png");
	cr_assert_str_eq(s.paths[2], "sub dir/with space.jpg");
	cr_assert_str_eq(s.paths[3], "d/e.jpg");
	cr_assert_eq(s.nerr, 2);
	cr_assert_str_eq(s.errpaths[0], "../escape.jpg");
	cr_assert_str_eq(s.errpaths[1], "/etc/passwd");
	for (int i = 0; i < s.nerr; i++) {
		cr_assert_eq(s.errs[i].stage, VHSTAGE_SELECT);
		cr_assert_neq(s.errs[i].code, VHERR_OK);
		cr_assert_neq(s.errs[i].msg[0], '\0');
	}
	cr_assert_eq(atomic_load(&stop), 0);
	seen_free(&s);
}

Test(filelist_run, bad_lines_without_on_error_are_skipped, .init = setup, .fini = teardown)
{
	char path[PATH_MAX];
	struct seen s = {0};
	struct vherr err = {0};
	atomic_int stop = 0;

	list_file("../x\nok.jpg\n.\n", path, sizeof(path));
	cr_assert_eq(filelist_run(path, &stop, on_emit, &s, NULL, &err), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.paths[0], "ok.jpg");
	seen_free(&s);
}

/* The path handed to on_error is what the list says, so the error record names the line
 * the user wrote. filelist_clean_relpath rewrites the line in place before it fails
 * ("./a/.." → "a/a/..", "." → ""), and filelist_run reports the rewritten buffer. */
Test(filelist_run, on_error_gets_the_line_as_written, .init = setup, .fini = teardown)
{
	char path[PATH_MAX];
	struct seen s = {0};
	struct vherr err = {0};
	atomic_int stop = 0;

	list_file("./a/..\n.\n./b/../../c\n", path, sizeof(path));
	cr_assert_eq(filelist_run(path, &stop, on_emit, &s, on_err, &err), 0);
	cr_assert_eq(s.n, 0);
	cr_assert_eq(s.nerr, 3);
	cr_expect_str_eq(s.errpaths[0], "./a/..");
	cr_expect_str_eq(s.errpaths[1], ".");
	cr_expect_str_eq(s.errpaths[2], "./b/../../c");
	seen_free(&s);
}

Test(filelist_run, emit_stop_ends_the_list, .init = setup, .fini = teardown)
{
	char path[PATH_MAX];
	struct seen s = {.stop_after = 2};
	struct vherr err = {0};
	atomic_int stop = 0;

	list_file("1\n2\n3\n4\n", path, sizeof(path));
	cr_assert_eq(filelist_run(path, &stop, on_emit, &s, on_err, &err), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.paths[1], "2");
	cr_assert_eq(atomic_load(&stop), 1, "SOURCE_STOP must raise *stop");
	seen_free(&s);
}

Test(filelist_run, raised_stop_emits_nothing, .init = setup, .fini = teardown)
{
	char path[PATH_MAX];
	struct seen s = {0};
	struct vherr err = {0};
	atomic_int stop = 1;

	list_file("1\n2\n", path, sizeof(path));
	cr_assert_eq(filelist_run(path, &stop, on_emit, &s, on_err, &err), 0);
	cr_assert_eq(s.n, 0);
	seen_free(&s);
}

Test(filelist_run, missing_list_is_an_error, .init = setup, .fini = teardown)
{
	char path[PATH_MAX];
	struct seen s = {0};
	struct vherr err = {0};
	atomic_int stop = 0;

	vht_join(path, sizeof(path), dir, "nope.txt");
	cr_assert_eq(filelist_run(path, &stop, on_emit, &s, on_err, &err), -VHERR_NOENT);
	cr_assert_eq(err.code, VHERR_NOENT);
	cr_assert_not_null(strstr(err.msg, "nope.txt"), "message: %s", err.msg);
	cr_assert_eq(s.n, 0);
}

Test(filelist_run, a_directory_as_list_is_a_read_error, .init = setup, .fini = teardown)
{
	struct seen s = {0};
	struct vherr err = {0};
	atomic_int stop = 0;

	cr_assert_lt(filelist_run(dir, &stop, on_emit, &s, on_err, &err), 0);
	cr_assert_neq(err.code, VHERR_OK);
	cr_assert_eq(s.n, 0);
}

Test(filelist_run, dash_reads_stdin, .init = setup, .fini = teardown)
{
	char path[PATH_MAX];
	struct seen s = {0};
	struct vherr err = {0};
	atomic_int stop = 0;

	list_file("x/y.jpg\nz.png\n", path, sizeof(path));
	cr_assert_not_null(freopen(path, "r", stdin));
	cr_assert_eq(filelist_run("-", &stop, on_emit, &s, on_err, &err), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_str_eq(s.paths[0], "x/y.jpg");
	cr_assert_str_eq(s.paths[1], "z.png");
	seen_free(&s);
}

Test(filelist_run, long_lines_are_whole, .init = setup, .fini = teardown)
{
	char path[PATH_MAX], *content = malloc(20001);
	struct seen s = {0};
	struct vherr err = {0};
	atomic_int stop = 0;

	memset(content, 'n', 9999);
	content[9999] = '\n';
	memset(content + 10000, 'm', 9999);
	content[19999] = '\n';
	content[20000] = '\0';
	list_file(content, path, sizeof(path));
	cr_assert_eq(filelist_run(path, &stop, on_emit, &s, on_err, &err), 0);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(strlen(s.paths[0]), 9999);
	cr_assert_eq(s.paths[1][0], 'm');
	free(content);
	seen_free(&s);
}
