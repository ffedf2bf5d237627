/* vipskernel: one encoded file in, one encoded file out, through libvips 8.14.
 *
 * The path of one file (vipskernel_run):
 *   open_header   header only (sequential, fail_on): size, orientation, ICC, loader
 *   plan_image    width * height > max_pixels → TOO_LARGE before any pixel decode,
 *                 then geometry_plan on the oriented size (kernels/plan.c)
 *   load_scaled   vips_thumbnail_buffer, size=FORCE to the exact scaled size:
 *                 shrink-on-load, EXIF rotation, CMYK/ICC → sRGB; 16-bit RGB/grey
 *                 and TIFFs with "unspecified" extra channels are first loaded whole
 *                 (load_prepared: high byte, X bands dropped), then thumbnail_image
 *   finish        crop window, sRGB, flatten alpha (JPEG), pad, grey, blur, sharpen
 *   encode        jpeg/png/webp save to a buffer, metadata stripped; the lazy
 *                 pipeline decodes the pixels here
 * One struct vjob owns every image made for the file; vjob_release unrefs them all.
 *
 * libvips 8.14.1 behaviours this file relies on (checked by experiment and in
 * tests/kernels/test_vipskernel.c):
 * - vips_thumbnail_buffer ignores its own "fail_on" argument (only the file variant
 *   passes it to the loader), so fail_on goes in "option_string" instead. Without it
 *   a truncated JPEG or PNG comes out grey-padded with no error.
 * - With fail_on=truncated the error surfaces when the pixels are read, that is in
 *   the save call (or inside the thumbnail call when it rotates, which renders to
 *   memory first): "VipsJpeg: Premature end of input file", "vipspng: libpng read
 *   error". A JPEG that lacks only its EOI marker still decodes fully and passes.
 *   libjpeg's "Corrupt JPEG data" is a warning: it fails only with fail_on=warning,
 *   and libjpeg fills the rows it could not decode with grey. So a JPEG that warned
 *   is judged by its first warning, as jpegfast.c judges it (judge_warnings,
 *   plan_jpeg_warning): "premature end of data segment" (a scan cut short, zeroed or
 *   garbled data, a header taller than its scan) fails unless fail_on is none. Only
 *   the first warning reaches the error buffer (jpeg2vips.c: readjpeg_emit_message).
 * - thumbnail's non-linear path converts CMYK (with or without a profile) to sRGB by
 *   itself, but ignores an embedded RGB profile (a Display P3 JPEG comes out
 *   too saturated) unless export_profile is set; and with export_profile set on an
 *   untagged sRGB input it round-trips through XYZ and shifts colours. So the
 *   profiles are passed only when the header carries an ICC profile.
 * - Loader warnings and non-fatal errors land in the process-wide error buffer even
 *   when the call succeeds; every run clears it at the end.
 * - That buffer is one per process (error.c: vips_verror appends under
 *   vips__global_lock; no per-thread buffer, no hook, and vips_error_freeze is one
 *   global counter), so under concurrency a failing file's text could be another
 *   file's, or cleared by another thread (41 of 350 messages differed between -j1 and
 *   -j2). Hence the replay rule (vipskernel_run): every run holds vk_text for reading;
 *   a run that failed inside libvips is run again alone, holding it for writing, from
 *   a cleared buffer, and only that replay's text is reported. Good files never pay;
 *   a bad file costs one more decode while the other workers wait.
 *
 * Measured (shared 2-vCPU AMD EPYC VM, load 3-5 from parallel builds, one thread,
 * libvips 8.14.1): a 500x375 q90 photo-like JPEG (25 kB) → 224x224 stretch → JPEG
 * q90 through kernel_run costs 7-9 ms of CPU per image (best wall 7.1 ms); png out
 * ~14 ms, webp out ~15 ms (their encoders). Parts, measured alone: header open
 * 0.2 ms (done three times: ours, then thumbnail's two), full decode ~3 ms (a 2.2x
 * shrink is too small for JPEG shrink-on-load, which leaves 2x for the resize),
 * lanczos3 reduce 3-5 ms, jpeg save 0.7 ms. perf: ~25% of the time is GLib/GObject
 * (building and tearing down the operation graph), ~12% libjpeg. A 6000x4000 JPEG
 * → 224x224 takes ~20 ms thanks to shrink-on-load. */
#include "kernels/vipskernel.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>
#include <vips/vector.h> /* vips_vector_set_enabled: not in vips.h in 8.14 */

#include "kernels/geometry.h"
#include "kernels/orclock.h"
#include "kernels/plan.h"

/* libjpeg's JPEG_MAX_DIMENSION and libwebp's WEBP_MAX_DIMENSION. */
#define JPEG_MAX_SIDE 65500
#define WEBP_MAX_SIDE 16383

