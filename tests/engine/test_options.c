#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/options.h"
#include "tests/common/vhtest.h"

#define MAXARGS 128

struct parsed {
	struct config cfg;
	struct vherr err;
	int rc;
	char *out; /* what options_parse printed */
	char *argv[MAXARGS + 1];
};

/* Parses the NULL-terminated argument list (argv[0] is added). */
static struct parsed *parse_v(const char *const *args)
{
	struct parsed *p = calloc(1, sizeof(*p));
	FILE *out = tmpfile();
	int argc = 0;
	long n;

	cr_assert_not_null(out);
	p->argv[argc++] = strdup("vhprep");
	for (; *args; args++) {
		cr_assert_lt(argc, MAXARGS);
		p->argv[argc++] = strdup(*args);
	}
	config_defaults(&p->cfg);
	p->rc = options_parse(argc, p->argv, &p->cfg, out, &p->err);
	fflush(out);
	n = ftell(out);
	p->out = calloc(1, (size_t)n + 1);
	rewind(out);
	cr_assert_eq(fread(p->out, 1, (size_t)n, out), (size_t)n);
	fclose(out);
	return p;
}

#define PARSE(...) parse_v((const char *const[]){__VA_ARGS__, NULL})

static void parsed_free(struct parsed *p)
{
	config_release(&p->cfg);
	for (int i = 0; p->argv[i]; i++)
		free(p->argv[i]);
	free(p->out);
	free(p);
}

static struct parsed *parse_ok(struct parsed *p)
{
	cr_assert_eq(p->rc, OPTIONS_RUN, "options refused: %s", p->err.msg);
	return p;
}

/* Asserts a usage error whose message names every given string. */
static void expect_usage(struct parsed *p, const char *a, const char *b)
{
	cr_assert_eq(p->rc, -VHERR_USAGE, "accepted (rc %d), want a usage error naming '%s'",
		     p->rc, a);
	cr_assert_eq(p->err.code, VHERR_USAGE);
	cr_assert_not_null(strstr(p->err.msg, a), "message '%s' lacks '%s'", p->err.msg, a);
	if (b)
		cr_assert_not_null(strstr(p->err.msg, b), "message '%s' lacks '%s'", p->err.msg,
				   b);
	parsed_free(p);
}

Test(options, no_arguments_leave_defaults)
{
	struct parsed *p = parse_ok(parse_v((const char *const[]){NULL}));
	struct config d;

	config_defaults(&d);
	cr_assert_null(p->cfg.source);
	cr_assert_str_eq(p->cfg.prefix, d.prefix);
	cr_assert_eq(p->cfg.io_depth, d.io_depth);
	cr_assert_eq(p->cfg.kernel.quality, d.kernel.quality);
	parsed_free(p);
}

Test(options, png_level_sets_its_field_and_defaults_to_the_kernels_own)
{
	struct parsed *p = parse_ok(PARSE("--png-level", "9", "src"));
	struct parsed *d = parse_ok(PARSE("src"));

	cr_assert_eq(p->cfg.kernel.png_level, 9);
	cr_assert_eq(d->cfg.kernel.png_level, 0);
	parsed_free(p);
	parsed_free(d);
}

Test(options, transform_options_set_their_fields)
{
	struct parsed *p =
	    parse_ok(PARSE("--resize", "224x160", "--resize-mode", "crop", "--gray", "--blur",
			   "1.5", "--sharpen", "--no-autorotate", "--format", "webp",
			   "--quality", "77", "--max-pixels", "50M", "--fail-on", "warning",
			   "--kernel", "vips", "--background", "10,20,30", "src"));
	struct kernel_params *k = &p->cfg.kernel;

	cr_assert_eq(k->resize_w, 224);
	cr_assert_eq(k->resize_h, 160);
	cr_assert_eq(k->mode, GEOMETRY_CROP);
	cr_assert_eq(k->gray, 1);
	cr_assert_float_eq(k->blur_sigma, 1.5, 1e-12);
	cr_assert_eq(k->sharpen, 1);
	cr_assert_eq(k->autorotate, 0);
	cr_assert_eq(k->format, KFMT_WEBP);
	cr_assert_eq(k->quality, 77);
	cr_assert_eq(k->max_pixels, 50ULL << 20);
	cr_assert_eq(k->fail_on, KFAIL_WARNING);
	cr_assert_eq(k->choice, KERNEL_VIPS);
	cr_assert_eq(k->background[0], 10);
	cr_assert_eq(k->background[1], 20);
	cr_assert_eq(k->background[2], 30);
	cr_assert_str_eq(p->cfg.source, "src");
	parsed_free(p);
}

