#include "engine/shardenv.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Family results: found (0), absent (1), or a usage error (negative). */
#define ABSENT 1

/* Parses a decimal in [0, max] from a variable; -1 if it is not one. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int bad_var(struct vherr *err, const char *name, const char *value)
{
	return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
			 "--shard auto: %s='%s' is not a non-negative integer", name, value);
}

/* Reads a required variable as an integer (absent or bad: a usage error). */
static int need_u64(const char *name, uint64_t max, uint64_t *out, struct vherr *err)
{
	const char *v = getenv(name);

	if (!v)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE, "--shard auto: %s is not set",
				 name);
	return parse_u64(v, max, out) == 0 ? 0 : bad_var(err, name, v);
}

/* Checks index < count and a given count against the family's; fills out. */
static int settle(uint64_t index, uint64_t count, uint32_t given, struct shardenv *out,
		  struct vherr *err)
{
	if (count == 0 || count > UINT32_MAX)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--shard auto: member count %llu (%s) is out of range",
				 (unsigned long long)count, out->source);
	if (given && given != count)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--shard auto/%u: the environment says %llu members (%s)",
				 given, (unsigned long long)count, out->source);
	if (index >= count)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--shard auto: index %llu is not below the count %llu (%s)",
				 (unsigned long long)index, (unsigned long long)count,
				 out->source);
	out->index = (uint32_t)index;
	out->count = (uint32_t)count;
	return 0;
}

static int from_valohai_env(uint32_t given, struct shardenv *out, struct vherr *err)
{
	const char *vi = getenv("VH_DIST_MEMBER_INDEX"), *vc = getenv("VH_DIST_MEMBER_COUNT");
	uint64_t index, count;
	int rc;

	if (!vi && !vc)
		return ABSENT;
	snprintf(out->source, sizeof(out->source),
		 "VH_DIST_MEMBER_INDEX=%.40s, VH_DIST_MEMBER_COUNT=%.40s", vi ? vi : "(unset)",
		 vc ? vc : "(unset)");
	if ((rc = need_u64("VH_DIST_MEMBER_INDEX", UINT32_MAX, &index, err)) < 0 ||
	    (rc = need_u64("VH_DIST_MEMBER_COUNT", UINT32_MAX, &count, err)) < 0)
		return rc;
	return settle(index, count, given, out, err);
}

/* One member id, and its value when every id is an integer (valohai-utils' ranking). */
struct member_id {
	const char *id;
	long long num;
};

static int cmp_member(const void *a, const void *b, void *numeric)
{
	const struct member_id *x = a, *y = b;

	if (*(int *)numeric)
		return x->num < y->num ? -1 : x->num > y->num;
	return strcmp(x->id, y->id);
}

/* The rank of self among the members' ids, as valohai-utils computes it. */
static int member_rank(json_t *members, const char *self, uint64_t *rank, struct vherr *err)
{
	size_t n = json_array_size(members);
	struct member_id *v = calloc(n ? n : 1, sizeof(*v));
	int numeric = 1, rc = vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
					"--shard auto: distributed.json: member_id '%s' is not "
					"among its members",
					self);

	if (!v)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, NULL);
	for (size_t i = 0; i < n; i++) {
		const char *id =
		    json_string_value(json_object_get(json_array_get(members, i), "member_id"));
		char *end;

		v[i].id = id ? id : "";
		errno = 0;
		v[i].num = strtoll(v[i].id, &end, 10);
		if (!*v[i].id || *end || errno)
			numeric = 0;
	}
	qsort_r(v, n, sizeof(*v), cmp_member, &numeric);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].id, self) == 0) {
			*rank = i;
			rc = 0;
			break;
		}
	free(v);
	return rc;
}

static int from_valohai_json(uint32_t given, struct shardenv *out, struct vherr *err)
{
	const char *dir = getenv("VH_CONFIG_DIR");
	char path[PATH_MAX];
	json_error_t je;
	json_t *root, *cfg, *members;
	const char *self;
	json_int_t count;
	uint64_t rank = 0;
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/distributed.json",
		 dir && *dir ? dir : SHARDENV_CONFIG_DIR);
	f = fopen(path, "r");
	if (!f && errno == ENOENT)
		return ABSENT;
	if (!f)
		return vherr_errno(err, errno, VHSTAGE_NONE, "--shard auto: cannot read '%s'",
				   path);
	root = json_loadf(f, 0, &je);
	fclose(f);
	snprintf(out->source, sizeof(out->source), "%.150s", path);
	cfg = json_object_get(root, "config");
	members = json_object_get(root, "members");
	self = json_string_value(json_object_get(cfg, "member_id"));
	count = json_integer_value(json_object_get(cfg, "required_count"));
	if (!root || !self || !json_is_integer(json_object_get(cfg, "required_count")) ||
	    !json_is_array(members))
		rc = vherr_set(
		    err, VHERR_USAGE, VHSTAGE_NONE,
		    "--shard auto: '%s' is not a Valohai distributed config (%s)", path,
		    root ? "config.member_id, config.required_count or members missing"
			 : je.text);
	else if ((json_int_t)json_array_size(members) != count)
		rc = vherr_set(
		    err, VHERR_USAGE, VHSTAGE_NONE,
		    "--shard auto: '%s' lists %zu members for a required_count of %lld", path,
		    json_array_size(members), (long long)count);
	else if ((rc = member_rank(members, self, &rank, err)) == 0)
		rc = settle(rank, count < 0 ? 0 : (uint64_t)count, given, out, err);
	json_decref(root);
	return rc;
}

