/* orclock: one lock around liborc's code memory, for libvips' workers.
 *
 * liborc 0.4.33 (Debian 12) keeps compiled programs in a list of code chunks that
 * orc_code_chunk_free merges without a lock, and that compiling splits outside its own:
 * two workers compiling or disposing of a libvips resize at once corrupt the heap
 * (malloc_consolidate aborts, or a SEGV in orc_code_free: 2 runs in 6 of 8 threads x
 * 2,000 small resizes; 1 vhprep run in ~1,000 on damaged JPEGs at -j 8). This module
 * defines orc_program_compile and orc_program_free in the executable (exported with
 * --export-dynamic-symbol, see kernels/CMakeLists.txt), so libvips' calls take one
 * mutex and then run liborc's own. Compiling is ~3% of a libvips resize of a small
 * image; turning vectors off instead (vips_vector_set_enabled) costs up to 10x the
 * instructions on large PNG reductions. */
#ifndef VHPREP_KERNELS_ORCLOCK_H
#define VHPREP_KERNELS_ORCLOCK_H

#include <stdbool.h>

/* Whether libvips' calls into liborc go through the lock (false: this executable does
 * not export the two functions, or liborc is not loaded). */
bool orclock_active(void);

#endif
