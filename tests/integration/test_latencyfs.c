/* The same tree read through bench/latencyfs (a read-only FUSE mirror that delays every
 * request like an NFS round trip) and directly: the outputs are byte-identical and the
 * records agree except for the source path prefix. The mount refuses writes, and vhprep
 * still succeeds: it never writes its source.
 *
 * Needs FUSE: the fixture exits 77 where it is unavailable, and the test is skipped. In
 * CI (root, /dev/fuse) it runs. The mount is always undone in .fini. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"
#include "tests/common/vhskip.h"

static char *mountpoint; /* set while latencyfs may be mounted */

static char *fixture_script(void)
{
	return itest_fmt("%s/tests/fixtures/latencyfs.sh", itest_source_dir());
}

/* Runs the fixture with its arguments; returns its exit code, *err its stderr. */
static int fixture(const char *verb, const char *a1, const char *a2, const char *a3, char **err)
{
	struct itest_argv a = {0};
	struct itest_proc p;
	char *script = fixture_script();
	int code;

	itest_argv_add(&a, "/bin/bash");
	itest_argv_add(&a, script);
	itest_argv_add(&a, verb);
	if (a1)
		itest_argv_add(&a, a1);
	if (a2)
		itest_argv_add(&a, a2);
	if (a3)
		itest_argv_add(&a, a3);
	itest_run(a.v, NULL, &p);
	code = p.exit_code;
	if (err)
		*err = itest_fmt("%s", p.err);
	itest_proc_release(&p);
	itest_argv_free(&a);
	free(script);
	return code;
}

static void lfs_setup(void)
{
	itest_setup();
	mountpoint = NULL;
}

static void lfs_teardown(void)
{
	if (mountpoint && itest_root) {
		char *err = NULL;
		int code = fixture("umount", mountpoint, NULL, NULL, &err);

		if (code != 0)
			cr_log_error("latencyfs.sh umount %s: exit %d: %s", mountpoint, code,
				     err);
		free(err);
		free(mountpoint);
		mountpoint = NULL;
	}
	itest_teardown();
}

TestSuite(latencyfs, .init = lfs_setup, .fini = lfs_teardown, .timeout = 120);

