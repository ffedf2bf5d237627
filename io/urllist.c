/* urllist: the --urls list (see urllist.h). URLs are parsed with libcurl's URL API
 * (curl_url), the same parser the transfers use, so what is checked here is what is
 * fetched; keys are hashed with XXH3-64. */
#include "io/urllist.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "io/filelist.h"

#define LABEL_MAX 512

struct urllist {
	FILE *f;		     /* set at creation */
	char *path;		     /* set at creation: for labels */
	enum urllist_format fmt;     /* set at creation */
	const char *url_col;	     /* set at creation */
	const char *key_col;	     /* set at creation */
	char **cols;		     /* set at creation: CSV/TSV header names */
	int ncols, url_idx, key_idx; /* key_idx -1: none */
	char *line;		     /* getline's buffer */
	size_t line_cap;
	char *rec; /* the record being parsed (lines joined) */
	size_t rec_len, rec_cap;
	uint64_t lineno; /* lines read so far */
	int have_first;	 /* the first record is in rec, not yet returned */
	uint64_t first_line;
	int first_bad; /* ... and it was too long or held a NUL */
	char **fields; /* CSV/TSV fields of rec (pointers into fbuf) */
	int nfields, fields_cap;
	char *fbuf; /* unescaped CSV fields */
	size_t fbuf_cap;
	json_t *obj; /* JSON lines: the parsed record */
	char *extra; /* json_dumps of the extra columns */
	char key[URLLIST_KEY_MAX + 64];
	char label[LABEL_MAX];
};

/* ---- URLs ---- */

static int is_http(const char *url, int *tls)
{
	if (strncasecmp(url, "https://", 8) == 0) {
		*tls = 1;
		return 1;
	}
	*tls = 0;
	return strncasecmp(url, "http://", 7) == 0;
}

int urllist_check_url(const char *url, struct vherr *err)
{
	CURLU *u;
	CURLUcode uc;
	char *user = NULL, *pass = NULL, *host = NULL;
	int tls, rc = 0;

	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return vherr_set(err, VHERR_BAD_URL, VHSTAGE_SELECT,
					 "URL has a space, a control or a non-ASCII character "
					 "(percent-encode it)");
	if (!is_http(url, &tls))
		return vherr_set(err, VHERR_BAD_URL, VHSTAGE_SELECT,
				 "only http:// and https:// URLs are fetched");
	u = curl_url();
	if (!u)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_SELECT, NULL);
	uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc != CURLUE_OK) {
		rc = vherr_set(err, VHERR_BAD_URL, VHSTAGE_SELECT, "not a valid URL: %s",
			       curl_url_strerror(uc));
		goto out;
	}
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
	if (user || pass) {
		rc = vherr_set(err, VHERR_BAD_URL, VHSTAGE_SELECT,
			       "credentials in a URL are refused (use --netrc-file)");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host)
		rc = vherr_set(err, VHERR_BAD_URL, VHSTAGE_SELECT, "URL has no host");
out:
	curl_free(user);
	curl_free(pass);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

char *urllist_redact(const char *url, int keep_query, char *buf, size_t size)
{
	const char *auth = strstr(url, "://"), *end, *at = NULL;
	size_t n = strcspn(url, "#"), q = strcspn(url, "?#");

	if (!size)
		return buf;
	if (auth) {
		auth += 3;
		end = auth + strcspn(auth, "/?#");
		for (const char *p = auth; p < end; p++)
			if (*p == '@')
				at = p;
	}
	if (at)
		snprintf(buf, size, "%.*s%.*s", (int)(auth - url), url,
			 (int)(n - (size_t)(at + 1 - url)), at + 1);
	else
		snprintf(buf, size, "%.*s", (int)n, url);
	if (!keep_query && q < n) {
		char *qm = strchr(buf, '?');

		if (qm && (size_t)(qm - buf) + sizeof("?redacted") <= size)
			strcpy(qm, "?redacted");
		else if (qm)
			*qm = '\0';
	}
	return buf;
}

/* Appends c to the key at *n (bounded by the caller). */
static void put(char *buf, size_t *n, char c)
{
	buf[(*n)++] = c;
	buf[*n] = '\0';
}

static int name_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* Appends the host part: lower-case host, "_http", "_PORT"; clears *clean when the
 * host has a character outside [a-z0-9.-]. */
