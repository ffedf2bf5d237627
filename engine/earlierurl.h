/* earlierurl: what an earlier run recorded of its URL inputs (--urls), for resume and
 * --since alike: for each input, keyed by the hash of its relative path (the list's key),
 * the hash of its URL as recorded ("url": redacted, so a presigned URL signed again is
 * the same URL) and the validators the server gave (ETag, Last-Modified). A rerun skips
 * an input whose recorded URL is its own: unfetched when the server gave no validator
 * (the URL is all there is to compare), else after asking the server with a conditional
 * GET (If-None-Match / If-Modified-Since) and getting 304 Not Modified.
 *
 * Memory: about 48 bytes per URL line, plus the validators' text (nginx: ~50 bytes).
 * Thread-safe. */
#ifndef VHPREP_ENGINE_EARLIERURL_H
#define VHPREP_ENGINE_EARLIERURL_H

#include <jansson.h>
#include <stdint.h>

#include "io/source.h"

/* What earlierurl_check says of an input. */
enum earlierurl_verdict {
	EARLIERURL_NONE,  /* no URL line for this key */
	EARLIERURL_OTHER, /* a URL line for this key, with another URL */
	EARLIERURL_SAME,  /* the same URL, and no validator to ask the server with */
	EARLIERURL_ASK,	  /* the same URL; the validators are in v: ask the server */
};

struct earlierurl;

/* Returns an empty index (caller owns), or NULL when memory runs out. */
struct earlierurl *earlierurl_new(void);
/* Indexes the line whose "metadata" object is meta under key (the hash of its input's
 * relative path) when it is a URL input's (has "url"; a later line of a key replaces an
 * earlier one). Returns 1 if indexed, 0 if the line is not a URL input's, -VHERR_NOMEM. */
int earlierurl_add(struct earlierurl *t, uint64_t key, json_t *meta);
/* The verdict for the input at key whose URL, redacted as the records hold it, is url;
 * with EARLIERURL_ASK, v gets the validators (v may be NULL otherwise). */
enum earlierurl_verdict earlierurl_check(struct earlierurl *t, uint64_t key, const char *url,
					 struct source_validators *v);
/* Returns the number of URL lines indexed. */
uint64_t earlierurl_count(struct earlierurl *t);
/* Frees t; t may be NULL. */
void earlierurl_free(struct earlierurl *t);

#endif
