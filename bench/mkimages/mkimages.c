/* vhprep-mkimages: deterministic synthetic image datasets for vhprep's tests and benchmarks.
 *
 * main: options -> plan (mkplan, pure) -> make every file on a pool of OpenMP threads
 * (mkpaint, mkencode, mkbad, mkout) -> optional manifest -> one summary line on stderr. */
#include <errno.h>
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vips/vips.h>

#include "mkbad.h"
#include "mkencode.h"
#include "mkout.h"
#include "mkpaint.h"
#include "mkplan.h"
#include "mkrng.h"

#define MKIMAGES_ERR_MAX 1024

static const char mkimages_usage[] =
    "usage: vhprep-mkimages --preset NAME --out DIR [OPTIONS]\n"
    "\n"
    "Generates a deterministic image dataset: the same options give byte-identical files\n"
    "(on the same libvips, libjpeg and font versions). Pictures are photo-like: smooth\n"
    "gradients and blobs, hard-edged shapes and lines, fine hatching and text strokes,\n"
    "film grain, so resampling quality differences are visible.\n"
    "\n"
    "Presets:\n"
    "  photos   N JPEGs (default 500x375, quality 90), ImageNet-like class folders:\n"
    "           n0000/img_000000.jpg ... (--per-dir files per folder)\n"
    "  sample   N mixed files for demos: mostly JPEG, PNG (RGB, RGBA, grey, 16-bit),\n"
    "           WebP, TIFF, EXIF orientation 6/8, a CMYK JPEG, a Display-P3 JPEG,\n"
    "           64x48 to 2000x1500 incl. portrait and 8:1, nested folders, names with\n"
    "           spaces and non-ASCII letters\n"
    "  bad      fixed set in DIR: good.jpg (control), corrupt.jpg (garbage scan data:\n"
    "           libjpeg warnings), undecodable.jpg (header reads, decode fails),\n"
    "           truncated.jpg, truncated.png (cut at 60%), zero.jpg, notimage.jpg (text),\n"
    "           bomb.png (valid 1-bit PNG, 60000x60000 in ~440 kB)\n"
    "  flat     N tiny JPEGs (64x48) in DIR: f0000000.jpg ... (walk benchmarks)\n"
    "  wide     D folders x F tiny JPEGs: d0000/f000000.jpg ... (walk benchmarks)\n"
    "\n"
    "Options:\n"
    "  --preset NAME     photos | sample | bad | flat | wide (required)\n"
    "  --out DIR         output root, created if missing; files are overwritten (required)\n"
    "  --count N         files (default photos 1000, sample 300, flat 10000; bad: fixed)\n"
    "  --seed S          run seed (default 1)\n"
    "  --width W         photos: width (default 500)\n"
    "  --height H        photos: height (default 375)\n"
    "  --quality Q       JPEG/WebP quality (default 90; sample: 75-95 per file)\n"
    "  --per-dir N       photos: files per class folder (default 1300)\n"
    "  --dirs D          wide: folders (default 100)\n"
    "  --files F         wide: files per folder (default 100, or --count / D rounded up)\n"
    "  --empty           flat, wide: 0-byte files instead of tiny JPEGs\n"
    "  --no-text         no text strokes (they need fonts; hatching is always drawn)\n"
    "  --manifest FILE   write path<TAB>width<TAB>height<TAB>bands<TAB>kind<TAB>bytes per\n"
    "                    file (header size of the stored pixels; oriented JPEGs are stored\n"
    "                    rotated), in generation order\n"
    "  --threads N       worker threads (default: all cores)\n"
    "  --help            this text\n"
    "\n"
    "Prints one summary line on stderr: files, bytes, seconds. Exit 0, 1 on failure,\n"
    "2 on bad usage.\n";

struct mkimages_opts {
	struct mkplan_opts plan;
	const char *out;
	const char *manifest;
	int threads;
	int text;
};

/* What every worker shares, read-only during the run. */
struct mkimages_shared {
	const struct mkimages_opts *opts;
	const struct mkencode_file *pool; /* tiny JPEGs of flat/wide, or NULL */
	const struct mkpaint_assets *assets;
};

/* The run's first failure; set under the mkimages_fail critical section. */
struct mkimages_state {
	int failed;
	char err[MKIMAGES_ERR_MAX];
};

