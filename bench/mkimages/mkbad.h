/* mkbad: the bad inputs of the `bad` preset, each a file a pipeline must reject cleanly.
 *
 *   good.jpg       a valid 320x240 JPEG (the control)
 *   corrupt.jpg    good.jpg with its headers intact and the entropy-coded data replaced by
 *                  random bytes: the header reads; the decode "succeeds" with libjpeg
 *                  warnings ("Corrupt JPEG data: ..."), so it fails only with fail-on=warning
 *   undecodable.jpg good.jpg whose scan header names an undefined Huffman table: the header
 *                  reads, the decode fails at every fail-on level
 *   truncated.jpg  a valid JPEG cut at 60% of its bytes
 *   truncated.png  a valid PNG cut at 60% of its bytes
 *   zero.jpg       0 bytes
 *   notimage.jpg   plain text
 *   bomb.png       a valid 1-bit PNG of 60000x60000 (3.6 Gpixel) in ~440 kB: decoding it
 *                  would need gigabytes; a reader must refuse it from the header
 * Thread-safe; output depends only on the seed. */
#ifndef VHPREP_BENCH_MKBAD_H
#define VHPREP_BENCH_MKBAD_H

#include <stdint.h>

#include "mkencode.h"
#include "mkpaint.h"

/* X(NAME, "file name", header width, header height); 0x0 = no readable header. */
#define MKBAD_FILES(X)                                                                         \
	X(GOOD, "good.jpg", 320, 240)                                                          \
	X(CORRUPT, "corrupt.jpg", 320, 240)                                                    \
	X(UNDECODABLE, "undecodable.jpg", 320, 240)                                            \
	X(TRUNCATED_JPEG, "truncated.jpg", 320, 240)                                           \
	X(TRUNCATED_PNG, "truncated.png", 320, 240)                                            \
	X(ZERO, "zero.jpg", 0, 0)                                                              \
	X(NOTIMAGE, "notimage.jpg", 0, 0)                                                      \
	X(BOMB, "bomb.png", 60000, 60000)

enum mkbad_kind {
#define MKBAD_ENUM(name, file, w, h) MKBAD_##name,
	MKBAD_FILES(MKBAD_ENUM)
#undef MKBAD_ENUM
	    MKBAD__COUNT
};

/* The file name of `kind` ("corrupt.jpg"). */
const char *mkbad_file(enum mkbad_kind kind);

/* Makes the bytes of `kind`; the control picture is painted with `assets` (may be NULL).
 * Returns 0 and fills *out (release with mkencode_release;
 * width/height are what the header claims, bands 0 when unknown), or -1 with the libvips
 * error buffer set (or errno-style failure: out of memory). */
int mkbad_make(enum mkbad_kind kind, uint64_t seed, const struct mkpaint_assets *assets,
	       struct mkencode_file *out);

#endif
