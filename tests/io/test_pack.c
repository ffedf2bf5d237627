/* io/pack: keys, shards bounded by size, temporary names, never-rewritten shards, kills
 * at random moments, GNU tar extraction, and a plain-Python reader through the index. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "io/pack.h"
#include "tests/common/vhtest.h"

extern char **environ;

#define TMP_MARK_TEST ".vhprep-tmp" /* what a temporary name holds */

static char tdir[PATH_MAX];

static void setup(void)
{
	vht_tmpdir(tdir, sizeof(tdir));
}

static void teardown(void)
{
	vht_rm_rf(tdir);
}

/* ---- helpers ---- */

/* Deterministic bytes for output i of run r: mostly noise, a compressible run inside. */
static uint8_t *content(unsigned r, unsigned i, size_t len)
{
	uint8_t *b = malloc(len ? len : 1);
	uint64_t x = 0x9E3779B97F4A7C15ULL * (r * 100003ULL + i + 1);

	cr_assert_not_null(b);
	for (size_t k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[k] = k % 1024 < 256 ? (uint8_t)'A' : (uint8_t)x;
	}
	return b;
}

static size_t size_of(unsigned r, unsigned i, size_t lo, size_t hi)
{
	return lo + ((r * 7919u + i * 104729u) % (unsigned)(hi - lo + 1));
}

static char *prov_json(unsigned r, unsigned i)
{
	char *s = NULL;

	cr_assert_gt(asprintf(&s, "{\"source\":\"run%u/file%u\",\"n\":%u}", r, i, i), 0);
	return s;
}

static struct pack *open_pack(const char *dir, enum pack_format f, const char *member,
			      uint64_t shard_size)
{
	struct pack_options o = {.format = f,
				 .name = "processed_images",
				 .member = member,
				 .shard_size = shard_size};
	struct vherr err = {0};
	struct pack *p = NULL;

	cr_assert_eq(pack_open(dir, &o, &p, &err), 0, "pack_open: %s", err.msg);
	return p;
}

static void add_one(struct pack *p, const char *relout, unsigned r, unsigned i, size_t len)
{
	struct vherr err = {0};
	uint8_t *data = content(r, i, len);
	char *js = prov_json(r, i);

	cr_assert_eq(pack_add(p, relout, data, len, js, strlen(js), &err), 0,
		     "pack_add '%s': %s", relout, err.msg);
	free(data);
	free(js);
}

static void close_pack(struct pack *p)
{
	struct vherr err = {0};

	cr_assert_eq(pack_close(p, &err), 0, "pack_close: %s", err.msg);
	pack_free(p);
}

static char *key_of(const char *relout)
{
	char *k = malloc(PACK_KEY_MAX);

	cr_assert_not_null(k);
	cr_assert_eq(pack_key(relout, k, PACK_KEY_MAX), 0, "pack_key '%s'", relout);
	return k;
}

/* The names in dir, sorted, as a NULL-terminated array (caller frees with free_names). */
static char **list_dir(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t cap = 0;

	cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
	*n = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (*n + 2 > cap) {
			cap = cap ? 2 * cap : 64;
			v = realloc(v, cap * sizeof(*v));
			cr_assert_not_null(v);
		}
		v[(*n)++] = strdup(de->d_name);
	}
	closedir(d);
	if (!v)
		v = calloc(1, sizeof(*v));
	v[*n] = NULL;
	for (size_t i = 0; i + 1 < *n; i++)
		for (size_t j = i + 1; j < *n; j++)
			if (strcmp(v[i], v[j]) > 0) {
				char *t = v[i];

				v[i] = v[j];
				v[j] = t;
			}
	return v;
}

static void free_names(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int is_shard(const char *name)
{
	return name[0] != '.' && (ends_with(name, ".tar") || ends_with(name, ".tar.zst"));
}

/* Reads every line of dir/shard's index into a new array of objects. */
static json_t *read_index(const char *dir, const char *shard)
{
	char path[PATH_MAX + 32];
	json_t *a = json_array();
	size_t len;
	char *text, *line, *save = NULL;

	snprintf(path, sizeof(path), "%s/%s%s", dir, shard, PACK_INDEX_SUFFIX);
	text = vht_slurp(path, &len);
	cr_assert(len == 0 || text[len - 1] == '\n', "%s does not end with a newline", path);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);

		cr_assert_not_null(o, "%s: bad line '%s': %s", path, line, je.text);
		cr_assert_str_eq(json_string_value(json_object_get(o, "shard")), shard);
		json_array_append_new(a, o);
	}
	free(text);
	return a;
}

/* The permission bits of dir/name. */
static mode_t stamp_mode(const char *dir, const char *name)
{
	char path[PATH_MAX + NAME_MAX + 2];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(stat(path, &st), 0, "%s", path);
	return st.st_mode & 0777;
}

static uint8_t *read_range(const char *path, uint64_t off, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *b = malloc(len ? len : 1);

	cr_assert_geq(fd, 0, "open %s", path);
	cr_assert_eq(pread(fd, b, len, (off_t)off), (ssize_t)len, "short read of %s", path);
	close(fd);
	return b;
}

static uint64_t jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	cr_assert(json_is_integer(v), "no integer '%s'", k);
	return (uint64_t)json_integer_value(v);
}

/* The bytes an index entry points at (field "offset"/"size" or "json_offset"/...),
 * fetched as a reader would: a ranged read, and for tar.zst the frame decompressed. */
static uint8_t *fetch(const char *dir, json_t *e, const char *off_key, const char *size_key,
		      size_t *len)
{
	char path[PATH_MAX + NAME_MAX];
	uint64_t off = jint(e, off_key);
	uint8_t *frame, *plain, *out;
	size_t flen, plen;

	*len = (size_t)jint(e, size_key);
	snprintf(path, sizeof(path), "%s/%s", dir,
		 json_string_value(json_object_get(e, "shard")));
	if (!json_object_get(e, "frame_offset"))
		return read_range(path, off, *len);
	flen = (size_t)jint(e, "frame_size");
	frame = read_range(path, jint(e, "frame_offset"), flen);
	plen = (size_t)ZSTD_getFrameContentSize(frame, flen);
	cr_assert_lt(plen, 1u << 30, "frame without a content size");
	cr_assert_eq(ZSTD_findFrameCompressedSize(frame, flen), flen, "not exactly one frame");
	plain = malloc(plen ? plen : 1);
	cr_assert_eq(ZSTD_decompress(plain, plen, frame, flen), plen);
	cr_assert_leq(off + *len, plen);
	out = malloc(*len ? *len : 1);
	memcpy(out, plain + off, *len);
	free(plain);
	free(frame);
	return out;
}

