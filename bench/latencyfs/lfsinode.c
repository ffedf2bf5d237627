#include "bench/latencyfs/lfsinode.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct lfsinode_table {
	pthread_mutex_t lock;
	struct lfsinode root; /* pinned; fd set at creation */
	int mount_fd;	      /* set at creation: the root, O_RDONLY, for open_by_handle_at */
	dev_t mount_dev;      /* set at creation: handles are kept for objects on it */
	unsigned bits;	      /* set at creation */
	struct lfsinode **buckets; /* set at creation, chains under lock */
};

static size_t bucket_of(const struct lfsinode_table *t, dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)ino ^ ((uint64_t)dev << 32)) * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> (64 - t->bits));
}

struct lfsinode_table *lfsinode_table_new(int rootfd, unsigned bits)
{
	struct lfsinode_table *t = calloc(1, sizeof(*t));
	struct stat st;

	if (!t)
		return NULL;
	t->bits = bits < 1 ? 1 : bits > 30 ? 30 : bits;
	t->buckets = calloc((size_t)1 << t->bits, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		return NULL;
	}
	t->mount_fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->mount_fd >= 0 && fstat(t->mount_fd, &st) == 0)
		t->mount_dev = st.st_dev;
	else if (t->mount_fd >= 0)
		close(t->mount_fd), t->mount_fd = -1;
	if (t->mount_fd < 0) {
		free(t->buckets);
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->root.fd = rootfd;
	t->root.nlookup = 1;
	return t;
}

void lfsinode_table_free(struct lfsinode_table *t)
{
	struct lfsinode *e, *next;

	if (!t)
		return;
	for (size_t i = 0; i < ((size_t)1 << t->bits); i++) {
		for (e = t->buckets[i]; e; e = next) {
			next = e->next;
			if (e->fd >= 0)
				close(e->fd);
			free(e->fh);
			free(e);
		}
	}
	close(t->root.fd);
	close(t->mount_fd);
	pthread_mutex_destroy(&t->lock);
	free(t->buckets);
	free(t);
}

struct lfsinode *lfsinode_root(struct lfsinode_table *t)
{
	return &t->root;
}

static struct lfsinode *find_locked(struct lfsinode_table *t, dev_t dev, ino_t ino)
{
	struct lfsinode *e = t->buckets[bucket_of(t, dev, ino)];

	while (e && (e->dev != dev || e->ino != ino))
		e = e->next;
	return e;
}

/* The handle of the object at fd, or NULL (no memory, or a filesystem without handles:
 * the entry then keeps fd). */
static struct file_handle *handle_of(int fd)
{
	struct file_handle *fh = malloc(sizeof(*fh) + MAX_HANDLE_SZ);
	int mount_id;

	if (!fh)
		return NULL;
	fh->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(fd, "", fh, &mount_id, AT_EMPTY_PATH) < 0) {
		free(fh);
		return NULL;
	}
	return fh;
}

static struct lfsinode *add_locked(struct lfsinode_table *t, int fd, const struct stat *st)
{
	struct lfsinode *e = calloc(1, sizeof(*e));
	size_t b = bucket_of(t, st->st_dev, st->st_ino);

	if (!e)
		return NULL;
	if (!S_ISDIR(st->st_mode) && st->st_dev == t->mount_dev && (e->fh = handle_of(fd))) {
		close(fd);
		fd = -1;
	}
	e->fd = fd;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->next = t->buckets[b];
	t->buckets[b] = e;
	return e;
}

int lfsinode_ref(struct lfsinode_table *t, int fd, const struct stat *st, struct lfsinode **out)
{
	struct lfsinode *e;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	e = find_locked(t, st->st_dev, st->st_ino);
	if (e) {
		close(fd);
	} else {
		e = add_locked(t, fd, st);
		if (!e) {
			close(fd);
			rc = -ENOMEM;
			goto out;
		}
	}
	e->nlookup++;
	*out = e;
out:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static void unlink_locked(struct lfsinode_table *t, struct lfsinode *e)
{
	struct lfsinode **pp = &t->buckets[bucket_of(t, e->dev, e->ino)];

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
}

void lfsinode_unref(struct lfsinode_table *t, struct lfsinode *e, uint64_t n)
{
	int gone = 0;

	if (e == &t->root)
		return;
	pthread_mutex_lock(&t->lock);
	e->nlookup = n >= e->nlookup ? 0 : e->nlookup - n;
	if (e->nlookup == 0) {
		unlink_locked(t, e);
		gone = 1;
	}
	pthread_mutex_unlock(&t->lock);
	if (gone) {
		if (e->fd >= 0)
			close(e->fd);
		free(e->fh);
		free(e);
	}
}

int lfsinode_open(struct lfsinode_table *t, const struct lfsinode *e, int flags)
{
	char proc[64];

	if (e->fd < 0)
		return open_by_handle_at(t->mount_fd, e->fh, flags | O_CLOEXEC);
	if (flags == O_PATH)
		return fcntl(e->fd, F_DUPFD_CLOEXEC, 0);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", e->fd);
	return open(proc, flags | O_CLOEXEC);
}
