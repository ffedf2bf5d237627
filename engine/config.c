#include "engine/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/memlimit.h"
#include "io/jsonname.h"
#include "engine/shardenv.h"

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kernel.mode = GEOMETRY_STRETCH;
	cfg->kernel.autorotate = 1;
	cfg->kernel.format = KFMT_KEEP;
	cfg->kernel.quality = KERNEL_QUALITY_DEFAULT;
	cfg->kernel.subsample = KSUB_420;
	cfg->kernel.max_pixels = 100000000;
	cfg->kernel.fail_on = KFAIL_TRUNCATED;
	cfg->kernel.choice = KERNEL_AUTO;
	cfg->max_size = UINT64_MAX;
	cfg->max_file_size = CONFIG_MAX_FILE_SIZE;
	cfg->sample = 1.0;
	cfg->shard_count = 1;
	cfg->prefix = "processed_images";
	cfg->io_depth = 64;
	cfg->walkers = 16;
	cfg->nfs_connections = 4;
	cfg->nfs_timeout = 10.0;
	cfg->read_budget = CONFIG_READ_BUDGET;
	cfg->metrics_interval = 5.0;
	cfg->progress = -1;
	cfg->per_host = 16;
	cfg->http_timeout = 60.0;
	cfg->retries = 3;
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
	free(cfg->dataset_excludes.v);
	for (int i = 0; i < cfg->owned.n; i++)
		free((char *)cfg->owned.v[i]);
	free(cfg->owned.v);
	memset(&cfg->owned, 0, sizeof(cfg->owned));
	memset(&cfg->includes, 0, sizeof(cfg->includes));
	memset(&cfg->excludes, 0, sizeof(cfg->excludes));
	memset(&cfg->datasets, 0, sizeof(cfg->datasets));
	memset(&cfg->aliases, 0, sizeof(cfg->aliases));
	memset(&cfg->tags, 0, sizeof(cfg->tags));
	memset(&cfg->dataset_excludes, 0, sizeof(cfg->dataset_excludes));
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

int config_parse_shard_auto(const char *s, uint32_t *count)
{
	long n;

	if (strcmp(s, "auto") == 0) {
		*count = 0;
		return 0;
	}
	if (strncmp(s, "auto/", 5) != 0 || config_parse_long(s + 5, 1, UINT32_MAX, &n) != 0)
		return -1;
	*count = (uint32_t)n;
	return 0;
}

