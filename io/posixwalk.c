#include "io/posixwalk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A directory waiting to be listed; relpath "" is the root. */
struct walkdir {
	struct walkdir *next;
	char relpath[];
};

struct walk {
	int rootfd;                  /* set at creation */
	char root_real[PATH_MAX];    /* set at creation: the root, resolved */
	atomic_int *stop;            /* set at creation; any thread may raise it */
	source_emit_fn emit;         /* set at creation */
	void *ctx;                   /* set at creation */
	void (*on_error)(void *, const char *, const struct vherr *);
	struct posixwalk_stats *stats; /* set at creation, atomics */
	struct oplat *lat;           /* set at creation, may be NULL */
	pthread_mutex_t lock;
	pthread_cond_t changed;      /* signalled on push and when a listing ends */
	pthread_cond_t idle;         /* signalled when nothing is left and nobody lists */
	struct walkdir *stack;       /* under lock: LIFO keeps the pending set small */
	int active;                  /* under lock: directories being listed */
	int failed;                  /* under lock: root unlistable or out of memory */
	struct vherr err;            /* under lock: the failure, when failed */
};

static struct walkdir *walkdir_new(const char *parent, const char *name)
{
	size_t plen = strlen(parent), nlen = strlen(name);
	struct walkdir *d = malloc(sizeof(*d) + plen + nlen + 2);

	if (!d)
		return NULL;
	if (plen) {
		memcpy(d->relpath, parent, plen);
		d->relpath[plen] = '/';
		memcpy(d->relpath + plen + 1, name, nlen + 1);
	} else {
		memcpy(d->relpath, name, nlen + 1);
	}
	d->next = NULL;
	return d;
}

static void walk_push(struct walk *w, struct walkdir *d)
{
	pthread_mutex_lock(&w->lock);
	d->next = w->stack;
	w->stack = d;
	pthread_cond_signal(&w->changed);
	pthread_mutex_unlock(&w->lock);
}

static void walk_fail(struct walk *w, const struct vherr *err)
{
	pthread_mutex_lock(&w->lock);
	if (!w->failed) {
		w->failed = 1;
		w->err = *err;
	}
	pthread_mutex_unlock(&w->lock);
	atomic_store(w->stop, 1);
}

static void walk_report(struct walk *w, const char *relpath, const struct vherr *err)
{
	if (relpath[0] == '\0')
		walk_fail(w, err);
	else if (w->on_error)
		w->on_error(w->ctx, relpath, err);
}

/* Joins parent and name into buf; returns buf, or NULL if it does not fit. */
static char *join(char *buf, size_t size, const char *parent, const char *name)
{
	int n = parent[0] ? snprintf(buf, size, "%s/%s", parent, name)
			  : snprintf(buf, size, "%s", name);

	return n < 0 || (size_t)n >= size ? NULL : buf;
}

static void emit_entry(struct walk *w, const char *relpath, enum source_kind kind)
{
	struct source_entry e = {.relpath = relpath, .kind = kind};

	if (w->emit(w->ctx, &e) == SOURCE_STOP)
		atomic_store(w->stop, 1);
}

/* Whether relpath (a symlink to a file) resolves inside the root. realpath(3) reads
 * links, it opens nothing. */
static int inside_root(struct walk *w, const char *relpath)
{
	char probe[PATH_MAX + 32], real[PATH_MAX];
	int n = snprintf(probe, sizeof(probe), "/proc/self/fd/%d/%s", w->rootfd, relpath);

	return n > 0 && (size_t)n < sizeof(probe) && realpath(probe, real) &&
	       posixwalk_within(real, w->root_real);
}

/* The kind of a mode from stat; a directory is SOURCE_KIND__COUNT (to be listed). */
static enum source_kind kind_of_mode(mode_t mode)
{
	if (S_ISREG(mode))
		return SOURCE_KIND_FILE;
	if (S_ISDIR(mode))
		return SOURCE_KIND__COUNT;
	if (S_ISFIFO(mode))
		return SOURCE_KIND_FIFO;
	if (S_ISSOCK(mode))
		return SOURCE_KIND_SOCKET;
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return SOURCE_KIND_DEVICE;
	return SOURCE_KIND_OTHER;
}