/* Asserts that dir/name, a visible shard, is complete: its index is there, every entry is
 * inside it, and it ends as a tar must (two zero blocks; for tar.zst, frames that cover
 * the file exactly, the last one those two blocks). Returns its index. */
static json_t *assert_complete(const char *dir, const char *name)
{
	char path[PATH_MAX + NAME_MAX];
	json_t *idx = read_index(dir, name);
	size_t len, nentries = json_array_size(idx);
	uint8_t *b;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	b = (uint8_t *)vht_slurp(path, &len);
	if (ends_with(name, ".tar")) {
		cr_assert(len % 512 == 0 && len >= 1024, "%s: %zu bytes", name, len);
		for (size_t k = len - 1024; k < len; k++)
			cr_assert_eq(b[k], 0, "%s does not end with two zero blocks", name);
		for (size_t i = 0; i < nentries; i++) {
			json_t *e = json_array_get(idx, i);

			cr_assert_leq(jint(e, "json_offset") + jint(e, "json_size"),
				      len - 1024);
		}
	} else {
		size_t off = 0, frames = 0, last = 0;
		uint8_t zeros[1024] = {0}, plain[1024];

		while (off < len) {
			size_t n = ZSTD_findFrameCompressedSize(b + off, len - off);

			cr_assert(!ZSTD_isError(n), "%s: damaged frame at %zu", name, off);
			if (frames < nentries)
				cr_assert_eq(jint(json_array_get(idx, frames), "frame_offset"),
					     off);
			last = off;
			off += n;
			frames++;
		}
		cr_assert_eq(frames, nentries + 1, "%s: %zu frames for %zu entries", name,
			     frames, nentries);
		cr_assert_eq(ZSTD_decompress(plain, sizeof(plain), b + last, len - last), 1024);
		cr_assert_eq(memcmp(plain, zeros, 1024), 0);
	}
	free(b);
	return idx;
}

/* Runs argv (argv[0] a program found in PATH) with stdin /dev/null, stdout and stderr
 * into err_path; returns the exit status (-1 for a signal). */
static int run_cmd(char *const argv[], const char *cwd, const char *err_path)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (cwd)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	cr_assert_eq(posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), 0, "cannot run %s",
		     argv[0]);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int has_program(const char *name)
{
	char *argv[] = {(char *)name, (char *)"--version", NULL};
	char out[PATH_MAX + 16];

	snprintf(out, sizeof(out), "%s/.probe.out", tdir);
	return run_cmd(argv, NULL, out) == 0;
}

/* ---- pack_key ---- */

static void key_is(const char *relout, const char *want)
{
	char buf[PACK_KEY_MAX];

	cr_assert_eq(pack_key(relout, buf, sizeof(buf)), 0, "'%s' rejected", relout);
	cr_assert_str_eq(buf, want, "key of '%s'", relout);
}

static void key_bad(const char *relout)
{
	char buf[PACK_KEY_MAX];

	cr_assert_eq(pack_key(relout, buf, sizeof(buf)), -1, "'%s' accepted", relout);
}

Test(pack_key, ordinary_names_are_kept)
{
	key_is("processed_images/cats/001.jpg", "processed_images/cats/001.jpg");
	key_is("a b/c d.png", "a b/c d.png");
	key_is("x.JPG", "x.JPG");
	key_is("dir.with.dots/v1.2/x.webp", "dir.with.dots/v1.2/x.webp");
	key_is("caf\xc3\xa9/na\xc3\xafve.jpg", "caf\xc3\xa9/na\xc3\xafve.jpg");
	key_is("q\"uote\\back\ttab\nline.jpg", "q\"uote\\back\ttab\nline.jpg");
	key_is("emoji\xf0\x9f\x98\x80.png", "emoji\xf0\x9f\x98\x80.png");
}

Test(pack_key, other_dots_percent_and_bad_bytes_are_escaped)
{
	key_is("p/img.v2.jpg", "p/img%2Ev2.jpg");
	key_is("p/.hidden.jpg", "p/%2Ehidden.jpg");
	key_is("p/a..b.png", "p/a%2E%2Eb.png");
	key_is("p/100%.png", "p/100%25.png");
	key_is("50%/x.png", "50%25/x.png");
	key_is("p/bad\xff.jpg", "p/bad%FF.jpg");
	key_is("p/\xc3(.jpg", "p/%C3(.jpg");			/* truncated sequence */
	key_is("p/\xc0\xaf.jpg", "p/%C0%AF.jpg");		/* overlong '/' */
	key_is("p/\xed\xa0\x80.jpg", "p/%ED%A0%80.jpg");	/* a surrogate */
	key_is("p/\xf4\x90\x80\x80.jpg", "p/%F4%90%80%80.jpg"); /* above U+10FFFF */
}

Test(pack_key, unusable_paths_are_refused)
{
	char small[8];

	key_bad("");
	key_bad("/abs/x.jpg");
	key_bad("../x.jpg");
	key_bad("a/../x.jpg");
	key_bad("a/./x.jpg");
	key_bad("a//x.jpg");
	key_bad("a/x.jpg/");
	key_bad("noext");
	key_bad("a/.jpg");
	key_bad("a/x.");
	cr_assert_eq(pack_key("abcdefgh.jpg", small, sizeof(small)), -1);
	cr_assert_eq(pack_key("abc.jpg", small, sizeof(small)), 0);
}

static int unhex(int c)
{
	return c <= '9' ? c - '0' : c - 'A' + 10;
}

