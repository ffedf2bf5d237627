/* lfsinitfix: libfuse before 3.17 accepts FUSE_CAP_PARALLEL_DIROPS but never sends
 * FUSE_PARALLEL_DIROPS to the kernel (fixed upstream by libfuse c9905341, #861), so the
 * kernel serialises lookups and readdirs of one directory under a per-directory mutex: 32
 * first lookups in one directory cost 32 round trips, where an NFS client overlaps them.
 * These FUSE device I/O hooks (for fuse_session_custom_io) add the flag to the INIT reply
 * when the kernel offered it; every other message passes through untouched. */
#ifndef VHPREP_BENCH_LFSINITFIX_H
#define VHPREP_BENCH_LFSINITFIX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct lfsinitfix {
	_Atomic uint64_t init_unique; /* the INIT request's id once read */
	atomic_int pending;           /* 1 from reading INIT (offering the flag) to its reply */
};

/* Returns 1 if the linked libfuse needs the fix (older than 3.17). */
int lfsinitfix_needed(void);
/* Clears f. Call before the session loop starts. */
void lfsinitfix_init(struct lfsinitfix *f);
/* read(2) of the FUSE device fd that notes the INIT request. Any thread. */
ssize_t lfsinitfix_read(struct lfsinitfix *f, int fd, void *buf, size_t len);
/* writev(2) to the FUSE device fd that adds FUSE_PARALLEL_DIROPS to the INIT reply.
 * Any thread. */
ssize_t lfsinitfix_writev(struct lfsinitfix *f, int fd, const struct iovec *iov, int count);

#endif