Test(options, transform_aliases)
{
	struct parsed *p = parse_ok(
	    PARSE("--grey", "--kernel", "libvips", "--format", "jpeg", "--resize", "64"));

	cr_assert_eq(p->cfg.kernel.gray, 1);
	cr_assert_eq(p->cfg.kernel.choice, KERNEL_VIPS);
	cr_assert_eq(p->cfg.kernel.format, KFMT_JPEG);
	cr_assert_eq(p->cfg.kernel.resize_w, 64);
	cr_assert_eq(p->cfg.kernel.resize_h, 64);
	parsed_free(p);
	p = parse_ok(PARSE("--kernel=auto", "--format=keep", "--fail-on=none"));
	cr_assert_eq(p->cfg.kernel.choice, KERNEL_AUTO);
	cr_assert_eq(p->cfg.kernel.format, KFMT_KEEP);
	cr_assert_eq(p->cfg.kernel.fail_on, KFAIL_NONE);
	parsed_free(p);
}

Test(options, select_options_set_their_fields)
{
	struct parsed *p =
	    parse_ok(PARSE("--include", "*.jpg", "--exclude", "tmp/*", "--min-size", "1k",
			   "--max-size", "2M", "--limit", "500", "--sample", "0.25", "--seed",
			   "42", "--shard", "2/5", "--files-from", "list.txt", "src"));
	struct config *c = &p->cfg;

	cr_assert_eq(c->includes.n, 1);
	cr_assert_str_eq(c->includes.v[0], "*.jpg");
	cr_assert_eq(c->excludes.n, 1);
	cr_assert_str_eq(c->excludes.v[0], "tmp/*");
	cr_assert_eq(c->min_size, 1024);
	cr_assert_eq(c->max_size, 2ULL << 20);
	cr_assert_eq(c->limit, 500);
	cr_assert_float_eq(c->sample, 0.25, 1e-12);
	cr_assert_eq(c->seed, 42);
	cr_assert_eq(c->shard_index, 2);
	cr_assert_eq(c->shard_count, 5);
	cr_assert_str_eq(c->files_from, "list.txt");
	parsed_free(p);
}

Test(options, output_options_set_their_fields)
{
	struct parsed *p =
	    parse_ok(PARSE("-o", "/out", "--prefix", "imgs", "--live-upload", "--overwrite",
			   "--dataset", "dataset://a/1", "--dataset-from", "dataset://a/0",
			   "--dataset-alias", "latest", "--packaging", "--tag", "t", "src"));
	struct config *c = &p->cfg;

	cr_assert_str_eq(c->outputs, "/out");
	cr_assert_str_eq(c->prefix, "imgs");
	cr_assert_eq(c->live_upload, 1);
	cr_assert_eq(c->overwrite, 1);
	cr_assert_eq(c->datasets.n, 1);
	cr_assert_str_eq(c->datasets.v[0], "dataset://a/1");
	cr_assert_str_eq(c->dataset_from, "dataset://a/0");
	cr_assert_eq(c->aliases.n, 1);
	cr_assert_str_eq(c->aliases.v[0], "latest");
	cr_assert_eq(c->packaging, 1);
	cr_assert_eq(c->tags.n, 1);
	cr_assert_str_eq(c->tags.v[0], "t");
	parsed_free(p);
	p = parse_ok(PARSE("--outputs", "/o2", "src"));
	cr_assert_str_eq(p->cfg.outputs, "/o2");
	parsed_free(p);
}

