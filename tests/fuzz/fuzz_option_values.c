/* Fuzzes the option-value parsers of engine/config.h with the same string each:
 * config_parse_size, _resize, _shard, _fraction and _long. Besides not crashing, every
 * value they accept must be within the bounds their contract states. */
#include <math.h>
#include <stdint.h>

#include "engine/config.h"
#include "tests/fuzz/fuzz.h"

static void check_size(const char *s)
{
	uint64_t v = 0, again = 0;
	char buf[32];

	if (config_parse_size(s, &v) != 0)
		return;
	/* an accepted size is plain bytes: its decimal form parses back to itself */
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	FUZZ_CHECK(config_parse_size(buf, &again) == 0 && again == v, "'%s' -> %s -> %llu", s,
		   buf, (unsigned long long)again);
}

static void check_resize(const char *s)
{
	int w = 0, h = 0;

	if (config_parse_resize(s, &w, &h) != 0)
		return;
	FUZZ_CHECK(w >= 1 && w <= 65535 && h >= 1 && h <= 65535, "'%s' -> %dx%d", s, w, h);
	if (!strchr(s, 'x') && !strchr(s, 'X'))
		FUZZ_CHECK(w == h, "'%s' (one number) -> %dx%d", s, w, h);
}

static void check_shard(const char *s)
{
	uint32_t i = 0, n = 0;

	if (config_parse_shard(s, &i, &n) != 0)
		return;
	FUZZ_CHECK(n >= 1 && i < n, "'%s' -> %u/%u", s, i, n);
}

static void check_fraction(const char *s)
{
	double f = 0;

	if (config_parse_fraction(s, &f) != 0)
		return;
	FUZZ_CHECK(f > 0.0 && f <= 1.0 && !isnan(f), "'%s' -> %g", s, f);
}

static void check_long(const char *s)
{
	long v = 0;

	if (config_parse_long(s, -1000, 1000, &v) != 0)
		return;
	FUZZ_CHECK(v >= -1000 && v <= 1000, "'%s' -> %ld", s, v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 256)
		return 0;
	s = fuzz_cstr(data, size);
	check_size(s);
	check_resize(s);
	check_shard(s);
	check_fraction(s);
	check_long(s);
	free(s);
	return 0;
}