/* PNG: zlib level 3 with adaptive row filters. On a synthetic photo-like 224x224
 * image libvips 8.14's default (level 6, no row filter) wrote 86 kB in 4.5 ms;
 * adaptive filters with level 6 (PIL's default) 30 kB in 15 ms, level 3 35 kB in
 * 5.8 ms, level 1 41 kB in 4 ms. Level 3 is the last of zlib's fast (greedy) levels:
 * a third of the time of level 6 for 17% more bytes. */
#define PNG_COMPRESSION 3

#define VJOB_MAX_IMAGES 24

/* One per worker thread. libvips needs no per-thread state of ours yet; the struct
 * is the place for it (and for counters) without changing the interface. */
struct vipskernel {
	const struct kernel_params *params; /* set at creation, shared read-only */
};

/* Readers: every libvips run, and other libvips work (vipskernel_shared_begin);
 * writer: the replay of a failed run (see the top). Process-wide like libvips' buffer
 * it guards; writer-preferring so a replay is not starved by a stream of good files. */
static pthread_rwlock_t vk_text = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

/* Set when libvips logs a warning on this thread (note_warning). libjpeg's warnings
 * reach the shared error buffer only, but libvips' JPEG reader that met any logs "read
 * gave N warnings" when it is closed, which is at the last unref: in the thread that
 * runs the file, as the operation cache is off and a save joins its workers before it
 * returns. */
static _Thread_local int vk_warned;

/* Everything made for one file; lives for one vipskernel_run. */
struct vjob {
	const struct kernel_params *p;
	int vips_failed; /* a libvips call failed: the message has libvips' text */
	const uint8_t *in;
	size_t len;
	VipsImage *images[VJOB_MAX_IMAGES]; /* owned; unref'd by vjob_release */
	int n_images;
	VipsImage *cur; /* newest stage, borrowed from images[] */
	int in_w, in_h; /* as stored */
	int swap;	/* orientation 5-8 and autorotate: width and height swap */
	int has_icc;
	int in_bands;
	VipsInterpretation in_interp;
	int wide;    /* RGB16 or GREY16: made 8-bit by the high byte before scaling */
	int colours; /* > 0: keep only these bands, the rest are TIFF "unspecified" */
	int frames;  /* pages or frames in the file (1 for a still image) */
	enum kernel_format out_fmt;
	struct geometry geo;
};

static void vjob_release(struct vjob *j)
{
	for (int i = 0; i < j->n_images; i++)
		VIPS_UNREF(j->images[i]);
	j->n_images = 0;
	j->cur = NULL;
}

/* Takes ownership of im and makes it the current stage. */
static void vjob_push(struct vjob *j, VipsImage *im)
{
	g_assert(j->n_images < VJOB_MAX_IMAGES);
	j->images[j->n_images++] = im;
	j->cur = im;
}

/* ---- errors ---------------------------------------------------------------- */

/* Copies the first line of libvips' error text into line and clears the text.
 * The text is process-wide and shared by every thread, so copy it right after the
 * failing call; under concurrency it may occasionally hold another file's line or
 * nothing: the code and stage, which are ours, are what count. */
static void take_vips_error(char *line, size_t size)
{
	char *all = vips_error_buffer_copy();
	const char *p = all ? all : "";
	size_t n;

	vips_error_clear();
	while (*p == '\n' || *p == ' ')
		p++;
	n = strcspn(p, "\n");
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\r'))
		n--;
	if (n >= size)
		n = size - 1;
	memcpy(line, p, n);
	line[n] = '\0';
	g_free(all);
}

static int has_word(const char *msg, const char *const *words)
{
	for (; *words; words++)
		if (strcasestr(msg, *words))
			return 1;
	return 0;
}

/* Returns whether p[0..n) contains needle[0..m) in its last `window` bytes. */
static int tail_has(const uint8_t *p, size_t n, const void *needle, size_t m, size_t window)
{
	size_t start = n > window ? n - window : 0;

	return n >= m && memmem(p + start, n - start, needle, m) != NULL;
}

/* Whether in[0..len) starts as a JPEG (SOI, then a marker). */
static int is_jpeg(const uint8_t *in, size_t len)
{
	return len >= 3 && in[0] == 0xff && in[1] == 0xd8 && in[2] == 0xff;
}

/* Whether the bytes end before their format's end marker (checked only after a
 * decode failure, so a false positive merely relabels an error). */