static const char *const names[] = {
    "top.jpg",
    "a/one.jpg",
    "a/two.png",
    "a/b/three.webp",
    "a/b/c/four.jpg",
    "with space/five six.jpg",
    "caf\xc3\xa9/\xe5\x86\x99\xe7\x9c\x9f.png",
    "quotes/it's \"q\", ok.jpg",
    "many/m00.jpg",
    "many/m01.jpg",
    "many/m02.jpg",
    "many/m03.jpg",
    "many/m04.jpg",
    "many/m05.jpg",
    "many/m06.jpg",
    "many/m07.jpg",
    "many/m08.jpg",
    "many/m09.jpg",
    "many/m10.png",
    "many/m11.png",
    "many/m12.png",
    "many/m13.png",
    "many/m14.png",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* Sorts the metadata lines by "file" into a new object file -> metadata, replacing the
 * source prefix with "<SRC>" and cutting source_mtime to whole seconds. */
static json_t *normalised(json_t *lines, const char *prefix)
{
	json_t *by_file = json_object(), *line;
	size_t i, plen = strlen(prefix);

	json_array_foreach(lines, i, line)
	{
		json_t *meta = json_deep_copy(json_object_get(line, "metadata"));
		json_t *src = json_object_get(meta, "source");
		json_t *mtime = json_object_get(meta, "source_mtime");

		if (src) {
			const char *s = json_string_value(src);
			char *rel;

			cr_assert(s && !strncmp(s, prefix, plen) && s[plen] == '/',
				  "source '%s' does not start with '%s/'", s ? s : "(null)",
				  prefix);
			rel = itest_fmt("<SRC>%s", s + plen);
			json_object_set_new(meta, "source", json_string(rel));
			free(rel);
		}
		if (mtime) {
			char sec[20] = "";

			snprintf(sec, sizeof(sec), "%.19s", json_string_value(mtime));
			json_object_set_new(meta, "source_mtime", json_string(sec));
		}
		json_object_set_new(by_file, itest_jstr(line, "file"), meta);
	}
	return by_file;
}

Test(latencyfs, mount_and_plain_dir_give_the_same_outputs)
{
	char *src = itest_path("src");
	char *mnt = itest_path("mnt");
	char *out_m = itest_path("out-mount"), *out_p = itest_path("out-plain");
	char *err = NULL;
	json_t *before, *after, *lm, *lp, *nm, *np;
	int code;

	for (size_t i = 0; i < NNAMES; i++) {
		char *p = itest_fmt("%s/%s", src, names[i]);

		itest_make_image(p, 120 + 7 * (int)i, 90 + 3 * (int)i, 3, (unsigned)i, 0);
		free(p);
	}
	before = itest_snapshot(src);

	code = fixture("mount", src, mnt, "2", &err);
	if (code == 77) {
		char *why = itest_fmt("%s", err);

		free(err);
		json_decref(before);
		vht_missing("latencyfs is unavailable here (fixture exit 77): %s", why);
	}
	mountpoint = itest_fmt("%s", mnt);
	cr_assert_eq(code, 0, "latencyfs.sh mount: exit %d: %s", code, err);
	free(err);

	/* the mount is read-only */
	{
		char *f = itest_fmt("%s/new-file", mnt), *d = itest_fmt("%s/new-dir", mnt);
		char *victim = itest_fmt("%s/top.jpg", mnt);
		int fd = open(f, O_WRONLY | O_CREAT | O_EXCL, 0644);

		cr_expect_lt(fd, 0, "creating a file on the mount succeeded");
		if (fd >= 0)
			close(fd);
		cr_expect_neq(mkdir(d, 0755), 0, "mkdir on the mount succeeded");
		fd = open(victim, O_WRONLY);
		cr_expect_lt(fd, 0, "opening a mounted file for writing succeeded");
		if (fd >= 0)
			close(fd);
		cr_expect_neq(unlink(victim), 0, "unlink on the mount succeeded");
		free(victim);
		free(d);
		free(f);
	}

	{
		const char *common[] = {"--resize",	 "96x64",
					"--resize-mode", "crop",
					"--dataset",	 "dataset://preprocessed-images/v1",
					"--tag",	 "lfs"};
		struct itest_argv am = {0}, ap = {0};
		struct itest_proc pm, pp;

		itest_argv_add(&am, itest_bin());
		itest_argv_add(&ap, itest_bin());
		for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
			itest_argv_add(&am, common[i]);
			itest_argv_add(&ap, common[i]);
		}
		itest_argv_add(&am, "-o");
		itest_argv_add(&am, out_m);
		itest_argv_add(&am, mnt);
		itest_argv_add(&ap, "-o");
		itest_argv_add(&ap, out_p);
		itest_argv_add(&ap, src);
		itest_vhprep_argv(&pm, &am);
		itest_assert_exit(&pm, 0);
		cr_expect(!strstr(pm.err, "not a mount point"),
			  "vhprep says the latencyfs mount is not a mount point: %s", pm.err);
		itest_vhprep_argv(&pp, &ap);
		itest_assert_exit(&pp, 0);
		itest_proc_release(&pm);
		itest_proc_release(&pp);
		itest_argv_free(&am);
		itest_argv_free(&ap);
	}

	{
		char *im = itest_fmt("%s/processed_images", out_m);
		char *ip = itest_fmt("%s/processed_images", out_p);
		struct itest_list files;

		itest_list_files(ip, &files);
		cr_expect_eq(files.n, NNAMES, "%zu outputs of %zu inputs", files.n, NNAMES);
		itest_list_free(&files);
		itest_assert_trees_identical(im, ip);
		free(im);
		free(ip);
	}
	lm = itest_check_outputs(out_m, "processed_images", 1);
	lp = itest_check_outputs(out_p, "processed_images", 1);
	nm = normalised(lm, mnt);
	np = normalised(lp, src);
	{
		const char *key;
		json_t *v;

		json_object_foreach(np, key, v)
		{
			json_t *w = json_object_get(nm, key);

			cr_expect_not_null(w, "%s has no metadata line in the mount's run",
					   key);
			cr_expect(
			    !w || json_equal(v, w),
			    "%s: the metadata differs between the mount and the plain dir",
			    key);
		}
		cr_expect_eq(json_object_size(nm), json_object_size(np));
	}
	{
		char *cm = itest_fmt("%s/processing_metadata.csv", out_m);
		char *cp = itest_fmt("%s/processing_metadata.csv", out_p);
		struct itest_csv a, b;
		struct itest_list ra = {0}, rb = {0};

		itest_read_csv(cm, &a);
		itest_read_csv(cp, &b);
		for (size_t i = 0; i < a.nrows; i++) {
			char *row = itest_fmt("%s|%s|%s", a.rows[i].v[0],
					      a.rows[i].n > 1 ? a.rows[i].v[1] : "",
					      a.rows[i].n > 2 ? a.rows[i].v[2] : "");
			itest_list_add(&ra, row);
			free(row);
		}
		for (size_t i = 0; i < b.nrows; i++) {
			char *row = itest_fmt("%s|%s|%s", b.rows[i].v[0],
					      b.rows[i].n > 1 ? b.rows[i].v[1] : "",
					      b.rows[i].n > 2 ? b.rows[i].v[2] : "");
			itest_list_add(&rb, row);
			free(row);
		}
		itest_list_sort(&ra);
		itest_list_sort(&rb);
		itest_assert_lists_equal(&ra, &rb, "CSV rows, mount vs plain dir");
		itest_list_free(&ra);
		itest_list_free(&rb);
		itest_csv_free(&a);
		itest_csv_free(&b);
		free(cm);
		free(cp);
	}

	code = fixture("umount", mnt, NULL, NULL, &err);
	cr_expect_eq(code, 0, "latencyfs.sh umount: exit %d: %s", code, err);
	free(err);
	free(mountpoint);
	mountpoint = NULL;
	after = itest_snapshot(src);
	itest_assert_snapshots_equal(before, after, "the source after runs through the mount");

	json_decref(after);
	json_decref(before);
	json_decref(nm);
	json_decref(np);
	json_decref(lm);
	json_decref(lp);
	free(out_m);
	free(out_p);
	free(mnt);
	free(src);
}