Test(options, run_options_set_their_fields)
{
	struct parsed *p = parse_ok(PARSE(
	    "-j", "3", "--io-depth", "128", "--walkers", "32", "--read-budget", "64M",
	    "--max-errors", "10", "--metrics-interval", "2.5", "--progress", "-q", "src"));
	struct config *c = &p->cfg;

	cr_assert_eq(c->threads, 3);
	cr_assert_eq(c->io_depth, 128);
	cr_assert_eq(c->walkers, 32);
	cr_assert_eq(c->read_budget, 64ULL << 20);
	cr_assert_eq(c->max_errors, 10);
	cr_assert_float_eq(c->metrics_interval, 2.5, 1e-12);
	cr_assert_eq(c->progress, 1);
	cr_assert_eq(c->quiet, 1);
	parsed_free(p);
	p = parse_ok(PARSE("--threads", "5", "--no-progress", "--quiet", "--metrics-interval",
			   "0", "src"));
	cr_assert_eq(p->cfg.threads, 5);
	cr_assert_eq(p->cfg.progress, 0);
	cr_assert_eq(p->cfg.quiet, 1);
	cr_assert_float_eq(p->cfg.metrics_interval, 0.0, 0);
	parsed_free(p);
}

Test(options, repeatable_options_accumulate_in_order)
{
	struct parsed *p = parse_ok(PARSE(
	    "--include", "a", "--include", "b", "--exclude", "x", "--exclude", "y", "--exclude",
	    "z", "--dataset", "dataset://d/1", "--dataset", "dataset://d/2", "--dataset-alias",
	    "l1", "--dataset-alias", "l2", "--tag", "t1", "--tag", "t2", "--tag", "t3", "src"));
	struct config *c = &p->cfg;

	cr_assert_eq(c->includes.n, 2);
	cr_assert_str_eq(c->includes.v[1], "b");
	cr_assert_eq(c->excludes.n, 3);
	cr_assert_str_eq(c->excludes.v[0], "x");
	cr_assert_str_eq(c->excludes.v[2], "z");
	cr_assert_eq(c->datasets.n, 2);
	cr_assert_str_eq(c->datasets.v[1], "dataset://d/2");
	cr_assert_eq(c->aliases.n, 2);
	cr_assert_eq(c->tags.n, 3);
	cr_assert_str_eq(c->tags.v[2], "t3");
	parsed_free(p);
}

Test(options, last_single_value_wins)
{
	struct parsed *p = parse_ok(PARSE("--quality", "10", "--quality", "20", "src"));

	cr_assert_eq(p->cfg.kernel.quality, 20);
	parsed_free(p);
}

Test(options, seed_defaults_quality_75_420_and_subsample_444)
{
	struct parsed *p = parse_ok(PARSE("src"));

	cr_assert_eq(p->cfg.kernel.quality, 75);
	cr_assert_eq(p->cfg.kernel.subsample, KSUB_420);
	parsed_free(p);
	p = parse_ok(PARSE("--subsample", "444", "--quality", "90", "src"));
	cr_assert_eq(p->cfg.kernel.subsample, KSUB_444);
	cr_assert_eq(p->cfg.kernel.quality, 90);
	parsed_free(p);
}

Test(options, unknown_option_is_named)
{
	expect_usage(PARSE("--bogus", "src"), "--bogus", NULL);
	expect_usage(PARSE("src", "--no-such=1"), "--no-such", NULL);
	expect_usage(PARSE("-Z", "src"), "-Z", NULL);
}

/* An unknown short option inside a cluster: getopt has not advanced optind past
 * "-Zq" yet, so argv[optind - 1] names the argument before it (here the program). The
 * message should name -Z (optopt). */
Test(options, unknown_short_option_in_a_cluster_is_named)
{
	struct parsed *p = PARSE("-Zq", "src");

	cr_assert_eq(p->rc, -VHERR_USAGE);
	cr_expect_not_null(strstr(p->err.msg, "-Z"), "message: %s", p->err.msg);
	parsed_free(p);
}

Test(options, missing_value_is_named)
{
	expect_usage(PARSE("src", "--resize"), "--resize", NULL);
	expect_usage(PARSE("src", "-o"), "-o", NULL);
}

