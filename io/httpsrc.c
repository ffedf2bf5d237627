/* httpsrc: the URL-list source (see httpsrc.h). One event-loop thread owns the multi
 * handle and every easy handle; other threads talk to it through lists under s->lock and
 * curl_multi_wakeup.
 *
 * The loop, one iteration:  take posted → resume granted → cancel (when asked) → start
 * due retries → curl_multi_perform → finish done transfers → curl_multi_poll.
 *
 * A transfer's states (hreq_set, the one place that changes them):
 *   QUEUED ──start──► ACTIVE ◄──granted── PAUSED (no budget: the budget thread waits)
 *                       │──paused──────────►┘
 *                       ├──429/5xx/reset, attempts left──► BACKOFF ──due──► ACTIVE
 *                       └──done/failed/skipped/cancelled──► DONE (completion thread) */
#include "io/httpsrc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/vhclock.h"
#include "io/urllist.h"

#define POLL_MAX_MS 1000
#define URL_MAX	    8192 /* redacted URLs in provenance */

enum hstate { H_QUEUED, H_ACTIVE, H_PAUSED, H_BACKOFF, H_DONE };

/* What the header or write callback decided about a transfer (libcurl then ends it with
 * CURLE_WRITE_ERROR, which means nothing by itself). */
enum hverdict { V_NONE, V_RETRY, V_FAIL, V_SKIP };

/* One transfer; the loop thread owns it from take_posted to its completion. */
struct hreq {
	struct hreq *next;	    /* in one hlist at a time (posted, budget, backoff...) */
	struct hreq *aprev, *anext; /* in s->active while ACTIVE or PAUSED */
	struct httpsrc *s;
	struct source_read *req;
	const char *url;   /* in req->hint.handle */
	const char *extra; /* in req->hint.handle: JSON text, or "" */
	CURL *easy;	   /* ACTIVE/PAUSED only */
	enum hstate state;
	int attempts;	      /* attempts started */
	uint64_t due_ms;      /* BACKOFF: when to start again */
	uint64_t t0_ns;	      /* the current attempt's start (oplat clock) */
	uint64_t deadline_ms; /* ACTIVE: the attempt's end; 0 while queued in libcurl */
	uint64_t paused_ms;   /* PAUSED: since when (the wait moves the deadline) */
	uint64_t want;	      /* PAUSED: bytes asked of the budget thread */
	bool grant_failed;    /* PAUSED: the budget was cancelled */
	bool judged;	      /* req->judge has seen the head (once, whatever the attempts) */
	bool conditional;     /* v holds validators sent with every attempt */
	struct source_validators v; /* from req->revalidate */
	struct curl_slist *hdrs;    /* the conditional request's headers, or NULL */
	/* the current response, reset by each status line */
	long status;
	int64_t length;		/* Content-Length, -1 none */
	bool location;		/* a Location header: libcurl follows it */
	int64_t retry_after_ms; /* -1 none */
	char etag[256], last_modified[64], ctype[64];
	/* the body */
	uint8_t *buf;
	uint64_t len, cap;
	/* the outcome */
	enum hverdict verdict;
	struct vherr err;
	char errbuf[CURL_ERROR_SIZE];
};

struct hlist {
	struct hreq *head, *tail;
};

struct httpsrc {
	struct source_opts opts; /* set at creation */
	struct httpsrc_opts h;	 /* set at creation (defaults filled) */
	struct urllist *list;	 /* set at creation; the walk's thread only */
	CURLM *multi;		 /* set at creation; loop thread only */
	pthread_t loop_tid, budget_tid, done_tid;
	int threads; /* started, for stop_threads */
	pthread_mutex_t lock;
	pthread_cond_t cond;	  /* posted, granted, completed, inflight changes, quit */
	struct hlist posted;	  /* under lock: submitted, not yet taken by the loop */
	struct hlist want_budget; /* under lock: paused, for the budget thread */
	struct hlist granted;	  /* under lock: the budget thread answered */
	struct hlist completed;	  /* under lock: for the completion thread */
	int inflight;		  /* under lock: submitted, done() not yet returned */
	bool cancelled, quit;	  /* under lock */
	atomic_bool stopflag;	  /* the walk should stop */
	struct hlist backoff;	  /* loop only: waiting to retry */
	struct hreq *active;	  /* loop only: ACTIVE or PAUSED transfers (aprev/anext) */
};

/* ---- small helpers ---- */

