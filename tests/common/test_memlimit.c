#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "common/memlimit.h"
#include "tests/common/vhtest.h"

static char dir[PATH_MAX];

static void setup(void)
{
	vht_tmpdir(dir, sizeof(dir));
}

static void teardown(void)
{
	vht_rm_rf(dir);
}

TestSuite(memlimit, .init = setup, .fini = teardown);

static uint64_t physical(void)
{
	return (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void detect(struct memlimit *m)
{
	char root[PATH_MAX], proc[PATH_MAX];

	memlimit_detect(vht_join(root, sizeof(root), dir, "fs"),
			vht_join(proc, sizeof(proc), dir, "cgroup"), m);
}

Test(memlimit, nothing_readable_is_physical_memory)
{
	struct memlimit m;

	detect(&m);
	cr_assert_eq(m.from, MEMLIMIT_PHYSICAL);
	cr_assert_eq(m.bytes, physical());
	cr_assert_str_eq(m.file, "");
	cr_assert_str_eq(memlimit_from_name(m.from), "physical memory");
}

/* v2: the smallest memory.max on the way up; "max" is no limit. */
Test(memlimit, cgroup2_smallest_on_the_path)
{
	struct memlimit m;

	vht_put(dir, "cgroup", "0::/a/b\n");
	vht_put(dir, "fs/memory.max", "max\n");
	vht_put(dir, "fs/a/memory.max", "3221225472\n");
	vht_put(dir, "fs/a/b/memory.max", "max\n");
	detect(&m);
	cr_assert_eq(m.from, MEMLIMIT_CGROUP2);
	cr_assert_eq(m.bytes, 3221225472ULL);
	cr_assert_not_null(strstr(m.file, "fs/a/memory.max"), "%s", m.file);
	vht_put(dir, "fs/a/b/memory.max", "1073741824\n");
	detect(&m);
	cr_assert_eq(m.bytes, 1073741824ULL);
}

/* v1: the memory controller's line; LONG_MAX (page-aligned) is no limit. */
Test(memlimit, cgroup1_memory_controller)
{
	struct memlimit m;

	vht_put(dir, "cgroup", "5:cpu,cpuacct:/x\n4:memory:/job/42\n0::/\n");
	vht_put(dir, "fs/memory/memory.limit_in_bytes", "9223372036854771712\n");
	vht_put(dir, "fs/memory/job/memory.limit_in_bytes", "9223372036854771712\n");
	vht_put(dir, "fs/memory/job/42/memory.limit_in_bytes", "2147483648\n");
	detect(&m);
	cr_assert_eq(m.from, MEMLIMIT_CGROUP1);
	cr_assert_eq(m.bytes, 2147483648ULL);
	cr_assert_str_eq(memlimit_from_name(m.from), "cgroup v1");
	vht_put(dir, "fs/memory/job/42/memory.limit_in_bytes", "9223372036854771712\n");
	detect(&m);
	cr_assert_eq(m.from, MEMLIMIT_PHYSICAL, "unlimited at every level");
}

/* A cgroup namespace: /proc/self/cgroup names a path the mount does not show, the
 * container's own cgroup is the mount's root. */
Test(memlimit, namespace_root_is_read_when_the_path_is_absent)
{
	struct memlimit m;

	vht_put(dir, "cgroup", "0::/kubepods/pod1/c1\n");
	vht_put(dir, "fs/memory.max", "536870912\n");
	detect(&m);
	cr_assert_eq(m.from, MEMLIMIT_CGROUP2);
	cr_assert_eq(m.bytes, 536870912ULL);
}

/* A limit above the machine's memory is no limit at all. */
Test(memlimit, above_physical_is_physical)
{
	struct memlimit m;
	char big[32];

	snprintf(big, sizeof(big), "%llu\n", (unsigned long long)physical() * 2);
	vht_put(dir, "cgroup", "0::/\n");
	vht_put(dir, "fs/memory.max", big);
	detect(&m);
	cr_assert_eq(m.from, MEMLIMIT_PHYSICAL);
}

/* Damaged files are no limit, never a crash. */
Test(memlimit, garbage_is_ignored)
{
	struct memlimit m;

	vht_put(dir, "cgroup", "garbage\n::\n4:memory\n0::\n");
	vht_put(dir, "fs/memory.max", "lots\n");
	detect(&m);
	cr_assert_eq(m.from, MEMLIMIT_PHYSICAL);
}
