/* entrybuf: a growable byte buffer of packed source entries (relpath + hint, handle bytes
 * included), for lists of entries that wait: pages of a network listing on their way to
 * the walking thread, and the names `vhprep bench --read-only` keeps between its walk and
 * its reads. Not thread-safe: one owner at a time. */
#ifndef VHPREP_IO_ENTRYBUF_H
#define VHPREP_IO_ENTRYBUF_H

#include <stddef.h>

#include "io/source.h"

struct entrybuf {
	char *buf;
	size_t len, cap; /* bytes used / allocated */
	size_t count;	 /* entries */
};

/* Appends e with relpath "dir/name" (dir may be "": just name); the handle is copied.
 * Returns 0, or -1 on no memory (b unchanged). */
int entrybuf_add(struct entrybuf *b, const char *dir, const char *name,
		 const struct source_hint *hint);
/* Reads the entry at *pos into *e (pointers into b, valid until b changes) and advances
 * *pos; returns 0, or -1 at the end. Start with *pos = 0. */
int entrybuf_next(const struct entrybuf *b, size_t *pos, struct source_entry *e);
/* Frees the bytes and empties b; b itself is the caller's. */
void entrybuf_release(struct entrybuf *b);

#endif