/* Keys decode back to their paths (so no two paths share one), and WebDataset's first dot
 * of the base name is always the extension's. */
Test(pack_key, injective_and_split_at_the_extension)
{
	static const char alphabet[] = "ab.%/\xc3\xa9\xff-_ ";
	unsigned x = 12345;

	for (int t = 0; t < 20000; t++) {
		char path[40], key[PACK_KEY_MAX], back[PACK_KEY_MAX];
		int n = 1 + (int)((x = x * 1103515245u + 12345u) >> 16) % 24, o = 0;
		const char *base, *dot;

		for (int i = 0; i < n; i++)
			path[i] = alphabet[((x = x * 1103515245u + 12345u) >> 16) % 11];
		strcpy(path + n, ".jpg");
		if (pack_key(path, key, sizeof(key)) != 0)
			continue;
		for (const char *k = key; *k; k++) {
			if (*k == '%') {
				back[o++] = (char)(unhex(k[1]) * 16 + unhex(k[2]));
				k += 2;
			} else {
				back[o++] = *k;
			}
		}
		back[o] = '\0';
		cr_assert_str_eq(back, path, "key '%s' does not decode to its path", key);
		base = strrchr(key, '/') ? strrchr(key, '/') + 1 : key;
		dot = strchr(base, '.');
		cr_assert(dot && dot != base && strcmp(dot, ".jpg") == 0, "key '%s'", key);
	}
}

Test(pack_format, names)
{
	enum pack_format f;

	cr_assert_eq(pack_format_parse("tar", &f), 0);
	cr_assert_eq(f, PACK_TAR);
	cr_assert_eq(pack_format_parse("tar.zst", &f), 0);
	cr_assert_eq(f, PACK_TAR_ZST);
	cr_assert_eq(pack_format_parse("tar.zstd", &f), 0);
	cr_assert_eq(pack_format_parse("zip", &f), -1);
	cr_assert_str_eq(pack_format_ext(PACK_TAR), "tar");
	cr_assert_str_eq(pack_format_ext(PACK_TAR_ZST), "tar.zst");
}

/* ---- options ---- */

Test(pack_open, refuses_bad_options, .init = setup, .fini = teardown)
{
	struct pack_options good = {
	    .format = PACK_TAR, .name = "processed_images", .member = "0of1"};
	struct pack_options o;
	struct vherr err;
	struct pack *p;
	const char *bad_names[] = {"", ".x", "a/b", "q\"", "c\\d", "t\tab"};

	for (size_t i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++) {
		o = good;
		o.name = bad_names[i];
		cr_assert_eq(pack_open(tdir, &o, &p, &err), -VHERR_USAGE, "name '%s'", o.name);
		cr_assert_null(p);
	}
	o = good;
	o.member = "0-of-1";
	cr_assert_eq(pack_open(tdir, &o, &p, &err), -VHERR_USAGE);
	o = good;
	o.shard_size = PACK_SHARD_SIZE_MIN - 1;
	cr_assert_eq(pack_open(tdir, &o, &p, &err), -VHERR_USAGE);
	o = good;
	o.format = PACK_TAR_ZST;
	o.zstd_level = ZSTD_maxCLevel() + 1;
	cr_assert_eq(pack_open(tdir, &o, &p, &err), -VHERR_USAGE);
	o = good;
	cr_assert_eq(pack_open("/nonexistent/vhprep-pack", &o, &p, &err), -VHERR_NOENT);
	cr_assert_eq(pack_open(tdir, &good, &p, &err), 0);
	pack_free(p);
}

Test(pack, nothing_added_publishes_nothing, .init = setup, .fini = teardown)
{
	size_t n;
	char **names;

	close_pack(open_pack(tdir, PACK_TAR_ZST, "0of1", 0));
	names = list_dir(tdir, &n);
	cr_assert_eq(n, 0, "left '%s'", n ? names[0] : "");
	free_names(names);
}

Test(pack, bad_name_is_refused_and_the_pack_goes_on, .init = setup, .fini = teardown)
{
	struct pack *p = open_pack(tdir, PACK_TAR, "0of1", 0);
	struct vherr err = {0};
	size_t n;
	char **names;

	cr_assert_eq(pack_add(p, "../escape.jpg", (const uint8_t *)"x", 1, "{}", 2, &err),
		     -VHERR_BAD_NAME);
	cr_assert_eq(err.code, VHERR_BAD_NAME);
	add_one(p, "p/ok.jpg", 0, 0, 100);
	close_pack(p);
	names = list_dir(tdir, &n);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(names[0], "processed_images-0of1-000001.tar");
	free_names(names);
}

/* Two inputs mapping to one output: the dir sink refuses the second (the file exists);
 * a pack refuses it too, whichever shard the first went to. */
Test(pack, a_key_added_twice_is_refused, .init = setup, .fini = teardown)
{
	struct pack *p = open_pack(tdir, PACK_TAR, "0of1", PACK_SHARD_SIZE_MIN);
	struct vherr err = {0};
	json_t *idx;

	add_one(p, "p/a.png", 0, 0, 100);
	for (unsigned i = 1; i < 3000; i++) { /* many keys, several shards: the set grows */
		char relout[32];

		snprintf(relout, sizeof(relout), "p/%u.bin", i);
		add_one(p, relout, 0, i, 200);
	}
	cr_assert_eq(pack_add(p, "p/a.png", (const uint8_t *)"x", 1, "{}", 2, &err),
		     -VHERR_COLLISION);
	cr_assert_not_null(strstr(err.msg, "p/a.png"), "%s", err.msg);
	add_one(p, "p/after.bin", 0, 9999, 10); /* the pack goes on */
	close_pack(p);
	idx = read_index(tdir, "processed_images-0of1-000001.tar");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(idx, 0), "key")),
			 "p/a.png");
	json_decref(idx);
}

/* ---- shards and the publish callback ---- */

struct published {
	pthread_mutex_t lock;
	int n;
	char names[512][NAME_MAX + 1];
	uint64_t members[512], bytes[512];
	char first[512][128], last[512][128];
	int fail_at; /* > 0: the callback fails on that call */
};

