#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dirsink.h"
#include "tests/common/vhtest.h"

/* ---- dirsink_output_name ---- */

static void expect_name(const char *prefix, const char *rel, const char *ext, const char *want)
{
	char buf[256];

	cr_assert_eq(dirsink_output_name(prefix, rel, ext, buf, sizeof(buf)), 0,
		     "('%s', '%s', '%s') failed", prefix, rel, ext);
	cr_assert_str_eq(buf, want, "('%s', '%s', '%s')", prefix, rel, ext);
}

Test(dirsink_output_name, prefix_and_no_prefix)
{
	expect_name("processed_images", "a/b/c.png", "jpg", "processed_images/a/b/c.jpg");
	expect_name("", "a/b/c.png", "jpg", "a/b/c.jpg");
	expect_name("", "c.png", "png", "c.png");
	expect_name("p/q", "c.webp", "png", "p/q/c.png");
}

Test(dirsink_output_name, extension_changed_unless_same_format)
{
	expect_name("p", "x.png", "jpg", "p/x.jpg");
	expect_name("p", "x.jpeg", "png", "p/x.png");
	expect_name("p", "x.JPG", "jpg", "p/x.JPG");
	expect_name("p", "x.jpg", "jpg", "p/x.jpg");
	expect_name("p", "x.JPEG", "jpg", "p/x.JPEG");
	expect_name("p", "x.jpeg", "jpg", "p/x.jpeg");
	expect_name("p", "x.jpe", "jpg", "p/x.jpe");
	expect_name("p", "x.Jpe", "jpg", "p/x.Jpe");
	expect_name("p", "x.PNG", "png", "p/x.PNG");
	expect_name("p", "x.WebP", "webp", "p/x.WebP");
	expect_name("p", "x.jpeg", "webp", "p/x.webp");
	expect_name("p", "x.jpe", "png", "p/x.png");
	expect_name("p", "a.tar.gz", "png", "p/a.tar.png");
	expect_name("p", "x.jpg.png", "jpg", "p/x.jpg.jpg");
}

Test(dirsink_output_name, hidden_and_extensionless_names)
{
	expect_name("p", ".hidden", "jpg", "p/.hidden.jpg");
	expect_name("p", "d/.hidden", "png", "p/d/.hidden.png");
	expect_name("p", "d/.hidden.png", "jpg", "p/d/.hidden.jpg");
	expect_name("p", "noext", "png", "p/noext.png");
	expect_name("p", "dir.v2/noext", "png", "p/dir.v2/noext.png");
	expect_name("p", "dir.v2/x.gif", "png", "p/dir.v2/x.png");
}

Test(dirsink_output_name, too_long_is_refused)
{
	char buf[16];

	/* "p/abc.jpg" is 9 characters: fits in 10 bytes, not in 9 */
	cr_assert_eq(dirsink_output_name("p", "abc.png", "jpg", buf, 10), 0);
	cr_assert_str_eq(buf, "p/abc.jpg");
	cr_assert_eq(dirsink_output_name("p", "abc.png", "jpg", buf, 9), -1);
	cr_assert_eq(dirsink_output_name("p", "abc.jpg", "jpg", buf, 9), -1);
	cr_assert_eq(dirsink_output_name("", "a-very-long-name.png", "jpg", buf, sizeof(buf)),
		     -1);
}

/* ---- dirsink_open / dirsink_write ---- */

static char dir[PATH_MAX], out[PATH_MAX];

static void setup(void)
{
	vht_tmpdir(dir, sizeof(dir));
	vht_join(out, sizeof(out), dir, "outputs/nested");
}

static void teardown(void)
{
	vht_rm_rf(dir);
}

static struct dirsink *open_sink(int live_upload)
{
	struct dirsink *s = NULL;
	struct vherr err = {0};

	cr_assert_eq(dirsink_open(out, live_upload, &s, &err), 0, "%s", err.msg);
	cr_assert_not_null(s);
	return s;
}

static char *read_out(const char *rel, size_t *len)
{
	char path[PATH_MAX];

	return vht_slurp(vht_join(path, sizeof(path), out, rel), len);
}

