/* nfs3read: an NFSv3 READ by file handle over libnfs' raw RPC API (rpc_nfs3_read_async),
 * for files the listing (READDIRPLUS) gave the handle of: no LOOKUP, no GETATTR. The
 * reply's post-op attributes tell whether the file changed since its listing.
 *
 * The v3 twin of io/nfs4read.h, with the same completion rule: the loop thread that
 * services the rpc_context submits; a submit that returns 0 runs its callback exactly
 * once (from nfs_service, or from nfs_destroy_context with a transport rc), and a
 * callback must not submit on the same rpc_context when given a transport rc. */
#ifndef VHPREP_IO_NFS3READ_H
#define VHPREP_IO_NFS3READ_H

#include <stdbool.h>
#include <stdint.h>

struct rpc_context;

/* One READ's result; every pointer valid only during the callback. */
struct nfs3read_result {
	const char *data; /* len bytes read at the request's offset */
	uint32_t len;
	bool eof;	 /* the file ends at offset + len */
	bool have_attrs; /* size and mtime_ns below were sent (post-op attributes) */
	uint64_t size;	 /* the file's size after the READ */
	int64_t mtime_ns;
};

/* rc 0: res holds the bytes. rc < 0: res is NULL and msg one line saying why, valid only
 * during the callback: the server's status as a negative errno (nfsstat3_to_errno; -EIO
 * for one it does not know), or the transport's failure: -ETIMEDOUT (msg "timed out"),
 * -ECANCELED ("cancelled": the context was destroyed) or -ECOMM (libnfs' RPC error). */
typedef void (*nfs3read_cb)(int rc, const struct nfs3read_result *res, const char *msg,
			    void *priv);

/* Whether a callback's rc is the transport's (the READ may be sent again elsewhere). Any
 * thread. */
bool nfs3read_rc_is_transport(int rc);
/* Reads count bytes at offset of the file fh (fhlen bytes; copied) on rpc, the context
 * of a mounted NFSv3 nfs_context. Returns 0 (cb will run once), or -EIO (libnfs refused
 * the request: rpc_get_error(rpc) says why). Loop thread only. */
int nfs3read_read(struct rpc_context *rpc, const char *fh, uint32_t fhlen, uint64_t offset,
		  uint32_t count, nfs3read_cb cb, void *priv);

#endif
