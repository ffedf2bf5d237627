/* --urls against real servers on 127.0.0.1 (tests/fixtures/http.sh): Debian's nginx over
 * HTTP/1.1 and over HTTP/2 with TLS (a self-signed certificate made for the test, given
 * with --cacert), and tests/fixtures/faultserver.py for 429/5xx/slow/truncated/redirect/
 * error-page responses and the Valohai status-detail recorder. DNS failures and cloud
 * metadata addresses are tested in a network namespace of their own
 * (tests/fixtures/netns.sh), where no query or packet can leave the machine.
 * - the same images give byte-identical outputs over HTTP/1.1, HTTP/2 and a local path,
 *   in several thread and depth settings; nginx's log shows h2 and reused connections;
 * - every fault is recorded with its reason, retried where it should be (counted on the
 *   server), and never echoes a body; every list line is accounted for;
 * - list columns reach the metadata, bad keys are refused per line, queries redacted;
 * - the status detail is posted periodically and at the end, with api.json's headers,
 *   and a failing endpoint costs one warning and nothing else.
 * Needs root (nginx's workers, namespaces), nginx-light, openssl, curl, python3: the
 * fixtures exit 77 where they cannot run and the test is skipped. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"
#include "tests/common/vhskip.h"

#define FREE_NULL(p)                                                                           \
	do {                                                                                   \
		free(p);                                                                       \
		(p) = NULL;                                                                    \
	} while (0)

static int server_up;
static char *http_url, *https_url, *fault_url, *cacert, *status_log, *access_log;

static const char *const names[] = {
    "top.jpg",	      "a/one.jpg",   "a/two.png",   "a/b/three.webp",
    "a/b/c/four.jpg", "many/m0.jpg", "many/m1.jpg", "many/m2.png",
    "many/m3.jpg",    "many/m4.jpg", "many/m5.jpg",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* Makes root/www with the images and starts the servers; skips when they cannot run. */
static void serve(void)
{
	char *www = itest_path("www"), *image = NULL, *out = NULL, *err = NULL;
	int code;

	for (size_t i = 0; i < NNAMES; i++) {
		char *p = itest_fmt("%s/%s", www, names[i]);

		itest_make_image(p, 120 + 9 * (int)i, 80 + 5 * (int)i, 3, (unsigned)i + 7, 0);
		free(p);
	}
	image = itest_fmt("%s/top.jpg", www);
	code = itest_fixture("http.sh", &out, &err, "start", www, image, NULL);
	if (code == 77) {
		char *why = itest_fmt("%s", err);

		free(out);
		free(err);
		vht_missing("the HTTP servers are unavailable here (fixture exit 77): %s", why);
	}
	server_up = 1;
	cr_assert_eq(code, 0, "http.sh start: exit %d: %s", code, err);
	http_url = itest_line_value(out, "HTTP_URL");
	https_url = itest_line_value(out, "HTTPS_URL");
	fault_url = itest_line_value(out, "FAULT_URL");
	cacert = itest_line_value(out, "CACERT");
	status_log = itest_line_value(out, "STATUS_LOG");
	access_log = itest_line_value(out, "ACCESS_LOG");
	free(out);
	free(err);
	free(www);
	free(image);
}

static void http_setup(void)
{
	itest_setup();
	server_up = 0;
	unsetenv("http_proxy");
	unsetenv("https_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("HTTPS_PROXY");
	unsetenv("ALL_PROXY");
	unsetenv("VH_CONFIG_DIR");
	setenv("VH_CONFIG_DIR", itest_root, 1); /* no api.json unless a test writes one */
}

static void http_teardown(void)
{
	if (server_up) {
		char *err = NULL;
		int code = itest_fixture("http.sh", NULL, &err, "stop", NULL);

		if (code != 0)
			cr_log_error("http.sh stop: exit %d: %s", code, err);
		free(err);
		server_up = 0;
	}
	FREE_NULL(http_url);
	FREE_NULL(https_url);
	FREE_NULL(fault_url);
	FREE_NULL(cacert);
	FREE_NULL(status_log);
	FREE_NULL(access_log);
	itest_teardown();
}

TestSuite(http, .init = http_setup, .fini = http_teardown, .timeout = 240);

/* Writes a CSV list "url,key" of every image under base into root/name; returns it. */
static char *write_list(const char *name, const char *base)
{
	char *path = itest_path(name);
	size_t cap = 64 * 1024, n = 0;
	char *text = malloc(cap);

	n += (size_t)snprintf(text, cap, "url,key\n");
	for (size_t i = 0; i < NNAMES; i++)
		n +=
		    (size_t)snprintf(text + n, cap - n, "%s/%s,%s\n", base, names[i], names[i]);
	itest_write_file(path, text, n);
	free(text);
	return path;
}

/* Runs vhprep over list into root/outname with extra arguments (NULL-terminated). */
static void run_list(struct itest_proc *p, const char *list, const char *outname, ...)
{
	struct itest_argv a = {0};
	char *outs = itest_path(outname);
	va_list ap;
	const char *s;

	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "--urls");
	itest_argv_add(&a, list);
	itest_argv_add(&a, "--outputs");
	itest_argv_add(&a, outs);
	itest_argv_add(&a, "--metrics-interval");
	itest_argv_add(&a, "0");
	va_start(ap, outname);
	while ((s = va_arg(ap, const char *)))
		itest_argv_add(&a, s);
	va_end(ap);
	itest_vhprep_argv(p, &a);
	itest_argv_free(&a);
	free(outs);
}