static void hl_push(struct hlist *l, struct hreq *r)
{
	r->next = NULL;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

static struct hreq *hl_pop(struct hlist *l)
{
	struct hreq *r = l->head;

	if (r) {
		l->head = r->next;
		if (!l->head)
			l->tail = NULL;
	}
	return r;
}

static bool is_quit(struct httpsrc *s)
{
	bool q;

	pthread_mutex_lock(&s->lock);
	q = s->quit;
	pthread_mutex_unlock(&s->lock);
	return q;
}

static bool in_active(enum hstate st)
{
	return st == H_ACTIVE || st == H_PAUSED;
}

/* The one place a transfer's state changes. */
static void hreq_set(struct hreq *r, enum hstate to)
{
	struct httpsrc *s = r->s;

	if (in_active(r->state) && !in_active(to)) {
		if (r->aprev)
			r->aprev->anext = r->anext;
		else
			s->active = r->anext;
		if (r->anext)
			r->anext->aprev = r->aprev;
		r->aprev = r->anext = NULL;
	} else if (!in_active(r->state) && in_active(to)) {
		r->aprev = NULL;
		r->anext = s->active;
		if (s->active)
			s->active->aprev = r;
		s->active = r;
	}
	r->state = to;
}

/* ---- metadata addresses ---- */

int httpsrc_metadata_addr(const void *addr, size_t len)
{
	const struct sockaddr *sa = addr;
	static const uint8_t ec2_v6[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
					   0,	 0,    0,    0,	   0, 0, 0x02, 0x54};

	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = addr;
		uint32_t a = ntohl(in->sin_addr.s_addr);

		return (a >> 16) == 0xa9fe; /* 169.254.0.0/16 */
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const uint8_t *b = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		if (memcmp(b, ec2_v6, 16) == 0)
			return 1;
		return memcmp(b, mapped, 12) == 0 && b[12] == 169 && b[13] == 254;
	}
	return 0;
}

/* The attempt's clock starts when libcurl leaves its own queue (a transfer over the
 * per-host connections waits there): at its first socket, or its first request on a
 * reused connection. CURLOPT_TIMEOUT_MS would count that wait too, and fail transfers
 * that never started. */
static void attempt_clock(struct hreq *r)
{
	if (!r->deadline_ms)
		r->deadline_ms = vhclock_ms() + (uint64_t)(r->s->h.timeout_s * 1000);
}

