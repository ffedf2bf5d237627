#include <criterion/criterion.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/config.h"
#include "tests/common/vhtest.h"

/* ---- config_parse_size ---- */

static void size_ok(const char *s, uint64_t want)
{
	uint64_t v = 12345;

	cr_assert_eq(config_parse_size(s, &v), 0, "'%s' was rejected", s);
	cr_assert_eq(v, want, "'%s' = %llu, want %llu", s, (unsigned long long)v,
		     (unsigned long long)want);
}

static void size_bad(const char *s)
{
	uint64_t v = 12345;

	cr_assert_eq(config_parse_size(s, &v), -1, "'%s' was accepted as %llu", s,
		     (unsigned long long)v);
	cr_assert_eq(v, 12345, "'%s': the output changed on failure", s);
}

Test(config_parse_size, plain_and_suffixed)
{
	size_ok("0", 0);
	size_ok("1048576", 1048576);
	size_ok("512k", 512ULL << 10);
	size_ok("512K", 512ULL << 10);
	size_ok("256M", 256ULL << 20);
	size_ok("256m", 256ULL << 20);
	size_ok("1.5G", 3ULL << 29);
	size_ok("2T", 2ULL << 40);
	size_ok("0.5k", 512);
}

Test(config_parse_size, kib_and_kb_forms)
{
	size_ok("1KiB", 1024);
	size_ok("1kib", 1024);
	size_ok("1KB", 1024);
	size_ok("1kB", 1024);
	size_ok("4MiB", 4ULL << 20);
	size_ok("4MB", 4ULL << 20);
	size_ok("3GiB", 3ULL << 30);
	size_ok("1TB", 1ULL << 40);
	size_ok("1Ki", 1024);
}

Test(config_parse_size, rejects_junk_and_negative)
{
	size_bad("");
	size_bad("abc");
	size_bad("k");
	size_bad("-1");
	size_bad("-1k");
	size_bad("+1");
	size_bad(" 1");
	size_bad("1 ");
	size_bad("1 k");
	size_bad("1x");
	size_bad("1kk");
	size_bad("1KiBB");
	size_bad("1iB");
	size_bad("1P");
	size_bad("1.5.5");
	size_bad(".");
	size_bad("nan");
	size_bad("inf");
	size_bad("1e");
}

Test(config_parse_size, rejects_what_does_not_fit_64_bits)
{
	size_bad("16777216T"); /* 2^64 */
	size_bad("99999999999999999999");
	size_bad("1e30");
	size_ok("16777215T", 16777215ULL << 40);
}

/* ---- config_parse_resize ---- */

static void resize_ok(const char *s, int ww, int wh)
{
	int w = -1, h = -1;

	cr_assert_eq(config_parse_resize(s, &w, &h), 0, "'%s' was rejected", s);
	cr_assert_eq(w, ww, "'%s' width", s);
	cr_assert_eq(h, wh, "'%s' height", s);
}

static void resize_bad(const char *s)
{
	int w = -1, h = -1;

	cr_assert_eq(config_parse_resize(s, &w, &h), -1, "'%s' was accepted as %dx%d", s, w, h);
	cr_assert(w == -1 && h == -1, "'%s': outputs changed on failure", s);
}

Test(config_parse_resize, n_and_wxh)
{
	resize_ok("224", 224, 224);
	resize_ok("224x160", 224, 160);
	resize_ok("224X160", 224, 160);
	resize_ok("1", 1, 1);
	resize_ok("1x1", 1, 1);
	resize_ok("65535", 65535, 65535);
	resize_ok("65535x1", 65535, 1);
}

Test(config_parse_resize, rejects_out_of_bounds_and_junk)
{
	resize_bad("0");
	resize_bad("65536");
	resize_bad("224x0");
	resize_bad("0x224");
	resize_bad("224x65536");
	resize_bad("-224");
	resize_bad("224x-1");
	resize_bad("");
	resize_bad("x");
	resize_bad("224x");
	resize_bad("x224");
	resize_bad("224x160x3");
	resize_bad("224*160");
	resize_bad("abc");
	resize_bad("22.4");
	resize_bad("224px");
	resize_bad("99999999999999999999999999999999999999999999");
}

