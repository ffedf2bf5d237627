/* Why the low-level API: requests name inodes, not paths, so a lookup is one request
 * answered from a kept O_PATH fd (like an NFS file handle) instead of a path walk on every
 * call; each reply carries its own attr/entry timeouts (NFS actimeo, negative entries
 * included); readdirplus answers a whole directory page with attributes in one request
 * (NFS READDIRPLUS); and the multithreaded session loop takes an explicit thread cap. */
#include "bench/latencyfs/lfsops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bench/latencyfs/lfsbdi.h"
#include "bench/latencyfs/lfsdelay.h"
#include "bench/latencyfs/lfsinitfix.h"
#include "bench/latencyfs/lfsinode.h"

#define LFS_HASH_BITS 16

struct lfsops {
	struct lfsops_config cfg;      /* set at creation (cfg.src not kept) */
	struct lfsinode_table *inodes; /* set at creation, thread-safe */
	struct lfsdelay delay;	       /* set at creation, thread-safe */
	struct lfsstats stats;	       /* atomic */
	char bdi_path[128];	       /* set before the loop starts */
	atomic_int bdi_pending;	       /* 1 until the first request applies readahead_kb */
	struct lfsinitfix initfix;     /* device I/O hooks, thread-safe */
};

/* One open directory: the kernel serialises requests on one directory handle. */
struct lfsdir {
	DIR *dp;
	off_t offset;	      /* position after the last entry sent */
	struct dirent *entry; /* read but not yet sent (did not fit), or NULL */
};

static struct lfsops *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct lfsinode *inode_of(struct lfsops *fs, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return lfsinode_root(fs->inodes);
	return (struct lfsinode *)(uintptr_t)ino;
}

/* Runs once, in the first request after INIT (see lfsops_set_bdi). */
static void apply_readahead(struct lfsops *fs)
{
	char err[256];

	if (!atomic_load_explicit(&fs->bdi_pending, memory_order_relaxed) ||
	    !atomic_exchange(&fs->bdi_pending, 0))
		return;
	if (lfsbdi_set_readahead(fs->bdi_path, fs->cfg.readahead_kb, err, sizeof(err)) < 0)
		fprintf(stderr, "latencyfs: %s\n", err);
}

/* Counts a request of kind op that costs no round trip; returns the filesystem. */
static struct lfsops *serve_free(fuse_req_t req, enum lfsstat op)
{
	struct lfsops *fs = fs_of(req);

	apply_readahead(fs);
	lfsstats_add(&fs->stats, op, 1);
	return fs;
}

static void round_trip(struct lfsops *fs)
{
	lfsstats_add(&fs->stats, LFSSTAT_ROUND_TRIPS, 1);
	lfsdelay_wait(&fs->delay);
}

/* Counts a request of kind op, then sleeps one round trip; returns the filesystem. */
static struct lfsops *serve(fuse_req_t req, enum lfsstat op)
{
	struct lfsops *fs = serve_free(req, op);

	round_trip(fs);
	return fs;
}

static void deny(fuse_req_t req)
{
	serve_free(req, LFSSTAT_DENIED);
	fuse_reply_err(req, EROFS);
}

