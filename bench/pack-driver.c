/* pack-driver: writes the files of a directory through io/pack (tar or tar.zst shards) or
 * through io/dirsink (one file each, temporary name + rename, as a dir run writes), with
 * the records each way keeps, and reports the rate; bench/pack-bench.sh runs it.
 *
 *   vhprep-pack-driver [--format dir|tar|tar.zst] [--level N] [--zstd-workers N]
 *                      [--shard-size SIZE] [--threads N] [--name NAME] [--member M]
 *                      [--prefix P] [--live-upload] SRC OUT
 *
 * Lists SRC's regular files (sorted), then --threads workers each take the next file,
 * read it, and hand it on as relout "P/<relative path>" (P default processed_images)
 * with a small provenance JSON: --format dir writes it with dirsink_write and appends one
 * valohai.metadata.jsonl line per file (what a dir run does); tar and tar.zst add it to
 * NAME-MEMBER-SEQ shards in OUT (NAME default processed_images, MEMBER 0of1) and append
 * one metadata line per published shard. OUT must exist. Prints one JSON line on stdout:
 * format, level, threads, files, bytes_in, bytes_out (what OUT received besides the
 * records), shards, seconds (from the first read to the last publish), cpu_seconds (of
 * every thread over the same span), files_per_s,
 * mb_per_s (of input), ratio (bytes_in / bytes_out). Exit 0, or 1 on any error. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/appendlog.h"
#include "io/dirsink.h"
#include "io/pack.h"

struct driver {
	int dir_mode;
	struct pack_options opt;
	const char *prefix;
	int threads;
	const char *src;
	char **paths; /* relative to src, sorted */
	size_t n, cap;
	atomic_size_t next;
	struct pack *pack;
	struct dirsink *ds;
	struct appendlog *meta;
	atomic_ullong bytes_in, bytes_out;
	atomic_uint shards;
	atomic_int failed;
	pthread_mutex_t err_lock;
	struct vherr err; /* under err_lock: the first error */
};

static struct driver *walking; /* nftw has no context argument */
static size_t src_len;

static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	struct driver *d = walking;

	(void)st;
	(void)ftw;
	if (type != FTW_F)
		return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 1024;
		char **v = realloc(d->paths, cap * sizeof(*v));

		if (!v)
			return -1;
		d->paths = v;
		d->cap = cap;
	}
	d->paths[d->n] = strdup(path + src_len + 1);
	return d->paths[d->n++] ? 0 : -1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void fail(struct driver *d, const struct vherr *err)
{
	pthread_mutex_lock(&d->err_lock);
	if (!atomic_exchange(&d->failed, 1))
		d->err = *err;
	pthread_mutex_unlock(&d->err_lock);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *b = NULL;
	size_t got = 0;

	if (fd < 0 || fstat(fd, &st) != 0)
		goto out;
	b = malloc((size_t)st.st_size + 1);
	while (b && got < (size_t)st.st_size) {
		ssize_t r = read(fd, b + got, (size_t)st.st_size - got);

		if (r <= 0) {
			VH_FREE(b);
			break;
		}
		got += (size_t)r;
	}
	*len = got;
out:
	if (fd >= 0)
		close(fd);
	return b;
}

/* Writes one file through the chosen sink, with its record. */
static int put(struct driver *d, const char *rel, const uint8_t *data, size_t len,
	       struct vherr *err)
{
	char relout[4096];
	json_t *prov = json_pack("{s:s, s:I, s:s}", "source", rel, "bytes", (json_int_t)len,
				 "version", VHPREP_VERSION);
	char *js = NULL;
	int rc;

