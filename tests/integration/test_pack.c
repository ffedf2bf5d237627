/* --pack tar|tar.zst end to end (issue 14): GNU tar extracts every shard to exactly the
 * image files a dir run writes; 200 random keys read through the indexes with plain
 * /usr/bin/python3 (tests/io/read_index.py: a ranged read, or the frame through `zstd
 * -d`) equal the dir run's files; valohai.metadata.jsonl binds every shard and index, one
 * line each, with counts and key ranges; a killed run leaves no partial shard visible
 * and its rerun adds new shards, never touching a published one. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "itest.h"

TestSuite(pack, .init = itest_setup, .fini = itest_teardown, .timeout = 280);

#define NIMAGES 240

/* NIMAGES images in nested folders, JPEG and PNG, ordinary names (whose key is their
 * path: pack.h). */
static char *make_tree(void)
{
	char *src = itest_path("src");

	for (int i = 0; i < NIMAGES; i++) {
		char *p = itest_fmt("%s/c%d/s%d/img_%03d.%s", src, i % 5, i % 3, i,
				    i % 4 ? "jpg" : "png");

		itest_make_image(p, 40 + i % 23, 30 + i % 17, 3, (unsigned)i, 0);
		free(p);
	}
	return src;
}

/* Runs vhprep SRC -o OUT [--pack FMT --shard-size 64k] and asserts exit 0. */
static void run(const char *src, const char *out, const char *fmt, const char *level)
{
	struct itest_argv a = {0};
	struct itest_proc p;

	itest_argv_add(&a, itest_bin());
	for (const char *const *o =
		 (const char *const[]){"-q", "-j", "2", "--metrics-interval", "0", "--preview",
				       "0", "--resize", "32", "--dataset", "dataset://imgs/v1",
				       NULL};
	     *o; o++)
		itest_argv_add(&a, *o);
	if (fmt) {
		itest_argv_add(&a, "--pack");
		itest_argv_add(&a, fmt);
		itest_argv_add(&a, "--shard-size");
		itest_argv_add(&a, "64k");
	}
	if (level) {
		itest_argv_add(&a, "--zstd-level");
		itest_argv_add(&a, level);
	}
	itest_argv_add(&a, "-o");
	itest_argv_add(&a, out);
	itest_argv_add(&a, src);
	itest_vhprep_argv(&p, &a);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	itest_argv_free(&a);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The published shards in out (sorted names). */
static void list_shards(const char *out, const char *ext, struct itest_list *shards)
{
	struct itest_list all = {0};

	itest_list_files(out, &all);
	for (size_t i = 0; i < all.n; i++)
		if (strncmp(all.v[i], "processed_images-0of1-", 22) == 0 &&
		    ends_with(all.v[i], ext))
			itest_list_add(shards, all.v[i]);
	itest_list_free(&all);
}

/* Checks the records of a pack run: a line per shard and per index, counts adding up to
 * NIMAGES, each shard's key range its index's first and last key. */
static void check_records(const char *out, const char *ext, size_t *nshards)
{
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	json_t *lines = itest_read_jsonl(meta);
	struct itest_list shards = {0};
	json_int_t members = 0;
	size_t i, shard_lines = 0, index_lines = 0;
	json_t *l;

	list_shards(out, ext, &shards);
	cr_assert_gt(shards.n, 2, "want several shards at --shard-size 64k, got %zu", shards.n);
	json_array_foreach(lines, i, l)
	{
		const char *file = itest_jstr(l, "file");
		json_t *sh = itest_jget(l, "metadata.vhprep_shard");
		json_t *dv =
		    json_object_get(json_object_get(l, "metadata"), "valohai.dataset-versions");

		if (strcmp(file, "processing_metadata.csv") == 0)
			continue;
		cr_assert(dv && json_is_array(dv), "'%s' is not bound to the dataset", file);
		if (itest_jget(l, "metadata.vhprep_index_of")) {
			index_lines++;
			continue;
		}
		cr_assert(sh, "line for '%s' is neither a shard's nor an index's", file);
		cr_assert(itest_list_has(&shards, file), "'%s' has a line but no shard", file);
		shard_lines++;
		members += itest_jint(sh, "members");
		{
			char *idx_path = itest_fmt("%s/%s.idx.jsonl", out, file);
			json_t *idx = itest_read_jsonl(idx_path);
			size_t n = json_array_size(idx);

			cr_assert_eq((json_int_t)n, itest_jint(sh, "members"));
			cr_assert_str_eq(itest_jstr(json_array_get(idx, 0), "key"),
					 itest_jstr(sh, "first_key"));
			cr_assert_str_eq(itest_jstr(json_array_get(idx, n - 1), "key"),
					 itest_jstr(sh, "last_key"));
			char *shard_path = itest_fmt("%s/%s", out, file);

			cr_assert_eq((json_int_t)itest_file_size(shard_path),
				     itest_jint(sh, "bytes"));
			json_decref(idx);
			free(idx_path);
			free(shard_path);
		}
	}
	cr_assert_eq(shard_lines, shards.n, "%zu shard lines for %zu shards", shard_lines,
		     shards.n);
	cr_assert_eq(index_lines, shards.n);
	cr_assert_eq(members, NIMAGES);
	*nshards = shards.n;
	itest_list_free(&shards);
	json_decref(lines);
	free(meta);
}

/* tar -x of every shard into a fresh dir, the .json members removed: the dir run's files. */
static void check_extract(const char *out, const char *dirrun, const char *ext, int zstd)
{
	char *x = itest_path(zstd ? "x-zst" : "x-tar");
	struct itest_list shards = {0};
	char *cmd;

	itest_mkdirs(x);
	list_shards(out, ext, &shards);
	for (size_t i = 0; i < shards.n; i++) {
		cmd = itest_fmt("tar %s -xf '%s/%s' -C '%s'", zstd ? "--zstd" : "", out,
				shards.v[i], x);
		cr_assert_eq(system(cmd), 0, "%s failed", cmd);
		free(cmd);
	}
	cmd = itest_fmt("find '%s' -name '*.json' -type f -delete", x);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
	{
		char *a = itest_fmt("%s/processed_images", dirrun),
		     *b = itest_fmt("%s/processed_images", x);
		struct itest_list la = {0}, lb = {0};

		itest_list_files(a, &la);
		itest_list_files(b, &lb);
		cr_assert_eq(la.n, NIMAGES);
		itest_assert_lists_equal(&la, &lb, "extracted shards vs dir run");
		itest_assert_trees_identical(a, b);
		itest_list_free(&la);
		itest_list_free(&lb);
		free(a);
		free(b);
	}
	itest_list_free(&shards);
	free(x);
}

/* 200 keys drawn at random (fixed seed) read through the indexes by read_index.py with
 * /usr/bin/python3: each equals the dir run's file. */
static void check_index_reads(const char *out, const char *dirrun, const char *tag)
{
	char *a = itest_fmt("%s/processed_images", dirrun);
	struct itest_list files = {0};
	char *keys = itest_fmt("%s/keys-%s.txt", itest_root, tag);
	char *got = itest_fmt("%s/got-%s", itest_root, tag);
	char *cmd;
	int pick[200];
	FILE *f;

	itest_list_files(a, &files);
	cr_assert_eq(files.n, NIMAGES);
	srand(14);
	f = fopen(keys, "w");
	cr_assert(f);
	for (int i = 0; i < 200; i++) {
		pick[i] = rand() % NIMAGES;
		fprintf(f, "processed_images/%s\n", files.v[pick[i]]);
	}
	fclose(f);
	itest_mkdirs(got);
	cmd = itest_fmt("/usr/bin/python3 '%s/tests/io/read_index.py' '%s' '%s' '%s'",
			itest_source_dir(), out, keys, got);
	cr_assert_eq(system(cmd), 0, "%s failed", cmd);
	for (int i = 0; i < 200; i++) {
		char *want = itest_fmt("%s/%s", a, files.v[pick[i]]);
		char *have = itest_fmt("%s/%d.bin", got, i);
		char *json = itest_fmt("%s/%d.json", got, i);
		char hw[65], hh[65];
		json_t *j = itest_read_json(json);

		itest_sha256_file(want, hw);
		itest_sha256_file(have, hh);
		cr_assert_str_eq(hw, hh, "key %s: the index gives other bytes than the dir run",
				 files.v[pick[i]]);
		cr_assert_eq(itest_jint(itest_jget(j, "metadata"), "output_bytes"),
			     (json_int_t)itest_file_size(want));
		json_decref(j);
		free(want);
		free(have);
		free(json);
	}
	itest_list_free(&files);
	free(cmd);
	free(keys);
	free(got);
	free(a);
}

Test(pack, tar_and_zst_equal_the_dir_run)
{
	char *src = make_tree();
	char *dirrun = itest_path("out-dir"), *tar = itest_path("out-tar");
	char *zst = itest_path("out-zst");
	size_t n;

	run(src, dirrun, NULL, NULL);
	run(src, tar, "tar", NULL);
	run(src, zst, "tar.zst", "9");
	check_records(tar, ".tar", &n);
	check_records(zst, ".tar.zst", &n);
	check_extract(tar, dirrun, ".tar", 0);
	check_extract(zst, dirrun, ".tar.zst", 1);
	check_index_reads(tar, dirrun, "tar");
	check_index_reads(zst, dirrun, "zst");
	free(src);
	free(dirrun);
	free(tar);
	free(zst);
}

/* Whether a published shard is in out. */
static int has_shard(const char *out)
{
	struct itest_list shards = {0};
	int n;

	list_shards(out, ".tar", &shards);
	n = (int)shards.n;
	itest_list_free(&shards);
	return n > 0;
}

Test(pack, killed_run_resumes_with_new_shards)
{
	char *src = make_tree();
	char *dirrun = itest_path("out-dir"), *out = itest_path("out");
	char *out_path = itest_path("k.stdout"), *err_path = itest_path("k.stderr");
	struct itest_argv a = {0};
	struct itest_list before = {0}, after = {0};
	json_t *snap;
	int code = -1, term = 0;
	size_t n;
	pid_t pid;

	run(src, dirrun, NULL, NULL);
	itest_argv_add(&a, itest_bin());
	for (const char *const *o = (const char *const[]){"-q",
							  "-j",
							  "1",
							  "--io-depth",
							  "2",
							  "--metrics-interval",
							  "0",
							  "--preview",
							  "0",
							  "--resize",
							  "32",
							  "--dataset",
							  "dataset://imgs/v1",
							  "--pack",
							  "tar",
							  "--shard-size",
							  "64k",
							  "-o",
							  out,
							  src,
							  NULL};
	     *o; o++)
		itest_argv_add(&a, *o);
	pid = itest_spawn(a.v, NULL, out_path, err_path);
	while (!has_shard(out))
		cr_assert(!itest_wait(pid, 0.005, &code, &term),
			  "vhprep ended (exit %d) before its first shard", code);
	cr_assert_eq(kill(pid, SIGKILL), 0, "kill: %s", strerror(errno));
	itest_wait(pid, 30.0, &code, &term);
	cr_assert_eq(term, SIGKILL);

	/* nothing partial visible: every shard-like name is a whole shard with its index */
	list_shards(out, ".tar", &before);
	for (size_t i = 0; i < before.n; i++) {
		char *idx = itest_fmt("%s/%s.idx.jsonl", out, before.v[i]);

		cr_assert(itest_exists(idx), "'%s' is visible without its index", before.v[i]);
		free(idx);
	}
	snap = json_object();
	for (size_t i = 0; i < before.n; i++) {
		char *p = itest_fmt("%s/%s", out, before.v[i]);
		char h[65];

		itest_sha256_file(p, h);
		json_object_set_new(snap, before.v[i], json_string(h));
		free(p);
	}

	run(src, out, "tar", NULL); /* the rerun: the same command */
	list_shards(out, ".tar", &after);
	cr_assert_gt(after.n, before.n, "the rerun wrote no new shard");
	for (size_t i = 0; i < before.n; i++) { /* published shards untouched */
		char *p = itest_fmt("%s/%s", out, before.v[i]);
		char h[65];

		itest_sha256_file(p, h);
		cr_assert_str_eq(h, json_string_value(json_object_get(snap, before.v[i])),
				 "published shard '%s' changed", before.v[i]);
		free(p);
	}
	check_records(out, ".tar", &n); /* every output once, every shard bound */
	check_extract(out, dirrun, ".tar", 0);
	{
		struct itest_list all = {0};

		itest_list_files(out, &all);
		for (size_t i = 0; i < all.n; i++)
			cr_assert(!strstr(all.v[i], ".vhprep-tmp"), "'%s' left behind",
				  all.v[i]);
		itest_list_free(&all);
	}
	json_decref(snap);
	itest_list_free(&before);
	itest_list_free(&after);
	itest_argv_free(&a);
	free(src);
	free(dirrun);
	free(out);
	free(out_path);
	free(err_path);
}

Test(pack, options_are_checked)
{
	struct itest_proc p;

	itest_vhprep(&p, "--pack", "zip", "src", NULL);
	itest_assert_exit(&p, 2);
	itest_proc_release(&p);
	itest_vhprep(&p, "--zstd-level", "3", "src", NULL);
	itest_assert_exit(&p, 2);
	itest_proc_release(&p);
	itest_vhprep(&p, "--pack", "tar", "--zstd-level", "3", "src", NULL);
	itest_assert_exit(&p, 2);
	itest_proc_release(&p);
	itest_vhprep(&p, "--pack", "tar", "--overwrite", "src", NULL);
	itest_assert_exit(&p, 2);
	itest_proc_release(&p);
	itest_vhprep(&p, "--pack", "tar", "--shard-size", "1k", "src", NULL);
	itest_assert_exit(&p, 2);
	itest_proc_release(&p);
}

/* --live-upload: each shard and index is read-only once published (Valohai uploads it
 * then), with its sidecar NAME.metadata.json written before and left writable. */
Test(pack, live_upload_sidecars_before_read_only)
{
	char *src = itest_path("src"), *out = itest_path("out");
	struct itest_list shards = {0};
	struct itest_proc p;

	for (int i = 0; i < 30; i++) {
		char *f = itest_fmt("%s/d/i%02d.jpg", src, i);

		itest_make_image(f, 40, 30, 3, (unsigned)i, 0);
		free(f);
	}
	itest_vhprep(&p, "-q", "--metrics-interval", "0", "--preview", "0", "--live-upload",
		     "--pack", "tar", "--shard-size", "64k", "--dataset", "dataset://imgs/v1",
		     "--packaging", "-o", out, src, NULL);
	itest_assert_exit(&p, 0);
	list_shards(out, ".tar", &shards);
	cr_assert_gt(shards.n, 0);
	for (size_t i = 0; i < shards.n; i++)
		for (int k = 0; k < 2; k++) {
			char *f = itest_fmt("%s/%s%s", out, shards.v[i], k ? ".idx.jsonl" : "");
			char *sc = itest_fmt("%s.metadata.json", f);
			struct stat st;
			json_t *j, *dv;

			cr_assert_eq(stat(f, &st), 0);
			cr_expect_eq(st.st_mode & 0777, 0444, "%s has mode %o", f,
				     st.st_mode & 0777);
			cr_assert_eq(stat(sc, &st), 0, "no sidecar %s", sc);
			cr_expect(st.st_mode & 0200, "sidecar %s is read-only", sc);
			j = itest_read_json(sc);
			dv = json_array_get(json_object_get(j, "valohai.dataset-versions"), 0);
			cr_expect_str_eq(itest_jstr(dv, "uri"), "dataset://imgs/v1");
			cr_expect(json_is_true(json_object_get(dv, "packaging")));
			cr_expect(k ? itest_jget(j, "vhprep_index_of") != NULL
				    : itest_jget(j, "vhprep_shard") != NULL);
			json_decref(j);
			free(sc);
			free(f);
		}
	itest_list_free(&shards);
	itest_proc_release(&p);
	free(src);
	free(out);
}

/* Two commands of one step into sub-directories of $VH_OUTPUTS_DIR (train as files,
 * val packed): one valohai.metadata.jsonl at the root, appended to by both, every path
 * relative to the root and present, each half bound to its own version. */
Test(pack, subdirs_of_the_outputs_root_share_one_record_file)
{
	char *src = itest_path("src"), *root = itest_path("vh-outputs");
	char *train = itest_fmt("%s/train", root), *val = itest_fmt("%s/val", root);
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", root);
	struct itest_proc p;
	json_t *lines, *l;
	size_t i, ntrain = 0, nval = 0;

	for (int k = 0; k < 30; k++) {
		char *f = itest_fmt("%s/d%d/i%02d.jpg", src, k % 3, k);

		itest_make_image(f, 40, 30, 3, (unsigned)k, 0);
		free(f);
	}
	itest_mkdirs(root);
	setenv("VH_OUTPUTS_DIR", root, 1);
	itest_vhprep(&p, "-q", "--metrics-interval", "0", "--preview", "0", "--shard", "0/2",
		     "--dataset", "dataset://imgs/train", "-o", train, src, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	itest_vhprep(&p, "-q", "--metrics-interval", "0", "--preview", "0", "--shard", "1/2",
		     "--pack", "tar", "--dataset", "dataset://imgs/val", "-o", val, src, NULL);
	unsetenv("VH_OUTPUTS_DIR");
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	{
		char *sub_meta = itest_fmt("%s/valohai.metadata.jsonl", train);

		cr_expect(!itest_exists(sub_meta),
			  "a record file in the sub-directory: Valohai "
			  "reads the root's only");
		free(sub_meta);
	}
	lines = itest_read_jsonl(meta);
	json_array_foreach(lines, i, l)
	{
		const char *file = itest_jstr(l, "file");
		json_t *dv =
		    json_object_get(json_object_get(l, "metadata"), "valohai.dataset-versions");
		const char *uri = itest_jstr(json_array_get(dv, 0), "uri");
		char *full = itest_fmt("%s/%s", root, file);

		cr_assert(itest_exists(full), "'%s' is not relative to the root", file);
		free(full);
		if (!strncmp(file, "train/processed_images/", 23)) {
			ntrain++;
			cr_expect_str_eq(uri, "dataset://imgs/train");
		} else if (!strncmp(file, "val_processed_images-1of2-", 26)) {
			nval += itest_jget(l, "metadata.vhprep_shard")
				    ? (size_t)itest_jint(itest_jget(l, "metadata.vhprep_shard"),
							 "members")
				    : 0;
			cr_expect_str_eq(uri, "dataset://imgs/val");
		}
	}
	cr_expect_eq(ntrain + nval, 30, "train %zu + val %zu outputs, want 30", ntrain, nval);
	cr_expect(ntrain > 0 && nval > 0);
	json_decref(lines);
	free(meta);
	free(train);
	free(val);
	free(root);
	free(src);
}

/* SIGTERM mid-run: the files in flight finish, the open shard is published with its
 * lines, and the records add up: the shards' members are the summary's processed. */
Test(pack, sigterm_publishes_the_open_shard)
{
	char *src = make_tree(), *out = itest_path("out");
	char *out_path = itest_path("t.stdout"), *err_path = itest_path("t.stderr");
	char *meta = itest_fmt("%s/valohai.metadata.jsonl", out);
	char *sum = itest_fmt("%s/vhprep-summary.json", out);
	struct itest_argv a = {0};
	struct itest_list shards = {0};
	json_t *lines, *l, *s;
	json_int_t members = 0;
	int code = -1, term = 0;
	size_t i, bound = 0;
	pid_t pid;

	itest_argv_add(&a, itest_bin());
	for (const char *const *o =
		 (const char *const[]){"-q", "-j", "1", "--io-depth", "2", "--metrics-interval",
				       "0", "--preview", "0", "--resize", "32", "--pack", "tar",
				       "--shard-size", "64k", "-o", out, src, NULL};
	     *o; o++)
		itest_argv_add(&a, *o);
	pid = itest_spawn(a.v, NULL, out_path, err_path);
	while (!has_shard(out))
		cr_assert(!itest_wait(pid, 0.005, &code, &term),
			  "vhprep ended (exit %d) before its first shard", code);
	cr_assert_eq(kill(pid, SIGTERM), 0);
	cr_assert(itest_wait(pid, 60.0, &code, &term), "no exit within 60 s of SIGTERM");
	cr_assert_eq(code, 143, "exit %d after SIGTERM", code);
	list_shards(out, ".tar", &shards);
	lines = itest_read_jsonl(meta);
	json_array_foreach(lines, i, l)
	{
		json_t *sh = itest_jget(l, "metadata.vhprep_shard");

		if (!sh)
			continue;
		cr_assert(itest_list_has(&shards, itest_jstr(l, "file")));
		members += itest_jint(sh, "members");
		bound++;
	}
	cr_assert_eq(bound, shards.n, "%zu shards, %zu bound", shards.n, bound);
	s = itest_read_json(sum);
	cr_assert_eq(members, itest_jint(itest_jget(s, "files"), "processed"),
		     "the shards hold %lld outputs, the summary says %lld processed",
		     (long long)members,
		     (long long)itest_jint(itest_jget(s, "files"), "processed"));
	cr_assert_eq(itest_jint(s, "shards"), (json_int_t)shards.n);
	cr_assert_lt(members, NIMAGES, "the run was not cut short: nothing tested");
	json_decref(s);
	json_decref(lines);
	itest_list_free(&shards);
	itest_argv_free(&a);
	free(sum);
	free(meta);
	free(out_path);
	free(err_path);
	free(out);
	free(src);
}
