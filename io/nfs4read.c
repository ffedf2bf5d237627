/* nfs4read: PUTFH + READ(anonymous stateid) + GETATTR in one COMPOUND (see nfs4read.h).
 * Replies are decoded by libnfs into misaligned blocks (see nfs4rpc.h): results are
 * copied before use, never dereferenced in place. */
#include "io/nfs4read.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

#include "io/nfs4dir.h"
#include "io/nfs4rpc.h"

struct read_req {
	nfs4read_cb cb;
	void *priv;
};

/* Whether status says the server wants an OPEN's stateid, not the anonymous one. */
static bool refuses_anonymous(int status)
{
	switch (status) {
	case NFS4ERR_BAD_STATEID:
	case NFS4ERR_STALE_STATEID:
	case NFS4ERR_OLD_STATEID:
	case NFS4ERR_EXPIRED:
	case NFS4ERR_OPENMODE:
	case NFS4ERR_SHARE_DENIED:
	case NFS4ERR_LOCKED:
	case NFS4ERR_ADMIN_REVOKED:
		return true;
	default:
		return false;
	}
}

/* The result of a successful COMPOUND into *out; 0, or a negative errno with msg set. */
static int read_result(const COMPOUND4res *res, struct nfs4read_result *out, char *msg,
		       size_t size)
{
	nfs_resop4 rd, ga;
	const fattr4 *a;
	struct nfs4dir_entry e = {0};

	if (refuses_anonymous(res->status)) {
		snprintf(msg, size, "READ: %s for the anonymous stateid",
			 nfs4rpc_status_name(res->status));
		return NFS4READ_NEEDS_OPEN;
	}
	if (res->status != NFS4_OK) {
		uint32_t n = res->resarray.resarray_len;
		int op = n ? (int)nfs4rpc_resop_at(res, n - 1).resop : -1;

		snprintf(msg, size, "%s: %s (%d)", nfs4rpc_op_name(op),
			 nfs4rpc_status_name(res->status), (int)res->status);
		return nfs4rpc_status_errno(res->status);
	}
	if (res->resarray.resarray_len != 3 ||
	    (rd = nfs4rpc_resop_at(res, 1)).resop != OP_READ ||
	    (ga = nfs4rpc_resop_at(res, 2)).resop != OP_GETATTR)
		return snprintf(msg, size, "the server answered other operations than asked"),
		       -EIO;
	*out = (struct nfs4read_result){
	    .data = rd.nfs_resop4_u.opread.READ4res_u.resok4.data.data_val,
	    .len = rd.nfs_resop4_u.opread.READ4res_u.resok4.data.data_len,
	    .eof = rd.nfs_resop4_u.opread.READ4res_u.resok4.eof != 0,
	};
	a = &ga.nfs_resop4_u.opgetattr.GETATTR4res_u.resok4.obj_attributes;
	if (nfs4dir_decode_attrs(a->attrmask.bitmap4_val, a->attrmask.bitmap4_len,
				 a->attr_vals.attrlist4_val, a->attr_vals.attrlist4_len,
				 &e) < 0 ||
	    e.err)
		return snprintf(msg, size, "GETATTR: %s", e.errmsg), e.err ? e.err : -EIO;
	if ((e.have & NFS4DIR_HAVE_SIZE) && (e.have & NFS4DIR_HAVE_MTIME)) {
		out->have_attrs = true;
		out->size = e.size;
		out->mtime_sec = e.mtime_sec;
		out->mtime_nsec = e.mtime_nsec;
	}
	return 0;
}

static void on_read(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct read_req *r = priv;
	struct nfs4read_result res;
	char buf[256];
	const char *msg = buf;
	int rc;

	(void)rpc;
	if (status == RPC_STATUS_SUCCESS)
		rc = read_result(data, &res, buf, sizeof(buf));
	else
		rc = nfs4rpc_failure(status, data, &msg);
	r->cb(rc, rc < 0 ? NULL : &res, rc < 0 ? msg : NULL, r->priv);
	free(r);
}

int nfs4read_read(struct rpc_context *rpc, const char *fh, uint32_t fhlen, uint64_t offset,
		  uint32_t count, nfs4read_cb cb, void *priv)
{
	uint32_t bits[2] = {1u << FATTR4_SIZE, 1u << (FATTR4_TIME_MODIFY - 32)};
	nfs_argop4 op[3];
	COMPOUND4args args = {0};
	struct read_req *r;

	if (!rpc || !fh || fhlen == 0 || fhlen > NFS4DIR_FH_MAX || count == 0 || !cb)
		return -EINVAL;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = (struct read_req){cb, priv};
	memset(op, 0, sizeof(op));
	op[0].argop = OP_PUTFH;
	op[0].nfs_argop4_u.opputfh.object.nfs_fh4_len = fhlen;
	op[0].nfs_argop4_u.opputfh.object.nfs_fh4_val = (char *)fh;
	op[1].argop = OP_READ; /* stateid all zeros: the anonymous stateid */
	op[1].nfs_argop4_u.opread.offset = offset;
	op[1].nfs_argop4_u.opread.count = count;
	op[2].argop = OP_GETATTR;
	op[2].nfs_argop4_u.opgetattr.attr_request.bitmap4_len = 2;
	op[2].nfs_argop4_u.opgetattr.attr_request.bitmap4_val = bits;
	args.argarray.argarray_len = 3;
	args.argarray.argarray_val = op;
	if (rpc_nfs4_compound_async(rpc, on_read, &args, r) != 0) {
		free(r);
		return -EIO;
	}
	return 0;
}
