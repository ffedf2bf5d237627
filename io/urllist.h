/* urllist: the --urls list, read as a stream (a 10M-line list is never held whole: one
 * record at a time, at most URLLIST_RECORD_MAX bytes).
 *
 * Formats, told from the first non-empty line:
 *   JSON lines  the line starts with '{': each line one object; the URL under the url
 *               key (--url-column, default "url"), the output name under the key key
 *               ("key"), every other member copied as it is;
 *   TSV / CSV   the first line is a header naming the url column (split on tabs when it
 *               has one, else parsed as RFC 4180 CSV, quoted fields may span lines); an
 *               optional key column; every other column copied as a string;
 *   plain       anything else: one URL per line; '#' starts a comment line.
 * A UTF-8 byte-order mark and CR LF endings are accepted.
 *
 * Output names (the record's key, the relative path the pipeline selects on and writes
 * under the prefix): the key column when given (a clean relative path: "..", a leading
 * '/' or a NUL refuse the line), else derived from the URL, stable (a pure function of
 * the URL's text) and collision-free:
 *   HOST[_http][_PORT]/PATH   when the URL is "clean": lower-case host of [a-z0-9.-],
 *                             "_http" for http:// (https has no mark), "_PORT" when the
 *                             URL names a port, then the path's names as they are, each
 *                             of [A-Za-z0-9._-], not starting with '.', no query, no
 *                             fragment: https://cdn.example.com/a/b.jpg ->
 *                             cdn.example.com/a/b.jpg;
 *   the same, sanitised, plus "~" and 16 hex digits of XXH3-64 of the whole URL before
 *                             the last name's extension, for every other URL (a query, a
 *                             '%', an empty or over-long name...):
 *                             https://h/get?id=7 -> h/get~0123456789abcdef.
 * A clean key never holds '~' nor '_' in its host part, so clean keys are distinct for
 * distinct URLs, never equal a hashed key, and two hashed keys collide only if 64-bit
 * hashes do. A query string (a presigned URL's signature) is part of the hash: give a key
 * column for names that survive re-signing.
 *
 * Safety: only http:// and https:// URLs, ASCII without spaces or control characters,
 * without user:password@ (credentials come from the environment or --netrc-file, never
 * from the list); a refused line is returned with its reason (stage SELECT), the rest of
 * the list goes on. Nothing here touches the network. Thread: one caller at a time. */
#ifndef VHPREP_IO_URLLIST_H
#define VHPREP_IO_URLLIST_H

#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"

#define URLLIST_RECORD_MAX (64 * 1024) /* bytes of one record (line, or quoted CSV lines) */
#define URLLIST_KEY_MAX	   1024	       /* bytes of a derived key */
#define URLLIST_NAME_MAX   200	       /* bytes of one name of a derived key */

enum urllist_format { URLLIST_PLAIN, URLLIST_CSV, URLLIST_TSV, URLLIST_JSONL };

/* Column names; set once. */
struct urllist_opts {
	const char *url_column; /* NULL: "url" */
	const char *key_column; /* NULL: "key" (optional in the list) */
};

/* One record. Its strings are owned by the list and live until the next urllist_next. */
struct urllist_rec {
	uint64_t line;	   /* 1-based line where the record starts */
	const char *url;   /* the URL, trimmed; NULL when the record is refused */
	const char *key;   /* the output's relative name (given or derived) */
	const char *extra; /* the other columns as a compact JSON object, or NULL */
	const char *label; /* how to name a refused record: its URL redacted, or "line N" */
	struct vherr err;  /* code != 0: refused (stage SELECT), msg says why */
};

struct urllist;

/* Opens path ("-": stdin) and reads its first record to tell the format. Returns 0 with
 * *out owned by the caller (urllist_free), or a negative code with err set: the file
 * cannot be read (VHERR_NOENT, VHERR_ACCESS...) or a named --url-column/--key-column is
 * not in its header (VHERR_USAGE). */
int urllist_open(const char *path, const struct urllist_opts *opts, struct urllist **out,
		 struct vherr *err);
/* Reads the next record into *rec. Returns 1 (a record, maybe refused: rec->err), 0 at
 * the end of the list, or a negative code with err set when the list cannot be read. */
int urllist_next(struct urllist *l, struct urllist_rec *rec, struct vherr *err);
/* The format told at open. */
enum urllist_format urllist_format(const struct urllist *l);
/* Closes and frees l; l may be NULL. */
void urllist_free(struct urllist *l);

/* Checks url (NUL-terminated) as one the list may name: returns 0, or -VHERR_BAD_URL
 * with err's message saying why. Pure. */
int urllist_check_url(const char *url, struct vherr *err);
/* Writes url's derived key (see above) into buf. Returns 0, or -1 if url is not one
 * urllist_check_url accepts or size < URLLIST_KEY_MAX + 32. Pure. */
int urllist_derive_key(const char *url, char *buf, size_t size);
/* Writes url without its user-info and fragment, and with its query replaced by
 * "?redacted" unless keep_query, into buf (truncated to fit, always NUL-terminated);
 * returns buf. Works on any string (a URL that does not parse is cut at its first '?'
 * or '#'). Pure. */
char *urllist_redact(const char *url, int keep_query, char *buf, size_t size);

#endif
