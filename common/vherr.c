#include "common/vherr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const reasons[] = {
#define VHERR_REASON(name, reason, msg) [VHERR_##name] = reason,
	VHERR_LIST(VHERR_REASON)
#undef VHERR_REASON
};

static const char *const messages[] = {
#define VHERR_MESSAGE(name, reason, msg) [VHERR_##name] = msg,
	VHERR_LIST(VHERR_MESSAGE)
#undef VHERR_MESSAGE
};

static const char *const stages[] = {
#define VHSTAGE_NAME(name, str) [VHSTAGE_##name] = str,
	VHSTAGE_LIST(VHSTAGE_NAME)
#undef VHSTAGE_NAME
};

static int normalize(int code)
{
	if (code < 0)
		code = -code;
	return code < VHERR__COUNT ? code : VHERR_INTERNAL;
}

const char *vherr_reason(int code)
{
	return reasons[normalize(code)];
}

const char *vherr_message(int code)
{
	return messages[normalize(code)];
}

const char *vherr_stage_name(enum vhstage stage)
{
	return (unsigned)stage < VHSTAGE__COUNT ? stages[stage] : "none";
}

int vherr_from_reason(const char *name)
{
	for (int i = 0; i < VHERR__COUNT; i++)
		if (strcmp(reasons[i], name) == 0)
			return i;
	return -1;
}

int vherr_vset(struct vherr *err, enum vherr_code code, enum vhstage stage,
	       const char *fmt, va_list ap)
{
	int c = normalize((int)code);

	if (err) {
		err->code = c;
		err->stage = stage;
		if (fmt && *fmt)
			vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		else
			snprintf(err->msg, sizeof(err->msg), "%s", messages[c]);
	}
	return -c;
}

int vherr_set(struct vherr *err, enum vherr_code code, enum vhstage stage,
	      const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vherr_vset(err, code, stage, fmt, ap);
	va_end(ap);
	return rc;
}

enum vherr_code vherr_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return VHERR_OK;
	case ENOMEM:
		return VHERR_NOMEM;
	case ENOENT:
	case ESTALE:
		return VHERR_NOENT;
	case EACCES:
	case EPERM:
	case EROFS:
		return VHERR_ACCESS;
	case ENOTDIR:
		return VHERR_NOTDIR;
	case EISDIR:
		return VHERR_NOTFILE;
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return VHERR_NOSPC;
	case EEXIST:
		return VHERR_EXISTS;
	case ETIMEDOUT:
		return VHERR_TIMEOUT;
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EPIPE:
		return VHERR_NET;
	case EILSEQ:
	case ENAMETOOLONG:
		return VHERR_BAD_NAME;
	case ECANCELED:
		return VHERR_CANCELLED;
	case EINVAL:
		return VHERR_USAGE;
	default:
		return VHERR_IO;
	}
}

int vherr_errno(struct vherr *err, int errnum, enum vhstage stage,
		const char *fmt, ...)
{
	enum vherr_code code = vherr_from_errno(errnum);
	char what[VHERR_MSG_MAX / 2] = "";
	va_list ap;

	if (code == VHERR_OK)
		code = VHERR_IO;
	if (fmt && *fmt) {
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
	}
	return vherr_set(err, code, stage, "%s%s%s", what, *what ? ": " : "",
			 strerror(errnum));
}

void vherr_clear(struct vherr *err)
{
	if (err) {
		err->code = VHERR_OK;
		err->stage = VHSTAGE_NONE;
		err->msg[0] = '\0';
	}
}
