/* kernel-driver: runs one kernel over image files held in memory and reports the time
 * per image; the in-process half of bench/kernel-bench.sh, and the program callgrind
 * counts instructions of.
 *
 *   kernel-driver --kernel jpegfast|pngfast|vips [--resize WxH] [--mode MODE]
 *                 [--quality Q] [--format FMT] [--png-level L] [--dct-keep R]
 *                 [--fail-on LEVEL] [--gray] [--reps N] [--out DIR] FILE...
 *
 * Reads every FILE first, then runs the kernel over all of them --reps times on one
 * thread (one kernel, reused, as an engine worker does) and prints one JSON line on
 * stdout: kernel, files, runs, failures, and the median, mean and p90 of the CPU time
 * (of the process: libvips hands work to helper threads even at concurrency 1) and of
 * the wall time per image in milliseconds. --out writes the outputs of the first pass
 * (basename of each input) for quality checks. Calls jpegfast_run and vipskernel_run
 * (and pngfast_run) directly, so it measures each kernel whatever kernel_run would
 * pick. --format defaults to jpg. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/jpegfast.h"
#include "kernels/kernel.h"
#include "kernels/pngfast.h"
#include "kernels/vipskernel.h"

struct input {
	const char *path;
	uint8_t *data;
	size_t len;
};

struct driver {
	struct kernel_params params;
	enum kernel_choice kernel;
	int reps;
	const char *out;
	struct input *in;
	int n_in;
};

static double now(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int slurp(struct input *in)
{
	FILE *f = fopen(in->path, "rb");
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		goto fail;
	in->len = (size_t)n;
	in->data = malloc(in->len ? in->len : 1);
	if (!in->data || fread(in->data, 1, in->len, f) != in->len)
		goto fail;
	fclose(f);
	return 0;
fail:
	fprintf(stderr, "kernel-driver: cannot read '%s': %s\n", in->path, strerror(errno));
	if (f)
		fclose(f);
	return -1;
}

static void write_output(const struct driver *d, const struct input *in,
			 const struct kernel_result *res)
{
	const char *base = strrchr(in->path, '/');
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", d->out, base ? base + 1 : in->path);
	f = fopen(path, "wb");
	if (!f || fwrite(res->data, 1, res->len, f) != res->len)
		fprintf(stderr, "kernel-driver: cannot write '%s'\n", path);
	if (f)
		fclose(f);
}

/* Median, mean and p90 of v[0..n) (sorted in place) as JSON members named key_*. */
static void print_stats(const char *key, double *v, int n)
{
	double sum = 0;

	qsort(v, n, sizeof(*v), cmp_double);
	for (int i = 0; i < n; i++)
		sum += v[i];
	printf("\"%s_median_ms\": %.4f, \"%s_mean_ms\": %.4f, \"%s_p90_ms\": %.4f", key,
	       v[n / 2] * 1e3, key, sum / n * 1e3, key, v[n * 9 / 10] * 1e3);
}

/* One kernel of d->kernel's kind, behind one call. */
struct one {
	struct jpegfast *jf;
	struct pngfast *pf;
	struct vipskernel *vk;
};

static int one_run(struct one *k, const struct input *in, struct kernel_result *res,
		   struct vherr *err)
{
	if (k->vk)
		return vipskernel_run(k->vk, in->data, in->len, res, err);
	if (k->pf)
		return pngfast_run(k->pf, in->data, in->len, res, err);
	return jpegfast_run(k->jf, in->data, in->len, res, err);
}

static int run_all(struct driver *d)
{
	struct one k = {
	    .jf = d->kernel == KERNEL_JPEGFAST ? jpegfast_new(&d->params) : NULL,
	    .pf = d->kernel == KERNEL_PNGFAST ? pngfast_new(&d->params) : NULL,
	    .vk = d->kernel == KERNEL_VIPS ? vipskernel_new(&d->params) : NULL,
	};
	int total = d->reps * d->n_in, n = 0, failed = 0;
	double *cpu = calloc(total, sizeof(double)), *wall = calloc(total, sizeof(double));

	if ((!k.jf && !k.pf && !k.vk) || !cpu || !wall)
		return -1;
	for (int r = 0; r < d->reps; r++) {
		for (int i = 0; i < d->n_in; i++, n++) {
			struct kernel_result res = {0};
			struct vherr err = {0};
			double c0 = now(CLOCK_PROCESS_CPUTIME_ID), w0 = now(CLOCK_MONOTONIC);
			int rc = one_run(&k, &d->in[i], &res, &err);

			cpu[n] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
			wall[n] = now(CLOCK_MONOTONIC) - w0;
			if (rc) {
				failed++;
				fprintf(stderr, "kernel-driver: '%s': %s: %s\n", d->in[i].path,
					vherr_reason(rc), err.msg);
			} else if (r == 0 && d->out) {
				write_output(d, &d->in[i], &res);
			}
			kernel_result_release(&res);
		}
	}
	printf("{\"kernel\": \"%s\", \"files\": %d, \"runs\": %d, \"failed\": %d, ",
	       k.vk   ? "libvips"
	       : k.pf ? "png-fast"
		      : "jpeg-fast",
	       d->n_in, total, failed);
	print_stats("cpu", cpu, total);
	printf(", ");
	print_stats("wall", wall, total);
	printf("}\n");
	free(cpu);
	free(wall);
	jpegfast_free(k.jf);
	pngfast_free(k.pf);
	vipskernel_free(k.vk);
	return failed ? 1 : 0;
}

