/* nfs3dir: one READDIRPLUS page on the raw RPC layer (see nfs3dir.h). */
#include "io/nfs3dir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

#include "io/nfs3read.h"

struct dir3_req {
	nfs3dir_cb cb;
	void *priv;
	uint64_t cookie; /* the request's: a page without entries keeps it */
};

static bool dot_or_dotdot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

static enum nfs3dir_type type_of(ftype3 t)
{
	return t == NF3REG ? NFS3DIR_REG : t == NF3DIR ? NFS3DIR_DIR : NFS3DIR_OTHER;
}

/* Copies the list node at w (libnfs aligns them to 4 bytes only) into *e; returns e. */
static const entryplus3 *entry_get(const entryplus3 *w, entryplus3 *e)
{
	memcpy(e, (const void *)w, sizeof(*e));
	return e;
}

static size_t entries_count(const entryplus3 *next)
{
	entryplus3 e;
	size_t n = 0;

	for (; next; next = entry_get(next, &e)->nextentry)
		n++;
	return n;
}

/* The entries of a reply into out (room for all); returns how many, sets *cookie to the
 * last entry's. */
static size_t entries_fill(const entryplus3 *next, struct nfs3dir_entry *out, uint64_t *cookie)
{
	entryplus3 e;
	size_t n = 0;

	for (; next; next = e.nextentry) {
		const fattr3 *a = &e.name_attributes.post_op_attr_u.attributes;
		const nfs_fh3 *h = &e.name_handle.post_op_fh3_u.handle;

		entry_get(next, &e);
		*cookie = e.cookie;
		if (dot_or_dotdot(e.name))
			continue;
		out[n++] = (struct nfs3dir_entry){
		    .name = e.name,
		    .have_attrs = e.name_attributes.attributes_follow,
		    .type = type_of(a->type),
		    .size = a->size,
		    .mtime_ns = (int64_t)a->mtime.seconds * 1000000000 + a->mtime.nseconds,
		    .fh = e.name_handle.handle_follows ? h->data.data_val : NULL,
		    .fhlen = e.name_handle.handle_follows ? h->data.data_len : 0,
		};
	}
	return n;
}

/* Delivers a successful reply to r's callback. */
static void deliver(struct dir3_req *r, const READDIRPLUS3resok *ok)
{
	size_t n = entries_count(ok->reply.entries);
	struct nfs3dir_entry *entries = calloc(n ? n : 1, sizeof(*entries));
	struct nfs3dir_page pg = {
	    .entries = entries, .cookie = r->cookie, .eof = ok->reply.eof};

	if (!entries) {
		r->cb(-ENOMEM, NULL, "out of memory", r->priv);
		return;
	}
	pg.count = entries_fill(ok->reply.entries, entries, &pg.cookie);
	memcpy(pg.cookieverf, ok->cookieverf, NFS3DIR_VERF_SIZE);
	r->cb(0, &pg, NULL, r->priv);
	free(entries);
}

static void on_readdirplus(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct dir3_req *r = priv;
	READDIRPLUS3res *res = data;

	if (status == RPC_STATUS_TIMEOUT) {
		r->cb(-ETIMEDOUT, NULL, "timed out", r->priv);
	} else if (status == RPC_STATUS_CANCEL) {
		r->cb(-ECANCELED, NULL, "cancelled", r->priv);
	} else if (status != RPC_STATUS_SUCCESS) {
		r->cb(-ECOMM, NULL, rpc_get_error(rpc), r->priv);
	} else if (res->status != NFS3_OK) {
		int e = nfsstat3_to_errno(res->status);

		r->cb(e, NULL, strerror(-e), r->priv);
	} else {
		deliver(r, &res->READDIRPLUS3res_u.resok);
	}
	free(r);
}

int nfs3dir_readdir(struct rpc_context *rpc, const struct nfs3dir_args *args, nfs3dir_cb cb,
		    void *priv)
{
	READDIRPLUS3args a = {0};
	struct dir3_req *r = malloc(sizeof(*r));

	if (!r)
		return -EIO;
	*r = (struct dir3_req){cb, priv, args->cookie};
	a.dir.data.data_len = args->fhlen;
	a.dir.data.data_val = (char *)args->fh;
	a.cookie = args->cookie;
	memcpy(a.cookieverf, args->cookieverf, NFS3DIR_VERF_SIZE);
	a.dircount = args->maxcount / 4;
	a.maxcount = args->maxcount;
	if (rpc_nfs3_readdirplus_async(rpc, on_readdirplus, &a, r) != 0) {
		free(r);
		return -EIO;
	}
	return 0;
}