/* ---- config_parse_shard ---- */

static void shard_ok(const char *s, uint32_t wi, uint32_t wn)
{
	uint32_t i = 99, n = 99;

	cr_assert_eq(config_parse_shard(s, &i, &n), 0, "'%s' was rejected", s);
	cr_assert_eq(i, wi);
	cr_assert_eq(n, wn);
}

static void shard_bad(const char *s)
{
	uint32_t i = 99, n = 99;

	cr_assert_eq(config_parse_shard(s, &i, &n), -1, "'%s' was accepted as %u/%u", s, i, n);
}

Test(config_parse_shard, bounds)
{
	shard_ok("0/1", 0, 1);
	shard_ok("3/7", 3, 7);
	shard_ok("6/7", 6, 7);
	shard_ok("0/4294967295", 0, 4294967295u);
	shard_ok("4294967294/4294967295", 4294967294u, 4294967295u);
	shard_bad("7/7");
	shard_bad("8/7");
	shard_bad("1/1");
	shard_bad("0/0");
	shard_bad("-1/7");
	shard_bad("0/-7");
	shard_bad("0/4294967296");
	shard_bad("4294967295/4294967295");
}

Test(config_parse_shard, junk)
{
	shard_bad("");
	shard_bad("1");
	shard_bad("1/");
	shard_bad("/1");
	shard_bad("a/b");
	shard_bad("1/2/3");
	shard_bad("1:2");
	shard_bad("1 / 2");
	shard_bad("0.5/2");
}

/* ---- config_parse_fraction / config_parse_long ---- */

