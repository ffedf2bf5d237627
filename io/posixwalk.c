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

static void emit_file(struct walk *w, const char *relpath)
{
	struct source_entry e = {.relpath = relpath};

	if (w->emit(w->ctx, &e) == SOURCE_STOP)
		atomic_store(w->stop, 1);
}

/* Resolves a DT_LNK or DT_UNKNOWN entry to the type that decides what we do with it. */
static unsigned char resolve_type(int dfd, const char *name, unsigned char type)
{
	struct stat st;

	if (type == DT_UNKNOWN) {
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			return DT_UNKNOWN;
		if (S_ISREG(st.st_mode))
			return DT_REG;
		if (S_ISDIR(st.st_mode))
			return DT_DIR;
		if (!S_ISLNK(st.st_mode))
			return DT_UNKNOWN;
	}
	/* a symlink: what it points to decides */
	if (fstatat(dfd, name, &st, 0) != 0)
		return DT_UNKNOWN;
	if (S_ISREG(st.st_mode))
		return DT_REG;
	return S_ISDIR(st.st_mode) ? DT_LNK : DT_UNKNOWN;
}

static void visit_entry(struct walk *w, int dfd, const char *dirrel,
			const struct dirent *de)
{
	char path[PATH_MAX];
	unsigned char type = de->d_type;
	struct walkdir *d;
	struct vherr err;

	if (type == DT_LNK || type == DT_UNKNOWN)
		type = resolve_type(dfd, de->d_name, type);
	if (!join(path, sizeof(path), dirrel, de->d_name)) {
		vherr_set(&err, VHERR_BAD_NAME, VHSTAGE_WALK, "path too long");
		walk_report(w, dirrel, &err);
		return;
	}
	switch (type) {
	case DT_REG:
		emit_file(w, path);
		break;
	case DT_DIR:
		d = walkdir_new(dirrel, de->d_name);
		if (!d) {
			vherr_set(&err, VHERR_NOMEM, VHSTAGE_WALK, NULL);
			walk_fail(w, &err);
			return;
		}
		walk_push(w, d);
		break;
	case DT_LNK:
		atomic_fetch_add(&w->stats->skipped_links, 1);
		break;
	default:
		atomic_fetch_add(&w->stats->skipped_other, 1);
	}
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
