/* nfs4rpc: helpers shared by our raw NFSv4 COMPOUNDs (io/nfs4dir.c, io/nfs4read.c):
 * NFSv4 status -> errno and name, RPC failure -> rc, and copies of a COMPOUND's results
 * (libnfs 4.0 decodes them misaligned: never dereference them in place). Every function
 * is pure and may run on any thread. */
#ifndef VHPREP_IO_NFS4RPC_H
#define VHPREP_IO_NFS4RPC_H

#include <stdbool.h>
#include <stdint.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

/* Whether a callback's rc is an RPC failure (-ETIMEDOUT, -ECANCELED, -ECOMM: the request
 * may be sent again on a working connection) rather than the server's answer. */
bool nfs4rpc_rc_is_transport(int rc);
/* The rc (-ETIMEDOUT, -ECANCELED or -ECOMM) and one-line *msg (static, or data: valid
 * during the rpc callback) of an rpc callback whose status is not RPC_STATUS_SUCCESS;
 * data is that callback's. */
int nfs4rpc_failure(int status, void *data, const char **msg);
/* Returns the negative errno for an NFSv4 status (0 for NFS4_OK, -EIO if unknown). */
int nfs4rpc_status_errno(int nfsstat4);
/* Returns the status' name ("NFS4ERR_STALE"), or "NFS4ERR_?" if unknown; never NULL,
 * static. */
const char *nfs4rpc_status_name(int nfsstat4);
/* Returns the name of operation op ("READDIR"), or "COMPOUND" for one we never send;
 * never NULL, static. */
const char *nfs4rpc_op_name(int op);
/* Returns a copy of result i (< res->resarray.resarray_len) of res: the array libnfs
 * decodes is misaligned, so its elements are copied, never dereferenced in place. */
nfs_resop4 nfs4rpc_resop_at(const COMPOUND4res *res, uint32_t i);

#endif
