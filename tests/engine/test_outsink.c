/* outsink: shard name prefixes from --prefix, and pack keys decoded back to the output
 * paths resume matches inputs against (the inverse of pack_key). */
#include <criterion/criterion.h>
#include <string.h>

#include "engine/outsink.h"
#include "io/pack.h"

Test(outsink, pack_name_from_prefix)
{
	char buf[64];

	cr_assert_eq(outsink_pack_name("processed_images", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "processed_images");
	cr_assert_eq(outsink_pack_name("train/imgs", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "train_imgs");
	cr_assert_eq(outsink_pack_name("", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "shard");
	cr_assert_eq(outsink_pack_name(".hidden", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "shard");
	cr_assert_eq(outsink_pack_name("abcdefgh", buf, 8), -1);
}

/* Every name pack_key changes comes back whole. */
Test(outsink, key_decode_inverts_pack_key)
{
	static const char *const names[] = {
	    "processed_images/cats/001.jpg", "p/img.v2.jpg",	  "p/100%.png",	 "p/.x.jpg",
	    "p/caf\xc3\xa9 au lait.jpg",     "p/bad\xff\xfe.png", "p/a%2Eb.jpg",
	};
	char key[PACK_KEY_MAX], back[PACK_KEY_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		cr_assert_eq(pack_key(names[i], key, sizeof(key)), 0, "%s", names[i]);
		cr_assert_eq(outsink_key_decode(key, back, sizeof(back)), 0, "%s", key);
		cr_assert_str_eq(back, names[i]);
	}
}

Test(outsink, key_decode_refuses_damaged_keys)
{
	char buf[64];

	cr_assert_eq(outsink_key_decode("a%2", buf, sizeof(buf)), -1);
	cr_assert_eq(outsink_key_decode("a%zz.jpg", buf, sizeof(buf)), -1);
	cr_assert_eq(outsink_key_decode("a%00.jpg", buf, sizeof(buf)), -1);
	cr_assert_eq(outsink_key_decode("abcdef", buf, 6), -1);
	cr_assert_eq(outsink_key_decode("abcde", buf, 6), 0);
}