static int from_kubernetes(uint32_t given, struct shardenv *out, struct vherr *err)
{
	const char *vi = getenv("JOB_COMPLETION_INDEX");
	uint64_t index;

	if (!vi)
		return ABSENT;
	snprintf(out->source, sizeof(out->source), "JOB_COMPLETION_INDEX=%.40s", vi);
	if (parse_u64(vi, UINT32_MAX, &index) != 0)
		return bad_var(err, "JOB_COMPLETION_INDEX", vi);
	if (!given)
		return vherr_set(
		    err, VHERR_USAGE, VHSTAGE_NONE,
		    "--shard auto: Kubernetes gives the index (JOB_COMPLETION_INDEX=%s) "
		    "but not the Job's completions: use --shard auto/N, or --shard "
		    "$(JOB_COMPLETION_INDEX)/N in the container's args",
		    vi);
	return settle(index, given, given, out, err);
}

static int from_slurm(uint32_t given, struct shardenv *out, struct vherr *err)
{
	const char *vid = getenv("SLURM_ARRAY_TASK_ID");
	uint64_t id, count, min, step = 1, max;
	int rc;

	if (!vid)
		return ABSENT;
	snprintf(out->source, sizeof(out->source),
		 "SLURM_ARRAY_TASK_ID=%.20s, SLURM_ARRAY_TASK_COUNT=%.20s, "
		 "SLURM_ARRAY_TASK_MIN=%.20s",
		 vid, getenv("SLURM_ARRAY_TASK_COUNT") ? getenv("SLURM_ARRAY_TASK_COUNT") : "",
		 getenv("SLURM_ARRAY_TASK_MIN") ? getenv("SLURM_ARRAY_TASK_MIN") : "");
	if ((rc = need_u64("SLURM_ARRAY_TASK_ID", UINT32_MAX, &id, err)) < 0 ||
	    (rc = need_u64("SLURM_ARRAY_TASK_COUNT", UINT32_MAX, &count, err)) < 0 ||
	    (rc = need_u64("SLURM_ARRAY_TASK_MIN", UINT32_MAX, &min, err)) < 0)
		return rc;
	if (getenv("SLURM_ARRAY_TASK_STEP") &&
	    (rc = need_u64("SLURM_ARRAY_TASK_STEP", UINT32_MAX, &step, err)) < 0)
		return rc;
	if (count == 0)
		return settle(0, count, given, out, err); /* refused there: out of range */
	if (step == 0)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--shard auto: SLURM_ARRAY_TASK_STEP is 0");
	max = min + (count - 1) * step;
	if (getenv("SLURM_ARRAY_TASK_MAX") &&
	    (rc = need_u64("SLURM_ARRAY_TASK_MAX", UINT32_MAX, &max, err)) < 0)
		return rc;
	if (id < min || (id - min) % step != 0 || max != min + (count - 1) * step)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "--shard auto: the Slurm array is not a regular range (%s, "
				 "step %llu, max %llu): give --shard I/N",
				 out->source, (unsigned long long)step,
				 (unsigned long long)max);
	return settle((id - min) / step, count, given, out, err);
}

int shardenv_detect(uint32_t count, struct shardenv *out, struct vherr *err)
{
	static int (*const families[])(uint32_t, struct shardenv *, struct vherr *) = {
	    from_valohai_env,
	    from_valohai_json,
	    from_kubernetes,
	    from_slurm,
	};

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(families) / sizeof(*families); i++) {
		int rc = families[i](count, out, err);

		if (rc != ABSENT)
			return rc;
	}
	return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
			 "--shard auto: no member index in the environment (Valohai "
			 "VH_DIST_MEMBER_INDEX/VH_DIST_MEMBER_COUNT or %s/distributed.json, "
			 "Kubernetes JOB_COMPLETION_INDEX, Slurm SLURM_ARRAY_TASK_ID): give "
			 "--shard I/N",
			 getenv("VH_CONFIG_DIR") && *getenv("VH_CONFIG_DIR")
			     ? getenv("VH_CONFIG_DIR")
			     : SHARDENV_CONFIG_DIR);
}