static int data_looks_truncated(const uint8_t *in, size_t len)
{
	static const uint8_t png_sig[] = {0x89, 'P', 'N', 'G'};
	static const uint8_t jpeg_eoi[] = {0xff, 0xd9};

	if (len >= 4 && memcmp(in, png_sig, 4) == 0)
		return !tail_has(in, len, "IEND", 4, 64);
	if (is_jpeg(in, len))
		return !tail_has(in, len, jpeg_eoi, 2, 64);
	if (len >= 12 && memcmp(in, "RIFF", 4) == 0 && memcmp(in + 8, "WEBP", 4) == 0) {
		uint32_t riff = (uint32_t)in[4] | (uint32_t)in[5] << 8 | (uint32_t)in[6] << 16 |
				(uint32_t)in[7] << 24;
		return (uint64_t)riff + 8 > len;
	}
	if (len >= 6 && memcmp(in, "GIF8", 4) == 0)
		return in[len - 1] != 0x3b;
	return 0;
}

/* The code for a failure to decode the input, from the libvips message and the
 * bytes themselves. */
static enum vherr_code decode_code(const char *msg, const uint8_t *in, size_t len)
{
	static const char *const nomem[] = {"out of memory", "cannot allocate", NULL};
	static const char *const truncated[] = {
	    "premature end", "truncated",   "not enough data", "unexpected end",
	    "end of file",   "end of data", "end of stream",   NULL};

	if (has_word(msg, nomem))
		return VHERR_NOMEM;
	if (strcasestr(msg, "corrupt"))
		return VHERR_CORRUPT;
	if (has_word(msg, truncated) || data_looks_truncated(in, len))
		return VHERR_TRUNCATED;
	return VHERR_CORRUPT;
}

/* Fails the job with a decode error classified from libvips' message. */
static int fail_decode(struct vjob *j, struct vherr *err)
{
	char line[VHERR_MSG_MAX / 2];

	j->vips_failed = 1;
	take_vips_error(line, sizeof(line));
	return vherr_set(err, decode_code(line, j->in, j->len), VHSTAGE_DECODE,
			 "cannot decode image%s%s", *line ? ": " : "", line);
}

/* Fails the job with code at stage; what says what could not be done. */
static int fail_vips(struct vjob *j, struct vherr *err, enum vherr_code code,
		     enum vhstage stage, const char *what)
{
	char line[VHERR_MSG_MAX / 2];

	j->vips_failed = 1;
	take_vips_error(line, sizeof(line));
	return vherr_set(err, code, stage, "%s%s%s", what, *line ? ": " : "", line);
}

/* ---- header ---------------------------------------------------------------- */

/* Reads an n-byte (2 or 4) unsigned integer of TIFF data t[0..len) at off in its byte
 * order (le); 0 when out of range. */
static uint32_t tiff_uint(const uint8_t *t, size_t len, size_t off, int n, int le)
{
	uint32_t v = 0;

	if (off > len || len - off < (size_t)n)
		return 0;
	for (int i = 0; i < n; i++)
		v = le ? v | (uint32_t)t[off + i] << (8 * i) : v << 8 | t[off + i];
	return v;
}

/* For a TIFF whose first IFD has more samples per pixel than its photometric
 * interpretation's colours (grey 1, RGB 3) and whose first ExtraSamples value is 0
 * ("unspecified", RGBX) or that has no ExtraSamples tag: the number of colour bands
 * to keep. 0 otherwise (alpha, CMYK, not TIFF, malformed). libvips 8.14 takes any
 * fourth band of an RGB TIFF for alpha; PIL opens these as RGBX and drops the X. */
static int tiff_colours(const uint8_t *t, size_t len)
{
	int le = len >= 8 && t[0] == 'I' && t[1] == 'I';
	uint32_t ifd, n, spp = 1, photometric = 99, extra = 0, has_extra = 0;

	if (len < 8 || !(le || (t[0] == 'M' && t[1] == 'M')) ||
	    tiff_uint(t, len, 2, 2, le) != 42)
		return 0;
	ifd = tiff_uint(t, len, 4, 4, le);
	n = tiff_uint(t, len, ifd, 2, le);
	for (uint32_t i = 0; i < n && i < 1000; i++) {
		size_t e = (size_t)ifd + 2 + 12 * (size_t)i;
		uint32_t tag = tiff_uint(t, len, e, 2, le),
			 count = tiff_uint(t, len, e + 4, 4, le);

		if (tag == 277)
			spp = tiff_uint(t, len, e + 8, 2, le);
		else if (tag == 262)
			photometric = tiff_uint(t, len, e + 8, 2, le);
		else if (tag == 338 && count >= 1) {
			has_extra = 1;
			extra = tiff_uint(t, len,
					  count <= 2 ? e + 8 : tiff_uint(t, len, e + 8, 4, le),
					  2, le);
		}
	}
	if (photometric > 2 || (has_extra && extra != 0))
		return 0;
	n = photometric == 2 ? 3 : 1;
	return spp > n ? (int)n : 0;
}

