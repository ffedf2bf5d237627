/* nfs3dir: one page of an NFSv3 directory by handle, READDIRPLUS over libnfs' raw RPC API
 * (rpc_nfs3_readdirplus_async): every entry with its type, size, mtime and handle, so a
 * walk needs no LOOKUP or GETATTR and never holds a huge directory whole.
 *
 * The v3 twin of io/nfs4dir.h's readdir. libnfs' decoder places entries at 4-byte
 * alignment: each is copied before use (no misaligned access). Completion as
 * io/nfs3read.h: loop thread; a submit that returns 0 runs its callback exactly once. */
#ifndef VHPREP_IO_NFS3DIR_H
#define VHPREP_IO_NFS3DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rpc_context;

#define NFS3DIR_VERF_SIZE 8 /* NFS3_COOKIEVERFSIZE */

enum nfs3dir_type { NFS3DIR_OTHER, NFS3DIR_REG, NFS3DIR_DIR };

/* One entry ("." and ".." are left out); pointers valid only during the callback. */
struct nfs3dir_entry {
	const char *name;
	bool have_attrs; /* type, size and mtime_ns were sent */
	enum nfs3dir_type type;
	uint64_t size;
	int64_t mtime_ns;
	const char *fh; /* the entry's handle (fhlen bytes), NULL if not sent */
	uint32_t fhlen;
};

/* One page, as given to the callback; valid only during it. */
struct nfs3dir_page {
	const struct nfs3dir_entry *entries; /* count entries, in the server's order */
	size_t count;
	uint64_t cookie;		    /* pass to the next nfs3dir_readdir */
	char cookieverf[NFS3DIR_VERF_SIZE]; /* pass to the next nfs3dir_readdir */
	bool eof;			    /* no page after this one */
};

/* Where a READDIRPLUS starts and how much it asks for; copied during the submit. */
struct nfs3dir_args {
	const char *fh; /* the directory's handle, fhlen bytes */
	uint32_t fhlen;
	uint64_t cookie;		    /* 0 for the first page */
	char cookieverf[NFS3DIR_VERF_SIZE]; /* zeros for the first page */
	uint32_t maxcount;		    /* reply bytes asked for (the server may cap it) */
};

/* rc 0: page holds the entries. rc < 0: page is NULL and msg one line saying why, valid
 * only during the callback: the server's status as a negative errno, -ENOMEM, or the
 * transport's failure (-ETIMEDOUT, -ECANCELED, -ECOMM: see nfs3read_rc_is_transport). */
typedef void (*nfs3dir_cb)(int rc, const struct nfs3dir_page *page, const char *msg,
			   void *priv);

/* Reads one page of the directory args->fh on rpc, the context of a mounted NFSv3
 * nfs_context. Returns 0 (cb will run once), or -EIO (libnfs refused the request, or no
 * memory: rpc_get_error(rpc) says why). Loop thread only. */
int nfs3dir_readdir(struct rpc_context *rpc, const struct nfs3dir_args *args, nfs3dir_cb cb,
		    void *priv);

#endif
