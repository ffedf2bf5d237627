/* nfserr: how the nfs:// source words libnfs' failures: an errno to our error code, a
 * libnfs message (which may hold newlines) to one line. Pure; any thread. */
#ifndef VHPREP_IO_NFSERR_H
#define VHPREP_IO_NFSERR_H

#include <stddef.h>

#include "common/vherr.h"

/* The error code for a (positive) errno from libnfs: ENOENT and ESTALE are NOENT,
 * EACCES and EPERM ACCESS, ETIMEDOUT TIMEOUT, EIO IO, an unknown one NET. */
enum vherr_code nfserr_code_of(int errnum);
/* Copies msg (may be NULL or empty: "unknown error") into buf (size bytes) as one line;
 * returns buf. */
const char *nfserr_one_line(const char *msg, char *buf, size_t size);

#endif
