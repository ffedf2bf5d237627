#include <criterion/criterion.h>
#include <string.h>

#include "io/nfsurl.h"

static struct nfsurl parse_ok(const char *s)
{
	struct nfsurl u;
	struct vherr err = {0};

	cr_assert_eq(nfsurl_parse(s, &u, &err), 0, "%s: %s", s, err.msg);
	return u;
}

static void parse_bad(const char *s, const char *why)
{
	struct nfsurl u;
	struct vherr err = {0};

	cr_assert_eq(nfsurl_parse(s, &u, &err), -VHERR_USAGE, "accepted '%s'", s);
	cr_assert_eq(err.code, VHERR_USAGE);
	cr_assert_null(u.host);
	cr_assert_null(u.path);
	cr_assert(strstr(err.msg, "invalid nfs URL") != NULL, "%s", err.msg);
	if (why)
		cr_assert(strstr(err.msg, why) != NULL, "%s: '%s' lacks '%s'", s, err.msg, why);
}

Test(nfsurl, defaults)
{
	struct nfsurl u = parse_ok("nfs://server/export/raw-images");

	cr_assert_str_eq(u.host, "server");
	cr_assert_str_eq(u.path, "/export/raw-images");
	cr_assert_eq(u.version, 3);
	cr_assert_eq(u.nfsport, 0);
	cr_assert_eq(u.mountport, 0);
	cr_assert_eq(u.uid, -1);
	cr_assert_eq(u.gid, -1);
	nfsurl_release(&u);
	nfsurl_release(&u); /* idempotent */
}

Test(nfsurl, all_arguments)
{
	struct nfsurl u =
	    parse_ok("nfs://127.0.0.1/export/"
		     "?version=4&nfsport=20490&mountport=20491&uid=0&gid=4294967295");

	cr_assert_str_eq(u.host, "127.0.0.1");
	cr_assert_str_eq(u.path, "/export");
	cr_assert_eq(u.version, 4);
	cr_assert_eq(u.nfsport, 20490);
	cr_assert_eq(u.mountport, 20491);
	cr_assert_eq(u.uid, 0);
	cr_assert_eq(u.gid, 4294967295LL);
	nfsurl_release(&u);
}

Test(nfsurl, port_root_and_ipv6)
{
	struct nfsurl u = parse_ok("nfs://fs-1.example.com:2049/");

	cr_assert_str_eq(u.host, "fs-1.example.com");
	cr_assert_eq(u.nfsport, 2049);
	cr_assert_str_eq(u.path, "/");
	nfsurl_release(&u);
	u = parse_ok("nfs://[::1]:20490/a/b.c/d..e?version=3");
	cr_assert_str_eq(u.host, "::1");
	cr_assert_eq(u.nfsport, 20490);
	cr_assert_str_eq(u.path, "/a/b.c/d..e");
	nfsurl_release(&u);
	u = parse_ok("nfs://h///");
	cr_assert_str_eq(u.path, "/");
	nfsurl_release(&u);
}

Test(nfsurl, is_nfs)
{
	cr_assert(nfsurl_is_nfs("nfs://x/y"));
	cr_assert_not(nfsurl_is_nfs("/mnt/nfs://x"));
	cr_assert_not(nfsurl_is_nfs("nfs:/x"));
	cr_assert_not(nfsurl_is_nfs(""));
}

Test(nfsurl, malformed)
{
	parse_bad("", "nfs://");
	parse_bad("http://h/p", "nfs://");
	parse_bad("NFS://h/p", "nfs://");
	parse_bad("nfs://", "missing path");
	parse_bad("nfs://host", "missing path");
	parse_bad("nfs:///path", "missing host");
	parse_bad("nfs://:2049/path", "missing host");
	parse_bad("nfs://ho_st/p", "bad character in host");
	parse_bad("nfs://user@host/p", "bad character in host");
	parse_bad("nfs://h:/p", "bad port");
	parse_bad("nfs://h:0/p", "bad port");
	parse_bad("nfs://h:65536/p", "bad port");
	parse_bad("nfs://h:02049/p", "bad port");
	parse_bad("nfs://h:20x/p", "bad port");
	parse_bad("nfs://[]/p", "IPv6");
	parse_bad("nfs://[::1/p", "IPv6");
	parse_bad("nfs://[::1]x/p", "bad character in host");
	parse_bad("nfs://h/a//b", "component");
	parse_bad("nfs://h/a/./b", "component");
	parse_bad("nfs://h/a/../b", "component");
	parse_bad("nfs://h/..", "component");
	parse_bad("nfs://h/a%20b", "bad character");
	parse_bad("nfs://h/a\tb", "bad character");
	parse_bad("nfs://h/a#frag", "bad character");
	parse_bad("nfs://h/p?", "empty query");
	parse_bad("nfs://h/p?version=3&", "empty argument");
	parse_bad("nfs://h/p?&version=3", "empty argument");
	parse_bad("nfs://h/p?version", "without '='");
	parse_bad("nfs://h/p?version=2", "3 or 4");
	parse_bad("nfs://h/p?version=", "3 or 4");
	parse_bad("nfs://h/p?version=4.1", "3 or 4");
	parse_bad("nfs://h/p?version=3&version=4", "twice");
	parse_bad("nfs://h/p?Version=3", "unknown argument");
	parse_bad("nfs://h/p?readahead=1", "unknown argument");
	parse_bad("nfs://h/p?nfsport=0", "bad port");
	parse_bad("nfs://h/p?mountport=70000", "bad port");
	parse_bad("nfs://h:1/p?nfsport=2", "twice");
	parse_bad("nfs://h/p?uid=-1", "numbers");
	parse_bad("nfs://h/p?gid=4294967296", "numbers");
	parse_bad("nfs://h/p?uid=1e3", "numbers");
}
