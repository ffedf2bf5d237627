/* Fuzzes exif_orientation (the TIFF data of an APP1 "Exif" segment or a PNG eXIf chunk).
 * Whatever the bytes, the answer is 1..8 and a pure function of them; the sanitizers of
 * the libFuzzer build catch a read outside t[0..n) (libFuzzer hands over a buffer of
 * exactly n bytes, and this target copies it to one so the replay build does too). It
 * also checks that cutting the last byte can only lose the tag (answer 1), never give
 * another value: the first Orientation entry wins, and the cut cannot add one. */
#include "kernels/exif.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *t = malloc(size ? size : 1);
	int o, again;

	if (!t)
		abort();
	memcpy(t, data, size);
	o = exif_orientation(t, size);
	FUZZ_CHECK(o >= 1 && o <= 8, "orientation %d", o);
	again = exif_orientation(t, size);
	FUZZ_CHECK(again == o, "not a pure function: %d then %d", o, again);
	FUZZ_CHECK(!memcmp(t, data, size), "the input was written to");
	if (size > 0) {
		int cut = exif_orientation(t, size - 1);

		FUZZ_CHECK(cut == o || cut == 1, "orientation %d, %d with the last byte cut", o,
			   cut);
	}
	free(t);
	return 0;
}
