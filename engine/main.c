/* vhprep: the command. Everything is in run.c; main only sets the allocator up and
 * hands over argv. */
#include <malloc.h>

#include "engine/run.h"

int main(int argc, char **argv)
{
	/* Blocks of 1 MiB and more (file buffers, decoded planes) are mmapped, so a freed
	 * one goes back to the system at once: glibc's default threshold grows up to 32 MiB
	 * and then keeps such buffers in per-thread arenas, where fifty 8000x6000 JPEGs at
	 * --read-budget 16M held 355 MB of RSS (72 MB with this; issue 13). */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	return run_main(argc, argv);
}
