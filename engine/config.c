#include "engine/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kernel.mode = GEOMETRY_STRETCH;
	cfg->kernel.autorotate = 1;
	cfg->kernel.format = KFMT_KEEP;
	cfg->kernel.quality = 90;
	cfg->kernel.max_pixels = 100000000;
	cfg->kernel.fail_on = KFAIL_TRUNCATED;
	cfg->kernel.choice = KERNEL_AUTO;
	cfg->max_size = UINT64_MAX;
	cfg->sample = 1.0;
	cfg->shard_count = 1;
	cfg->prefix = "processed_images";
	cfg->io_depth = 64;
	cfg->walkers = 16;
	cfg->nfs_connections = 4;
	cfg->nfs_timeout = 10.0;
	cfg->read_budget = 256ULL << 20;
	cfg->metrics_interval = 5.0;
	cfg->progress = -1;
	cfg->preview = 24; /* PREVIEW_DEFAULT */
}

void config_release(struct config *cfg)
{
	if (!cfg)
		return;
	free(cfg->includes.v);
	free(cfg->excludes.v);
	free(cfg->datasets.v);
	free(cfg->aliases.v);
	free(cfg->tags.v);
	memset(&cfg->includes, 0, sizeof(cfg->includes));
	memset(&cfg->excludes, 0, sizeof(cfg->excludes));
	memset(&cfg->datasets, 0, sizeof(cfg->datasets));
	memset(&cfg->aliases, 0, sizeof(cfg->aliases));
	memset(&cfg->tags, 0, sizeof(cfg->tags));
}

int strlist_add(struct strlist *l, const char *s)
{
	const char **v = realloc(l->v, (size_t)(l->n + 1) * sizeof(*v));

	if (!v)
		return -1;
	v[l->n++] = s;
	l->v = v;
	return 0;
}

int config_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgt";
	char *end;
	double v;
	const char *u;

	errno = 0;
	if (!isdigit((unsigned char)*s) && *s != '.')
		return -1;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	if (*end) {
		u = strchr(units, tolower((unsigned char)*end));
		if (!u || !*u)
			return -1;
		v *= pow(1024.0, (double)(u - units + 1));
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
		if (*end)
			return -1;
	}
	if (v >= 18446744073709551615.0)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

int config_parse_resize(const char *s, int *w, int *h)
{
	char buf[32], *x;
	long a, b;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	x = strchr(buf, 'x');
	if (!x)
		x = strchr(buf, 'X');
	if (x)
		*x = '\0';
	if (config_parse_long(buf, 1, 65535, &a) != 0)
		return -1;
	b = a;
	if (x && config_parse_long(x + 1, 1, 65535, &b) != 0)
		return -1;
	*w = (int)a;
	*h = (int)b;
	return 0;
}

int config_parse_shard(const char *s, uint32_t *index, uint32_t *count)
{
	char buf[48], *slash;
	long i, n;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	if (config_parse_long(buf, 0, UINT32_MAX - 1L, &i) != 0 ||
	    config_parse_long(slash + 1, 1, UINT32_MAX, &n) != 0 || i >= n)
		return -1;
	*index = (uint32_t)i;
	*count = (uint32_t)n;
	return 0;
}

int config_parse_fraction(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0.0 && v <= 1.0))
		return -1;
	*out = v;
	return 0;
}

/* Whether path is (or would be created) inside dir: resolves the longest existing
 * prefix of path, so nothing is created to find out. */
static int path_inside(const char *path, const char *dir)
{
	char real_dir[PATH_MAX], probe[PATH_MAX], real[PATH_MAX];
	size_t n;

	if (!realpath(dir, real_dir) || strlen(path) >= sizeof(probe))
		return 0;
	strcpy(probe, path);
	while (!realpath(probe, real)) {
		char *slash = strrchr(probe, '/');

		if (slash == probe) { /* "/name": its parent is the root */
			probe[1] = '\0';
			continue;
		}
		if (!slash) {
			if (!getcwd(real, sizeof(real)))
				return 0;
			break;
		}
		*slash = '\0';
	}
	n = strlen(real_dir);
	if (strcmp(real_dir, "/") == 0)
		return 1;
	return strncmp(real, real_dir, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

static const char *default_outputs(void)
{
	struct stat st;
	const char *env = getenv("VH_OUTPUTS_DIR");

	if (env && *env)
		return env;
	if (stat("/valohai/outputs", &st) == 0 && S_ISDIR(st.st_mode))
		return "/valohai/outputs";
	return "outputs";
}

static int check_prefix(const char *prefix)
{
	if (prefix[0] == '/')
		return -1;
	for (const char *p = prefix; *p;) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return -1;
		p += n + (end ? 1 : 0);
	}
	return 0;
}

int config_finish(struct config *cfg, struct vherr *err)
{
	if (!cfg->source)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE, "missing SOURCE (try --help)");
	if (!cfg->outputs)
		cfg->outputs = default_outputs();
	if (cfg->threads <= 0)
		cfg->threads = omp_get_num_procs();
	if (cfg->min_size > cfg->max_size)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--min-size is larger than --max-size");
	if (check_prefix(cfg->prefix) != 0)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--prefix '%s' must be a relative path without '..'",
				 cfg->prefix);
	if (cfg->kernel.resize_w == 0 && cfg->kernel.mode != GEOMETRY_STRETCH)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE, "--resize-mode needs --resize");
	if ((cfg->aliases.n || cfg->dataset_from || cfg->packaging) && !cfg->datasets.n)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--dataset-alias, --dataset-from and --packaging need --dataset");
	for (int i = 0; i < cfg->datasets.n; i++)
		if (strncmp(cfg->datasets.v[i], "dataset://", 10) != 0 ||
		    cfg->datasets.v[i][10] == '/' || !strchr(cfg->datasets.v[i] + 10, '/') ||
		    strchr(cfg->datasets.v[i] + 10, '/')[1] == '\0')
			return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
					 "--dataset '%s' is not of the form "
					 "dataset://NAME/VERSION",
					 cfg->datasets.v[i]);
	if (cfg->preview_in_dataset && (!cfg->preview || !cfg->datasets.n))
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--preview-in-dataset needs --dataset and a --preview above 0");
	if (path_inside(cfg->outputs, cfg->source))
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "outputs dir '%s' is inside the source '%s': vhprep never "
				 "writes to its source",
				 cfg->outputs, cfg->source);
	return 0;
}

void config_binding(const struct config *cfg, struct metadata_binding *b)
{
	b->datasets = cfg->datasets.v;
	b->ndatasets = cfg->datasets.n;
	b->from = cfg->dataset_from;
	b->aliases = cfg->aliases.v;
	b->naliases = cfg->aliases.n;
	b->packaging = cfg->packaging;
	b->tags = cfg->tags.v;
	b->ntags = cfg->tags.n;
}
