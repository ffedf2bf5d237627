/* mkplan: the presets. See mkplan.h. */
#include "mkplan.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mkbad.h"
#include "mkencode.h"
#include "mkrng.h"

#define MKPLAN_MAX_FILES 100000000L

/* The sample's fixed head: every format variant, the extreme sizes, awkward names. */
static const struct mkplan_special {
	const char *relpath;
	enum mkencode_kind kind;
	int width, height; /* upright */
} mkplan_specials[] = {
    {"portraits/tall portrait 1500x2000.jpg", MKENCODE_JPEG, 1500, 2000},
    {"landscapes/panorama_2000x250.jpg", MKENCODE_JPEG, 2000, 250},
    {"misc/strip_96x1600.png", MKENCODE_PNG, 96, 1600},
    {"misc/tiny_64x48.jpg", MKENCODE_JPEG, 64, 48},
    {"large/big_2000x1500.jpg", MKENCODE_JPEG, 2000, 1500},
    {"phone/IMG_0006.jpg", MKENCODE_JPEG_ORIENT6, 900, 1200},
    {"phone/IMG_0008.jpg", MKENCODE_JPEG_ORIENT8, 600, 800},
    {"print/cmyk poster.jpg", MKENCODE_JPEG_CMYK, 800, 600},
    {"print/display-p3.jpg", MKENCODE_JPEG_P3, 640, 480},
    {"graphics/logo-rgba.png", MKENCODE_PNG_RGBA, 400, 400},
    {"scans/scan-16bit.png", MKENCODE_PNG16, 800, 1000},
    {"scans/greyscale.png", MKENCODE_PNG_GREY, 600, 800},
    {"web/banner.webp", MKENCODE_WEBP, 1200, 300},
    {"archive/old-scan.tif", MKENCODE_TIFF, 1000, 750},
    {"holiday photos/beach day 01.jpg", MKENCODE_JPEG, 1024, 768},
    {"caf\xc3\xa9/\xc3\x9cn\xc3\xaf"
     "c\xc3\xb8"
     "d\xc3\xa9 \xe5\x86\x99\xe7\x9c\x9f.jpg",
     MKENCODE_JPEG, 640, 427},
    {"progressive/progressive.jpg", MKENCODE_JPEG_PROGRESSIVE, 800, 533},
    {"camera/DSC_0017.JPG", MKENCODE_JPEG, 1600, 1067},
    {"root-level.jpg", MKENCODE_JPEG, 500, 375},
};
#define MKPLAN_NSPECIALS ((long)(sizeof(mkplan_specials) / sizeof(mkplan_specials[0])))

/* The sample's random tail: mostly JPEG, as a real photo collection is. */
static const struct mkplan_mix {
	enum mkencode_kind kind;
	int weight;
} mkplan_mix[] = {
    {MKENCODE_JPEG, 70},	{MKENCODE_JPEG_PROGRESSIVE, 3},
    {MKENCODE_JPEG_ORIENT6, 3}, {MKENCODE_JPEG_ORIENT8, 1},
    {MKENCODE_PNG, 6},		{MKENCODE_PNG_RGBA, 4},
    {MKENCODE_PNG_GREY, 3},	{MKENCODE_PNG16, 1},
    {MKENCODE_WEBP, 6},		{MKENCODE_TIFF, 3},
};

static const char *const mkplan_folders[] = {
    "animals/cats",
    "animals/dogs",
    "animals/birds/garden",
    "landscapes",
    "landscapes/mountains/alps",
    "city/night",
    "city/day",
    "people",
    "food",
    "vehicles/cars",
    "vehicles/bikes",
    "macro",
    "misc",
    "",
};

static const int mkplan_aspects[][2] = {
    {4, 3}, {3, 4}, {3, 2}, {2, 3}, {16, 9}, {9, 16}, {1, 1}, {5, 4}, {21, 9},
};

#define MKPLAN_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

