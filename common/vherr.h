/* vherr: the one error table of vhprep, and the per-item/per-context error record.
 *
 * Codes are small positive numbers; functions return 0 or the negated code (-VHERR_X).
 * The reason name is the machine word written to vhprep-errors.jsonl and the summary.
 * Never a global error: every failing call fills a caller-provided struct vherr. */
#ifndef VHPREP_COMMON_VHERR_H
#define VHPREP_COMMON_VHERR_H

#include <stdarg.h>

/* X(NAME, "reason", "default message") */
#define VHERR_LIST(X)                                                                          \
	X(OK, "ok", "success")                                                                 \
	X(NOMEM, "nomem", "out of memory")                                                     \
	X(USAGE, "usage", "invalid usage")                                                     \
	X(NOENT, "not_found", "no such file or directory")                                     \
	X(ACCESS, "permission", "permission denied")                                           \
	X(IO, "io", "input/output error")                                                      \
	X(NOTDIR, "not_dir", "not a directory")                                                \
	X(NOTFILE, "not_file", "not a regular file")                                           \
	X(VANISHED, "vanished", "file vanished during the run")                                \
	X(EMPTY, "empty", "zero-byte file")                                                    \
	X(NOT_IMAGE, "not_image", "not a recognised image format")                             \
	X(CORRUPT, "corrupt", "corrupt image data")                                            \
	X(TRUNCATED, "truncated", "truncated image data")                                      \
	X(UNSUPPORTED, "unsupported", "an image variant vhprep cannot decode (e.g. 12-bit JPEG)")\
	X(TOO_LARGE, "too_large", "over --max-pixels, --max-file-size or --memory")            \
	X(TRANSFORM, "transform", "image operation failed")                                    \
	X(ENCODE, "encode", "image encoding failed")                                           \
	X(WRITE, "write", "cannot write output")                                               \
	X(EXISTS, "output_exists", "output file already exists")                               \
	X(COLLISION, "name_collision", "another input maps to the same output name")           \
	X(BAD_NAME, "bad_name", "file name is not valid UTF-8")                                \
	X(NOSPC, "no_space", "no space left on the outputs device")                            \
	X(TIMEOUT, "timeout", "operation timed out")                                           \
	X(NET, "network", "network or server error")                                           \
	X(LOST, "source_lost", "lost the connection to the source")                            \
	X(CANCELLED, "cancelled", "cancelled")                                                 \
	X(INTERNAL, "internal", "internal error")                                              \
	X(BAD_URL, "bad_url", "not a URL vhprep fetches")                                      \
	X(DNS, "dns", "host name not resolved")                                                \
	X(REFUSED, "refused", "connection refused")                                            \
	X(TLS, "tls", "TLS or certificate error")                                              \
	X(HTTP_STATUS, "http_status", "the server answered with an error status")              \
	X(BODY_TOO_LARGE, "body_too_large", "response body larger than the size cap")          \
	X(REDIRECTS, "redirects", "too many redirects, or a redirect to a refused URL")        \
	X(METADATA_IP, "metadata_ip", "a cloud metadata address (--allow-metadata-ip)")

enum vherr_code {
#define VHERR_ENUM(name, reason, msg) VHERR_##name,
	VHERR_LIST(VHERR_ENUM)
#undef VHERR_ENUM
	    VHERR__COUNT
};

/* The stage of the data path where an item failed (the "stage" of vhprep-errors.jsonl). */
#define VHSTAGE_LIST(X)                                                                        \
	X(NONE, "none")                                                                        \
	X(WALK, "walk") X(SELECT, "select") X(READ, "read") X(DECODE, "decode")                \
	    X(TRANSFORM, "transform") X(ENCODE, "encode") X(WRITE, "write")                    \
		X(RECORD, "record")

enum vhstage {
#define VHSTAGE_ENUM(name, str) VHSTAGE_##name,
	VHSTAGE_LIST(VHSTAGE_ENUM)
#undef VHSTAGE_ENUM
	    VHSTAGE__COUNT
};

#define VHERR_MSG_MAX 512

/* One error: code, stage, and a human message ("cannot open 'PATH': reason"). Zeroed = no
 * error. */
struct vherr {
	enum vherr_code code;
	enum vhstage stage;
	char msg[VHERR_MSG_MAX];
};

/* Returns the reason word for code ("truncated"); never NULL, "internal" for unknown codes. */
const char *vherr_reason(int code);
/* Returns the default message for code; never NULL. Accepts a negated code too. */
const char *vherr_message(int code);
/* Returns the stage word ("decode"); never NULL. */
const char *vherr_stage_name(enum vhstage stage);
/* Returns the code whose reason word is name, or -1 if none. */
int vherr_from_reason(const char *name);

/* Fills err (if non-NULL) with code, stage and a printf-style message; returns -code.
 * A NULL or empty fmt uses the code's default message. */
int vherr_set(struct vherr *err, enum vherr_code code, enum vhstage stage, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Like vherr_set with a va_list. */
int vherr_vset(struct vherr *err, enum vherr_code code, enum vhstage stage, const char *fmt,
	       va_list ap) __attribute__((format(printf, 4, 0)));
/* Maps an errno value to the closest code (ENOENT → NOENT, ENOSPC → NOSPC, ...). */
enum vherr_code vherr_from_errno(int errnum);
/* Fills err from errno value errnum: message "what: strerror"; returns -code. */
int vherr_errno(struct vherr *err, int errnum, enum vhstage stage, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Resets err to "no error". err may be NULL. */
void vherr_clear(struct vherr *err);

/* Frees *p and sets it to NULL; safe to repeat. */
#define VH_FREE(p)                                                                             \
	do {                                                                                   \
		free(p);                                                                       \
		(p) = NULL;                                                                    \
	} while (0)

#endif