static mode_t mode_of(const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	cr_assert_eq(stat(vht_join(path, sizeof(path), out, rel), &st), 0, "stat %s", rel);
	return st.st_mode & 07777;
}

static void expect_no_temp_files(void)
{
	cr_assert_eq(vht_count_names(dir, "vhprep-tmp"), 0, "a temporary file was left behind");
}

Test(dirsink, open_creates_the_outputs_dir_with_parents, .init = setup, .fini = teardown)
{
	struct dirsink *s = open_sink(0);
	struct stat st;

	cr_assert_eq(stat(out, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(fstat(dirsink_dirfd(s), &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	dirsink_free(s);
	s = open_sink(0); /* an existing dir is fine */
	dirsink_free(s);
	dirsink_free(NULL);
}

Test(dirsink, open_on_a_file_fails, .init = setup, .fini = teardown)
{
	struct dirsink *s = (struct dirsink *)0x1;
	struct vherr err = {0};
	char path[PATH_MAX];

	vht_put(dir, "afile", "x");
	cr_assert_lt(dirsink_open(vht_join(path, sizeof(path), dir, "afile"), 0, &s, &err),
		     0);
	cr_assert_null(s);
	cr_assert_eq(err.stage, VHSTAGE_WRITE);
	cr_assert_not_null(strstr(err.msg, "afile"), "message: %s", err.msg);
}

Test(dirsink, write_creates_parents_with_exact_content, .init = setup, .fini = teardown)
{
	struct dirsink *s = open_sink(0);
	static uint8_t data[100000];
	struct vherr err = {0};
	size_t len;
	char *got;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 251 + 3);
	cr_assert_eq(dirsink_write(s, "p/a/b/c.jpg", data, sizeof(data), &err), 0, "%s",
		     err.msg);
	got = read_out("p/a/b/c.jpg", &len);
	cr_assert_eq(len, sizeof(data));
	cr_assert_arr_eq(got, data, sizeof(data));
	free(got);
	cr_assert_eq(dirsink_write(s, "p/a/empty.jpg", data, 0, &err), 0);
	got = read_out("p/a/empty.jpg", &len);
	cr_assert_eq(len, 0);
	free(got);
	cr_assert_eq(dirsink_write(s, "top.jpg", (const uint8_t *)"t", 1, &err), 0);
	cr_assert_eq(mode_of("top.jpg") & 0222, 0200, "a normal output stays writable");
	expect_no_temp_files();
	dirsink_free(s);
}

Test(dirsink, an_existing_file_is_never_replaced, .init = setup, .fini = teardown)
{
	struct dirsink *s = open_sink(0);
	struct vherr err = {0};
	char *got;

	cr_assert_eq(dirsink_write(s, "x/o.jpg", (const uint8_t *)"first", 5, &err), 0);
	cr_assert_eq(dirsink_write(s, "x/o.jpg", (const uint8_t *)"second", 6, &err),
		     -VHERR_EXISTS);
	cr_assert_eq(err.code, VHERR_EXISTS);
	cr_assert_eq(err.stage, VHSTAGE_WRITE);
	cr_assert_not_null(strstr(err.msg, "x/o.jpg"), "message: %s", err.msg);
	got = read_out("x/o.jpg", NULL);
	cr_assert_str_eq(got, "first", "a refused write must not touch the existing file");
	free(got);
	expect_no_temp_files();
	dirsink_free(s);
}

/* A replacement is a removal then a new output: the name is never taken over in place. */
Test(dirsink, remove_then_write_replaces, .init = setup, .fini = teardown)
{
	struct dirsink *s = open_sink(0);
	struct vherr err = {0};
	char *got;

	cr_assert_eq(dirsink_write(s, "o.jpg", (const uint8_t *)"first", 5, &err), 0);
	cr_assert_eq(dirsink_remove(s, "o.jpg", &err), 0, "%s", err.msg);
	cr_assert_eq(dirsink_remove(s, "o.jpg", &err), 0, "removing nothing is fine");
	cr_assert_eq(dirsink_write(s, "o.jpg", (const uint8_t *)"second", 6, &err), 0, "%s",
		     err.msg);
	got = read_out("o.jpg", NULL);
	cr_assert_str_eq(got, "second");
	free(got);
	expect_no_temp_files();
	dirsink_free(s);
}

/* Staged is invisible: under its temporary name until the commit, gone after a discard. */
Test(dirsink, staged_output_is_invisible_until_committed, .init = setup, .fini = teardown)
{
	struct dirsink *s = open_sink(0);
	struct dirsink_staged st;
	struct vherr err = {0};
	char *got;

	cr_assert_eq(dirsink_stage(s, "d/o.jpg", (const uint8_t *)"bytes", 5, &st, &err), 0);
	cr_assert_eq(st.len, 5);
	cr_assert_eq(vht_count_names(out, "o.jpg"), 0);
	cr_assert_eq(vht_count_names(out, DIRSINK_TMP_MARK), 1);
	cr_assert_eq(dirsink_commit(s, &st, "d/o.jpg", &err), 0, "%s", err.msg);
	got = read_out("d/o.jpg", NULL);
	cr_assert_str_eq(got, "bytes");
	free(got);
	cr_assert_eq(dirsink_stage(s, "d/p.jpg", (const uint8_t *)"x", 1, &st, &err), 0);
	dirsink_discard(s, &st);
	dirsink_discard(s, &st); /* twice: nothing */
	cr_assert_eq(vht_count_names(out, "p.jpg"), 0);
	expect_no_temp_files();
	dirsink_free(s);
}

/* A commit onto an existing name fails and takes its staged file with it. */
Test(dirsink, commit_onto_an_existing_name_fails_cleanly, .init = setup, .fini = teardown)
{
	struct dirsink *s = open_sink(0);
	struct dirsink_staged st;
	struct vherr err = {0};
	char *got;

	cr_assert_eq(dirsink_write(s, "o.jpg", (const uint8_t *)"first", 5, &err), 0);
	cr_assert_eq(dirsink_stage(s, "o.jpg", (const uint8_t *)"second", 6, &st, &err), 0);
	cr_assert_eq(dirsink_commit(s, &st, "o.jpg", &err), -VHERR_EXISTS);
	cr_assert_not_null(strstr(err.msg, "not one vhprep recorded"), "%s", err.msg);
	got = read_out("o.jpg", NULL);
	cr_assert_str_eq(got, "first");
	free(got);
	expect_no_temp_files();
	dirsink_free(s);
}

Test(dirsink, live_upload_makes_outputs_read_only, .init = setup, .fini = teardown)
{
	struct dirsink *s = open_sink(1);
	struct vherr err = {0};
	char *got;

	cr_assert_eq(dirsink_write(s, "d/o.jpg", (const uint8_t *)"bytes", 5, &err), 0);
	cr_assert_eq(mode_of("d/o.jpg"), 0444);
	got = read_out("d/o.jpg", NULL);
	cr_assert_str_eq(got, "bytes");
	free(got);
	expect_no_temp_files();
	dirsink_free(s);
}

Test(dirsink, live_upload_output_can_be_removed_and_replaced, .init = setup, .fini = teardown)
{
	struct dirsink *s = open_sink(1);
	struct vherr err = {0};
	char *got;

	cr_assert_eq(dirsink_write(s, "o.jpg", (const uint8_t *)"first", 5, &err), 0);
	cr_assert_eq(dirsink_remove(s, "o.jpg", &err), 0, "%s", err.msg);
	cr_assert_eq(dirsink_write(s, "o.jpg", (const uint8_t *)"second", 6, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(mode_of("o.jpg"), 0444);
	got = read_out("o.jpg", NULL);
	cr_assert_str_eq(got, "second");
	free(got);
	dirsink_free(s);
}

Test(dirsink, parent_that_is_a_file_fails_cleanly, .init = setup, .fini = teardown)
{
	struct dirsink *s = open_sink(0);
	struct vherr err = {0};
	char *got;

	cr_assert_eq(dirsink_write(s, "blocker", (const uint8_t *)"file", 4, &err), 0);
	cr_assert_lt(dirsink_write(s, "blocker/sub/o.jpg", (const uint8_t *)"x", 1, &err), 0);
	cr_assert_eq(err.stage, VHSTAGE_WRITE);
	cr_assert_neq(err.code, VHERR_OK);
	cr_assert_not_null(strstr(err.msg, "blocker/sub/o.jpg"), "message: %s", err.msg);
	got = read_out("blocker", NULL);
	cr_assert_str_eq(got, "file");
	free(got);
	expect_no_temp_files();
	dirsink_free(s);
}

Test(dirsink, read_only_directory_fails_cleanly, .init = setup, .fini = teardown)
{
	struct dirsink *s = open_sink(0);
	struct vherr err = {0};
	char ro[PATH_MAX];

	vht_mkdirs(vht_join(ro, sizeof(ro), out, "ro"));
	cr_assert_eq(chmod(ro, 0555), 0);
	vht_require_permissions(dir);
	cr_assert_eq(dirsink_write(s, "ro/o.jpg", (const uint8_t *)"x", 1, &err),
		     -VHERR_ACCESS);
	cr_assert_eq(err.code, VHERR_ACCESS);
	cr_assert_eq(dirsink_write(s, "ro/new/o.jpg", (const uint8_t *)"x", 1, &err),
		     -VHERR_ACCESS);
	cr_assert_eq(vht_count_names(ro, "o.jpg"), 0);
	cr_assert_eq(vht_count_names(ro, "new"), 0);
	expect_no_temp_files();
	dirsink_free(s);
}

/* A source name may be up to NAME_MAX (255) bytes, and so may its output. The temporary
 * name ".NAME.vhprep-tmp.PID.N" adds ~25 bytes to it, so a long (valid) output name
 * fails with "File name too long" before it is ever written. */
Test(dirsink, long_valid_name_can_be_written, .init = setup, .fini = teardown)
{
	struct dirsink *s = open_sink(0);
	struct vherr err = {0};
	char name[256];
	size_t len;
	char *got;

	memset(name, 'n', 250);
	strcpy(name + 250, ".jpg"); /* 254 bytes: a legal file name */
	cr_expect_eq(dirsink_write(s, name, (const uint8_t *)"long", 4, &err), 0,
		     "writing a %zu-byte name failed: %s", strlen(name), err.msg);
	if (err.code == VHERR_OK) {
		got = read_out(name, &len);
		cr_assert_eq(len, 4);
		free(got);
	}
	expect_no_temp_files();
	dirsink_free(s);
}

struct writer {
	struct dirsink *s;
	int id;
	atomic_int *failures;
};

static void *write_many(void *arg)
{
	struct writer *w = arg;
	struct vherr err;
	char name[64], body[64];

	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "t%d/sub%d/f%d.jpg", w->id % 2, i % 3,
			 w->id * 100 + i);
		snprintf(body, sizeof(body), "%d", w->id * 100 + i);
		if (dirsink_write(w->s, name, (const uint8_t *)body, strlen(body), &err) != 0)
			atomic_fetch_add(w->failures, 1);
	}
	return NULL;
}

Test(dirsink, concurrent_writers_share_parents, .init = setup, .fini = teardown, .timeout = 60)
{
	struct dirsink *s = open_sink(0);
	struct writer w[8];
	pthread_t t[8];
	atomic_int failures = 0;

	for (int i = 0; i < 8; i++) {
		w[i] = (struct writer){.s = s, .id = i, .failures = &failures};
		cr_assert_eq(pthread_create(&t[i], NULL, write_many, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&failures), 0);
	for (int id = 0; id < 8; id++)
		for (int i = 0; i < 50; i++) {
			char name[64], body[64], *got;

			snprintf(name, sizeof(name), "t%d/sub%d/f%d.jpg", id % 2, i % 3,
				 id * 100 + i);
			snprintf(body, sizeof(body), "%d", id * 100 + i);
			got = read_out(name, NULL);
			cr_assert_str_eq(got, body);
			free(got);
		}
	expect_no_temp_files();
	dirsink_free(s);
}
