/* itest: helpers of the integration tests. See itest.h. */
#include "itest.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <vips/vips.h>

#include <linux/capability.h>

extern char **environ;

char *itest_root;
static int capture_serial;

/* ---- setup ---- */

void itest_setup(void)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = itest_fmt("%s/vhprep-itest.XXXXXX", base && *base ? base : "/tmp");

	cr_assert_not_null(mkdtemp(tmpl), "mkdtemp %s: %s", tmpl, strerror(errno));
	itest_root = tmpl;
	capture_serial = 0;
	cr_assert_eq(VIPS_INIT("itest"), 0, "vips_init failed: %s", vips_error_buffer());
	vips_concurrency_set(1);
	vips_cache_set_max(0);
}

void itest_teardown(void)
{
	if (itest_root && !getenv("ITEST_KEEP"))
		itest_rmtree(itest_root);
	free(itest_root);
	itest_root = NULL;
	vips_shutdown();
}

static const char *env_required(const char *name)
{
	const char *v = getenv(name);

	cr_assert(v && *v, "%s is not set: run the integration tests through ctest", name);
	return v;
}

const char *itest_bin(void)
{
	static char other[PATH_MAX];
	const char *dir = getenv("VHPREP_TEST_BUILD_DIR");
	const char *bin = env_required("VHPREP_BIN");

	if (dir && *dir) {
		snprintf(other, sizeof(other), "%s/vhprep", dir);
		bin = other;
	}
	cr_assert_eq(access(bin, X_OK), 0, "vhprep '%s' is not executable", bin);
	return bin;
}

const char *itest_build_dir(void)
{
	const char *dir = getenv("VHPREP_TEST_BUILD_DIR");

	return dir && *dir ? dir : env_required("VHPREP_BUILD_DIR");
}

const char *itest_source_dir(void)
{
	return env_required("VHPREP_SOURCE_DIR");
}

/* ---- paths and files ---- */

char *itest_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && s, "out of memory");
	return s;
}

char *itest_path(const char *rel)
{
	cr_assert_not_null(itest_root, "itest_setup was not run");
	return itest_fmt("%s/%s", itest_root, rel);
}

void itest_mkdirs(const char *path)
{
	char *buf = itest_fmt("%s", path);

	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		cr_assert(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf,
			  strerror(errno));
		*p = '/';
	}
	cr_assert(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", buf,
		  strerror(errno));
	free(buf);
}

static void mkparents(const char *path)
{
	char *parent = itest_fmt("%s", path);
	char *slash = strrchr(parent, '/');

	if (slash && slash != parent) {
		*slash = '\0';
		itest_mkdirs(parent);
	}
	free(parent);
}

void itest_write_file(const char *path, const void *data, size_t len)
{
	const char *p = data;
	int fd;

	mkparents(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	while (len) {
		ssize_t n = write(fd, p, len);

		cr_assert_gt(n, 0, "write %s: %s", path, strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	cr_assert_eq(close(fd), 0, "close %s", path);
}

char *itest_slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	ssize_t got;

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_not_null(buf);
	while ((got = read(fd, buf + n, cap - n - 1)) > 0) {
		n += (size_t)got;
		if (cap - n - 1 == 0) {
			cap *= 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
	}
	cr_assert_geq(got, 0, "read %s: %s", path, strerror(errno));
	close(fd);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

int itest_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

uint64_t itest_file_size(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	return (uint64_t)st.st_size;
}

void itest_rmtree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	chmod(path, 0700);
	d = opendir(path);
	if (d) {
		while ((de = readdir(d))) {
			char *child;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			child = itest_fmt("%s/%s", path, de->d_name);
			itest_rmtree(child);
			free(child);
		}
		closedir(d);
	}
	rmdir(path);
}

void itest_copy_tree(const char *src, const char *dst)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	cr_assert_eq(lstat(src, &st), 0, "lstat %s: %s", src, strerror(errno));
	if (S_ISREG(st.st_mode)) {
		size_t len;
		char *data = itest_slurp(src, &len);

		itest_write_file(dst, data, len);
		free(data);
		return;
	}
	if (!S_ISDIR(st.st_mode))
		return;
	itest_mkdirs(dst);
	d = opendir(src);
	cr_assert_not_null(d, "opendir %s: %s", src, strerror(errno));
	while ((de = readdir(d))) {
		char *a, *b;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		a = itest_fmt("%s/%s", src, de->d_name);
		b = itest_fmt("%s/%s", dst, de->d_name);
		itest_copy_tree(a, b);
		free(a);
		free(b);
	}
	closedir(d);
}

/* ---- lists ---- */

void itest_list_add(struct itest_list *l, const char *s)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		cr_assert_not_null(l->v);
	}
	l->v[l->n] = strdup(s);
	cr_assert_not_null(l->v[l->n]);
	l->n++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void itest_list_sort(struct itest_list *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_str);
}

