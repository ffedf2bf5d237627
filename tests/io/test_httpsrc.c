/* io/httpsrc against tests/fixtures/faultserver.py on a real loopback socket (port
 * $HTTP_FIXTURE_PORT + 3, default 20583; skipped without /usr/bin/python3): the judge sees
 * a response's first bytes and a refusal ends the transfer there; the revalidate step
 * skips a read unfetched or sends the earlier validators, and a 304 completes it as
 * skipped without a body. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <curl/curl.h>

#include "common/budget.h"
#include "io/httpsrc.h"
#include "tests/common/vhtest.h"

static char dir[PATH_MAX], base[64];
static pid_t server = -1;
static int port;
static uint8_t image[10000];

static int answers(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void setup(void)
{
	const char *src = getenv("VHPREP_SOURCE_DIR"), *p = getenv("HTTP_FIXTURE_PORT");
	char script[PATH_MAX], img[PATH_MAX];

	if (access("/usr/bin/python3", X_OK) != 0 || !src)
		cr_skip("needs /usr/bin/python3 and VHPREP_SOURCE_DIR");
	port = (p && *p ? atoi(p) : 20580) + 3;
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	vht_tmpdir(dir, sizeof(dir));
	image[0] = 0xff, image[1] = 0xd8, image[2] = 0xff;
	for (size_t i = 3; i < sizeof(image); i++)
		image[i] = (uint8_t)(i * 7);
	vht_join(img, sizeof(img), dir, "img.jpg");
	vht_put(dir, "img.jpg", "");
	{
		FILE *f = fopen(img, "wb");

		cr_assert_not_null(f);
		cr_assert_eq(fwrite(image, 1, sizeof(image), f), sizeof(image));
		fclose(f);
	}
	vht_put(dir, "list.txt", "");
	snprintf(script, sizeof(script), "%s/tests/fixtures/faultserver.py", src);
	server = fork();
	cr_assert_geq(server, 0);
	if (server == 0) {
		char ps[16];

		snprintf(ps, sizeof(ps), "%d", port);
		execl("/usr/bin/python3", "python3", script, "--port", ps, "--image", img,
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 100 && !answers(); i++)
		usleep(50000);
	cr_assert(answers(), "faultserver does not answer on port %d", port);
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void teardown(void)
{
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
		server = -1;
	}
	vht_rm_rf(dir);
}

/* One read's completion, and what the callbacks saw. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int finished;
static uint64_t judged_len, judged_size;
static int judged, asked_first, asked_304;
static enum source_admit first_answer;
static struct source_validators give;

static void on_done(struct source_read *req)
{
	(void)req;
	pthread_mutex_lock(&mu);
	finished = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Lets through what starts like a JPEG. */
static enum source_admit jpeg_judge(struct source_read *req)
{
	judged++;
	judged_len = req->len;
	judged_size = req->size;
	if (req->len >= 3 && req->data[0] == 0xff && req->data[1] == 0xd8 &&
	    req->data[2] == 0xff)
		return SOURCE_ADMIT_READ;
	vherr_set(&req->err, VHERR_NOT_IMAGE, VHSTAGE_READ, "no image magic");
	return SOURCE_ADMIT_FAIL;
}

static enum source_admit revalidate(struct source_read *req, struct source_validators *v,
				    int not_modified)
{
	(void)req;
	if (not_modified) {
		asked_304++;
		return SOURCE_ADMIT_SKIP;
	}
	asked_first++;
	*v = give;
	return first_answer;
}

/* Fetches path from the fault server through a fresh httpsrc; req gets the result. */
static void fetch(const char *path, struct source_read *req, struct budget *b)
{
	struct source_opts so = {.io_depth = 4, .budget = b, .quiet = 1};
	struct httpsrc_opts ho = {.retries = 0};
	char list[PATH_MAX], handle[512];
	struct httpsrc *s;
	struct vherr err = {0};
	int n = snprintf(handle, sizeof(handle), "%s%s", base, path);

	handle[n + 1] = '\0'; /* "URL\0\0": no other columns */
	cr_assert_eq(
	    httpsrc_open(vht_join(list, sizeof(list), dir, "list.txt"), &so, &ho, &s, &err), 0,
	    "%s", err.msg);
	req->relpath = "x.jpg";
	req->hint.handle = handle;
	req->hint.handle_len = (uint32_t)n + 2;
	req->max_size = UINT64_MAX;
	req->done = on_done;
	finished = 0;
	cr_assert_eq(httpsrc_submit(s, req), 0);
	pthread_mutex_lock(&mu);
	while (!finished)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	httpsrc_free(s);
}

struct text {
	char b[65536];
	size_t n;
};

static size_t keep(char *p, size_t size, size_t n, void *ud)
{
	struct text *t = ud;

	n *= size;
	if (t->n + n >= sizeof(t->b))
		return 0;
	memcpy(t->b + t->n, p, n);
	t->n += n;
	return n;
}

/* The fault server's JSON document at path (/counts, /sent), fetched with plain libcurl
 * (httpsrc refuses JSON: it is no image). */
