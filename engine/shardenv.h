/* shardenv: `--shard auto`, this member's index and the member count as the scheduler
 * that started the process gives them, so N executions of one command split a job
 * without overlap and with no coordinator of ours.
 *
 * Families, tried in this order (the first one present decides; one half-set is an error,
 * never a fall-through, so a typo in a job spec cannot silently make every member
 * process everything):
 *  1. Valohai distributed task: VH_DIST_MEMBER_INDEX (zero-based) and
 *     VH_DIST_MEMBER_COUNT (docs.valohai.com, "System Environment Variables").
 *  2. Valohai's $VH_CONFIG_DIR/distributed.json (default /valohai/config), written on
 *     every member once the whole group is up: {"config": {"group_name", "member_id",
 *     "required_count"}, "members": [{"member_id", ...}], "self": {...}}. The count is
 *     config.required_count; the index is the rank valohai-utils gives member_id
 *     (valohai/internals/distributed_config/utils.py, compute_member_id_ranks): the
 *     position among the members' ids sorted as integers when all of them are integers,
 *     else as strings. The members listed must number required_count.
 *  3. Kubernetes Indexed Job: JOB_COMPLETION_INDEX (zero-based). Kubernetes exposes the
 *     index only (the batch.kubernetes.io/job-completion-index annotation, mirrored in
 *     that variable), not the Job's spec.completions, so the count must be given:
 *     `--shard auto/N`, or `--shard $(JOB_COMPLETION_INDEX)/N` in the container's args
 *     (Kubernetes expands $(VAR) there).
 *  4. Slurm job array: SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN
 *     (and SLURM_ARRAY_TASK_STEP, SLURM_ARRAY_TASK_MAX when set): index = (ID - MIN) /
 *     STEP. Array ids are often 1-based (--array=1-8) or stepped (--array=0-30:10); an
 *     irregular list (--array=1,2,9) has no such index, is refused, and needs --shard I/N.
 * `--shard auto/N` also checks N against a family's own count. */
#ifndef VHPREP_ENGINE_SHARDENV_H
#define VHPREP_ENGINE_SHARDENV_H

#include <stdint.h>

#include "common/vherr.h"

#define SHARDENV_CONFIG_DIR "/valohai/config"

struct shardenv {
	uint32_t index, count; /* 0 <= index < count */
	char source[160]; /* what gave them: "VH_DIST_MEMBER_INDEX=2, VH_DIST_MEMBER_COUNT=4" */
};

/* Reads this member's index and the member count from the environment (getenv) and, for
 * family 2, the file. count: N of `--shard auto/N`, or 0 when the environment must give
 * it. Returns 0 and fills *out, or -VHERR_USAGE with err saying what is missing or
 * inconsistent (the caller exits 2). Not thread-safe (getenv). */
int shardenv_detect(uint32_t count, struct shardenv *out, struct vherr *err);

#endif
