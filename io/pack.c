#include "io/pack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <locale.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#define TMP_MARK     ".vhprep-tmp."
#define TAR_TRAILER  1024	/* two zero blocks end a tar archive */
#define ENC_KEEP_MAX (8u << 20) /* encoder buffers above this are given back */
#define SHARD_IO_BUF (1u << 20) /* stdio buffer of a shard file */
#define NAME_MAX_LEN (NAME_MAX + 1)

/* ---- keys ---- */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, at
 * most U+10FFFF), or 0 if the byte at s does not start one. */
static int utf8_seq(const unsigned char *s)
{
	unsigned c = s[0], min, cp;
	int n;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2, min = 0x80, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3, min = 0x800, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	for (int i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

/* Whether relout is relative, with no empty, "." or ".." component. */
static int relout_ok(const char *relout)
{
	const char *p = relout;

	if (*p == '/' || *p == '\0')
		return 0;
	while (*p) {
		size_t n = strcspn(p, "/");

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		p += n;
		if (*p == '/' && !*++p)
			return 0;
	}
	return 1;
}

int pack_key(const char *relout, char *buf, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *slash, *base, *ext;
	size_t o = 0;

	if (!relout_ok(relout))
		return -1;
	slash = strrchr(relout, '/');
	base = slash ? slash + 1 : relout;
	ext = strrchr(base, '.');
	if (!ext || ext == base || !ext[1])
		return -1;
	for (const unsigned char *s = (const unsigned char *)relout; *s;) {
		int n = utf8_seq(s);
		int escape = n == 0 || *s == '%' ||
			     (*s == '.' && (const char *)s >= base && (const char *)s != ext);

		if (o + (escape ? 3 : (size_t)n) >= size)
			return -1;
		if (escape) {
			buf[o++] = '%';
			buf[o++] = hex[*s >> 4];
			buf[o++] = hex[*s & 15];
			s++;
			continue;
		}
		memcpy(buf + o, s, (size_t)n);
		o += (size_t)n;
		s += n;
	}
	buf[o] = '\0';
	return 0;
}

const char *pack_format_ext(enum pack_format f)
{
	return f == PACK_TAR_ZST ? "tar.zst" : "tar";
}

int pack_format_parse(const char *s, enum pack_format *out)
{
	if (strcmp(s, "tar") == 0)
		*out = PACK_TAR;
	else if (strcmp(s, "tar.zst") == 0 || strcmp(s, "tar.zstd") == 0)
		*out = PACK_TAR_ZST;
	else
		return -1;
	return 0;
}

/* ---- shard names ---- */

/* What a directory entry's name says about the shards of one NAME(-MEMBER). */
struct shard_name {
	uint64_t seq;
	int index;    /* NAME-MEMBER-SEQ.tar[.zst].idx.jsonl */
	int zst;      /* .tar.zst */
	long tmp_pid; /* > 0: a temporary file of that process (".<name>.vhprep-tmp.PID") */
};

/* Parses fname as one of NAME-MEMBER-SEQ.{tar,tar.zst}[.idx.jsonl], or such a name's
 * temporary form. member NULL matches any member. Returns 1 and fills *sn, or 0. */
static int shard_name_parse(const char *fname, const char *name, const char *member,
			    struct shard_name *sn)
{
	char buf[NAME_MAX_LEN], *end, *dash, *tail;
	size_t n = strlen(name);

	memset(sn, 0, sizeof(*sn));
	if (fname[0] == '.') {
		char *mark;

		if (strlen(fname) >= sizeof(buf))
			return 0;
		strcpy(buf, fname + 1);
		mark = strstr(buf, TMP_MARK);
		if (!mark)
			return 0;
		sn->tmp_pid = strtol(mark + strlen(TMP_MARK), &end, 10);
		if (sn->tmp_pid <= 0 || *end)
			return 0;
		*mark = '\0';
	} else if (strlen(fname) < sizeof(buf)) {
		strcpy(buf, fname);
	} else {
		return 0;
	}
	if (strncmp(buf, name, n) != 0 || buf[n] != '-')
		return 0;
	tail = strstr(buf + n + 1, ".tar");
	if (!tail)
		return 0;
	if (strcmp(tail, ".tar") == 0 || strcmp(tail, ".tar" PACK_INDEX_SUFFIX) == 0)
		sn->zst = 0;
	else if (strcmp(tail, ".tar.zst") == 0 ||
		 strcmp(tail, ".tar.zst" PACK_INDEX_SUFFIX) == 0)
		sn->zst = 1;
	else
		return 0;
	sn->index = strstr(tail, PACK_INDEX_SUFFIX) != NULL;
	*tail = '\0';
	dash = strrchr(buf + n + 1, '-');
	if (!dash || dash == buf + n + 1 || !dash[1] || dash[1] < '0' || dash[1] > '9')
		return 0;
	errno = 0;
	sn->seq = strtoull(dash + 1, &end, 10);
	if (errno || *end)
		return 0;
	*dash = '\0';
	if (strchr(buf + n + 1, '-'))
		return 0;
	return !member || strcmp(buf + n + 1, member) == 0;
}

/* Calls fn for each entry of dirfd that parses as a shard name of name(-member). */
static int shard_names_each(int dirfd, const char *name, const char *member,
			    int (*fn)(void *ctx, const char *fname,
				      const struct shard_name *sn),
			    void *ctx)
{
	int fd = dup(dirfd), rc = 0;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;
	struct shard_name sn;

	if (!d) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		return rc;
	}
	rewinddir(d);
	while (rc == 0 && (errno = 0, de = readdir(d)))
		if (shard_name_parse(de->d_name, name, member, &sn))
			rc = fn(ctx, de->d_name, &sn);
	if (rc == 0 && errno)
		rc = -errno;
	closedir(d);
	return rc;
}

/* ---- encoders: one output's two members, as tar bytes and (tar.zst) one frame ---- */

struct packenc {
	struct packenc *next; /* in the pack's free list */
	struct archive *ar;   /* a tar writer that never ends: its bytes go to buf */
	struct archive_entry *entry;
	ZSTD_CCtx *zc;	     /* NULL for tar */
	uint8_t *buf, *zbuf; /* the members' tar bytes; their frame */
	size_t len, cap, zlen, zcap;
	int broken; /* libarchive failed: free it, do not reuse */
};

static la_ssize_t enc_write(struct archive *a, void *ctx, const void *data, size_t len)
{
	struct packenc *e = ctx;

	if (e->len + len > e->cap) {
		size_t cap = e->cap ? e->cap : 64 * 1024;
		uint8_t *b;

		while (cap < e->len + len)
			cap *= 2;
		b = realloc(e->buf, cap);
		if (!b) {
			archive_set_error(a, ENOMEM, "out of memory");
			return -1;
		}
		e->buf = b;
		e->cap = cap;
	}
	memcpy(e->buf + e->len, data, len);
	e->len += len;
	return (la_ssize_t)len;
}

static void enc_free(struct packenc *e)
{
	if (!e)
		return;
	archive_write_free(e->ar); /* writes an end of archive to buf, never used */
	archive_entry_free(e->entry);
	ZSTD_freeCCtx(e->zc);
	free(e->buf);
	free(e->zbuf);
	free(e);
}

/* A new encoder; the caller has the pack's UTF-8 locale in use. NULL: out of memory. */
static struct packenc *enc_new(enum pack_format format, int level, int workers)
{
	struct packenc *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->ar = archive_write_new();
	e->entry = archive_entry_new();
	if (!e->ar || !e->entry || archive_write_set_format_pax_restricted(e->ar) ||
	    archive_write_add_filter_none(e->ar) ||
	    archive_write_set_bytes_per_block(e->ar, 0) ||
	    archive_write_open2(e->ar, e, NULL, enc_write, NULL, NULL))
		goto fail;
	if (format == PACK_TAR_ZST) {
		e->zc = ZSTD_createCCtx();
		if (!e->zc ||
		    ZSTD_isError(
			ZSTD_CCtx_setParameter(e->zc, ZSTD_c_compressionLevel, level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_checksumFlag, 1)) ||
		    (workers &&
		     ZSTD_isError(ZSTD_CCtx_setParameter(e->zc, ZSTD_c_nbWorkers, workers))))
			goto fail;
	}
	return e;
fail:
	enc_free(e);
	return NULL;
}

/* Appends one regular-file member to e->buf; *data_off is where its bytes start. */
static int enc_member(struct packenc *e, const char *name, const void *data, size_t len,
		      time_t mtime, uint64_t *data_off)
{
	archive_entry_clear(e->entry);
	archive_entry_copy_pathname(e->entry, name);
	archive_entry_set_filetype(e->entry, AE_IFREG);
	archive_entry_set_perm(e->entry, 0644);
	archive_entry_set_size(e->entry, (la_int64_t)len);
	archive_entry_set_mtime(e->entry, mtime, 0);
	if (archive_write_header(e->ar, e->entry) != ARCHIVE_OK)
		return -1;
	*data_off = e->len;
	if (len && archive_write_data(e->ar, data, len) != (la_ssize_t)len)
		return -1;
	return archive_write_finish_entry(e->ar) == ARCHIVE_OK ? 0 : -1;
}

/* Where one output's bytes went, relative to the start of its chunk. */
struct packloc {
	uint64_t off, json_off;
};

/* Encodes key's two members into e->buf (and e->zbuf for tar.zst). */
static int enc_output(struct packenc *e, const char *key, const uint8_t *data, size_t len,
		      const char *json, size_t json_len, struct packloc *loc, struct vherr *err)
{
	char jname[PACK_KEY_MAX + 8];
	time_t now = time(NULL);
	size_t bound, zn;

	e->len = 0;
	snprintf(jname, sizeof(jname), "%s.json", key);
	if (enc_member(e, key, data, len, now, &loc->off) != 0 ||
	    enc_member(e, jname, json, json_len, now, &loc->json_off) != 0) {
		e->broken = 1;
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_WRITE, "cannot encode '%s': %s",
				 key, archive_error_string(e->ar));
	}
	if (!e->zc)
		return 0;
	bound = ZSTD_compressBound(e->len);
	if (bound > e->zcap) {
		uint8_t *b = realloc(e->zbuf, bound);

		if (!b)
			return vherr_set(err, VHERR_NOMEM, VHSTAGE_WRITE, NULL);
		e->zbuf = b;
		e->zcap = bound;
	}
	zn = ZSTD_compress2(e->zc, e->zbuf, e->zcap, e->buf, e->len);
	if (ZSTD_isError(zn))
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_WRITE, "cannot compress '%s': %s",
				 key, ZSTD_getErrorName(zn));
	e->zlen = zn;
	return 0;
}