int itest_list_has(const struct itest_list *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

void itest_list_free(struct itest_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void list_rec(const char *root, const char *rel, struct itest_list *l)
{
	char *dir = rel[0] ? itest_fmt("%s/%s", root, rel) : itest_fmt("%s", root);
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		cr_assert(errno == ENOENT && !rel[0], "opendir %s: %s", dir, strerror(errno));
		free(dir);
		return;
	}
	while ((de = readdir(d))) {
		char *child, *full;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		child =
		    rel[0] ? itest_fmt("%s/%s", rel, de->d_name) : itest_fmt("%s", de->d_name);
		full = itest_fmt("%s/%s", dir, de->d_name);
		cr_assert_eq(lstat(full, &st), 0, "lstat %s: %s", full, strerror(errno));
		if (S_ISDIR(st.st_mode))
			list_rec(root, child, l);
		else if (S_ISREG(st.st_mode))
			itest_list_add(l, child);
		free(child);
		free(full);
	}
	closedir(d);
	free(dir);
}

void itest_list_files(const char *root, struct itest_list *l)
{
	memset(l, 0, sizeof(*l));
	list_rec(root, "", l);
	itest_list_sort(l);
}

static int count_rec(const char *path, const char *needle)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int hits = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *child;
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (strstr(de->d_name, needle))
			hits++;
		child = itest_fmt("%s/%s", path, de->d_name);
		if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
			hits += count_rec(child, needle);
		free(child);
	}
	closedir(d);
	return hits;
}

int itest_count_names(const char *root, const char *needle)
{
	return count_rec(root, needle);
}

void itest_assert_lists_equal(const struct itest_list *a, const struct itest_list *b,
			      const char *what)
{
	size_t i = 0, j = 0;

	while (i < a->n || j < b->n) {
		int c = i == a->n ? 1 : j == b->n ? -1 : strcmp(a->v[i], b->v[j]);

		cr_assert_eq(c, 0, "%s: '%s' only in the %s list (%zu vs %zu entries)", what,
			     c < 0 ? a->v[i] : b->v[j], c < 0 ? "first" : "second", a->n, b->n);
		i++;
		j++;
	}
}

/* ---- hashes and snapshots ---- */