uint64_t mkplan_salt(const char *preset)
{
	uint64_t h = 1469598103934665603ULL;

	for (const char *p = preset; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

static struct mkjob *mkplan_alloc(struct mkplan *plan, long n)
{
	plan->jobs = g_new0(struct mkjob, n);
	plan->n = (size_t)n;
	return plan->jobs;
}

static enum mkencode_kind mkplan_pick_kind(uint64_t *rng)
{
	int total = 0, r;

	for (int i = 0; i < MKPLAN_COUNT(mkplan_mix); i++)
		total += mkplan_mix[i].weight;
	r = mkrng_range(rng, 0, total - 1);
	for (int i = 0; i < MKPLAN_COUNT(mkplan_mix); i++) {
		if (r < mkplan_mix[i].weight)
			return mkplan_mix[i].kind;
		r -= mkplan_mix[i].weight;
	}
	return MKENCODE_JPEG;
}

/* Long side log-uniform in 64..2000, a common aspect ratio, short side at least 48. */
static void mkplan_pick_size(uint64_t *rng, int *w, int *h)
{
	int a = mkrng_range(rng, 0, MKPLAN_COUNT(mkplan_aspects) - 1);
	double ln = exp(log(64.0) + mkrng_unit(rng) * (log(2000.0) - log(64.0)));
	int aw = mkplan_aspects[a][0], ah = mkplan_aspects[a][1];
	int longside = (int)ln, shortside = (int)(ln * MIN(aw, ah) / MAX(aw, ah));

	shortside = MAX(48, shortside);
	longside = MAX(longside, shortside);
	*w = aw >= ah ? longside : shortside;
	*h = aw >= ah ? shortside : longside;
}

/* folder/stem.ext; one name in 20 has spaces, parentheses or non-ASCII letters. */
static char *mkplan_sample_name(uint64_t *rng, long i, enum mkencode_kind kind)
{
	const char *folder =
	    mkplan_folders[mkrng_range(rng, 0, MKPLAN_COUNT(mkplan_folders) - 1)];
	const char *sep = *folder ? "/" : "";
	const char *ext = mkencode_ext(kind);
	int style = mkrng_range(rng, 0, 59);

	if (kind == MKENCODE_JPEG && style < 3)
		ext = ".jpeg";
	else if (kind == MKENCODE_JPEG && style < 5)
		ext = ".JPG";
	switch (style) {
	case 5:
	case 6:
		return g_strdup_printf("%s%sIMG %05ld (copy)%s", folder, sep, i, ext);
	case 7:
		return g_strdup_printf("%s%sn\xc3\xa4kym\xc3\xa4-%05ld%s", folder, sep, i, ext);
	case 8:
		return g_strdup_printf("%s%s\xd1\x84\xd0\xbe\xd1\x82\xd0\xbe_%05ld%s", folder,
				       sep, i, ext);
	default:
		return g_strdup_printf("%s%simg_%05ld%s", folder, sep, i, ext);
	}
}

static void mkplan_sample_job(const struct mkplan_opts *o, uint64_t salt, long i,
			      struct mkjob *job)
{
	uint64_t rng = mkrng_seed(o->seed, salt, (uint64_t)i);

	job->type = MKJOB_IMAGE;
	job->seed = mkrng_next(&rng);
	job->quality = o->quality ? o->quality : mkrng_range(&rng, 75, 95);
	if (i < MKPLAN_NSPECIALS) {
		const struct mkplan_special *s = &mkplan_specials[i];

		job->relpath = g_strdup(s->relpath);
		job->kind = s->kind;
		job->width = s->width;
		job->height = s->height;
		return;
	}
	job->kind = mkplan_pick_kind(&rng);
	mkplan_pick_size(&rng, &job->width, &job->height);
	job->relpath = mkplan_sample_name(&rng, i, job->kind);
}

static int mkplan_sample(struct mkplan *plan, const struct mkplan_opts *o, long n)
{
	struct mkjob *jobs = mkplan_alloc(plan, n);
	uint64_t salt = mkplan_salt("sample");

	for (long i = 0; i < n; i++)
		mkplan_sample_job(o, salt, i, &jobs[i]);
	return 0;
}

static int mkplan_photos(struct mkplan *plan, const struct mkplan_opts *o, long n)
{
	struct mkjob *jobs = mkplan_alloc(plan, n);
	uint64_t salt = mkplan_salt("photos");
	long per_dir = o->per_dir ? o->per_dir : 1300;

	for (long i = 0; i < n; i++) {
		jobs[i].relpath = g_strdup_printf("n%04ld/img_%06ld.jpg", i / per_dir, i);
		jobs[i].type = MKJOB_IMAGE;
		jobs[i].kind = MKENCODE_JPEG;
		jobs[i].width = o->width ? o->width : 500;
		jobs[i].height = o->height ? o->height : 375;
		jobs[i].quality = o->quality ? o->quality : 90;
		jobs[i].seed = mkrng_seed(o->seed, salt, (uint64_t)i);
	}
	return 0;
}

static int mkplan_bad(struct mkplan *plan, const struct mkplan_opts *o)
{
	struct mkjob *jobs = mkplan_alloc(plan, MKBAD__COUNT);
	uint64_t salt = mkplan_salt("bad");

	for (int i = 0; i < MKBAD__COUNT; i++) {
		jobs[i].relpath = g_strdup(mkbad_file((enum mkbad_kind)i));
		jobs[i].type = MKJOB_BAD;
		jobs[i].kind = i;
		/* every control picture is the same one: corrupt and truncated files are
		 * damaged copies of good.jpg */
		jobs[i].seed = mkrng_seed(o->seed, salt, 0);
	}
	return 0;
}

/* flat: n files in one folder; wide: dirs x files. Tiny JPEGs come from a shared pool. */
static void mkplan_walk_job(struct mkplan *plan, const struct mkplan_opts *o, long i,
			    char *relpath)
{
	struct mkjob *job = &plan->jobs[i];

	job->relpath = relpath;
	job->type = o->empty ? MKJOB_EMPTY : MKJOB_POOL;
	job->kind = (int)(i % plan->pool_size);
}

static int mkplan_walk(struct mkplan *plan, const struct mkplan_opts *o, long dirs, long files)
{
	long n = dirs * files;

	mkplan_alloc(plan, n);
	plan->pool_size = (int)MIN(64, n);
	plan->pool_width = 64;
	plan->pool_height = 48;
	for (long i = 0; i < n; i++) {
		char *rel = dirs > 1
				? g_strdup_printf("d%04ld/f%06ld.jpg", i / files, i % files)
				: g_strdup_printf("f%07ld.jpg", i);

		mkplan_walk_job(plan, o, i, rel);
	}
	return 0;
}

static long mkplan_default_count(const char *preset)
{
	if (!strcmp(preset, "photos"))
		return 1000;
	if (!strcmp(preset, "sample"))
		return 300;
	return 10000;
}

int mkplan_build(struct mkplan *plan, const struct mkplan_opts *o, char *err, size_t errlen)
{
	long n = o->count ? o->count : mkplan_default_count(o->preset);

	memset(plan, 0, sizeof(*plan));
	if (n < 1 || n > MKPLAN_MAX_FILES) {
		snprintf(err, errlen, "invalid --count %ld: expected 1..%ld", n,
			 MKPLAN_MAX_FILES);
		return -1;
	}
	if (!strcmp(o->preset, "photos"))
		return mkplan_photos(plan, o, n);
	if (!strcmp(o->preset, "sample"))
		return mkplan_sample(plan, o, n);
	if (!strcmp(o->preset, "bad"))
		return mkplan_bad(plan, o);
	if (!strcmp(o->preset, "flat"))
		return mkplan_walk(plan, o, 1, n);
	if (!strcmp(o->preset, "wide")) {
		long dirs = o->dirs ? o->dirs : 100;
		long files =
		    o->files ? o->files : (o->count ? (o->count + dirs - 1) / dirs : 100);

		if (dirs * files > MKPLAN_MAX_FILES) {
			snprintf(err, errlen, "too many files: %ld dirs x %ld files", dirs,
				 files);
			return -1;
		}
		return mkplan_walk(plan, o, dirs, files);
	}
	snprintf(err, errlen, "unknown preset '%s' (photos, sample, bad, flat, wide)",
		 o->preset);
	return -1;
}

void mkplan_release(struct mkplan *plan)
{
	for (size_t i = 0; i < plan->n; i++)
		g_free(plan->jobs[i].relpath);
	g_free(plan->jobs);
	memset(plan, 0, sizeof(*plan));
}