/* Gives back buffers an unusually large output grew. */
static void enc_trim(struct packenc *e)
{
	if (e->cap > ENC_KEEP_MAX) {
		VH_FREE(e->buf);
		e->cap = 0;
	}
	if (e->zcap > ENC_KEEP_MAX) {
		VH_FREE(e->zbuf);
		e->zcap = 0;
	}
}

/* ---- the keys one writer has added ---- */

/* A set of 64-bit key hashes (XXH3), open addressing, at most half full; 0 marks an
 * empty slot (a hash of 0 is stored as 1). 16 bytes per output at most: 16 MB per
 * million. Two distinct keys share a hash with a probability of about n^2 / 2^65 (3e-8
 * at a million): that output is then refused as a duplicate, visibly, never lost. */
struct keyset {
	uint64_t *v;
	size_t cap, n;
};

static void keyset_put(struct keyset *ks, uint64_t h)
{
	size_t i = (size_t)h & (ks->cap - 1);

	while (ks->v[i])
		i = (i + 1) & (ks->cap - 1);
	ks->v[i] = h;
	ks->n++;
}

/* Adds h: 1 if it was not there, 0 if it was, -1 without memory. */
static int keyset_add(struct keyset *ks, uint64_t h)
{
	h = h ? h : 1;
	if (2 * (ks->n + 1) > ks->cap) {
		struct keyset bigger = {.cap = ks->cap ? 2 * ks->cap : 1024};

		bigger.v = calloc(bigger.cap, sizeof(*bigger.v));
		if (!bigger.v)
			return -1;
		for (size_t i = 0; i < ks->cap; i++)
			if (ks->v[i])
				keyset_put(&bigger, ks->v[i]);
		free(ks->v);
		*ks = bigger;
	}
	for (size_t i = (size_t)h & (ks->cap - 1); ks->v[i]; i = (i + 1) & (ks->cap - 1))
		if (ks->v[i] == h)
			return 0;
	keyset_put(ks, h);
	return 1;
}