void itest_sha256_file(const char *path, char hex[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE], buf[65536];
	unsigned int n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got;

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_not_null(ctx);
	cr_assert_eq(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	while ((got = read(fd, buf, sizeof(buf))) > 0)
		cr_assert_eq(EVP_DigestUpdate(ctx, buf, (size_t)got), 1);
	cr_assert_geq(got, 0, "read %s: %s", path, strerror(errno));
	close(fd);
	cr_assert_eq(EVP_DigestFinal_ex(ctx, md, &n), 1);
	EVP_MD_CTX_free(ctx);
	for (unsigned int i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * n] = '\0';
}

static void snapshot_rec(json_t *snap, const char *root, const char *rel)
{
	char *full = rel[0] ? itest_fmt("%s/%s", root, rel) : itest_fmt("%s", root);
	struct stat st;
	char extra[PATH_MAX + 1] = "";
	char *desc;

	cr_assert_eq(lstat(full, &st), 0, "lstat %s: %s", full, strerror(errno));
	if (S_ISREG(st.st_mode)) {
		itest_sha256_file(full, extra);
	} else if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlink(full, extra, sizeof(extra) - 1);

		cr_assert_geq(n, 0, "readlink %s", full);
		extra[n] = '\0';
	}
	desc = itest_fmt("%c %lld %o %lld.%09ld %s",
			 S_ISREG(st.st_mode)   ? 'f'
			 : S_ISDIR(st.st_mode) ? 'd'
			 : S_ISLNK(st.st_mode) ? 'l'
					       : '?',
			 (long long)st.st_size, (unsigned)st.st_mode,
			 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, extra);
	json_object_set_new(snap, rel[0] ? rel : ".", json_string(desc));
	free(desc);
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(full);
		struct dirent *de;

		cr_assert_not_null(d, "opendir %s: %s", full, strerror(errno));
		while ((de = readdir(d))) {
			char *child;

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			child = rel[0] ? itest_fmt("%s/%s", rel, de->d_name)
				       : itest_fmt("%s", de->d_name);
			snapshot_rec(snap, root, child);
			free(child);
		}
		closedir(d);
	}
	free(full);
}

json_t *itest_snapshot(const char *root)
{
	json_t *snap = json_object();

	cr_assert_not_null(snap);
	snapshot_rec(snap, root, "");
	return snap;
}

void itest_assert_snapshots_equal(json_t *before, json_t *after, const char *what)
{
	const char *key;
	json_t *v;

	json_object_foreach(before, key, v)
	{
		json_t *w = json_object_get(after, key);

		cr_assert_not_null(w, "%s: '%s' disappeared", what, key);
		cr_assert_str_eq(json_string_value(v), json_string_value(w),
				 "%s: '%s' changed (type size mode mtime sha256)", what, key);
	}
	json_object_foreach(after, key, v)
	    cr_assert_not_null(json_object_get(before, key), "%s: '%s' appeared", what, key);
}

void itest_assert_trees_identical(const char *a, const char *b)
{
	struct itest_list la, lb;

	itest_list_files(a, &la);
	itest_list_files(b, &lb);
	itest_assert_lists_equal(&la, &lb, "file names of the two trees");
	for (size_t i = 0; i < la.n; i++) {
		char *pa = itest_fmt("%s/%s", a, la.v[i]), *pb = itest_fmt("%s/%s", b, lb.v[i]);
		char ha[65], hb[65];

		itest_sha256_file(pa, ha);
		itest_sha256_file(pb, hb);
		cr_assert_str_eq(ha, hb, "'%s' differs between %s and %s", la.v[i], a, b);
		free(pa);
		free(pb);
	}
	itest_list_free(&la);
	itest_list_free(&lb);
}

/* ---- JSON ---- */

json_t *itest_read_jsonl(const char *path)
{
	json_t *arr = json_array();
	size_t len;
	char *text, *line;
	int lineno = 0;

	cr_assert_not_null(arr);
	if (!itest_exists(path))
		return arr;
	text = itest_slurp(path, &len);
	cr_assert(len == 0 || text[len - 1] == '\n', "%s does not end with a newline", path);
	cr_assert_eq(strlen(text), len, "%s holds a NUL byte", path);
	line = text;
	while (*line) {
		char *nl = strchr(line, '\n');
		json_error_t jerr;
		json_t *o;

		lineno++;
		cr_assert_not_null(nl);
		*nl = '\0';
		o = json_loads(line, 0, &jerr);
		cr_assert_not_null(o, "%s:%d is not JSON (%s): %s", path, lineno, jerr.text,
				   line);
		cr_assert(json_is_object(o), "%s:%d is not a JSON object: %s", path, lineno,
			  line);
		json_array_append_new(arr, o);
		line = nl + 1;
	}
	free(text);
	return arr;
}

