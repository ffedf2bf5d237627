/* nfs4dir: NFSv4 LOOKUP and one-page READDIR over raw COMPOUNDs (see nfs4dir.h).
 *
 * A request goes: build the ops on the stack or heap → rpc_nfs4_compound_async (which
 * encodes them at once, so nothing of the arguments outlives the submit) → on_lookup or
 * on_readdir (always exactly once) → the caller's callback → free the request.
 *
 * libnfs 4.0's decoder leaves opaque fields (names, attrlist4, handles) pointing into the
 * reply buffer, which lives until our rpc callback returns; its length check
 * (lib/libnfs-zdr.c:171, `pos + (int)size > size`) lets a length of 2^31 or more pass, so
 * every length is checked against what a reply can hold before it is used. */
#include "io/nfs4dir.h"
#include "io/nfs4rpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

/* Longest opaque a reply can hold: libnfs 4.0 refuses PDUs over 1 MiB + 4 KiB. */
#define REPLY_MAX      (NFS4DIR_MAXCOUNT_MAX + 4096u)
#define LOOKUP_MAX_OPS 256 /* path components + PUTROOTFH, GETFH, GETATTR */

/* ---- attribute decoding ---- */

/* A read cursor over XDR bytes; every get checks what is left. */
struct xdr_cur {
	const unsigned char *p;
	uint32_t left;
};

static int get_u32(struct xdr_cur *c, uint32_t *v)
{
	if (c->left < 4)
		return -1;
	*v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 | (uint32_t)c->p[2] << 8 |
	     c->p[3];
	c->p += 4;
	c->left -= 4;
	return 0;
}

static int get_u64(struct xdr_cur *c, uint64_t *v)
{
	uint32_t hi, lo;

	if (c->left < 8)
		return -1;
	get_u32(c, &hi);
	get_u32(c, &lo);
	*v = (uint64_t)hi << 32 | lo;
	return 0;
}

/* opaque<max>: a length, the bytes, zero to three bytes of padding. */
static int get_opaque(struct xdr_cur *c, uint32_t max, const char **bytes, uint32_t *len)
{
	uint32_t n, padded;

	if (get_u32(c, &n) < 0 || n > max)
		return -1;
	padded = (n + 3) & ~3u;
	if (c->left < padded)
		return -1;
	*bytes = (const char *)c->p;
	*len = n;
	c->p += padded;
	c->left -= padded;
	return 0;
}

static enum nfs4dir_type type_of(uint32_t t)
{
	switch (t) {
	case NF4REG:
		return NFS4DIR_REG;
	case NF4DIR:
		return NFS4DIR_DIR;
	case NF4LNK:
		return NFS4DIR_LNK;
	case NF4BLK:
	case NF4CHR:
	case NF4SOCK:
	case NF4FIFO:
	case NF4ATTRDIR:
	case NF4NAMEDATTR:
		return NFS4DIR_OTHER;
	default:
		return NFS4DIR_UNKNOWN;
	}
}

static int entry_fail(struct nfs4dir_entry *e, int err, const char *msg)
{
	e->err = err;
	e->errmsg = msg;
	return err;
}

/* Decodes attribute number bit at c into e; 0 or -1 with e->errmsg set. */
static int decode_one(struct xdr_cur *c, unsigned bit, struct nfs4dir_entry *e)
{
	uint32_t u;
	uint64_t v;

	switch (bit) {
	case FATTR4_TYPE:
		if (get_u32(c, &u) < 0)
			break;
		e->type = type_of(u);
		if (e->type == NFS4DIR_UNKNOWN)
			return entry_fail(e, -EBADMSG, "the server sent an unknown file type"),
			       -1;
		e->have |= NFS4DIR_HAVE_TYPE;
		return 0;
	case FATTR4_SIZE:
		if (get_u64(c, &e->size) < 0)
			break;
		e->have |= NFS4DIR_HAVE_SIZE;
		return 0;
	case FATTR4_RDATTR_ERROR:
		if (get_u32(c, &u) < 0)
			break;
		if (u != NFS4_OK)
			entry_fail(e, nfs4rpc_status_errno((int)u),
				   nfs4rpc_status_name((int)u));
		return 0;
	case FATTR4_FILEHANDLE:
		if (get_opaque(c, NFS4DIR_FH_MAX, &e->fh, &e->fhlen) < 0)
			break;
		if (e->fhlen == 0)
			return entry_fail(e, -EBADMSG, "the server sent an empty handle"), -1;
		e->have |= NFS4DIR_HAVE_FH;
		return 0;
	case FATTR4_FILEID:
		if (get_u64(c, &e->fileid) < 0)
			break;
		e->have |= NFS4DIR_HAVE_FILEID;
		return 0;
	case FATTR4_TIME_MODIFY:
		if (get_u64(c, &v) < 0 || get_u32(c, &u) < 0)
			break;
		if (u >= 1000000000u)
			return entry_fail(e, -EBADMSG,
					  "the server sent nseconds over 999999999"),
			       -1;
		e->mtime_sec = (int64_t)v;
		e->mtime_nsec = u;
		e->have |= NFS4DIR_HAVE_MTIME;
		return 0;
	default:
		entry_fail(e, -EBADMSG, "the server sent an attribute we did not ask for");
		return -1;
	}
	entry_fail(e, -EBADMSG, "the server sent truncated attributes");
	return -1;
}

