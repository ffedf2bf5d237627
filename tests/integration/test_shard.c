/* --shard auto: N members started by a scheduler (Valohai distributed task, its
 * distributed.json, a Kubernetes Indexed Job, a Slurm array) split one job: the union of
 * their outputs is one full run's, byte for byte, with no file in two members; and
 * --dataset's {shard} gives each member its own version. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

TestSuite(shard, .init = itest_setup, .fini = itest_teardown, .timeout = 280);

enum family { VALOHAI_ENV, VALOHAI_JSON, KUBERNETES, SLURM, NFAMILIES };

static const char *const family_var[] = {"VH_DIST_MEMBER_INDEX", "distributed.json",
					 "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"};

static void clear_schedulers(void)
{
	static const char *const vars[] = {
	    "VH_DIST_MEMBER_INDEX", "VH_DIST_MEMBER_COUNT", "VH_DIST_MEMBER_ID",
	    "JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID",  "SLURM_ARRAY_TASK_COUNT",
	    "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP",
	};
	char *cfg = itest_path("no-config");

	for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++)
		unsetenv(vars[i]);
	itest_mkdirs(cfg);
	setenv("VH_CONFIG_DIR", cfg, 1);
	free(cfg);
}

/* 40 images in a few folders, PNG and JPEG, mixed sizes. */
static char *make_tree(void)
{
	char *src = itest_path("src");

	for (int i = 0; i < 40; i++) {
		char *p = itest_fmt("%s/set%d/f%02d.%s", src, i % 4, i, i % 3 ? "jpg" : "png");

		itest_make_image(p, 24 + i % 9, 16 + i % 5, 3, (unsigned)i, 0);
		free(p);
	}
	return src;
}

/* A distributed.json as Valohai writes it, for member self of ids (listed in the order
 * given; ranks come from the ids sorted as integers). */
static char *write_distributed_json(int n, int self)
{
	char *dir = itest_fmt("%s/config-%d-%d", itest_root, n, self), *path, *text;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	fprintf(f,
		"{\"config\": {\"group_name\": \"task-x\", \"member_id\": \"%d\", "
		"\"required_count\": %d}, \"members\": [",
		10 * (self + 1), n);
	for (int k = n - 1; k >= 0; k--) /* listed backwards: the rank is not the order */
		fprintf(f,
			"{\"member_id\": \"%d\", \"announce_time\": \"2024-01-01T00:00:00\", "
			"\"identity\": \"m%d\", \"job_id\": \"exec-%d\", \"network\": "
			"{\"exposed_ports\": {}, \"local_ips\": [], \"public_ips\": []}}%s",
			10 * (k + 1), k, k, k ? ", " : "");
	fprintf(f, "], \"self\": {}}\n");
	fclose(f);
	path = itest_fmt("%s/distributed.json", dir);
	itest_write_file(path, text, len);
	free(path);
	free(text);
	return dir;
}

/* Sets the environment family gives member i of n; returns the --shard value to pass. */
static const char *enter_member(enum family fam, int i, int n, char *arg, size_t size)
{
	char v[32];

	clear_schedulers();
	snprintf(arg, size, "auto");
	switch (fam) {
	case VALOHAI_ENV:
		snprintf(v, sizeof(v), "%d", i);
		setenv("VH_DIST_MEMBER_INDEX", v, 1);
		snprintf(v, sizeof(v), "%d", n);
		setenv("VH_DIST_MEMBER_COUNT", v, 1);
		break;
	case VALOHAI_JSON: {
		char *dir = write_distributed_json(n, i);

		setenv("VH_CONFIG_DIR", dir, 1);
		free(dir);
		break;
	}
	case KUBERNETES: /* Kubernetes has no count: the job spec passes it */
		snprintf(v, sizeof(v), "%d", i);
		setenv("JOB_COMPLETION_INDEX", v, 1);
		snprintf(arg, size, "auto/%d", n);
		break;
	case SLURM: /* --array=1-(2n-1):2 */
		snprintf(v, sizeof(v), "%d", 1 + 2 * i);
		setenv("SLURM_ARRAY_TASK_ID", v, 1);
		snprintf(v, sizeof(v), "%d", n);
		setenv("SLURM_ARRAY_TASK_COUNT", v, 1);
		setenv("SLURM_ARRAY_TASK_MIN", "1", 1);
		setenv("SLURM_ARRAY_TASK_STEP", "2", 1);
		snprintf(v, sizeof(v), "%d", 1 + 2 * (n - 1));
		setenv("SLURM_ARRAY_TASK_MAX", v, 1);
		break;
	default:
		break;
	}
	return arg;
}

