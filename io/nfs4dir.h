/* nfs4dir: NFSv4 directory walking over libnfs' raw COMPOUND API, one page at a time.
 *
 * libnfs 4.0's nfs_opendir_async buffers a whole directory before its callback and asks
 * for owner/owner_group (the server then maps every entry's owner through NSS). These
 * calls send our own COMPOUNDs instead:
 *
 *   nfs4dir_lookup   PUTROOTFH, LOOKUP per component, GETFH, GETATTR(type)
 *   nfs4dir_readdir  PUTFH(dir), READDIR(cookie, verifier, our attribute bitmap)
 *
 * and decode each entry's attributes themselves (never owners, groups or ACLs).
 *
 * Threads: every function here runs on the loop thread that services the rpc_context
 * (nfs_service of the nfs_context it came from); the callbacks run there too, from
 * nfs_service, or from nfs_destroy_context with -ECANCELED for requests still in flight.
 * A callback given -ECANCELED, or -EIO from a dropped connection, must not submit again:
 * libnfs 4.0 is then emptying its queues and assumes no callback adds to them
 * (lib/init.c:275-280).
 * Stack: libnfs 4.0 decodes a READDIR reply's entry list recursively, two frames per
 * entry (nfs4/libnfs-raw-nfs4.c:2143), on the thread that calls nfs_service. Measured:
 * a 1 MiB names-only page of 12,500 entries overflows a 1 MiB stack and fits in 2 MiB
 * (release; ASan needs several times more). Keep maxcount at the default (256 KiB, ~3k
 * entries) on threads with small stacks.
 * Completion: a submit that returns 0 calls its callback exactly once; a submit that
 * returns a negative errno never calls it and keeps nothing.
 * Errors: negative errno values. NFS4ERR_* statuses map to the closest errno (NOENT →
 * -ENOENT, ACCESS → -EACCES, PERM → -EPERM, NOTDIR → -ENOTDIR, STALE/FHEXPIRED →
 * -ESTALE, TOOSMALL → -EMSGSIZE, DELAY/GRACE → -EAGAIN, ...; unknown → -EIO) and the
 * callback's message names the status ("READDIR: NFS4ERR_STALE (70)"). RPC failures,
 * which no NFS4 status maps to: timeout → -ETIMEDOUT, cancelled (context destroyed) →
 * -ECANCELED, RPC error (connection lost, reply rejected or undecodable) → -ECOMM; see
 * nfs4rpc_rc_is_transport. */
#ifndef VHPREP_IO_NFS4DIR_H
#define VHPREP_IO_NFS4DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rpc_context;

#define NFS4DIR_VERF_SIZE    8		  /* NFS4_VERIFIER_SIZE */
#define NFS4DIR_FH_MAX	     128	  /* NFS4_FHSIZE: the longest handle accepted */
#define NFS4DIR_MAXCOUNT_DEF (256u << 10) /* READDIR maxcount when args say 0 */
#define NFS4DIR_MAXCOUNT_MAX (1u << 20)	  /* libnfs 4.0 drops a reply over 1 MiB + 4 KiB */
#define NFS4DIR_MAXCOUNT_MIN 1024u

enum nfs4dir_type {
	NFS4DIR_UNKNOWN = 0, /* type not sent (the entry's err says why) */
	NFS4DIR_REG,
	NFS4DIR_DIR,
	NFS4DIR_LNK,
	NFS4DIR_OTHER, /* block, char, socket, fifo, named attributes */
};

/* Which attributes a READDIR asks for. */
enum nfs4dir_attrs {
	/* TYPE, SIZE, FILEID, FILEHANDLE, TIME_MODIFY, RDATTR_ERROR */
	NFS4DIR_ATTRS_FULL = 0,
	/* TYPE, FILEHANDLE, RDATTR_ERROR: what a walker needs to tell and descend into
	 * directories (RDATTR_ERROR so one unreadable entry fails itself, not the page) */
	NFS4DIR_ATTRS_NAMES,
};

/* Bits of nfs4dir_entry.have: which attributes the server sent for the entry. */
#define NFS4DIR_HAVE_TYPE   (1u << 0)
#define NFS4DIR_HAVE_SIZE   (1u << 1)
#define NFS4DIR_HAVE_FILEID (1u << 2)
#define NFS4DIR_HAVE_FH	    (1u << 3)
#define NFS4DIR_HAVE_MTIME  (1u << 4)

/* One directory entry; name and fh valid only during the readdir callback.
 * err, when not 0: -EBADMSG (a malformed attribute list, or a name that is empty, ".",
 * "..", or holds '/' or NUL), -EIO (a type, or with NFS4DIR_ATTRS_FULL a size or mtime,
 * or a directory's handle, was not sent), or the server's RDATTR_ERROR mapped like any
 * NFS4 status. Then trust only name (for messages) and cookie. */
