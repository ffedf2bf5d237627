#include "io/report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/appendlog.h"

#define CSV_HEADER "filename,original_size,processed_size\n"

struct report {
	struct appendlog *csv;    /* set at creation */
	struct appendlog *errors; /* set at creation */
};

int report_open(int dirfd, struct report **out, struct vherr *err)
{
	struct report *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	rc = appendlog_open(dirfd, REPORT_CSV_FILE, 1, &r->csv, err);
	if (rc == 0)
		rc = appendlog_open(dirfd, REPORT_ERRORS_FILE, 1, &r->errors, err);
	if (rc == 0)
		rc = appendlog_write(r->csv, CSV_HEADER, strlen(CSV_HEADER), err);
	if (rc < 0) {
		report_close(r);
		return rc;
	}
	*out = r;
	return 0;
}

int report_csv_field(const char *field, char *buf, size_t size)
{
	size_t o = 0;

	if (!strpbrk(field, ",\"\r\n")) {
		int n = snprintf(buf, size, "%s", field);
		return n < 0 || (size_t)n >= size ? -1 : n;
	}
	if (size < 3)
		return -1;
	buf[o++] = '"';
	for (const char *p = field; *p; p++) {
		if (o + (*p == '"' ? 2 : 1) + 2 > size) /* this char, closing quote, NUL */
			return -1;
		if (*p == '"')
			buf[o++] = '"';
		buf[o++] = *p;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return (int)o;
}

int report_csv_row(struct report *r, const char *filename, int orig_w, int orig_h,
		   int out_w, int out_h, struct vherr *err)
{
	char field[8192], line[8400];
	int n;

	if (report_csv_field(filename, field, sizeof(field)) < 0)
		return vherr_set(err, VHERR_BAD_NAME, VHSTAGE_RECORD, "name too long for CSV");
	n = snprintf(line, sizeof(line), "%s,\"(%d, %d)\",\"(%d, %d)\"\n", field, orig_w, orig_h,
		     out_w, out_h);
	return appendlog_write(r->csv, line, (size_t)n, err);
}

int report_error(struct report *r, const char *path, const struct vherr *failure,
		 struct vherr *err)
{
	return report_error_with(r, path, failure, NULL, err);
}

int report_error_with(struct report *r, const char *path, const struct vherr *failure,
		      json_t *extra, struct vherr *err)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "path", path, "stage",
			      vherr_stage_name(failure->stage), "reason",
			      vherr_reason(failure->code), "message", failure->msg);
	int rc;

	if (!o) /* a name that is not UTF-8: record it with its bytes escaped away */
		o = json_pack("{s:s, s:s, s:s, s:s}", "path", "<name not valid UTF-8>", "stage",
			      vherr_stage_name(failure->stage), "reason",
			      vherr_reason(failure->code), "message", "(name not valid UTF-8)");
	if (!o)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	if (extra)
		json_object_update_missing(o, extra);
	rc = appendlog_write_json(r->errors, o, err);
	json_decref(o);
	return rc;
}

void report_close(struct report *r)
{
	if (!r)
		return;
	appendlog_close(r->csv);
	appendlog_close(r->errors);
	free(r);
}

int report_write_summary(int dirfd, json_t *summary, struct vherr *err)
{
	const char *tmp = "." REPORT_SUMMARY_FILE ".vhprep-tmp";
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = 0;

	if (fd < 0)
		return vherr_errno(err, errno, VHSTAGE_RECORD, "cannot write '%s'", tmp);
	if (json_dumpfd(summary, fd, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(6)) != 0 ||
	    write(fd, "\n", 1) != 1)
		rc = vherr_errno(err, errno ? errno : EIO, VHSTAGE_RECORD, "cannot write '%s'",
				 tmp);
	if (close(fd) != 0 && rc == 0)
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot write '%s'", tmp);
	if (rc == 0 && renameat(dirfd, tmp, dirfd, REPORT_SUMMARY_FILE) != 0)
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot rename '%s'", tmp);
	if (rc < 0)
		unlinkat(dirfd, tmp, 0);
	return rc;
}