Test(options, invalid_values_are_named_with_the_value)
{
	expect_usage(PARSE("--resize", "0", "src"), "--resize", "'0'");
	expect_usage(PARSE("--resize-mode", "squash", "src"), "--resize-mode", "squash");
	expect_usage(PARSE("--blur", "0", "src"), "--blur", NULL);
	expect_usage(PARSE("--blur", "101", "src"), "--blur", NULL);
	expect_usage(PARSE("--blur", "x", "src"), "--blur", NULL);
	expect_usage(PARSE("--format", "gif", "src"), "--format", "gif");
	expect_usage(PARSE("--quality", "0", "src"), "--quality", NULL);
	expect_usage(PARSE("--quality", "101", "src"), "--quality", NULL);
	expect_usage(PARSE("--subsample", "422", "src"), "--subsample", "422");
	expect_usage(PARSE("--png-level", "0", "src"), "--png-level", NULL);
	expect_usage(PARSE("--png-level", "13", "src"), "--png-level", NULL);
	expect_usage(PARSE("--max-pixels", "0", "src"), "--max-pixels", NULL);
	expect_usage(PARSE("--fail-on", "sometimes", "src"), "--fail-on", NULL);
	expect_usage(PARSE("--kernel", "gpu", "src"), "--kernel", "gpu");
	expect_usage(PARSE("--background", "256,0,0", "src"), "--background", NULL);
	expect_usage(PARSE("--background", "1,2", "src"), "--background", NULL);
	expect_usage(PARSE("--background", "1,2,3,4", "src"), "--background", NULL);
	expect_usage(PARSE("--min-size", "-1", "src"), "--min-size", NULL);
	expect_usage(PARSE("--max-size", "lots", "src"), "--max-size", "lots");
	expect_usage(PARSE("--limit", "0", "src"), "--limit", NULL);
	expect_usage(PARSE("--sample", "0", "src"), "--sample", NULL);
	expect_usage(PARSE("--sample", "1.5", "src"), "--sample", NULL);
	expect_usage(PARSE("--seed", "-1", "src"), "--seed", NULL);
	expect_usage(PARSE("--shard", "3/3", "src"), "--shard", "3/3");
	expect_usage(PARSE("-j", "0", "src"), "--threads", NULL);
	expect_usage(PARSE("--io-depth", "0", "src"), "--io-depth", NULL);
	expect_usage(PARSE("--walkers", "100000", "src"), "--walkers", NULL);
	expect_usage(PARSE("--read-budget", "512", "src"), "--read-budget", NULL);
	expect_usage(PARSE("--max-errors", "-2", "src"), "--max-errors", NULL);
	expect_usage(PARSE("--metrics-interval", "-1", "src"), "--metrics-interval", NULL);
	expect_usage(PARSE("--metrics-interval", "5s", "src"), "--metrics-interval", NULL);
}

Test(options, boundary_values_are_accepted)
{
	struct parsed *p = parse_ok(PARSE("--blur", "100", "--quality", "1", "--read-budget",
					  "1k", "--background", "255,255,255", "--sample", "1",
					  "--max-errors", "0", "src"));

	cr_assert_eq(p->cfg.read_budget, 1024);
	cr_assert_eq(p->cfg.kernel.background[0], 255);
	parsed_free(p);
}

/* strtod accepts "nan", and "nan < 0" is false, so --metrics-interval nan is taken:
 * the monitor then compares deadlines with NaN and never prints a metrics line. */
Test(options, metrics_interval_nan_is_refused)
{
	struct parsed *p = PARSE("--metrics-interval", "nan", "src");

	cr_expect_eq(p->rc, -VHERR_USAGE, "--metrics-interval nan was accepted");
	parsed_free(p);
}

Test(options, help_prints_usage_and_exits)
{
	struct parsed *p = PARSE("--help");

	cr_assert_eq(p->rc, OPTIONS_EXIT);
	cr_assert_not_null(strstr(p->out, "Usage: vhprep"), "printed: %s", p->out);
	cr_assert_not_null(strstr(p->out, "--resize"));
	parsed_free(p);
	p = PARSE("src", "--resize", "224", "-h");
	cr_assert_eq(p->rc, OPTIONS_EXIT);
	cr_assert_not_null(strstr(p->out, "Usage: vhprep"));
	parsed_free(p);
}