static const char *fail_on_name(enum kernel_fail_on f)
{
	switch (f) {
	case KFAIL_NONE:
		return "none";
	case KFAIL_ERROR:
		return "error";
	case KFAIL_WARNING:
		return "warning";
	case KFAIL_TRUNCATED:
	default:
		return "truncated";
	}
}

static VipsFailOn fail_on_vips(enum kernel_fail_on f)
{
	switch (f) {
	case KFAIL_NONE:
		return VIPS_FAIL_ON_NONE;
	case KFAIL_ERROR:
		return VIPS_FAIL_ON_ERROR;
	case KFAIL_WARNING:
		return VIPS_FAIL_ON_WARNING;
	case KFAIL_TRUNCATED:
	default:
		return VIPS_FAIL_ON_TRUNCATED;
	}
}

/* The name of the loader that read hdr ("" if unknown). */
static const char *loader_of(VipsImage *hdr)
{
	const char *loader = NULL;

	if (vips_image_get_typeof(hdr, VIPS_META_LOADER) &&
	    vips_image_get_string(hdr, VIPS_META_LOADER, &loader) == 0 && loader)
		return loader;
	return "";
}

/* The format "keep" writes for the loader that read the input. */
static enum kernel_format keep_format(VipsImage *hdr)
{
	const char *loader = loader_of(hdr);

	if (vips_isprefix("jpegload", loader))
		return KFMT_JPEG;
	if (vips_isprefix("webpload", loader))
		return KFMT_WEBP;
	return KFMT_PNG; /* png, and every other format */
}

/* The sample precision of a JPEG's frame header (SOF0-SOF15 but DHT, JPG, DAC), or 0
 * when in[0..len) is not a JPEG or has none in its first segments. */
static int jpeg_precision(const uint8_t *in, size_t len)
{
	size_t i = 2;

	if (len < 4 || in[0] != 0xff || in[1] != 0xd8)
		return 0;
	while (i + 4 < len && in[i] == 0xff) {
		uint8_t m = in[i + 1];
		size_t seg = (size_t)in[i + 2] << 8 | in[i + 3];

		if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc)
			return in[i + 4];
		if (m == 0xd9 || m == 0xda || seg < 2)
			return 0;
		i += 2 + seg;
	}
	return 0;
}

/* A header libvips refused: not an image, a JPEG of other than 8-bit samples
 * (libjpeg-turbo 2.1 as Debian 12 builds it decodes 8-bit only), or damage. */
static int fail_header(struct vjob *j, struct vherr *err)
{
	char line[VHERR_MSG_MAX / 2];
	int bits = jpeg_precision(j->in, j->len);

	j->vips_failed = 1;
	take_vips_error(line, sizeof(line));
	if (!vips_foreign_find_load_buffer(j->in, j->len)) {
		vips_error_clear();
		return vherr_set(err, VHERR_NOT_IMAGE, VHSTAGE_DECODE, NULL);
	}
	if (bits && bits != 8)
		return vherr_set(err, VHERR_UNSUPPORTED, VHSTAGE_DECODE,
				 "cannot decode a %d-bit JPEG: only 8-bit JPEG is supported "
				 "(libjpeg-turbo here decodes 8-bit samples)",
				 bits);
	return vherr_set(err, decode_code(line, j->in, j->len), VHSTAGE_DECODE,
			 "cannot read image header%s%s", *line ? ": " : "", line);
}

/* Opens the header only: no pixel is decoded. */
static int open_header(struct vjob *j, struct vherr *err)
{
	VipsImage *hdr =
	    vips_image_new_from_buffer(j->in, j->len, "", "access", VIPS_ACCESS_SEQUENTIAL,
				       "fail_on", fail_on_vips(j->p->fail_on), NULL);

	if (!hdr)
		return fail_header(j, err);
	j->in_w = hdr->Xsize;
	j->in_h = hdr->Ysize;
	j->swap = j->p->autorotate && vips_image_get_orientation_swap(hdr);
	j->has_icc = vips_image_get_typeof(hdr, VIPS_META_ICC_NAME) != 0;
	j->in_bands = hdr->Bands;
	j->in_interp = hdr->Type;
	j->wide =
	    hdr->Type == VIPS_INTERPRETATION_RGB16 || hdr->Type == VIPS_INTERPRETATION_GREY16;
	j->colours =
	    vips_isprefix("tiffload", loader_of(hdr)) ? tiff_colours(j->in, j->len) : 0;
	j->frames = VIPS_MAX(1, vips_image_get_n_pages(hdr));
	j->out_fmt = j->p->format == KFMT_KEEP ? keep_format(hdr) : j->p->format;
	g_object_unref(hdr); /* frees the decoder state before the real load */
	return 0;
}