static int before_request(void *clientp, char *ip, char *local_ip, int port, int local_port)
{
	(void)ip, (void)local_ip, (void)port, (void)local_port;
	attempt_clock(clientp);
	return CURL_PREREQFUNC_OK;
}

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct hreq *r = clientp;

	(void)purpose;
	attempt_clock(r);
	if (!r->s->h.allow_metadata_ip && httpsrc_metadata_addr(&a->addr, a->addrlen)) {
		r->verdict = V_FAIL;
		vherr_set(&r->err, VHERR_METADATA_IP, VHSTAGE_READ,
			  "refused to connect to a cloud metadata address (use "
			  "--allow-metadata-ip to allow it)");
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* ---- headers: one response's, judged when they are complete ---- */

static void response_reset(struct hreq *r, long status)
{
	r->status = status;
	r->length = -1;
	r->location = false;
	r->retry_after_ms = -1;
	r->etag[0] = r->last_modified[0] = r->ctype[0] = '\0';
}

/* Copies a header's value (trimmed, one line, printable ASCII only) into dst. */
static void header_value(const char *v, size_t n, char *dst, size_t size)
{
	size_t k = 0;

	while (n && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	for (size_t i = 0; i < n && k + 1 < size; i++)
		if (v[i] >= 0x20 && v[i] < 0x7f)
			dst[k++] = v[i];
	dst[k] = '\0';
}

static int64_t retry_after_ms(const char *v)
{
	char *end;
	long long secs = strtoll(v, &end, 10);
	time_t when;

	if (end != v && *end == '\0' && secs >= 0)
		return secs * 1000;
	when = curl_getdate(v, NULL);
	if (when < 0)
		return -1;
	return when > time(NULL) ? ((int64_t)when - time(NULL)) * 1000 : 0;
}

/* Whether the header line [p, p+n) is "Name:"; *value points past the colon. */
static bool header_is(const char *p, size_t n, const char *name, const char **value)
{
	size_t k = strlen(name);

	if (n <= k || p[k] != ':' || strncasecmp(p, name, k) != 0)
		return false;
	*value = p + k + 1;
	return true;
}

static void header_line(struct hreq *r, const char *p, size_t n)
{
	const char *v;
	char tmp[64];

	if (n > 5 && strncmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', n);

		response_reset(r, sp ? strtol(sp + 1, NULL, 10) : 0);
	} else if (header_is(p, n, "Content-Length", &v)) {
		header_value(v, n - (size_t)(v - p), tmp, sizeof(tmp));
		r->length = strtoll(tmp, NULL, 10);
	} else if (header_is(p, n, "ETag", &v)) {
		header_value(v, n - (size_t)(v - p), r->etag, sizeof(r->etag));
	} else if (header_is(p, n, "Last-Modified", &v)) {
		header_value(v, n - (size_t)(v - p), r->last_modified,
			     sizeof(r->last_modified));
	} else if (header_is(p, n, "Content-Type", &v)) {
		header_value(v, n - (size_t)(v - p), r->ctype, sizeof(r->ctype));
	} else if (header_is(p, n, "Location", &v)) {
		r->location = true;
	} else if (header_is(p, n, "Retry-After", &v)) {
		header_value(v, n - (size_t)(v - p), tmp, sizeof(tmp));
		r->retry_after_ms = retry_after_ms(tmp);
	}
}

static uint64_t body_cap(const struct hreq *r)
{
	return r->req->max_size != UINT64_MAX ? r->req->max_size : HTTPSRC_BODY_CAP;
}

static bool text_type(const char *ctype)
{
	return strncasecmp(ctype, "text/", 5) == 0 ||
	       strncasecmp(ctype, "application/json", 16) == 0;
}

/* A 304 to a conditional request: what req->revalidate says now. */
static enum hverdict not_modified(struct hreq *r)
{
	struct source_read *q = r->req;

	if (q->revalidate(q, &r->v, 1) == SOURCE_ADMIT_SKIP)
		return V_SKIP;
	r->err = q->err;
	if (!r->err.code)
		vherr_set(&r->err, VHERR_HTTP_STATUS, VHSTAGE_READ, "HTTP status 304");
	return V_FAIL;
}

/* Judges a final response from its headers: V_NONE (read the body) or a verdict. */
static enum hverdict judge_headers(struct hreq *r)
{
	struct source_read *q = r->req;

	if (r->status == 304 && r->conditional)
		return not_modified(r);
	if (r->status == 429 || r->status >= 500) {
		vherr_set(&r->err, VHERR_HTTP_STATUS, VHSTAGE_READ, "HTTP status %ld",
			  r->status);
		return V_RETRY;
	}
	if (r->status < 200 || r->status > 299) {
		vherr_set(&r->err, VHERR_HTTP_STATUS, VHSTAGE_READ, "HTTP status %ld",
			  r->status);
		return V_FAIL;
	}
	if (text_type(r->ctype)) {
		vherr_set(&r->err, VHERR_NOT_IMAGE, VHSTAGE_READ,
			  "the server sent '%s', not an image (an error page?)", r->ctype);
		return V_FAIL;
	}
	if (r->length >= 0 &&
	    ((uint64_t)r->length < q->min_size ||
	     (q->max_size != UINT64_MAX && (uint64_t)r->length > q->max_size))) {
		q->size = (uint64_t)r->length;
		return V_SKIP;
	}
	if (r->length >= 0 && (uint64_t)r->length > body_cap(r)) {
		vherr_set(&r->err, VHERR_BODY_TOO_LARGE, VHSTAGE_READ,
			  "Content-Length %lld is above the cap of %llu bytes (--max-size)",
			  (long long)r->length, (unsigned long long)body_cap(r));
		return V_FAIL;
	}
	return V_NONE;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
	struct hreq *r = userdata;

	n *= size;
	if (n > 2 || (n >= 1 && p[0] != '\r' && p[0] != '\n')) {
		header_line(r, p, n);
		return n;
	}
	/* the blank line: the end of one response's headers */
	if (r->status < 200 || (r->status >= 300 && r->status < 400 && r->location))
		return n; /* 1xx, or a redirect libcurl follows */
	r->verdict = judge_headers(r);
	/* a 304 has no body: let it end normally, which keeps its connection */
	return r->verdict == V_NONE || r->status == 304 ? n : 0;
}

/* ---- the body: budget, then bytes ---- */

/* Bytes to hold before taking n more: the Content-Length when known, else steps. */
static uint64_t budget_goal(const struct hreq *r, uint64_t need)
{
	uint64_t goal;

	if (r->req->judge && !r->judged && need <= SOURCE_HEAD_MAX) /* the head alone */
		return r->length >= 0 && (uint64_t)r->length < SOURCE_HEAD_MAX
			   ? (uint64_t)r->length
			   : SOURCE_HEAD_MAX;
	if (r->length >= 0 && (uint64_t)r->length >= need)
		return (uint64_t)r->length;
	goal = (need + HTTPSRC_BUDGET_STEP - 1) / HTTPSRC_BUDGET_STEP * HTTPSRC_BUDGET_STEP;
	return goal < body_cap(r) ? goal : body_cap(r);
}

static int grow(struct hreq *r, uint64_t need)
{
	uint64_t cap = r->cap ? r->cap : 64 * 1024;
	uint8_t *b;

	if (r->length >= 0 && (uint64_t)r->length >= need)
		cap = (uint64_t)r->length;
	while (cap < need)
		cap *= 2;
	if (cap > body_cap(r))
		cap = body_cap(r);
	b = realloc(r->buf, cap ? cap : 1);
	if (!b)
		return -1;
	r->buf = b;
	r->cap = cap;
	return 0;
}

/* Pauses r until the budget thread got want more bytes. */
static size_t pause_for_budget(struct hreq *r, uint64_t want)
{
	struct httpsrc *s = r->s;

	r->want = want;
	r->paused_ms = vhclock_ms();
	hreq_set(r, H_PAUSED);
	pthread_mutex_lock(&s->lock);
	hl_push(&s->want_budget, r);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return CURL_WRITEFUNC_PAUSE;
}

/* Shows req->judge the head (the first SOURCE_HEAD_MAX bytes, or the whole body when it
 * ended sooner; size: the Content-Length, else the bytes so far). Returns true to read
 * on, or false with r->verdict set from what the judge decided. */
static bool judge_head(struct hreq *r)
{
	struct source_read *q = r->req;
	bool go;

	r->judged = true;
	q->data = r->buf;
	q->len = r->len < SOURCE_HEAD_MAX ? r->len : SOURCE_HEAD_MAX;
	q->size = r->length >= 0 ? (uint64_t)r->length : r->len;
	go = source_read_judge(q);
	q->data = NULL;
	q->len = q->size = 0;
	if (go)
		return true;
	r->verdict = q->status == SOURCE_READ_SKIPPED ? V_SKIP : V_FAIL;
	r->err = q->err;
	if (r->verdict == V_FAIL && !r->err.code)
		vherr_set(&r->err, VHERR_NOT_IMAGE, VHSTAGE_READ, "refused by its first bytes");
	return false;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	struct hreq *r = userdata;
	struct source_read *q = r->req;
	uint64_t need;

	n *= size;
	need = r->len + n;
	if (need > body_cap(r)) {
		r->verdict = V_FAIL;
		vherr_set(&r->err, VHERR_BODY_TOO_LARGE, VHSTAGE_READ,
			  "body is larger than the cap of %llu bytes (--max-size): cut off",
			  (unsigned long long)body_cap(r));
		return 0;
	}
	if (need > q->charged) {
		uint64_t goal = budget_goal(r, need);

		if (budget_try_acquire(r->s->opts.budget, goal - q->charged) != 0)
			return pause_for_budget(r, goal - q->charged);
		q->charged = goal;
	}
	if (need > r->cap && grow(r, need) < 0) {
		r->verdict = V_FAIL;
		vherr_set(&r->err, VHERR_NOMEM, VHSTAGE_READ, NULL);
		return 0;
	}
	memcpy(r->buf + r->len, p, n);
	r->len = need;
	if (q->judge && !r->judged && r->len >= SOURCE_HEAD_MAX && !judge_head(r))
		return 0; /* refused: the rest is never transferred */
	return n;
}

/* ---- provenance ---- */

static void prov_set_str(json_t *o, const char *k, const char *v)
{
	if (v && *v)
		json_object_set_new(o, k, json_string(v));
}

/* Builds req->prov: what the transfer learnt, then the record's other columns. */
static void provenance(struct hreq *r)
{
	struct httpsrc *s = r->s;
	char url[URL_MAX];
	char *eff = NULL;
	json_t *o = json_object(), *extra;

	if (!o)
		return;
	prov_set_str(o, "url", urllist_redact(r->url, s->h.keep_query, url, sizeof(url)));
	if (r->easy && curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK &&
	    eff)
		prov_set_str(o, "final_url",
			     urllist_redact(eff, s->h.keep_query, url, sizeof(url)));
	if (r->status)
		json_object_set_new(o, "http_status", json_integer(r->status));
	prov_set_str(o, "etag", r->etag);
	prov_set_str(o, "last_modified", r->last_modified);
	json_object_set_new(o, "attempts", json_integer(r->attempts));
	extra = *r->extra ? json_loads(r->extra, 0, NULL) : NULL;
	if (json_is_object(extra))
		json_object_update_missing(o, extra);
	json_decref(extra);
	r->req->prov = o;
}

/* ---- finishing a transfer ---- */

static enum vherr_code code_of(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return VHERR_DNS;
	case CURLE_COULDNT_CONNECT:
		return VHERR_REFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return VHERR_TIMEOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
		return VHERR_TLS;
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_UNSUPPORTED_PROTOCOL: /* the list's own URLs are http(s): a redirect */
		return VHERR_REDIRECTS;
	case CURLE_OUT_OF_MEMORY:
		return VHERR_NOMEM;
	default:
		return VHERR_NET;
	}
}

/* Whether a transport failure is worth another attempt (a reset, a cut-off body). */
static bool transient(CURLcode rc)
{
	return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
	       rc == CURLE_GOT_NOTHING || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
}

/* Turns libcurl's result into a verdict when no callback gave one. */
static void judge_result(struct hreq *r, CURLcode rc)
{
	struct source_read *q = r->req;

	if (r->verdict != V_NONE)
		return;
	if (rc == CURLE_OK && r->status >= 200 && r->status <= 299) {
		if (r->len < q->min_size)
			r->verdict = V_SKIP;
		else if (q->judge && !r->judged) /* a body shorter than the head */
			judge_head(r);
		return;
	}
	if (rc == CURLE_OK) { /* a final 3xx without Location */
		r->verdict = V_FAIL;
		vherr_set(&r->err, VHERR_HTTP_STATUS, VHSTAGE_READ, "HTTP status %ld",
			  r->status);
		return;
	}
	r->verdict = transient(rc) ? V_RETRY : V_FAIL;
	for (char *c = r->errbuf; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	vherr_set(&r->err, code_of(rc), VHSTAGE_READ, "%s",
		  r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc));
}

static void release_body(struct hreq *r)
{
	if (r->req->charged)
		budget_release(r->s->opts.budget, r->req->charged);
	r->req->charged = 0;
	VH_FREE(r->buf);
	r->len = r->cap = 0;
}

/* Hands r to the completion thread. */
static void complete(struct hreq *r)
{
	struct httpsrc *s = r->s;

	hreq_set(r, H_DONE);
	pthread_mutex_lock(&s->lock);
	hl_push(&s->completed, r);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void complete_cancelled(struct hreq *r)
{
	release_body(r);
	r->req->status = SOURCE_READ_FAILED;
	vherr_set(&r->req->err, VHERR_CANCELLED, VHSTAGE_READ, NULL);
	complete(r);
}

/* Sets the request's result from r's verdict (its handle still there for the final URL
 * and the time). */
static void finish(struct hreq *r)
{
	struct source_read *q = r->req;

	provenance(r);
	if (r->verdict == V_NONE) {
		q->status = SOURCE_READ_OK;
		q->data = r->buf;
		q->len = q->size = r->len;
		r->buf = NULL;
		if (r->easy) {
			curl_off_t t = -1;

			curl_easy_getinfo(r->easy, CURLINFO_FILETIME_T, &t);
			q->mtime_ns = t > 0 ? (int64_t)t * 1000000000 : 0;
		}
	} else if (r->verdict == V_SKIP) {
		release_body(r);
		q->status = SOURCE_READ_SKIPPED;
	} else {
		release_body(r);
		q->status = SOURCE_READ_FAILED;
		q->err = r->err;
		if (r->attempts > 1 && strlen(q->err.msg) + 32 < sizeof(q->err.msg))
			snprintf(q->err.msg + strlen(q->err.msg), 32, " (after %d attempts)",
				 r->attempts);
	}
}

static void easy_drop(struct hreq *r)
{
	if (!r->easy)
		return;
	curl_multi_remove_handle(r->s->multi, r->easy);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
}

/* Waits before the next attempt: the server's Retry-After, else the backoff. */
static void schedule_retry(struct hreq *r)
{
	struct httpsrc *s = r->s;
	uint64_t wait = (uint64_t)s->h.backoff_ms
			<< (r->attempts - 1 < 16 ? r->attempts - 1 : 16);

	if (wait > HTTPSRC_BACKOFF_MAX_MS)
		wait = HTTPSRC_BACKOFF_MAX_MS;
	if (r->retry_after_ms >= 0)
		wait = r->retry_after_ms < HTTPSRC_RETRY_AFTER_MAX_MS
			   ? (uint64_t)r->retry_after_ms
			   : HTTPSRC_RETRY_AFTER_MAX_MS;
	release_body(r);
	r->due_ms = vhclock_ms() + wait;
	hreq_set(r, H_BACKOFF);
	hl_push(&s->backoff, r);
}

/* One transfer libcurl says is over. */
static void transfer_done(struct hreq *r, CURLcode rc)
{
	if (r->s->opts.lat) /* vhprep bench: one attempt, request to last byte */
		oplat_record(r->s->opts.lat, OPLAT_READ, oplat_now() - r->t0_ns);
	judge_result(r, rc);
	if (r->verdict == V_RETRY && r->attempts <= r->s->h.retries) {
		easy_drop(r);
		schedule_retry(r);
		return;
	}
	if (r->verdict == V_RETRY)
		r->verdict = V_FAIL;
	finish(r);
	easy_drop(r);
	complete(r);
}

/* ---- starting a transfer ---- */

/* Asks the server whether the input changed since the validators in r->v. */
static int conditional_headers(struct hreq *r)
{
	char h[sizeof(r->v.etag) + 32];
	struct curl_slist *l;

	if (r->v.etag[0]) {
		snprintf(h, sizeof(h), "If-None-Match: %s", r->v.etag);
		if (!(l = curl_slist_append(r->hdrs, h)))
			return -1;
		r->hdrs = l;
	}
	if (r->v.last_modified[0]) {
		snprintf(h, sizeof(h), "If-Modified-Since: %s", r->v.last_modified);
		if (!(l = curl_slist_append(r->hdrs, h)))
			return -1;
		r->hdrs = l;
	}
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
	return 0;
}

static int easy_setup(struct hreq *r)
{
	struct httpsrc *s = r->s;
	CURL *e = curl_easy_init();
	long ct_ms = (long)(s->h.timeout_s * 1000);

	if (!e)
		return -1;
	r->easy = e;
	if (ct_ms > (long)(HTTPSRC_CONNECT_TIMEOUT_S * 1000))
		ct_ms = (long)(HTTPSRC_CONNECT_TIMEOUT_S * 1000);
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)HTTPSRC_MAX_REDIRECTS);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ct_ms);
	curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, before_request);
	curl_easy_setopt(e, CURLOPT_PREREQDATA, r);
	curl_easy_setopt(e, CURLOPT_FILETIME, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "vhprep/" VHPREP_VERSION);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
	curl_easy_setopt(e, CURLOPT_NETRC,
			 (long)(s->h.netrc_file ? CURL_NETRC_OPTIONAL : CURL_NETRC_IGNORED));
	if (s->h.netrc_file)
		curl_easy_setopt(e, CURLOPT_NETRC_FILE, s->h.netrc_file);
	if (s->h.cacert)
		curl_easy_setopt(e, CURLOPT_CAINFO, s->h.cacert);
	if (s->h.insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return r->conditional ? conditional_headers(r) : 0;
}

