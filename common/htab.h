/* htab: a concurrent hash table from 64-bit keys to fixed-size records, for the run-long
 * indexes (output names claimed, earlier records) that millions of files pass through.
 *
 * The table is split into stripes, each its own open-addressing array (linear probing)
 * under its own mutex, chosen by the key's top bits: threads working on different keys
 * almost never meet, and no lock covers the whole table. A stripe doubles when it is 70%
 * full, so memory is about 1.4-2.9 x (8 + value_size) bytes per entry.
 *
 * Keys are hashes the caller computes (0 is reserved: key 0 is stored as 1). Records are
 * zeroed when inserted and stay where they are until the stripe grows: a record pointer
 * is valid only while its stripe is locked. */
#ifndef VHPREP_COMMON_HTAB_H
#define VHPREP_COMMON_HTAB_H

#include <stddef.h>
#include <stdint.h>

struct htab;
struct htab_stripe;

/* Returns a table of records of value_size bytes (>= 1), or NULL when memory runs out. */
struct htab *htab_new(size_t value_size);
/* Frees h; h may be NULL. No stripe may be locked. */
void htab_free(struct htab *h);

/* Locks and returns the stripe that holds key. Any thread; pair with htab_unlock. */
struct htab_stripe *htab_lock(struct htab *h, uint64_t key);
/* Unlocks s. */
void htab_unlock(struct htab_stripe *s);
/* Returns key's record in the locked stripe s, or NULL if absent. */
void *htab_find(struct htab_stripe *s, uint64_t key);
/* Returns key's record in the locked stripe s, inserting a zeroed one (*added = 1) if
 * absent; NULL when memory runs out. added may be NULL. */
void *htab_insert(struct htab_stripe *s, uint64_t key, int *added);

/* Returns the number of records (a snapshot). */
uint64_t htab_count(struct htab *h);
/* Calls fn for every record, stripe after stripe, each locked while it is visited;
 * fn must not lock the table. Returns the first non-zero fn result, or 0. */
int htab_foreach(struct htab *h, int (*fn)(void *ctx, uint64_t key, void *value), void *ctx);

#endif
