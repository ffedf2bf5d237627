#include "io/report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include "io/appendlog.h"
#include "io/jsonname.h"
#include "io/metadata.h"

#define CSV_HEADER "filename,original_size,processed_size\n"
#define CSV_TMP    "." REPORT_CSV_FILE ".vhprep-tmp"

struct report {
	int dirfd;                /* set at creation, borrowed */
	struct appendlog *csv;    /* reopened by report_csv_rebuild */
	struct appendlog *errors; /* set at creation */
};

/* Opens name for appending; writes the CSV header when header is set and it is empty. */
static int open_log(int dirfd, const char *name, int truncate, const char *header,
		    struct appendlog **out, struct vherr *err)
{
	struct stat st;
	int rc = appendlog_open(dirfd, name, truncate, out, err);

	if (rc == 0 && header && fstatat(dirfd, name, &st, 0) == 0 && st.st_size == 0)
		rc = appendlog_write(*out, header, strlen(header), err);
	return rc;
}

int report_open(int dirfd, int fresh_csv, struct report **out, struct vherr *err)
{
	struct report *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	r->dirfd = dirfd;
	rc = open_log(dirfd, REPORT_CSV_FILE, fresh_csv, CSV_HEADER, &r->csv, err);
	if (rc == 0)
		rc = appendlog_open(dirfd, REPORT_ERRORS_FILE, 1, &r->errors, err);
	if (rc < 0) {
		report_close(r, NULL);
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

/* Formats one CSV row into line (size bytes). Returns its length, or -1. */
static int format_row(const char *filename, int orig_w, int orig_h, int out_w, int out_h,
		      char *line, size_t size)
{
	char field[8192], name[8192];
	int n;

	/* a CSV is text: a name that is not valid UTF-8 is escaped (jsonname.h) */
	if (jsonname_escape(filename, name, sizeof(name)) < 0 ||
	    report_csv_field(name, field, sizeof(field)) < 0)
		return -1;
	n = snprintf(line, size, "%s,\"(%d, %d)\",\"(%d, %d)\"\n", field, orig_w, orig_h,
		     out_w, out_h);
	return n < 0 || (size_t)n >= size ? -1 : n;
}

int report_csv_row(struct report *r, const char *filename, int orig_w, int orig_h,
		   int out_w, int out_h, struct vherr *err)
{
	char line[8400];
	int n = format_row(filename, orig_w, orig_h, out_w, out_h, line, sizeof(line));

	if (n < 0)
		return vherr_set(err, VHERR_BAD_NAME, VHSTAGE_RECORD, "name too long for CSV");
	return appendlog_write(r->csv, line, (size_t)n, err);
}

static int int_of(json_t *meta, const char *key)
{
	return (int)json_integer_value(json_object_get(meta, key));
}

/* metadata_scan callback: one row per image line. */
static int row_of_line(void *ctx, const struct metadata_line *l)
{
	FILE *out = ctx;
	json_t *meta = l->obj ? json_object_get(l->obj, "metadata") : NULL;
	const char *rel = json_string_value(json_object_get(meta, "source_relpath"));
	char line[8400];
	int n;

	if (!rel)
		return 0;
	n = format_row(rel, int_of(meta, "original_width"), int_of(meta, "original_height"),
		       int_of(meta, "width"), int_of(meta, "height"), line, sizeof(line));
	if (n > 0 && fwrite(line, 1, (size_t)n, out) != (size_t)n)
		return -VHERR_IO;
	return 0;
}

int report_csv_rebuild(struct report *r, struct vherr *err)
{
	int fd = openat(r->dirfd, CSV_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct appendlog *csv = NULL;
	FILE *out;
	int rc;

	if (fd < 0 || !(out = fdopen(fd, "w"))) {
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot write '%s'", CSV_TMP);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rc = fputs(CSV_HEADER, out) < 0 ? -VHERR_IO : 0;
	if (rc == 0)
		rc = metadata_scan(r->dirfd, METADATA_FILE, row_of_line, out, err);
	if ((fflush(out) != 0 || fdatasync(fileno(out)) != 0) && rc == 0)
		rc = -VHERR_IO;
	if (fclose(out) != 0 && rc == 0)
		rc = -VHERR_IO;
	if (rc == -VHERR_IO)
		vherr_errno(err, errno ? errno : EIO, VHSTAGE_RECORD, "cannot write '%s'", CSV_TMP);
	if (rc == 0 && renameat(r->dirfd, CSV_TMP, r->dirfd, REPORT_CSV_FILE) != 0)
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot replace '%s'",
				 REPORT_CSV_FILE);
	if (rc == 0)
		rc = appendlog_open(r->dirfd, REPORT_CSV_FILE, 0, &csv, err);
	if (rc < 0) {
		unlinkat(r->dirfd, CSV_TMP, 0);
		return rc;
	}
	/* the superseded CSV: its close error is not checked, as the rebuilt file (from
	 * the metadata, fdatasync'd) replaces it whole */
	appendlog_close(r->csv, NULL);
	r->csv = csv;
	return 0;
}

int report_error(struct report *r, const char *path, const struct vherr *failure,
		 struct vherr *err)
{
	return report_error_with(r, path, failure, NULL, err);
}

int report_error_with(struct report *r, const char *path, const struct vherr *failure,
		      json_t *extra, struct vherr *err)
{
	size_t cap = strlen(failure->msg) * 4 + 1;
	char *msg = malloc(cap);
	json_t *o = json_object();
	int rc;

	/* the message may quote the name: escaped like it (jsonname.h) */
	if (!o || !msg || jsonname_escape(failure->msg, msg, cap) < 0 ||
	    jsonname_set(o, "path", path) != 0 ||
	    json_object_set_new(o, "stage", json_string(vherr_stage_name(failure->stage))) ||
	    json_object_set_new(o, "reason", json_string(vherr_reason(failure->code))) ||
	    json_object_set_new(o, "message", json_string(msg))) {
		json_decref(o);
		free(msg);
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	}
	free(msg);
	if (extra)
		json_object_update_missing(o, extra);
	rc = appendlog_write_json(r->errors, o, err);
	json_decref(o);
	return rc;
}

uint64_t report_errors(struct report *r)
{
	return appendlog_lines(r->errors);
}

int report_sync(struct report *r, struct vherr *err)
{
	int rc = appendlog_sync(r->csv, err);

	return rc ? rc : appendlog_sync(r->errors, err);
}

int report_close(struct report *r, struct vherr *err)
{
	int rc, rc2;

	if (!r)
		return 0;
	rc = appendlog_close(r->csv, err);
	rc2 = appendlog_close(r->errors, rc ? NULL : err);
	free(r);
	return rc ? rc : rc2;
}

int report_write_summary(int dirfd, json_t *summary, struct vherr *err)
{
	const char *tmp = "." REPORT_SUMMARY_FILE ".vhprep-tmp";
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = 0;

	if (fd < 0)
		return vherr_errno(err, errno, VHSTAGE_RECORD, "cannot write '%s'", tmp);
	if (json_dumpfd(summary, fd, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(6)) != 0 ||
	    write(fd, "\n", 1) != 1 || fdatasync(fd) != 0)
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