/* Before a transfer's first request: whether req->revalidate lets it be fetched (and
 * with which validators); when it does not, r is completed here. */
static bool revalidate_first(struct hreq *r)
{
	struct source_read *q = r->req;
	enum source_admit a;

	if (!q->revalidate)
		return true;
	a = q->revalidate(q, &r->v, 0);
	if (a == SOURCE_ADMIT_READ) {
		r->conditional = r->v.etag[0] || r->v.last_modified[0];
		return true;
	}
	r->verdict = a == SOURCE_ADMIT_SKIP ? V_SKIP : V_FAIL;
	r->err = q->err;
	finish(r);
	complete(r);
	return false;
}

static void start(struct hreq *r)
{
	struct httpsrc *s = r->s;

	if (r->attempts == 0 && !revalidate_first(r))
		return;
	r->attempts++;
	r->t0_ns = oplat_now();
	r->deadline_ms = 0;
	r->verdict = V_NONE;
	r->errbuf[0] = '\0';
	vherr_clear(&r->err);
	response_reset(r, 0);
	if (easy_setup(r) < 0 || curl_multi_add_handle(s->multi, r->easy) != CURLM_OK) {
		easy_drop(r);
		r->verdict = V_FAIL;
		vherr_set(&r->err, VHERR_NOMEM, VHSTAGE_READ, "cannot start a transfer");
		finish(r);
		complete(r);
		return;
	}
	hreq_set(r, H_ACTIVE);
}