/* ---- load and scale -------------------------------------------------------- */

/* The input as an 8-bit image of its colour bands (and alpha): the high byte of
 * 16-bit samples (PIL's rule for 16-bit RGB(A): its "RGB;16B" unpacking keeps the
 * most significant byte; libvips' GREY16 path rounds through float instead), and
 * without a TIFF's "unspecified" extra bands. Full decode: no shrink-on-load. */
static int load_prepared(struct vjob *j, struct vherr *err)
{
	VipsImage *out = vips_image_new_from_buffer(j->in, j->len, "", "fail_on",
						    fail_on_vips(j->p->fail_on), NULL);

	if (!out)
		return fail_decode(j, err);
	vjob_push(j, out);
	if (j->colours > 0) {
		if (vips_extract_band(j->cur, &out, 0, "n", j->colours, NULL))
			return fail_decode(j, err);
		vjob_push(j, out);
	}
	if (j->wide) {
		if (vips_rshift_const1(j->cur, &out, 8, NULL))
			return fail_decode(j, err);
		vjob_push(j, out);
		if (vips_cast_uchar(j->cur, &out, NULL))
			return fail_decode(j, err);
		vjob_push(j, out);
		if (vips_copy(j->cur, &out, "interpretation",
			      j->cur->Bands >= 3 ? VIPS_INTERPRETATION_sRGB
						 : VIPS_INTERPRETATION_B_W,
			      NULL))
			return fail_decode(j, err);
		vjob_push(j, out);
	}
	return 0;
}

/* Decodes with shrink-on-load to exactly geo.scaled_w x geo.scaled_h (oriented),
 * in sRGB or B_W, 8 bit (16-bit inputs are converted by thumbnail's colourspace
 * step). With no resize the size is the input's, and libvips' resize is identity. */
static int load_scaled(struct vjob *j, struct vherr *err)
{
	char opts[32];
	VipsImage *out = NULL;
	int rc;
	void *buf = (void *)j->in; /* libvips wraps it read-only, no copy */

	snprintf(opts, sizeof(opts), "fail_on=%s", fail_on_name(j->p->fail_on));
	if (j->wide || j->colours > 0) {
		rc = load_prepared(j, err);
		if (rc)
			return rc;
		if (j->has_icc && j->in_bands >= 3)
			rc = vips_thumbnail_image(
			    j->cur, &out, j->geo.scaled_w, "height", j->geo.scaled_h, "size",
			    VIPS_SIZE_FORCE, "no_rotate", !j->p->autorotate, "import_profile",
			    "srgb", "export_profile", "srgb", NULL);
		else
			rc = vips_thumbnail_image(j->cur, &out, j->geo.scaled_w, "height",
						  j->geo.scaled_h, "size", VIPS_SIZE_FORCE,
						  "no_rotate", !j->p->autorotate, NULL);
	} else if (j->has_icc && j->in_bands >= 3)
		rc = vips_thumbnail_buffer(
		    buf, j->len, &out, j->geo.scaled_w, "height", j->geo.scaled_h, "size",
		    VIPS_SIZE_FORCE, "no_rotate", !j->p->autorotate, "option_string", opts,
		    "import_profile",
		    j->in_interp == VIPS_INTERPRETATION_CMYK ? "cmyk" : "srgb",
		    "export_profile", "srgb", NULL);
	else
		rc =
		    vips_thumbnail_buffer(buf, j->len, &out, j->geo.scaled_w, "height",
					  j->geo.scaled_h, "size", VIPS_SIZE_FORCE, "no_rotate",
					  !j->p->autorotate, "option_string", opts, NULL);
	if (rc)
		return fail_decode(j, err);
	vjob_push(j, out);
	if (out->Xsize != j->geo.scaled_w || out->Ysize != j->geo.scaled_h)
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_TRANSFORM,
				 "thumbnail made %dx%d, planned %dx%d", out->Xsize, out->Ysize,
				 j->geo.scaled_w, j->geo.scaled_h);
	return 0;
}

/* ---- finishing steps, each on j->cur --------------------------------------- */

static int crop(struct vjob *j, struct vherr *err)
{
	VipsImage *out = NULL;

	if (vips_extract_area(j->cur, &out, j->geo.crop_x, j->geo.crop_y, j->geo.out_w,
			      j->geo.out_h, NULL))
		return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM, "cannot crop");
	vjob_push(j, out);
	return 0;
}