static int on_publish(void *ctx, const struct pack_shard *s, struct vherr *err)
{
	struct published *pb = ctx;
	int i;

	pthread_mutex_lock(&pb->lock);
	i = pb->n++;
	cr_assert_lt(i, 512);
	snprintf(pb->names[i], sizeof(pb->names[i]), "%s", s->name);
	snprintf(pb->first[i], sizeof(pb->first[i]), "%s", s->first_key);
	snprintf(pb->last[i], sizeof(pb->last[i]), "%s", s->last_key);
	pb->members[i] = s->members;
	pb->bytes[i] = s->bytes;
	cr_assert_str_eq(s->index + strlen(s->name), PACK_INDEX_SUFFIX);
	pthread_mutex_unlock(&pb->lock);
	if (pb->fail_at && pb->n == pb->fail_at)
		return vherr_set(err, VHERR_IO, VHSTAGE_RECORD, "callback refuses");
	return 0;
}

static struct pack *open_cb(enum pack_format f, uint64_t shard_size, struct published *pb)
{
	struct pack_options o = {.format = f,
				 .name = "processed_images",
				 .member = "0of1",
				 .shard_size = shard_size,
				 .on_publish = on_publish,
				 .ctx = pb};
	struct vherr err = {0};
	struct pack *p = NULL;

	pthread_mutex_init(&pb->lock, NULL);
	cr_assert_eq(pack_open(tdir, &o, &p, &err), 0, "%s", err.msg);
	return p;
}

static void rotation(enum pack_format f)
{
	static struct published pb;
	const uint64_t bound = 256 << 10;
	uint64_t total = 0;
	size_t n;
	char **names, relout[64];
	struct stat st;
	struct pack *p = open_cb(f, bound, &pb);

	for (unsigned i = 0; i < 200; i++) {
		snprintf(relout, sizeof(relout), "p/d%u/f%04u.bin", i % 5, i);
		add_one(p, relout, 1, i, size_of(1, i, 5000, 40000));
	}
	snprintf(relout, sizeof(relout), "p/huge.bin");
	add_one(p, relout, 1, 999, 2 * bound); /* alone in a shard of its own */
	add_one(p, "p/after.bin", 1, 1000, 100);
	close_pack(p);
	cr_assert_gt(pb.n, 4, "only %d shards", pb.n);
	names = list_dir(tdir, &n);
	cr_assert_eq(n, 2 * (size_t)pb.n, "files: %zu, shards: %d", n, pb.n);
	for (int i = 0; i < pb.n; i++) {
		char want[NAME_MAX + 1], path[PATH_MAX + NAME_MAX + 2];
		json_t *idx;

		snprintf(want, sizeof(want), "processed_images-0of1-%06d.%s", i + 1,
			 pack_format_ext(f));
		cr_assert_str_eq(pb.names[i], want, "shard %d published out of order", i);
		snprintf(path, sizeof(path), "%s/%s", tdir, want);
		cr_assert_eq(stat(path, &st), 0);
		cr_assert_eq((uint64_t)st.st_size, pb.bytes[i]);
		idx = assert_complete(tdir, want);
		cr_assert_eq(json_array_size(idx), pb.members[i]);
		cr_assert_str_eq(
		    json_string_value(json_object_get(json_array_get(idx, 0), "key")),
		    pb.first[i]);
		cr_assert_str_eq(json_string_value(json_object_get(
				     json_array_get(idx, pb.members[i] - 1), "key")),
				 pb.last[i]);
		if (strcmp(pb.first[i], "p/huge.bin") == 0)
			cr_assert_eq(pb.members[i], 1);
		else
			cr_assert_leq((uint64_t)st.st_size, bound, "%s: %lld bytes", want,
				      (long long)st.st_size);
		/* a shard was cut because the next output did not fit: it is well filled */
		if (i + 1 < pb.n && strcmp(pb.first[i + 1], "p/huge.bin") != 0)
			cr_assert_gt((uint64_t)st.st_size + 45000, bound, "%s cut early", want);
		total += pb.members[i];
		json_decref(idx);
	}
	cr_assert_eq(total, 202);
	free_names(names);
}

Test(pack, tar_rotates_at_the_size_bound, .init = setup, .fini = teardown)
{
	rotation(PACK_TAR);
}

Test(pack, tar_zst_rotates_at_the_size_bound, .init = setup, .fini = teardown)
{
	rotation(PACK_TAR_ZST);
}

Test(pack, callback_error_is_fatal, .init = setup, .fini = teardown)
{
	static struct published pb = {.fail_at = 2};
	struct pack *p = open_cb(PACK_TAR, PACK_SHARD_SIZE_MIN, &pb);
	struct vherr err = {0};
	uint8_t *data = content(0, 0, 30000);
	int rc = 0;

	for (unsigned i = 0; i < 20 && rc == 0; i++) {
		char relout[32];

		snprintf(relout, sizeof(relout), "p/%u.bin", i);
		rc = pack_add(p, relout, data, 30000, "{}", 2, &err);
	}
	cr_assert_eq(rc, -VHERR_IO, "rc %d", rc);
	cr_assert_eq(pb.n, 2);
	cr_assert_eq(pack_add(p, "p/later.bin", data, 10, "{}", 2, &err), -VHERR_IO);
	cr_assert_eq(pack_close(p, &err), -VHERR_IO);
	cr_assert_str_eq(err.msg, "callback refuses");
	pack_free(p);
	cr_assert_eq(vht_count_names(tdir, TMP_MARK_TEST), 0);
	free(data);
}

/* ---- temporary names, published shards, kills ---- */

/* With live upload, the callback sees the shard and its index renamed but still
 * writable (a sidecar written there is in place before Valohai takes them), and they turn
 * read-only right after it. */
static int check_writable(void *ctx, const struct pack_shard *s, struct vherr *err)
{
	int *calls = ctx;

	(void)err;
	cr_assert_eq(stamp_mode(tdir, s->name), 0644, "%s is read-only already", s->name);
	cr_assert_eq(stamp_mode(tdir, s->index), 0644, "%s is read-only already", s->index);
	(*calls)++;
	return 0;
}