/* ---- the loop's phases ---- */

static void take_posted(struct httpsrc *s, struct hlist *todo, struct hlist *granted,
			bool *cancelled)
{
	pthread_mutex_lock(&s->lock);
	*todo = s->posted;
	*granted = s->granted;
	s->posted = s->granted = (struct hlist){0};
	*cancelled = s->cancelled;
	pthread_mutex_unlock(&s->lock);
}

/* The budget thread answered r: resume it, or end it when the budget was cancelled. */
static void resume(struct hreq *r)
{
	if (r->grant_failed) {
		easy_drop(r);
		complete_cancelled(r);
		return;
	}
	r->req->charged += r->want;
	r->want = 0;
	if (r->deadline_ms) /* waiting for memory is not the server's time */
		r->deadline_ms += vhclock_ms() - r->paused_ms;
	hreq_set(r, H_ACTIVE);
	curl_easy_pause(r->easy, CURLPAUSE_CONT);
}

/* Ends every transfer the loop holds as cancelled (paused ones the budget thread still
 * holds end when it answers, the budget being cancelled). */
static void cancel_all(struct httpsrc *s)
{
	struct hreq *r, *next;

	while ((r = hl_pop(&s->backoff)))
		complete_cancelled(r);
	for (r = s->active; r; r = next) {
		next = r->anext;
		if (r->state != H_ACTIVE)
			continue;
		easy_drop(r);
		complete_cancelled(r);
	}
}