/* What a symlink leads to: a file inside the root, or a kind that is skipped. */
static enum source_kind kind_of_link(struct walk *w, int dfd, const char *name,
				     const char *relpath)
{
	struct stat st;
	enum source_kind k;

	if (fstatat(dfd, name, &st, 0) != 0)
		return errno == ELOOP ? SOURCE_KIND_LOOP
		       : errno == ENOENT || errno == ENOTDIR ? SOURCE_KIND_DANGLING
							     : SOURCE_KIND_OTHER;
	k = kind_of_mode(st.st_mode);
	if (k == SOURCE_KIND__COUNT)
		return SOURCE_KIND_LINK_DIR;
	if (k == SOURCE_KIND_FILE && !inside_root(w, relpath))
		return SOURCE_KIND_OUTSIDE;
	return k;
}

/* The kind of a directory entry (SOURCE_KIND__COUNT: a directory to list). */
static enum source_kind classify(struct walk *w, int dfd, const struct dirent *de,
				 const char *relpath)
{
	struct stat st;

	switch (de->d_type) {
	case DT_REG:
		return SOURCE_KIND_FILE;
	case DT_DIR:
		return SOURCE_KIND__COUNT;
	case DT_FIFO:
		return SOURCE_KIND_FIFO;
	case DT_SOCK:
		return SOURCE_KIND_SOCKET;
	case DT_CHR:
	case DT_BLK:
		return SOURCE_KIND_DEVICE;
	case DT_LNK:
		return kind_of_link(w, dfd, de->d_name, relpath);
	default: /* DT_UNKNOWN: some filesystems never fill d_type */
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return SOURCE_KIND_OTHER;
		if (S_ISLNK(st.st_mode))
			return kind_of_link(w, dfd, de->d_name, relpath);
		return kind_of_mode(st.st_mode);
	}
}

static void visit_entry(struct walk *w, int dfd, const char *dirrel,
			const struct dirent *de)
{
	char path[PATH_MAX];
	enum source_kind kind;
	struct walkdir *d;
	struct vherr err;

	if (!join(path, sizeof(path), dirrel, de->d_name)) {
		vherr_set(&err, VHERR_BAD_NAME, VHSTAGE_WALK, "path too long");
		walk_report(w, dirrel, &err);
		return;
	}
	kind = classify(w, dfd, de, path);
	if (kind != SOURCE_KIND__COUNT) {
		if (kind != SOURCE_KIND_FILE)
			atomic_fetch_add(&w->stats->skipped, 1);
		emit_entry(w, path, kind);
		return;
	}
	d = walkdir_new(dirrel, de->d_name);
	if (!d) {
		vherr_set(&err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
		walk_fail(w, &err);
		return;
	}
	walk_push(w, d);
}

/* readdir, adding the time it took to *spent when latencies are measured. */
static struct dirent *timed_readdir(struct walk *w, DIR *dir, uint64_t *spent)
{
	uint64_t t0 = w->lat ? oplat_now() : 0;
	struct dirent *de = readdir(dir);

	if (w->lat)
		*spent += oplat_now() - t0;
	return de;
}

/* Lists one directory. Its OPLAT_DIR latency is the time spent opening and reading
 * it, not the time its files waited in emit (back-pressure). */
static void list_dir(struct walk *w, const char *relpath)
{
	const char *open_path = relpath[0] ? relpath : ".";
	uint64_t t0 = w->lat ? oplat_now() : 0, spent = 0;
	struct vherr err;
	struct dirent *de;
	DIR *dir;
	int fd;

	fd = openat(w->rootfd, open_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || !(dir = fdopendir(fd))) {
		vherr_errno(&err, errno, VHSTAGE_WALK, "cannot list '%s'", open_path);
		if (fd >= 0)
			close(fd);
		walk_report(w, relpath, &err);
		return;
	}
	if (w->lat)
		spent = oplat_now() - t0;
	atomic_fetch_add(&w->stats->dirs, 1);
	for (errno = 0; !atomic_load(w->stop) && (de = timed_readdir(w, dir, &spent));
	     errno = 0) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		visit_entry(w, dirfd(dir), relpath, de);
	}
	if (errno) {
		vherr_errno(&err, errno, VHSTAGE_WALK, "cannot list '%s'", open_path);
		walk_report(w, relpath, &err);
	}
	closedir(dir);
	oplat_record(w->lat, OPLAT_DIR, spent);
}