char *config_expand_shard(const char *s, uint32_t index, uint32_t count)
{
	static const char mark[] = "{shard}";
	char part[32], *out, *o;
	size_t n = 0, plen = (size_t)snprintf(part, sizeof(part), "%uof%u", index, count);

	for (const char *p = strstr(s, mark); p; p = strstr(p + 1, mark))
		n++;
	out = malloc(strlen(s) + n * plen + 1);
	if (!out)
		return NULL;
	for (o = out; *s;) {
		if (strncmp(s, mark, sizeof(mark) - 1) == 0) {
			memcpy(o, part, plen);
			o += plen;
			s += sizeof(mark) - 1;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	return out;
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

/* Appends component c (not "" or ".") to the absolute path buf, or drops buf's last
 * component for "..". Returns 0, or -1 if the result does not fit. */
static int push_component(char *buf, size_t size, const char *c, size_t n)
{
	size_t len = strlen(buf);

	if (n == 2 && c[0] == '.' && c[1] == '.') {
		char *slash = strrchr(buf, '/');

		if (slash)
			slash[slash == buf ? 1 : 0] = '\0';
		return 0;
	}
	if (len + 1 + n >= size)
		return -1;
	if (len > 1)
		buf[len++] = '/';
	memcpy(buf + len, c, n);
	buf[len + n] = '\0';
	return 0;
}

/* Resolves path as it is, or would be once created: the longest existing prefix through
 * realpath(3) (symlinks, "..", the working directory), the rest component by component.
 * Returns 0 with the absolute result in out, or -1. */
static int resolve_path(const char *path, char *out, size_t size)
{
	char abs[PATH_MAX], probe[PATH_MAX];
	size_t keep;
	int n;

	if (path[0] == '/')
		n = snprintf(abs, sizeof(abs), "%s", path);
	else if (getcwd(probe, sizeof(probe)))
		n = snprintf(abs, sizeof(abs), "%s/%s", probe, path);
	else
		return -1;
	if (n < 0 || (size_t)n >= sizeof(abs))
		return -1;
	/* the longest prefix that exists: cut at each '/' from the right */
	for (keep = strlen(abs); keep > 0; keep--) {
		if (keep < strlen(abs) && abs[keep] != '/')
			continue;
		memcpy(probe, abs, keep);
		probe[keep] = '\0';
		if (realpath(probe, out) && strlen(out) < size)
			break;
	}
	if (keep == 0)
		snprintf(out, size, "/");
	for (const char *p = abs + keep; *p;) {
		size_t len;

		while (*p == '/')
			p++;
		len = strcspn(p, "/");
		if (len && !(len == 1 && p[0] == '.') && push_component(out, size, p, len) < 0)
			return -1;
		p += len;
	}
	return 0;
}

/* Whether resolved path a is b or lies under b. */
static int resolved_within(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (strcmp(b, "/") == 0)
		return 1;
	return strncmp(a, b, n) == 0 && (a[n] == '/' || a[n] == '\0');
}

/* Refuses a source and an outputs dir (or its prefix dir) that overlap in either
 * direction once symlinks, ".." and the working directory are resolved: vhprep never
 * writes into its source, and never reads what it writes. */
static int check_overlap(const struct config *cfg, struct vherr *err)
{
	char src[PATH_MAX], out[PATH_MAX], pre[PATH_MAX], joined[PATH_MAX];
	int n = snprintf(joined, sizeof(joined), "%s/%s", cfg->outputs, cfg->prefix);

	if (strstr(cfg->source, "://")) /* nfs:// and other URLs: nothing local to overlap */
		return 0;
	if (resolve_path(cfg->source, src, sizeof(src)) < 0 ||
	    resolve_path(cfg->outputs, out, sizeof(out)) < 0 || n < 0 ||
	    (size_t)n >= sizeof(joined) || resolve_path(joined, pre, sizeof(pre)) < 0)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "cannot resolve the source '%s' or the outputs dir '%s'",
				 cfg->source, cfg->outputs);
	if (resolved_within(src, out) && strcmp(src, out) != 0)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "the source '%s' is inside the outputs dir '%s': vhprep would "
				 "overwrite what it reads (choose another --outputs)",
				 cfg->source, cfg->outputs);
	if (resolved_within(out, src) || resolved_within(pre, src))
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "outputs dir '%s' is inside the source '%s': vhprep never "
				 "writes to its source",
				 cfg->outputs, cfg->source);
	return 0;
}

/* Valohai's outputs root: $VH_OUTPUTS_DIR, else /valohai/outputs when it exists, else
 * NULL (not inside Valohai). */
static const char *valohai_outputs_root(void)
{
	struct stat st;
	const char *env = getenv("VH_OUTPUTS_DIR");

	if (env && *env)
		return env;
	if (stat("/valohai/outputs", &st) == 0 && S_ISDIR(st.st_mode))
		return "/valohai/outputs";
	return NULL;
}

/* The outputs dir when -o is not given: Valohai's outputs root, else ./outputs. */
static const char *default_outputs(void)
{
	const char *root = valohai_outputs_root();

	return root ? root : "outputs";
}

/* An outputs dir below Valohai's outputs root (-o $VH_OUTPUTS_DIR/train): Valohai reads
 * valohai.metadata.jsonl only at the root, with paths relative to it, so the run's
 * outputs dir becomes the root and the sub-directory goes in front of --prefix (the
 * images land where they would have; the records at the root, where several vhprep
 * commands of one step append to the one file). */