static void start_due(struct httpsrc *s, uint64_t *next_due)
{
	uint64_t now = vhclock_ms();
	struct hlist keep = {0};
	struct hreq *r;

	while ((r = hl_pop(&s->backoff))) {
		if (r->due_ms <= now) {
			start(r);
		} else {
			hl_push(&keep, r);
			if (r->due_ms < *next_due)
				*next_due = r->due_ms;
		}
	}
	s->backoff = keep;
}

/* Ends the attempts past their deadline as libcurl's own timeout would; *next_due: the
 * nearest deadline still ahead. */
static void expire(struct httpsrc *s, uint64_t *next_due)
{
	uint64_t now = vhclock_ms();
	struct hreq *r, *next;

	for (r = s->active; r; r = next) {
		next = r->anext;
		if (r->state != H_ACTIVE || !r->deadline_ms)
			continue;
		if (r->deadline_ms > now) {
			if (r->deadline_ms < *next_due)
				*next_due = r->deadline_ms;
			continue;
		}
		if (r->verdict == V_NONE) {
			r->verdict = V_FAIL;
			vherr_set(&r->err, VHERR_TIMEOUT, VHSTAGE_READ,
				  "no complete answer within %g s (%" PRIu64 " bytes received)",
				  r->s->h.timeout_s, r->len);
		}
		transfer_done(r, CURLE_OPERATION_TIMEDOUT);
	}
}

