/* nfsurl: the nfs:// URL parser (see nfsurl.h for the grammar). */
#include "io/nfsurl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "nfs://"

int nfsurl_is_nfs(const char *s)
{
	return strncmp(s, PREFIX, strlen(PREFIX)) == 0;
}

/* Parses the decimal number [s, s+n) into *v if it is within [lo, hi]. */
static int parse_num(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *v)
{
	int64_t x = 0;

	if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		x = x * 10 + (s[i] - '0');
	}
	if (x < lo || x > hi)
		return -1;
	*v = x;
	return 0;
}

static int host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-';
}

/* Parses HOST[:PORT] in [s, end) into u; returns NULL or the reason it is invalid. */
static const char *parse_authority(const char *s, const char *end, struct nfsurl *u)
{
	const char *h = s, *hend;
	int64_t port;

	if (*s == '[') {
		h = s + 1;
		hend = memchr(h, ']', (size_t)(end - h));
		if (!hend || hend == h)
			return "bad IPv6 address";
		for (const char *c = h; c < hend; c++)
			if (!(host_char(*c) || *c == ':') || *c == '-')
				return "bad IPv6 address";
		s = hend + 1;
	} else {
		for (s = h; s < end && host_char(*s); s++)
			;
		hend = s;
		if (hend == h)
			return "missing host";
	}
	if (s < end) {
		if (*s != ':')
			return "bad character in host";
		if (parse_num(s + 1, (size_t)(end - s - 1), 1, 65535, &port) < 0)
			return "bad port";
		u->nfsport = (int)port;
	}
	u->host = strndup(h, (size_t)(hend - h));
	return u->host ? NULL : "out of memory";
}

/* Whether the component [c, c+len) is empty, "." or "..". */
static int bad_component(const char *c, size_t len)
{
	return len == 0 || (len == 1 && c[0] == '.') ||
	       (len == 2 && c[0] == '.' && c[1] == '.');
}

/* Checks and copies the path [s, end) (starting with '/') into u->path. */
static const char *parse_path(const char *s, const char *end, struct nfsurl *u)
{
	size_t n = (size_t)(end - s);

	while (n > 1 && s[n - 1] == '/')
		n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || c == '%' || c == '#')
			return "bad character in path";
	}
	for (const char *c = s + 1; n > 1 && c <= s + n;) {
		const char *slash = memchr(c, '/', (size_t)(s + n - c));
		const char *cend = slash ? slash : s + n;

		if (bad_component(c, (size_t)(cend - c)))
			return "empty, '.' or '..' path component";
		c = cend + 1;
	}
	u->path = strndup(s, n);
	return u->path ? NULL : "out of memory";
}

/* Applies one KEY=VALUE of length n; seen is a bit set of the keys already given. */
static const char *parse_arg(const char *s, size_t n, struct nfsurl *u, unsigned *seen)
{
	static const char *const keys[] = {"version", "nfsport", "mountport", "uid", "gid"};
	const char *eq = memchr(s, '=', n);
	size_t klen, vlen;
	int64_t v;
	unsigned k;

	if (!eq)
		return "argument without '='";
	klen = (size_t)(eq - s);
	vlen = n - klen - 1;
	for (k = 0; k < 5; k++)
		if (strlen(keys[k]) == klen && memcmp(keys[k], s, klen) == 0)
			break;
	if (k == 5)
		return "unknown argument (known: version, nfsport, mountport, uid, gid)";
	if (*seen & (1u << k))
		return "argument given twice";
	*seen |= 1u << k;
	if (k == 0) {
		if (parse_num(eq + 1, vlen, 3, 4, &v) < 0)
			return "version must be 3 or 4";
		u->version = (int)v;
	} else if (k <= 2) {
		if (parse_num(eq + 1, vlen, 1, 65535, &v) < 0)
			return "bad port";
		if (k == 1 && u->nfsport)
			return "port given twice (host:port and nfsport)";
		*(k == 1 ? &u->nfsport : &u->mountport) = (int)v;
	} else {
		if (parse_num(eq + 1, vlen, 0, 4294967295LL, &v) < 0)
			return "uid and gid must be numbers";
		*(k == 3 ? &u->uid : &u->gid) = v;
	}
	return NULL;
}

static const char *parse_query(const char *s, struct nfsurl *u)
{
	unsigned seen = 0;
	const char *why;

	if (*s == '\0')
		return "empty query";
	for (;;) {
		size_t n = strcspn(s, "&");

		if (n == 0)
			return "empty argument";
		if ((why = parse_arg(s, n, u, &seen)))
			return why;
		if (s[n] == '\0')
			return NULL;
		s += n + 1;
	}
}

static const char *parse_all(const char *s, struct nfsurl *u)
{
	const char *auth, *path, *query;
	const char *why;

	if (!nfsurl_is_nfs(s))
		return "does not start with nfs://";
	auth = s + strlen(PREFIX);
	path = strchr(auth, '/');
	if (!path)
		return "missing path";
	query = strchr(path, '?');
	if (!query)
		query = path + strlen(path);
	if ((why = parse_authority(auth, path, u)) || (why = parse_path(path, query, u)))
		return why;
	return *query ? parse_query(query + 1, u) : NULL;
}

int nfsurl_parse(const char *s, struct nfsurl *u, struct vherr *err)
{
	const char *why;

	*u = (struct nfsurl){.version = 3, .uid = -1, .gid = -1};
	why = parse_all(s, u);
	if (!why)
		return 0;
	nfsurl_release(u);
	return vherr_set(err, VHERR_USAGE, VHSTAGE_WALK, "invalid nfs URL '%s': %s", s, why);
}

void nfsurl_release(struct nfsurl *u)
{
	if (!u)
		return;
	free(u->host);
	free(u->path);
	*u = (struct nfsurl){0};
}