/* ---- the writer ---- */

/* One shard being written: owned by the pack while open, then by its publisher. */
struct shard {
	uint64_t seq;
	char name[NAME_MAX_LEN], index[NAME_MAX_LEN]; /* final names */
	char tmp[NAME_MAX_LEN], index_tmp[NAME_MAX_LEN];
	FILE *f, *idx;
	uint64_t bytes, members, data_bytes;
	char *first_key, *last_key;
	size_t last_cap;
};

struct pack {
	struct pack_options opt; /* set at creation; strings point to name and member */
	char *name, *member;	 /* set at creation */
	int dirfd;		 /* set at creation */
	long pid;		 /* set at creation */
	locale_t utf8;		 /* set at creation: libarchive converts names through it */
	uint8_t
	    trailer[TAR_TRAILER]; /* set at creation: what ends a shard (tar.zst: a frame) */
	size_t trailer_len;	  /* set at creation */
	pthread_mutex_t pool_lock;
	struct packenc *pool;	 /* under pool_lock: idle encoders */
	pthread_mutex_t lock;	 /* the append: guards everything below */
	pthread_cond_t idle;	 /* broadcast when publishing drops */
	struct shard *cur;	 /* under lock: the open shard, or NULL */
	uint64_t next_seq;	 /* under lock */
	int publishing;		 /* under lock: shards being published by other threads */
	int closed;		 /* under lock */
	struct keyset keys;	 /* under lock: every key added, to refuse a second */
	int failed;		 /* under lock: the first fatal error's code */
	struct vherr fatal;	 /* under lock */
	pthread_mutex_t cb_lock; /* one on_publish call at a time */
};

