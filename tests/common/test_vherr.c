#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "common/vherr.h"

Test(vherr, reasons_are_unique_and_round_trip)
{
	for (int i = 0; i < VHERR__COUNT; i++) {
		const char *r = vherr_reason(i);
		cr_assert_eq(vherr_from_reason(r), i, "reason %s", r);
		for (int j = i + 1; j < VHERR__COUNT; j++)
			cr_assert_str_neq(r, vherr_reason(j));
	}
	cr_assert_eq(vherr_from_reason("no-such-reason"), -1);
}

Test(vherr, negated_and_unknown_codes)
{
	cr_assert_str_eq(vherr_reason(-VHERR_TRUNCATED), "truncated");
	cr_assert_str_eq(vherr_reason(9999), "internal");
	cr_assert_str_eq(vherr_message(VHERR_EMPTY), "zero-byte file");
	cr_assert_str_eq(vherr_stage_name(VHSTAGE_DECODE), "decode");
	cr_assert_str_eq(vherr_stage_name((enum vhstage)99), "none");
}

Test(vherr, set_fills_record_and_returns_negated_code)
{
	struct vherr e = {0};
	int rc = vherr_set(&e, VHERR_CORRUPT, VHSTAGE_DECODE, "bad marker %d", 7);

	cr_assert_eq(rc, -VHERR_CORRUPT);
	cr_assert_eq(e.code, VHERR_CORRUPT);
	cr_assert_eq(e.stage, VHSTAGE_DECODE);
	cr_assert_str_eq(e.msg, "bad marker 7");
	cr_assert_eq(vherr_set(&e, VHERR_IO, VHSTAGE_READ, NULL), -VHERR_IO);
	cr_assert_str_eq(e.msg, "input/output error");
	cr_assert_eq(vherr_set(NULL, VHERR_IO, VHSTAGE_READ, "x"), -VHERR_IO);
	vherr_clear(&e);
	cr_assert_eq(e.code, VHERR_OK);
	cr_assert_str_eq(e.msg, "");
}

Test(vherr, errno_mapping_and_message)
{
	struct vherr e = {0};

	cr_assert_eq(vherr_from_errno(ENOENT), VHERR_NOENT);
	cr_assert_eq(vherr_from_errno(ENOSPC), VHERR_NOSPC);
	cr_assert_eq(vherr_from_errno(EACCES), VHERR_ACCESS);
	cr_assert_eq(vherr_from_errno(EIO), VHERR_IO);
	cr_assert_eq(vherr_errno(&e, ENOENT, VHSTAGE_READ, "cannot open '%s'", "a b.jpg"),
		     -VHERR_NOENT);
	cr_assert_str_eq(e.msg, "cannot open 'a b.jpg': No such file or directory");
	cr_assert_eq(vherr_errno(&e, 0, VHSTAGE_READ, NULL), -VHERR_IO);
}

Test(vherr, long_message_is_truncated_not_overflowed)
{
	struct vherr e = {0};
	char big[2000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	vherr_set(&e, VHERR_IO, VHSTAGE_READ, "%s", big);
	cr_assert_eq(strlen(e.msg), VHERR_MSG_MAX - 1);
}
