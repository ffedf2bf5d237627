/* Fuzzes io/urllist: the input is a whole --urls list (any format). Every record must be
 * refused with a reason and a label, or give an http(s) URL that urllist_check_url
 * accepts, a key that is a clean relative path (never absolute, never "..", already
 * canonical) of bounded length, and extra columns that are one JSON object. Derived keys
 * are a pure function of the URL, and redaction never keeps credentials. */
#include <jansson.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io/filelist.h"
#include "io/urllist.h"
#include "tests/fuzz/fuzz.h"

static void check_key(const char *url, const char *key)
{
	char *again = strdup(key);

	FUZZ_CHECK(*key && strlen(key) <= URLLIST_KEY_MAX + 32, "%s: key '%s'", url, key);
	FUZZ_CHECK(filelist_clean_relpath(again) == 0 && strcmp(again, key) == 0,
		   "%s: key '%s' is not a clean relative path", url, key);
	free(again);
}

static void check_url(const char *url)
{
	char k1[URLLIST_KEY_MAX + 64], k2[URLLIST_KEY_MAX + 64], red[512];
	const char *auth, *end;

	FUZZ_CHECK(urllist_check_url(url, NULL) == 0, "'%s' accepted by the list only", url);
	FUZZ_CHECK(!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8), "%s",
		   url);
	FUZZ_CHECK(urllist_derive_key(url, k1, sizeof(k1)) == 0, "no key for %s", url);
	FUZZ_CHECK(urllist_derive_key(url, k2, sizeof(k2)) == 0 && !strcmp(k1, k2),
		   "key of %s not stable", url);
	check_key(url, k1);
	urllist_redact(url, 0, red, sizeof(red));
	auth = strstr(red, "://");
	FUZZ_CHECK(auth, "%s -> %s", url, red);
	end = auth + 3 + strcspn(auth + 3, "/?#");
	FUZZ_CHECK(!memchr(auth, '@', (size_t)(end - auth)), "credentials kept: %s", red);
	FUZZ_CHECK(!strchr(red, '?') || !strcmp(strchr(red, '?'), "?redacted"), "%s", red);
	FUZZ_CHECK(!strchr(red, '#'), "%s", red);
}

static void check_record(const struct urllist_rec *r)
{
	json_t *x;

	FUZZ_CHECK(r->label, "record at line %llu has no label", (unsigned long long)r->line);
	if (r->err.code) {
		FUZZ_CHECK(!r->url && r->err.msg[0], "refused record without a reason");
		return;
	}
	check_url(r->url);
	check_key(r->url, r->key);
	if (!r->extra)
		return;
	x = json_loads(r->extra, 0, NULL);
	FUZZ_CHECK(json_is_object(x), "extra is not an object: %s", r->extra);
	FUZZ_CHECK(!json_object_get(x, "valohai.tags"), "valohai.* copied: %s", r->extra);
	json_decref(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("urllist", 0);
	char path[64], *as_url;
	struct urllist *l;
	struct urllist_rec rec;
	struct vherr err;

	if (fd < 0 || size > (1 << 20) || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (urllist_open(path, NULL, &l, &err) == 0) {
		while (urllist_next(l, &rec, &err) > 0)
			check_record(&rec);
		urllist_free(l);
	}
	close(fd);
	as_url = fuzz_cstr(data, size < 4096 ? size : 4096);
	if (urllist_check_url(as_url, NULL) == 0)
		check_url(as_url);
	free(as_url);
	return 0;
}