json_t *itest_read_json(const char *path)
{
	json_error_t jerr;
	json_t *o = json_load_file(path, 0, &jerr);

	cr_assert_not_null(o, "%s: %s (line %d)", path, jerr.text, jerr.line);
	return o;
}

const char *itest_jstr(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	cr_assert(json_is_string(v), "\"%s\" is missing or not a string", key);
	return json_string_value(v);
}

json_int_t itest_jint(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	cr_assert(json_is_integer(v), "\"%s\" is missing or not an integer", key);
	return json_integer_value(v);
}

json_t *itest_jget(json_t *obj, const char *dotted)
{
	char *copy = itest_fmt("%s", dotted), *save = NULL;

	for (char *k = strtok_r(copy, ".", &save); k && obj; k = strtok_r(NULL, ".", &save))
		obj = json_object_get(obj, k);
	free(copy);
	return obj;
}

/* ---- processes ---- */

void itest_argv_add(struct itest_argv *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? 2 * a->cap : 32;
		a->v = realloc(a->v, (size_t)a->cap * sizeof(*a->v));
		cr_assert_not_null(a->v);
	}
	a->v[a->n] = strdup(s);
	cr_assert_not_null(a->v[a->n]);
	a->v[++a->n] = NULL;
}

void itest_argv_addf(struct itest_argv *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && s);
	itest_argv_add(a, s);
	free(s);
}

void itest_argv_free(struct itest_argv *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* The child side of a fork-based spawn (drop_dac): only async-signal-safe calls. */
static void child_exec(char *const argv[], const char *cwd, const char *in_path,
		       const char *out_path, const char *err_path)
{
	int in = open(in_path, O_RDONLY);
	int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
	    dup2(err, 2) < 0 || chdir(cwd) != 0)
		_exit(126);
	if (prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) != 0 ||
	    prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0) != 0)
		_exit(125);
	execve(argv[0], argv, environ);
	_exit(127);
}

pid_t itest_spawn(char *const argv[], const struct itest_spawn_opts *o, const char *out_path,
		  const char *err_path)
{
	struct itest_spawn_opts none = {0};
	const char *cwd, *in_path;
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	if (!o)
		o = &none;
	cwd = o->cwd ? o->cwd : itest_root;
	in_path = o->stdin_path ? o->stdin_path : "/dev/null";
	if (o->drop_dac) {
		pid = fork();
		cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
		if (pid == 0)
			child_exec(argv, cwd, in_path, out_path, err_path);
		return pid;
	}
	cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
	cr_assert_eq(posix_spawn_file_actions_addopen(&fa, 0, in_path, O_RDONLY, 0), 0);
	cr_assert_eq(posix_spawn_file_actions_addopen(&fa, 1, out_path,
						      O_WRONLY | O_CREAT | O_TRUNC, 0644),
		     0);
	cr_assert_eq(posix_spawn_file_actions_addopen(&fa, 2, err_path,
						      O_WRONLY | O_CREAT | O_TRUNC, 0644),
		     0);
	cr_assert_eq(posix_spawn_file_actions_addchdir_np(&fa, cwd), 0);
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(rc, 0, "posix_spawn %s: %s", argv[0], strerror(rc));
	return pid;
}

int itest_wait(pid_t pid, double timeout_s, int *exit_code, int *sig)
{
	struct timespec start, now, nap = {0, 5 * 1000 * 1000};
	int status;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		cr_assert_geq(r, 0, "waitpid: %s", strerror(errno));
		if (r == pid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) +
			(double)(now.tv_nsec - start.tv_nsec) / 1e9 >
		    timeout_s)
			return 0;
		nanosleep(&nap, NULL);
	}
	*exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	*sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	return 1;
}

/* Opens a pseudo-terminal in raw mode: *master for the parent, *slave for the child's
 * stderr. */
