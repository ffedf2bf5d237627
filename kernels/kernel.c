/* kernel: the one interface of the transform stage, and its small parsers.
 *
 * kernel_run picks a path per image (kernel_pick) and calls it: jpeg-fast
 * (libturbojpeg, plain JPEG → JPEG), png-fast (libspng, PNG → PNG or JPEG) or libvips
 * (everything else). */
#include "kernels/kernel.h"

#include <glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/jpegfast.h"
#include "kernels/pngfast.h"
#include "kernels/vipskernel.h"

struct kernel {
	const struct kernel_params *params; /* set at creation, shared read-only */
	enum kernel_choice choice;	    /* set at creation */
	struct vipskernel *vips;	    /* worker-only; always present */
	struct jpegfast *fast;		    /* worker-only; always present */
	struct pngfast *png;		    /* worker-only; always present */
};

int kernel_global_init(const char *argv0, struct vherr *err)
{
	return vipskernel_global_init(argv0, err);
}

void kernel_global_shutdown(void)
{
	vipskernel_global_shutdown();
}

struct kernel *kernel_new(const struct kernel_params *params)
{
	struct kernel *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->params = params;
	k->choice = params->choice;
	k->vips = vipskernel_new(params);
	k->fast = jpegfast_new(params);
	k->png = pngfast_new(params);
	if (!k->vips || !k->fast || !k->png) {
		kernel_free(k);
		return NULL;
	}
	return k;
}

void kernel_free(struct kernel *k)
{
	if (!k)
		return;
	vipskernel_free(k->vips);
	jpegfast_free(k->fast);
	pngfast_free(k->png);
	free(k);
}

/* The path for one image: plain JPEG → JPEG work without filters goes to jpeg-fast
 * (jpegfast_accepts), PNG → PNG or JPEG to png-fast (pngfast_accepts), everything else
 * to libvips; --kernel forces one. */
static enum kernel_choice kernel_pick(const struct kernel *k, const uint8_t *in, size_t len)
{
	if (k->choice != KERNEL_AUTO)
		return k->choice;
	if (jpegfast_accepts(k->params, in, len))
		return KERNEL_JPEGFAST;
	return pngfast_accepts(k->params, in, len) ? KERNEL_PNGFAST : KERNEL_VIPS;
}

int kernel_run(struct kernel *k, const uint8_t *in, size_t len, struct kernel_result *res,
	       struct vherr *err)
{
	memset(res, 0, sizeof(*res));
	if (!in && len > 0)
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_DECODE,
				 "kernel_run: NULL input of %zu bytes", len);
	switch (kernel_pick(k, in, len)) {
	case KERNEL_JPEGFAST:
		return jpegfast_run(k->fast, in, len, res, err);
	case KERNEL_PNGFAST:
		return pngfast_run(k->png, in, len, res, err);
	case KERNEL_VIPS:
	default:
		return vipskernel_run(k->vips, in, len, res, err);
	}
}

void kernel_want_thumb(struct kernel *k, int box)
{
	jpegfast_want_thumb(k->fast, box);
}

void kernel_result_release(struct kernel_result *res)
{
	if (!res)
		return;
	g_free(res->data);
	free(res->src_thumb.px);
	memset(res, 0, sizeof(*res));
}

const char *kernel_format_ext(enum kernel_format fmt)
{
	switch (fmt) {
	case KFMT_JPEG:
		return "jpg";
	case KFMT_PNG:
		return "png";
	case KFMT_WEBP:
		return "webp";
	case KFMT_KEEP:
	default:
		return "";
	}
}

int kernel_format_parse(const char *s, enum kernel_format *fmt)
{
	static const struct {
		const char *name;
		enum kernel_format fmt;
	} names[] = {
	    {"keep", KFMT_KEEP}, {"jpg", KFMT_JPEG},  {"jpeg", KFMT_JPEG},
	    {"png", KFMT_PNG},	 {"webp", KFMT_WEBP},
	};

	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*fmt = names[i].fmt;
			return 0;
		}
	}
	return -1;
}

int kernel_quality(const struct kernel_params *p)
{
	return p->quality < 1 ? KERNEL_QUALITY_DEFAULT : p->quality > 100 ? 100 : p->quality;
}

int kernel_subsample_parse(const char *s, enum kernel_subsample *sub)
{
	if (s && strcmp(s, "420") == 0)
		*sub = KSUB_420;
	else if (s && strcmp(s, "444") == 0)
		*sub = KSUB_444;
	else
		return -1;
	return 0;
}

int kernel_fail_on_parse(const char *s, enum kernel_fail_on *f)
{
	static const char *const names[] = {
	    [KFAIL_NONE] = "none",
	    [KFAIL_TRUNCATED] = "truncated",
	    [KFAIL_ERROR] = "error",
	    [KFAIL_WARNING] = "warning",
	};

	for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*f = (enum kernel_fail_on)i;
			return 0;
		}
	}
	return -1;
}

/* Appends one row to ops if there is room. */
__attribute__((format(printf, 4, 5))) static void add_op(char ops[][KERNEL_OP_MAX], int *n,
							 int max, const char *fmt, ...)
{
	va_list ap;

	if (*n >= max)
		return;
	va_start(ap, fmt);
	vsnprintf(ops[*n], KERNEL_OP_MAX, fmt, ap);
	va_end(ap);
	(*n)++;
}

int kernel_describe(const struct kernel_params *p, char ops[][KERNEL_OP_MAX], int max)
{
	int n = 0;

	if (p->autorotate)
		add_op(ops, &n, max, "autorotate");
	if (p->resize_w > 0 && p->resize_h > 0)
		add_op(ops, &n, max, "resize:%dx%d:%s", p->resize_w, p->resize_h,
		       geometry_mode_name(p->mode));
	if (p->gray)
		add_op(ops, &n, max, "gray");
	if (p->blur_sigma > 0)
		add_op(ops, &n, max, "blur:%g", p->blur_sigma);
	if (p->sharpen)
		add_op(ops, &n, max, "sharpen");
	if (p->format == KFMT_PNG)
		add_op(ops, &n, max, "format:png");
	else if (p->format == KFMT_WEBP)
		add_op(ops, &n, max, "format:webp:q%d", kernel_quality(p));
	else
		add_op(ops, &n, max, "format:%s:q%d:%s",
		       p->format == KFMT_KEEP ? "keep" : kernel_format_ext(p->format),
		       kernel_quality(p), p->subsample == KSUB_444 ? "444" : "420");
	return n;
}