	snprintf(relout, sizeof(relout), "%s/%s", d->prefix, rel);
	if (d->dir_mode) {
		rc = dirsink_write(d->ds, relout, data, len, err);
		if (rc == 0) {
			json_t *line =
			    json_pack("{s:s, s:O}", "file", relout, "metadata", prov);

			rc = appendlog_write_json(d->meta, line, err);
			json_decref(line);
			atomic_fetch_add(&d->bytes_out, len);
		}
	} else {
		js = json_dumps(prov, JSON_COMPACT);
		rc = js ? pack_add(d->pack, relout, data, len, js, strlen(js), err)
			: vherr_set(err, VHERR_NOMEM, VHSTAGE_WRITE, NULL);
	}
	free(js);
	json_decref(prov);
	return rc;
}

static void *worker(void *arg)
{
	struct driver *d = arg;
	size_t i;

	while (!atomic_load(&d->failed) && (i = atomic_fetch_add(&d->next, 1)) < d->n) {
		char path[8192];
		struct vherr err = {0};
		size_t len = 0;
		uint8_t *data;

		snprintf(path, sizeof(path), "%s/%s", d->src, d->paths[i]);
		data = slurp(path, &len);
		if (!data) {
			vherr_errno(&err, errno ? errno : EIO, VHSTAGE_READ, "cannot read '%s'",
				    path);
			fail(d, &err);
			break;
		}
		atomic_fetch_add(&d->bytes_in, len);
		if (put(d, d->paths[i], data, len, &err) != 0)
			fail(d, &err);
		free(data);
	}
	return NULL;
}

