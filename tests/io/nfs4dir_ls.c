/* nfs4dir_ls: lists one NFSv4 directory with io/nfs4dir, page by page, for measurements
 * (time, pages, time to the first page; peak RSS with /usr/bin/time -v). Not a ctest.
 *
 *   nfs4dir_ls 'nfs://HOST/PSEUDO/PATH?version=4[&nfsport=N]' [full|names] [MAXCOUNT]
 *
 * Prints one JSON line on stdout: entries, dirs, files, errors, pages, seconds,
 * first_page_seconds. Exit 0, or 1 with a message on stderr. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

#include "io/nfs4dir.h"
#include "io/nfsurl.h"

struct walk {
	int calls, rc;
	char msg[512];
	char *fh;
	uint32_t fhlen;
	uint64_t cookie;
	char verf[NFS4DIR_VERF_SIZE];
	bool eof;
	size_t entries, dirs, files, errors;
	int pages;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_until(struct nfs_context *nfs, const int *calls, int want)
{
	while (*calls < want) {
		struct pollfd p = {nfs_get_fd(nfs), (short)nfs_which_events(nfs), 0};

		if (poll(&p, 1, 100) < 0 || nfs_service(nfs, p.revents) < 0)
			return -1;
	}
	return 0;
}

static void on_lookup(int rc, char *fh, uint32_t fhlen, const char *msg, void *priv)
{
	struct walk *w = priv;

	w->calls++;
	w->rc = rc;
	w->fh = fh;
	w->fhlen = fhlen;
	snprintf(w->msg, sizeof(w->msg), "%s", msg ? msg : "");
}

static void on_page(int rc, const struct nfs4dir_page *pg, const char *msg, void *priv)
{
	struct walk *w = priv;

	w->calls++;
	w->rc = rc;
	if (rc < 0) {
		snprintf(w->msg, sizeof(w->msg), "%s", msg);
		return;
	}
	w->pages++;
	for (size_t i = 0; i < pg->count; i++) {
		const struct nfs4dir_entry *e = &pg->entries[i];

		w->entries++;
		w->errors += e->err != 0;
		w->dirs += e->type == NFS4DIR_DIR;
		w->files += e->type == NFS4DIR_REG;
	}
	w->cookie = pg->cookie;
	memcpy(w->verf, pg->cookieverf, sizeof(w->verf));
	w->eof = pg->eof;
}

/* Sets the context's NFS port: libnfs 4.0 has no setter, only its URL arguments. */
static int set_port(struct nfs_context *nfs, int port)
{
	char args[64];
	struct nfs_url *u;

	if (!port)
		return 0;
	snprintf(args, sizeof(args), "nfs://?nfsport=%d", port);
	u = nfs_parse_url_incomplete(nfs, args);
	if (!u)
		return -1;
	nfs_destroy_url(u);
	return 0;
}

static int list(struct nfs_context *nfs, struct walk *w, enum nfs4dir_attrs attrs,
		uint32_t maxcount, double *first)
{
	double t0 = now();

	while (!w->eof) {
		struct nfs4dir_readdir_args a = {w->fh,	   w->fhlen, w->cookie, {0},
						 maxcount, 0,	     attrs};
		int before = w->calls;

		memcpy(a.cookieverf, w->verf, sizeof(a.cookieverf));
		if (nfs4dir_readdir(nfs_get_rpc_context(nfs), &a, on_page, w) < 0 ||
		    run_until(nfs, &w->calls, before + 1) < 0)
			return fprintf(stderr, "nfs4dir_ls: %s\n", nfs_get_error(nfs)), -1;
		if (w->rc < 0)
			return fprintf(stderr, "nfs4dir_ls: readdir: %s\n", w->msg), -1;
		if (w->pages == 1)
			*first = now() - t0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct nfsurl u = {0};
	struct vherr err = {0};
	struct nfs_context *nfs = NULL;
	struct walk w = {0};
	enum nfs4dir_attrs attrs = NFS4DIR_ATTRS_FULL;
	uint32_t maxcount = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 0) : 0;
	double t0, first = 0;
	int rc = 1;

	if (argc < 2 || nfsurl_parse(argv[1], &u, &err) < 0 || u.version != 4) {
		fprintf(stderr,
			"usage: nfs4dir_ls 'nfs://HOST/PATH?version=4' [full|names] "
			"[MAXCOUNT]%s%s\n",
			err.msg[0] ? ": " : "", err.msg);
		return 2;
	}
	if (argc > 2 && !strcmp(argv[2], "names"))
		attrs = NFS4DIR_ATTRS_NAMES;
	nfs = nfs_init_context();
	if (!nfs || nfs_set_version(nfs, NFS_V4) < 0 || set_port(nfs, u.nfsport) < 0)
		goto out;
	/* mount the pseudo root: the walk starts at the URL's path by our own LOOKUPs */
	if (nfs_mount(nfs, u.host, "/") < 0) {
		fprintf(stderr, "nfs4dir_ls: mount: %s\n", nfs_get_error(nfs));
		goto out;
	}
	t0 = now();
	if (nfs4dir_lookup(nfs_get_rpc_context(nfs), u.path, on_lookup, &w) < 0 ||
	    run_until(nfs, &w.calls, 1) < 0 || w.rc < 0) {
		fprintf(stderr, "nfs4dir_ls: lookup %s: %s\n", u.path, w.msg);
		goto out;
	}
	if (list(nfs, &w, attrs, maxcount, &first) < 0)
		goto out;
	printf(
	    "{\"entries\": %zu, \"dirs\": %zu, \"files\": %zu, \"errors\": %zu, \"pages\": %d, "
	    "\"seconds\": %.3f, \"first_page_seconds\": %.4f}\n",
	    w.entries, w.dirs, w.files, w.errors, w.pages, now() - t0, first);
	rc = 0;
out:
	free(w.fh);
	if (nfs)
		nfs_destroy_context(nfs);
	nfsurl_release(&u);
	return rc;
}
