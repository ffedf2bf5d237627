/* lfsbdi: the kernel readahead window of a mounted filesystem (its backing device info).
 * FUSE starts at the VM default (128 KiB reads) and its INIT reply can only lower that, so
 * NFS-like 1 MiB reads need /sys/class/bdi/MAJ:MIN/read_ahead_kb raised after INIT. */
#ifndef VHPREP_BENCH_LFSBDI_H
#define VHPREP_BENCH_LFSBDI_H

#include <stddef.h>

/* Finds the filesystem most recently mounted at mountpoint (a realpath) in
 * /proc/self/mountinfo and writes its read_ahead_kb path into path[len]. Returns 0, or a
 * negative errno with a message in err. */
int lfsbdi_find(const char *mountpoint, char *path, size_t len, char *err, size_t errlen);
/* Writes kb to the read_ahead_kb file path. Returns 0, or a negative errno with a message
 * in err. Any thread. */
int lfsbdi_set_readahead(const char *path, unsigned kb, char *err, size_t errlen);

#endif