/* Records the first fatal error (call under p->lock); returns its negated code. */
static int fail_locked(struct pack *p, const struct vherr *err)
{
	if (!p->failed) {
		p->failed = err->code ? (int)err->code : VHERR_INTERNAL;
		p->fatal = *err;
	}
	return -p->failed;
}

static int write_failed(struct vherr *err, int errnum, const char *what, const char *name)
{
	return vherr_errno(err, errnum ? errnum : EIO, VHSTAGE_WRITE, "cannot %s '%s'", what,
			   name);
}

static void shard_free(struct shard *s)
{
	if (!s)
		return;
	free(s->first_key);
	free(s->last_key);
	free(s);
}

/* Closes and removes an unpublished shard's temporary files, and frees it. */
static void shard_abort(struct pack *p, struct shard *s)
{
	if (!s)
		return;
	if (s->f)
		fclose(s->f);
	if (s->idx)
		fclose(s->idx);
	unlinkat(p->dirfd, s->tmp, 0);
	unlinkat(p->dirfd, s->index_tmp, 0);
	shard_free(s);
}

static FILE *open_temp(struct pack *p, const char *tmp, size_t bufsize)
{
	int fd = openat(p->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	FILE *f = fd < 0 ? NULL : fdopen(fd, "w");

	if (!f && fd >= 0) {
		close(fd);
		unlinkat(p->dirfd, tmp, 0);
	}
	if (f && bufsize)
		setvbuf(f, NULL, _IOFBF, bufsize);
	return f;
}

/* Starts shard p->next_seq under its temporary names (call under p->lock). */
static int shard_start(struct pack *p, struct shard **out, struct vherr *err)
{
	struct shard *s = calloc(1, sizeof(*s));
	int n, rc;

	*out = NULL;
	if (!s)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WRITE, NULL);
	s->seq = p->next_seq;
	n = snprintf(s->name, sizeof(s->name), "%s-%s-%06" PRIu64 ".%s", p->name, p->member,
		     s->seq, pack_format_ext(p->opt.format));
	if (n > 0 && (size_t)n < sizeof(s->name))
		n = snprintf(s->index, sizeof(s->index), "%s%s", s->name, PACK_INDEX_SUFFIX);
	if (n > 0 && (size_t)n < sizeof(s->index))
		n = snprintf(s->tmp, sizeof(s->tmp), ".%s%s%ld", s->name, TMP_MARK, p->pid);
	if (n > 0 && (size_t)n < sizeof(s->tmp))
		n = snprintf(s->index_tmp, sizeof(s->index_tmp), ".%s%s%ld", s->index, TMP_MARK,
			     p->pid);
	if (n <= 0 || (size_t)n >= sizeof(s->index_tmp)) {
		shard_free(s);
		return vherr_set(err, VHERR_USAGE, VHSTAGE_WRITE, "shard name too long");
	}
	s->f = open_temp(p, s->tmp, SHARD_IO_BUF);
	if (s->f)
		s->idx = open_temp(p, s->index_tmp, 0);
	if (!s->f || !s->idx) {
		rc = write_failed(err, errno, "create", s->f ? s->index_tmp : s->tmp);
		shard_abort(p, s);
		return rc;
	}
	p->next_seq++;
	*out = s;
	return 0;
}

/* Remembers key as the shard's last (and maybe first) key. */
static int shard_note_key(struct shard *s, const char *key)
{
	size_t n = strlen(key) + 1;

	if (!s->first_key && !(s->first_key = strdup(key)))
		return -1;
	if (n > s->last_cap) {
		char *b = realloc(s->last_key, n);

		if (!b)
			return -1;
		s->last_key = b;
		s->last_cap = n;
	}
	memcpy(s->last_key, key, n);
	return 0;
}

