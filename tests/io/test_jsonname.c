#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "io/jsonname.h"

static void expect_escape(const char *in, const char *want)
{
	char buf[256];

	cr_assert_eq(jsonname_escape(in, buf, sizeof(buf)), (int)strlen(want), "'%s'", want);
	cr_assert_str_eq(buf, want);
}

Test(jsonname, valid_names_are_kept_as_they_are)
{
	expect_escape("plain.jpg", "plain.jpg");
	expect_escape("caf\xc3\xa9/\xe5\x86\x99\xe7\x9c\x9f.png",
		      "caf\xc3\xa9/\xe5\x86\x99\xe7\x9c\x9f.png");
	expect_escape("back\\slash", "back\\slash");
	expect_escape("", "");
	cr_assert(jsonname_valid("\xf0\x9f\x98\x80")); /* U+1F600 */
}

/* Latin-1 bytes, a lone continuation byte, an overlong '/', a UTF-16 surrogate and a code
 * point beyond U+10FFFF are none of them UTF-8; in such a name backslashes double. */
Test(jsonname, odd_bytes_become_hex_escapes)
{
	expect_escape("caf\xe9.jpg", "caf\\xE9.jpg");
	expect_escape("a\x80z", "a\\x80z");
	expect_escape("\xc0\xaf", "\\xC0\\xAF");
	expect_escape("\xed\xa0\x80", "\\xED\\xA0\\x80");
	expect_escape("\xf4\x90\x80\x80", "\\xF4\\x90\\x80\\x80");
	expect_escape("x\\\xe9", "x\\\\\\xE9");
	expect_escape("ok-\xc3\xa9-\xe9", "ok-\xc3\xa9-\\xE9");
	cr_assert_not(jsonname_valid("caf\xe9"));
}

Test(jsonname, too_small_is_refused)
{
	char buf[4];

	cr_assert_eq(jsonname_escape("\xe9", buf, sizeof(buf)), -1);
	cr_assert_eq(jsonname_escape("abcd", buf, sizeof(buf)), -1);
	cr_assert_eq(jsonname_escape("abc", buf, sizeof(buf)), 3);
}

/* set then get gives back the bytes exactly, for every byte value but NUL. */
Test(jsonname, set_and_get_round_trip)
{
	char name[256];
	json_t *o = json_object();
	char *back;

	for (int i = 0; i < 255; i++)
		name[i] = (char)(i + 1);
	name[255] = '\0';
	cr_assert_eq(jsonname_set(o, "file", name), 0);
	cr_assert_not_null(json_object_get(o, "file_b64"));
	back = jsonname_get(o, "file");
	cr_assert_str_eq(back, name);
	free(back);
	cr_assert_eq(jsonname_set(o, "ok", "fine.jpg"), 0);
	cr_assert_null(json_object_get(o, "ok_b64"));
	back = jsonname_get(o, "ok");
	cr_assert_str_eq(back, "fine.jpg");
	free(back);
	cr_assert_null(jsonname_get(o, "absent"));
	json_decref(o);
}
