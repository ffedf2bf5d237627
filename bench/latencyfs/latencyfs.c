/* latencyfs: a read-only FUSE passthrough that behaves like a kernel NFS mount of a cloud
 * file store (AWS EFS, GCP Filestore): every request an NFS client would send over the
 * wire sleeps one emulated round trip (--delay-ms, --jitter-ms) in its serving thread,
 * attributes and names are cached for a short time (--attr-timeout, --entry-timeout, like
 * actimeo), and any write fails with EROFS. Requests are served by up to --threads
 * threads at once, so N concurrent requests cost about one delay, not N; the counters
 * (one per request kind) tell a benchmark how many round trips a program made.
 *
 * Exit codes: 0 clean unmount, 1 runtime error, 2 usage error, 3 cannot mount. */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/latencyfs/lfsbdi.h"
#include "bench/latencyfs/lfsinitfix.h"
#include "bench/latencyfs/lfsops.h"
#include "bench/latencyfs/lfsstats.h"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_MOUNT = 3 };
enum { OPT_DELAY = 256, OPT_JITTER, OPT_ATTR, OPT_ENTRY, OPT_THREADS, OPT_STATS, OPT_RA };

#define MAX_THREADS 10000 /* libfuse's FUSE_LOOP_MT_MAX_THREADS */
#define MAX_READAHEAD_KB (1u << 20)

struct cli {
	struct lfsops_config cfg;
	char *mountpoint;      /* realpath, owned */
	char *stats_file;      /* absolute, owned, or NULL */
	int foreground;
	int help;
	struct fuse_args fargs; /* argv[0] and the -o options for libfuse */
};

static const char usage_text[] =
	"usage: latencyfs [OPTIONS] SRC MOUNTPOINT\n"
	"Mirror directory SRC read-only at MOUNTPOINT, delaying every request like one\n"
	"network round trip of an NFS mount (AWS EFS, GCP Filestore).\n"
	"\n"
	"  --delay-ms F        round trip per request, milliseconds (default 1)\n"
	"  --jitter-ms F       uniform jitter, +/- milliseconds around the delay (default 0)\n"
	"  --attr-timeout S    kernel attribute cache, seconds (default 1, like actimeo=1)\n"
	"  --entry-timeout S   kernel name cache incl. negative entries, seconds (default 1)\n"
	"  --threads N         serving threads, requests in flight (default 64)\n"
	"  --readahead-kb N    kernel readahead window, KiB (default 1024: 1 MiB reads like\n"
	"                      NFS rsize=1M; 0 keeps the kernel's 128)\n"
	"  --stats-file PATH   write the request counters as one JSON object at unmount\n"
	"  -f                  stay in the foreground (default: daemonize once mounted)\n"
	"  -o OPT[,OPT...]     FUSE mount options, passed through (e.g. -o debug)\n"
	"  -h, --help          print this help\n"
	"\n"
	"Delayed: lookup getattr open read opendir readdir(plus) readlink statfs access.\n"
	"Free: release releasedir flush forget. Writes of any kind fail with EROFS.\n"
	"The counters go to stderr at unmount (lost when daemonized: use --stats-file).\n"
	"Unmount with: fusermount3 -u MOUNTPOINT\n";