Test(config_parse_shard_auto, forms)
{
	uint32_t n = 99;

	cr_assert_eq(config_parse_shard_auto("auto", &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(config_parse_shard_auto("auto/7", &n), 0);
	cr_assert_eq(n, 7);
	cr_assert_eq(config_parse_shard_auto("auto/4294967295", &n), 0);
	cr_assert_eq(n, 4294967295u);
	cr_assert_eq(config_parse_shard_auto("auto/0", &n), -1);
	cr_assert_eq(config_parse_shard_auto("auto/4294967296", &n), -1);
	cr_assert_eq(config_parse_shard_auto("auto/", &n), -1);
	cr_assert_eq(config_parse_shard_auto("Auto", &n), -1);
	cr_assert_eq(config_parse_shard_auto("1/2", &n), -1);
}

Test(config_expand_shard, every_placeholder)
{
	char *s = config_expand_shard("dataset://imgs/v1-part{shard}", 2, 4);

	cr_assert_str_eq(s, "dataset://imgs/v1-part2of4");
	free(s);
	s = config_expand_shard("{shard}/{shard}{shard", 0, 1);
	cr_assert_str_eq(s, "0of1/0of1{shard");
	free(s);
	s = config_expand_shard("plain", 6, 7);
	cr_assert_str_eq(s, "plain");
	free(s);
}

Test(config_parse_fraction, bounds)
{
	static const char *ok[] = {"1", "1.0", "0.5", "0.1", "0.000001", "1e-3"};
	static const double want[] = {1.0, 1.0, 0.5, 0.1, 0.000001, 0.001};
	static const char *bad[] = {"0",   "0.0", "-0.1", "1.0001", "2", "nan",
				    "inf", "",	  "0.5x", "x",	    "-0"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		double v = -1;

		cr_assert_eq(config_parse_fraction(ok[i], &v), 0, "'%s'", ok[i]);
		cr_assert_float_eq(v, want[i], 1e-12, "'%s'", ok[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		double v = -1;

		cr_assert_eq(config_parse_fraction(bad[i], &v), -1, "'%s' was accepted",
			     bad[i]);
	}
}

Test(config_parse_long, bounds)
{
	long v = 0;

	cr_assert_eq(config_parse_long("5", 1, 10, &v), 0);
	cr_assert_eq(v, 5);
	cr_assert_eq(config_parse_long("1", 1, 10, &v), 0);
	cr_assert_eq(config_parse_long("10", 1, 10, &v), 0);
	cr_assert_eq(v, 10);
	cr_assert_eq(config_parse_long("-3", -5, 0, &v), 0);
	cr_assert_eq(v, -3);
	v = 77;
	cr_assert_eq(config_parse_long("0", 1, 10, &v), -1);
	cr_assert_eq(config_parse_long("11", 1, 10, &v), -1);
	cr_assert_eq(config_parse_long("", 1, 10, &v), -1);
	cr_assert_eq(config_parse_long("5x", 1, 10, &v), -1);
	cr_assert_eq(config_parse_long("x", 1, 10, &v), -1);
	cr_assert_eq(config_parse_long("5.0", 1, 10, &v), -1);
	cr_assert_eq(config_parse_long("99999999999999999999999", 0, LONG_MAX, &v), -1);
	cr_assert_eq(v, 77, "the output changed on failure");
	cr_assert_eq(config_parse_long("9223372036854775807", 0, LONG_MAX, &v), 0);
	cr_assert_eq(v, LONG_MAX);
}

/* ---- defaults, lists, binding ---- */

Test(config, defaults)
{
	struct config c;

	config_defaults(&c);
	cr_assert_null(c.source);
	cr_assert_null(c.outputs);
	cr_assert_str_eq(c.prefix, "processed_images");
	cr_assert_eq(c.max_size, UINT64_MAX);
	cr_assert_eq(c.min_size, 0);
	cr_assert_float_eq(c.sample, 1.0, 0);
	cr_assert_eq(c.shard_count, 1);
	cr_assert_eq(c.shard_index, 0);
	cr_assert_eq(c.limit, 0);
	cr_assert_gt(c.io_depth, 0);
	cr_assert_gt(c.walkers, 0);
	cr_assert_gt(c.read_budget, 0);
	cr_assert_eq(c.progress, -1);
	cr_assert_eq(c.kernel.resize_w, 0);
	cr_assert_eq(c.kernel.mode, GEOMETRY_STRETCH);
	cr_assert_eq(c.kernel.autorotate, 1);
	config_release(&c);
}

Test(config, strlist_accumulates_and_release_clears)
{
	struct config c;

	config_defaults(&c);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(strlist_add(&c.tags, i % 2 ? "odd" : "even"), 0);
	cr_assert_eq(c.tags.n, 100);
	cr_assert_str_eq(c.tags.v[0], "even");
	cr_assert_str_eq(c.tags.v[99], "odd");
	config_release(&c);
	cr_assert_eq(c.tags.n, 0);
	cr_assert_null(c.tags.v);
	config_release(&c); /* twice is harmless */
	config_release(NULL);
}

Test(config, binding_points_into_the_config)
{
	struct config c;
	struct metadata_binding b;

	config_defaults(&c);
	strlist_add(&c.datasets, "dataset://a/1");
	strlist_add(&c.aliases, "latest");
	strlist_add(&c.tags, "t1");
	strlist_add(&c.tags, "t2");
	c.dataset_from = "dataset://a/0";
	c.packaging = 1;
	config_binding(&c, &b);
	cr_assert_eq(b.ndatasets, 1);
	cr_assert_str_eq(b.datasets[0], "dataset://a/1");
	cr_assert_eq(b.naliases, 1);
	cr_assert_str_eq(b.aliases[0], "latest");
	cr_assert_eq(b.ntags, 2);
	cr_assert_str_eq(b.tags[1], "t2");
	cr_assert_str_eq(b.from, "dataset://a/0");
	cr_assert_eq(b.packaging, 1);
	config_release(&c);
}

/* ---- config_finish ---- */

static char dir[PATH_MAX], src[PATH_MAX], outs[PATH_MAX];
static struct config cfg;

static void setup(void)
{
	vht_tmpdir(dir, sizeof(dir));
	vht_mkdirs(vht_join(src, sizeof(src), dir, "src"));
	vht_join(outs, sizeof(outs), dir, "outputs");
	config_defaults(&cfg);
	cfg.source = src;
	cfg.outputs = outs;
	unsetenv("VH_OUTPUTS_DIR");
}

static void teardown(void)
{
	config_release(&cfg);
	vht_rm_rf(dir);
}

static void finish_ok(void)
{
	struct vherr err = {0};

	cr_assert_eq(config_finish(&cfg, &err), 0, "refused: %s", err.msg);
}

/* Asserts that config_finish refuses cfg with a message containing needle. */
static void finish_refused(const char *needle)
{
	struct vherr err = {0};

	cr_assert_eq(config_finish(&cfg, &err), -VHERR_USAGE, "accepted (want '%s')", needle);
	cr_assert_eq(err.code, VHERR_USAGE);
	cr_assert_not_null(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
}

Test(config_finish, a_plain_config_is_accepted, .init = setup, .fini = teardown)
{
	cfg.threads = 0;
	finish_ok();
	cr_assert_gt(cfg.threads, 0, "threads resolved to the core count");
	cr_assert_str_eq(cfg.outputs, outs);
}

Test(config_finish, missing_source, .init = setup, .fini = teardown)
{
	cfg.source = NULL;
	finish_refused("SOURCE");
}

Test(config_finish, min_size_above_max_size, .init = setup, .fini = teardown)
{
	cfg.min_size = 1000;
	cfg.max_size = 999;
	finish_refused("--min-size");
	cfg.max_size = 1000;
	finish_ok();
}

Test(config_finish, prefix_must_stay_inside, .init = setup, .fini = teardown)
{
	static const char *bad[] = {"..", "../x", "a/..", "a/../b", "/abs", "a/../../b"};
	static const char *ok[] = {"a", "a/b", "a..b", "..a", "a/...", ""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cfg.prefix = bad[i];
		finish_refused("--prefix");
	}
	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		cfg.prefix = ok[i];
		finish_ok();
	}
}

Test(config_finish, resize_mode_needs_resize, .init = setup, .fini = teardown)
{
	cfg.kernel.mode = GEOMETRY_CROP;
	finish_refused("--resize");
	cfg.kernel.resize_w = cfg.kernel.resize_h = 224;
	finish_ok();
}

Test(config_finish, dataset_details_need_a_dataset, .init = setup, .fini = teardown)
{
	strlist_add(&cfg.aliases, "latest");
	finish_refused("--dataset");
	config_release(&cfg);
	cfg.dataset_from = "dataset://a/0";
	finish_refused("--dataset");
	cfg.dataset_from = NULL;
	cfg.packaging = 1;
	finish_refused("--dataset");
	strlist_add(&cfg.datasets, "dataset://a/1");
	finish_ok();
}

Test(config_finish, dataset_uri_form, .init = setup, .fini = teardown)
{
	static const char *bad[] = {"images/v1",	  "dataset://images",
				    "dataset:/images/v1", "DATASET://images/v1",
				    "s3://bucket/key",	  ""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		config_release(&cfg);
		strlist_add(&cfg.datasets, bad[i]);
		finish_refused("dataset://NAME/VERSION");
	}
	config_release(&cfg);
	strlist_add(&cfg.datasets, "dataset://images/v1");
	strlist_add(&cfg.datasets, "dataset://other/2024-01-01");
	finish_ok();
}

/* "dataset://NAME/VERSION" with an empty NAME or VERSION is accepted: the check only
 * looks for a '/' after the scheme. Valohai cannot create such a version. */
Test(config_finish, dataset_uri_needs_name_and_version, .init = setup, .fini = teardown)
{
	static const char *bad[] = {"dataset://images/", "dataset:///v1", "dataset:///"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct vherr err = {0};

		config_release(&cfg);
		strlist_add(&cfg.datasets, bad[i]);
		cr_expect_eq(config_finish(&cfg, &err), -VHERR_USAGE, "'%s' was accepted",
			     bad[i]);
	}
}

Test(config_finish, outputs_inside_source_refused, .init = setup, .fini = teardown)
{
	char path[PATH_MAX], link[PATH_MAX];

	cfg.outputs = vht_join(path, sizeof(path), src, "out"); /* does not exist yet */
	finish_refused("inside the source");
	cfg.outputs = vht_join(path, sizeof(path), src, "a/b/c");
	finish_refused("inside the source");
	cfg.outputs = src;
	finish_refused("inside the source");
	/* through a symlink into the source */
	cr_assert_eq(symlink(src, vht_join(link, sizeof(link), dir, "link")), 0);
	cfg.outputs = vht_join(path, sizeof(path), link, "out");
	finish_refused("inside the source");
	/* relative to a working directory inside the source */
	cr_assert_eq(chdir(src), 0);
	cfg.outputs = "outputs";
	finish_refused("inside the source");
}

Test(config_finish, outputs_beside_source_accepted, .init = setup, .fini = teardown)
{
	char path[PATH_MAX];

	/* a sibling whose name starts with the source's name is not inside it */
	cfg.outputs = vht_join(path, sizeof(path), dir, "src2/out");
	finish_ok();
	cfg.outputs = vht_join(path, sizeof(path), dir, "src-outputs");
	finish_ok();
	cr_assert_eq(chdir(dir), 0);
	cfg.outputs = "outputs";
	finish_ok();
}

/* An absolute outputs dir that does not exist yet, one level below '/': path_inside()
 * strips components until realpath() succeeds, but when the only slash left is the
 * leading one it resolves the current directory instead of "/". With the working
 * directory inside the source, "/new-outputs" (nowhere near the source) is refused. */
Test(config_finish, absolute_new_outputs_dir_is_judged_by_its_path, .init = setup,
     .fini = teardown)
{
	char outside[PATH_MAX];
	struct vherr err = {0};

	snprintf(outside, sizeof(outside), "/vhtest-nonexistent-%d", (int)getpid());
	cr_assert(!vht_exists(outside));
	cr_assert_eq(chdir(src), 0);
	cfg.outputs = outside;
	cr_expect_eq(config_finish(&cfg, &err), 0, "'%s' refused with cwd in the source: %s",
		     outside, err.msg);
}

Test(config_finish, vh_outputs_dir_env_is_honoured, .init = setup, .fini = teardown)
{
	char env[PATH_MAX];

	vht_join(env, sizeof(env), dir, "valohai-outputs");
	cr_assert_eq(setenv("VH_OUTPUTS_DIR", env, 1), 0);
	cfg.outputs = NULL;
	finish_ok();
	cr_assert_str_eq(cfg.outputs, env);
	/* -o wins over the environment */
	cfg.outputs = outs;
	finish_ok();
	cr_assert_str_eq(cfg.outputs, outs);
}

Test(config_finish, vh_outputs_dir_inside_source_refused, .init = setup, .fini = teardown)
{
	char env[PATH_MAX];

	cr_assert_eq(setenv("VH_OUTPUTS_DIR", vht_join(env, sizeof(env), src, "o"), 1), 0);
	cfg.outputs = NULL;
	finish_refused("inside the source");
}

Test(config_finish, empty_env_falls_back, .init = setup, .fini = teardown)
{
	cr_assert_eq(setenv("VH_OUTPUTS_DIR", "", 1), 0);
	cr_assert_eq(chdir(dir), 0);
	cfg.outputs = NULL;
	finish_ok();
	cr_assert_not_null(cfg.outputs);
	cr_assert(strcmp(cfg.outputs, "/valohai/outputs") == 0 ||
		      strcmp(cfg.outputs, "outputs") == 0,
		  "outputs '%s'", cfg.outputs);
}

/* The reverse overlap: the source inside the outputs dir (a rerun pointed at the last
 * run's processed_images would overwrite its own inputs), the two equal, and the same
 * through a symlink and a ".." detour. */
Test(config_finish, source_inside_outputs_refused, .init = setup, .fini = teardown)
{
	char path[PATH_MAX + 16], link[PATH_MAX];

	cfg.outputs = dir;
	finish_refused("inside the outputs dir");
	cfg.outputs = src;
	finish_refused("inside");
	cr_assert_eq(symlink(dir, vht_join(link, sizeof(link), dir, "up")), 0);
	cfg.outputs = link;
	finish_refused("inside the outputs dir");
	snprintf(path, sizeof(path), "%s/../%s", src, "src");
	cfg.outputs = outs;
	cfg.source = path;
	finish_ok();
	snprintf(path, sizeof(path), "%s/x/../..", src);
	cfg.source = path; /* resolves to dir, which holds outputs */
	finish_refused("inside");
}

/* The prefix dir is where the files go: a prefix that is a symlink into the source is
 * refused like an outputs dir inside it. */
Test(config_finish, prefix_symlink_into_source_refused, .init = setup, .fini = teardown)
{
	char link[PATH_MAX];

	vht_mkdirs(outs);
	cr_assert_eq(symlink(src, vht_join(link, sizeof(link), outs, "processed_images")), 0);
	finish_refused("inside the source");
	cfg.prefix = "other";
	finish_ok();
}

Test(config_finish, preview_in_dataset_needs_a_dataset_and_a_sheet, .init = setup,
     .fini = teardown)
{
	cfg.preview_in_dataset = 1;
	finish_refused("--preview-in-dataset");
	cr_assert_eq(strlist_add(&cfg.datasets, "dataset://images/v1"), 0);
	finish_ok();
	cfg.preview = 0;
	finish_refused("--preview-in-dataset");
}

/* --shard auto reads the environment (engine/shardenv.h); an explicit I/N wins. */
static void no_scheduler(void)
{
	static const char *const vars[] = {"VH_DIST_MEMBER_INDEX", "VH_DIST_MEMBER_COUNT",
					   "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"};

	for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++)
		unsetenv(vars[i]);
	setenv("VH_CONFIG_DIR", dir, 1); /* no distributed.json there */
}

Test(config_finish, shard_auto_from_the_environment, .init = setup, .fini = teardown)
{
	no_scheduler();
	cfg.quiet = 1;
	cfg.shard_auto = 1;
	finish_refused("no member index in the environment");
	setenv("VH_DIST_MEMBER_INDEX", "2", 1);
	setenv("VH_DIST_MEMBER_COUNT", "4", 1);
	finish_ok();
	cr_assert_eq(cfg.shard_index, 2);
	cr_assert_eq(cfg.shard_count, 4);
	cfg.shard_auto_count = 5;
	finish_refused("the environment says 4 members");
}

Test(config_finish, explicit_shard_wins_over_auto, .init = setup, .fini = teardown)
{
	no_scheduler();
	setenv("VH_DIST_MEMBER_INDEX", "2", 1);
	setenv("VH_DIST_MEMBER_COUNT", "4", 1);
	cfg.shard_auto = cfg.shard_explicit = 1;
	cfg.shard_index = 1;
	cfg.shard_count = 3;
	finish_ok();
	cr_assert_eq(cfg.shard_index, 1);
	cr_assert_eq(cfg.shard_count, 3);
}

Test(config_finish, shard_placeholder_in_datasets, .init = setup, .fini = teardown)
{
	cfg.shard_index = 6;
	cfg.shard_count = 7;
	strlist_add(&cfg.datasets, "dataset://imgs/v1-part{shard}");
	strlist_add(&cfg.datasets, "dataset://all/v1");
	finish_ok();
	cr_assert_str_eq(cfg.datasets.v[0], "dataset://imgs/v1-part6of7");
	cr_assert_str_eq(cfg.datasets.v[1], "dataset://all/v1");
	config_release(&cfg); /* frees the expansion (ASan checks) */
	config_defaults(&cfg);
	cfg.source = src;
	cfg.outputs = outs;
	strlist_add(&cfg.datasets, "dataset://{shard}/v1");
	finish_ok();
	cr_assert_str_eq(cfg.datasets.v[0], "dataset://0of1/v1", "no sharding: 0of1");
}