static int mkimages_parse_long(const char *name, const char *arg, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi) {
		fprintf(stderr, "vhprep-mkimages: invalid --%s '%s': expected %ld..%ld\n", name,
			arg, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int mkimages_parse_seed(const char *arg, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(arg, &end, 0);
	if (errno || end == arg || *end) {
		fprintf(stderr, "vhprep-mkimages: invalid --seed '%s'\n", arg);
		return -1;
	}
	return 0;
}

enum { OPT_PER_DIR = 256, OPT_NO_TEXT };

static const struct option mkimages_longopts[] = {
    {"preset", required_argument, NULL, 'p'},
    {"out", required_argument, NULL, 'o'},
    {"count", required_argument, NULL, 'n'},
    {"seed", required_argument, NULL, 's'},
    {"width", required_argument, NULL, 'W'},
    {"height", required_argument, NULL, 'H'},
    {"quality", required_argument, NULL, 'q'},
    {"per-dir", required_argument, NULL, OPT_PER_DIR},
    {"dirs", required_argument, NULL, 'D'},
    {"files", required_argument, NULL, 'F'},
    {"empty", no_argument, NULL, 'e'},
    {"no-text", no_argument, NULL, OPT_NO_TEXT},
    {"manifest", required_argument, NULL, 'm'},
    {"threads", required_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int mkimages_parse_int(const char *name, const char *arg, int lo, int hi, int *out)
{
	long v;

	if (mkimages_parse_long(name, arg, lo, hi, &v))
		return -1;
	*out = (int)v;
	return 0;
}

/* A numeric option into *o. Returns 0, or -1 on a bad value (message printed). */
static int mkimages_option_number(int c, const char *arg, struct mkimages_opts *o)
{
	switch (c) {
	case 's':
		return mkimages_parse_seed(arg, &o->plan.seed);
	case 'n':
		return mkimages_parse_long("count", arg, 1, 100000000, &o->plan.count);
	case OPT_PER_DIR:
		return mkimages_parse_long("per-dir", arg, 1, 100000000, &o->plan.per_dir);
	case 'D':
		return mkimages_parse_long("dirs", arg, 1, 1000000, &o->plan.dirs);
	case 'F':
		return mkimages_parse_long("files", arg, 1, 100000000, &o->plan.files);
	case 'W':
		return mkimages_parse_int("width", arg, 8, 20000, &o->plan.width);
	case 'H':
		return mkimages_parse_int("height", arg, 8, 20000, &o->plan.height);
	case 'q':
		return mkimages_parse_int("quality", arg, 1, 100, &o->plan.quality);
	case 'j':
		return mkimages_parse_int("threads", arg, 1, 1024, &o->threads);
	default:
		return -1;
	}
}

/* One option into *o. Returns 0, 1 for --help, -1 on a bad value. */
static int mkimages_option(int c, const char *arg, struct mkimages_opts *o)
{
	switch (c) {
	case 'p':
		o->plan.preset = arg;
		return 0;
	case 'o':
		o->out = arg;
		return 0;
	case 'm':
		o->manifest = arg;
		return 0;
	case 'e':
		o->plan.empty = 1;
		return 0;
	case OPT_NO_TEXT:
		o->text = 0;
		return 0;
	case 'h':
		return 1;
	default:
		return mkimages_option_number(c, arg, o);
	}
}

/* Returns 0 to run, 1 when --help was printed, -1 on bad usage (message printed). */
static int mkimages_parse(int argc, char **argv, struct mkimages_opts *o)
{
	int c, rc;

	memset(o, 0, sizeof(*o));
	o->plan.seed = 1;
	o->text = 1;
	while ((c = getopt_long(argc, argv, "", mkimages_longopts, NULL)) != -1) {
		rc = mkimages_option(c, optarg, o);
		if (rc > 0) {
			fputs(mkimages_usage, stdout);
			return 1;
		}
		if (rc < 0)
			goto usage;
	}
	if (optind < argc) {
		fprintf(stderr, "vhprep-mkimages: unexpected argument '%s'\n", argv[optind]);
		goto usage;
	}
	if (!o->plan.preset || !o->out) {
		fprintf(stderr, "vhprep-mkimages: --preset and --out are required\n");
		goto usage;
	}
	return 0;
usage:
	fprintf(stderr, "try 'vhprep-mkimages --help'\n");
	return -1;
}

/* Records the first failure; later ones are dropped. Any worker. */
static void mkimages_fail(struct mkimages_state *st, const char *relpath, const char *msg)
{
#pragma omp critical(mkimages_fail)
	{
		if (!st->failed)
			snprintf(st->err, sizeof(st->err), "cannot make '%.400s': %.600s",
				 relpath, msg);
		st->failed = 1;
	}
}

/* Copies and clears libvips' process-wide error text right after a failed call. */
static void mkimages_fail_vips(struct mkimages_state *st, const char *relpath)
{
	char msg[MKIMAGES_ERR_MAX];

#pragma omp critical(mkimages_vips_error)
	{
		snprintf(msg, sizeof(msg), "%s", vips_error_buffer());
		vips_error_clear();
	}
	msg[strcspn(msg, "\n")] = '\0';
	mkimages_fail(st, relpath, msg);
}

/* The tiny JPEGs of flat/wide, made once: painting each walk file would dominate the run. */
static struct mkencode_file *mkimages_pool(const struct mkplan *plan, uint64_t seed,
					   const struct mkpaint_assets *assets)
{
	struct mkencode_file *pool = g_new0(struct mkencode_file, plan->pool_size);
	uint64_t salt = mkplan_salt("pool");

	for (int i = 0; i < plan->pool_size; i++) {
		uint64_t s = mkrng_seed(seed, salt, (uint64_t)i);
		VipsImage *im = NULL;
		int rc = mkpaint_photo(&im, plan->pool_width, plan->pool_height, s, assets);

		rc = rc ? rc : mkencode_image(im, MKENCODE_JPEG, 85, s, &pool[i]);
		if (im)
			g_object_unref(im);
		if (rc) {
			for (int k = 0; k < i; k++)
				mkencode_release(&pool[k]);
			g_free(pool);
			return NULL;
		}
	}
	return pool;
}

/* Produces the bytes of one job into *f (pool jobs borrow: f->data must not be freed). */
static int mkimages_make(const struct mkimages_shared *sh, const struct mkjob *job,
			 struct mkencode_file *f)
{
	VipsImage *im = NULL;
	int rc;

	memset(f, 0, sizeof(*f));
	switch (job->type) {
	case MKJOB_IMAGE:
		rc = mkpaint_photo(&im, job->width, job->height, job->seed, sh->assets);
		rc = rc ? rc
			: mkencode_image(im, (enum mkencode_kind)job->kind, job->quality,
					 job->seed, f);
		if (im)
			g_object_unref(im);
		return rc;
	case MKJOB_BAD:
		return mkbad_make((enum mkbad_kind)job->kind, job->seed, sh->assets, f);
	case MKJOB_POOL:
		*f = sh->pool[job->kind];
		return 0;
	default:
		return 0;
	}
}

static void mkimages_job(const struct mkimages_shared *sh, struct mkjob *job,
			 struct mkimages_state *st)
{
	struct mkencode_file f;
	char err[MKIMAGES_ERR_MAX];

	if (mkimages_make(sh, job, &f)) {
		mkimages_fail_vips(st, job->relpath);
		return;
	}
	if (mkout_write(sh->opts->out, job->relpath, f.data, f.len, err, sizeof(err)))
		mkimages_fail(st, job->relpath, err);
	job->bytes = f.len;
	job->out_width = f.width;
	job->out_height = f.height;
	job->out_bands = f.bands;
	if (job->type != MKJOB_POOL)
		mkencode_release(&f);
}

static void mkimages_run(const struct mkimages_shared *sh, struct mkplan *plan,
			 struct mkimages_state *st)
{
	long n = (long)plan->n;

#pragma omp parallel for schedule(dynamic, 1) num_threads(sh->opts->threads)
	for (long i = 0; i < n; i++) {
		int stop;

#pragma omp atomic read
		stop = st->failed;
		if (!stop)
			mkimages_job(sh, &plan->jobs[i], st);
	}
}

static const char *mkimages_kind(const struct mkjob *job)
{
	switch (job->type) {
	case MKJOB_IMAGE:
		return mkencode_name((enum mkencode_kind)job->kind);
	case MKJOB_BAD:
		return job->kind == MKBAD_GOOD ? "jpeg" : "bad";
	case MKJOB_POOL:
		return "jpeg";
	default:
		return "empty";
	}
}

static int mkimages_manifest(const char *path, const struct mkplan *plan)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (!f) {
		fprintf(stderr, "vhprep-mkimages: cannot write '%s': %s\n", path,
			strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < plan->n; i++) {
		const struct mkjob *j = &plan->jobs[i];

		fprintf(f, "%s\t%d\t%d\t%d\t%s\t%zu\n", j->relpath, j->out_width, j->out_height,
			j->out_bands, mkimages_kind(j), j->bytes);
	}
	rc = ferror(f) | fclose(f);
	if (rc)
		fprintf(stderr, "vhprep-mkimages: cannot write '%s': %s\n", path,
			strerror(errno));
	return rc ? -1 : 0;
}

/* Grain and text masks covering the largest picture of the plan (bad: the 320x240
 * control; flat, wide: the pool's tiny JPEGs). Returns NULL on failure. */
static struct mkpaint_assets *mkimages_assets(const struct mkplan *plan,
					      const struct mkimages_opts *o)
{
	int w = plan->pool_size ? plan->pool_width : 320;
	int h = plan->pool_size ? plan->pool_height : 240;

	for (size_t i = 0; i < plan->n; i++) {
		if (plan->jobs[i].type != MKJOB_IMAGE)
			continue;
		w = MAX(w, plan->jobs[i].width);
		h = MAX(h, plan->jobs[i].height);
	}
	return mkpaint_assets_new(w, h, mkrng_seed(o->plan.seed, mkplan_salt("assets"), 0),
				  o->text);
}

static double mkimages_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void mkimages_summary(const struct mkimages_opts *o, const struct mkplan *plan,
			     double seconds)
{
	size_t bytes = 0;

	for (size_t i = 0; i < plan->n; i++)
		bytes += plan->jobs[i].bytes;
	fprintf(
	    stderr,
	    "vhprep-mkimages: %s: %zu files, %zu bytes (%.1f MB) in %s, %.2f s, %d threads\n",
	    o->plan.preset, plan->n, bytes, (double)bytes / 1e6, o->out, seconds, o->threads);
}

/* libvips: one thread per image (our workers are the parallelism), no operation cache. */
static void mkimages_vips_setup(struct mkimages_opts *o)
{
	VipsImage *probe = NULL;

	vips_concurrency_set(1);
	vips_cache_set_max(0);
	if (o->threads <= 0)
		o->threads = omp_get_num_procs();
	if (o->text && vips_text(&probe, "Ag", "font", "Sans 12", NULL)) {
		const char *msg = vips_error_buffer();

		fprintf(stderr,
			"vhprep-mkimages: no text rendering (%.*s); drawing without text\n",
			(int)strcspn(msg, "\n"), msg);
		vips_error_clear();
		o->text = 0;
	}
	if (probe)
		g_object_unref(probe);
}

int main(int argc, char **argv)
{
	struct mkimages_opts o;
	struct mkplan plan = {0};
	struct mkimages_state st = {0};
	struct mkencode_file *pool = NULL;
	struct mkpaint_assets *assets = NULL;
	struct mkimages_shared shared = {&o, NULL, NULL};
	char err[MKIMAGES_ERR_MAX];
	double t0 = mkimages_now();
	int rc = mkimages_parse(argc, argv, &o), err_code;

	if (rc)
		return rc > 0 ? 0 : 2;
	if (VIPS_INIT(argv[0])) {
		fprintf(stderr, "vhprep-mkimages: cannot start libvips: %s\n",
			vips_error_buffer());
		return 1;
	}
	mkimages_vips_setup(&o);
	rc = 2;
	if (mkplan_build(&plan, &o.plan, err, sizeof(err))) {
		fprintf(stderr, "vhprep-mkimages: %s\n", err);
		goto out;
	}
	rc = 1;
	if ((err_code = mkout_mkdirs(o.out))) {
		fprintf(stderr, "vhprep-mkimages: cannot create '%s': %s\n", o.out,
			strerror(-err_code));
		goto out;
	}
	if (!(assets = mkimages_assets(&plan, &o))) {
		fprintf(stderr, "vhprep-mkimages: cannot make grain and text: %s\n",
			vips_error_buffer());
		goto out;
	}
	if (plan.pool_size && !(pool = mkimages_pool(&plan, o.plan.seed, assets))) {
		fprintf(stderr, "vhprep-mkimages: cannot make the tiny JPEGs: %s\n",
			vips_error_buffer());
		goto out;
	}
	shared.pool = pool;
	shared.assets = assets;
	mkimages_run(&shared, &plan, &st);
	if (st.failed) {
		fprintf(stderr, "vhprep-mkimages: %s\n", st.err);
		goto out;
	}
	if (o.manifest && mkimages_manifest(o.manifest, &plan))
		goto out;
	mkimages_summary(&o, &plan, mkimages_now() - t0);
	rc = 0;
out:
	for (int i = 0; pool && i < plan.pool_size; i++)
		mkencode_release(&pool[i]);
	g_free(pool);
	mkpaint_assets_free(assets);
	mkplan_release(&plan);
	vips_shutdown();
	return rc;
}
