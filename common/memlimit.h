/* memlimit: how much memory this process may use: the container's limit (cgroup v2
 * memory.max, cgroup v1 memory.limit_in_bytes, the smallest along the path up to the
 * hierarchy's root) or, with no limit, the machine's physical memory. vhprep's default
 * --memory (issue 13): a Valohai container is killed at its cgroup limit, whatever the
 * host has. */
#ifndef VHPREP_COMMON_MEMLIMIT_H
#define VHPREP_COMMON_MEMLIMIT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* Where a limit came from. */
enum memlimit_from {
	MEMLIMIT_CGROUP2,  /* memory.max */
	MEMLIMIT_CGROUP1,  /* memory.limit_in_bytes */
	MEMLIMIT_PHYSICAL, /* no cgroup limit: physical memory */
};

struct memlimit {
	uint64_t bytes;
	enum memlimit_from from;
	char file[PATH_MAX + 32]; /* the cgroup file read ("" for physical memory) */
};

/* Fills *out with this process's memory limit, reading the cgroup files under root
 * ("/sys/fs/cgroup" in production; tests pass a tree of their own) and proc_cgroup
 * ("/proc/self/cgroup"). Never fails: with nothing readable it gives physical memory.
 * Any thread; reads files, allocates nothing. */
void memlimit_detect(const char *root, const char *proc_cgroup, struct memlimit *out);
/* Returns a short name of out->from: "cgroup v2", "cgroup v1" or "physical memory". */
const char *memlimit_from_name(enum memlimit_from from);

#endif
