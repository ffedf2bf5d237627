/* fuzz: what every fuzz target shares. A target defines LLVMFuzzerTestOneInput and checks
 * properties of the parser it drives with FUZZ_CHECK: a violated property aborts, which
 * libFuzzer reports as a crash (and saves the input), and which fails the replay test. */
#ifndef VHPREP_TESTS_FUZZ_H
#define VHPREP_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                                  \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, __LINE__,    \
				#cond);                                                        \
			fprintf(stderr, __VA_ARGS__);                                          \
			fputc('\n', stderr);                                                   \
			abort();                                                               \
		}                                                                              \
	} while (0)

/* Returns data[0..size) as a NUL-terminated string (caller frees); a NUL inside the
 * input ends the string early, as it would on a command line. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