/* Runs vhprep on src into out with --dataset ...-part{shard} and the extra arguments;
 * returns the process (caller releases). */
static void run_vhprep(struct itest_proc *p, const char *src, const char *out,
		       const char *shard_arg)
{
	struct itest_argv a = {0};

	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "--no-progress");
	itest_argv_add(&a, "--metrics-interval");
	itest_argv_add(&a, "0");
	if (shard_arg) {
		itest_argv_add(&a, "--shard");
		itest_argv_add(&a, shard_arg);
	}
	itest_argv_add(&a, "--dataset");
	itest_argv_add(&a, "dataset://imgs/v1-part{shard}");
	itest_argv_add(&a, "-o");
	itest_argv_add(&a, out);
	itest_argv_add(&a, src);
	itest_vhprep_argv(p, &a);
	itest_argv_free(&a);
}

/* relpath -> sha256 of every file under out/processed_images. */
static json_t *outputs_of(const char *out)
{
	char *root = itest_fmt("%s/processed_images", out);
	struct itest_list l;
	json_t *m = json_object();

	itest_list_files(root, &l);
	for (size_t i = 0; i < l.n; i++) {
		char *p = itest_fmt("%s/%s", root, l.v[i]), hex[65];

		itest_sha256_file(p, hex);
		json_object_set_new(m, l.v[i], json_string(hex));
		free(p);
	}
	itest_list_free(&l);
	free(root);
	return m;
}

/* Every metadata line of out binds its file to dataset://imgs/v1-part<want>. */
static void expect_version(const char *out, const char *want)
{
	char *path = itest_fmt("%s/valohai.metadata.jsonl", out);
	char *uri = itest_fmt("dataset://imgs/v1-part%s", want);
	json_t *lines = itest_read_jsonl(path), *line;
	size_t k;

	cr_assert_gt(json_array_size(lines), 0);
	json_array_foreach(lines, k, line)
	{
		json_t *v = json_object_get(json_object_get(line, "metadata"),
					    "valohai.dataset-versions");
		json_t *first = json_array_get(v, 0);
		const char *got = json_is_string(first)
				      ? json_string_value(first)
				      : json_string_value(json_object_get(first, "uri"));

		cr_assert_str_eq(got ? got : "(none)", uri, "%s line %zu", path, k);
	}
	json_decref(lines);
	free(uri);
	free(path);
}

static void members_cover_one_run(enum family fam, const char *src, json_t *full)
{
	static const int counts[] = {1, 3, 7};

	for (size_t c = 0; c < sizeof(counts) / sizeof(*counts); c++) {
		int n = counts[c];
		json_t *seen = json_object();

		for (int i = 0; i < n; i++) {
			char arg[32], part[32], *out, *said;
			struct itest_proc p;
			json_t *mine, *sha;
			const char *rel;

			out = itest_fmt("%s/out-%d-%d-%d", itest_root, (int)fam, n, i);
			run_vhprep(&p, src, out, enter_member(fam, i, n, arg, sizeof(arg)));
			itest_assert_exit(&p, 0);
			said = itest_fmt("--shard auto: shard %d/%d from ", i, n);
			cr_assert_not_null(strstr(p.err, said), "stderr lacks '%s': %s", said,
					   p.err);
			cr_assert_not_null(strstr(p.err, family_var[fam]), "%s", p.err);
			snprintf(part, sizeof(part), "%dof%d", i, n);
			expect_version(out, part);
			mine = outputs_of(out);
			json_object_foreach(mine, rel, sha)
			{
				cr_assert_null(json_object_get(seen, rel),
					       "%s: '%s' is in two of %d members",
					       family_var[fam], rel, n);
				json_object_set(seen, rel, sha);
			}
			json_decref(mine);
			itest_proc_release(&p);
			free(said);
			free(out);
		}
		cr_assert(json_equal(seen, full),
			  "%s, %d members: the union (%zu files) is not the full run's (%zu)",
			  family_var[fam], n, json_object_size(seen), json_object_size(full));
		json_decref(seen);
	}
}

