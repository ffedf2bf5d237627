#include "io/appendlog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct appendlog {
	int fd;               /* set at creation */
	char *name;           /* set at creation, for messages */
	pthread_mutex_t lock; /* held for one write (and its undo) */
	uint64_t end;         /* under lock: the file's size, where the next line goes */
	atomic_size_t bytes;
	atomic_uint_least64_t lines;
};

int appendlog_open(int dirfd, const char *name, int truncate, struct appendlog **out,
		   struct vherr *err)
{
	int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
	struct appendlog *log = calloc(1, sizeof(*log));
	struct stat st;
	int rc;

	*out = NULL;
	if (!log || !(log->name = strdup(name))) {
		free(log);
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	}
	log->fd = openat(dirfd, name, flags, 0644);
	if (log->fd < 0 || fstat(log->fd, &st) != 0) {
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot open '%s'", name);
		if (log->fd >= 0)
			close(log->fd);
		free(log->name);
		free(log);
		return rc;
	}
	log->end = (uint64_t)st.st_size;
	pthread_mutex_init(&log->lock, NULL);
	*out = log;
	return 0;
}

/* One write of the whole line at log->end, undone on failure. Under log->lock. */
static int write_line(struct appendlog *log, const char *line, size_t len)
{
	ssize_t n;

	do
		n = write(log->fd, line, len);
	while (n < 0 && errno == EINTR);
	if (n >= 0 && (size_t)n == len) {
		log->end += len;
		return 0;
	}
	/* a short write means the device filled up part-way: cut back to the last
	 * whole line (after -1 too, which is harmless when nothing was written) */
	{
		int e = n < 0 ? errno : ENOSPC;

		while (ftruncate(log->fd, (off_t)log->end) != 0 && errno == EINTR)
			;
		return -e;
	}
}

int appendlog_append(struct appendlog *log, const char *line, size_t len, uint64_t *at,
		     struct vherr *err)
{
	uint64_t start;
	int rc;

	pthread_mutex_lock(&log->lock);
	start = log->end;
	rc = write_line(log, line, len);
	pthread_mutex_unlock(&log->lock);
	if (rc < 0)
		return vherr_errno(err, -rc, VHSTAGE_RECORD, "cannot write '%s'", log->name);
	if (at)
		*at = start;
	atomic_fetch_add(&log->bytes, len);
	atomic_fetch_add(&log->lines, 1);
	return 0;
}

int appendlog_write(struct appendlog *log, const char *line, size_t len, struct vherr *err)
{
	return appendlog_append(log, line, len, NULL, err);
}

int appendlog_write_json(struct appendlog *log, json_t *o, struct vherr *err)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	size_t n;
	char *line;
	int rc;

	if (!text)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	n = strlen(text);
	line = realloc(text, n + 2);
	if (!line) {
		free(text);
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	rc = appendlog_write(log, line, n + 1, err);
	free(line);
	return rc;
}

size_t appendlog_bytes(struct appendlog *log)
{
	return atomic_load(&log->bytes);
}

uint64_t appendlog_lines(struct appendlog *log)
{
	return atomic_load(&log->lines);
}

int appendlog_sync(struct appendlog *log, struct vherr *err)
{
	if (fdatasync(log->fd) != 0)
		return vherr_errno(err, errno, VHSTAGE_RECORD, "cannot flush '%s'", log->name);
	return 0;
}

int appendlog_close(struct appendlog *log, struct vherr *err)
{
	int rc = 0;

	if (!log)
		return 0;
	if (close(log->fd) != 0)
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot close '%s'", log->name);
	pthread_mutex_destroy(&log->lock);
	free(log->name);
	free(log);
	return rc;
}