/* To sRGB 8 bit, with at most one extra (alpha) band. */
static int to_srgb(struct vjob *j, struct vherr *err)
{
	VipsImage *out = NULL;

	if (j->cur->Type != VIPS_INTERPRETATION_sRGB || j->cur->Bands < 3 ||
	    j->cur->BandFmt != VIPS_FORMAT_UCHAR) {
		if (vips_colourspace(j->cur, &out, VIPS_INTERPRETATION_sRGB, NULL))
			return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
					 "cannot convert to sRGB");
		vjob_push(j, out);
	}
	if (j->cur->BandFmt != VIPS_FORMAT_UCHAR) {
		if (vips_cast_uchar(j->cur, &out, NULL))
			return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
					 "cannot convert to 8 bit");
		vjob_push(j, out);
	}
	if (j->cur->Bands > 4) {
		if (vips_extract_band(j->cur, &out, 0, "n", 4, NULL))
			return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
					 "cannot drop extra bands");
		vjob_push(j, out);
	}
	return 0;
}

/* n values of the background colour (3: RGB, 4: RGB and opaque alpha). */
static VipsArrayDouble *background(const struct kernel_params *p, int n)
{
	double v[4] = {p->background[0], p->background[1], p->background[2], 255};

	return vips_array_double_new(v, n);
}

static int flatten(struct vjob *j, struct vherr *err)
{
	VipsArrayDouble *bg = background(j->p, 3);
	VipsImage *out = NULL;
	int rc = vips_flatten(j->cur, &out, "background", bg, NULL);

	vips_area_unref(VIPS_AREA(bg));
	if (rc)
		return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
				 "cannot flatten alpha");
	vjob_push(j, out);
	return 0;
}

static int pad(struct vjob *j, struct vherr *err)
{
	VipsArrayDouble *bg = background(j->p, j->cur->Bands == 4 ? 4 : 3);
	VipsImage *out = NULL;
	int rc =
	    vips_embed(j->cur, &out, j->geo.pad_x, j->geo.pad_y, j->geo.out_w, j->geo.out_h,
		       "extend", VIPS_EXTEND_BACKGROUND, "background", bg, NULL);

	vips_area_unref(VIPS_AREA(bg));
	if (rc)
		return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM, "cannot pad");
	vjob_push(j, out);
	return 0;
}

/* Grey as Pillow's convert("L") and the JPEG fast path's Y plane compute it: Rec. 601
 * luma of the sRGB values, rounded (libvips' B_W colourspace goes through linear light
 * and came out 7.9 MAD from Pillow). Runs on 8-bit sRGB with alpha already flattened. */
static int gray(struct vjob *j, struct vherr *err)
{
	VipsImage *m = vips_image_new_matrixv(3, 1, 0.299, 0.587, 0.114);
	VipsImage *luma = NULL, *out = NULL;
	int rc;

	if (!m)
		return fail_vips(j, err, VHERR_NOMEM, VHSTAGE_TRANSFORM,
				 "cannot convert to grey");
	rc = j->cur->Bands == 3 ? vips_recomb(j->cur, &luma, m, NULL)
				: vips_extract_band(j->cur, &luma, 0, NULL);
	g_object_unref(m); /* the operation holds its own reference */
	if (rc)
		return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
				 "cannot convert to grey");
	vjob_push(j, luma);
	if (vips_linear1(j->cur, &out, 1.0, 0.5, NULL)) /* round, then truncate */
		return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
				 "cannot convert to grey");
	vjob_push(j, out);
	if (vips_cast_uchar(j->cur, &out, NULL))
		return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
				 "cannot convert to grey");
	vjob_push(j, out);
	if (vips_copy(j->cur, &out, "interpretation", VIPS_INTERPRETATION_B_W, NULL))
		return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM,
				 "cannot convert to grey");
	vjob_push(j, out);
	return 0;
}

static int blur(struct vjob *j, struct vherr *err)
{
	VipsImage *out = NULL;

	if (vips_gaussblur(j->cur, &out, j->p->blur_sigma, NULL))
		return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM, "cannot blur");
	vjob_push(j, out);
	return 0;
}

static int sharpen(struct vjob *j, struct vherr *err)
{
	VipsImage *out = NULL;

	if (vips_sharpen(j->cur, &out, NULL))
		return fail_vips(j, err, VHERR_TRANSFORM, VHSTAGE_TRANSFORM, "cannot sharpen");
	vjob_push(j, out);
	return 0;
}

/* Everything after the scale, in the order kernel_describe lists it. Flatten and
 * pad run in sRGB so the background colour is exact; grey comes after them. */