/* One output's chunk, encoded, ready to append. */
struct chunk {
	const char *key;
	const char *qkey;     /* key as a JSON string, quotes included */
	const uint8_t *bytes; /* the tar bytes, or their frame */
	size_t len;
	size_t size, json_size; /* the output's and its JSON's sizes */
	struct packloc loc;
};

/* Appends c to s and its index line (call under p->lock). */
static int shard_append(struct pack *p, struct shard *s, const struct chunk *c,
			struct vherr *err)
{
	uint64_t base = s->bytes;
	int n;

	if (fwrite(c->bytes, 1, c->len, s->f) != c->len)
		return write_failed(err, errno, "write", s->tmp);
	if (p->opt.format == PACK_TAR_ZST)
		n = fprintf(s->idx,
			    "{\"key\":%s,\"shard\":\"%s\",\"frame_offset\":%" PRIu64
			    ",\"frame_size\":%zu,\"offset\":%" PRIu64 ",\"size\":%zu,"
			    "\"json_offset\":%" PRIu64 ",\"json_size\":%zu}\n",
			    c->qkey, s->name, base, c->len, c->loc.off, c->size,
			    c->loc.json_off, c->json_size);
	else
		n = fprintf(s->idx,
			    "{\"key\":%s,\"shard\":\"%s\",\"offset\":%" PRIu64 ",\"size\":%zu,"
			    "\"json_offset\":%" PRIu64 ",\"json_size\":%zu}\n",
			    c->qkey, s->name, base + c->loc.off, c->size,
			    base + c->loc.json_off, c->json_size);
	if (n < 0)
		return write_failed(err, errno, "write", s->index_tmp);
	if (shard_note_key(s, c->key) != 0)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WRITE, NULL);
	s->bytes += c->len;
	s->members++;
	s->data_bytes += c->size;
	return 0;
}

/* Flushes f to disk and closes it; returns 0 or an errno value. */
static int close_synced(FILE *f)
{
	int rc = 0;

	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = errno ? errno : EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = errno ? errno : EIO;
	return rc;
}

/* Ends s and renames its index and then itself into place (never over an existing
 * file). On failure nothing of s stays visible. */
static int shard_finish(struct pack *p, struct shard *s, struct vherr *err)
{
	int e;

	if (fwrite(p->trailer, 1, p->trailer_len, s->f) != p->trailer_len)
		return write_failed(err, errno, "write", s->tmp);
	s->bytes += p->trailer_len;
	e = close_synced(s->idx);
	s->idx = NULL;
	if (e)
		return write_failed(err, e, "write", s->index_tmp);
	e = close_synced(s->f);
	s->f = NULL;
	if (e)
		return write_failed(err, e, "write", s->tmp);
	if (renameat2(p->dirfd, s->index_tmp, p->dirfd, s->index, RENAME_NOREPLACE) != 0)
		return write_failed(err, errno, "publish", s->index);
	if (renameat2(p->dirfd, s->tmp, p->dirfd, s->name, RENAME_NOREPLACE) != 0) {
		e = errno;
		unlinkat(p->dirfd, s->index, 0);
		return write_failed(err, e, "publish", s->name);
	}
	return 0;
}

/* Makes s's index and then s read-only (live upload): only after the renames, since
 * Valohai uploads a file the moment it turns read-only and must never see a temporary
 * name, and only after the callback, which may write their sidecar metadata first. */
static int shard_release(struct pack *p, struct shard *s, struct vherr *err)
{
	if (fchmodat(p->dirfd, s->index, 0444, 0) != 0 ||
	    fchmodat(p->dirfd, s->name, 0444, 0) != 0)
		return write_failed(err, errno, "make read-only", s->name);
	return 0;
}

/* Publishes s (owned by the caller, not under p->lock) and tells the callback. */
static int shard_publish(struct pack *p, struct shard *s, struct vherr *err)
{
	struct pack_shard info;
	int rc = shard_finish(p, s, err);

	if (rc < 0) {
		shard_abort(p, s);
		return rc;
	}
	info = (struct pack_shard){
	    .name = s->name,
	    .index = s->index,
	    .seq = s->seq,
	    .members = s->members,
	    .bytes = s->bytes,
	    .data_bytes = s->data_bytes,
	    .first_key = s->first_key,
	    .last_key = s->last_key,
	};
	if (p->opt.on_publish) {
		pthread_mutex_lock(&p->cb_lock);
		rc = p->opt.on_publish(p->opt.ctx, &info, err);
		pthread_mutex_unlock(&p->cb_lock);
	}
	if (rc == 0 && p->opt.live_upload)
		rc = shard_release(p, s, err);
	shard_free(s);
	return rc;
}

