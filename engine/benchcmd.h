/* benchcmd: `vhprep bench [OPTIONS] SOURCE`, the storage benchmark: walk and read a
 * source as a run would (same sources, same in-flight depth), without transforming or
 * writing anything, and report entries/s, files/s, MB/s and per-operation latency
 * percentiles (directory listing, open, read), as text on stderr and one JSON line on
 * stdout. */
#ifndef VHPREP_ENGINE_BENCHCMD_H
#define VHPREP_ENGINE_BENCHCMD_H

/* Runs the benchmark; argv[0] is "bench". Returns the exit code (0, or 2 for a usage or
 * source error, 1 when reads failed). Call from the main thread only. */
int benchcmd_main(int argc, char **argv);

#endif