static void key_host(const char *host, int tls, const char *port, char *buf, size_t *n,
		     int *clean)
{
	for (const char *p = host; *p && *n < URLLIST_NAME_MAX; p++) {
		char c = (char)tolower((unsigned char)*p);

		if (!(isalnum((unsigned char)c) || c == '.' || c == '-')) {
			c = '_';
			*clean = 0;
		}
		put(buf, n, c);
	}
	if (strlen(host) > URLLIST_NAME_MAX || host[0] == '.')
		*clean = 0;
	if (host[0] == '.')
		buf[0] = '_';
	if (!tls)
		*n += (size_t)sprintf(buf + *n, "_http");
	if (port)
		*n += (size_t)snprintf(buf + *n, 16, "_%.8s", port);
}

/* Appends one name of the path ([p, p+len)) as "/name", sanitised; clears *clean when it
 * had to change it. */
static void key_name(const char *p, size_t len, char *buf, size_t *n, int *clean)
{
	size_t keep = len > URLLIST_NAME_MAX ? URLLIST_NAME_MAX : len;

	put(buf, n, '/');
	if (len == 0 || len > URLLIST_NAME_MAX || p[0] == '.')
		*clean = 0;
	if (len == 0) {
		put(buf, n, '_');
		return;
	}
	for (size_t i = 0; i < keep; i++) {
		char c = p[i];

		if (!name_char(c) || (i == 0 && c == '.')) {
			c = '_';
			*clean = 0;
		}
		put(buf, n, c);
	}
}

/* Inserts "~HASH" before the last name's extension (or at the end). */
static void key_mark(const char *url, char *buf, size_t *n)
{
	char *last = strrchr(buf, '/'), *dot = strrchr(last ? last : buf, '.');
	char mark[24], tail[16] = "";
	size_t elen;

	snprintf(mark, sizeof(mark), "~%016llx",
		 (unsigned long long)XXH3_64bits(url, strlen(url)));
	if (dot && dot > last + 1) {
		elen = strlen(dot);
		if (elen >= 2 && elen <= 11) {
			int alnum = 1;

			for (const char *p = dot + 1; *p; p++)
				alnum &= isalnum((unsigned char)*p) != 0;
			if (alnum) {
				memcpy(tail, dot, elen + 1);
				*n = (size_t)(dot - buf);
			}
		}
	}
	*n += (size_t)sprintf(buf + *n, "%s%s", mark, tail);
}

