/* httpsrc: the URL-list source (--urls) — libcurl's multi interface driven by ONE
 * event-loop thread, many transfers in flight (not a thread per transfer). It implements
 * the source operations of io/source.h for source.c's dispatch table.
 *
 * Walk: the list (io/urllist.h) is read as a stream in the caller's thread; each record
 * is one entry whose relpath is its key (what --include, --sample, --shard and the output
 * name see) and whose hint handle carries "URL\0EXTRA\0" (EXTRA: the other columns as a
 * JSON object, or empty), so nothing is looked up later. A refused record goes to
 * on_error (stage SELECT) with its reason: every line is either an entry or an error.
 *
 * Reads: at most source_opts.io_depth transfers in flight on one multi handle, which
 * keeps connections open between transfers (reuse) and multiplexes HTTP/2 streams on
 * one connection where the server offers h2 over TLS (CURLOPT_PIPEWAIT: a new transfer
 * waits for a multiplexed connection rather than opening another); at most per_host
 * connections per host. Bytes are taken from the shared read budget as they arrive
 * (the Content-Length at once when the server sends one): when it is spent, a transfer
 * is paused (CURL_WRITEFUNC_PAUSE) until a budget thread gets the bytes, so the budget
 * is back-pressure on the servers, and the loop never blocks. A completion thread runs
 * done(), so a full ready queue never stalls the loop. Processing starts with the first
 * response: completions flow while the list is still being read.
 *
 * Each response is judged once its headers are complete, before its body: a 429 or 5xx
 * is retried (the body not read) after an exponential backoff (HTTPSRC_BACKOFF_MS
 * doubling, or the server's Retry-After, at most HTTPSRC_RETRY_AFTER_MAX_MS), up to
 * retries times; another 4xx/3xx fails with its status (VHERR_HTTP_STATUS); a text/ or
 * JSON body is VHERR_NOT_IMAGE (an error page, never read); a Content-Length outside the
 * read's min/max size skips it (as for files); a body above the cap (max_size, else
 * HTTPSRC_BODY_CAP) fails VHERR_BODY_TOO_LARGE, cut off where it crossed the cap.
 * Transport faults: DNS (VHERR_DNS), refused (VHERR_REFUSED), TLS (VHERR_TLS), connect
 * and total timeouts (VHERR_TIMEOUT: an attempt's timeout_s counts from its first socket
 * or request, not while it waits for one of the per_host connections, and not while it
 * is paused for the budget), too many redirects or one to another scheme
 * (VHERR_REDIRECTS); a reset or truncated transfer is retried like a 5xx (VHERR_NET
 * when retries run out). A response body never reaches a message or a record.
 *
 * Safety: only http and https, also after redirects (CURLOPT_PROTOCOLS_STR,
 * CURLOPT_REDIR_PROTOCOLS_STR); every address libcurl is about to connect to is checked
 * first (CURLOPT_OPENSOCKETFUNCTION): a cloud metadata address (169.254.0.0/16 link-local,
 * which holds 169.254.169.254 and ECS's 169.254.170.2; fd00:ec2::254; their IPv4-mapped
 * forms) is refused before any socket exists (VHERR_METADATA_IP) unless
 * allow_metadata_ip. With a proxy from the environment the proxy makes that connection,
 * so only the proxy's address is checked. Credentials: a netrc file only when named
 * (netrc_file); the environment's proxy settings as libcurl reads them; none from the
 * list (urllist refuses user:password@). TLS is verified unless insecure.
 *
 * Revalidation and judging: before a read's first request, req->revalidate (when set)
 * may skip it unfetched or give the validators an earlier run recorded (ETag,
 * Last-Modified); they are sent as If-None-Match / If-Modified-Since on every attempt,
 * and a 304 asks req->revalidate again (not_modified 1): its SKIP completes the read as
 * SOURCE_READ_SKIPPED, no body transferred. Once the first SOURCE_HEAD_MAX bytes of a 2xx
 * body have arrived (or the whole body, when shorter), req->judge (when set) sees them
 * (req->size: the Content-Length, else the bytes so far), once per read whatever the
 * attempts; a refusal ends the transfer there (the rest is never received), with the
 * judge's err. Until then only the head is taken from the budget.
 *
 * Provenance: before done(), req->prov gets {"url", "final_url" (after redirects; both
 * redacted: no user-info, no fragment, the query as "?redacted" unless keep_query),
 * "http_status", "etag", "last_modified" (when sent), "attempts"} and the record's other
 * columns (which never replace those); req->mtime_ns is the Last-Modified time (0 when
 * none); req->size the body's bytes (or the Content-Length of a skipped one).
 *
 * Threads: loop, budget and completion threads belong to the source; walk runs in the
 * caller's thread; submit, stop and cancel are thread-safe. libcurl's global init must
 * have run (curl_global_init, once, in main). */