/* Publishes a shard retired by this thread, and counts it done. */
static int publish_retired(struct pack *p, struct shard *s, struct vherr *err)
{
	struct vherr perr = {0};
	int rc = shard_publish(p, s, &perr);

	pthread_mutex_lock(&p->lock);
	if (rc < 0)
		rc = fail_locked(p, &perr);
	p->publishing--;
	pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
	if (rc < 0 && err)
		*err = perr;
	return rc;
}

/* Appends c to the open shard, first retiring it to *retired when c would not fit. */
static int append_locked(struct pack *p, const struct chunk *c, struct shard **retired,
			 struct vherr *err)
{
	int rc;

	if (p->failed) {
		*err = p->fatal;
		return -p->failed;
	}
	if (p->closed)
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_WRITE,
				 "pack_add after pack_close");
	rc = keyset_add(&p->keys, XXH3_64bits(c->key, strlen(c->key)));
	if (rc < 0)
		return fail_locked(
		    p, &(struct vherr){.code = VHERR_NOMEM, .stage = VHSTAGE_WRITE});
	if (rc == 0)
		return vherr_set(err, VHERR_COLLISION, VHSTAGE_WRITE,
				 "output '%s' is in this pack already (two inputs map to it)",
				 c->key);
	if (p->cur && p->cur->members &&
	    p->cur->bytes + c->len + p->trailer_len > p->opt.shard_size) {
		*retired = p->cur;
		p->cur = NULL;
		p->publishing++;
	}
	if (!p->cur && (rc = shard_start(p, &p->cur, err)) < 0)
		return fail_locked(p, err);
	rc = shard_append(p, p->cur, c, err);
	if (rc < 0) {
		shard_abort(p, p->cur);
		p->cur = NULL;
		return fail_locked(p, err);
	}
	return 0;
}

static struct packenc *enc_get(struct pack *p)
{
	struct packenc *e;

	pthread_mutex_lock(&p->pool_lock);
	e = p->pool;
	if (e)
		p->pool = e->next;
	pthread_mutex_unlock(&p->pool_lock);
	return e ? e : enc_new(p->opt.format, p->opt.zstd_level, p->opt.zstd_workers);
}

static void enc_put(struct pack *p, struct packenc *e)
{
	if (!e)
		return;
	if (e->broken) {
		enc_free(e);
		return;
	}
	enc_trim(e);
	pthread_mutex_lock(&p->pool_lock);
	e->next = p->pool;
	p->pool = e;
	pthread_mutex_unlock(&p->pool_lock);
}

int pack_add(struct pack *p, const char *relout, const uint8_t *data, size_t len,
	     const char *json, size_t json_len, struct vherr *err)
{
	char key[PACK_KEY_MAX];
	struct chunk c = {.key = key, .size = len, .json_size = json_len};
	struct shard *retired = NULL;
	struct packenc *e = NULL;
	json_t *jkey = NULL;
	char *qkey = NULL;
	locale_t old = uselocale(p->utf8);
	int rc;

	if (pack_key(relout, key, sizeof(key)) != 0) {
		rc = vherr_set(
		    err, VHERR_BAD_NAME, VHSTAGE_WRITE,
		    "cannot pack '%s': not a relative file path with an extension, or "
		    "too long",
		    relout);
		goto out;
	}
	jkey = json_string(key);
	qkey = jkey ? json_dumps(jkey, JSON_ENCODE_ANY) : NULL;
	e = enc_get(p);
	if (!qkey || !e) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_WRITE, NULL);
		goto out;
	}
	c.qkey = qkey;
	rc = enc_output(e, key, data, len, json, json_len, &c.loc, err);
	if (rc < 0)
		goto out;
	c.bytes = e->zc ? e->zbuf : e->buf;
	c.len = e->zc ? e->zlen : e->len;
	pthread_mutex_lock(&p->lock);
	rc = append_locked(p, &c, &retired, err);
	pthread_mutex_unlock(&p->lock);
	if (retired) {
		int prc = publish_retired(p, retired, rc < 0 ? NULL : err);

		if (rc == 0)
			rc = prc;
	}
out:
	enc_put(p, e);
	free(qkey);
	json_decref(jkey);
	uselocale(old);
	return rc;
}

