#include "io/entrybuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* What precedes each entry's handle bytes and relpath (copied in and out with memcpy:
 * entries are packed, so none of this is aligned in the buffer). */
struct packed {
	uint64_t size;
	int64_t mtime_ns;
	uint32_t handle_len;
	uint32_t path_len; /* without the NUL */
	int32_t has_attrs;
	int32_t has_handle;
};

static int reserve(struct entrybuf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 4096;
	char *p;

	if (b->len + need <= b->cap)
		return 0;
	while (cap < b->len + need)
		cap *= 2;
	p = realloc(b->buf, cap);
	if (!p)
		return -1;
	b->buf = p;
	b->cap = cap;
	return 0;
}

int entrybuf_add(struct entrybuf *b, const char *dir, const char *name,
		 const struct source_hint *hint)
{
	size_t dlen = strlen(dir), nlen = strlen(name);
	struct packed h = {
	    .size = hint->size,
	    .mtime_ns = hint->mtime_ns,
	    .handle_len = hint->handle ? hint->handle_len : 0,
	    .path_len = (uint32_t)(dlen + (dlen ? 1 : 0) + nlen),
	    .has_attrs = hint->has_attrs,
	    .has_handle = hint->handle != NULL,
	};
	char *p;

	if (reserve(b, sizeof(h) + h.handle_len + h.path_len + 1) < 0)
		return -1;
	p = b->buf + b->len;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	if (h.handle_len)
		memcpy(p, hint->handle, h.handle_len);
	p += h.handle_len;
	if (dlen) {
		memcpy(p, dir, dlen);
		p[dlen++] = '/';
	}
	memcpy(p + dlen, name, nlen + 1);
	b->len += sizeof(h) + h.handle_len + h.path_len + 1;
	b->count++;
	return 0;
}

int entrybuf_next(const struct entrybuf *b, size_t *pos, struct source_entry *e)
{
	struct packed h;
	const char *p;

	if (*pos + sizeof(h) > b->len)
		return -1;
	p = b->buf + *pos;
	memcpy(&h, p, sizeof(h));
	p += sizeof(h);
	*e = (struct source_entry){
	    .relpath = p + h.handle_len,
	    .hint = {.handle = h.has_handle ? p : NULL,
		     .handle_len = h.handle_len,
		     .has_attrs = h.has_attrs,
		     .size = h.size,
		     .mtime_ns = h.mtime_ns},
	};
	*pos += sizeof(h) + h.handle_len + h.path_len + 1;
	return 0;
}

void entrybuf_release(struct entrybuf *b)
{
	free(b->buf);
	*b = (struct entrybuf){0};
}