static int stat_fd(int fd, struct stat *st)
{
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* ---- init ------------------------------------------------------------------------ */

static void want(struct fuse_conn_info *conn, unsigned cap)
{
	if (conn->capable & cap)
		conn->want |= cap;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct lfsops *fs = userdata;

	want(conn, FUSE_CAP_READDIRPLUS);
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO; /* always plus, like an NFS walk */
	want(conn, FUSE_CAP_PARALLEL_DIROPS);
	want(conn, FUSE_CAP_ASYNC_READ);
	want(conn, FUSE_CAP_CACHE_SYMLINKS);
	want(conn, FUSE_CAP_AUTO_INVAL_DATA);
	if (fs->cfg.readahead_kb && conn->max_readahead > fs->cfg.readahead_kb * 1024u)
		conn->max_readahead = fs->cfg.readahead_kb * 1024u;
	/* Readahead reads are background requests: the kernel's default cap (12) would
	 * serialise parallel readers long before the threads run out. */
	conn->max_background = fs->cfg.threads;
	conn->congestion_threshold = fs->cfg.threads * 3 / 4 ? fs->cfg.threads * 3 / 4 : 1;
}

/* ---- names and attributes ------------------------------------------------------- */

static void entry_init(struct lfsops *fs, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->attr_timeout = fs->cfg.attr_timeout;
	e->entry_timeout = fs->cfg.entry_timeout;
}

/* Looks name up in parent and fills e, adding one kernel lookup to the inode. */
static int lookup_entry(struct lfsops *fs, struct lfsinode *parent, const char *name,
			struct fuse_entry_param *e)
{
	struct lfsinode *inode;
	int fd, rc;

	entry_init(fs, e);
	fd = openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = stat_fd(fd, &e->attr);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	rc = lfsinode_ref(fs->inodes, fd, &e->attr, &inode);
	if (rc < 0)
		return rc;
	e->ino = (fuse_ino_t)(uintptr_t)inode;
	return 0;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct lfsops *fs = serve(req, LFSSTAT_LOOKUP);
	struct fuse_entry_param e;
	int rc = lookup_entry(fs, inode_of(fs, parent), name, &e);

	if (rc == -ENOENT) {
		entry_init(fs, &e); /* ino 0: a cached negative entry, like NFS */
		fuse_reply_entry(req, &e);
	} else if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else if (fuse_reply_entry(req, &e) != 0) {
		lfsinode_unref(fs->inodes, inode_of(fs, e.ino), 1);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct lfsops *fs = serve_free(req, LFSSTAT_FORGET);

	lfsinode_unref(fs->inodes, inode_of(fs, ino), nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct lfsops *fs = serve_free(req, LFSSTAT_FORGET);

	for (size_t i = 0; i < count; i++)
		lfsinode_unref(fs->inodes, inode_of(fs, forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lfsops *fs = serve(req, LFSSTAT_GETATTR);
	struct stat st;
	int fd = lfsinode_open(fs->inodes, inode_of(fs, ino), O_PATH);
	int rc = fd < 0 ? -errno : stat_fd(fd, &st);

	(void)fi;
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, fs->cfg.attr_timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct lfsops *fs = serve(req, LFSSTAT_READLINK);
	char buf[PATH_MAX + 1];
	int fd = lfsinode_open(fs->inodes, inode_of(fs, ino), O_PATH);
	ssize_t n = fd < 0 ? -1 : readlinkat(fd, "", buf, sizeof(buf));

	if (n < 0) {
		fuse_reply_err(req, errno);
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	if ((size_t)n == sizeof(buf)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct lfsops *fs = serve(req, LFSSTAT_STATFS);
	struct statvfs sv;
	int fd = lfsinode_open(fs->inodes, inode_of(fs, ino), O_PATH);

	if (fd < 0 || fstatvfs(fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
	if (fd >= 0)
		close(fd);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	(void)ino;
	serve(req, LFSSTAT_ACCESS);
	fuse_reply_err(req, (mask & W_OK) ? EROFS : 0);
}

/* ---- files ------------------------------------------------------------------------ */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lfsops *fs;
	int fd;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		deny(req);
		return;
	}
	fs = serve(req, LFSSTAT_OPEN);
	fd = lfsinode_open(fs->inodes, inode_of(fs, ino), O_RDONLY);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1; /* page cache survives opens; AUTO_INVAL_DATA drops it on change */
	if (fuse_reply_open(req, fi) != 0)
		close(fd);
}

/* Reads up to size bytes at off into buf, stopping only at end of file. */
static ssize_t pread_full(int fd, char *buf, size_t size, off_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pread(fd, buf + done, size - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct lfsops *fs = serve(req, LFSSTAT_READ);
	char *buf = malloc(size ? size : 1);
	ssize_t n;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = pread_full((int)fi->fh, buf, size, off);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
	} else {
		lfsstats_add(&fs->stats, LFSSTAT_BYTES_READ, (uint64_t)n);
		fuse_reply_buf(req, buf, (size_t)n);
	}
	free(buf);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	serve_free(req, LFSSTAT_FLUSH);
	fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	serve_free(req, LFSSTAT_RELEASE);
	close((int)fi->fh);
	fuse_reply_err(req, 0);
}

/* ---- directories ----------------------------------------------------------------- */

static struct lfsdir *dir_of(struct fuse_file_info *fi)
{
	return (struct lfsdir *)(uintptr_t)fi->fh;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lfsops *fs = serve(req, LFSSTAT_OPENDIR);
	struct lfsdir *d = calloc(1, sizeof(*d));
	int fd = -1, rc = ENOMEM;

	if (!d)
		goto fail;
	fd = openat(inode_of(fs, ino)->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		rc = errno;
		goto fail;
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	if (fuse_reply_open(req, fi) != 0) {
		closedir(d->dp);
		free(d);
	}
	return;
fail:
	if (fd >= 0)
		close(fd);
	free(d);
	fuse_reply_err(req, rc);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lfsdir *d = dir_of(fi);

	(void)ino;
	serve_free(req, LFSSTAT_RELEASEDIR);
	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static int is_dot(const char *name)
{
	return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

/* Adds one readdirplus entry to buf; returns its size (> room: nothing added, and no
 * lookup kept). A name that cannot be looked up goes out bare, for a later lookup. */
static size_t add_plus(fuse_req_t req, struct lfsops *fs, struct lfsinode *dir,
		       const struct dirent *de, char *buf, size_t room)
{
	struct fuse_entry_param e;
	size_t n;

	if (is_dot(de->d_name) || lookup_entry(fs, dir, de->d_name, &e) < 0) {
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = de->d_ino;
		e.attr.st_mode = (mode_t)DTTOIF(de->d_type);
	}
	n = fuse_add_direntry_plus(req, buf, room, de->d_name, &e, de->d_off);
	if (n > room && e.ino)
		lfsinode_unref(fs->inodes, inode_of(fs, e.ino), 1);
	return n;
}

static size_t add_plain(fuse_req_t req, const struct dirent *de, char *buf, size_t room)
{
	struct stat st = {.st_ino = de->d_ino, .st_mode = (mode_t)DTTOIF(de->d_type)};

	return fuse_add_direntry(req, buf, room, de->d_name, &st, de->d_off);
}

/* Returns the next entry of d (kept until sent), NULL at the end or on error (errno). */
static struct dirent *next_entry(struct lfsdir *d)
{
	if (!d->entry) {
		errno = 0;
		d->entry = readdir(d->dp);
	}
	return d->entry;
}

/* Fills buf with the entries after off; returns the bytes used or a negative errno. */
static ssize_t fill_dir(fuse_req_t req, struct lfsops *fs, fuse_ino_t ino, struct lfsdir *d,
			char *buf, size_t size, off_t off, int plus)
{
	struct dirent *de;
	size_t used = 0, n;

	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	while ((de = next_entry(d))) {
		if (plus)
			n = add_plus(req, fs, inode_of(fs, ino), de, buf + used, size - used);
		else
			n = add_plain(req, de, buf + used, size - used);
		if (n > size - used)
			break;
		used += n;
		d->offset = de->d_off;
		d->entry = NULL;
		lfsstats_add(&fs->stats, LFSSTAT_DIR_ENTRIES, 1);
	}
	if (!de && errno && used == 0)
		return -errno;
	return (ssize_t)used;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct lfsops *fs = serve_free(req, plus ? LFSSTAT_READDIRPLUS : LFSSTAT_READDIR);
	char *buf = malloc(size ? size : 1);
	ssize_t used;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	used = fill_dir(req, fs, ino, dir_of(fi), buf, size, off, plus);
	if (used != 0)
		round_trip(fs); /* an empty page is the EOF that the last NFS reply carried */
	if (used < 0)
		fuse_reply_err(req, (int)-used);
	else
		fuse_reply_buf(req, buf, (size_t)used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

/* ---- writes: all refused, like a read-only mount ------------------------------------ */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	(void)ino, (void)attr, (void)to_set, (void)fi;
	deny(req);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	deny(req);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	deny(req);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	deny(req);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	deny(req);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	deny(req);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	deny(req);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	deny(req);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)ino, (void)buf, (void)size, (void)off, (void)fi;
	deny(req);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	deny(req);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	deny(req);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	(void)ino, (void)mode, (void)offset, (void)length, (void)fi;
	deny(req);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	(void)ino_in, (void)off_in, (void)fi_in, (void)ino_out, (void)off_out, (void)fi_out;
	(void)len, (void)flags;
	deny(req);
}

/* getxattr/listxattr stay unset: the first call gets ENOSYS and the kernel stops asking,
 * as with NFSv3, instead of paying a round trip per `ls -l` line. */
static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .statfs = op_statfs,
    .access = op_access,
    .open = op_open,
    .read = op_read,
    .flush = op_flush,
    .release = op_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_unlink,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .create = op_create,
    .write = op_write,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
    .fallocate = op_fallocate,
    .copy_file_range = op_copy_file_range,
};

const struct fuse_lowlevel_ops *lfsops_table(void)
{
	return &ops;
}

int lfsops_new(const struct lfsops_config *cfg, struct lfsops **out, char *err, size_t errlen)
{
	struct lfsops *fs = calloc(1, sizeof(*fs));
	int rootfd = -1, rc = -ENOMEM;

	if (!fs)
		goto fail;
	rootfd = open(cfg->src, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		rc = -errno;
		goto fail;
	}
	fs->inodes = lfsinode_table_new(rootfd, LFS_HASH_BITS);
	if (!fs->inodes)
		goto fail;
	fs->cfg = *cfg;
	fs->cfg.src = NULL;
	lfsdelay_init(&fs->delay, cfg->delay_ms, cfg->jitter_ms);
	lfsstats_init(&fs->stats);
	atomic_init(&fs->bdi_pending, 0);
	*out = fs;
	return 0;
fail:
	snprintf(err, errlen, "cannot open '%s': %s", cfg->src, strerror(-rc));
	if (rootfd >= 0)
		close(rootfd);
	free(fs);
	return rc;
}

void lfsops_free(struct lfsops *fs)
{
	if (!fs)
		return;
	lfsinode_table_free(fs->inodes);
	free(fs);
}

void lfsops_set_bdi(struct lfsops *fs, const char *bdi_path)
{
	if (!fs->cfg.readahead_kb)
		return;
	snprintf(fs->bdi_path, sizeof(fs->bdi_path), "%s", bdi_path);
	atomic_store(&fs->bdi_pending, 1);
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	return lfsinitfix_read(&((struct lfsops *)userdata)->initfix, fd, buf, len);
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	return lfsinitfix_writev(&((struct lfsops *)userdata)->initfix, fd, iov, count);
}

int lfsops_use_initfix(struct lfsops *fs, struct fuse_session *se)
{
	static const struct fuse_custom_io io = {.read = io_read, .writev = io_writev};

	lfsinitfix_init(&fs->initfix);
	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

struct lfsstats *lfsops_stats(struct lfsops *fs)
{
	return &fs->stats;
}
