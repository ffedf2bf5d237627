/* mkout: writing generated files. See mkout.h. */
#include "mkout.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mkout_mkdirs(const char *dir)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static int mkout_write_fd(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mkout_write(const char *root, const char *relpath, const void *data, size_t len, char *err,
		size_t errlen)
{
	char path[PATH_MAX];
	char *slash;
	int fd, rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", root, relpath) >= sizeof(path)) {
		snprintf(err, errlen, "cannot write '%s/%s': path too long", root, relpath);
		return -ENAMETOOLONG;
	}
	slash = strrchr(path, '/');
	*slash = '\0';
	rc = mkout_mkdirs(path);
	*slash = '/';
	fd = rc ? rc : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = rc ? rc : -errno;
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(-rc));
		return rc;
	}
	rc = mkout_write_fd(fd, data, len);
	if (close(fd) && !rc)
		rc = -errno;
	if (rc)
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(-rc));
	return rc;
}
