#include "bench/latencyfs/lfsinitfix.h"

#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <string.h>
#include <unistd.h>

#define FLAGS_END (offsetof(struct fuse_init_in, flags) + sizeof(uint32_t))

int lfsinitfix_needed(void)
{
	return fuse_version() < FUSE_MAKE_VERSION(3, 17);
}

void lfsinitfix_init(struct lfsinitfix *f)
{
	atomic_init(&f->init_unique, 0);
	atomic_init(&f->pending, 0);
}

ssize_t lfsinitfix_read(struct lfsinitfix *f, int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);
	struct fuse_in_header in;
	struct fuse_init_in init;

	if (n < (ssize_t)(sizeof(in) + FLAGS_END))
		return n;
	memcpy(&in, buf, sizeof(in));
	if (in.opcode != FUSE_INIT)
		return n;
	memcpy(&init, (char *)buf + sizeof(in), FLAGS_END);
	if (init.flags & FUSE_PARALLEL_DIROPS) {
		atomic_store(&f->init_unique, in.unique);
		atomic_store(&f->pending, 1);
	}
	return n;
}

/* Returns 1 if iov is the successful reply to the INIT request noted by f. */
static int is_init_reply(struct lfsinitfix *f, const struct iovec *iov, int count)
{
	struct fuse_out_header out;

	if (!atomic_load_explicit(&f->pending, memory_order_relaxed) || count < 2 ||
	    iov[0].iov_len < sizeof(out) || iov[1].iov_len < FLAGS_END ||
	    iov[1].iov_len > sizeof(struct fuse_init_out))
		return 0;
	memcpy(&out, iov[0].iov_base, sizeof(out));
	return out.error == 0 && out.unique == atomic_load(&f->init_unique) &&
	       atomic_exchange(&f->pending, 0);
}

ssize_t lfsinitfix_writev(struct lfsinitfix *f, int fd, const struct iovec *iov, int count)
{
	struct iovec patched[2];
	struct fuse_init_out init;

	if (count != 2 || !is_init_reply(f, iov, count))
		return writev(fd, iov, count);
	memset(&init, 0, sizeof(init));
	memcpy(&init, iov[1].iov_base, iov[1].iov_len); /* <= sizeof(init), checked */
	init.flags |= FUSE_PARALLEL_DIROPS;
	patched[0] = iov[0];
	patched[1] = (struct iovec){ .iov_base = &init, .iov_len = iov[1].iov_len };
	return writev(fd, patched, 2);
}