static const struct option long_opts[] = {
	{ "delay-ms", required_argument, NULL, OPT_DELAY },
	{ "jitter-ms", required_argument, NULL, OPT_JITTER },
	{ "attr-timeout", required_argument, NULL, OPT_ATTR },
	{ "entry-timeout", required_argument, NULL, OPT_ENTRY },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "stats-file", required_argument, NULL, OPT_STATS },
	{ "readahead-kb", required_argument, NULL, OPT_RA },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int parse_seconds(const char *name, const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0) {
		fprintf(stderr, "latencyfs: invalid --%s '%s': expected a number >= 0\n", name, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_count(const char *name, const char *s, unsigned lo, unsigned hi,
		       unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi) {
		fprintf(stderr, "latencyfs: invalid --%s '%s': expected %u..%u\n", name, s, lo,
			hi);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* Returns path made absolute against the current directory (malloc'd), or NULL. */
static char *absolute(const char *path)
{
	char cwd[PATH_MAX];
	size_t len;
	char *abs;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	len = strlen(cwd) + strlen(path) + 2;
	abs = malloc(len);
	if (abs)
		snprintf(abs, len, "%s/%s", cwd, path);
	return abs;
}

static int parse_option(struct cli *c, int opt, const char *arg)
{
	switch (opt) {
	case OPT_DELAY:
		return parse_seconds("delay-ms", arg, &c->cfg.delay_ms);
	case OPT_JITTER:
		return parse_seconds("jitter-ms", arg, &c->cfg.jitter_ms);
	case OPT_ATTR:
		return parse_seconds("attr-timeout", arg, &c->cfg.attr_timeout);
	case OPT_ENTRY:
		return parse_seconds("entry-timeout", arg, &c->cfg.entry_timeout);
	case OPT_THREADS:
		return parse_count("threads", arg, 1, MAX_THREADS, &c->cfg.threads);
	case OPT_RA:
		return parse_count("readahead-kb", arg, 0, MAX_READAHEAD_KB, &c->cfg.readahead_kb);
	case OPT_STATS:
		free(c->stats_file);
		c->stats_file = absolute(arg);
		if (c->stats_file)
			return 0;
		fprintf(stderr, "latencyfs: cannot resolve '%s': %s\n", arg, strerror(errno));
		return -EINVAL;
	case 'f':
		c->foreground = 1;
		return 0;
	case 'o':
		if (fuse_opt_add_arg(&c->fargs, "-o") || fuse_opt_add_arg(&c->fargs, arg))
			return -ENOMEM;
		return 0;
	case 'h':
		c->help = 1;
		return 0;
	default:
		return -EINVAL; /* getopt printed why */
	}
}

/* Adds "-o subtype=latencyfs,fsname=SRC" before the user's -o options (which win). */
static int add_names(struct cli *c, const char *src)
{
	size_t len = strlen(src) + sizeof("fsname=");
	char *fsname = malloc(len), *opts = NULL;
	int rc = -ENOMEM;

	if (!fsname)
		goto out;
	snprintf(fsname, len, "fsname=%s", src);
	if (fuse_opt_add_opt(&opts, "subtype=latencyfs") ||
	    fuse_opt_add_opt_escaped(&opts, fsname) ||
	    fuse_opt_insert_arg(&c->fargs, 1, "-o") || fuse_opt_insert_arg(&c->fargs, 2, opts))
		goto out;
	rc = 0;
out:
	free(fsname);
	free(opts);
	return rc;
}

static int parse_positionals(struct cli *c, int argc, char **argv)
{
	if (argc - optind != 2) {
		fprintf(stderr, "latencyfs: expected SRC and MOUNTPOINT (see --help)\n");
		return -EINVAL;
	}
	c->cfg.src = argv[optind];
	c->mountpoint = realpath(argv[optind + 1], NULL);
	if (!c->mountpoint) {
		int rc = -errno;

		fprintf(stderr, "latencyfs: cannot open '%s': %s\n", argv[optind + 1],
			strerror(-rc));
		return rc;
	}
	if (add_names(c, c->cfg.src) < 0)
		return -ENOMEM;
	return 0;
}

/* Fills c from argv. Returns 0, or a negative errno after printing why. */
static int parse_cli(struct cli *c, int argc, char **argv)
{
	int opt, rc;

	c->cfg = (struct lfsops_config){ .delay_ms = 1.0, .attr_timeout = 1.0,
					 .entry_timeout = 1.0, .threads = 64,
					 .readahead_kb = 1024 };
	if (fuse_opt_add_arg(&c->fargs, argv[0]))
		return -ENOMEM;
	while ((opt = getopt_long(argc, argv, "fho:", long_opts, NULL)) != -1) {
		rc = parse_option(c, opt, optarg);
		if (rc < 0)
			return rc;
	}
	if (c->help)
		return 0;
	return parse_positionals(c, argc, argv);
}

static void cli_release(struct cli *c)
{
	free(c->mountpoint);
	free(c->stats_file);
	fuse_opt_free_args(&c->fargs);
}

/* Serves requests on up to threads threads until unmounted or signalled. */
static int serve_loop(struct fuse_session *se, unsigned threads)
{
	struct fuse_loop_config *loop = fuse_loop_cfg_create();
	int rc;

	if (!loop)
		return -ENOMEM;
	fuse_loop_cfg_set_max_threads(loop, threads);
	fuse_loop_cfg_set_clone_fd(loop, 1); /* one /dev/fuse fd per thread: less contention */
	rc = fuse_session_loop_mt(se, loop);
	fuse_loop_cfg_destroy(loop);
	return rc < 0 ? rc : 0; /* > 0: the signal that ended the loop */
}

/* Arms the readahead setting of the new mount (best effort: a warning on failure). */
static void arm_readahead(const struct cli *c, struct lfsops *fs)
{
	char path[128], err[PATH_MAX + 128];

	if (!c->cfg.readahead_kb)
		return;
	if (lfsbdi_find(c->mountpoint, path, sizeof(path), err, sizeof(err)) < 0)
		fprintf(stderr, "latencyfs: %s (readahead left at the kernel default)\n", err);
	else
		lfsops_set_bdi(fs, path);
}

static int mount_and_serve(struct fuse_session *se, const struct cli *c, struct lfsops *fs)
{
	int rc;

	if (fuse_session_mount(se, c->mountpoint) != 0) {
		fprintf(stderr, "latencyfs: cannot mount '%s' on '%s'\n", c->cfg.src,
			c->mountpoint);
		return EXIT_MOUNT;
	}
	arm_readahead(c, fs);
	if (lfsinitfix_needed() && lfsops_use_initfix(fs, se) < 0)
		fprintf(stderr, "latencyfs: lookups in one directory will not overlap\n");
	rc = fuse_daemonize(c->foreground) ? EXIT_RUNTIME : 0;
	if (rc == 0 && serve_loop(se, c->cfg.threads) < 0)
		rc = EXIT_RUNTIME;
	fuse_session_unmount(se);
	return rc;
}

/* Mounts fs, serves it until unmount, and returns an exit code. */
static int run_session(struct cli *c, struct lfsops *fs)
{
	struct fuse_session *se;
	int rc;

	/* libfuse parses c->fargs in place (and may replace its vector) */
	se = fuse_session_new(&c->fargs, lfsops_table(), sizeof(struct fuse_lowlevel_ops), fs);
	if (!se)
		return EXIT_USAGE; /* libfuse printed why */
	rc = EXIT_RUNTIME;
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	rc = mount_and_serve(se, c, fs);
	fuse_remove_signal_handlers(se);
out:
	fuse_session_destroy(se);
	return rc;
}

static int report(const struct cli *c, struct lfsops *fs)
{
	char err[PATH_MAX + 128];

	lfsstats_print(lfsops_stats(fs), stderr);
	if (!c->stats_file)
		return 0;
	if (lfsstats_write_json(lfsops_stats(fs), c->stats_file, err, sizeof(err)) < 0) {
		fprintf(stderr, "latencyfs: %s\n", err);
		return EXIT_RUNTIME;
	}
	return 0;
}

static void print_help(void)
{
	fputs(usage_text, stdout);
	fputs("\nFUSE options (-o):\n", stdout);
	fflush(stdout);
	fuse_lowlevel_help();
}

int main(int argc, char **argv)
{
	struct cli c = { .fargs = FUSE_ARGS_INIT(0, NULL) };
	struct lfsops *fs = NULL;
	char err[PATH_MAX + 128];
	int rc = EXIT_USAGE;

	if (parse_cli(&c, argc, argv) < 0)
		goto out;
	rc = 0;
	if (c.help) {
		print_help();
		goto out;
	}
	rc = EXIT_RUNTIME;
	if (lfsops_new(&c.cfg, &fs, err, sizeof(err)) < 0) {
		fprintf(stderr, "latencyfs: %s\n", err);
		goto out;
	}
	rc = run_session(&c, fs);
	if (rc == 0 || rc == EXIT_RUNTIME)
		rc = report(&c, fs) ? EXIT_RUNTIME : rc;
out:
	lfsops_free(fs);
	cli_release(&c);
	return rc;
}
