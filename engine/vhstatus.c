/* vhstatus: posts the Valohai status detail (see vhstatus.h). */
#include "engine/vhstatus.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct vhstatus {
	struct stats *stats;	    /* set at creation */
	char *url, *method;	    /* set at creation */
	struct curl_slist *headers; /* set at creation */
	double interval_s;	    /* set at creation */
	int quiet;		    /* set at creation */
	int warned;		    /* poster thread, then the stopping one */
	pthread_t tid;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stop; /* under lock */
};

void vhstatus_format(struct stats *stats, int final, int exit_code, char *buf, size_t size)
{
	double secs = stats_elapsed(stats);
	unsigned long long done = atomic_load(&stats->processed);
	unsigned long long failed = atomic_load(&stats->failed);
	unsigned long long found = atomic_load(&stats->found);
	int n;

	if (size > VHSTATUS_TEXT_MAX)
		size = VHSTATUS_TEXT_MAX;
	n = snprintf(buf, size, "%s%llu processed, %llu failed, %llu found%s, %.1f files/s",
		     final ? "done: " : "", done, failed, found,
		     atomic_load(&stats->walk_complete) ? "" : " so far",
		     secs > 0 ? (double)done / secs : 0.0);
	if (final && n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, ", exit %d", exit_code);
}

/* POSTs text; returns 0, or -1 with why filled. */
static int post(struct vhstatus *v, const char *text, char *why, size_t size)
{
	json_t *o = json_pack("{s:s}", "status_detail", text);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	CURL *e = curl_easy_init();
	long status = 0;
	CURLcode rc = CURLE_OUT_OF_MEMORY;

	json_decref(o);
	if (e && body) {
		curl_easy_setopt(e, CURLOPT_URL, v->url);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)VHSTATUS_TIMEOUT_MS);
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, v->headers);
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, v->method);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
		rc = curl_easy_perform(e);
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	}
	if (rc != CURLE_OK)
		snprintf(why, size, "%s", curl_easy_strerror(rc));
	else if (status < 200 || status > 299)
		snprintf(why, size, "HTTP status %ld", status);
	curl_easy_cleanup(e);
	free(body);
	return rc == CURLE_OK && status >= 200 && status <= 299 ? 0 : -1;
}

static void post_once(struct vhstatus *v, int final, int exit_code)
{
	char text[VHSTATUS_TEXT_MAX], why[CURL_ERROR_SIZE];

	vhstatus_format(v->stats, final, exit_code, text, sizeof(text));
	if (post(v, text, why, sizeof(why)) == 0 || v->warned)
		return;
	v->warned = 1;
	if (!v->quiet)
		fprintf(
		    stderr,
		    "vhprep: warning: cannot set the Valohai status detail: %s (the run goes "
		    "on; no more warnings about it)\n",
		    why);
}

static void *poster_main(void *arg)
{
	struct vhstatus *v = arg;
	struct timespec until;

	pthread_mutex_lock(&v->lock);
	while (!v->stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)v->interval_s;
		until.tv_nsec += (long)((v->interval_s - (double)(time_t)v->interval_s) * 1e9);
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		while (!v->stop && pthread_cond_timedwait(&v->wake, &v->lock, &until) == 0)
			;
		if (v->stop)
			break;
		pthread_mutex_unlock(&v->lock);
		post_once(v, 0, 0);
		pthread_mutex_lock(&v->lock);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

/* Reads the endpoint from api.json into v; 0, or -1 when there is none. */
static int read_config(struct vhstatus *v)
{
	const char *dir = getenv("VH_CONFIG_DIR");
	char path[4096];
	json_t *root, *ep, *url, *method, *headers, *val;
	const char *name;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/api.json", dir && *dir ? dir : "/valohai/config");
	root = json_load_file(path, 0, NULL);
	ep = json_object_get(root, "set_status_detail");
	url = json_object_get(ep, "url");
	if (!json_is_string(url) || !*json_string_value(url))
		goto out;
	method = json_object_get(ep, "method");
	headers = json_object_get(ep, "headers");
	v->url = strdup(json_string_value(url));
	v->method = strdup(json_is_string(method) ? json_string_value(method) : "POST");
	if (!v->url || !v->method)
		goto out;
	v->headers = curl_slist_append(NULL, "Content-Type: application/json");
	json_object_foreach(headers, name, val)
	{
		char line[4096];
		struct curl_slist *h;

		if (!json_is_string(val))
			continue;
		snprintf(line, sizeof(line), "%s: %s", name, json_string_value(val));
		h = curl_slist_append(v->headers, line);
		if (h)
			v->headers = h;
	}
	rc = v->headers ? 0 : -1;
out:
	json_decref(root);
	return rc;
}

static void release(struct vhstatus *v)
{
	free(v->url);
	free(v->method);
	curl_slist_free_all(v->headers);
	pthread_cond_destroy(&v->wake);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

struct vhstatus *vhstatus_start(struct stats *stats, int quiet)
{
	struct vhstatus *v = calloc(1, sizeof(*v));
	const char *iv = getenv("VHPREP_STATUS_INTERVAL");

	if (!v)
		return NULL;
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->wake, NULL);
	v->stats = stats;
	v->quiet = quiet;
	v->interval_s = iv && atof(iv) > 0 ? atof(iv) : VHSTATUS_INTERVAL_S;
	if (read_config(v) < 0 || pthread_create(&v->tid, NULL, poster_main, v) != 0) {
		release(v);
		return NULL;
	}
	return v;
}

void vhstatus_stop(struct vhstatus *v, int exit_code)
{
	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	v->stop = 1;
	pthread_cond_broadcast(&v->wake);
	pthread_mutex_unlock(&v->lock);
	pthread_join(v->tid, NULL);
	post_once(v, 1, exit_code);
	release(v);
}