/* Counts the lines of text that contain needle. */
static int count_lines_text(const char *text, const char *needle)
{
	int n = 0;

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *hit = strstr(l, needle), *end = strchr(l, '\n');

		n += hit && (!end || hit < end);
	}
	return n;
}

/* Counts the lines of the file at path that contain needle. */
static int count_lines(const char *path, const char *needle)
{
	char *text = itest_slurp(path, NULL);
	int n = count_lines_text(text, needle);

	free(text);
	return n;
}

/* The metadata line of file, asserted present. */
static json_t *line_of(json_t *lines, const char *file)
{
	size_t i;
	json_t *l;

	json_array_foreach(lines, i, l)
	{
		if (!strcmp(itest_jstr(l, "file"), file))
			return l;
	}
	cr_assert_fail("no metadata line for %s", file);
	return NULL;
}

Test(http, http1_and_h2_give_the_local_bytes)
{
	struct itest_proc p;
	char *www, *l1, *l2, *local, *o1, *o2, *o3, *f, *pfx;
	json_t *lines;
	char sha[65];

	serve();
	www = itest_path("www");
	l1 = write_list("h1.csv", http_url);
	l2 = write_list("h2.csv", https_url);
	itest_vhprep(&p, "--outputs", (local = itest_path("local")), "--metrics-interval", "0",
		     "--resize", "64", www, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	run_list(&p, l1, "o1", "--resize", "64", "--threads", "1", "--io-depth", "1", NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	run_list(&p, l2, "o2", "--resize", "64", "--cacert", cacert, "--io-depth", "32", NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	run_list(&p, l1, "o3", "--resize", "64", "--threads", "2", "--io-depth", "3",
		 "--per-host", "2", NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	o1 = itest_fmt("%s/o1/processed_images", itest_root);
	o2 = itest_fmt("%s/o2/processed_images", itest_root);
	o3 = itest_fmt("%s/o3/processed_images", itest_root);
	pfx = itest_fmt("%s/processed_images", local);
	itest_assert_trees_identical(pfx, o1);
	itest_assert_trees_identical(pfx, o2);
	itest_assert_trees_identical(pfx, o3);

	/* provenance of a URL input */
	f = itest_fmt("%s/o2", itest_root);
	lines = itest_check_outputs(f, "processed_images", 1);
	{
		json_t *m =
		    json_object_get(line_of(lines, "processed_images/a/one.jpg"), "metadata");
		char *want = itest_fmt("%s/a/one.jpg", https_url);
		char *src = itest_fmt("%s/a/one.jpg", www);

		itest_sha256_file(src, sha);
		cr_assert_str_eq(itest_jstr(m, "url"), want);
		cr_assert_str_eq(itest_jstr(m, "final_url"), want);
		cr_assert_str_eq(itest_jstr(m, "source"), want);
		cr_assert_eq(itest_jint(m, "http_status"), 200);
		cr_assert_str_eq(itest_jstr(m, "source_sha256"), sha);
		cr_assert_eq((uint64_t)itest_jint(m, "source_bytes"), itest_file_size(src));
		cr_assert(strlen(itest_jstr(m, "etag")) > 2, "nginx sends an ETag");
		cr_assert(strstr(itest_jstr(m, "last_modified"), "GMT"));
		cr_assert_eq(itest_jint(m, "attempts"), 1);
		free(want);
		free(src);
	}
	json_decref(lines);
	/* h2 was spoken, and connections carried many requests */
	cr_assert_geq(count_lines(access_log, "HTTP/2.0 200"), (int)NNAMES);
	cr_assert_geq(count_lines(access_log, "HTTP/1.1 200"), 2 * (int)NNAMES);
	cr_assert_geq(count_lines(access_log, " 2 HTTP/"), 3,
		      "some connections carried a second request (reuse)");
	free(www);
	free(l1);
	free(l2);
	free(local);
	free(o1);
	free(o2);
	free(o3);
	free(pfx);
	free(f);
}

/* The error line of url, asserted present. */
static json_t *error_of(json_t *errors, const char *url)
{
	size_t i;
	json_t *e;

	json_array_foreach(errors, i, e)
	{
		if (!strcmp(itest_jstr(e, "path"), url))
			return e;
	}
	cr_assert_fail("no error line for %s", url);
	return NULL;
}

static json_int_t hits(json_t *counts, const char *path)
{
	json_t *v = json_object_get(counts, path);

	return v ? json_integer_value(v) : 0;
}

Test(http, faults_are_recorded_retried_and_counted)
{
	struct itest_proc p;
	char *list, *text, *outs, *errpath, *sumpath, *cpath;
	json_t *errors, *sum, *counts, *lines;
	struct {
		const char *path, *reason; /* reason NULL: processed */
	} cases[] = {
	    {"/img/ok.jpg", NULL},
	    {"/429/a.jpg?n=2&after=0", NULL},
	    {"/500/b.jpg?n=1", NULL},
	    {"/toimg/h.jpg", NULL},
	    {"/503/c.jpg", "http_status"},
	    {"/slow/d.jpg?s=5", "timeout"},
	    {"/truncated/e.jpg", "network"},
	    {"/loop/f.jpg", "redirects"},
	    {"/tofile/g.jpg", "redirects"},
	    {"/html/i.jpg", "not_image"},
	    {"/big/j.jpg?mb=3", "body_too_large"},
	    {"/404/k.jpg", "http_status"},
	};
	size_t ncases = sizeof(cases) / sizeof(cases[0]), n = 0, failed = 0;

	serve();
	text = malloc(8192);
	for (size_t i = 0; i < ncases; i++)
		n += (size_t)sprintf(text + n, "%s%s\n", fault_url, cases[i].path);
	n += (size_t)sprintf(text + n,
			     "ftp://127.0.0.1/x.jpg\nhttp://127.0.0.1:1/refused.jpg\n");
	list = itest_path("faults.txt");
	itest_write_file(list, text, n);
	run_list(&p, list, "out", "--http-timeout", "2", "--retries", "2", "--max-size", "1M",
		 "--max-errors", "100", "--keep-query", NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	outs = itest_path("out");
	errpath = itest_fmt("%s/vhprep-errors.jsonl", outs);
	sumpath = itest_fmt("%s/vhprep-summary.json", outs);
	errors = itest_read_jsonl(errpath);
	for (size_t i = 0; i < ncases; i++) {
		char *url = itest_fmt("%s%s", fault_url, cases[i].path);

		if (cases[i].reason) {
			json_t *e = error_of(errors, url);

			cr_assert_str_eq(itest_jstr(e, "reason"), cases[i].reason, "%s: %s",
					 url, itest_jstr(e, "message"));
			cr_assert_str_eq(itest_jstr(e, "url"), url);
			failed++;
		}
		free(url);
	}
	cr_assert_str_eq(itest_jstr(error_of(errors, "ftp://127.0.0.1/x.jpg"), "reason"),
			 "bad_url");
	cr_assert_str_eq(
	    itest_jstr(error_of(errors, "http://127.0.0.1:1/refused.jpg"), "reason"),
	    "refused");
	cr_assert_eq(json_array_size(errors), failed + 2, "one error line per failed URL");
	/* every line is accounted for: processed + failed */
	sum = itest_read_json(sumpath);
	cr_assert_eq(itest_jint(itest_jget(sum, "files"), "processed"),
		     (json_int_t)(ncases - failed));
	cr_assert_eq(itest_jint(itest_jget(sum, "files"), "failed"), (json_int_t)(failed + 2));
	/* retries, counted by the server: 429 twice then 200; 503 1 + --retries times */
	cpath = itest_fmt("%s/counts", fault_url);
	{
		struct itest_argv a = {0};
		struct itest_proc c;

		itest_argv_add(&a, "/usr/bin/curl");
		itest_argv_add(&a, "-s");
		itest_argv_add(&a, cpath);
		itest_run(a.v, NULL, &c);
		counts = json_loads(c.out, 0, NULL);
		cr_assert(json_is_object(counts), "counts: %s", c.out);
		itest_proc_release(&c);
		itest_argv_free(&a);
	}
	cr_assert_eq(hits(counts, "/429/a.jpg"), 3);
	cr_assert_eq(hits(counts, "/500/b.jpg"), 2);
	cr_assert_eq(hits(counts, "/503/c.jpg"), 3);
	cr_assert_eq(hits(counts, "/truncated/e.jpg"), 3);
	cr_assert_eq(hits(counts, "/html/i.jpg"), 1, "an error page is not retried");
	cr_assert_eq(hits(counts, "/404/k.jpg"), 1, "a 404 is not retried");
	lines = itest_check_outputs(outs, "processed_images", 1);
	{
		char *u = itest_fmt("%s/429/a.jpg?n=2&after=0", fault_url);
		size_t i;
		json_t *l, *m = NULL;

		json_array_foreach(lines, i, l)
		{
			json_t *mm = json_object_get(l, "metadata");

			if (json_object_get(mm, "url") && !strcmp(itest_jstr(mm, "url"), u))
				m = mm;
		}
		cr_assert_not_null(m, "no metadata line for %s", u);
		cr_assert_eq(itest_jint(m, "attempts"), 3);
		free(u);
	}
	/* the error page's text went nowhere */
	cr_assert_eq(itest_count_names(outs, "SECRET"), 0);
	{
		char *all = itest_fmt("%s/valohai.metadata.jsonl", outs),
		     *t1 = itest_slurp(all, NULL), *t2 = itest_slurp(errpath, NULL);

		cr_assert_null(strstr(t1, "SECRET-PAGE-TEXT"));
		cr_assert_null(strstr(t2, "SECRET-PAGE-TEXT"));
		free(all);
		free(t1);
		free(t2);
	}
	json_decref(lines);
	json_decref(counts);
	json_decref(sum);
	json_decref(errors);
	free(text);
	free(list);
	free(outs);
	free(errpath);
	free(sumpath);
	free(cpath);
}

/* A transfer waiting for one of the host's connections has not started: its timeout
 * must not run out there (six 0.5 s answers through one connection take 3 s, each well
 * within the 1.5 s of its own attempt). */
Test(http, a_queued_transfer_keeps_its_whole_timeout)
{
	struct itest_proc p;
	char *list, *text = malloc(4096), *sumpath;
	json_t *sum;
	size_t n = 0;

	serve();
	for (int i = 0; i < 6; i++)
		n += (size_t)sprintf(text + n, "%s/slow/q%d.jpg?s=0.5\n", fault_url, i);
	list = itest_path("queued.txt");
	itest_write_file(list, text, n);
	run_list(&p, list, "out", "--per-host", "1", "--http-timeout", "1.5", "--retries", "0",
		 NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	sumpath = itest_path("out/vhprep-summary.json");
	sum = itest_read_json(sumpath);
	cr_assert_eq(itest_jint(itest_jget(sum, "files"), "processed"), 6);
	cr_assert_eq(itest_jint(itest_jget(sum, "files"), "failed"), 0);
	json_decref(sum);
	free(sumpath);
	free(list);
	free(text);
}

Test(http, columns_keys_redaction_and_stdin)
{
	struct itest_proc p;
	char *list, *text, *outs, *errpath;
	json_t *lines, *errors, *m;
	struct itest_spawn_opts so = {0};
	struct itest_argv a = {0};

	serve();
	text = itest_fmt("url,key,label,valohai.tags\n"
			 "%s/a/one.jpg?sig=SECRET,cats/one.jpg,cat,x\n"
			 "%s/a/two.png,../escape.png,dog,x\n"
			 "%s/top.jpg,/abs.jpg,dog,x\n"
			 "%s/many/m0.jpg,,bird,x\n",
			 http_url, http_url, http_url, http_url);
	list = itest_path("cols.csv");
	itest_write_file(list, text, strlen(text));
	so.stdin_path = list;
	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "--urls");
	itest_argv_add(&a, "-");
	itest_argv_add(&a, "--outputs");
	itest_argv_add(&a, (outs = itest_path("out")));
	itest_argv_add(&a, "--max-errors");
	itest_argv_add(&a, "2");
	itest_argv_add(&a, "--metrics-interval");
	itest_argv_add(&a, "0");
	itest_run(a.v, &so, &p);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	itest_argv_free(&a);
	lines = itest_check_outputs(outs, "processed_images", 1);
	cr_assert_eq(json_array_size(lines), 3, "two outputs and the CSV's line");
	m = json_object_get(line_of(lines, "processed_images/cats/one.jpg"), "metadata");
	cr_assert_str_eq(itest_jstr(m, "label"), "cat");
	cr_assert_null(json_object_get(m, "valohai.tags"), "a list never sets valohai.* keys");
	{
		char *want = itest_fmt("%s/a/one.jpg?redacted", http_url);

		cr_assert_str_eq(itest_jstr(m, "url"), want);
		cr_assert_str_eq(itest_jstr(m, "source"), want);
		free(want);
	}
	{
		/* the derived key: HOST_http_PORT/PATH */
		char *key = itest_fmt("processed_images/127.0.0.1_http_%s/many/m0.jpg",
				      strrchr(http_url, ':') + 1);

		m = json_object_get(line_of(lines, key), "metadata");
		cr_assert_str_eq(itest_jstr(m, "label"), "bird");
		free(key);
	}
	errpath = itest_fmt("%s/vhprep-errors.jsonl", outs);
	errors = itest_read_jsonl(errpath);
	cr_assert_eq(json_array_size(errors), 2);
	for (size_t i = 0; i < 2; i++)
		cr_assert_str_eq(itest_jstr(json_array_get(errors, i), "reason"), "bad_name");
	cr_assert_eq(itest_count_names(outs, "escape"), 0);
	cr_assert_eq(itest_count_names(itest_root, "abs.jpg"), 0);
	{
		char *t = itest_slurp(errpath, NULL), *t2;
		char *mp = itest_fmt("%s/valohai.metadata.jsonl", outs);

		t2 = itest_slurp(mp, NULL);
		cr_assert_null(strstr(t2, "SECRET"), "the query is redacted");
		cr_assert_null(strstr(t, "SECRET"));
		free(t);
		free(t2);
		free(mp);
	}
	json_decref(errors);
	json_decref(lines);
	free(errpath);
	free(text);
	free(list);
	free(outs);
}

Test(http, tls_is_verified_unless_insecure)
{
	struct itest_proc p;
	char *list, *text, *e;
	json_t *errors;

	serve();
	text = itest_fmt("%s/top.jpg\n", https_url);
	list = itest_path("tls.txt");
	itest_write_file(list, text, strlen(text));
	run_list(&p, list, "strict", NULL);
	itest_assert_exit(&p, 3);
	itest_proc_release(&p);
	e = itest_fmt("%s/strict/vhprep-errors.jsonl", itest_root);
	errors = itest_read_jsonl(e);
	cr_assert_eq(json_array_size(errors), 1);
	cr_assert_str_eq(itest_jstr(json_array_get(errors, 0), "reason"), "tls");
	run_list(&p, list, "insecure", "--insecure", NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	run_list(&p, list, "cacert", "--cacert", cacert, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	json_decref(errors);
	free(e);
	free(text);
	free(list);
}

/* Runs vhprep over list inside tests/fixtures/netns.sh (args after the list). */
static void run_in_netns(struct itest_proc *p, const char *list, const char *outname,
			 const char *mdlog, const char *extra)
{
	struct itest_argv a = {0};
	char *image = itest_path("www/top.jpg");

	itest_make_image(image, 40, 30, 3, 1, 0);
	itest_argv_add(&a, "/bin/bash");
	itest_argv_addf(&a, "%s/tests/fixtures/netns.sh", itest_source_dir());
	itest_argv_add(&a, "--metadata-listener");
	itest_argv_add(&a, mdlog);
	itest_argv_add(&a, image);
	itest_argv_add(&a, "--");
	itest_argv_add(&a, itest_bin());
	itest_argv_add(&a, "--urls");
	itest_argv_add(&a, list);
	itest_argv_add(&a, "--outputs");
	itest_argv_addf(&a, "%s/%s", itest_root, outname);
	itest_argv_add(&a, "--metrics-interval");
	itest_argv_add(&a, "0");
	itest_argv_add(&a, "--max-errors");
	itest_argv_add(&a, "100");
	if (extra)
		itest_argv_add(&a, extra);
	itest_run(a.v, NULL, p);
	if (p->exit_code == 77)
		vht_missing("network namespaces are unavailable here: %s", p->err);
	itest_argv_free(&a);
	free(image);
}

static const char *reason_of(json_t *errors, const char *url)
{
	return itest_jstr(error_of(errors, url), "reason");
}

Test(http, dns_failure_and_metadata_addresses_in_a_namespace)
{
	struct itest_proc p;
	char *list, *mdlog, *e, *log;
	const char *text = "http://no-such-host.invalid/a.jpg\n"
			   "https://also-missing.invalid:8443/b.jpg\n"
			   "http://169.254.169.254/img/x.jpg\n"
			   "http://[fd00:ec2::254]/img/y.jpg\n"
			   "http://[::ffff:169.254.169.254]/img/z.jpg\n";
	json_t *errors;

	list = itest_path("ns.txt");
	itest_write_file(list, text, strlen(text));
	mdlog = itest_path("metadata.log");
	run_in_netns(&p, list, "refused", mdlog, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	e = itest_fmt("%s/refused/vhprep-errors.jsonl", itest_root);
	errors = itest_read_jsonl(e);
	cr_assert_eq(json_array_size(errors), 5);
	cr_assert_str_eq(reason_of(errors, "http://no-such-host.invalid/a.jpg"), "dns");
	cr_assert_str_eq(reason_of(errors, "https://also-missing.invalid:8443/b.jpg"), "dns");
	cr_assert_str_eq(reason_of(errors, "http://169.254.169.254/img/x.jpg"), "metadata_ip");
	cr_assert_str_eq(reason_of(errors, "http://[fd00:ec2::254]/img/y.jpg"), "metadata_ip");
	cr_assert_str_eq(reason_of(errors, "http://[::ffff:169.254.169.254]/img/z.jpg"),
			 "metadata_ip");
	log = itest_slurp(mdlog, NULL);
	cr_assert_str_eq(log, "", "nothing connected to the metadata address: %s", log);
	free(log);
	json_decref(errors);
	free(e);

	run_in_netns(&p, list, "allowed", mdlog, "--allow-metadata-ip");
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	e = itest_fmt("%s/allowed/processed_images/169.254.169.254_http/img/x.jpg", itest_root);
	cr_assert(itest_exists(e), "fetched with --allow-metadata-ip");
	log = itest_slurp(mdlog, NULL);
	cr_assert(strstr(log, "GET /img/x.jpg"), "the listener saw the request: %s", log);
	free(log);
	free(e);
	free(list);
	free(mdlog);
}

/* Writes api.json naming url as the status-detail endpoint. */
static void write_api_json(const char *url)
{
	char *path = itest_path("api.json");
	char *text =
	    itest_fmt("{\"set_status_detail\": {\"url\": \"%s\", \"method\": \"POST\", "
		      "\"headers\": {\"Authorization\": \"Token test-token\"}}, "
		      "\"other\": {\"url\": \"http://127.0.0.1:1/\"}}",
		      url);

	itest_write_file(path, text, strlen(text));
	free(text);
	free(path);
}

Test(http, status_detail_is_posted_and_never_fails_the_run)
{
	struct itest_proc p;
	char *list, *text, *url, *log;
	json_t *posts, *last, *body;

	serve();
	text = itest_fmt("%s/slow/a.jpg?s=1.5\n%s/img/b.jpg\n", fault_url, fault_url);
	list = itest_path("l.txt");
	itest_write_file(list, text, strlen(text));
	url = itest_fmt("%s/status", fault_url);
	write_api_json(url);
	setenv("VHPREP_STATUS_INTERVAL", "0.3", 1);
	run_list(&p, list, "o1", NULL);
	itest_assert_exit(&p, 0);
	cr_assert_null(strstr(p.err, "status detail"), "no warning: %s", p.err);
	itest_proc_release(&p);
	log = itest_slurp(status_log, NULL);
	posts = itest_read_jsonl(status_log);
	cr_assert_geq(json_array_size(posts), 3, "periodic posts and a last one: %s", log);
	last = json_array_get(posts, json_array_size(posts) - 1);
	cr_assert_str_eq(itest_jstr(itest_jget(last, "headers"), "Authorization"),
			 "Token test-token");
	body = json_loads(itest_jstr(last, "body"), 0, NULL);
	cr_assert(json_is_object(body) && json_object_size(body) == 1, "%s", log);
	cr_assert(
	    !strncmp(itest_jstr(body, "status_detail"), "done: 2 processed, 0 failed", 27),
	    "%s", itest_jstr(body, "status_detail"));
	json_decref(body);
	json_decref(posts);
	free(log);
	free(url);

	/* a failing endpoint: one warning, same outputs, exit 0 */
	url = itest_fmt("%s/status-fail", fault_url);
	write_api_json(url);
	run_list(&p, list, "o2", NULL);
	itest_assert_exit(&p, 0);
	cr_assert_eq(count_lines_text(p.err, "status detail"), 1, "one warning: %s", p.err);
	itest_proc_release(&p);
	free(url);
	/* nothing listening there: the same */
	write_api_json("http://127.0.0.1:1/status");
	run_list(&p, list, "o3", NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	free(list);
	free(text);
}

/* The summary's "files" count name of the run into root/outname. */
static json_int_t files_count(const char *outname, const char *name)
{
	char *path = itest_fmt("%s/%s/vhprep-summary.json", itest_root, outname);
	json_t *sum = itest_read_json(path);
	json_int_t n = itest_jint(itest_jget(sum, "files"), name);

	json_decref(sum);
	free(path);
	return n;
}

/* The fault server's hits of path so far. */
static json_int_t fault_hits(const char *path)
{
	struct itest_argv a = {0};
	struct itest_proc c;
	json_t *counts;
	json_int_t n;

	itest_argv_add(&a, "/usr/bin/curl");
	itest_argv_add(&a, "-s");
	itest_argv_addf(&a, "%s/counts", fault_url);
	itest_run(a.v, NULL, &c);
	counts = json_loads(c.out, 0, NULL);
	cr_assert(json_is_object(counts), "counts: %s", c.out);
	n = hits(counts, path);
	json_decref(counts);
	itest_proc_release(&c);
	itest_argv_free(&a);
	return n;
}

/* Runs list into outname with --resize 64 and extra (may be NULL), asserting exit 0. */
static void run_ok(const char *list, const char *outname, const char *extra, const char *arg)
{
	struct itest_proc p;

	run_list(&p, list, outname, "--resize", "64", extra, arg, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
}

Test(http, reruns_ask_nginx_and_skip_what_did_not_change)
{
	char *list, *img, *prev, *since;
	json_t *lines, *m;

	serve();
	list = write_list("l.csv", http_url);
	run_ok(list, "o", NULL, NULL);
	cr_assert_eq(files_count("o", "processed"), (json_int_t)NNAMES);
	/* the same list again: every URL asked with its ETag / Last-Modified, every answer
	 * a 304 without a body, nothing redone */
	itest_write_file(access_log, "", 0);
	run_ok(list, "o", NULL, NULL);
	cr_assert_eq(files_count("o", "processed"), 0);
	cr_assert_eq(files_count("o", "already_done"), (json_int_t)NNAMES);
	cr_assert_eq(count_lines(access_log, " 304 "), (int)NNAMES);
	cr_assert_eq(count_lines(access_log, " 200 "), 0);
	/* one image changes on the server: it alone is fetched and replaced */
	img = itest_fmt("%s/www/a/one.jpg", itest_root);
	itest_make_image(img, 210, 150, 3, 99, 0);
	run_ok(list, "o", NULL, NULL);
	cr_assert_eq(files_count("o", "processed"), 1);
	cr_assert_eq(files_count("o", "replaced"), 1);
	cr_assert_eq(files_count("o", "already_done"), (json_int_t)NNAMES - 1);
	prev = itest_fmt("%s/o", itest_root);
	lines = itest_check_outputs(prev, "processed_images", 1);
	m = json_object_get(line_of(lines, "processed_images/a/one.jpg"), "metadata");
	cr_assert_eq(itest_jint(m, "original_width"), 210);
	json_decref(lines);

	/* --since the earlier run's records: a fresh outputs dir holds only what changed */
	since = itest_fmt("%s/o/valohai.metadata.jsonl", itest_root);
	itest_write_file(access_log, "", 0);
	run_ok(list, "s1", "--since", since);
	cr_assert_eq(files_count("s1", "processed"), 0);
	cr_assert_eq(files_count("s1", "unchanged"), (json_int_t)NNAMES);
	cr_assert_eq(count_lines(access_log, " 304 "), (int)NNAMES);
	free(img);
	img = itest_fmt("%s/www/many/m3.jpg", itest_root);
	itest_make_image(img, 222, 111, 3, 5, 0);
	run_ok(list, "s2", "--since", since);
	cr_assert_eq(files_count("s2", "processed"), 1);
	cr_assert_eq(files_count("s2", "unchanged"), (json_int_t)NNAMES - 1);
	free(img);
	img = itest_fmt("%s/s2/processed_images/many/m3.jpg", itest_root);
	cr_assert(itest_exists(img), "the changed image's output");
	free(img);
	free(prev);
	free(since);
	free(list);
}

Test(http, reruns_without_validators_go_by_the_url)
{
	char *list, *text;

	serve();
	/* the fault server's /plain/ sends neither ETag nor Last-Modified */
	text = itest_fmt("url,key\n%s/plain/p.jpg,p.jpg\n%s/img/q.jpg,q.jpg\n", fault_url,
			 fault_url);
	list = itest_path("plain.csv");
	itest_write_file(list, text, strlen(text));
	run_ok(list, "o", NULL, NULL);
	cr_assert_eq(files_count("o", "processed"), 2);
	run_ok(list, "o", NULL, NULL);
	cr_assert_eq(files_count("o", "already_done"), 2);
	cr_assert_eq(fault_hits("/plain/p.jpg"), 1,
		     "the same URL without validators: not asked");
	cr_assert_eq(fault_hits("/img/q.jpg"), 2, "asked once more, answered 304");
	/* another URL under the same key: fetched, and it replaces the output */
	free(text);
	text = itest_fmt("url,key\n%s/plain/other.jpg,p.jpg\n%s/img/q.jpg,q.jpg\n", fault_url,
			 fault_url);
	itest_write_file(list, text, strlen(text));
	run_ok(list, "o", NULL, NULL);
	cr_assert_eq(files_count("o", "processed"), 1);
	cr_assert_eq(files_count("o", "replaced"), 1);
	cr_assert_eq(fault_hits("/plain/other.jpg"), 1);
	/* --since goes by the URL alike */
	{
		char *since = itest_fmt("%s/o/valohai.metadata.jsonl", itest_root);

		run_ok(list, "s", "--since", since);
		cr_assert_eq(files_count("s", "unchanged"), 2);
		cr_assert_eq(fault_hits("/plain/other.jpg"), 1);
		free(since);
	}
	free(text);
	free(list);
}

/* Item 6's remaining edges: credentials only from the netrc file named (never ~/.netrc by
 * default, never written anywhere), a redirect to a metadata address refused like a
 * direct URL, an error response's body in no record. */
Test(http, credentials_only_from_a_named_netrc_and_never_recorded)
{
	char *list, *text, *netrc, *home, *e, *all, *u401, *uauth;
	struct itest_proc p;
	json_t *errors;

	serve();
	home = itest_path("home");
	netrc = itest_fmt("%s/.netrc", home);
	text = "machine 127.0.0.1 login vh password s3cret-pass\n";
	itest_write_file(netrc, text, strlen(text));
	chmod(netrc, 0600);
	setenv("HOME", home, 1);
	uauth = itest_fmt("%s/auth/a.jpg", fault_url);
	u401 = itest_fmt("%s/redirect/m.jpg?to=http://169.254.169.254/img/x.jpg", fault_url);
	text = itest_fmt("%s\n%s\n", uauth, u401);
	list = itest_path("auth.txt");
	itest_write_file(list, text, strlen(text));
	free(text);
	/* ~/.netrc is not read unless named */
	run_list(&p, list, "none", "--max-errors", "10", "--keep-query", "--http-timeout", "3",
		 NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	e = itest_fmt("%s/none/vhprep-errors.jsonl", itest_root);
	errors = itest_read_jsonl(e);
	cr_assert_str_eq(reason_of(errors, uauth), "http_status");
	cr_assert_str_eq(reason_of(errors, u401), "metadata_ip",
			 "a redirect to a metadata address is refused as a direct URL is");
	json_decref(errors);
	text = itest_slurp(e, NULL);
	cr_assert_null(strstr(text, "SECRET-401-BODY"), "an error body in a record: %s", text);
	free(text);
	free(e);
	/* named: used, and written nowhere */
	run_list(&p, list, "named", "--max-errors", "10", "--netrc-file", netrc, NULL);
	itest_assert_exit(&p, 0);
	itest_proc_release(&p);
	cr_assert_eq(files_count("named", "processed"), 1);
	all = itest_fmt("%s/named", itest_root);
	{
		json_t *lines = itest_check_outputs(all, "processed_images", 1);

		json_decref(lines);
	}
	e = itest_fmt("%s/named/valohai.metadata.jsonl", itest_root);
	text = itest_slurp(e, NULL);
	cr_assert(strstr(text, "/auth/a.jpg"), "%s", text);
	cr_assert_null(strstr(text, "s3cret"), "a credential in the records: %s", text);
	cr_assert_null(strstr(text, "vh@"), "a user name in a URL: %s", text);
	free(text);
	free(e);
	e = itest_fmt("%s/named/vhprep-errors.jsonl", itest_root);
	text = itest_slurp(e, NULL);
	cr_assert_null(strstr(text, "s3cret"));
	free(text);
	free(e);
	free(all);
	free(uauth);
	free(u401);
	free(list);
	free(netrc);
	free(home);
}
