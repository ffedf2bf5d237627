#include "io/dirsink.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* How a commit makes a name appear without replacing what is there. */
enum publish_mode { PUBLISH_RENAME2, PUBLISH_LINK, PUBLISH_CREATE };

struct dirsink {
	int dirfd;           /* set at creation */
	int live_upload;     /* set at creation */
	long pid;            /* set at creation: temporary names carry it */
	atomic_ulong serial; /* temporary-name counter */
	atomic_int mode;     /* enum publish_mode: steps down once the filesystem says no */
};

/* Creates every directory of relpath's parent under dirfd ("a/b/c.jpg" → a, a/b). */
static int make_parents(int dirfd, const char *relpath)
{
	char path[PATH_MAX];
	size_t n = strlen(relpath);

	if (n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, relpath, n + 1);
	for (char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(dirfd, path, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int dirsink_open(const char *outputs_dir, int live_upload, struct dirsink **out,
		 struct vherr *err)
{
	struct dirsink *s;
	int rc = mkdir_p(outputs_dir);

	*out = NULL;
	if (rc < 0)
		return vherr_errno(err, -rc, VHSTAGE_WRITE, "cannot create outputs dir '%s'",
				   outputs_dir);
	s = calloc(1, sizeof(*s));
	if (!s)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WRITE, NULL);
	s->dirfd = open(outputs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		rc = vherr_errno(err, errno, VHSTAGE_WRITE, "cannot open outputs dir '%s'",
				 outputs_dir);
		free(s);
		return rc;
	}
	s->live_upload = live_upload;
	s->pid = (long)getpid();
	*out = s;
	return 0;
}

int dirsink_dirfd(const struct dirsink *s)
{
	return s->dirfd;
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Builds "dir/.vhprep-tmp.PID.N" beside relout. */
static int temp_name(struct dirsink *s, const char *relout, char *buf, size_t size)
{
	const char *slash = strrchr(relout, '/');
	int dirlen = slash ? (int)(slash - relout + 1) : 0;
	int n = snprintf(buf, size, "%.*s" DIRSINK_TMP_MARK "%ld.%lu", dirlen, relout, s->pid,
			 atomic_fetch_add(&s->serial, 1));

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int write_temp(struct dirsink *s, const char *tmp, const char *relout,
		      const uint8_t *data, size_t len)
{
	int fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	int rc;

	if (fd < 0 && errno == ENOENT) {
		rc = make_parents(s->dirfd, relout);
		if (rc < 0)
			return rc;
		fd = openat(s->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	}
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* Whether renameat2 said the filesystem lacks RENAME_NOREPLACE (not that it failed). */
static int no_rename2(int errnum)
{
	return errnum == EINVAL || errnum == ENOSYS || errnum == EOPNOTSUPP;
}

/* Whether link(2) said the filesystem has no hard links. */
static int no_links(int errnum)
{
	return errnum == EPERM || errnum == ENOSYS || errnum == EOPNOTSUPP;
}

/* Links tmp as relout (EEXIST if taken) and drops the temporary name. */
static int publish_link(struct dirsink *s, const char *tmp, const char *relout)
{
	if (linkat(s->dirfd, tmp, s->dirfd, relout, 0) != 0)
		return -errno;
	unlinkat(s->dirfd, tmp, 0);
	return 0;
}

/* Claims relout with an exclusive create, then renames tmp onto that empty file. */
static int publish_create(struct dirsink *s, const char *tmp, const char *relout)
{
	int fd = openat(s->dirfd, relout, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0)
		return -errno;
	close(fd);
	if (renameat(s->dirfd, tmp, s->dirfd, relout) != 0) {
		int rc = -errno;

		unlinkat(s->dirfd, relout, 0);
		return rc;
	}
	return 0;
}

/* Makes tmp visible as relout without replacing anything, stepping down to the next
 * mode when the filesystem does not support one. */
static int publish(struct dirsink *s, const char *tmp, const char *relout)
{
	int mode = atomic_load(&s->mode), rc = -EINVAL;

	if (mode == PUBLISH_RENAME2) {
		rc = renameat2(s->dirfd, tmp, s->dirfd, relout, RENAME_NOREPLACE) == 0 ? 0 : -errno;
		if (rc == 0 || !no_rename2(-rc))
			return rc;
		atomic_store(&s->mode, mode = PUBLISH_LINK);
	}
	if (mode == PUBLISH_LINK) {
		rc = publish_link(s, tmp, relout);
		if (rc == 0 || !no_links(-rc))
			return rc;
		atomic_store(&s->mode, PUBLISH_CREATE);
	}
	return publish_create(s, tmp, relout);
}

/* Read-only only after the rename: Valohai uploads a file the moment it turns read-only,
 * and must never see the temporary name. */
static int make_read_only(struct dirsink *s, const char *relout)
{
	if (fchmodat(s->dirfd, relout, 0444, 0) != 0) {
		int rc = -errno;

		unlinkat(s->dirfd, relout, 0);
		return rc;
	}
	return 0;
}

int dirsink_stage(struct dirsink *s, const char *relout, const uint8_t *data, size_t len,
		  struct dirsink_staged *st, struct vherr *err)
{
	int rc = temp_name(s, relout, st->tmp, sizeof(st->tmp));

	st->len = len;
	if (rc == 0)
		rc = write_temp(s, st->tmp, relout, data, len);
	if (rc == 0)
		return 0;
	dirsink_discard(s, st);
	return vherr_errno(err, -rc, VHSTAGE_WRITE, "cannot write '%s'", relout);
}

int dirsink_commit(struct dirsink *s, struct dirsink_staged *st, const char *relout,
		   struct vherr *err)
{
	int rc = publish(s, st->tmp, relout);

	if (rc == 0 && s->live_upload)
		rc = make_read_only(s, relout);
	if (rc == 0) {
		st->tmp[0] = '\0';
		return 0;
	}
	dirsink_discard(s, st);
	if (rc == -EEXIST)
		return vherr_set(err, VHERR_EXISTS, VHSTAGE_WRITE,
				 "output '%s' already exists and is not one vhprep recorded",
				 relout);
	return vherr_errno(err, -rc, VHSTAGE_WRITE, "cannot write '%s'", relout);
}

void dirsink_discard(struct dirsink *s, struct dirsink_staged *st)
{
	if (st->tmp[0])
		unlinkat(s->dirfd, st->tmp, 0);
	st->tmp[0] = '\0';
}

int dirsink_remove(struct dirsink *s, const char *relout, struct vherr *err)
{
	if (unlinkat(s->dirfd, relout, 0) != 0 && errno != ENOENT)
		return vherr_errno(err, errno, VHSTAGE_WRITE, "cannot replace '%s'", relout);
	return 0;
}

int dirsink_write(struct dirsink *s, const char *relout, const uint8_t *data, size_t len,
		  struct vherr *err)
{
	struct dirsink_staged st;
	int rc = dirsink_stage(s, relout, data, len, &st, err);

	return rc ? rc : dirsink_commit(s, &st, relout, err);
}

void dirsink_free(struct dirsink *s)
{
	if (!s)
		return;
	close(s->dirfd);
	free(s);
}

/* Whether extension e (no dot) already names format ext. */
static int same_format(const char *e, const char *ext)
{
	if (strcasecmp(e, ext) == 0)
		return 1;
	if (strcmp(ext, "jpg") == 0)
		return strcasecmp(e, "jpeg") == 0 || strcasecmp(e, "jpe") == 0;
	return 0;
}

int dirsink_output_name(const char *prefix, const char *relpath, const char *ext, char *buf,
			size_t size)
{
	const char *base = strrchr(relpath, '/');
	const char *dot = strrchr(base ? base + 1 : relpath, '.');
	int stem, n;

	base = base ? base + 1 : relpath;
	if (dot == base) /* ".hidden" has no extension */
		dot = NULL;
	if (dot && same_format(dot + 1, ext))
		n = snprintf(buf, size, "%s%s%s", prefix, *prefix ? "/" : "", relpath);
	else {
		stem = dot ? (int)(dot - relpath) : (int)strlen(relpath);
		n = snprintf(buf, size, "%s%s%.*s.%s", prefix, *prefix ? "/" : "", stem, relpath,
			     ext);
	}
	return n < 0 || (size_t)n >= size ? -1 : 0;
}
