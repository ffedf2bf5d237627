/* engine/shardenv: --shard auto from Valohai, Kubernetes and Slurm environments. Each
 * Criterion test runs in its own process, so setenv/unsetenv stay in the test. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine/shardenv.h"
#include "tests/common/vhtest.h"

static char cfgdir[PATH_MAX];

static const char *const vars[] = {
    "VH_DIST_MEMBER_INDEX", "VH_DIST_MEMBER_COUNT", "VH_CONFIG_DIR",
    "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID",  "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP",
};

/* No family set, and a config dir of our own (empty: no distributed.json). */
static void setup(void)
{
	for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++)
		unsetenv(vars[i]);
	vht_tmpdir(cfgdir, sizeof(cfgdir));
	setenv("VH_CONFIG_DIR", cfgdir, 1);
}

static void teardown(void)
{
	vht_rm_rf(cfgdir);
}

TestSuite(shardenv, .init = setup, .fini = teardown);

static void expect(uint32_t given, uint32_t index, uint32_t count, const char *source_has)
{
	struct shardenv se;
	struct vherr err = {0};

	cr_assert_eq(shardenv_detect(given, &se, &err), 0, "refused: %s", err.msg);
	cr_assert_eq(se.index, index, "index %u, want %u (%s)", se.index, index, se.source);
	cr_assert_eq(se.count, count, "count %u, want %u (%s)", se.count, count, se.source);
	cr_assert_not_null(strstr(se.source, source_has), "source '%s' lacks '%s'", se.source,
			   source_has);
}

static void refused(uint32_t given, const char *msg_has)
{
	struct shardenv se;
	struct vherr err = {0};

	cr_assert_eq(shardenv_detect(given, &se, &err), -VHERR_USAGE, "accepted: %u/%u from %s",
		     se.index, se.count, se.source);
	cr_assert_not_null(strstr(err.msg, msg_has), "message '%s' lacks '%s'", err.msg,
			   msg_has);
}

Test(shardenv, nothing_set_is_a_usage_error)
{
	refused(0, "no member index in the environment");
	refused(4, "give --shard I/N");
}

Test(shardenv, valohai_variables)
{
	setenv("VH_DIST_MEMBER_INDEX", "2", 1);
	setenv("VH_DIST_MEMBER_COUNT", "4", 1);
	expect(0, 2, 4, "VH_DIST_MEMBER_INDEX=2");
	expect(4, 2, 4, "VH_DIST_MEMBER_COUNT=4");
	refused(5, "the environment says 4 members");
	setenv("VH_DIST_MEMBER_INDEX", "4", 1);
	refused(0, "not below the count");
	setenv("VH_DIST_MEMBER_INDEX", "x1", 1);
	refused(0, "not a non-negative integer");
	setenv("VH_DIST_MEMBER_INDEX", "-1", 1);
	refused(0, "not a non-negative integer");
	setenv("VH_DIST_MEMBER_INDEX", "1", 1);
	setenv("VH_DIST_MEMBER_COUNT", "0", 1);
	refused(0, "out of range");
	unsetenv("VH_DIST_MEMBER_COUNT");
	refused(0, "VH_DIST_MEMBER_COUNT is not set");
}

static void write_config(const char *self, const char *const *ids, int n, int required)
{
	char path[PATH_MAX + 32], *text;
	size_t len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/distributed.json", cfgdir);
	f = open_memstream(&text, &len);
	fprintf(f,
		"{\"config\": {\"group_name\": \"task-1\", \"member_id\": \"%s\", "
		"\"required_count\": %d}, \"members\": [",
		self, required);
	for (int i = 0; i < n; i++)
		fprintf(f,
			"%s{\"member_id\": \"%s\", \"announce_time\": \"2022-05-24T10:36:01\", "
			"\"identity\": \"m%d\", \"job_id\": \"exec-%d\", \"network\": "
			"{\"exposed_ports\": {}, \"local_ips\": [\"10.0.0.%d\"], "
			"\"public_ips\": []}}",
			i ? ", " : "", ids[i], i, i, i + 1);
	fprintf(f, "], \"self\": {\"member_id\": \"%s\"}}\n", self);
	fclose(f);
	vht_write(path, text, len);
	free(text);
}