Test(options, version_prints_and_exits)
{
	struct parsed *p = PARSE("--version");

	cr_assert_eq(p->rc, OPTIONS_EXIT);
	cr_assert_str_eq(p->out, "vhprep " VHPREP_VERSION "\n");
	parsed_free(p);
	p = PARSE("-V");
	cr_assert_eq(p->rc, OPTIONS_EXIT);
	cr_assert_str_eq(p->out, "vhprep " VHPREP_VERSION "\n");
	parsed_free(p);
}

Test(options, usage_goes_to_the_given_stream)
{
	FILE *f = tmpfile();
	long n;

	options_usage(f);
	n = ftell(f);
	cr_assert_gt(n, 500);
	fclose(f);
}

Test(options, options_after_source_are_parsed)
{
	struct parsed *p = parse_ok(PARSE("src", "--resize", "224", "--tag", "t"));

	cr_assert_str_eq(p->cfg.source, "src");
	cr_assert_eq(p->cfg.kernel.resize_w, 224);
	cr_assert_eq(p->cfg.tags.n, 1);
	parsed_free(p);
	p = parse_ok(PARSE("--include", "*.jpg", "/mnt/raw", "-j", "2"));
	cr_assert_str_eq(p->cfg.source, "/mnt/raw");
	cr_assert_eq(p->cfg.threads, 2);
	parsed_free(p);
}

Test(options, double_dash_ends_options)
{
	struct parsed *p = parse_ok(PARSE("--tag", "t", "--", "-weird-source"));

	cr_assert_str_eq(p->cfg.source, "-weird-source");
	parsed_free(p);
}

Test(options, two_sources_are_refused)
{
	expect_usage(PARSE("src1", "src2"), "src2", NULL);
	expect_usage(PARSE("src1", "--resize", "10", "src2"), "src2", NULL);
}

Test(options, parse_twice_in_one_process)
{
	struct parsed *p = parse_ok(PARSE("--resize", "10", "a"));

	cr_assert_str_eq(p->cfg.source, "a");
	parsed_free(p);
	p = parse_ok(PARSE("--resize", "20", "b"));
	cr_assert_str_eq(p->cfg.source, "b");
	cr_assert_eq(p->cfg.kernel.resize_w, 20);
	parsed_free(p);
	expect_usage(PARSE("--bogus"), "--bogus", NULL);
	p = parse_ok(PARSE("c"));
	cr_assert_str_eq(p->cfg.source, "c");
	parsed_free(p);
}

Test(options, nfs_options_set_their_fields)
{
	struct parsed *p = parse_ok(PARSE("--nfs-connections", "8", "--nfs-timeout", "2.5",
					  "--nfs-inflight", "32", "nfs://127.0.0.1/x"));

	cr_assert_eq(p->cfg.nfs_connections, 8);
	cr_assert_float_eq(p->cfg.nfs_timeout, 2.5, 1e-12);
	cr_assert_eq(p->cfg.io_depth, 32, "--nfs-inflight is --io-depth");
	cr_assert_str_eq(p->cfg.source, "nfs://127.0.0.1/x");
	parsed_free(p);
	expect_usage(PARSE("--nfs-connections", "0", "src"), "--nfs-connections", NULL);
	expect_usage(PARSE("--nfs-connections", "65", "src"), "--nfs-connections", NULL);
	expect_usage(PARSE("--nfs-timeout", "0", "src"), "--nfs-timeout", NULL);
	expect_usage(PARSE("--nfs-timeout", "nan", "src"), "--nfs-timeout", NULL);
}