/* Parses --kernel's value into d->kernel; 0 ok, -1 unknown. */
static int parse_kernel(struct driver *d, const char *v)
{
	static const struct {
		const char *name;
		enum kernel_choice k;
	} names[] = {
	    {"jpegfast", KERNEL_JPEGFAST}, {"pngfast", KERNEL_PNGFAST}, {"vips", KERNEL_VIPS}};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(v, names[i].name)) {
			d->kernel = names[i].k;
			return 0;
		}
	return -1;
}

static int parse_args(struct driver *d, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"kernel", required_argument, NULL, 'k'},
	    {"resize", required_argument, NULL, 'r'},
	    {"mode", required_argument, NULL, 'm'},
	    {"quality", required_argument, NULL, 'q'},
	    {"reps", required_argument, NULL, 'n'},
	    {"out", required_argument, NULL, 'o'},
	    {"fail-on", required_argument, NULL, 'f'},
	    {"gray", no_argument, NULL, 'g'},
	    {"format", required_argument, NULL, 'F'},
	    {"png-level", required_argument, NULL, 'L'},
	    {"dct-keep", required_argument, NULL, 'D'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'k' && parse_kernel(d, optarg) == 0)
			;
		else if (c == 'F' && kernel_format_parse(optarg, &d->params.format) == 0)
			;
		else if (c == 'L')
			d->params.png_level = atoi(optarg);
		else if (c == 'D')
			d->params.dct_keep = atof(optarg);
		else if (c == 'r' &&
			 sscanf(optarg, "%dx%d", &d->params.resize_w, &d->params.resize_h) == 2)
			;
		else if (c == 'm' && geometry_mode_parse(optarg, &d->params.mode) == 0)
			;
		else if (c == 'f' && kernel_fail_on_parse(optarg, &d->params.fail_on) == 0)
			;
		else if (c == 'g')
			d->params.gray = 1;
		else if (c == 'q')
			d->params.quality = atoi(optarg);
		else if (c == 'n')
			d->reps = atoi(optarg);
		else if (c == 'o')
			d->out = optarg;
		else
			return -1;
	}
	d->n_in = argc - optind;
	return d->n_in > 0 && d->reps > 0 ? optind : -1;
}

int main(int argc, char **argv)
{
	struct driver d = {
	    .params = {.resize_w = 224,
		       .resize_h = 224,
		       .mode = GEOMETRY_STRETCH,
		       .autorotate = 1,
		       .format = KFMT_JPEG,
		       .quality = 75,
		       .max_pixels = 100000000,
		       .fail_on = KFAIL_TRUNCATED,
		       .background = {255, 255, 255}},
	    .kernel = KERNEL_JPEGFAST,
	    .reps = 1,
	};
	struct vherr err = {0};
	int first = parse_args(&d, argc, argv), rc;

	if (first < 0) {
		fprintf(
		    stderr,
		    "usage: kernel-driver --kernel jpegfast|pngfast|vips [--resize WxH] "
		    "[--mode MODE] [--quality Q] [--format FMT] [--png-level L] [--dct-keep R] "
		    "[--fail-on LEVEL] [--gray] [--reps N] "
		    "[--out DIR] "
		    "FILE...\n");
		return 2;
	}
	d.in = calloc(d.n_in, sizeof(*d.in));
	for (int i = 0; d.in && i < d.n_in; i++) {
		d.in[i].path = argv[first + i];
		if (slurp(&d.in[i]))
			return 1;
	}
	if (!d.in || kernel_global_init(argv[0], &err)) {
		fprintf(stderr, "kernel-driver: %s\n", err.msg);
		return 1;
	}
	rc = run_all(&d);
	for (int i = 0; i < d.n_in; i++)
		free(d.in[i].data);
	free(d.in);
	kernel_global_shutdown();
	return rc < 0 ? 1 : rc;
}