Test(pack, live_upload_turns_read_only_after_the_callback, .init = setup, .fini = teardown)
{
	int calls = 0;
	struct pack_options o = {.format = PACK_TAR_ZST,
				 .name = "processed_images",
				 .member = "0of1",
				 .shard_size = PACK_SHARD_SIZE_MIN,
				 .live_upload = 1,
				 .on_publish = check_writable,
				 .ctx = &calls};
	struct vherr err = {0};
	struct pack *p;

	umask(022);
	cr_assert_eq(pack_open(tdir, &o, &p, &err), 0, "%s", err.msg);
	for (unsigned i = 0; i < 40; i++) {
		char relout[32];

		snprintf(relout, sizeof(relout), "p/%u.bin", i);
		add_one(p, relout, 4, i, 9000);
	}
	close_pack(p);
	cr_assert_gt(calls, 2);
	cr_assert_eq(stamp_mode(tdir, "processed_images-0of1-000001.tar.zst"), 0444);
	cr_assert_eq(stamp_mode(tdir, "processed_images-0of1-000001.tar.zst.idx.jsonl"), 0444);
}

struct writer {
	struct pack *p;
	unsigned run, count;
	atomic_int done;
};

static void *write_many(void *arg)
{
	struct writer *w = arg;

	for (unsigned i = 0; i < w->count; i++) {
		char relout[64];

		snprintf(relout, sizeof(relout), "p/r%u/%05u.bin", w->run, i);
		add_one(w->p, relout, w->run, i, size_of(w->run, i, 2000, 12000));
	}
	atomic_store(&w->done, 1);
	return NULL;
}

/* Every visible name is a complete shard or its index, or a hidden temporary file. */
static size_t assert_only_complete(const char *dir, int check_content)
{
	size_t n, shards = 0;
	char **names = list_dir(dir, &n);

	for (size_t i = 0; i < n; i++) {
		const char *name = names[i];
		json_t *idx;

		if (name[0] == '.')
			continue; /* hidden: temporary files, and ".probe.out" */
		cr_assert_null(strstr(name, TMP_MARK_TEST), "visible temporary '%s'", name);
		if (ends_with(name, PACK_INDEX_SUFFIX))
			continue; /* checked with its shard (an index alone is allowed) */
		cr_assert(is_shard(name), "unexpected '%s'", name);
		idx = assert_complete(dir, name);
		for (size_t k = 0; check_content && k < json_array_size(idx); k++) {
			json_t *e = json_array_get(idx, k);
			unsigned run, num;
			size_t len;
			uint8_t *got, *want;

			cr_assert_eq(sscanf(json_string_value(json_object_get(e, "key")),
					    "p/r%u/%u.bin", &run, &num),
				     2);
			got = fetch(dir, e, "offset", "size", &len);
			cr_assert_eq(len, size_of(run, num, 2000, 12000));
			want = content(run, num, len);
			cr_assert_eq(memcmp(got, want, len), 0, "bytes of %u/%u differ", run,
				     num);
			free(got);
			free(want);
		}
		json_decref(idx);
		shards++;
	}
	free_names(names);
	return shards;
}

Test(pack, temporary_names_are_never_visible, .init = setup, .fini = teardown, .timeout = 120)
{
	struct writer w = {.run = 3, .count = 3000};
	pthread_t t;
	size_t polls = 0, seen = 0;

	w.p = open_pack(tdir, PACK_TAR_ZST, "0of1", PACK_SHARD_SIZE_MIN);
	cr_assert_eq(pthread_create(&t, NULL, write_many, &w), 0);
	while (!atomic_load(&w.done)) {
		seen = assert_only_complete(tdir, 0);
		polls++;
	}
	pthread_join(t, NULL);
	close_pack(w.p);
	cr_assert_gt(polls, 3, "the writer finished before the directory was watched");
	cr_assert_gt(assert_only_complete(tdir, 1), seen);
	cr_assert_eq(vht_count_names(tdir, TMP_MARK_TEST), 0);
}

struct stamp {
	ino_t ino;
	struct timespec mtime;
	off_t size;
	mode_t mode;
};

