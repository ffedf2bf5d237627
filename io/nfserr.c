/* nfserr: libnfs failures in our words (see nfserr.h). */
#include "io/nfserr.h"

#include <errno.h>
#include <stdio.h>

enum vherr_code nfserr_code_of(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ESTALE:
		return VHERR_NOENT;
	case EACCES:
	case EPERM:
		return VHERR_ACCESS;
	case ENOTDIR:
		return VHERR_NOTDIR;
	case ENOMEM:
		return VHERR_NOMEM;
	case ETIMEDOUT:
		return VHERR_TIMEOUT;
	case EIO:
		return VHERR_IO;
	default:
		return VHERR_NET;
	}
}

const char *nfserr_one_line(const char *msg, char *buf, size_t size)
{
	snprintf(buf, size, "%s", msg && *msg ? msg : "unknown error");
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return buf;
}