static int finish(struct vjob *j, struct vherr *err)
{
	const struct kernel_params *p = j->p;
	int rc = 0;

	if (p->resize_w > 0 && p->resize_h > 0 && p->mode == GEOMETRY_CROP)
		rc = crop(j, err);
	if (!rc)
		rc = to_srgb(j, err);
	/* JPEG has no alpha, and --gray promises one band */
	if (!rc && (j->out_fmt == KFMT_JPEG || p->gray) && vips_image_hasalpha(j->cur))
		rc = flatten(j, err);
	if (!rc && p->resize_w > 0 && p->resize_h > 0 && p->mode == GEOMETRY_PAD)
		rc = pad(j, err);
	if (!rc && p->gray)
		rc = gray(j, err);
	if (!rc && p->blur_sigma > 0)
		rc = blur(j, err);
	if (!rc && p->sharpen)
		rc = sharpen(j, err);
	return rc;
}

/* ---- encode ---------------------------------------------------------------- */

/* A failed save. Pixels are decoded lazily, during the save; the encoders write to
 * memory and their size limits are checked up front (check_encodable), so a failed
 * save is the input failing to decode. libvips' message cannot tell us more: its
 * buffer is shared by every thread, and from the saver's side an upstream failure
 * reads "vips2png: unable to write to target". */
static int fail_save(struct vjob *j, struct vherr *err)
{
	char line[VHERR_MSG_MAX / 2];

	j->vips_failed = 1;
	take_vips_error(line, sizeof(line));
	return vherr_set(err, decode_code(line, j->in, j->len), VHSTAGE_DECODE,
			 "cannot decode image%s%s", *line ? ": " : "", line);
}

/* Decodes the whole pipeline into memory. Used before webpsave: libvips 8.14's
 * webpsave leaks its copy of the pipeline (every image and loader behind it) when
 * the pixels fail during the save (fixed upstream in 8.15.4, libvips#4107), and it
 * holds a whole-frame RGB(A) buffer anyway, so rendering first costs little. */
static int render(struct vjob *j, struct vherr *err)
{
	VipsImage *mem = vips_image_copy_memory(j->cur);

	if (!mem)
		return fail_save(j, err);
	vjob_push(j, mem);
	return 0;
}

static int check_encodable(const struct vjob *j, struct vherr *err)
{
	int w = j->cur->Xsize, h = j->cur->Ysize;
	int max = j->out_fmt == KFMT_JPEG   ? JPEG_MAX_SIDE
		  : j->out_fmt == KFMT_WEBP ? WEBP_MAX_SIDE
					    : INT32_MAX;

	if (w > max || h > max)
		return vherr_set(err, VHERR_ENCODE, VHSTAGE_ENCODE,
				 "image is %dx%d, over the %s limit of %d pixels per side", w,
				 h, j->out_fmt == KFMT_JPEG ? "JPEG" : "WebP", max);
	return 0;
}

static int encode(struct vjob *j, struct kernel_result *res, struct vherr *err)
{
	void *buf = NULL;
	size_t len = 0;
	int q = kernel_quality(j->p);
	/* explicit: libvips' "auto" turns subsampling off from Q 90, PIL never does */
	VipsForeignSubsample ss = j->p->subsample == KSUB_444 ? VIPS_FOREIGN_SUBSAMPLE_OFF
							      : VIPS_FOREIGN_SUBSAMPLE_ON;
	int rc = check_encodable(j, err);

	if (rc)
		return rc;
	if (j->out_fmt == KFMT_WEBP) {
		rc = render(j, err);
		if (rc)
			return rc;
	}
	if (j->out_fmt == KFMT_JPEG)
		rc = vips_jpegsave_buffer(j->cur, &buf, &len, "Q", q, "optimize_coding", FALSE,
					  "subsample_mode", ss, "strip", TRUE, NULL);
	else if (j->out_fmt == KFMT_WEBP)
		rc = vips_webpsave_buffer(j->cur, &buf, &len, "Q", q, "strip", TRUE, NULL);
	else
		rc = vips_pngsave_buffer(j->cur, &buf, &len, "compression", PNG_COMPRESSION,
					 "filter", VIPS_FOREIGN_PNG_FILTER_ALL, "strip", TRUE,
					 NULL);
	if (rc) {
		g_free(buf);
		return fail_save(j, err);
	}
	res->data = buf;
	res->len = len;
	res->in_w = j->in_w;
	res->in_h = j->in_h;
	res->out_w = j->cur->Xsize;
	res->out_h = j->cur->Ysize;
	res->format = j->out_fmt;
	res->frames = j->frames;
	res->frame_used = 0;
	res->kernel = "libvips";
	return 0;
}

/* ---- interface ------------------------------------------------------------- */

