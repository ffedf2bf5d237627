#include "io/appendlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct appendlog {
	int fd;              /* set at creation */
	char *name;          /* set at creation, for messages */
	atomic_size_t bytes;
};

int appendlog_open(int dirfd, const char *name, int truncate, struct appendlog **out,
		   struct vherr *err)
{
	int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
	struct appendlog *log = calloc(1, sizeof(*log));

	*out = NULL;
	if (!log || !(log->name = strdup(name))) {
		free(log);
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	}
	log->fd = openat(dirfd, name, flags, 0644);
	if (log->fd < 0) {
		int rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot open '%s'", name);

		free(log->name);
		free(log);
		return rc;
	}
	*out = log;
	return 0;
}

int appendlog_write(struct appendlog *log, const char *line, size_t len, struct vherr *err)
{
	ssize_t n;

	do
		n = write(log->fd, line, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return vherr_errno(err, errno, VHSTAGE_RECORD, "cannot write '%s'", log->name);
	if ((size_t)n != len)
		return vherr_set(err, VHERR_NOSPC, VHSTAGE_RECORD, "short write to '%s'",
				 log->name);
	atomic_fetch_add(&log->bytes, len);
	return 0;
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

int appendlog_close(struct appendlog *log)
{
	int rc = 0;

	if (!log)
		return 0;
	if (close(log->fd) != 0)
		rc = -1;
	free(log->name);
	free(log);
	return rc;
}
