/* io/urllist: the --urls list's formats, keys, refusals and redaction. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/urllist.h"
#include "tests/common/vhtest.h"

static char dir[PATH_MAX];

static void setup(void)
{
	vht_tmpdir(dir, sizeof(dir));
}

static void teardown(void)
{
	vht_rm_rf(dir);
}

TestSuite(urllist, .init = setup, .fini = teardown);

/* Writes text (len bytes) to dir/name; returns the path (static buffer). */
static const char *list_file(const char *name, const char *text, size_t len)
{
	static char path[PATH_MAX + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	fclose(f);
	return path;
}

struct got {
	char url[1024], key[1200], extra[1024], label[600];
	int refused;
	int code;
	unsigned long long line;
};

/* Reads every record of text into got (at most max); returns the count. */
static int read_all(const char *text, const struct urllist_opts *o, struct got *got, int max,
		    enum urllist_format *fmt)
{
	const char *path = list_file("list", text, strlen(text));
	struct urllist *l;
	struct urllist_rec rec;
	struct vherr err = {0};
	int n = 0, rc;

	cr_assert_eq(urllist_open(path, o, &l, &err), 0, "open: %s", err.msg);
	if (fmt)
		*fmt = urllist_format(l);
	while ((rc = urllist_next(l, &rec, &err)) > 0) {
		cr_assert_lt(n, max);
		memset(&got[n], 0, sizeof(got[n]));
		got[n].refused = rec.err.code != 0;
		got[n].code = rec.err.code;
		got[n].line = (unsigned long long)rec.line;
		snprintf(got[n].label, sizeof(got[n].label), "%s", rec.label ? rec.label : "");
		if (!got[n].refused) {
			snprintf(got[n].url, sizeof(got[n].url), "%s", rec.url);
			snprintf(got[n].key, sizeof(got[n].key), "%s", rec.key);
			snprintf(got[n].extra, sizeof(got[n].extra), "%s",
				 rec.extra ? rec.extra : "");
		}
		n++;
	}
	cr_assert_eq(rc, 0, "next: %s", err.msg);
	urllist_free(l);
	return n;
}

Test(urllist, plain_lines_comments_crlf_bom)
{
	struct got g[8];
	enum urllist_format fmt;
	int n = read_all("\xef\xbb\xbfhttps://a.example/x/1.jpg\r\n"
			 "\n"
			 "# a comment\n"
			 "  http://b.example:8080/2.png  \n"
			 "https://c.example/q.jpg?sig=abc&x=1#frag\n",
			 NULL, g, 8, &fmt);

	cr_assert_eq(fmt, URLLIST_PLAIN);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(g[0].url, "https://a.example/x/1.jpg");
	cr_assert_str_eq(g[0].key, "a.example/x/1.jpg");
	cr_assert_eq(g[0].line, 1);
	cr_assert_str_eq(g[1].url, "http://b.example:8080/2.png");
	cr_assert_str_eq(g[1].key, "b.example_http_8080/2.png");
	cr_assert_eq(g[1].line, 4);
	cr_assert(strncmp(g[2].key, "c.example/q~", 12) == 0, "hashed key: %s", g[2].key);
	cr_assert(strstr(g[2].key, ".jpg") == g[2].key + strlen(g[2].key) - 4,
		  "the hash goes before the extension: %s", g[2].key);
	cr_assert_str_eq(g[2].label, "https://c.example/q.jpg?redacted");
}

Test(urllist, csv_with_key_quotes_and_extra_columns)
{
	struct got g[8];
	enum urllist_format fmt;
	int n = read_all("label,url,key,\"cap,tion\"\n"
			 "cat,https://h/1.jpg,cats/one.jpg,\"a \"\"quoted\"\", comma\"\n"
			 "dog,https://h/2.jpg,,\"two\nlines\"\n"
			 "x,https://h/3.jpg,../escape.jpg,\n"
			 "y,https://h/4.jpg,/abs.jpg,\n"
			 "z,\"https://h/5.jpg\n",
			 NULL, g, 8, &fmt);

	cr_assert_eq(fmt, URLLIST_CSV);
	cr_assert_eq(n, 5);
	cr_assert_str_eq(g[0].key, "cats/one.jpg");
	cr_assert_str_eq(g[0].extra,
			 "{\"cap,tion\":\"a \\\"quoted\\\", comma\",\"label\":\"cat\"}");
	cr_assert_str_eq(g[1].key, "h/2.jpg", "an empty key column: derived");
	cr_assert_str_eq(g[1].extra, "{\"cap,tion\":\"two\\nlines\",\"label\":\"dog\"}");
	cr_assert(g[2].refused && g[2].code == VHERR_BAD_NAME, "'..' key refused");
	cr_assert_str_eq(g[2].label, "https://h/3.jpg");
	cr_assert(g[3].refused && g[3].code == VHERR_BAD_NAME, "absolute key refused");
	cr_assert(g[4].refused, "an unterminated quote is malformed");
	cr_assert_eq(g[4].line, 7);
}

Test(urllist, tsv_and_named_columns)
{
	struct got g[4];
	struct urllist_opts o = {.url_column = "link", .key_column = "name"};
	enum urllist_format fmt;
	int n = read_all("name\tlink\tlabel\n"
			 "a/b.jpg\thttps://h/x?y=1\t7\n",
			 &o, g, 4, &fmt);

	cr_assert_eq(fmt, URLLIST_TSV);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(g[0].url, "https://h/x?y=1");
	cr_assert_str_eq(g[0].key, "a/b.jpg");
	cr_assert_str_eq(g[0].extra, "{\"label\":\"7\"}");
}

Test(urllist, named_column_missing_is_a_usage_error)
{
	const char *path = list_file("l", "u,key\nhttps://h/a\n", 17);
	struct urllist_opts o = {.url_column = "link"};
	struct urllist *l = NULL;
	struct vherr err = {0};

	cr_assert_eq(urllist_open(path, &o, &l, &err), -VHERR_USAGE);
	cr_assert_null(l);
	cr_assert(strstr(err.msg, "link"), "%s", err.msg);
	cr_assert_eq(urllist_open("/nonexistent/list", NULL, &l, &err), -VHERR_NOENT);
}

Test(urllist, json_lines)
{
	struct got g[8];
	enum urllist_format fmt;
	int n = read_all("{\"url\": \"https://h/a.jpg\", \"key\": \"k/a.jpg\", \"label\": 3, "
			 "\"tags\": [1, 2], \"valohai.tags\": [\"x\"]}\n"
			 "{\"url\": 5}\n"
			 "not json\n"
			 "{\"url\": \"file:///etc/passwd\"}\n"
			 "{\"url\": \"https://u:p@h/a.jpg\"}\n"
			 "{\"url\": \"https://h/b.jpg\", \"key\": 7}\n",
			 NULL, g, 8, &fmt);

	cr_assert_eq(fmt, URLLIST_JSONL);
	cr_assert_eq(n, 6);
	cr_assert_str_eq(g[0].key, "k/a.jpg");
	cr_assert_str_eq(g[0].extra, "{\"label\":3,\"tags\":[1,2]}",
			 "copied as JSON, valohai.* dropped: %s", g[0].extra);
	for (int i = 1; i < 6; i++)
		cr_assert(g[i].refused, "record %d should be refused", i);
	cr_assert_eq(g[3].code, VHERR_BAD_URL);
	cr_assert_eq(g[4].code, VHERR_BAD_URL, "credentials in the list are refused");
	cr_assert_str_eq(g[4].label, "https://h/a.jpg", "the label drops the credentials");
	cr_assert(strlen(g[2].label) > 7 &&
		      !strcmp(g[2].label + strlen(g[2].label) - 7, "/list:3"),
		  "a record without a URL is named by its line: %s", g[2].label);
}

Test(urllist, nul_and_overlong_lines_are_refused_alone)
{
	static char text[URLLIST_RECORD_MAX + 200];
	const char *path;
	struct urllist *l;
	struct urllist_rec rec;
	struct vherr err;
	size_t n = 0;

	n += (size_t)sprintf(text, "https://h/a\xff\n");
	memcpy(text + n, "https://h/\0b\n", 13);
	n += 13;
	n += (size_t)sprintf(text + n, "https://h/");
	memset(text + n, 'x', URLLIST_RECORD_MAX);
	n += URLLIST_RECORD_MAX;
	n += (size_t)sprintf(text + n, "\nhttps://h/ok.jpg\n");
	path = list_file("nul", text, n);
	cr_assert_eq(urllist_open(path, NULL, &l, &err), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(urllist_next(l, &rec, &err), 1);
		cr_assert_neq(rec.err.code, 0, "record %d should be refused", i);
	}
	cr_assert_eq(urllist_next(l, &rec, &err), 1);
	cr_assert_str_eq(rec.url, "https://h/ok.jpg");
	cr_assert_eq(rec.line, 4);
	cr_assert_eq(urllist_next(l, &rec, &err), 0);
	urllist_free(l);
}

Test(urllist, check_url)
{
	static const char *ok[] = {"http://h/", "HTTPS://H.example/a", "https://[::1]:8443/x",
				   "http://127.0.0.1:24500/a.jpg?x=1#y"};
	static const char *bad[] = {"ftp://h/x",
				    "file:///etc/passwd",
				    "gopher://h/",
				    "https://h/a b",
				    "https://h/\x01",
				    "https://u@h/",
				    "https://u:p@h/",
				    "http://",
				    "https://h:99999/",
				    "javascript:alert(1)",
				    "//h/x",
				    "https://h/caf\xc3\xa9"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
		cr_assert_eq(urllist_check_url(ok[i], NULL), 0, "%s", ok[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		cr_assert_eq(urllist_check_url(bad[i], NULL), -VHERR_BAD_URL, "%s", bad[i]);
}

static void key_is(const char *url, const char *want)
{
	char key[URLLIST_KEY_MAX + 64];

	cr_assert_eq(urllist_derive_key(url, key, sizeof(key)), 0, "%s", url);
	cr_assert_str_eq(key, want, "%s", url);
}

/* A hashed key: the sanitised prefix, "~", 16 hex digits, then the tail. */
static void key_hashed(const char *url, const char *prefix, const char *tail)
{
	char key[URLLIST_KEY_MAX + 64];
	size_t p = strlen(prefix);

	cr_assert_eq(urllist_derive_key(url, key, sizeof(key)), 0, "%s", url);
	cr_assert(strncmp(key, prefix, p) == 0 && key[p] == '~' &&
		      strspn(key + p + 1, "0123456789abcdef") == 16 &&
		      strcmp(key + p + 17, tail) == 0,
		  "%s -> %s (want %s~HASH%s)", url, key, prefix, tail);
}

Test(urllist, derived_keys)
{
	key_is("https://CDN.Example.com/a/B.jpg", "cdn.example.com/a/B.jpg");
	key_is("http://h/a.jpg", "h_http/a.jpg");
	key_is("https://h:8443/a.jpg", "h_8443/a.jpg");
	key_is("https://h/a/../b/./c.jpg", "h/b/c.jpg"); /* what libcurl requests */
	key_hashed("https://h/", "h/_", "");
	key_hashed("https://h/dir/", "h/dir/_", "");
	key_hashed("https://h/a%20b.jpg", "h/a_20b", ".jpg");
	key_hashed("https://h/.hidden.png", "h/_hidden", ".png");
	key_hashed("https://h/get?id=1", "h/get", "");
	key_hashed("https://h/x.jpg#f", "h/x", ".jpg");
	key_hashed("https://a_b/x.jpg", "a_b/x", ".jpg");
	key_hashed("https://[::1]/x.jpg", "___1_/x", ".jpg");
}

Test(urllist, derived_keys_are_distinct)
{
	static const char *urls[] = {
	    "https://h/a.jpg",	   "http://h/a.jpg",	  "https://h:80/a.jpg",
	    "http://h:80/a.jpg",   "https://h/a.jpg?x=1", "https://h/a.jpg?x=2",
	    "https://h/a%2Ejpg",   "https://h/a_jpg",	  "https://h_http/a.jpg",
	    "https://h/a.jpg#1",   "https://h/A.jpg",	  "https://h/a/b.jpg",
	    "https://h/a%2Fb.jpg", "https://h/a.jpg/",	  "https://h2/a.jpg",
	};
	size_t n = sizeof(urls) / sizeof(*urls);
	char keys[sizeof(urls) / sizeof(*urls)][URLLIST_KEY_MAX + 64];

	for (size_t i = 0; i < n; i++)
		cr_assert_eq(urllist_derive_key(urls[i], keys[i], sizeof(keys[i])), 0);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			cr_assert_str_neq(keys[i], keys[j], "%s and %s share %s", urls[i],
					  urls[j], keys[i]);
}

Test(urllist, long_paths_stay_bounded)
{
	static char url[20000];
	char key[URLLIST_KEY_MAX + 64];
	int n = sprintf(url, "https://h");

	for (int i = 0; i < 200; i++)
		n += sprintf(url + n, "/%s", "abcdefghijklmnopqrstuvwxyz0123456789");
	sprintf(url + n, ".jpg");
	cr_assert_eq(urllist_derive_key(url, key, sizeof(key)), 0);
	cr_assert_leq(strlen(key), URLLIST_KEY_MAX + 24);
	cr_assert(strchr(key, '~'), "a cut key is hashed: %s", key);
}

Test(urllist, redact)
{
	char buf[256];

	cr_assert_str_eq(urllist_redact("https://h/a?X-Amz-Signature=s", 0, buf, sizeof(buf)),
			 "https://h/a?redacted");
	cr_assert_str_eq(urllist_redact("https://h/a?X-Amz-Signature=s#f", 1, buf, sizeof(buf)),
			 "https://h/a?X-Amz-Signature=s");
	cr_assert_str_eq(urllist_redact("https://u:p@h/a#f", 0, buf, sizeof(buf)),
			 "https://h/a");
	cr_assert_str_eq(urllist_redact("https://h/a@b", 0, buf, sizeof(buf)), "https://h/a@b");
	cr_assert_str_eq(urllist_redact("https://h/a?q", 0, buf, 12), "https://h/a");
}