Test(shardenv, valohai_distributed_json_ranks_like_valohai_utils)
{
	static const char *const plain[] = {"0", "1", "2"};
	static const char *const numeric[] = {"30", "2000", "100"};
	static const char *const words[] = {"abc", "ghj", "def"};
	static const char *const mixed[] = {"10", "2", "x"};

	write_config("1", plain, 3, 3);
	expect(0, 1, 3, "distributed.json");
	write_config("100", numeric, 3, 3); /* as integers: 30 < 100 < 2000 */
	expect(0, 1, 3, "distributed.json");
	write_config("ghj", words, 3, 3);
	expect(3, 2, 3, "distributed.json");
	write_config("2", mixed, 3, 3); /* one is not an integer: as strings, "10" < "2" */
	expect(0, 1, 3, "distributed.json");
}

Test(shardenv, valohai_distributed_json_inconsistent_or_damaged)
{
	static const char *const ids[] = {"0", "1"};
	char path[PATH_MAX + 32];

	write_config("1", ids, 2, 3);
	refused(0, "lists 2 members for a required_count of 3");
	write_config("7", ids, 2, 2);
	refused(0, "member_id '7' is not among its members");
	snprintf(path, sizeof(path), "%s/distributed.json", cfgdir);
	vht_write(path, "{\"config\": ", 11);
	refused(0, "is not a Valohai distributed config");
	vht_write(path, "{\"config\": {}}", 14);
	refused(0, "config.member_id, config.required_count or members missing");
}

Test(shardenv, valohai_variables_win_over_the_file_and_other_families)
{
	static const char *const ids[] = {"0", "1", "2"};

	write_config("0", ids, 3, 3);
	setenv("JOB_COMPLETION_INDEX", "5", 1);
	setenv("SLURM_ARRAY_TASK_ID", "9", 1);
	setenv("VH_DIST_MEMBER_INDEX", "2", 1);
	setenv("VH_DIST_MEMBER_COUNT", "3", 1);
	expect(0, 2, 3, "VH_DIST_MEMBER_INDEX");
	unsetenv("VH_DIST_MEMBER_INDEX");
	unsetenv("VH_DIST_MEMBER_COUNT");
	expect(0, 0, 3, "distributed.json");
}

Test(shardenv, kubernetes_needs_the_count)
{
	setenv("JOB_COMPLETION_INDEX", "4", 1);
	refused(0, "--shard auto/N");
	expect(5, 4, 5, "JOB_COMPLETION_INDEX=4");
	refused(4, "not below the count");
	setenv("JOB_COMPLETION_INDEX", "", 1);
	refused(5, "not a non-negative integer");
}

static void slurm(const char *id, const char *count, const char *min, const char *max,
		  const char *step)
{
	setenv("SLURM_ARRAY_TASK_ID", id, 1);
	setenv("SLURM_ARRAY_TASK_COUNT", count, 1);
	setenv("SLURM_ARRAY_TASK_MIN", min, 1);
	if (max)
		setenv("SLURM_ARRAY_TASK_MAX", max, 1);
	else
		unsetenv("SLURM_ARRAY_TASK_MAX");
	if (step)
		setenv("SLURM_ARRAY_TASK_STEP", step, 1);
	else
		unsetenv("SLURM_ARRAY_TASK_STEP");
}

Test(shardenv, slurm_arrays)
{
	slurm("3", "8", "1", "8", NULL); /* --array=1-8 */
	expect(0, 2, 8, "SLURM_ARRAY_TASK_ID=3");
	slurm("0", "8", "0", NULL, NULL); /* --array=0-7, no MAX given */
	expect(8, 0, 8, "SLURM_ARRAY_TASK_MIN=0");
	slurm("20", "4", "0", "30", "10"); /* --array=0-30:10 */
	expect(0, 2, 4, "SLURM");
	slurm("9", "3", "1", "9", "1"); /* --array=1,2,9: not a range */
	refused(0, "not a regular range");
	slurm("25", "4", "0", "30", "10"); /* not on the step */
	refused(0, "not a regular range");
	slurm("0", "4", "1", "4", NULL); /* below MIN */
	refused(0, "not a regular range");
	slurm("2", "4", "1", "4", NULL);
	refused(5, "the environment says 4 members");
	slurm("2", "4", "1", "4", "0");
	refused(0, "SLURM_ARRAY_TASK_STEP is 0");
	unsetenv("SLURM_ARRAY_TASK_COUNT");
	refused(0, "SLURM_ARRAY_TASK_COUNT is not set");
}
