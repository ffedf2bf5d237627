/* claims: which input owns each output name of a run, so that two inputs never end up
 * behind one output (a.gif and a.png both become a.png; b.jpg and b.webp with --format
 * png), whatever the timing.
 *
 * The rule: of the inputs that map to one name, the one whose relative path sorts first
 * byte by byte keeps it; every other gets a name_collision failure naming the keeper.
 * Inputs that collide share their directory and stem and differ only in their extension,
 * so an owner is remembered by the hash of its relative path and its suffix ("" or ".ext",
 * the first CLAIMS_SUFFIX_MAX bytes): 24 bytes a name with its key. When a smaller path arrives
 * after a larger one was published (a huge directory listed while it is processed), the smaller
 * one replaces it and the larger one is reported. Suffixes equal in their first
 * CLAIMS_SUFFIX_MAX bytes are ordered by the location hash instead (still the same order
 * on every run).
 *
 * A claim is decided and published under the lock of the name's stripe (claims_begin ..
 * claims_end), so two workers never publish one name at once. Names from an earlier run
 * (records, CLAIM_EARLIER) and unrecorded files found on disk (CLAIM_FOREIGN) are loaded
 * at start; a foreign file is never replaced. */
#ifndef VHPREP_ENGINE_CLAIMS_H
#define VHPREP_ENGINE_CLAIMS_H

#include <stdint.h>

#define CLAIMS_SUFFIX_MAX 7

enum claim_state {
	CLAIM_FREE,	 /* nobody */
	CLAIM_EARLIER,	 /* published by an earlier run, not (yet) seen in this one */
	CLAIM_PUBLISHED, /* published or confirmed by this run */
	CLAIM_FOREIGN,	 /* a file vhprep did not record: never replaced */
};

/* What claims_begin decided. */
enum claim_verdict {
	CLAIM_TAKE,    /* the name is free: publish */
	CLAIM_REPLACE, /* publish after removing the output there now (the previous owner's,
			  or this input's own from an earlier run) */
	CLAIM_LOSE,    /* another input keeps the name (or a foreign file holds it) */
};

/* An open claim: the stripe is locked from claims_begin to claims_end. */
struct claim_ticket {
	void *stripe; /* internal */
	uint64_t name;
	enum claim_verdict verdict;
	enum claim_state prev_state;		  /* the state before */
	char other_suffix[CLAIMS_SUFFIX_MAX + 1]; /* the other input's suffix ("" if none) */
	int other_is_self;			  /* the previous owner is this same input */
};

struct claims;

/* Returns an empty table, or NULL when memory runs out. */
struct claims *claims_new(void);
/* Frees c; c may be NULL. */
void claims_free(struct claims *c);

/* The hash claims use for a string (a location or an output name). */
uint64_t claims_hash(const char *s);
/* The suffix claims compare: relpath's extension with its dot, or "" (a name without
 * one, or a hidden name like ".x"). Points into relpath. */
const char *claims_suffix(const char *relpath);

/* Records that name was published by an earlier run for the input at owner (its path
 * relative to the source root), whose suffix is suffix. Returns 0, or -1 when memory runs out.
 * Thread-safe. */
int claims_add_earlier(struct claims *c, const char *name, const char *owner,
		       const char *suffix);
/* Records that a file vhprep did not record holds name. 0, or -1 (no memory). */
int claims_add_foreign(struct claims *c, const char *name);
/* For an input this run skips because its earlier output stands: whether the name whose
 * hash is name is still owned by the location whose hash is owner (then it becomes
 * CLAIM_PUBLISHED: later collisions are judged against it). Thread-safe. */
int claims_confirm(struct claims *c, uint64_t name, uint64_t owner);

/* Opens the claim of name for the input at relpath (relative to the source root), whose
 * suffix is suffix,
 * locks the name's stripe and decides (t->verdict). Pair with claims_end. Returns 0, or
 * -1 when memory runs out (nothing locked). Thread-safe. */
int claims_begin(struct claims *c, const char *name, const char *relpath, const char *suffix,
		 struct claim_ticket *t);
/* Closes t: the name becomes this input's when published, else it goes back to what it
 * was, or to CLAIM_FREE when removed says the output there is gone. Unlocks. */
void claims_end(struct claims *c, struct claim_ticket *t, const char *relpath,
		const char *suffix, int published, int removed);

/* Returns the state of the name whose hash is name. Thread-safe. */
enum claim_state claims_state(struct claims *c, uint64_t name);
/* Calls fn for every name still CLAIM_EARLIER (published earlier, never seen in this
 * run). Single-threaded (after the workers). */
void claims_each_unseen(struct claims *c, void (*fn)(void *ctx, uint64_t name), void *ctx);

#endif
