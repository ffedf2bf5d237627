/* outlock: one writer per outputs dir. A run holds an exclusive flock(2) on
 * OUTLOCK_FILE in the outputs root from before it reads or writes any record until it
 * has written its last one; a second vhprep on the same dir is refused at once (no
 * waiting) with the pid of the holder, which the lock file holds as text.
 *
 * The lock file is removed when the holder releases it. A waiter that opened the file
 * just before it was removed would lock an unlinked inode, so outlock_acquire checks,
 * once it holds the lock, that the path still names the inode it locked, and retries
 * if not. flock on an NFS mount is a POSIX byte-range lock on the server (Linux >= 2.6.12),
 * so two hosts sharing one outputs dir are kept apart too. A process that dies (even by
 * SIGKILL) drops its lock with its last descriptor: no stale lock ever blocks a rerun. */
#ifndef VHPREP_IO_OUTLOCK_H
#define VHPREP_IO_OUTLOCK_H

#include "common/vherr.h"

#define OUTLOCK_FILE ".vhprep.lock"

struct outlock;

/* Takes the lock of the outputs dir open as dirfd (borrowed; dir_name only names it in
 * messages). Returns 0 and *out (caller owns), -VHERR_EXISTS with err saying "another
 * vhprep (pid N) is writing to DIR" when another process holds it, or another negative
 * code (cannot create the lock file: err names the dir). */
int outlock_acquire(int dirfd, const char *dir_name, struct outlock **out, struct vherr *err);
/* Removes the lock file and drops the lock; l may be NULL. */
void outlock_release(struct outlock *l);

#endif
