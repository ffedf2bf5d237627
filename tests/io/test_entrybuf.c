/* io/entrybuf: packed entries come back as they went in, handles and all. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "io/entrybuf.h"

Test(entrybuf, entries_come_back_in_order_with_their_hints)
{
	struct entrybuf b = {0};
	struct source_entry e;
	size_t pos = 0;
	char name[32], fh[7] = "handle";

	for (int i = 0; i < 1000; i++) { /* grows the buffer several times */
		struct source_hint h = {.has_attrs = i % 2,
					.size = (uint64_t)i * 1000,
					.mtime_ns = -i,
					.handle = i % 3 ? fh : NULL,
					.handle_len = (uint32_t)(i % 3 ? 1 + i % 6 : 0)};

		snprintf(name, sizeof(name), "f%04d.jpg", i);
		cr_assert_eq(entrybuf_add(&b, i % 5 ? "dir/sub" : "", name, &h), 0);
	}
	cr_assert_eq(b.count, 1000);
	for (int i = 0; i < 1000; i++) {
		char want[64];

		cr_assert_eq(entrybuf_next(&b, &pos, &e), 0, "entry %d", i);
		snprintf(want, sizeof(want), "%sf%04d.jpg", i % 5 ? "dir/sub/" : "", i);
		cr_assert_str_eq(e.relpath, want);
		cr_assert_eq(e.hint.has_attrs, i % 2);
		cr_assert_eq(e.hint.size, (uint64_t)i * 1000);
		cr_assert_eq(e.hint.mtime_ns, -i);
		if (i % 3) {
			cr_assert_not_null(e.hint.handle);
			cr_assert_eq(e.hint.handle_len, (uint32_t)(1 + i % 6));
			cr_assert_eq(memcmp(e.hint.handle, fh, e.hint.handle_len), 0);
		} else {
			cr_assert_null(e.hint.handle);
			cr_assert_eq(e.hint.handle_len, 0);
		}
	}
	cr_assert_eq(entrybuf_next(&b, &pos, &e), -1, "no entry past the end");
	entrybuf_release(&b);
	cr_assert_null(b.buf);
	cr_assert_eq(b.count, 0);
}

Test(entrybuf, an_empty_buffer_has_no_entries)
{
	struct entrybuf b = {0};
	struct source_entry e;
	size_t pos = 0;

	cr_assert_eq(entrybuf_next(&b, &pos, &e), -1);
	entrybuf_release(&b);
}
