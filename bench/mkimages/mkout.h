/* mkout: writing generated files under the output root. */
#ifndef VHPREP_BENCH_MKOUT_H
#define VHPREP_BENCH_MKOUT_H

#include <stddef.h>

/* Creates `dir` and its missing parents (mode 0755). Returns 0 or -errno. Any thread. */
int mkout_mkdirs(const char *dir);

/* Writes len bytes to root/relpath (created or truncated, 0644), creating parent folders.
 * Returns 0, or -errno with "cannot write 'PATH': reason" in err. Any thread. */
int mkout_write(const char *root, const char *relpath, const void *data, size_t len, char *err,
		size_t errlen);

#endif