static void read_messages(struct httpsrc *s)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(s->multi, &left))) {
		struct hreq *r = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		transfer_done(r, m->data.result);
	}
}

static void *loop_main(void *arg)
{
	struct httpsrc *s = arg;
	struct hlist todo, granted;
	struct hreq *r;
	bool cancelled;
	int running;

	while (!is_quit(s)) {
		uint64_t next_due = UINT64_MAX, now;
		int wait_ms = POLL_MAX_MS;

		take_posted(s, &todo, &granted, &cancelled);
		while ((r = hl_pop(&granted)))
			resume(r);
		while ((r = hl_pop(&todo)))
			if (cancelled)
				complete_cancelled(r);
			else
				start(r);
		if (cancelled)
			cancel_all(s);
		start_due(s, &next_due);
		curl_multi_perform(s->multi, &running);
		read_messages(s);
		expire(s, &next_due);
		now = vhclock_ms();
		if (next_due <= now)
			wait_ms = 0;
		else if (next_due - now < POLL_MAX_MS)
			wait_ms = (int)(next_due - now);
		curl_multi_poll(s->multi, NULL, 0, wait_ms, NULL);
	}
	return NULL;
}

/* ---- the budget and completion threads ---- */

static void *budget_main(void *arg)
{
	struct httpsrc *s = arg;
	struct hreq *r;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->want_budget.head && !s->quit)
			pthread_cond_wait(&s->cond, &s->lock);
		r = hl_pop(&s->want_budget);
		if (!r)
			break;
		pthread_mutex_unlock(&s->lock);
		r->grant_failed = budget_acquire(s->opts.budget, r->want) != 0;
		pthread_mutex_lock(&s->lock);
		hl_push(&s->granted, r);
		curl_multi_wakeup(s->multi);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void *done_main(void *arg)
{
	struct httpsrc *s = arg;
	struct hreq *r;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->completed.head && !s->quit)
			pthread_cond_wait(&s->cond, &s->lock);
		r = hl_pop(&s->completed);
		if (!r)
			break;
		pthread_mutex_unlock(&s->lock);
		{
			struct source_read *req = r->req;

			free(r);
			req->done(req);
		}
		pthread_mutex_lock(&s->lock);
		s->inflight--;
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- the public operations ---- */

static int start_threads(struct httpsrc *s)
{
	if (pthread_create(&s->done_tid, NULL, done_main, s) != 0)
		return -1;
	s->threads++;
	if (pthread_create(&s->budget_tid, NULL, budget_main, s) != 0)
		return -1;
	s->threads++;
	if (pthread_create(&s->loop_tid, NULL, loop_main, s) != 0)
		return -1;
	s->threads++;
	return 0;
}

static void fill_defaults(struct httpsrc_opts *h)
{
	if (h->per_host <= 0)
		h->per_host = HTTPSRC_PER_HOST;
	if (h->timeout_s <= 0)
		h->timeout_s = HTTPSRC_TIMEOUT_S;
	if (h->retries < 0)
		h->retries = HTTPSRC_RETRIES;
	if (h->backoff_ms <= 0)
		h->backoff_ms = HTTPSRC_BACKOFF_MS;
}