static int finish_outputs_root(struct config *cfg, struct vherr *err)
{
	const char *root = valohai_outputs_root();
	char r[PATH_MAX], o[PATH_MAX], *prefix;
	size_t n;

	if (!root || resolve_path(root, r, sizeof(r)) < 0 ||
	    resolve_path(cfg->outputs, o, sizeof(o)) < 0 || strcmp(r, "/") == 0 ||
	    !resolved_within(o, r) || strcmp(o, r) == 0)
		return 0;
	n = strlen(r) + 1;
	if (asprintf(&prefix, "%s%s%s", o + n, *cfg->prefix ? "/" : "", cfg->prefix) < 0)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, NULL);
	if (strlist_add(&cfg->owned, prefix) != 0) {
		free(prefix);
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, NULL);
	}
	if (!cfg->quiet)
		fprintf(stderr,
			"vhprep: '%s' is inside the Valohai outputs root '%s': records go to "
			"the root, images to %s/%s\n",
			cfg->outputs, root, root, prefix);
	cfg->outputs = root;
	cfg->prefix = prefix;
	return 0;
}

/* --pack and its options. */
static int finish_pack(const struct config *cfg, struct vherr *err)
{
	if (!cfg->pack && (cfg->shard_size || cfg->zstd_level))
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--shard-size and --zstd-level need --pack");
	if (cfg->pack && cfg->zstd_level && cfg->pack_format != PACK_TAR_ZST)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--zstd-level needs --pack tar.zst");
	if (cfg->pack && cfg->overwrite)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--overwrite does not go with --pack: published shards are "
				 "never rewritten (choose a fresh --outputs)");
	return 0;
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

/* The dataset binding goes into JSON as it is: its words must be UTF-8. */
static int check_binding_text(const struct config *cfg, struct vherr *err)
{
	const struct strlist *lists[] = {&cfg->datasets, &cfg->aliases, &cfg->tags};
	const char *words[] = {cfg->dataset_from};

	for (size_t l = 0; l < sizeof(lists) / sizeof(*lists); l++)
		for (int i = 0; i < lists[l]->n; i++)
			if (!jsonname_valid(lists[l]->v[i]))
				return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
						 "'%s' is not valid UTF-8: dataset names, "
						 "aliases and tags must be",
						 lists[l]->v[i]);
	for (size_t w = 0; w < sizeof(words) / sizeof(*words); w++)
		if (words[w] && !jsonname_valid(words[w]))
			return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
					 "'%s' is not valid UTF-8", words[w]);
	return 0;
}

/* The --urls block: the list replaces SOURCE. */
static int finish_urls(struct config *cfg, struct vherr *err)
{
	if (!cfg->urls) {
		if (cfg->url_column || cfg->key_column)
			return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
					 "--url-column and --key-column need --urls");
		return 0;
	}
	if (cfg->source)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--urls replaces SOURCE: unexpected '%s'", cfg->source);
	if (cfg->files_from)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--files-from does not go with --urls");
	cfg->source = cfg->urls;
	return 0;
}

/* --shard auto: this member's index and the count from the environment (an explicit
 * --shard I/N wins), said on stderr; then {shard} in each --dataset. */
static int finish_shard(struct config *cfg, struct vherr *err)
{
	struct shardenv se;
	int rc;

	if (cfg->shard_auto && !cfg->shard_explicit) {
		rc = shardenv_detect(cfg->shard_auto_count, &se, err);
		if (rc < 0)
			return rc;
		cfg->shard_index = se.index;
		cfg->shard_count = se.count;
		if (!cfg->quiet)
			fprintf(stderr, "vhprep: --shard auto: shard %u/%u from %s\n", se.index,
				se.count, se.source);
	}
	for (int i = 0; i < cfg->datasets.n; i++) {
		char *d;

		if (!strstr(cfg->datasets.v[i], "{shard}"))
			continue;
		d = config_expand_shard(cfg->datasets.v[i], cfg->shard_index, cfg->shard_count);
		if (!d || strlist_add(&cfg->owned, d) != 0) {
			free(d);
			return vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, NULL);
		}
		cfg->datasets.v[i] = d;
	}
	return 0;
}