Test(options, url_options_set_their_fields)
{
	struct parsed *p = parse_ok(PARSE(
	    "--urls", "l.csv", "--url-column", "link", "--key-column", "name", "--per-host",
	    "4", "--http-timeout", "2.5", "--retries", "0", "--keep-query", "--insecure",
	    "--cacert", "ca.pem", "--netrc-file", "n", "--allow-metadata-ip"));
	struct config *c = &p->cfg;
	struct vherr err;

	cr_assert_str_eq(c->urls, "l.csv");
	cr_assert_str_eq(c->url_column, "link");
	cr_assert_str_eq(c->key_column, "name");
	cr_assert_eq(c->per_host, 4);
	cr_assert_float_eq(c->http_timeout, 2.5, 1e-12);
	cr_assert_eq(c->retries, 0);
	cr_assert(c->keep_query && c->insecure && c->allow_metadata_ip);
	cr_assert_str_eq(c->cacert, "ca.pem");
	cr_assert_str_eq(c->netrc_file, "n");
	cr_assert_eq(config_finish(c, &err), 0, "%s", err.msg);
	cr_assert_str_eq(c->source, "l.csv", "the list stands for SOURCE in the summary");
	parsed_free(p);
	p = parse_ok(PARSE("src"));
	cr_assert_eq(p->cfg.per_host, 16);
	cr_assert_eq(p->cfg.retries, 3);
	cr_assert_float_eq(p->cfg.http_timeout, 60.0, 1e-12);
	cr_assert_eq(p->cfg.allow_metadata_ip, 0, "metadata addresses refused by default");
	parsed_free(p);
	expect_usage(PARSE("--urls", "l", "--retries", "101"), "--retries", "101");
	expect_usage(PARSE("--urls", "l", "--per-host", "0"), "--per-host", NULL);
	expect_usage(PARSE("--urls", "l", "--http-timeout", "0"), "--http-timeout", NULL);
}

Test(options, urls_replace_source)
{
	struct parsed *p = parse_ok(PARSE("--urls", "l.txt", "src"));
	struct vherr err;

	cr_assert_eq(config_finish(&p->cfg, &err), -VHERR_USAGE);
	cr_assert_not_null(strstr(err.msg, "--urls replaces SOURCE"), "%s", err.msg);
	parsed_free(p);
	p = parse_ok(PARSE("--url-column", "u", "src"));
	cr_assert_eq(config_finish(&p->cfg, &err), -VHERR_USAGE);
	cr_assert_not_null(strstr(err.msg, "--urls"), "%s", err.msg);
	parsed_free(p);
}

Test(options, preview_options_set_their_fields)
{
	struct parsed *p = parse_ok(PARSE("src"));

	cr_assert_eq(p->cfg.preview, 24, "the default sheet shows 24");
	cr_assert_eq(p->cfg.preview_in_dataset, 0);
	parsed_free(p);
	p = parse_ok(PARSE("--preview", "0", "src"));
	cr_assert_eq(p->cfg.preview, 0);
	parsed_free(p);
	p = parse_ok(PARSE("--preview", "100", "--preview-in-dataset", "src"));
	cr_assert_eq(p->cfg.preview, 100);
	cr_assert_eq(p->cfg.preview_in_dataset, 1);
	parsed_free(p);
	expect_usage(PARSE("--preview", "101", "src"), "--preview", "'101'");
	expect_usage(PARSE("--preview", "-1", "src"), "--preview", NULL);
	expect_usage(PARSE("--preview", "some", "src"), "--preview", "some");
}

Test(options, shard_auto_and_explicit)
{
	struct parsed *p = parse_ok(PARSE("--shard", "auto", "src"));

	cr_assert_eq(p->cfg.shard_auto, 1);
	cr_assert_eq(p->cfg.shard_auto_count, 0);
	cr_assert_eq(p->cfg.shard_explicit, 0);
	cr_assert_eq(p->cfg.shard_count, 1, "resolved later, by config_finish");
	parsed_free(p);
	p = parse_ok(PARSE("--shard", "auto/8", "src"));
	cr_assert_eq(p->cfg.shard_auto_count, 8);
	parsed_free(p);
	p = parse_ok(PARSE("--shard", "1/3", "--shard", "auto", "src"));
	cr_assert(p->cfg.shard_auto && p->cfg.shard_explicit);
	cr_assert_eq(p->cfg.shard_index, 1);
	cr_assert_eq(p->cfg.shard_count, 3);
	parsed_free(p);
	expect_usage(PARSE("--shard", "auto/0", "src"), "--shard", "auto/0");
	expect_usage(PARSE("--shard", "automatic", "src"), "--shard", "automatic");
	expect_usage(PARSE("--shard", "auto/", "src"), "--shard", NULL);
}
