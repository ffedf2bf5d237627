/* oplat: per-operation latency histograms for the benchmark (vhprep bench): directory
 * listings, opens and reads, as the source sees them. Log-linear buckets (8 per power
 * of two, so a percentile is within 9% of the truth); recording is one relaxed atomic
 * add, from any thread. */
#ifndef VHPREP_COMMON_OPLAT_H
#define VHPREP_COMMON_OPLAT_H

#include <stdint.h>

enum oplat_op {
	OPLAT_DIR,  /* posix: one directory listed whole; nfs: one READDIRPLUS page */
	OPLAT_OPEN, /* posix: openat; nfs: OPEN (v4) or LOOKUP+ACCESS (v3) */
	OPLAT_READ, /* posix: one pread; nfs: one READ request */
	OPLAT__COUNT
};

struct oplat;

/* Returns zeroed histograms, or NULL when memory runs out. */
struct oplat *oplat_new(void);
/* Frees l; l may be NULL. */
void oplat_free(struct oplat *l);
/* Records one op of ns nanoseconds. l may be NULL (nothing recorded). Thread-safe. */
void oplat_record(struct oplat *l, enum oplat_op op, uint64_t ns);
/* Returns the monotonic clock in nanoseconds (the time base of oplat_record). */
uint64_t oplat_now(void);
/* Returns how many ops of this kind were recorded. */
uint64_t oplat_count(const struct oplat *l, enum oplat_op op);
/* Returns the q-quantile (0 < q <= 1) in nanoseconds, 0 when nothing was recorded. */
uint64_t oplat_quantile(const struct oplat *l, enum oplat_op op, double q);
/* Returns "dir", "open" or "read". */
const char *oplat_name(enum oplat_op op);

#endif