static void open_pty(int *master, int *slave)
{
	struct termios t;
	char *name;

	*master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert_geq(*master, 0, "posix_openpt: %s", strerror(errno));
	cr_assert_eq(grantpt(*master), 0);
	cr_assert_eq(unlockpt(*master), 0);
	name = ptsname(*master);
	cr_assert_not_null(name);
	*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert_geq(*slave, 0, "open %s: %s", name, strerror(errno));
	cr_assert_eq(tcgetattr(*slave, &t), 0);
	cfmakeraw(&t);
	cr_assert_eq(tcsetattr(*slave, TCSANOW, &t), 0);
}

/* Appends what the pty master holds to f, waiting at most ms; returns 0 once the child
 * side is closed (EIO), 1 otherwise. */
static int drain_pty(int master, FILE *f, int ms)
{
	struct pollfd pfd = {master, POLLIN, 0};
	char buf[4096];
	ssize_t n;

	if (poll(&pfd, 1, ms) <= 0)
		return 1;
	n = read(master, buf, sizeof(buf));
	if (n <= 0)
		return n < 0 && errno == EINTR;
	cr_assert_eq(fwrite(buf, 1, (size_t)n, f), (size_t)n);
	return 1;
}

/* itest_run with stderr on a pseudo-terminal whose bytes go to err_path. */
static void run_tty(char *const argv[], const struct itest_spawn_opts *o, struct itest_proc *p,
		    const char *out_path, const char *err_path)
{
	const char *cwd = o->cwd ? o->cwd : itest_root;
	const char *in_path = o->stdin_path ? o->stdin_path : "/dev/null";
	FILE *f = fopen(err_path, "wb");
	struct timespec start, now;
	int master, slave, ended = 0;
	pid_t pid;

	cr_assert_not_null(f);
	open_pty(&master, &slave);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int in = open(in_path, O_RDONLY),
		    out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
		    dup2(slave, 2) < 0 || chdir(cwd) != 0)
			_exit(126);
		execve(argv[0], argv, environ);
		_exit(127);
	}
	close(slave);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!ended) {
		drain_pty(master, f, 5);
		ended = itest_wait(pid, 0, &p->exit_code, &p->term_signal);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!ended && now.tv_sec - start.tv_sec > (time_t)ITEST_RUN_TIMEOUT) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			p->timed_out = 1;
			p->exit_code = -1;
			p->term_signal = SIGKILL;
			break;
		}
	}
	while (drain_pty(master, f, 50)) /* the rest, until the child's side is gone */
		;
	close(master);
	fclose(f);
}

/* itest_run with stdout and stderr into files. */
static void run_files(char *const argv[], const struct itest_spawn_opts *o,
		      struct itest_proc *p, const char *out_path, const char *err_path)
{
	pid_t pid = itest_spawn(argv, o, out_path, err_path);

	if (!itest_wait(pid, ITEST_RUN_TIMEOUT, &p->exit_code, &p->term_signal)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		p->timed_out = 1;
		p->exit_code = -1;
		p->term_signal = SIGKILL;
	}
}

void itest_run(char *const argv[], const struct itest_spawn_opts *o, struct itest_proc *p)
{
	int serial = ++capture_serial;
	char *capdir = itest_path(".capture");
	char *out_path = itest_fmt("%s/%d.out", capdir, serial);
	char *err_path = itest_fmt("%s/%d.err", capdir, serial);

	memset(p, 0, sizeof(*p));
	itest_mkdirs(capdir);
	if (o && o->stderr_tty)
		run_tty(argv, o, p, out_path, err_path);
	else
		run_files(argv, o, p, out_path, err_path);
	p->out = itest_slurp(out_path, &p->out_len);
	p->err = itest_slurp(err_path, &p->err_len);
	cr_assert(!p->timed_out, "%s did not finish within %.0f s; stderr:\n%s", argv[0],
		  ITEST_RUN_TIMEOUT, p->err);
	free(out_path);
	free(err_path);
	free(capdir);
}

void itest_vhprep_argv(struct itest_proc *p, struct itest_argv *a)
{
	itest_run(a->v, NULL, p);
}