static json_t *full_run(const char *src)
{
	struct itest_proc p;
	char *out = itest_path("full");
	json_t *full;

	clear_schedulers();
	run_vhprep(&p, src, out, NULL);
	itest_assert_exit(&p, 0);
	expect_version(out, "0of1");
	full = outputs_of(out);
	cr_assert_eq(json_object_size(full), 40);
	itest_proc_release(&p);
	free(out);
	return full;
}

/* The whole check for one family: a full run, then its members for N = 1, 3, 7. */
static void family_splits_the_job(enum family fam)
{
	char *src = make_tree();
	json_t *full = full_run(src);

	members_cover_one_run(fam, src, full);
	json_decref(full);
	free(src);
}

Test(shard, valohai_variables)
{
	family_splits_the_job(VALOHAI_ENV);
}

Test(shard, valohai_distributed_json)
{
	family_splits_the_job(VALOHAI_JSON);
}

Test(shard, kubernetes_indexed_job)
{
	family_splits_the_job(KUBERNETES);
}

Test(shard, slurm_array)
{
	family_splits_the_job(SLURM);
}

/* Exit 2, with the reason, when no scheduler says who this is; an explicit I/N wins. */
Test(shard, refusals_and_explicit_index)
{
	char *src = make_tree(), *out, arg[32];
	struct itest_proc p;
	json_t *a, *b;

	clear_schedulers();
	out = itest_path("none");
	run_vhprep(&p, src, out, "auto");
	itest_assert_exit(&p, 2);
	cr_assert_not_null(strstr(p.err, "no member index in the environment"), "%s", p.err);
	itest_proc_release(&p);
	free(out);

	enter_member(KUBERNETES, 1, 3, arg, sizeof(arg));
	out = itest_path("k8s-no-count");
	run_vhprep(&p, src, out, "auto");
	itest_assert_exit(&p, 2);
	cr_assert_not_null(strstr(p.err, "--shard auto/N"), "%s", p.err);
	itest_proc_release(&p);
	free(out);

	/* the environment says member 0 of 3; --shard 2/3 given too wins */
	enter_member(VALOHAI_ENV, 0, 3, arg, sizeof(arg));
	out = itest_path("explicit");
	{
		struct itest_argv av = {0};

		itest_argv_add(&av, itest_bin());
		itest_argv_add(&av, "-q");
		itest_argv_add(&av, "--shard");
		itest_argv_add(&av, "auto");
		itest_argv_add(&av, "--shard");
		itest_argv_add(&av, "2/3");
		itest_argv_add(&av, "-o");
		itest_argv_add(&av, out);
		itest_argv_add(&av, src);
		itest_vhprep_argv(&p, &av);
		itest_argv_free(&av);
	}
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	a = outputs_of(out);
	free(out);
	clear_schedulers();
	out = itest_path("plain-2of3");
	run_vhprep(&p, src, out, "2/3");
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	b = outputs_of(out);
	cr_assert(json_object_size(a) > 0 && json_equal(a, b), "--shard 2/3 did not win");
	json_decref(a);
	json_decref(b);
	free(out);
	free(src);
}