/* --memory (or the container's limit) and the read budget that follows from it. */
static int finish_memory(struct config *cfg, struct vherr *err)
{
	struct memlimit m;

	if (cfg->memory) {
		cfg->memory_from = "--memory";
	} else {
		memlimit_detect("/sys/fs/cgroup", "/proc/self/cgroup", &m);
		cfg->memory = m.bytes;
		cfg->memory_from = memlimit_from_name(m.from);
	}
	if (cfg->memory < CONFIG_MEMORY_MIN)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "%s gives %llu MiB of memory: vhprep needs at least %llu MiB",
				 cfg->memory_from, (unsigned long long)(cfg->memory >> 20),
				 (unsigned long long)(CONFIG_MEMORY_MIN >> 20));
	if (!cfg->read_budget_set) {
		cfg->read_budget = cfg->memory / 4;
		if (cfg->read_budget > CONFIG_READ_BUDGET)
			cfg->read_budget = CONFIG_READ_BUDGET;
	} else if (cfg->read_budget > cfg->memory / 2) {
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--read-budget %llu MiB is more than half of the memory (%llu MiB, "
				 "from %s): raise --memory or lower --read-budget",
				 (unsigned long long)(cfg->read_budget >> 20),
				 (unsigned long long)(cfg->memory >> 20), cfg->memory_from);
	}
	return 0;
}

int config_finish(struct config *cfg, struct vherr *err)
{
	int rc;

	if (finish_urls(cfg, err) < 0)
		return -VHERR_USAGE;
	if (!cfg->source)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE, "missing SOURCE (try --help)");
	if (!cfg->outputs)
		cfg->outputs = default_outputs();
	if (cfg->threads <= 0)
		cfg->threads = omp_get_num_procs();
	if (cfg->min_size > cfg->max_size)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--min-size is larger than --max-size");
	cfg->select_by_type = !cfg->files_from && !cfg->urls;
	if ((rc = finish_memory(cfg, err)) < 0)
		return rc;
	if (check_prefix(cfg->prefix) != 0)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--prefix '%s' must be a relative path without '..'",
				 cfg->prefix);
	if (cfg->kernel.resize_w == 0 && cfg->kernel.mode != GEOMETRY_STRETCH)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE, "--resize-mode needs --resize");
	if (check_binding_text(cfg, err) < 0)
		return -VHERR_USAGE;
	if (cfg->since_checksum && !cfg->since)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE, "--since-checksum needs --since");
	if (cfg->dataset_excludes.n && !cfg->dataset_from)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--dataset-exclude needs --dataset-from (the version it leaves "
				 "files of)");
	if ((cfg->aliases.n || cfg->dataset_from || cfg->packaging) && !cfg->datasets.n)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--dataset-alias, --dataset-from and --packaging need --dataset");
	if ((rc = finish_shard(cfg, err)) < 0 || (rc = finish_pack(cfg, err)) < 0 ||
	    (rc = finish_outputs_root(cfg, err)) < 0)
		return rc;
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
	if (cfg->urls) /* a list of URLs: nothing local to overlap */
		return 0;
	return check_overlap(cfg, err);
}

void config_binding(const struct config *cfg, struct metadata_binding *b)
{
	memset(b, 0, sizeof(*b));
	b->datasets = cfg->datasets.v;
	b->ndatasets = cfg->datasets.n;
	b->from = cfg->dataset_from;
	b->aliases = cfg->aliases.v;
	b->naliases = cfg->aliases.n;
	b->packaging = cfg->packaging;
	b->tags = cfg->tags.v;
	b->ntags = cfg->tags.n;
}