void itest_vhprep(struct itest_proc *p, ...)
{
	struct itest_argv a = {0};
	va_list ap;
	const char *s;

	itest_argv_add(&a, itest_bin());
	va_start(ap, p);
	while ((s = va_arg(ap, const char *)))
		itest_argv_add(&a, s);
	va_end(ap);
	itest_run(a.v, NULL, p);
	itest_argv_free(&a);
}

void itest_proc_release(struct itest_proc *p)
{
	free(p->out);
	free(p->err);
	memset(p, 0, sizeof(*p));
}

void itest_assert_exit(const struct itest_proc *p, int want)
{
	cr_assert_eq(p->exit_code, want, "exit code %d (signal %d), want %d; stderr:\n%s",
		     p->exit_code, p->term_signal, want, p->err);
}

/* ---- fixtures ---- */

int itest_fixture(const char *script, char **out, char **err, ...)
{
	struct itest_argv a = {0};
	struct itest_proc p;
	const char *s;
	va_list ap;
	int code;

	itest_argv_add(&a, "/bin/bash");
	itest_argv_addf(&a, "%s/tests/fixtures/%s", itest_source_dir(), script);
	va_start(ap, err);
	while ((s = va_arg(ap, const char *)))
		itest_argv_add(&a, s);
	va_end(ap);
	itest_run(a.v, NULL, &p);
	code = p.exit_code;
	if (out)
		*out = itest_fmt("%s", p.out);
	if (err)
		*err = itest_fmt("%s", p.err);
	itest_proc_release(&p);
	itest_argv_free(&a);
	return code;
}

char *itest_line_value(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, key, klen) && l[klen] == '=')
			return itest_fmt("%.*s", (int)strcspn(l + klen + 1, "\n"),
					 l + klen + 1);
	cr_assert_fail("no %s= line in: %s", key, text);
	return NULL;
}

/* ---- images ---- */

static uint32_t mix(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

void *itest_encode_image(const char *ext, int w, int h, int bands, unsigned seed,
			 int orientation, size_t *len)
{
	size_t n = (size_t)w * (size_t)h * (size_t)bands;
	unsigned char *px = malloc(n);
	VipsImage *raw, *img;
	void *buf = NULL, *copy;
	char suffix[16];
	int rc;

	cr_assert_not_null(px);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int b = 0; b < bands; b++) {
				size_t i = ((size_t)y * (size_t)w + (size_t)x) * (size_t)bands +
					   (size_t)b;
				uint32_t noise = mix(seed * 2654435761U ^ (uint32_t)i) & 31;
				int v = (int)((long)x * 200 / w + (long)y * 55 / h) + b * 70 +
					(int)(seed * 37) + (int)noise;

				if (bands % 2 == 0 && b == bands - 1)
					v = 128 +
					    (x * 127) / w; /* alpha: half to fully opaque */
				px[i] = (unsigned char)(v & 0xff);
			}
	raw = vips_image_new_from_memory_copy(px, n, w, h, bands, VIPS_FORMAT_UCHAR);
	free(px);
	cr_assert_not_null(raw, "vips: %s", vips_error_buffer());
	rc = vips_copy(raw, &img, "interpretation",
		       bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W, NULL);
	g_object_unref(raw);
	cr_assert_eq(rc, 0, "vips_copy: %s", vips_error_buffer());
	if (orientation > 0)
		vips_image_set_int(img, VIPS_META_ORIENTATION, orientation);
	snprintf(suffix, sizeof(suffix), ".%s", ext);
	if (!strcasecmp(ext, "jpg") || !strcasecmp(ext, "jpeg"))
		rc = vips_jpegsave_buffer(img, &buf, len, "Q", 90, NULL);
	else
		rc = vips_image_write_to_buffer(img, suffix, &buf, len, NULL);
	g_object_unref(img);
	cr_assert_eq(rc, 0, "cannot encode %dx%dx%d as %s: %s", w, h, bands, ext,
		     vips_error_buffer());
	copy = malloc(*len);
	cr_assert_not_null(copy);
	memcpy(copy, buf, *len);
	g_free(buf);
	return copy;
}

