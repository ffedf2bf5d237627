/* lfsstats: latencyfs' counters, one per request kind plus totals, updated atomically by
 * the serving threads and reported once at unmount (stderr line and/or JSON file). */
#ifndef VHPREP_BENCH_LFSSTATS_H
#define VHPREP_BENCH_LFSSTATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* X(NAME, "json key"). Request counters count requests received (served or failed);
 * round_trips counts the delayed ones; denied counts refused write attempts. */
#define LFSSTATS_LIST(X)                                                       \
	X(LOOKUP, "lookup")                                                    \
	X(GETATTR, "getattr")                                                  \
	X(READLINK, "readlink")                                                \
	X(OPEN, "open")                                                        \
	X(READ, "read")                                                        \
	X(OPENDIR, "opendir")                                                  \
	X(READDIR, "readdir")                                                  \
	X(READDIRPLUS, "readdirplus")                                          \
	X(STATFS, "statfs")                                                    \
	X(ACCESS, "access")                                                    \
	X(FLUSH, "flush")                                                      \
	X(RELEASE, "release")                                                  \
	X(RELEASEDIR, "releasedir")                                            \
	X(FORGET, "forget")                                                    \
	X(DENIED, "denied")                                                    \
	X(ROUND_TRIPS, "round_trips")                                          \
	X(BYTES_READ, "bytes_read")                                            \
	X(DIR_ENTRIES, "dir_entries")

enum lfsstat {
#define LFSSTAT_ENUM(name, key) LFSSTAT_##name,
	LFSSTATS_LIST(LFSSTAT_ENUM)
#undef LFSSTAT_ENUM
	LFSSTAT__COUNT
};

struct lfsstats {
	_Atomic uint64_t v[LFSSTAT__COUNT]; /* any thread, relaxed */
};

/* Zeroes every counter of s. Call before any thread uses s. */
void lfsstats_init(struct lfsstats *s);
/* Adds n to counter which. Any thread. */
void lfsstats_add(struct lfsstats *s, enum lfsstat which, uint64_t n);
/* Returns counter which (a snapshot). Any thread. */
uint64_t lfsstats_get(struct lfsstats *s, enum lfsstat which);
/* Prints every counter on one line, "latencyfs: lookup=N getattr=N ...", to f. */
void lfsstats_print(struct lfsstats *s, FILE *f);
/* Writes every counter as one JSON object (and a newline) to path, atomically (a temporary
 * file renamed over path). Returns 0, or a negative errno with a message in err. */
int lfsstats_write_json(struct lfsstats *s, const char *path, char *err, size_t errlen);

#endif