/* One metadata line per published shard, as the pipeline would write. */
static int on_publish(void *ctx, const struct pack_shard *s, struct vherr *err)
{
	struct driver *d = ctx;
	json_t *line =
	    json_pack("{s:s, s:{s:I, s:s, s:s, s:s, s:I}}", "file", s->name, "metadata",
		      "members", (json_int_t)s->members, "first_key", s->first_key, "last_key",
		      s->last_key, "index", s->index, "bytes", (json_int_t)s->bytes);
	int rc = appendlog_write_json(d->meta, line, err);

	json_decref(line);
	atomic_fetch_add(&d->shards, 1);
	atomic_fetch_add(&d->bytes_out, s->bytes);
	return rc;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* CPU seconds (user + system) of the whole process, every thread, so far. */
static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static int open_sink(struct driver *d, const char *out, struct vherr *err)
{
	int dirfd, rc;

	if (d->dir_mode) {
		rc = dirsink_open(out, 0, &d->ds, err);
		dirfd = rc == 0 ? dirsink_dirfd(d->ds) : -1;
	} else {
		d->opt.on_publish = on_publish;
		d->opt.ctx = d;
		rc = pack_open(out, &d->opt, &d->pack, err);
		dirfd = rc == 0 ? open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	}
	if (rc == 0)
		rc = appendlog_open(dirfd, "valohai.metadata.jsonl", 1, &d->meta, err);
	if (!d->dir_mode && dirfd >= 0)
		close(dirfd);
	return rc;
}

static int run(struct driver *d, const char *out)
{
	pthread_t tid[256];
	struct vherr err = {0};
	double t0, c0, secs, cpu;
	int rc = open_sink(d, out, &err);

	if (rc != 0) {
		fprintf(stderr, "pack-driver: %s\n", err.msg);
		return 1;
	}
	t0 = now();
	c0 = cpu_now();
	for (int i = 0; i < d->threads; i++)
		pthread_create(&tid[i], NULL, worker, d);
	for (int i = 0; i < d->threads; i++)
		pthread_join(tid[i], NULL);
	if (d->pack && pack_close(d->pack, &err) != 0)
		fail(d, &err);
	secs = now() - t0;
	cpu = cpu_now() - c0;
	if (atomic_load(&d->failed)) {
		fprintf(stderr, "pack-driver: %s\n", d->err.msg);
		return 1;
	}
	printf("{\"format\":\"%s\",\"level\":%d,\"zstd_workers\":%d,\"threads\":%d,"
	       "\"files\":%zu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"shards\":%u,"
	       "\"seconds\":%.4f,\"cpu_seconds\":%.4f,\"files_per_s\":%.1f,\"mb_per_s\":%.2f,"
	       "\"ratio\":%.4f}\n",
	       d->dir_mode ? "dir" : pack_format_ext(d->opt.format),
	       d->opt.format == PACK_TAR_ZST && !d->dir_mode
		   ? (d->opt.zstd_level ? d->opt.zstd_level : PACK_ZSTD_LEVEL_DEFAULT)
		   : 0,
	       d->opt.zstd_workers, d->threads, d->n, (unsigned long long)d->bytes_in,
	       (unsigned long long)d->bytes_out, atomic_load(&d->shards), secs, cpu,
	       (double)d->n / secs, (double)d->bytes_in / secs / 1e6,
	       d->bytes_out ? (double)d->bytes_in / (double)d->bytes_out : 0.0);
	return 0;
}

static int usage(void)
{
	fputs("usage: vhprep-pack-driver [--format dir|tar|tar.zst] [--level N] "
	      "[--zstd-workers N]\n"
	      "         [--shard-size BYTES] [--threads N] [--name NAME] [--member M]\n"
	      "         [--prefix P] [--live-upload] SRC OUT\n",
	      stderr);
	return 2;
}

static int parse(int argc, char **argv, struct driver *d)
{
	static const struct option opts[] = {
	    {"format", required_argument, NULL, 'f'},
	    {"level", required_argument, NULL, 'l'},
	    {"zstd-workers", required_argument, NULL, 'w'},
	    {"shard-size", required_argument, NULL, 's'},
	    {"threads", required_argument, NULL, 'j'},
	    {"name", required_argument, NULL, 'n'},
	    {"member", required_argument, NULL, 'm'},
	    {"prefix", required_argument, NULL, 'p'},
	    {"live-upload", no_argument, NULL, 'u'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'f' && strcmp(optarg, "dir") == 0)
			d->dir_mode = 1;
		else if (c == 'f' && pack_format_parse(optarg, &d->opt.format) != 0)
			return -1;
		else if (c == 'l')
			d->opt.zstd_level = atoi(optarg);
		else if (c == 'w')
			d->opt.zstd_workers = atoi(optarg);
		else if (c == 's')
			d->opt.shard_size = strtoull(optarg, NULL, 10);
		else if (c == 'j')
			d->threads = atoi(optarg);
		else if (c == 'n')
			d->opt.name = optarg;
		else if (c == 'm')
			d->opt.member = optarg;
		else if (c == 'p')
			d->prefix = optarg;
		else if (c == 'u')
			d->opt.live_upload = 1;
		else if (c != 'f')
			return -1;
	}
	if (argc - optind != 2 || d->threads < 1 || d->threads > 256)
		return -1;
	d->src = argv[optind];
	return 0;
}

int main(int argc, char **argv)
{
	struct driver d = {.threads = 2, .prefix = "processed_images"};
	int rc;

	d.opt.name = "processed_images";
	d.opt.member = "0of1";
	pthread_mutex_init(&d.err_lock, NULL);
	if (parse(argc, argv, &d) != 0)
		return usage();
	walking = &d;
	src_len = strlen(d.src);
	while (src_len > 1 && argv[optind][src_len - 1] == '/')
		argv[optind][--src_len] = '\0';
	if (nftw(d.src, collect, 64, FTW_PHYS) != 0) {
		fprintf(stderr, "pack-driver: cannot list '%s'\n", d.src);
		return 1;
	}
	qsort(d.paths, d.n, sizeof(*d.paths), cmp_str);
	rc = run(&d, argv[optind + 1]);
	pack_free(d.pack);
	dirsink_free(d.ds);
	appendlog_close(d.meta, NULL);
	for (size_t i = 0; i < d.n; i++)
		free(d.paths[i]);
	free(d.paths);
	pthread_mutex_destroy(&d.err_lock);
	return rc;
}
