/* kernels/orclock: libvips' calls into liborc take the lock in the test executable and
 * in vhprep, vector code stays on, and workers compiling and freeing it at once do not
 * corrupt the heap (without the lock, 8 threads x 2,000 such resizes aborted in 2 runs
 * of 6 on liborc 0.4.33). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>
#include <vips/vector.h>

#include "kernels/kernel.h"
#include "kernels/orclock.h"

#define WORKERS 8
#define RESIZES 400

static void setup(void)
{
	struct vherr err = {0};

	cr_assert_eq(kernel_global_init("test_orclock", &err), 0, "%s", err.msg);
}

static void teardown(void)
{
	kernel_global_shutdown();
}

TestSuite(orclock, .init = setup, .fini = teardown);

Test(orclock, libvips_goes_through_the_lock_with_vectors_on)
{
	cr_assert(orclock_active(), "orc_program_compile/free are not this executable's");
	cr_assert(vips_vector_isenabled(), "libvips' vector code was turned off");
}

Test(orclock, vhprep_exports_both_entry_points)
{
	const char *bin = getenv("VHPREP_BIN");
	char cmd[4096], line[512];
	int found = 0;
	FILE *f;

	cr_assert(bin, "VHPREP_BIN is not set");
	snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s'", bin);
	f = popen(cmd, "r");
	cr_assert(f, "cannot run nm");
	while (fgets(line, sizeof(line), f))
		found += strstr(line, " T orc_program_compile\n") ||
			 strstr(line, " T orc_program_free\n");
	cr_assert_eq(pclose(f), 0, "nm failed on %s", bin);
	cr_assert_eq(found, 2, "%s exports %d of orc_program_compile/free", bin, found);
}

/* One worker: small 8-bit resizes, each compiling libvips' reduce programs and freeing
 * them when the image goes. */
static void *resizes(void *arg)
{
	unsigned char px[64 * 64];
	long failed = 0;

	(void)arg;
	for (int i = 0; i < 64 * 64; i++)
		px[i] = (unsigned char)(i * 7);
	for (int i = 0; i < RESIZES; i++) {
		VipsImage *in =
		    vips_image_new_from_memory(px, sizeof(px), 64, 64, 1, VIPS_FORMAT_UCHAR);
		VipsImage *out = NULL;
		size_t len;
		void *mem = NULL;

		if (!in || vips_resize(in, &out, 0.37, "vscale", 0.41, NULL) ||
		    !(mem = vips_image_write_to_memory(out, &len)))
			failed++;
		g_free(mem);
		if (out)
			g_object_unref(out);
		if (in)
			g_object_unref(in);
		vips_error_clear();
	}
	vips_thread_shutdown();
	return (void *)failed;
}

Test(orclock, workers_compile_and_free_vector_code_at_once, .timeout = 240)
{
	pthread_t t[WORKERS];

	for (int i = 0; i < WORKERS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, resizes, NULL), 0);
	for (int i = 0; i < WORKERS; i++) {
		void *failed;

		pthread_join(t[i], &failed);
		cr_expect_eq((long)failed, 0, "worker %d: %ld resizes failed", i, (long)failed);
	}
}
