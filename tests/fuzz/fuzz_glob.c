/* Fuzzes select_glob_match. The input is "PATTERN\nPATH" (no newline: the input is both).
 * Properties: a pattern without '/' looks at the base name only, so putting directories
 * in front of a '/'-free path changes nothing; a pattern without glob characters matches
 * exactly the base name (no '/') or the whole path (with '/'). */
#include "engine/select.h"
#include "tests/fuzz/fuzz.h"

static int has_magic(const char *p)
{
	return strpbrk(p, "*?[\\") != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in, *pattern, *path, *nl, *deep;
	const char *base;
	int m;

	if (size > 512) /* fnmatch backtracks: long '*' chains only measure glibc */
		return 0;
	in = fuzz_cstr(data, size);
	nl = strchr(in, '\n');
	pattern = in;
	path = in;
	if (nl) {
		*nl = '\0';
		path = nl + 1;
	}
	m = select_glob_match(pattern, path);
	FUZZ_CHECK(m == 0 || m == 1, "'%s' vs '%s' -> %d", pattern, path, m);
	if (!strchr(pattern, '/') && !strchr(path, '/')) {
		deep = malloc(strlen(path) + 8);
		strcpy(deep, "a/b.c/");
		strcat(deep, path);
		FUZZ_CHECK(select_glob_match(pattern, deep) == m,
			   "'%s': '%s' and '%s' differ though the base name is the same",
			   pattern, path, deep);
		free(deep);
	}
	if (!has_magic(pattern)) {
		base = strrchr(path, '/');
		base = strchr(pattern, '/') || !base ? path : base + 1;
		FUZZ_CHECK(m == (strcmp(pattern, base) == 0), "literal '%s' vs '%s' -> %d",
			   pattern, path, m);
	}
	free(in);
	return 0;
}
