/* nfsurl: parses the nfs:// URLs vhprep accepts as a source. Our own strict parser (not
 * libnfs' nfs_parse_url_*), so a typo is a usage error and not a silent default:
 *
 *   nfs://HOST[:PORT]/PATH[?KEY=VALUE&...]
 *
 * HOST is a name or IPv4 address ([A-Za-z0-9.-]) or a bracketed IPv6 address; PORT and
 * the nfsport/mountport values are 1-65535 (PORT is the NFS port, like nfsport; giving
 * both is an error); PATH is absolute, its trailing '/' dropped, without empty, "." or
 * ".." components, '%' escapes or control characters. Keys, each at most once:
 * version=3|4 (default 3), nfsport=N, mountport=N, uid=N, gid=N (0-4294967295).
 * For NFSv3 PATH is mounted whole (MOUNT); for NFSv4 it is looked up from the root. */
#ifndef VHPREP_IO_NFSURL_H
#define VHPREP_IO_NFSURL_H

#include <stdint.h>

#include "common/vherr.h"

/* A parsed URL; every field set by nfsurl_parse. */
struct nfsurl {
	char *host;    /* malloc'd; IPv6 without brackets */
	char *path;    /* malloc'd; absolute, "/" or no trailing '/' */
	int version;   /* 3 or 4 */
	int nfsport;   /* 0: ask the portmapper (v3) or 2049 (v4) */
	int mountport; /* 0: ask the portmapper */
	int64_t uid;   /* -1: libnfs' default (the caller's) */
	int64_t gid;   /* -1: libnfs' default */
};

/* Whether s starts with "nfs://" (the dispatch test of source_open). s not NULL. */
int nfsurl_is_nfs(const char *s);
/* Parses s into *u (owned by the caller: nfsurl_release). Returns 0, or -VHERR_USAGE
 * with err saying what is wrong ("invalid nfs URL 'S': reason"); then *u holds nothing
 * to release. Any thread. */
int nfsurl_parse(const char *s, struct nfsurl *u, struct vherr *err);
/* Frees the strings of u and zeroes it; u may be NULL; idempotent. */
void nfsurl_release(struct nfsurl *u);

#endif