int nfs4dir_decode_attrs(const uint32_t *mask, uint32_t masklen, const char *buf, uint32_t len,
			 struct nfs4dir_entry *e)
{
	struct xdr_cur c = {(const unsigned char *)buf, len};

	if (len > REPLY_MAX || (len && !buf))
		return entry_fail(e, -EBADMSG, "the server sent truncated attributes");
	for (uint32_t w = 0; w < masklen; w++)
		for (unsigned b = 0; b < 32; b++)
			if ((mask[w] >> b & 1u) && decode_one(&c, w * 32 + b, e) < 0)
				return e->err;
	if (c.left)
		return entry_fail(e, -EBADMSG, "the server sent bytes after the attributes");
	return 0;
}

/* Copies the list node at w into *e (see resop_get); returns e. */
static const entry4 *entry_get(const entry4 *w, entry4 *e)
{
	memcpy(e, (const void *)w, sizeof(*e));
	return e;
}

/* The status of one result: each of the ops we send starts its result with one. */
static int resop_status(const nfs_resop4 *op)
{
	switch (op->resop) {
	case OP_PUTROOTFH:
		return op->nfs_resop4_u.opputrootfh.status;
	case OP_PUTFH:
		return op->nfs_resop4_u.opputfh.status;
	case OP_LOOKUP:
		return op->nfs_resop4_u.oplookup.status;
	case OP_GETFH:
		return op->nfs_resop4_u.opgetfh.status;
	case OP_GETATTR:
		return op->nfs_resop4_u.opgetattr.status;
	case OP_READDIR:
		return op->nfs_resop4_u.opreaddir.status;
	default:
		return NFS4ERR_OP_ILLEGAL;
	}
}

/* Checks the ops of res against want (nwant opcodes, all NFS4_OK); 0, or a negative errno
 * with a message in buf naming the failing op and status. */
static int compound_check(const COMPOUND4res *res, const int *want, uint32_t nwant, char *buf,
			  size_t size)
{
	uint32_t n = res->resarray.resarray_len;
	int failed_op = n ? (int)nfs4rpc_resop_at(res, n - 1).resop : -1;

	if (res->status != NFS4_OK) {
		snprintf(buf, size, "%s: %s (%d)",
			 failed_op >= 0 ? nfs4rpc_op_name(failed_op) : "COMPOUND",
			 nfs4rpc_status_name(res->status), (int)res->status);
		return nfs4rpc_status_errno(res->status);
	}
	if (n != nwant)
		goto bad;
	for (uint32_t i = 0; i < n; i++) {
		nfs_resop4 op = nfs4rpc_resop_at(res, i);

		if ((int)op.resop != want[i] || resop_status(&op) != NFS4_OK)
			goto bad;
	}
	return 0;
bad:
	snprintf(buf, size,
		 "the server answered %u operations of %u, out of order or failed "
		 "under an NFS4_OK",
		 n, nwant);
	return -EIO;
}

/* ---- lookup ---- */

struct lookup_req {
	nfs4dir_lookup_cb cb;
	void *priv;
	uint32_t ncomp;
	const char **comp; /* ncomp names, into names */
	char *names;	   /* the path with '/' replaced by NUL */
	char path[];	   /* the path as given, for messages */
};

static void lookup_req_free(struct lookup_req *r)
{
	if (r) {
		free(r->comp);
		free(r->names);
	}
	free(r);
}

