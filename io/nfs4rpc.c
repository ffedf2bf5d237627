/* nfs4rpc: what our raw NFSv4 COMPOUNDs (io/nfs4dir.c, io/nfs4read.c) share: the
 * NFSv4 status table (status -> errno and name), the mapping of an RPC failure to an rc
 * the callers can tell from the server's answer, and safe access to a COMPOUND's results.
 *
 * libnfs 4.0 decodes a COMPOUND's results into blocks whose payload starts 12 bytes
 * into a malloc'd block (lib/libnfs-zdr.c:82-95): the array of results and list nodes
 * holding 64-bit fields are misaligned, so a result is copied (nfs4rpc_resop_at), never
 * dereferenced in place. */
#include "io/nfs4rpc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>

/* ---- NFSv4 status → errno ---- */

/* clang-format off */
#define STATUS_LIST(X)                                                                       \
	X(NFS4_OK, 0) X(NFS4ERR_PERM, EPERM) X(NFS4ERR_NOENT, ENOENT) X(NFS4ERR_IO, EIO)         \
	X(NFS4ERR_NXIO, ENXIO) X(NFS4ERR_ACCESS, EACCES) X(NFS4ERR_EXIST, EEXIST)              \
	X(NFS4ERR_XDEV, EXDEV) X(NFS4ERR_NOTDIR, ENOTDIR) X(NFS4ERR_ISDIR, EISDIR)             \
	X(NFS4ERR_INVAL, EINVAL) X(NFS4ERR_FBIG, EFBIG) X(NFS4ERR_NOSPC, ENOSPC)               \
	X(NFS4ERR_ROFS, EROFS) X(NFS4ERR_MLINK, EMLINK) X(NFS4ERR_NAMETOOLONG, ENAMETOOLONG)   \
	X(NFS4ERR_NOTEMPTY, ENOTEMPTY) X(NFS4ERR_DQUOT, EDQUOT) X(NFS4ERR_STALE, ESTALE)       \
	X(NFS4ERR_BADHANDLE, EINVAL) X(NFS4ERR_BAD_COOKIE, EINVAL)                            \
	X(NFS4ERR_NOTSUPP, EOPNOTSUPP) X(NFS4ERR_TOOSMALL, EMSGSIZE)                           \
	X(NFS4ERR_SERVERFAULT, EREMOTEIO) X(NFS4ERR_BADTYPE, EINVAL) X(NFS4ERR_DELAY, EAGAIN)  \
	X(NFS4ERR_SAME, EIO) X(NFS4ERR_DENIED, EACCES) X(NFS4ERR_EXPIRED, EIO)                 \
	X(NFS4ERR_LOCKED, EAGAIN) X(NFS4ERR_GRACE, EAGAIN) X(NFS4ERR_FHEXPIRED, ESTALE)        \
	X(NFS4ERR_SHARE_DENIED, EACCES) X(NFS4ERR_WRONGSEC, EPERM)                             \
	X(NFS4ERR_CLID_INUSE, EIO) X(NFS4ERR_RESOURCE, EREMOTEIO) X(NFS4ERR_MOVED, EIO)        \
	X(NFS4ERR_NOFILEHANDLE, EIO) X(NFS4ERR_MINOR_VERS_MISMATCH, EPROTONOSUPPORT)           \
	X(NFS4ERR_STALE_CLIENTID, EIO) X(NFS4ERR_STALE_STATEID, EIO)                           \
	X(NFS4ERR_OLD_STATEID, EIO) X(NFS4ERR_BAD_STATEID, EIO) X(NFS4ERR_BAD_SEQID, EIO)      \
	X(NFS4ERR_NOT_SAME, EIO) X(NFS4ERR_LOCK_RANGE, EIO) X(NFS4ERR_SYMLINK, ELOOP)          \
	X(NFS4ERR_RESTOREFH, EIO) X(NFS4ERR_LEASE_MOVED, EIO) X(NFS4ERR_ATTRNOTSUPP, EOPNOTSUPP) \
	X(NFS4ERR_NO_GRACE, EIO) X(NFS4ERR_RECLAIM_BAD, EIO) X(NFS4ERR_RECLAIM_CONFLICT, EIO)  \
	X(NFS4ERR_BADZDR, EIO) X(NFS4ERR_LOCKS_HELD, EIO) X(NFS4ERR_OPENMODE, EACCES)          \
	X(NFS4ERR_BADOWNER, EINVAL) X(NFS4ERR_BADCHAR, EINVAL) X(NFS4ERR_BADNAME, EINVAL)      \
	X(NFS4ERR_BAD_RANGE, EINVAL) X(NFS4ERR_LOCK_NOTSUPP, EOPNOTSUPP)                       \
	X(NFS4ERR_OP_ILLEGAL, EIO) X(NFS4ERR_DEADLOCK, EDEADLK) X(NFS4ERR_FILE_OPEN, EBUSY)    \
	X(NFS4ERR_ADMIN_REVOKED, EIO) X(NFS4ERR_CB_PATH_DOWN, EIO)
/* clang-format on */

static const struct status_row {
	int status;
	int errnum;
	const char *name;
} status_rows[] = {
#define STATUS_ROW(st, e) {st, e, #st},
    STATUS_LIST(STATUS_ROW)
#undef STATUS_ROW
};

static const struct status_row *status_find(int st)
{
	for (size_t i = 0; i < sizeof(status_rows) / sizeof(status_rows[0]); i++)
		if (status_rows[i].status == st)
			return &status_rows[i];
	return NULL;
}

bool nfs4rpc_rc_is_transport(int rc)
{
	return rc == -ETIMEDOUT || rc == -ECANCELED || rc == -ECOMM;
}

int nfs4rpc_status_errno(int nfsstat4)
{
	const struct status_row *r = status_find(nfsstat4);

	return r ? -r->errnum : -EIO;
}

const char *nfs4rpc_status_name(int nfsstat4)
{
	const struct status_row *r = status_find(nfsstat4);

	return r ? r->name : "NFS4ERR_?";
}

/* ---- RPC failures and COMPOUND results ---- */

int nfs4rpc_failure(int status, void *data, const char **msg)
{
	switch (status) {
	case RPC_STATUS_TIMEOUT:
		*msg = "the server did not answer in time";
		return -ETIMEDOUT;
	case RPC_STATUS_CANCEL:
		*msg = "the request was cancelled (connection closed)";
		return -ECANCELED;
	default:
		*msg = data ? (const char *)data : "RPC error";
		return -ECOMM;
	}
}

const char *nfs4rpc_op_name(int op)
{
	switch (op) {
	case OP_PUTROOTFH:
		return "PUTROOTFH";
	case OP_PUTFH:
		return "PUTFH";
	case OP_LOOKUP:
		return "LOOKUP";
	case OP_GETFH:
		return "GETFH";
	case OP_READ:
		return "READ";
	case OP_GETATTR:
		return "GETATTR";
	case OP_READDIR:
		return "READDIR";
	default:
		return "COMPOUND";
	}
}

nfs_resop4 nfs4rpc_resop_at(const COMPOUND4res *res, uint32_t i)
{
	nfs_resop4 op;

	memcpy(&op, (const char *)res->resarray.resarray_val + (size_t)i * sizeof(op),
	       sizeof(op));
	return op;
}
