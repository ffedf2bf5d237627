/* Fuzzes filelist_clean_relpath (the --files-from line normaliser). An accepted path
 * must be one that never leaves the source root, in canonical form, and cleaning it
 * again must change nothing. */
#include "io/filelist.h"
#include "tests/fuzz/fuzz.h"

static void check_clean(const char *in, const char *out)
{
	size_t n = strlen(out);

	FUZZ_CHECK(n > 0, "'%s' cleaned to an empty path", in);
	FUZZ_CHECK(n <= strlen(in), "'%s' grew to '%s'", in, out);
	FUZZ_CHECK(out[0] != '/', "'%s' -> absolute '%s'", in, out);
	FUZZ_CHECK(out[n - 1] != '/', "'%s' -> trailing slash '%s'", in, out);
	FUZZ_CHECK(!strstr(out, "//"), "'%s' -> '%s' has '//'", in, out);
	for (const char *p = out; *p;) {
		size_t len = strcspn(p, "/");

		FUZZ_CHECK(!(len == 1 && p[0] == '.'), "'%s' -> '%s' has a '.' part", in, out);
		FUZZ_CHECK(!(len == 2 && p[0] == '.' && p[1] == '.'), "'%s' -> '%s' has '..'",
			   in, out);
		p += len + (p[len] == '/');
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in, *path, *again;

	if (size > 4096)
		return 0;
	in = fuzz_cstr(data, size);
	path = strdup(in);
	if (filelist_clean_relpath(path) == 0) {
		check_clean(in, path);
		again = strdup(path);
		FUZZ_CHECK(filelist_clean_relpath(again) == 0 && strcmp(again, path) == 0,
			   "not idempotent: '%s' -> '%s' -> '%s'", in, path, again);
		free(again);
	}
	free(path);
	free(in);
	return 0;
}