/* Splits path into r->comp; 0, -EINVAL or -ENOMEM. */
static int lookup_split(struct lookup_req *r, const char *path)
{
	size_t cap = 0;
	char *save = NULL;

	if (path[0] != '/')
		return -EINVAL;
	r->names = strdup(path);
	if (!r->names)
		return -ENOMEM;
	for (const char *p = path; *p; p++)
		cap += *p == '/';
	if (cap + 3 > LOOKUP_MAX_OPS)
		return -EINVAL;
	r->comp = calloc(cap ? cap : 1, sizeof(*r->comp));
	if (!r->comp)
		return -ENOMEM;
	for (char *t = strtok_r(r->names, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (!strcmp(t, ".") || !strcmp(t, ".."))
			return -EINVAL;
		r->comp[r->ncomp++] = t;
	}
	return 0;
}

/* The handle and type from a successful lookup COMPOUND; 0 or a negative errno + msg. */
static int lookup_result(struct lookup_req *r, const COMPOUND4res *res, char **fh,
			 uint32_t *fhlen, char *msg, size_t size)
{
	nfs_resop4 getfh = nfs4rpc_resop_at(res, r->ncomp + 1),
		   getattr = nfs4rpc_resop_at(res, r->ncomp + 2);
	const nfs_fh4 *h = &getfh.nfs_resop4_u.opgetfh.GETFH4res_u.resok4.object;
	const fattr4 *a = &getattr.nfs_resop4_u.opgetattr.GETATTR4res_u.resok4.obj_attributes;
	struct nfs4dir_entry e = {0};

	if (h->nfs_fh4_len == 0 || h->nfs_fh4_len > NFS4DIR_FH_MAX)
		return snprintf(msg, size, "the server sent a handle of %u bytes",
				h->nfs_fh4_len),
		       -EIO;
	if (nfs4dir_decode_attrs(a->attrmask.bitmap4_val, a->attrmask.bitmap4_len,
				 a->attr_vals.attrlist4_val, a->attr_vals.attrlist4_len,
				 &e) < 0 ||
	    e.err)
		return snprintf(msg, size, "GETATTR: %s", e.errmsg), e.err;
	if (!(e.have & NFS4DIR_HAVE_TYPE))
		return snprintf(msg, size, "GETATTR: the server sent no type"), -EIO;
	if (e.type != NFS4DIR_DIR)
		return snprintf(msg, size, "'%s' is %s, not a directory", r->path,
				e.type == NFS4DIR_LNK ? "a symbolic link" : "a file"),
		       -ENOTDIR;
	*fh = malloc(h->nfs_fh4_len);
	if (!*fh)
		return snprintf(msg, size, "out of memory"), -ENOMEM;
	memcpy(*fh, h->nfs_fh4_val, h->nfs_fh4_len);
	*fhlen = h->nfs_fh4_len;
	return 0;
}

/* Rewrites msg to name the component whose LOOKUP failed, if one did. */
static void lookup_blame(struct lookup_req *r, const COMPOUND4res *res, char *msg, size_t size)
{
	uint32_t n = res->resarray.resarray_len;

	if (n < 2 || n > r->ncomp + 1 || nfs4rpc_resop_at(res, n - 1).resop != OP_LOOKUP)
		return;
	snprintf(msg, size, "LOOKUP '%s' in '%s': %s (%d)", r->comp[n - 2], r->path,
		 nfs4rpc_status_name(res->status), (int)res->status);
}

static void on_lookup(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct lookup_req *r = priv;
	const char *msg = NULL;
	char buf[512] = "";
	char *fh = NULL;
	uint32_t fhlen = 0;
	int rc, want[LOOKUP_MAX_OPS];

	(void)rpc;
	if (status != RPC_STATUS_SUCCESS) {
		rc = nfs4rpc_failure(status, data, &msg);
		goto out;
	}
	want[0] = OP_PUTROOTFH;
	for (uint32_t i = 0; i < r->ncomp; i++)
		want[i + 1] = OP_LOOKUP;
	want[r->ncomp + 1] = OP_GETFH;
	want[r->ncomp + 2] = OP_GETATTR;
	rc = compound_check(data, want, r->ncomp + 3, buf, sizeof(buf));
	if (rc < 0)
		lookup_blame(r, data, buf, sizeof(buf));
	else
		rc = lookup_result(r, data, &fh, &fhlen, buf, sizeof(buf));
	msg = buf;
out:
	r->cb(rc, rc < 0 ? NULL : fh, fhlen, rc < 0 ? msg : NULL, r->priv);
	lookup_req_free(r);
}

int nfs4dir_lookup(struct rpc_context *rpc, const char *path, nfs4dir_lookup_cb cb, void *priv)
{
	uint32_t bits[1] = {1u << FATTR4_TYPE};
	COMPOUND4args args = {0};
	nfs_argop4 *op = NULL;
	struct lookup_req *r;
	uint32_t i = 0;
	int rc;

	if (!rpc || !path || !cb)
		return -EINVAL;
	r = calloc(1, sizeof(*r) + strlen(path) + 1);
	if (!r)
		return -ENOMEM;
	strcpy(r->path, path);
	r->cb = cb;
	r->priv = priv;
	rc = lookup_split(r, path);
	if (rc < 0)
		goto fail;
	op = calloc(r->ncomp + 3, sizeof(*op));
	if (!op) {
		rc = -ENOMEM;
		goto fail;
	}
	op[i++].argop = OP_PUTROOTFH;
	for (uint32_t k = 0; k < r->ncomp; k++, i++) {
		op[i].argop = OP_LOOKUP;
		op[i].nfs_argop4_u.oplookup.objname.utf8string_len = (u_int)strlen(r->comp[k]);
		op[i].nfs_argop4_u.oplookup.objname.utf8string_val = (char *)r->comp[k];
	}
	op[i++].argop = OP_GETFH;
	op[i].argop = OP_GETATTR;
	op[i].nfs_argop4_u.opgetattr.attr_request.bitmap4_len = 1;
	op[i++].nfs_argop4_u.opgetattr.attr_request.bitmap4_val = bits;
	args.argarray.argarray_len = i;
	args.argarray.argarray_val = op;
	if (rpc_nfs4_compound_async(rpc, on_lookup, &args, r) != 0) {
		rc = -EIO;
		goto fail;
	}
	free(op);
	return 0;
fail:
	free(op);
	lookup_req_free(r);
	return rc;
}

/* ---- readdir ---- */

struct readdir_req {
	nfs4dir_readdir_cb cb;
	void *priv;
	enum nfs4dir_attrs attrs;
	uint64_t cookie; /* the request's, for an empty last page */
};

static bool name_ok(const char *n, uint32_t len)
{
	if (len == 0 || memchr(n, '\0', len) || memchr(n, '/', len))
		return false;
	return !(len == 1 && n[0] == '.') && !(len == 2 && n[0] == '.' && n[1] == '.');
}

/* Marks an entry whose attributes lack what a walker needs (the page's attrs variant). */
static void entry_require(struct nfs4dir_entry *e, enum nfs4dir_attrs attrs)
{
	unsigned need = NFS4DIR_HAVE_TYPE;

	if (e->err)
		return;
	if (attrs == NFS4DIR_ATTRS_FULL)
		need |= NFS4DIR_HAVE_SIZE | NFS4DIR_HAVE_MTIME;
	if ((e->have & need) != need)
		entry_fail(e, -EIO, "the server sent no type, size or mtime for it");
	else if (e->type == NFS4DIR_DIR && !(e->have & NFS4DIR_HAVE_FH))
		entry_fail(e, -EIO, "the server sent no handle for this directory");
}

/* Fills one entry from the wire entry w, its name copied to *names. */
static void entry_fill(struct nfs4dir_entry *e, const entry4 *w, char **names,
		       enum nfs4dir_attrs attrs)
{
	const fattr4 *a = &w->attrs;
	uint32_t len = w->name.utf8string_len;

	memcpy(*names, w->name.utf8string_val, len);
	(*names)[len] = '\0';
	e->name = *names;
	e->namelen = len;
	e->cookie = w->cookie;
	*names += len + 1;
	if (!name_ok(e->name, len)) {
		entry_fail(e, -EBADMSG, "the server sent an invalid name");
		return;
	}
	if (nfs4dir_decode_attrs(a->attrmask.bitmap4_val, a->attrmask.bitmap4_len,
				 a->attr_vals.attrlist4_val, a->attr_vals.attrlist4_len, e) < 0)
		return;
	entry_require(e, attrs);
}

/* Counts the entries of the reply and their name bytes; -1 if a name is implausible. */
static int entries_measure(const entry4 *next, size_t *count, size_t *bytes)
{
	entry4 e;

	*count = *bytes = 0;
	for (const entry4 *w = next; w; w = e.nextentry) {
		entry_get(w, &e);
		if (e.name.utf8string_len > REPLY_MAX ||
		    (e.name.utf8string_len && !e.name.utf8string_val))
			return -1;
		(*count)++;
		*bytes += e.name.utf8string_len + 1;
	}
	return 0;
}

/* Builds the page from rd and calls the callback; 0, or a negative errno + msg (no call). */
static int readdir_deliver(struct readdir_req *r, const READDIR4resok *rd, const char **msg)
{
	struct nfs4dir_page page = {0};
	struct nfs4dir_entry *ents = NULL;
	entry4 e;
	char *names = NULL, *np;
	size_t count, bytes, i = 0;

	if (entries_measure(rd->reply.entries, &count, &bytes) < 0)
		return *msg = "the server sent a name longer than its reply", -EIO;
	if (!count && !rd->reply.eof)
		return *msg = "the server sent no entries and no eof", -EIO;
	ents = calloc(count ? count : 1, sizeof(*ents));
	names = malloc(bytes ? bytes : 1);
	if (!ents || !names) {
		free(ents);
		free(names);
		return *msg = "out of memory", -ENOMEM;
	}
	np = names;
	for (const entry4 *w = rd->reply.entries; w; w = e.nextentry)
		entry_fill(&ents[i++], entry_get(w, &e), &np, r->attrs);
	page.entries = ents;
	page.count = count;
	page.cookie = count ? ents[count - 1].cookie : r->cookie;
	memcpy(page.cookieverf, rd->cookieverf, NFS4DIR_VERF_SIZE);
	page.eof = rd->reply.eof != 0;
	r->cb(0, &page, NULL, r->priv);
	free(ents);
	free(names);
	return 0;
}

static void on_readdir(struct rpc_context *rpc, int status, void *data, void *priv)
{
	static const int want[2] = {OP_PUTFH, OP_READDIR};
	struct readdir_req *r = priv;
	const COMPOUND4res *res = data;
	nfs_resop4 rd;
	const char *msg = NULL;
	char buf[256];
	int rc;

	(void)rpc;
	if (status != RPC_STATUS_SUCCESS) {
		rc = nfs4rpc_failure(status, data, &msg);
		goto fail;
	}
	rc = compound_check(res, want, 2, buf, sizeof(buf));
	msg = buf;
	if (rc < 0)
		goto fail;
	rd = nfs4rpc_resop_at(res, 1);
	rc = readdir_deliver(r, &rd.nfs_resop4_u.opreaddir.READDIR4res_u.resok4, &msg);
	if (rc < 0)
		goto fail;
	free(r);
	return;
fail:
	r->cb(rc, NULL, msg, r->priv);
	free(r);
}

static uint32_t clamp_count(uint32_t v, uint32_t def)
{
	if (!v)
		v = def;
	if (v < NFS4DIR_MAXCOUNT_MIN)
		return NFS4DIR_MAXCOUNT_MIN;
	return v > NFS4DIR_MAXCOUNT_MAX ? NFS4DIR_MAXCOUNT_MAX : v;
}

/* The attribute bitmap of variant attrs into bits[2]; returns its length in words. */
static uint32_t readdir_bits(enum nfs4dir_attrs attrs, uint32_t bits[2])
{
	bits[0] = 1u << FATTR4_TYPE | 1u << FATTR4_RDATTR_ERROR | 1u << FATTR4_FILEHANDLE;
	bits[1] = 0;
	if (attrs == NFS4DIR_ATTRS_NAMES)
		return 1;
	bits[0] |= 1u << FATTR4_SIZE | 1u << FATTR4_FILEID;
	bits[1] = 1u << (FATTR4_TIME_MODIFY - 32);
	return 2;
}

int nfs4dir_readdir(struct rpc_context *rpc, const struct nfs4dir_readdir_args *a,
		    nfs4dir_readdir_cb cb, void *priv)
{
	uint32_t bits[2];
	nfs_argop4 op[2];
	COMPOUND4args args = {0};
	READDIR4args *rd = &op[1].nfs_argop4_u.opreaddir;
	struct readdir_req *r;

	if (!rpc || !a || !cb || !a->fh || a->fhlen == 0 || a->fhlen > NFS4DIR_FH_MAX ||
	    (a->attrs != NFS4DIR_ATTRS_FULL && a->attrs != NFS4DIR_ATTRS_NAMES))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = (struct readdir_req){cb, priv, a->attrs, a->cookie};
	memset(op, 0, sizeof(op));
	op[0].argop = OP_PUTFH;
	op[0].nfs_argop4_u.opputfh.object.nfs_fh4_len = a->fhlen;
	op[0].nfs_argop4_u.opputfh.object.nfs_fh4_val = (char *)a->fh;
	op[1].argop = OP_READDIR;
	rd->cookie = a->cookie;
	memcpy(rd->cookieverf, a->cookieverf, NFS4DIR_VERF_SIZE);
	rd->maxcount = clamp_count(a->maxcount, NFS4DIR_MAXCOUNT_DEF);
	rd->dircount = a->dircount ? clamp_count(a->dircount, rd->maxcount) : rd->maxcount;
	rd->attr_request.bitmap4_len = readdir_bits(a->attrs, bits);
	rd->attr_request.bitmap4_val = bits;
	args.argarray.argarray_len = 2;
	args.argarray.argarray_val = op;
	if (rpc_nfs4_compound_async(rpc, on_readdir, &args, r) != 0) {
		free(r);
		return -EIO;
	}
	return 0;
}