void itest_make_image(const char *path, int w, int h, int bands, unsigned seed, int orientation)
{
	const char *dot = strrchr(path, '.');
	size_t len;
	void *data;

	cr_assert_not_null(dot, "no extension in %s", path);
	data = itest_encode_image(dot + 1, w, h, bands, seed, orientation, &len);
	itest_write_file(path, data, len);
	free(data);
}

int itest_image_info(const char *path, struct itest_image *info, int may_fail)
{
	size_t len;
	char *data = itest_slurp(path, &len);
	const char *loader = vips_foreign_find_load_buffer(data, len);
	VipsImage *img = loader ? vips_image_new_from_buffer(data, len, "", NULL) : NULL;

	memset(info, 0, sizeof(*info));
	if (!img) {
		cr_assert(may_fail, "libvips cannot read %s: %s", path, vips_error_buffer());
		vips_error_clear();
		free(data);
		return -1;
	}
	info->w = img->Xsize;
	info->h = img->Ysize;
	info->bands = img->Bands;
	info->uchar = img->BandFmt == VIPS_FORMAT_UCHAR;
	info->interpretation = (int)img->Type;
	snprintf(info->loader, sizeof(info->loader), "%s", loader);
	g_object_unref(img);
	free(data);
	return 0;
}

double itest_image_pixel(const char *path, int x, int y, int band)
{
	size_t len;
	char *data = itest_slurp(path, &len);
	VipsImage *img = vips_image_new_from_buffer(data, len, "", NULL);
	double *vec = NULL, v;
	int n = 0;

	cr_assert_not_null(img, "libvips cannot read %s: %s", path, vips_error_buffer());
	cr_assert_eq(vips_getpoint(img, &vec, &n, x, y, NULL), 0, "getpoint %s: %s", path,
		     vips_error_buffer());
	cr_assert_lt(band, n);
	v = vec[band];
	g_free(vec);
	g_object_unref(img);
	free(data);
	return v;
}

const char *itest_sniff(const char *path)
{
	unsigned char b[16] = {0};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	n = read(fd, b, sizeof(b));
	close(fd);
	if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
		return "jpg";
	if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
		return "png";
	if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4))
		return "webp";
	if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6)))
		return "gif";
	if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4)))
		return "tiff";
	return NULL;
}

/* ---- records ---- */

/* Removes the live-upload sidecars NAME.metadata.json (records, not outputs) from l. */
static void drop_sidecars(struct itest_list *l)
{
	static const char sfx[] = ".metadata.json";
	size_t k = 0;

	for (size_t i = 0; i < l->n; i++) {
		size_t n = strlen(l->v[i]);

		if (n > sizeof(sfx) - 1 && !strcmp(l->v[i] + n - (sizeof(sfx) - 1), sfx))
			free(l->v[i]);
		else
			l->v[k++] = l->v[i];
	}
	l->n = k;
}