int pack_close(struct pack *p, struct vherr *err)
{
	struct shard *s;
	int rc;

	pthread_mutex_lock(&p->lock);
	s = p->cur;
	p->cur = NULL;
	p->closed = 1;
	while (p->publishing)
		pthread_cond_wait(&p->idle, &p->lock);
	if (s && !p->failed)
		p->publishing++;
	rc = -p->failed;
	if (p->failed && err)
		*err = p->fatal;
	pthread_mutex_unlock(&p->lock);
	if (s && rc == 0)
		return publish_retired(p, s, err);
	shard_abort(p, s);
	return rc;
}

void pack_free(struct pack *p)
{
	if (!p)
		return;
	shard_abort(p, p->cur);
	while (p->pool) {
		struct packenc *e = p->pool;

		p->pool = e->next;
		enc_free(e);
	}
	if (p->utf8)
		freelocale(p->utf8);
	if (p->dirfd >= 0)
		close(p->dirfd);
	pthread_mutex_destroy(&p->pool_lock);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->cb_lock);
	pthread_cond_destroy(&p->idle);
	free(p->keys.v);
	free(p->name);
	free(p->member);
	free(p);
}

/* ---- opening ---- */

/* Whether s is usable in a shard name: not empty, not "."-led, no '/', '"', '\\', control
 * characters, and (forbid_dash) no '-'. */
static int name_part_ok(const char *s, int forbid_dash)
{
	if (!*s || *s == '.')
		return 0;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c == 0x7F || *c == '/' || *c == '"' || *c == '\\' ||
		    (forbid_dash && *c == '-'))
			return 0;
	return 1;
}

static int check_options(const struct pack_options *o, struct vherr *err)
{
	if (!o->name || !name_part_ok(o->name, 0))
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE, "invalid shard name '%s'",
				 o->name ? o->name : "");
	if (!o->member || !name_part_ok(o->member, 1))
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE, "invalid shard member '%s'",
				 o->member ? o->member : "");
	if (o->shard_size && o->shard_size < PACK_SHARD_SIZE_MIN)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "shard size %" PRIu64 " is below the minimum of %llu bytes",
				 o->shard_size, PACK_SHARD_SIZE_MIN);
	if (o->format == PACK_TAR_ZST &&
	    (o->zstd_level < 0 || o->zstd_level > ZSTD_maxCLevel()))
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "zstd level %d is not in 1..%d", o->zstd_level,
				 ZSTD_maxCLevel());
	if (o->zstd_workers < 0 || o->zstd_workers > 256)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "zstd workers %d not in 0..256", o->zstd_workers);
	return 0;
}

/* Raises p->next_seq past every shard and index seen; removes dead processes' temps. */
static int seen_name(void *ctx, const char *fname, const struct shard_name *sn)
{
	struct pack *p = ctx;

	if (sn->tmp_pid > 0) {
		if (kill((pid_t)sn->tmp_pid, 0) != 0 && errno == ESRCH)
			unlinkat(p->dirfd, fname, 0);
		return 0;
	}
	if (sn->seq >= p->next_seq)
		p->next_seq = sn->seq + 1;
	return 0;
}

/* The bytes that end a shard: two zero blocks (tar.zst: compressed as one frame). */
static int make_trailer(struct pack *p, struct vherr *err)
{
	static const uint8_t zeros[TAR_TRAILER];
	size_t n;

	if (p->opt.format == PACK_TAR) {
		p->trailer_len = TAR_TRAILER; /* p->trailer is zeroed */
		return 0;
	}
	n = ZSTD_compress(p->trailer, sizeof(p->trailer), zeros, sizeof(zeros),
			  p->opt.zstd_level);
	if (ZSTD_isError(n))
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_NONE, "zstd: %s",
				 ZSTD_getErrorName(n));
	p->trailer_len = n;
	return 0;
}

int pack_open(const char *dir, const struct pack_options *opt, struct pack **out,
	      struct vherr *err)
{
	struct pack *p;
	int rc;