/* Takes the next directory, or NULL when the walk is over (stopped, or nothing left
 * and nobody listing). */
static struct walkdir *walk_take(struct walk *w)
{
	struct walkdir *d = NULL;

	pthread_mutex_lock(&w->lock);
	while (!w->stack && w->active > 0 && !atomic_load(w->stop))
		pthread_cond_wait(&w->changed, &w->lock);
	if (w->stack && !atomic_load(w->stop)) {
		d = w->stack;
		w->stack = d->next;
		w->active++;
	} else {
		pthread_cond_broadcast(&w->changed);
	}
	pthread_mutex_unlock(&w->lock);
	return d;
}

static void walk_done(struct walk *w)
{
	pthread_mutex_lock(&w->lock);
	w->active--;
	if (w->active == 0)
		pthread_cond_broadcast(&w->changed);
	if (w->active == 0 && !w->stack)
		pthread_cond_broadcast(&w->idle);
	pthread_mutex_unlock(&w->lock);
}

static void *walker_main(void *arg)
{
	struct walk *w = arg;
	struct walkdir *d;

	while ((d = walk_take(w))) {
		list_dir(w, d->relpath);
		free(d);
		walk_done(w);
	}
	return NULL;
}

/* Waits until the walk is over, checking every 50 ms for a stop raised from outside
 * (which nothing signals), and wakes the walkers blocked in walk_take then. */
static void watch(struct walk *w)
{
	struct timespec deadline;

	pthread_mutex_lock(&w->lock);
	while ((w->active > 0 || w->stack) && !atomic_load(w->stop)) {
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 50 * 1000 * 1000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&w->idle, &w->lock, &deadline);
	}
	pthread_cond_broadcast(&w->changed);
	pthread_mutex_unlock(&w->lock);
}

int posixwalk_root_real(int rootfd, char *buf, size_t size)
{
	char probe[64];
	char real[PATH_MAX];

	snprintf(probe, sizeof(probe), "/proc/self/fd/%d", rootfd);
	if (!realpath(probe, real))
		return -1;
	if (strlen(real) >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, real);
	return 0;
}

int posixwalk_within(const char *path, const char *root)
{
	size_t n = strlen(root);

	if (strcmp(root, "/") == 0)
		return 1;
	return strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static void free_stack(struct walkdir *d)
{
	while (d) {
		struct walkdir *next = d->next;
		free(d);
		d = next;
	}
}

int posixwalk_run(int rootfd, int nwalkers, atomic_int *stop, source_emit_fn emit,
		  void *ctx,
		  void (*on_error)(void *ctx, const char *relpath, const struct vherr *err),
		  struct posixwalk_stats *stats, struct oplat *lat, struct vherr *err)
{
	struct posixwalk_stats local_stats = {0};
	struct walk w = {.rootfd = rootfd, .stop = stop, .emit = emit, .ctx = ctx,
			 .on_error = on_error, .stats = stats ? stats : &local_stats,
			 .lat = lat};
	pthread_t *threads;
	int started = 0, rc = 0;

	if (posixwalk_root_real(rootfd, w.root_real, sizeof(w.root_real)) < 0)
		return vherr_errno(err, errno, VHSTAGE_WALK, "cannot resolve the source root");

	if (nwalkers < 1)
		nwalkers = 1;
	threads = calloc((size_t)nwalkers, sizeof(*threads));
	w.stack = walkdir_new("", "");
	if (!threads || !w.stack) {
		free(threads);
		free(w.stack);
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
	}
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.changed, NULL);
	pthread_cond_init(&w.idle, NULL);
	for (; started < nwalkers; started++)
		if (pthread_create(&threads[started], NULL, walker_main, &w) != 0)
			break;
	if (started == 0)
		walker_main(&w);
	watch(&w);
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	if (w.failed) {
		if (err)
			*err = w.err;
		rc = -(int)w.err.code;
	}
	free_stack(w.stack);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.changed);
	pthread_cond_destroy(&w.idle);
	free(threads);
	return rc;
}