int urllist_derive_key(const char *url, char *buf, size_t size)
{
	CURLU *u = NULL;
	char *host = NULL, *port = NULL, *path = NULL, *query = NULL, *frag = NULL;
	int tls, clean = 1, rc = -1;
	size_t n = 0;

	if (size < URLLIST_KEY_MAX + 32 || urllist_check_url(url, NULL) < 0 ||
	    !is_http(url, &tls) || !(u = curl_url()) ||
	    curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		goto out;
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
	buf[0] = '\0';
	key_host(host, tls, port, buf, &n, &clean);
	if (query || frag)
		clean = 0;
	for (const char *p = path[0] == '/' ? path + 1 : path;;) {
		size_t len = strcspn(p, "/");

		if (n + 1 + (len > URLLIST_NAME_MAX ? URLLIST_NAME_MAX : len) >
		    URLLIST_KEY_MAX) {
			clean = 0;
			break;
		}
		key_name(p, len, buf, &n, &clean);
		if (!p[len])
			break;
		p += len + 1;
	}
	if (!clean)
		key_mark(url, buf, &n);
	rc = 0;
out:
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(query);
	curl_free(frag);
	curl_url_cleanup(u);
	return rc;
}

/* ---- reading records ---- */

/* Reads one physical line into l->line without its CR/LF: returns its length, -1 at the
 * end, -2 on a read error. *nul is set when the line holds a NUL byte. */
static ssize_t read_line(struct urllist *l, int *nul)
{
	ssize_t n = getline(&l->line, &l->line_cap, l->f);

	if (n < 0)
		return ferror(l->f) ? -2 : -1;
	l->lineno++;
	*nul = memchr(l->line, '\0', (size_t)n) != NULL;
	while (n > 0 && (l->line[n - 1] == '\n' || l->line[n - 1] == '\r'))
		l->line[--n] = '\0';
	if (l->lineno == 1 && n >= 3 && memcmp(l->line, "\xef\xbb\xbf", 3) == 0) {
		memmove(l->line, l->line + 3, (size_t)n - 2);
		n -= 3;
	}
	return n;
}

static int rec_append(struct urllist *l, const char *s, size_t n, int newline)
{
	size_t need = l->rec_len + n + 2;

	if (need > l->rec_cap) {
		size_t cap = need * 2;
		char *r = realloc(l->rec, cap);

		if (!r)
			return -1;
		l->rec = r;
		l->rec_cap = cap;
	}
	if (newline)
		l->rec[l->rec_len++] = '\n';
	memcpy(l->rec + l->rec_len, s, n);
	l->rec_len += n;
	l->rec[l->rec_len] = '\0';
	return 0;
}

/* Whether a CSV text leaves a quoted field open at its end. */
static int csv_open_quote(const char *s)
{
	int in = 0, start = 1;

	for (; *s; s++) {
		if (in) {
			if (*s == '"' && s[1] == '"')
				s++;
			else if (*s == '"')
				in = 0;
		} else if (*s == '"' && start) {
			in = 1;
		}
		start = !in && *s == ',';
	}
	return in;
}

/* Reads the next record into l->rec (skipping empty lines; plain lists skip '#' lines).
 * Returns 1, 0 at the end, -2 on a read error. *bad: too long or holds a NUL. */
static int read_record(struct urllist *l, uint64_t *first, int *bad)
{
	int nul;
	ssize_t n;

	*bad = 0;
	l->rec_len = 0;
	do {
		n = read_line(l, &nul);
		if (n < 0)
			return n == -1 ? 0 : -2;
	} while (n == 0 || (l->fmt == URLLIST_PLAIN && l->line[strspn(l->line, " \t")] == '#'));
	*first = l->lineno;
	*bad = nul || (size_t)n > URLLIST_RECORD_MAX;
	if (rec_append(l, l->line, *bad ? 0 : (size_t)n, 0) < 0)
		return -2;
	while (l->fmt == URLLIST_CSV && !*bad && csv_open_quote(l->rec)) {
		n = read_line(l, &nul);
		if (n < 0)
			break; /* an unterminated quote at the end: parsed as it is */
		*bad = nul || l->rec_len + (size_t)n > URLLIST_RECORD_MAX;
		if (!*bad && rec_append(l, l->line, (size_t)n, 1) < 0)
			return -2;
	}
	return 1;
}

/* ---- splitting CSV and TSV ---- */

static int field_add(struct urllist *l, char *f)
{
	if (l->nfields == l->fields_cap) {
		int cap = l->fields_cap ? 2 * l->fields_cap : 16;
		char **v = realloc(l->fields, (size_t)cap * sizeof(*v));

		if (!v)
			return -1;
		l->fields = v;
		l->fields_cap = cap;
	}
	l->fields[l->nfields++] = f;
	return 0;
}

/* Splits s into l->fields (copies in l->fbuf): tab-separated, or RFC 4180 CSV.
 * Returns 0, or -1 on a malformed quote or no memory. */
static int split(struct urllist *l, const char *s, int tsv)
{
	size_t len = strlen(s);
	char *o;

	if (len + 1 > l->fbuf_cap) {
		char *b = realloc(l->fbuf, len + 1);

		if (!b)
			return -1;
		l->fbuf = b;
		l->fbuf_cap = len + 1;
	}
	o = l->fbuf;
	l->nfields = 0;
	for (;;) {
		if (field_add(l, o) < 0)
			return -1;
		if (!tsv && *s == '"') {
			for (s++;; s++) {
				if (!*s)
					return -1;
				if (*s == '"' && s[1] != '"')
					break;
				if (*s == '"')
					s++;
				*o++ = *s;
			}
			s++;
			if (*s && *s != ',')
				return -1;
		} else {
			size_t n = strcspn(s, tsv ? "\t" : ",");

			memcpy(o, s, n);
			o += n;
			s += n;
		}
		*o++ = '\0';
		if (!*s)
			return 0;
		s++; /* the separator */
	}
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		*--e = '\0';
	return s;
}

/* ---- one record to a url, key and extras ---- */

static void set_label(struct urllist *l, const char *url, uint64_t line)
{
	if (url && *url)
		urllist_redact(url, 0, l->label, sizeof(l->label));
	else
		snprintf(l->label, sizeof(l->label), "%s:%llu",
			 strcmp(l->path, "-") ? l->path : "stdin", (unsigned long long)line);
}

/* Refuses rec: err set, url NULL. */
static int refuse(struct urllist *l, struct urllist_rec *rec, const char *url,
		  enum vherr_code code, const char *why)
{
	set_label(l, url, rec->line);
	rec->url = NULL;
	rec->label = l->label;
	vherr_set(&rec->err, code, VHSTAGE_SELECT, "line %llu: %s",
		  (unsigned long long)rec->line, why);
	return 1;
}

/* Fills rec's key from the key column's value (may be NULL or empty: derived). */
static int finish(struct urllist *l, struct urllist_rec *rec, char *url, const char *key)
{
	struct vherr bad;

	url = trim(url);
	if (urllist_check_url(url, &bad) < 0)
		return refuse(l, rec, url, bad.code, bad.msg);
	if (key && *key) {
		if (strlen(key) > URLLIST_KEY_MAX)
			return refuse(l, rec, url, VHERR_BAD_NAME, "key is too long");
		strcpy(l->key, key);
		if (filelist_clean_relpath(l->key) != 0)
			return refuse(
			    l, rec, url, VHERR_BAD_NAME,
			    "key is not a relative path inside the outputs (absolute, "
			    "'..' or empty)");
	} else if (urllist_derive_key(url, l->key, sizeof(l->key)) != 0) {
		return refuse(l, rec, url, VHERR_BAD_URL, "cannot derive a key from the URL");
	}
	set_label(l, url, rec->line);
	rec->url = url;
	rec->key = l->key;
	rec->extra = l->extra;
	rec->label = l->label;
	return 1;
}

/* Whether a column of this name is copied into the metadata: not the url or key
 * column, not empty, and not a "valohai." key (those bind datasets and tags: the
 * command line decides them). */
static int copied(const char *name)
{
	return *name && strncmp(name, "valohai.", 8) != 0;
}

static int set_extra(struct urllist *l, json_t *extra)
{
	VH_FREE(l->extra);
	if (json_object_size(extra))
		l->extra = json_dumps(extra, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_SORT_KEYS);
	json_decref(extra);
	return 0;
}

static int parse_table(struct urllist *l, struct urllist_rec *rec)
{
	json_t *extra;

	if (split(l, l->rec, l->fmt == URLLIST_TSV) < 0)
		return refuse(l, rec, NULL, VHERR_BAD_URL, "malformed CSV quoting");
	if (l->nfields > l->ncols)
		return refuse(l, rec, NULL, VHERR_BAD_URL, "more fields than the header names");
	if (l->url_idx >= l->nfields)
		return refuse(l, rec, NULL, VHERR_BAD_URL, "no URL");
	extra = json_object();
	for (int i = 0; extra && i < l->nfields; i++) {
		json_t *v;

		if (i == l->url_idx || i == l->key_idx || !copied(l->cols[i]))
			continue;
		v = json_string(l->fields[i]);
		if (!v) {
			json_decref(extra);
			return refuse(l, rec, l->fields[l->url_idx], VHERR_BAD_NAME,
				      "a column is not valid UTF-8");
		}
		json_object_set_new(extra, l->cols[i], v);
	}
	set_extra(l, extra);
	return finish(l, rec, l->fields[l->url_idx],
		      l->key_idx >= 0 && l->key_idx < l->nfields ? trim(l->fields[l->key_idx])
								 : NULL);
}

static int parse_jsonl(struct urllist *l, struct urllist_rec *rec)
{
	json_t *url, *key, *extra;
	const char *name;
	json_t *v;

	json_decref(l->obj);
	l->obj = json_loads(l->rec, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(l->obj))
		return refuse(l, rec, NULL, VHERR_BAD_URL, "not a JSON object");
	url = json_object_get(l->obj, l->url_col);
	key = json_object_get(l->obj, l->key_col);
	if (!json_is_string(url))
		return refuse(l, rec, NULL, VHERR_BAD_URL, "no URL string under the url key");
	if (key && !json_is_string(key))
		return refuse(l, rec, json_string_value(url), VHERR_BAD_NAME,
			      "the key is not a string");
	extra = json_object();
	json_object_foreach(l->obj, name, v)
	{
		if (extra && v != url && v != key && copied(name))
			json_object_set(extra, name, v);
	}
	set_extra(l, extra);
	/* finish trims in place: a copy, not jansson's string */
	if (split(l, json_string_value(url), 1) < 0 || l->nfields != 1)
		return refuse(l, rec, NULL, VHERR_BAD_URL, "URL has a tab");
	return finish(l, rec, l->fields[0], json_string_value(key));
}

static int parse_record(struct urllist *l, struct urllist_rec *rec, uint64_t line, int bad)
{
	memset(rec, 0, sizeof(*rec));
	rec->line = line;
	VH_FREE(l->extra);
	if (bad)
		return refuse(l, rec, NULL, VHERR_BAD_URL,
			      "record holds a NUL byte or is longer than 64 KiB");
	switch (l->fmt) {
	case URLLIST_JSONL:
		return parse_jsonl(l, rec);
	case URLLIST_CSV:
	case URLLIST_TSV:
		return parse_table(l, rec);
	case URLLIST_PLAIN:
		break;
	}
	return finish(l, rec, l->rec, NULL);
}

int urllist_next(struct urllist *l, struct urllist_rec *rec, struct vherr *err)
{
	uint64_t line;
	int bad, rc;

	if (l->have_first) {
		l->have_first = 0;
		return parse_record(l, rec, l->first_line, l->first_bad);
	}
	rc = read_record(l, &line, &bad);
	if (rc == -2)
		return vherr_errno(err, errno ? errno : EIO, VHSTAGE_WALK, "cannot read '%s'",
				   l->path);
	if (rc == 0)
		return 0;
	return parse_record(l, rec, line, bad);
}

/* ---- opening: telling the format from the first record ---- */

static int column(struct urllist *l, const char *name)
{
	for (int i = 0; i < l->ncols; i++)
		if (strcmp(l->cols[i], name) == 0)
			return i;
	return -1;
}

/* Takes the header in l->rec as CSV or TSV if it names the url column; 1 if so. */
static int try_header(struct urllist *l, enum urllist_format fmt)
{
	if ((fmt == URLLIST_TSV && !strchr(l->rec, '\t')) ||
	    split(l, l->rec, fmt == URLLIST_TSV) < 0)
		return 0;
	for (int i = 0; i < l->nfields; i++)
		l->fields[i] = trim(l->fields[i]);
	if (l->nfields < 1 || !(l->cols = calloc((size_t)l->nfields, sizeof(*l->cols))))
		return 0;
	l->ncols = l->nfields;
	for (int i = 0; i < l->ncols; i++)
		if (!(l->cols[i] = strdup(l->fields[i])))
			return 0;
	l->url_idx = column(l, l->url_col);
	l->key_idx = column(l, l->key_col);
	if (l->url_idx >= 0) {
		l->fmt = fmt;
		return 1;
	}
	for (int i = 0; i < l->ncols; i++)
		free(l->cols[i]);
	VH_FREE(l->cols);
	l->ncols = 0;
	return 0;
}

static int tell_format(struct urllist *l, const struct urllist_opts *o, struct vherr *err)
{
	int bad, rc;

	l->fmt = URLLIST_CSV; /* a header may quote its names */
	rc = read_record(l, &l->first_line, &bad);
	if (rc == -2)
		return vherr_errno(err, errno ? errno : EIO, VHSTAGE_WALK, "cannot read '%s'",
				   l->path);
	l->fmt = URLLIST_PLAIN;
	if (rc == 0)
		return 0; /* an empty list */
	if (!bad && l->rec[0] == '{') {
		l->fmt = URLLIST_JSONL;
	} else if (!bad && (try_header(l, URLLIST_TSV) || try_header(l, URLLIST_CSV))) {
		if (o->key_column && l->key_idx < 0)
			return vherr_set(err, VHERR_USAGE, VHSTAGE_WALK,
					 "'%s' has no column '%s' (--key-column)", l->path,
					 o->key_column);
		return 0; /* the header is not a record */
	} else if (o->url_column || o->key_column) {
		return vherr_set(err, VHERR_USAGE, VHSTAGE_WALK,
				 "'%s' has no header naming column '%s'", l->path,
				 o->url_column ? o->url_column : o->key_column);
	}
	l->have_first = 1;
	l->first_bad = bad;
	return 0;
}

int urllist_open(const char *path, const struct urllist_opts *opts, struct urllist **out,
		 struct vherr *err)
{
	struct urllist *l = calloc(1, sizeof(*l));
	struct urllist_opts none = {0};
	int rc;

	*out = NULL;
	if (!opts)
		opts = &none;
	if (!l || !(l->path = strdup(path))) {
		free(l);
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	}
	l->url_col = opts->url_column ? opts->url_column : "url";
	l->key_col = opts->key_column ? opts->key_column : "key";
	l->key_idx = -1;
	l->f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	if (!l->f) {
		rc = vherr_errno(err, errno, VHSTAGE_WALK, "cannot open '%s'", path);
		goto fail;
	}
	if ((rc = tell_format(l, opts, err)) < 0)
		goto fail;
	*out = l;
	return 0;
fail:
	urllist_free(l);
	return rc;
}

enum urllist_format urllist_format(const struct urllist *l)
{
	return l->fmt;
}

void urllist_free(struct urllist *l)
{
	if (!l)
		return;
	if (l->f && l->f != stdin)
		fclose(l->f);
	for (int i = 0; i < l->ncols; i++)
		free(l->cols[i]);
	free(l->cols);
	free(l->line);
	free(l->rec);
	free(l->fields);
	free(l->fbuf);
	free(l->extra);
	json_decref(l->obj);
	free(l->path);
	free(l);
}