#ifndef VHPREP_IO_HTTPSRC_H
#define VHPREP_IO_HTTPSRC_H

#include <stddef.h>
#include <stdint.h>

#include "io/source.h"

#define HTTPSRC_PER_HOST	   16	  /* connections per host by default */
#define HTTPSRC_TIMEOUT_S	   60.0	  /* total time of one attempt by default */
#define HTTPSRC_CONNECT_TIMEOUT_S  10.0	  /* at most this for the connect phase */
#define HTTPSRC_RETRIES		   3	  /* retries of a 429/5xx/reset by default */
#define HTTPSRC_BACKOFF_MS	   250	  /* first retry wait; doubles each time */
#define HTTPSRC_BACKOFF_MAX_MS	   30000  /* ...up to this */
#define HTTPSRC_RETRY_AFTER_MAX_MS 120000 /* a longer Retry-After waits this long */
#define HTTPSRC_MAX_REDIRECTS	   10
#define HTTPSRC_BODY_CAP	   (256ULL << 20) /* body cap without --max-size */
#define HTTPSRC_BUDGET_STEP	   (256u << 10)	  /* bytes taken at a time without a length */

/* Options of the URL-list source; strings borrowed, must outlive the source. */
struct httpsrc_opts {
	const char *url_column; /* NULL: "url" */
	const char *key_column; /* NULL: "key" */
	int per_host;		/* <= 0: HTTPSRC_PER_HOST */
	double timeout_s;	/* <= 0: HTTPSRC_TIMEOUT_S */
	int retries;		/* < 0: HTTPSRC_RETRIES */
	int keep_query;		/* provenance keeps query strings */
	int insecure;		/* no TLS verification */
	const char *cacert;	/* CA bundle file, or NULL (the system's) */
	const char *netrc_file; /* credentials file, or NULL (no netrc) */
	int allow_metadata_ip;
	int backoff_ms; /* <= 0: HTTPSRC_BACKOFF_MS (tests shorten it) */
};

struct httpsrc;

/* Opens the list at path ("-": stdin) and starts the threads. opts->budget is borrowed
 * and must outlive the source; hopts may be NULL (defaults). Returns 0 with *out owned by
 * the caller (httpsrc_free), or a negative code with err set: the list cannot be read or
 * names no such column (a usage error), or no memory. */
int httpsrc_open(const char *path, const struct source_opts *opts,
		 const struct httpsrc_opts *hopts, struct httpsrc **out, struct vherr *err);
/* Reads the list, calling emit (in this thread) for each record and on_error (may be
 * NULL) for each refused one; returns when the list ends or the walk is stopped: 0, or a
 * negative code with err set when the list cannot be read. Call once. */
int httpsrc_walk(struct httpsrc *s, source_emit_fn emit, void *ctx,
		 void (*on_error)(void *ctx, const char *label, const struct vherr *err),
		 struct vherr *err);
/* Submits req, whose hint must be one the walk gave (source_read semantics); blocks
 * while io_depth transfers are in flight. Returns 0 when req->done will run exactly once
 * (on the completion thread), or -VHERR_CANCELLED when it will not. Thread-safe. */
int httpsrc_submit(struct httpsrc *s, struct source_read *req);
/* Asks the walk to stop soon; transfers go on. Thread-safe. */
void httpsrc_stop(struct httpsrc *s);
/* Stops the walk, completes queued, waiting and running transfers as cancelled, cancels
 * the budget. Thread-safe; idempotent. */
void httpsrc_cancel(struct httpsrc *s);
/* Writes the location of an entry: its URL redacted when hint carries one (a walk's
 * entry), else relpath as given (a refused record's label); returns buf. hint may be
 * NULL. */
char *httpsrc_location(const struct httpsrc *s, const char *relpath,
		       const struct source_hint *hint, char *buf, size_t size);
/* Stops the threads and frees s; s may be NULL. No read may be pending. */
void httpsrc_free(struct httpsrc *s);

/* Whether addr (a struct sockaddr of len bytes) is a cloud metadata address (see
 * above). Pure. */
int httpsrc_metadata_addr(const void *addr, size_t len);

#endif
