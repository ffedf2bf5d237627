/* lfsinode: latencyfs' inode table. One entry per source object the kernel holds (looked
 * up and not yet forgotten), keyed by the source's (st_dev, st_ino), with the kernel's
 * lookup count. A directory keeps an O_PATH fd (lookups and listings start there); any
 * other object keeps only its file handle (name_to_handle_at) and is opened by it when
 * needed, so that a mount whose kernel holds 100k+ inodes (readdirplus looks every
 * listed entry up) does not hold 100k+ fds: the process may have 20,000. The root entry
 * is pinned. One mutex guards the table; it is held only to find, add or drop an entry,
 * never during I/O. */
#ifndef VHPREP_BENCH_LFSINODE_H
#define VHPREP_BENCH_LFSINODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct lfsinode {
	struct lfsinode *next;	/* hash chain, under the table lock */
	int fd;			/* O_PATH|O_NOFOLLOW of the source object, or -1 when the
				   object is opened by fh; set at creation */
	struct file_handle *fh; /* the object's handle when fd is -1; set at creation */
	dev_t dev;		/* set at creation */
	ino_t ino;		/* set at creation */
	uint64_t nlookup;	/* the kernel's lookup count, under the table lock */
};

struct lfsinode_table;

/* Returns a table whose pinned root owns rootfd (an O_PATH fd of the source directory;
 * the table opens the directory once more to open file handles on its filesystem),
 * with 2^bits hash buckets (a fixed size: chains grow past ~2^bits entries), or NULL on
 * allocation failure (rootfd is then still the caller's). */
struct lfsinode_table *lfsinode_table_new(int rootfd, unsigned bits);
/* Frees t, closing every fd it holds; t may be NULL. No thread may use t any more. */
void lfsinode_table_free(struct lfsinode_table *t);
/* Returns the pinned root entry; it lives as long as t. Any thread. */
struct lfsinode *lfsinode_root(struct lfsinode_table *t);
/* Finds the entry of (st->st_dev, st->st_ino) or adds one owning fd, and adds one kernel
 * lookup to it. Always consumes fd (closed when an entry already exists). Stores the entry
 * in *out (valid until its lookups are dropped) and returns 0, or -ENOMEM. Any thread. */
int lfsinode_ref(struct lfsinode_table *t, int fd, const struct stat *st,
		 struct lfsinode **out);
/* Returns a new fd of e opened with flags (O_PATH, or O_RDONLY for a read) that the
 * caller closes, or -1 with errno set. Any thread. */
int lfsinode_open(struct lfsinode_table *t, const struct lfsinode *e, int flags);
/* Drops n kernel lookups from e (never the root's); frees e and closes its fd at zero.
 * Any thread. */
void lfsinode_unref(struct lfsinode_table *t, struct lfsinode *e, uint64_t n);

#endif