static struct stamp stamp_of(const char *dir, const char *name)
{
	char path[PATH_MAX + NAME_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(stat(path, &st), 0, "%s", path);
	return (struct stamp){st.st_ino, st.st_mtim, st.st_size, st.st_mode};
}

static void assert_same_stamp(struct stamp a, struct stamp b, const char *name)
{
	cr_assert(a.ino == b.ino && a.size == b.size && a.mtime.tv_sec == b.mtime.tv_sec &&
		      a.mtime.tv_nsec == b.mtime.tv_nsec && a.mode == b.mode,
		  "'%s' was rewritten", name);
}

Test(pack, published_shards_are_never_rewritten, .init = setup, .fini = teardown)
{
	struct pack_options o = {.format = PACK_TAR,
				 .name = "processed_images",
				 .member = "0of1",
				 .shard_size = PACK_SHARD_SIZE_MIN,
				 .live_upload = 1};
	struct vherr err = {0};
	struct stamp before[64];
	size_t n, n2;
	char **names, **after;
	struct pack *p;

	/* an earlier run's shards, and an index whose shard never made it (a kill between
	 * the two renames): both seqs are taken */
	vht_put(tdir, "processed_images-0of1-000003.tar", "old");
	vht_put(tdir, "processed_images-0of1-000003.tar.idx.jsonl", "");
	vht_put(tdir, "processed_images-0of1-000007.tar.zst.idx.jsonl", "");
	vht_put(tdir, "processed_images-1of2-000042.tar", "another member");
	vht_put(tdir, "other-0of1-000099.tar", "another name");
	names = list_dir(tdir, &n);
	for (size_t i = 0; i < n; i++)
		before[i] = stamp_of(tdir, names[i]);
	for (int run = 0; run < 2; run++) {
		cr_assert_eq(pack_open(tdir, &o, &p, &err), 0, "%s", err.msg);
		for (unsigned i = 0; i < 30; i++) {
			char relout[32];

			snprintf(relout, sizeof(relout), "p/r%d/%u.bin", run, i);
			add_one(p, relout, (unsigned)run, i, 9000);
		}
		close_pack(p);
	}
	after = list_dir(tdir, &n2);
	for (size_t i = 0; i < n; i++)
		assert_same_stamp(before[i], stamp_of(tdir, names[i]), names[i]);
	for (size_t i = 0; i < n2; i++) {
		unsigned seq;

		if (sscanf(after[i], "processed_images-0of1-%06u.tar", &seq) == 1 && seq > 7) {
			cr_assert_eq(stamp_of(tdir, after[i]).mode & 0777, 0444,
				     "live upload: '%s' is not read-only", after[i]);
		}
	}
	cr_assert(vht_exists(strcat(strcpy((char[PATH_MAX + 64]){0}, tdir),
				    "/processed_images-0of1-000008.tar")));
	cr_assert_gt(n2, n + 6, "the two runs published too little");
	free_names(names);
	free_names(after);
}

/* The child's whole life: pack outputs of run r until killed. */
_Noreturn static void pack_until_killed(unsigned r)
{
	struct pack_options o = {.format = r % 2 ? PACK_TAR_ZST : PACK_TAR,
				 .name = "processed_images",
				 .member = "0of1",
				 .shard_size = PACK_SHARD_SIZE_MIN};
	struct vherr err;
	struct pack *p;

	if (pack_open(tdir, &o, &p, &err) != 0)
		_exit(3);
	for (unsigned i = 0;; i++) {
		char relout[64];
		size_t len = size_of(r, i, 2000, 12000);
		uint8_t *data = content(r, i, len);

		snprintf(relout, sizeof(relout), "p/r%u/%05u.bin", r, i);
		if (pack_add(p, relout, data, len, "{}", 2, &err) != 0)
			_exit(4);
		free(data);
	}
}

Test(pack, sigkill_at_random_moments_leaves_only_complete_shards, .init = setup,
     .fini = teardown, .timeout = 180)
{
	unsigned seed = (unsigned)time(NULL);
	size_t temps;

	cr_log_info("seed %u", seed);
	srand(seed);
	for (unsigned r = 0; r < 16; r++) {
		pid_t pid = fork();
		int st;

		cr_assert_geq(pid, 0);
		if (pid == 0)
			pack_until_killed(r);
		vht_sleep_ms(5 + rand() % 120);
		kill(pid, SIGKILL);
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFSIGNALED(st), "child %u ended by itself (status %d)", r, st);
		assert_only_complete(tdir, 1);
	}
	temps = (size_t)vht_count_names(tdir, TMP_MARK_TEST);
	cr_assert_gt(temps, 0, "no kill landed while a shard was open");
	/* the next writer removes what the dead ones left */
	pack_free(open_pack(tdir, PACK_TAR, "0of1", 0));
	cr_assert_eq(vht_count_names(tdir, TMP_MARK_TEST), 0);
	cr_assert_gt(assert_only_complete(tdir, 1), 0, "no shard was ever published");
}

/* ---- fatal write errors ---- */

static void fill_until_error(struct pack *p, int *code, unsigned *added)
{
	struct vherr err = {0};
	int rc = 0;

	*added = 0;
	while (rc == 0 && *added < 100000) {
		char relout[32];
		uint8_t *data = content(9, *added, 20000);

		snprintf(relout, sizeof(relout), "p/%u.bin", *added);
		rc = pack_add(p, relout, data, 20000, "{}", 2, &err);
		free(data);
		if (rc == 0)
			(*added)++;
	}
	*code = -rc;
	cr_assert_eq((int)err.code, *code);
	cr_assert_eq(pack_add(p, "p/again.bin", (const uint8_t *)"x", 1, "{}", 2, &err), rc,
		     "the error is not sticky");
	cr_assert_eq(pack_close(p, &err), rc);
	pack_free(p);
}

Test(pack, a_file_size_limit_is_fatal_and_leaves_no_temporary, .init = setup, .fini = teardown)
{
	struct rlimit rl = {600 << 10, 600 << 10};
	unsigned added;
	int code;

	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	fill_until_error(open_pack(tdir, PACK_TAR, "0of1", 4 << 20), &code, &added);
	cr_assert_eq(code, VHERR_NOSPC, "code %d (EFBIG counts as a full disk)", code);
	cr_assert_gt(added, 3);
	cr_assert_eq(vht_count_names(tdir, TMP_MARK_TEST), 0);
	cr_assert_eq(vht_count_names(tdir, ".tar"), 0, "an incomplete shard was published");
}

Test(pack, a_full_disk_is_fatal_and_leaves_only_complete_shards, .init = setup,
     .fini = teardown)
{
	char mnt[PATH_MAX];
	unsigned added;
	int code;

	vht_join(mnt, sizeof(mnt), tdir, "small");
	vht_mkdirs(mnt);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0)
		vht_missing("cannot mount a 1 MiB tmpfs (%s): the full-disk case needs root "
			    "(CI runs it)",
			    strerror(errno));
	fill_until_error(open_pack(mnt, PACK_TAR_ZST, "0of1", PACK_SHARD_SIZE_MIN), &code,
			 &added);
	cr_expect_eq(code, VHERR_NOSPC, "code %d", code);
	cr_expect_gt(added, 3);
	cr_expect_eq(vht_count_names(mnt, TMP_MARK_TEST), 0);
	cr_expect_gt(assert_only_complete(mnt, 0), 0);
	umount2(mnt, MNT_DETACH);
}

/* ---- what readers see: GNU tar, Python, the scan ---- */

static const char *const tricky[] = {
    "processed_images/cats/001.jpg",
    "processed_images/cats/002.jpg",
    "processed_images/dogs/a b.png",
    "processed_images/img.v2.jpg",
    "processed_images/img.v3.jpg",
    "processed_images/.hidden.jpg",
    "processed_images/100%.png",
    "processed_images/caf\xc3\xa9/na\xc3\xafve.jpg",
    "processed_images/dir.with.dots/x.jpg",
    "processed_images/same.jpg",
    "processed_images/same.png",
    "processed_images/quote\"and\\back.jpg",
    "processed_images/tab\there.jpg",
    "processed_images/new\nline.jpg",
    "processed_images/bad\xff.jpg",
    "processed_images/upper.JPG",
    "processed_images/empty.png",
};
#define NTRICKY (sizeof(tricky) / sizeof(*tricky))

