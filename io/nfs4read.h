/* nfs4read: an NFSv4 READ by file handle in one round trip, over libnfs' raw COMPOUND
 * API: PUTFH(fh), READ(the anonymous stateid, offset, count), GETATTR(size, mtime).
 *
 * No OPEN: NFSv4.0 lets a READ name the all-zeros "anonymous" stateid (RFC 7530,
 * 9.1.4.3) when no share reservation denies it, so a file listed by READDIR (which gave
 * its handle) is read with no OPEN/CLOSE, no open-owner sequencing and no state for the
 * server to recover after a reconnect. The GETATTR tells whether the file changed since
 * its listing.
 *
 * Threads and completion as nfs4dir.h: the loop thread that services the rpc_context;
 * a submit that returns 0 runs its callback exactly once (from nfs_service, or from
 * nfs_destroy_context with -ECANCELED), and a callback must not submit on the same
 * rpc_context when given -ECANCELED or -ECOMM. */
#ifndef VHPREP_IO_NFS4READ_H
#define VHPREP_IO_NFS4READ_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

struct rpc_context;

/* The callback's rc when the server refuses the anonymous stateid (BAD_STATEID,
 * OPENMODE, SHARE_DENIED, LOCKED, ...: RFC 7530 lets a server insist on an OPEN, e.g.
 * under a share reservation): read the file by path, with an OPEN, instead. */
#define NFS4READ_NEEDS_OPEN (-ENOLCK)

/* One READ's result; every pointer valid only during the callback. */
struct nfs4read_result {
	const char *data; /* len bytes read at the request's offset */
	uint32_t len;
	bool eof;	   /* the file ends at offset + len */
	bool have_attrs;   /* size and mtime below were sent */
	uint64_t size;	   /* the file's size after the READ */
	int64_t mtime_sec; /* its modification time after the READ */
	uint32_t mtime_nsec;
};

/* rc 0: res holds the bytes and attributes. rc < 0 (negative errno, as nfs4dir.h maps
 * statuses and RPC failures: -ESTALE for a file gone; -ETIMEDOUT, -ECANCELED, -ECOMM
 * for the transport, see nfs4rpc_rc_is_transport):
 * res is NULL and msg one line saying why. Both valid only during the callback. */
typedef void (*nfs4read_cb)(int rc, const struct nfs4read_result *res, const char *msg,
			    void *priv);

/* Reads count bytes at offset of the file fh (fhlen bytes, 1..NFS4DIR_FH_MAX; copied) on
 * rpc, the context of a mounted NFSv4 nfs_context. Returns 0 (cb will run once), -EINVAL
 * (bad handle or count 0), or -EIO (libnfs refused the request: rpc_get_error(rpc) says
 * why). Loop thread only. */
int nfs4read_read(struct rpc_context *rpc, const char *fh, uint32_t fhlen, uint64_t offset,
		  uint32_t count, nfs4read_cb cb, void *priv);

#endif
