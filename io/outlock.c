#include "io/outlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct outlock {
	int dirfd; /* set at creation, borrowed */
	int fd;	   /* set at creation: the locked file */
};

/* The pid another holder wrote into the lock file, or 0 if unreadable. */
static long holder_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* Whether dirfd/OUTLOCK_FILE still names the inode open as fd. */
static int still_linked(int dirfd, int fd)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 &&
	       fstatat(dirfd, OUTLOCK_FILE, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int write_pid(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		return -errno;
	return 0;
}

/* One try: 1 if fd is locked and linked, 0 if the file was replaced under us (retry),
 * or a negative code with err set. */
static int try_lock(int dirfd, const char *dir_name, int fd, struct vherr *err)
{
	long pid;

	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return still_linked(dirfd, fd);
	if (errno != EWOULDBLOCK)
		return vherr_errno(err, errno, VHSTAGE_WRITE, "cannot lock '%s/%s'", dir_name,
				   OUTLOCK_FILE);
	pid = holder_pid(fd);
	if (pid > 0)
		return vherr_set(err, VHERR_EXISTS, VHSTAGE_NONE,
				 "another vhprep (pid %ld) is writing to '%s'", pid, dir_name);
	return vherr_set(err, VHERR_EXISTS, VHSTAGE_NONE, "another vhprep is writing to '%s'",
			 dir_name);
}

int outlock_acquire(int dirfd, const char *dir_name, struct outlock **out, struct vherr *err)
{
	struct outlock *l;
	int fd = -1, rc = 0;

	*out = NULL;
	for (int tries = 0; tries < 100 && rc == 0; tries++) {
		if (fd >= 0)
			close(fd);
		fd = openat(dirfd, OUTLOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			    0644);
		if (fd < 0)
			return vherr_errno(err, errno, VHSTAGE_WRITE, "cannot write to '%s'",
					   dir_name);
		rc = try_lock(dirfd, dir_name, fd, err);
	}
	if (rc == 0)
		rc = vherr_set(err, VHERR_EXISTS, VHSTAGE_NONE,
			       "cannot lock '%s/%s': it keeps being replaced", dir_name,
			       OUTLOCK_FILE);
	if (rc > 0 && (rc = write_pid(fd)) < 0)
		rc = vherr_errno(err, -rc, VHSTAGE_WRITE, "cannot write to '%s'", dir_name);
	if (rc < 0 || !(l = calloc(1, sizeof(*l)))) {
		close(fd);
		return rc < 0 ? rc : vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, NULL);
	}
	l->dirfd = dirfd;
	l->fd = fd;
	*out = l;
	return 0;
}

void outlock_release(struct outlock *l)
{
	if (!l)
		return;
	/* unlink while still holding the lock: a waiter then finds a new file or an
	 * unlinked one, and still_linked sends it round again */
	unlinkat(l->dirfd, OUTLOCK_FILE, 0);
	close(l->fd);
	free(l);
}