json_t *itest_check_outputs(const char *outputs, const char *prefix, int want_csv_line)
{
	char *meta_path = itest_fmt("%s/valohai.metadata.jsonl", outputs);
	char *img_root = itest_fmt("%s/%s", outputs, prefix);
	json_t *lines = itest_read_jsonl(meta_path);
	struct itest_list on_disk, in_meta = {0};
	size_t plen = strlen(prefix), i;
	int csv_lines = 0;
	json_t *line;

	itest_list_files(img_root, &on_disk);
	drop_sidecars(&on_disk);
	json_array_foreach(lines, i, line)
	{
		json_t *meta = json_object_get(line, "metadata");
		const char *file = itest_jstr(line, "file");
		char *full;

		cr_assert(json_is_object(meta), "line %zu has no \"metadata\" object", i + 1);
		cr_assert_eq(json_object_size(line), 2,
			     "line %zu has keys besides file, metadata", i + 1);
		cr_assert(file[0] != '/' && !strstr(file, "../"),
			  "\"file\" '%s' is not relative to the outputs dir", file);
		if (!strcmp(file, "processing_metadata.csv")) {
			csv_lines++;
			continue;
		}
		cr_assert(!strncmp(file, prefix, plen) && file[plen] == '/',
			  "\"file\" '%s' is not under %s/", file, prefix);
		full = itest_fmt("%s/%s", outputs, file);
		cr_assert(itest_exists(full), "metadata names '%s', which is not on disk",
			  file);
		free(full);
		cr_assert(!itest_list_has(&in_meta, file + plen + 1),
			  "'%s' has more than one metadata line", file);
		itest_list_add(&in_meta, file + plen + 1);
	}
	itest_list_sort(&in_meta);
	itest_assert_lists_equal(&on_disk, &in_meta,
				 "output files on disk vs \"file\" values in the metadata");
	if (want_csv_line)
		cr_assert_eq(csv_lines, 1,
			     "%d metadata lines for processing_metadata.csv, want 1",
			     csv_lines);
	else
		cr_assert_leq(csv_lines, 1, "%d metadata lines for processing_metadata.csv",
			      csv_lines);
	cr_assert_eq(itest_count_names(outputs, ".vhprep-tmp"), 0,
		     "a temporary file (.vhprep-tmp) was left under %s", outputs);
	itest_list_free(&on_disk);
	itest_list_free(&in_meta);
	free(meta_path);
	free(img_root);
	return lines;
}

void itest_read_csv(const char *path, struct itest_csv *csv)
{
	size_t len, cap = 0;
	char *text = itest_slurp(path, &len);
	struct itest_list row = {0};
	char *field = malloc(len + 1);
	size_t flen = 0;
	int quoted = 0, row_started = 0;

	cr_assert_not_null(field);
	memset(csv, 0, sizeof(*csv));
	cr_assert(len == 0 || text[len - 1] == '\n', "%s does not end with a newline", path);
	for (size_t i = 0; i < len; i++) {
		char c = text[i];

		if (quoted) {
			if (c == '"' && i + 1 < len && text[i + 1] == '"') {
				field[flen++] = '"';
				i++;
			} else if (c == '"') {
				quoted = 0;
				cr_assert(
				    i + 1 >= len || text[i + 1] == ',' || text[i + 1] == '\n' ||
					text[i + 1] == '\r',
				    "%s: a quoted field goes on after its closing quote (byte "
				    "%zu)",
				    path, i);
			} else {
				field[flen++] = c;
			}
			continue;
		}
		if (c == '"') {
			cr_assert_eq(flen, 0, "%s: a quote inside an unquoted field (byte %zu)",
				     path, i);
			quoted = 1;
			row_started = 1;
		} else if (c == ',' || c == '\n') {
			field[flen] = '\0';
			itest_list_add(&row, field);
			flen = 0;
			if (c == '\n') {
				if (csv->nrows == cap) {
					cap = cap ? 2 * cap : 64;
					csv->rows =
					    realloc(csv->rows, cap * sizeof(*csv->rows));
					cr_assert_not_null(csv->rows);
				}
				csv->rows[csv->nrows++] = row;
				memset(&row, 0, sizeof(row));
				row_started = 0;
			} else {
				row_started = 1;
			}
		} else if (c != '\r') {
			field[flen++] = c;
			row_started = 1;
		}
	}
	cr_assert(!quoted, "%s: an unterminated quoted field", path);
	cr_assert(!row_started, "%s: the last row has no newline", path);
	free(field);
	free(text);
}

void itest_csv_free(struct itest_csv *csv)
{
	for (size_t i = 0; i < csv->nrows; i++)
		itest_list_free(&csv->rows[i]);
	free(csv->rows);
	memset(csv, 0, sizeof(*csv));
}

void itest_mtime_string(const char *path, char *buf, size_t size)
{
	struct stat st;
	struct tm tm;
	char base[32];

	cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
	gmtime_r(&st.st_mtim.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%09ldZ", base, st.st_mtim.tv_nsec);
}