	*out = NULL;
	if ((rc = check_options(opt, err)) < 0)
		return rc;
	p = calloc(1, sizeof(*p));
	if (!p)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WRITE, NULL);
	pthread_mutex_init(&p->pool_lock, NULL);
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->cb_lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->opt = *opt;
	p->dirfd = -1;
	p->pid = (long)getpid();
	p->next_seq = 1;
	if (!p->opt.shard_size)
		p->opt.shard_size = PACK_SHARD_SIZE_DEFAULT;
	if (!p->opt.zstd_level)
		p->opt.zstd_level = PACK_ZSTD_LEVEL_DEFAULT;
	p->name = strdup(opt->name);
	p->member = strdup(opt->member);
	/* libarchive converts member names from the current locale to the UTF-8 of pax
	 * headers; keys are UTF-8, so it converts under C.UTF-8, set per thread */
	p->utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (!p->name || !p->member || !p->utf8) {
		rc = vherr_set(err, p->utf8 ? VHERR_NOMEM : VHERR_INTERNAL, VHSTAGE_WRITE,
			       p->utf8 ? NULL : "cannot load the C.UTF-8 locale");
		goto fail;
	}
	p->opt.name = p->name;
	p->opt.member = p->member;
	if ((rc = make_trailer(p, err)) < 0)
		goto fail;
	p->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0) {
		rc = vherr_errno(err, errno, VHSTAGE_WRITE, "cannot open '%s'", dir);
		goto fail;
	}
	rc = shard_names_each(p->dirfd, p->name, p->member, seen_name, p);
	if (rc < 0) {
		rc = vherr_errno(err, -rc, VHSTAGE_WRITE, "cannot list '%s'", dir);
		goto fail;
	}
	*out = p;
	return 0;
fail:
	pack_free(p);
	return rc;
}

/* ---- scanning ---- */

struct scan {
	uint64_t next_seq;
	struct scan_shard {
		uint64_t seq;
		char name[NAME_MAX_LEN];
	} * v;
	size_t n, cap;
};

static int scan_seen(void *ctx, const char *fname, const struct shard_name *sn)
{
	struct scan *sc = ctx;

	if (sn->tmp_pid > 0)
		return 0;
	if (sn->seq >= sc->next_seq)
		sc->next_seq = sn->seq + 1;
	if (sn->index)
		return 0;
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? 2 * sc->cap : 16;
		struct scan_shard *v = realloc(sc->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		sc->v = v;
		sc->cap = cap;
	}
	sc->v[sc->n].seq = sn->seq;
	snprintf(sc->v[sc->n].name, sizeof(sc->v[sc->n].name), "%s", fname);
	sc->n++;
	return 0;
}

static int scan_order(const void *a, const void *b)
{
	const struct scan_shard *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Calls fn for each key of shard's index. */
static int scan_index(int dirfd, const char *shard, pack_scan_fn fn, void *ctx,
		      struct vherr *err)
{
	char index[NAME_MAX_LEN + sizeof(PACK_INDEX_SUFFIX)], *line = NULL;
	size_t cap = 0;
	int fd, rc = 0;
	FILE *f;
	uint64_t lineno = 0;

	snprintf(index, sizeof(index), "%s%s", shard, PACK_INDEX_SUFFIX);
	fd = openat(dirfd, index, O_RDONLY | O_CLOEXEC);
	f = fd < 0 ? NULL : fdopen(fd, "r");
	if (!f) {
		rc = vherr_errno(err, errno, VHSTAGE_RECORD, "cannot read the index of '%s'",
				 shard);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	while (rc == 0 && getline(&line, &cap, f) > 0) {
		json_t *o = json_loads(line, 0, NULL);
		const char *key = json_string_value(json_object_get(o, "key"));

		lineno++;
		if (!key)
			rc = vherr_set(err, VHERR_IO, VHSTAGE_RECORD,
				       "damaged index '%s': line %" PRIu64 " has no key", index,
				       lineno);
		else if (fn)
			rc = fn(ctx, key, shard);
		json_decref(o);
	}
	if (rc == 0 && ferror(f))
		rc = vherr_errno(err, EIO, VHSTAGE_RECORD, "cannot read '%s'", index);
	free(line);
	fclose(f);
	return rc;
}

int pack_scan(const char *dir, const char *name, const char *member, pack_scan_fn fn, void *ctx,
	      uint64_t *next_seq, struct vherr *err)
{
	struct scan sc = {.next_seq = 1};
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (dirfd < 0 && errno != ENOENT)
		return vherr_errno(err, errno, VHSTAGE_RECORD, "cannot open '%s'", dir);
	if (dirfd >= 0) {
		rc = shard_names_each(dirfd, name, member, scan_seen, &sc);
		if (rc < 0)
			rc = vherr_errno(err, -rc, VHSTAGE_RECORD, "cannot list '%s'", dir);
	}
	if (sc.n)
		qsort(sc.v, sc.n, sizeof(*sc.v), scan_order);
	for (size_t i = 0; rc == 0 && i < sc.n; i++)
		rc = scan_index(dirfd, sc.v[i].name, fn, ctx, err);
	if (rc == 0 && next_seq)
		*next_seq = sc.next_seq;
	free(sc.v);
	if (dirfd >= 0)
		close(dirfd);
	return rc;
}
