#include <criterion/criterion.h>

#include "common/oplat.h"

Test(oplat, empty_has_no_quantiles)
{
	struct oplat *l = oplat_new();

	cr_assert_not_null(l);
	cr_assert_eq(oplat_count(l, OPLAT_READ), 0);
	cr_assert_eq(oplat_quantile(l, OPLAT_READ, 0.5), 0);
	oplat_record(NULL, OPLAT_READ, 5); /* NULL records nothing, and does not crash */
	oplat_free(l);
}

Test(oplat, quantiles_within_one_bucket)
{
	struct oplat *l = oplat_new();

	/* 1..1000 microseconds, one of each: p50 ~ 500 us, p90 ~ 900 us, p99 ~ 990 us */
	for (uint64_t us = 1; us <= 1000; us++)
		oplat_record(l, OPLAT_OPEN, us * 1000);
	cr_assert_eq(oplat_count(l, OPLAT_OPEN), 1000);
	cr_assert_eq(oplat_count(l, OPLAT_DIR), 0, "ops are counted apart");
	for (int i = 0; i < 3; i++) {
		double q = (double[]){0.5, 0.9, 0.99}[i];
		double want = q * 1000 * 1000, got = (double)oplat_quantile(l, OPLAT_OPEN, q);

		cr_assert(got > want * 0.91 && got < want * 1.09, "q%.2f: %.0f ns, want ~%.0f", q,
			  got, want);
	}
	oplat_free(l);
}

Test(oplat, small_and_huge_values)
{
	struct oplat *l = oplat_new();

	oplat_record(l, OPLAT_DIR, 0);
	oplat_record(l, OPLAT_DIR, 3);
	oplat_record(l, OPLAT_DIR, UINT64_MAX);
	cr_assert_eq(oplat_quantile(l, OPLAT_DIR, 0.3), 0);
	cr_assert_eq(oplat_quantile(l, OPLAT_DIR, 0.6), 3);
	cr_assert_gt(oplat_quantile(l, OPLAT_DIR, 1.0), UINT64_MAX / 2);
	cr_assert_str_eq(oplat_name(OPLAT_DIR), "dir");
	cr_assert_str_eq(oplat_name(OPLAT_READ), "read");
	oplat_free(l);
}