struct nfs4dir_entry {
	const char *name; /* NUL-terminated, namelen bytes (see err for the invalid ones) */
	uint32_t namelen;
	uint64_t cookie;    /* the server's cookie for this entry */
	int err;	    /* 0, or a negative errno (above) */
	const char *errmsg; /* static, one line: why err; NULL when err == 0 */
	unsigned have;	    /* NFS4DIR_HAVE_* bits */
	enum nfs4dir_type type;
	uint64_t size;
	uint64_t fileid;
	int64_t mtime_sec;
	uint32_t mtime_nsec;
	const char *fh; /* the entry's handle (fhlen bytes), NULL if not sent */
	uint32_t fhlen;
};

/* One page of a directory, as given to the readdir callback; valid only during it. */
struct nfs4dir_page {
	const struct nfs4dir_entry *entries; /* count entries, in the server's order */
	size_t count;
	uint64_t cookie;		    /* pass to the next nfs4dir_readdir */
	char cookieverf[NFS4DIR_VERF_SIZE]; /* pass to the next nfs4dir_readdir */
	bool eof;			    /* no page after this one */
};

/* Where a READDIR starts and what it asks for; read (and copied) only during the submit. */
struct nfs4dir_readdir_args {
	const char *fh; /* the directory's handle, fhlen bytes (1..NFS4DIR_FH_MAX) */
	uint32_t fhlen;
	uint64_t cookie;		    /* 0 for the first page */
	char cookieverf[NFS4DIR_VERF_SIZE]; /* zeros for the first page */
	uint32_t maxcount; /* reply bytes; 0: NFS4DIR_MAXCOUNT_DEF; clamped to MIN..MAX */
	uint32_t dircount; /* the server's hint for names+cookies; 0: maxcount */
	enum nfs4dir_attrs attrs;
};

/* Lookup completion. rc 0: fh (fhlen bytes, malloc'd) is the directory's handle and the
 * callback owns it (free it). rc < 0: fh is NULL and msg one line saying why, valid only
 * during the callback: -ENOENT (a component is missing, msg names it), -ENOTDIR (the path
 * names a file or a symlink, or a file is inside it), -ELOOP (a symlink is inside it:
 * NFS4ERR_SYMLINK), or as the module's errors above. */
typedef void (*nfs4dir_lookup_cb)(int rc, char *fh, uint32_t fhlen, const char *msg,
				  void *priv);

/* Readdir completion. rc 0: page holds the entries (valid only during the callback).
 * rc < 0: page is NULL and msg one line saying why, valid only during the callback. */
typedef void (*nfs4dir_readdir_cb)(int rc, const struct nfs4dir_page *page, const char *msg,
				   void *priv);

/* Looks up the absolute path (from the server's pseudo root, e.g. "/export/sub"; "/" is
 * the root itself; empty components are skipped; "." and ".." are refused) on rpc, the
 * context of a mounted NFSv4 nfs_context (nfs_get_rpc_context). Symlinks are not
 * followed. path is copied. Returns 0 (cb will run once), -EINVAL (bad path), -ENOMEM,
 * or -EIO (libnfs refused the request: rpc_get_error(rpc) says why). Loop thread only. */
int nfs4dir_lookup(struct rpc_context *rpc, const char *path, nfs4dir_lookup_cb cb, void *priv);

/* Reads one page of the directory args->fh on rpc (as nfs4dir_lookup). args is copied.
 * Returns 0 (cb will run once), -EINVAL (no handle, or one over NFS4DIR_FH_MAX bytes),
 * -ENOMEM, or -EIO (libnfs refused the request: rpc_get_error(rpc) says why). A reply
 * without entries that is not eof fails with -EIO (the walk could not advance). Loop
 * thread only. */
int nfs4dir_readdir(struct rpc_context *rpc, const struct nfs4dir_readdir_args *args,
		    nfs4dir_readdir_cb cb, void *priv);

/* Decodes one fattr4 (mask: masklen words; buf: the attrlist4, len bytes) into e's
 * attribute fields and have bits; fh points into buf. Strict: a truncated list, trailing
 * bytes, an attribute we never ask for (its length is unknown), a bad type or nseconds
 * is an error, never a read outside buf. Returns 0, or -EBADMSG (malformed) with
 * e->err and e->errmsg set; e->err also takes a non-zero RDATTR_ERROR (mapped, errmsg its
 * status name), and the return is then 0. Does not check which attributes are present.
 * Exposed for the readdir decoder's own tests and fuzzing. Any thread. */
int nfs4dir_decode_attrs(const uint32_t *mask, uint32_t masklen, const char *buf, uint32_t len,
			 struct nfs4dir_entry *e);

#endif