/* libvips' warnings: noted for the thread (vk_warned), printed only when data (the
 * VHPREP_VIPS_WARNINGS switch) is set. */
static void note_warning(const gchar *domain, GLogLevelFlags level, const gchar *message,
			 gpointer data)
{
	vk_warned = 1;
	if (data)
		g_log_default_handler(domain, level, message, NULL);
}

int vipskernel_global_init(const char *argv0, struct vherr *err)
{
	if (VIPS_INIT(argv0 ? argv0 : "vhprep")) {
		char line[VHERR_MSG_MAX / 2];

		take_vips_error(line, sizeof(line));
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_NONE,
				 "cannot initialise libvips: %s", line);
	}
	vips_concurrency_set(1);
	/* liborc's code memory is not thread-safe (orclock.h): without the lock, libvips'
	 * C loops instead of its vector code */
	if (!orclock_active())
		vips_vector_set_enabled(FALSE);
	vips_cache_set_max(0);
	vips_cache_set_max_mem(0);
	vips_cache_set_max_files(0);
	g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, note_warning,
			  getenv("VHPREP_VIPS_WARNINGS") ? (gpointer)1 : NULL);
	return 0;
}

void vipskernel_global_shutdown(void)
{
	vips_shutdown();
}

struct vipskernel *vipskernel_new(const struct kernel_params *params)
{
	struct vipskernel *vk = calloc(1, sizeof(*vk));

	if (vk)
		vk->params = params;
	return vk;
}

void vipskernel_free(struct vipskernel *vk)
{
	free(vk);
}

void vipskernel_shared_begin(void)
{
	pthread_rwlock_rdlock(&vk_text);
}

void vipskernel_shared_end(void)
{
	pthread_rwlock_unlock(&vk_text);
}

/* After a JPEG decoded without error at fail_on truncated or above but with warnings
 * (vk_warned): its first warning decides (plan_jpeg_warning), as in jpegfast.c. Only
 * a run alone can read it from the shared buffer; a run beside others asks for the
 * replay (vips_failed). On failure the result is released. */
static int judge_warnings(struct vjob *j, int alone, struct kernel_result *res,
			  struct vherr *err)
{
	char line[VHERR_MSG_MAX / 2];
	enum vherr_code code;

	if (!alone) {
		j->vips_failed = 1;
		kernel_result_release(res);
		return vherr_set(err, VHERR_CORRUPT, VHSTAGE_DECODE, "the decoder warned");
	}
	take_vips_error(line, sizeof(line));
	code = plan_jpeg_warning(line, j->p->fail_on);
	if (!code)
		return 0;
	kernel_result_release(res);
	return vherr_set(err, code, VHSTAGE_DECODE, "cannot decode image: %s", line);
}

/* One pass over the file (alone: no other libvips run beside it, see vipskernel_run);
 * *vips_failed tells whether a libvips call failed or the pass could not judge. */
static int run_once(struct vipskernel *vk, const uint8_t *in, size_t len, int alone,
		    struct kernel_result *res, struct vherr *err, int *vips_failed)
{
	struct vjob j = {.p = vk->params, .in = in, .len = len};
	int rc;

	vk_warned = 0;
	rc = open_header(&j, err);

	if (!rc)
		rc = plan_image(j.p, j.in_w, j.in_h, j.swap, &j.geo, err);
	if (!rc)
		rc = load_scaled(&j, err);
	if (!rc)
		rc = finish(&j, err);
	if (!rc)
		rc = encode(&j, res, err);
	vjob_release(&j); /* closes the loader: a JPEG decoder that warned logs it here */
	if (!rc && vk_warned && j.p->fail_on != KFAIL_NONE && is_jpeg(in, len))
		rc = judge_warnings(&j, alone, res, err);
	vips_error_clear(); /* warnings of a successful decode land there too */
	*vips_failed = j.vips_failed;
	return rc;
}

int vipskernel_run(struct vipskernel *vk, const uint8_t *in, size_t len,
		   struct kernel_result *res, struct vherr *err)
{
	int rc, vips_failed = 0;

	memset(res, 0, sizeof(*res));
	if (len == 0)
		return vherr_set(err, VHERR_EMPTY, VHSTAGE_DECODE, NULL);
	pthread_rwlock_rdlock(&vk_text);
	rc = run_once(vk, in, len, 0, res, err, &vips_failed);
	pthread_rwlock_unlock(&vk_text);
	if (rc && vips_failed) {
		/* alone now: the buffer holds this file's text and nothing else */
		pthread_rwlock_wrlock(&vk_text);
		vips_error_clear();
		rc = run_once(vk, in, len, 1, res, err, &vips_failed);
		pthread_rwlock_unlock(&vk_text);
	}
	return rc;
}