int httpsrc_open(const char *path, const struct source_opts *opts,
		 const struct httpsrc_opts *hopts, struct httpsrc **out, struct vherr *err)
{
	struct httpsrc *s = calloc(1, sizeof(*s));
	struct urllist_opts lo;
	int rc;

	*out = NULL;
	if (!s)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->opts = *opts;
	if (s->opts.io_depth < 1)
		s->opts.io_depth = 1;
	if (hopts)
		s->h = *hopts;
	else
		s->h.retries = -1;
	fill_defaults(&s->h);
	lo =
	    (struct urllist_opts){.url_column = s->h.url_column, .key_column = s->h.key_column};
	if ((rc = urllist_open(path, &lo, &s->list, err)) < 0)
		goto fail;
	s->multi = curl_multi_init();
	if (!s->multi) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK,
			       "cannot create a curl multi handle");
		goto fail;
	}
	curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->h.per_host);
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)s->opts.io_depth);
	if (start_threads(s) < 0) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, "cannot start the http threads");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	httpsrc_free(s);
	return rc;
}

/* The entry's handle: "URL\0EXTRA\0" in *buf (grown as needed); its length, or 0. */
static size_t pack_handle(const struct urllist_rec *rec, char **buf, size_t *cap)
{
	size_t u = strlen(rec->url), x = rec->extra ? strlen(rec->extra) : 0, n = u + x + 2;

	if (n > *cap) {
		char *b = realloc(*buf, n);

		if (!b)
			return 0;
		*buf = b;
		*cap = n;
	}
	memcpy(*buf, rec->url, u + 1);
	memcpy(*buf + u + 1, rec->extra ? rec->extra : "", x + 1);
	return n;
}

int httpsrc_walk(struct httpsrc *s, source_emit_fn emit, void *ctx,
		 void (*on_error)(void *ctx, const char *label, const struct vherr *err),
		 struct vherr *err)
{
	struct urllist_rec rec;
	char *handle = NULL;
	size_t cap = 0;
	int rc = 0;

	while (!atomic_load(&s->stopflag) && (rc = urllist_next(s->list, &rec, err)) > 0) {
		struct source_entry e = {.relpath = rec.key};

		if (rec.err.code) {
			if (on_error)
				on_error(ctx, rec.label, &rec.err);
			continue;
		}
		e.hint.handle = handle;
		e.hint.handle_len = (uint32_t)pack_handle(&rec, &handle, &cap);
		e.hint.handle = handle;
		if (!e.hint.handle_len) {
			rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
			break;
		}
		if (emit(ctx, &e) == SOURCE_STOP)
			atomic_store(&s->stopflag, true);
	}
	free(handle);
	return rc < 0 ? rc : 0;
}

int httpsrc_submit(struct httpsrc *s, struct source_read *req)
{
	struct hreq *r;
	const char *h = req->hint.handle;

	if (!h || req->hint.handle_len < 2)
		return -VHERR_INTERNAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -VHERR_NOMEM;
	r->s = s;
	r->req = req;
	r->url = h;
	r->extra = h + strlen(h) + 1;
	req->status = SOURCE_READ_FAILED;
	req->data = NULL;
	req->len = req->size = req->charged = 0;
	req->mtime_ns = 0;
	req->prov = NULL;
	vherr_clear(&req->err);
	pthread_mutex_lock(&s->lock);
	while (s->inflight >= s->opts.io_depth && !s->cancelled)
		pthread_cond_wait(&s->cond, &s->lock);
	if (s->cancelled) {
		pthread_mutex_unlock(&s->lock);
		free(r);
		return -VHERR_CANCELLED;
	}
	s->inflight++;
	hl_push(&s->posted, r);
	curl_multi_wakeup(s->multi);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void httpsrc_stop(struct httpsrc *s)
{
	atomic_store(&s->stopflag, true);
}

void httpsrc_cancel(struct httpsrc *s)
{
	pthread_mutex_lock(&s->lock);
	s->cancelled = true;
	atomic_store(&s->stopflag, true);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (s->opts.budget)
		budget_cancel(s->opts.budget);
	curl_multi_wakeup(s->multi);
}

char *httpsrc_location(const struct httpsrc *s, const char *relpath,
		       const struct source_hint *hint, char *buf, size_t size)
{
	if (hint && hint->handle && hint->handle_len > 1)
		return urllist_redact(hint->handle, s->h.keep_query, buf, size);
	snprintf(buf, size, "%s", relpath);
	return buf;
}

static void stop_threads(struct httpsrc *s)
{
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (s->multi)
		curl_multi_wakeup(s->multi);
	if (s->threads > 2)
		pthread_join(s->loop_tid, NULL);
	if (s->threads > 1)
		pthread_join(s->budget_tid, NULL);
	if (s->threads > 0)
		pthread_join(s->done_tid, NULL);
	s->threads = 0;
}

void httpsrc_free(struct httpsrc *s)
{
	if (!s)
		return;
	stop_threads(s);
	if (s->multi)
		curl_multi_cleanup(s->multi);
	urllist_free(s->list);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