/* Adds the tricky names, a long path and n ordinary files from 3 threads; returns the
 * relouts in order of their content index. */
struct filler {
	struct pack *p;
	char **relouts;
	unsigned n;
	atomic_uint next;
};

static void *fill(void *arg)
{
	struct filler *f = arg;
	unsigned i;

	while ((i = atomic_fetch_add(&f->next, 1)) < f->n)
		add_one(f->p, f->relouts[i], 7, i,
			strstr(f->relouts[i], "empty") ? 0 : size_of(7, i, 100, 30000));
	return NULL;
}

static char **make_relouts(unsigned n)
{
	char **v = calloc(n + 1, sizeof(*v));
	char longname[400];

	memset(longname, 0, sizeof(longname));
	memcpy(longname, "processed_images/", 17);
	memset(longname + 17, 'd', 150);
	longname[167] = '/';
	memset(longname + 168, 'f', 120);
	strcpy(longname + 288, ".jpg");
	for (unsigned i = 0; i < n; i++) {
		if (i < NTRICKY)
			v[i] = strdup(tricky[i]);
		else if (i == NTRICKY)
			v[i] = strdup(longname);
		else
			cr_assert_gt(
			    asprintf(&v[i], "processed_images/n%02u/img_%05u.jpg", i % 13, i),
			    0);
	}
	return v;
}

static void pack_relouts(const char *dir, enum pack_format f, char **relouts, unsigned n,
			 uint64_t shard_size)
{
	struct filler fl = {
	    .p = open_pack(dir, f, "0of1", shard_size), .relouts = relouts, .n = n};
	pthread_t t[3];

	for (int i = 0; i < 3; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, fill, &fl), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	close_pack(fl.p);
}

static void assert_file(const char *root, const char *rel, const void *want, size_t len)
{
	char path[PATH_MAX * 2];
	size_t got_len;
	char *got;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	cr_assert(vht_exists(path), "tar did not extract '%s'", rel);
	got = vht_slurp(path, &got_len);
	cr_assert_eq(got_len, len, "'%s': %zu bytes, want %zu", rel, got_len, len);
	cr_assert_eq(memcmp(got, want, len), 0, "'%s' differs", rel);
	free(got);
}

static int count_files_fn(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	static int *count;

	(void)path;
	(void)st;
	(void)ftw;
	if (!path) {
		count = (int *)st;
		return 0;
	}
	if (flag == FTW_F)
		(*count)++;
	return 0;
}

static int count_files(const char *root)
{
	int n = 0;

	count_files_fn(NULL, (const struct stat *)&n, 0, NULL);
	nftw(root, count_files_fn, 16, FTW_PHYS);
	return n;
}

static void gnu_tar_extracts_exactly(enum pack_format f)
{
	const unsigned n = 400;
	char shards[PATH_MAX], out[PATH_MAX], errf[PATH_MAX];
	char **relouts = make_relouts(n), **names;
	size_t nn;

	if (f == PACK_TAR_ZST && !has_program("zstd"))
		vht_missing("no zstd command (Debian package zstd): tar --zstd cannot run");
	vht_join(shards, sizeof(shards), tdir, "shards");
	vht_join(out, sizeof(out), tdir, "out");
	vht_join(errf, sizeof(errf), tdir, "tar.err");
	vht_mkdirs(shards);
	vht_mkdirs(out);
	pack_relouts(shards, f, relouts, n, 512 << 10);
	names = list_dir(shards, &nn);
	cr_assert_gt(nn, 4, "expected several shards");
	for (size_t i = 0; i < nn; i++) {
		char path[PATH_MAX + NAME_MAX], *err;
		char *argv[] = {"tar", f == PACK_TAR_ZST ? "--zstd" : "--no-auto-compress",
				"-xf", path, NULL};

		if (!is_shard(names[i]))
			continue;
		snprintf(path, sizeof(path), "%s/%s", shards, names[i]);
		cr_assert_eq(run_cmd(argv, out, errf), 0, "tar -x %s failed", names[i]);
		err = vht_slurp(errf, NULL);
		cr_assert_str_empty(err, "tar said: %s", err);
		free(err);
	}
	for (unsigned i = 0; i < n; i++) {
		char *key = key_of(relouts[i]), *js = prov_json(7, i), jname[PACK_KEY_MAX + 8];
		size_t len = strstr(relouts[i], "empty") ? 0 : size_of(7, i, 100, 30000);
		uint8_t *data = content(7, i, len);

		if (strpbrk(relouts[i] + 17, "%\xff") == NULL && !strstr(relouts[i], "/.") &&
		    !strstr(relouts[i], ".v"))
			cr_assert_str_eq(key, relouts[i], "an ordinary name was changed");
		assert_file(out, key, data, len);
		snprintf(jname, sizeof(jname), "%s.json", key);
		assert_file(out, jname, js, strlen(js));
		free(key);
		free(js);
		free(data);
	}
	cr_assert_eq(count_files(out), 2 * (int)n, "tar extracted other files too");
	free_names(names);
	free_names(relouts);
}

Test(pack_readers, gnu_tar_extracts_exactly_the_files, .init = setup, .fini = teardown,
     .timeout = 120)
{
	gnu_tar_extracts_exactly(PACK_TAR);
}

Test(pack_readers, gnu_tar_zstd_extracts_exactly_the_files, .init = setup, .fini = teardown,
     .timeout = 120)
{
	gnu_tar_extracts_exactly(PACK_TAR_ZST);
}

