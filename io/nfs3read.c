/* nfs3read: NFSv3 READ by handle on the raw RPC layer (see nfs3read.h). */
#include "io/nfs3read.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

struct read3_req {
	nfs3read_cb cb;
	void *priv;
};

bool nfs3read_rc_is_transport(int rc)
{
	return rc == -ETIMEDOUT || rc == -ECANCELED || rc == -ECOMM;
}

/* The rc and message of an RPC that did not succeed. */
static int transport_rc(struct rpc_context *rpc, int status, const char **msg)
{
	if (status == RPC_STATUS_TIMEOUT)
		return *msg = "timed out", -ETIMEDOUT;
	if (status == RPC_STATUS_CANCEL)
		return *msg = "cancelled", -ECANCELED;
	*msg = rpc_get_error(rpc);
	return -ECOMM;
}

static void on_read3(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct read3_req *r = priv;
	READ3res *res = data;
	struct nfs3read_result out = {0};
	const char *msg = NULL;
	int rc = 0;

	if (status != RPC_STATUS_SUCCESS) {
		rc = transport_rc(rpc, status, &msg);
	} else if (res->status != NFS3_OK) {
		rc = nfsstat3_to_errno(res->status) < 0 ? nfsstat3_to_errno(res->status) : -EIO;
		msg = strerror(-rc);
	} else {
		const READ3resok *ok = &res->READ3res_u.resok;
		const fattr3 *a = &ok->file_attributes.post_op_attr_u.attributes;

		out.data = ok->data.data_val;
		out.len = ok->count < ok->data.data_len ? ok->count : ok->data.data_len;
		out.eof = ok->eof;
		out.have_attrs = ok->file_attributes.attributes_follow;
		out.size = a->size;
		out.mtime_ns = (int64_t)a->mtime.seconds * 1000000000 + a->mtime.nseconds;
	}
	r->cb(rc, rc < 0 ? NULL : &out, msg, r->priv);
	free(r);
}

int nfs3read_read(struct rpc_context *rpc, const char *fh, uint32_t fhlen, uint64_t offset,
		  uint32_t count, nfs3read_cb cb, void *priv)
{
	READ3args a = {0};
	struct read3_req *r = malloc(sizeof(*r));

	if (!r)
		return -EIO;
	*r = (struct read3_req){cb, priv};
	a.file.data.data_len = fhlen;
	a.file.data.data_val = (char *)fh;
	a.offset = offset;
	a.count = count;
	if (rpc_nfs3_read_async(rpc, on_read3, &a, r) != 0) {
		free(r);
		return -EIO;
	}
	return 0;
}