static json_t *server_json(const char *path)
{
	static struct text t;
	char url[256];
	CURL *e = curl_easy_init();
	json_t *j;

	t.n = 0;
	snprintf(url, sizeof(url), "%s%s", base, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, keep);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
	cr_assert_eq(curl_easy_perform(e), CURLE_OK);
	curl_easy_cleanup(e);
	j = json_loadb(t.b, t.n, 0, NULL);
	cr_assert_not_null(j);
	return j;
}

Test(httpsrc_judge, refuses_a_large_non_image_after_its_head, .init = setup, .fini = teardown)
{
	struct source_read req = {.judge = jpeg_judge};
	struct budget *b = budget_new(256 << 20);
	json_t *sent;
	json_int_t bytes;

	fetch("/junk/x.jpg?mb=64", &req, b);
	cr_assert_eq(req.status, SOURCE_READ_FAILED);
	cr_assert_eq(req.err.code, VHERR_NOT_IMAGE, "%s", req.err.msg);
	cr_assert_eq(judged, 1);
	cr_assert_eq(judged_len, SOURCE_HEAD_MAX, "the judge saw the head only");
	cr_assert_eq(judged_size, 64u << 20, "size: the Content-Length");
	cr_assert_null(req.data);
	cr_assert_eq(req.charged, 0);
	cr_assert_eq(budget_used(b), 0);
	sent = server_json("/sent");
	bytes = json_integer_value(json_object_get(sent, "/junk/x.jpg"));
	cr_log_info("judge refused /junk/x.jpg: %lld of 64 MiB sent", (long long)bytes);
	cr_assert_lt(bytes, 16 << 20, "the transfer went on: %lld of 64 MiB sent",
		     (long long)bytes);
	json_decref(sent);
	json_decref(req.prov);
	budget_free(b);
}

Test(httpsrc_judge, sees_a_short_body_whole_and_lets_it_through, .init = setup,
     .fini = teardown)
{
	struct source_read req = {.judge = jpeg_judge};
	struct budget *b = budget_new(1 << 20);

	fetch("/img/a.jpg", &req, b);
	cr_assert_eq(req.status, SOURCE_READ_OK, "%s", req.err.msg);
	cr_assert_eq(judged, 1);
	cr_assert_eq(judged_len, sizeof(image));
	cr_assert_eq(judged_size, sizeof(image));
	cr_assert_eq(req.len, sizeof(image));
	cr_assert_arr_eq(req.data, image, sizeof(image));
	free(req.data);
	budget_release(b, req.charged);
	json_decref(req.prov);
	budget_free(b);
}

Test(httpsrc_revalidate, a_304_completes_as_skipped, .init = setup, .fini = teardown)
{
	struct source_read req = {.revalidate = revalidate, .judge = jpeg_judge};
	struct budget *b = budget_new(1 << 20);

	first_answer = SOURCE_ADMIT_READ;
	snprintf(give.etag, sizeof(give.etag), "\"img-1\"");
	fetch("/img/b.jpg", &req, b);
	cr_assert_eq(req.status, SOURCE_READ_SKIPPED, "%s", req.err.msg);
	cr_assert_eq(asked_first, 1);
	cr_assert_eq(asked_304, 1);
	cr_assert_eq(judged, 0, "no body, nothing to judge");
	cr_assert_null(req.data);
	cr_assert_eq(budget_used(b), 0);
	json_decref(req.prov);
	/* Last-Modified alone does it too */
	memset(&give, 0, sizeof(give));
	snprintf(give.last_modified, sizeof(give.last_modified),
		 "Tue, 01 Dec 2026 10:00:00 GMT");
	req = (struct source_read){.revalidate = revalidate};
	fetch("/img/b.jpg", &req, b);
	cr_assert_eq(req.status, SOURCE_READ_SKIPPED, "%s", req.err.msg);
	cr_assert_eq(asked_304, 2);
	json_decref(req.prov);
	budget_free(b);
}

Test(httpsrc_revalidate, a_changed_input_is_fetched_whole, .init = setup, .fini = teardown)
{
	struct source_read req = {.revalidate = revalidate};
	struct budget *b = budget_new(1 << 20);

	first_answer = SOURCE_ADMIT_READ;
	snprintf(give.etag, sizeof(give.etag), "\"img-0\"");
	fetch("/img/c.jpg", &req, b);
	cr_assert_eq(req.status, SOURCE_READ_OK, "%s", req.err.msg);
	cr_assert_eq(asked_304, 0);
	cr_assert_eq(req.len, sizeof(image));
	free(req.data);
	budget_release(b, req.charged);
	json_decref(req.prov);
	budget_free(b);
}

Test(httpsrc_revalidate, a_skip_sends_no_request, .init = setup, .fini = teardown)
{
	struct source_read req = {.revalidate = revalidate};
	struct budget *b = budget_new(1 << 20);
	json_t *counts;

	first_answer = SOURCE_ADMIT_SKIP;
	fetch("/plain/d.jpg", &req, b);
	cr_assert_eq(req.status, SOURCE_READ_SKIPPED);
	cr_assert_eq(asked_first, 1);
	json_decref(req.prov);
	counts = server_json("/counts");
	cr_assert_null(json_object_get(counts, "/plain/d.jpg"), "the server saw no request");
	json_decref(counts);
	budget_free(b);
}