static void python_reader_fetches(enum pack_format f)
{
	const unsigned n = 600;
	char shards[PATH_MAX], out[PATH_MAX], keys[PATH_MAX], errf[PATH_MAX], script[PATH_MAX];
	char **relouts = make_relouts(n);
	const char *src = getenv("VHPREP_SOURCE_DIR");
	unsigned picks[200], seed = (unsigned)time(NULL);
	FILE *kf;

	cr_assert_not_null(src, "VHPREP_SOURCE_DIR is not set (ctest sets it)");
	if (f == PACK_TAR_ZST && !has_program("zstd"))
		vht_missing("no zstd command (Debian package zstd): the reader needs zstd -d");
	cr_log_info("seed %u", seed);
	srand(seed);
	snprintf(script, sizeof(script), "%s/tests/io/read_index.py", src);
	vht_join(shards, sizeof(shards), tdir, "shards");
	vht_join(out, sizeof(out), tdir, "out");
	vht_join(keys, sizeof(keys), tdir, "keys.txt");
	vht_join(errf, sizeof(errf), tdir, "py.err");
	vht_mkdirs(shards);
	vht_mkdirs(out);
	pack_relouts(shards, f, relouts, n, 1 << 20);
	kf = fopen(keys, "w");
	cr_assert_not_null(kf);
	for (unsigned k = 0; k < 200; k++) {
		char *key;

		/* every tricky name, then random ones; keys are lines, so not the one with a
		 * newline */
		picks[k] = k < NTRICKY ? k : (unsigned)rand() % n;
		while (strchr(relouts[picks[k]], '\n'))
			picks[k] = (unsigned)rand() % n;
		key = key_of(relouts[picks[k]]);
		fprintf(kf, "%s\n", key);
		free(key);
	}
	fclose(kf);
	{
		char *argv[] = {"python3", script, shards, keys, out, NULL};
		int rc = run_cmd(argv, NULL, errf);
		char *err = vht_slurp(errf, NULL);

		cr_assert_eq(rc, 0, "read_index.py failed: %s", err);
		free(err);
	}
	for (unsigned k = 0; k < 200; k++) {
		unsigned i = picks[k];
		size_t len = strstr(relouts[i], "empty") ? 0 : size_of(7, i, 100, 30000);
		uint8_t *data = content(7, i, len);
		char *js = prov_json(7, i), name[32];

		snprintf(name, sizeof(name), "%u.bin", k);
		assert_file(out, name, data, len);
		snprintf(name, sizeof(name), "%u.json", k);
		assert_file(out, name, js, strlen(js));
		free(data);
		free(js);
	}
	free_names(relouts);
}

Test(pack_readers, python_fetches_200_random_keys_from_tar, .init = setup, .fini = teardown,
     .timeout = 120)
{
	python_reader_fetches(PACK_TAR);
}

Test(pack_readers, python_fetches_200_random_keys_from_tar_zst, .init = setup, .fini = teardown,
     .timeout = 120)
{
	python_reader_fetches(PACK_TAR_ZST);
}

struct seen_keys {
	json_t *keys; /* key -> shard */
	int stop_after;
};

static int on_key(void *ctx, const char *key, const char *shard)
{
	struct seen_keys *sk = ctx;

	cr_assert_null(json_object_get(sk->keys, key), "key '%s' listed twice", key);
	json_object_set_new(sk->keys, key, json_string(shard));
	if (sk->stop_after && (int)json_object_size(sk->keys) == sk->stop_after)
		return -VHERR_CANCELLED;
	return 0;
}

Test(pack_scan, lists_published_keys_and_the_next_seq, .init = setup, .fini = teardown)
{
	struct seen_keys sk = {.keys = json_object()};
	struct vherr err = {0};
	uint64_t next = 0;
	struct pack *a = open_pack(tdir, PACK_TAR, "0of2", PACK_SHARD_SIZE_MIN);
	struct pack *b = open_pack(tdir, PACK_TAR_ZST, "1of2", PACK_SHARD_SIZE_MIN);
	char path[PATH_MAX + 64];

	for (unsigned i = 0; i < 60; i++) {
		char relout[32];

		snprintf(relout, sizeof(relout), "p/%02u.bin", i);
		add_one(i % 2 ? b : a, relout, 5, i, 7000);
	}
	close_pack(a);
	close_pack(b);
	b = open_pack(tdir, PACK_TAR_ZST, "1of2", 0);
	add_one(b, "p/unpublished.bin", 5, 99, 100); /* an open shard is not listed */
	cr_assert_eq(pack_scan(tdir, "processed_images", NULL, on_key, &sk, &next, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(json_object_size(sk.keys), 60);
	cr_assert_str_eq(json_string_value(json_object_get(sk.keys, "p/01.bin")),
			 "processed_images-1of2-000001.tar.zst");
	pack_free(b);
	json_object_clear(sk.keys);
	cr_assert_eq(pack_scan(tdir, "processed_images", "0of2", on_key, &sk, &next, &err), 0);
	cr_assert_eq(json_object_size(sk.keys), 30);
	cr_assert_gt(next, 3);
	for (unsigned i = 0; i < 60; i += 2) {
		char key[32];

		snprintf(key, sizeof(key), "p/%02u.bin", i);
		cr_assert_not_null(json_object_get(sk.keys, key), "'%s' not listed", key);
	}
	json_object_clear(sk.keys);
	sk.stop_after = 7;
	cr_assert_eq(pack_scan(tdir, "processed_images", NULL, on_key, &sk, NULL, &err),
		     -VHERR_CANCELLED);
	/* a missing dir has nothing; a shard without its index is an error */
	cr_assert_eq(
	    pack_scan("/nonexistent/x", "processed_images", NULL, NULL, NULL, &next, &err), 0);
	cr_assert_eq(next, 1);
	snprintf(path, sizeof(path), "%s/processed_images-0of2-000001.tar.idx.jsonl", tdir);
	cr_assert_eq(unlink(path), 0);
	cr_assert_lt(pack_scan(tdir, "processed_images", NULL, NULL, NULL, &next, &err), 0);
	vht_put(tdir, "processed_images-0of2-000001.tar.idx.jsonl", "{\"nokey\":1}\n");
	cr_assert_eq(pack_scan(tdir, "processed_images", NULL, NULL, NULL, &next, &err),
		     -VHERR_IO);
	json_decref(sk.keys);
}
