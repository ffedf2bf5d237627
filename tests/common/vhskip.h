/* vhskip: what a test does when a component it needs is missing (header only).
 *
 * Criterion reports a skipped test (cr_skip) to ctest as passed, so a CI machine without
 * nfs-ganesha, FUSE, nginx or root privileges would run "green" with whole features
 * untested. tests/run.sh exports VHPREP_CI=1: there every component is installed
 * (.ci/install-deps.sh) and the suite runs as root, so a missing one is a broken CI
 * machine and the test FAILS with the reason. Outside CI (a developer's laptop, a build
 * without root) the test is skipped, and says so on stderr with the reason.
 *
 * Use only for the environment (servers, tools, privileges, kernel features), never to
 * step around a result of the code under test. */
#ifndef VHPREP_TESTS_VHSKIP_H
#define VHPREP_TESTS_VHSKIP_H

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whether this run is CI's (VHPREP_CI set to anything but "" or "0"). */
static inline int vht_in_ci(void)
{
	const char *ci = getenv("VHPREP_CI");

	return ci && *ci && strcmp(ci, "0") != 0;
}

/* Ends the current test because a component it needs is missing (printf-style reason):
 * a failure under VHPREP_CI, otherwise a skip announced on stderr. Does not return. */
#define vht_missing(...) vht_missing_at(__FILE__, __LINE__, __VA_ARGS__)

__attribute__((format(printf, 3, 4), noreturn)) static inline void
vht_missing_at(const char *file, int line, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (vht_in_ci())
		cr_assert_fail("%s:%d: component missing in CI (VHPREP_CI=1): %s", file, line,
			       why);
	fprintf(stderr, "*** SKIPPED (counted as passed by ctest) %s:%d: %s\n", file, line,
		why);
	cr_skip_test("%s", why);
	abort(); /* not reached: cr_skip_test ends the test */
}

#endif
