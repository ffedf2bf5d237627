/* jpegfast: one JPEG in, one JPEG out, through libturbojpeg 2.1 and libswscale 6.
 *
 * The path of one file (jpegfast_run), each step one function on a struct jfjob:
 *   read_header   our marker walk (EXIF orientation, ICC, does an EOI follow) and
 *                 tjDecompressHeader3: size, subsampling, colour space
 *   plan          plan_image (kernels/plan.c, shared with vipskernel.c): width *
 *                 height > max_pixels → TOO_LARGE before any pixel decode, then
 *                 geometry_plan on the oriented size; the output's subsampling
 *   decode        tjDecompressToYUVPlanes at the DCT scale pick_dct_shift picks:
 *                 Y, Cb, Cr planes as stored (no colour conversion, no upsampling)
 *   resample      each plane to the planned size in the stored orientation
 *                 (chroma at the output's subsampled size), libswscale
 *   orient        EXIF orientation 2-8 applied to every plane (flips, transposes)
 *   place         crop window (no copy) or pad canvas (background in YCbCr)
 *   encode        tjCompressFromYUVPlanes into a reused buffer, copied out
 * A plane that a step does not change is passed on, not copied.
 *
 * The scaler. Measured on this machine (AMD EPYC, AVX2; thread CPU time; 500x375
 * q90 4:4:4 photo-like JPEGs from vhprep-mkimages → 224x224 q75 4:2:0; MAD = mean
 * absolute difference of the decoded output against the PIL loop's output, 0-255,
 * 60 images; "vs libvips" the same against vipskernel's output):
 *   every plane with                     us per Y plane   MAD vs PIL   vs libvips
 *   libyuv ScalePlane kFilterBox              59             3.73
 *   libyuv ScalePlane kFilterBilinear         58             4.27
 *   libswscale SWS_AREA                       66             1.56         1.97
 *   libswscale SWS_BICUBIC                   157             1.46         1.75
 *   libswscale SWS_LANCZOS                   164             1.89
 *   Y SWS_BICUBIC, chroma SWS_AREA       157 (chroma 2x~40)  1.18         1.54
 *   (libvips' own path, lanczos3 in RGB:                     1.34)
 * libyuv's box filter falls back to 2-tap bilinear as soon as one axis shrinks by
 * less than 2 (375 → 224 does), which aliases grain, hatching and text and misses the
 * issue's 3.0 bar. libswscale's filters are antialiased at any factor. Bicubic on the
 * luma plane is what Pillow's resize does (its default filter), and luma is where the
 * detail is; chroma for a 4:2:0 output is shrunk with the area filter, an exact box
 * like the 2x2 averaging of 4:2:0 encoders, at under half the cost (chroma kept at
 * full resolution, 4:4:4 from quality 90, gets bicubic too). Enlarging uses bicubic on
 * every plane (MAD 1.24 vs 1.52 for area, 160x120 → 224x224, equal cost). Contexts
 * (80-300 us to build) are cached per thread by size (PLANE_SCALERS of them, kernels/plane.h),
 * so a dataset of one size builds them once.
 *
 * libturbojpeg 2.1.5 behaviours this file relies on (checked in its source):
 * - tjDecompressHeader3 returns -1 on a header warning with every output set, and
 *   0 with nothing set when the data ends before a frame header.
 * - The decoder's memory source answers the end of the data with a warning
 *   ("Premature end of JPEG file") and a fake EOI; a warning makes the call return
 *   -1 with tjGetErrorCode TJERR_WARNING after a complete decode; only the first
 *   warning's text is kept (thread-local). tjDecompressToYUVPlanes calls
 *   jpeg_finish_decompress, which reads on to the EOI; libvips does not (decode_warning).
 * libvips 8.14.1 fails a file at fail_on >= truncated when its reader meets the end of
 * the data while it reads the rows (a progressive file reads every scan first, so
 * without its EOI it always does; a single scan only where the bit reader, which reads
 * a few bytes ahead, runs out; a marker after the scan stops it). Only a decode can
 * tell, so for a file without an EOI after its first scan, read_past_end repeats
 * libvips' reading with libjpeg's own API (1/8 scale, grey: the entropy decode is the
 * same). decode() says how the rest of a decode is judged.
 * - Y planes of 4:2:0/4:2:2 are padded to even sizes on both sides of the codec;
 *   the encoder reads that padding, so pad_for_encoder fills it. */
#include "kernels/jpegfast.h"

#include <libswscale/swscale.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <turbojpeg.h>
/* after stdio.h (jpeglib.h uses FILE and size_t without including them) */
#include <jpeglib.h>

#include "kernels/exif.h"
#include "kernels/geometry.h"
#include "kernels/plan.h"
#include "kernels/plane.h"

/* libjpeg's JPEG_MAX_DIMENSION. */
#define JPEG_MAX_SIDE 65500
#define JF_MAX_PLANES 3
#define JMSG_LENGTH   200 /* libjpeg's JMSG_LENGTH_MAX */

/* One per worker thread. Every field but params is worker-only. */
struct jpegfast {
	const struct kernel_params *params; /* set at creation, shared read-only */
	tjhandle dec, enc;
	struct plane_buf decoded; /* planes as decoded */
	struct plane_buf resampled;
	struct plane_buf oriented;
	struct plane_buf placed; /* pad canvases */
	struct plane_buf jpeg;	 /* encoder output, tjBufSize of the largest image */
	struct plane_scalers scalers;
	struct plane_buf thumb, thumb_oriented; /* the preview's source thumbnail */
	int thumb_box;				/* kernel_want_thumb's box; 0: no thumbnail */
};

/* What the markers up to the first scan say. */
struct jfmarkers {
	int has_icc;
	size_t scan_off; /* where the first scan's entropy-coded data starts; 0: no scan */
	size_t exif_off, exif_len; /* the last APP1 Exif segment's TIFF data; len 0: none */
};

/* Everything about one file; lives for one jpegfast_run. */
struct jfjob {
	struct jpegfast *jf;
	const struct kernel_params *p;
	const uint8_t *in;
	size_t len;
	struct jfmarkers m;
	int lacks_eoi;	/* no EOI marker after the first scan */
	int in_w, in_h; /* as stored */
	int subsamp, colorspace;
	int orientation;     /* applied: 1 without autorotate */
	int swap;	     /* orientation 5-8: width and height swap */
	struct geometry geo; /* on the oriented size */
	int pre_w, pre_h;    /* the scaled size before orientation */
	int out_samp;	     /* TJSAMP_GRAY, TJSAMP_420 or TJSAMP_444 */
	int quality;
	int n_planes; /* in cur: 1 or 3 */
	struct plane cur[JF_MAX_PLANES];
};

/* ---- byte helpers ---------------------------------------------------------- */

static unsigned be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static int is_jpeg(const uint8_t *in, size_t len)
{
	return len >= 3 && in[0] == 0xff && in[1] == 0xd8 && in[2] == 0xff;
}

/* Whether an EOI marker follows the first scan's header at from. Entropy-coded data
 * cannot hold FF D9 (0xFF is stuffed), so this tells a complete file, trailers after
 * the EOI included, from a cut one. Searches backwards: a whole file ends with it. */
static int has_eoi(const uint8_t *in, size_t len, size_t from)
{
	for (size_t i = len; i > from + 1; i--)
		if (in[i - 1] == 0xd9 && in[i - 2] == 0xff)
			return 1;
	return 0;
}

/* Walks the segments from SOI to the first SOS (or to the end of what is there).
 * Every length is checked against len; the walk only moves forward. Bytes between
 * segments that are not a marker are skipped, as libjpeg's next_marker skips them
 * (with a "Corrupt JPEG data: N extraneous bytes" warning), so the walk finds the
 * same scan libjpeg decodes. */
static void scan_markers(const uint8_t *in, size_t len, struct jfmarkers *m)
{
	size_t pos = 2;

	memset(m, 0, sizeof(*m));
	while (pos + 4 <= len) {
		unsigned marker, seg;
		const uint8_t *d;

		while (pos < len && in[pos] != 0xff) /* garbage, as libjpeg skips it */
			pos++;
		while (pos < len && in[pos] == 0xff) /* fill bytes */
			pos++;
		if (pos >= len)
			return;
		marker = in[pos++];
		if (marker == 0xd9)
			return;
		if (marker == 0x00 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8))
			continue; /* FF 00 in garbage, or no length */
		if (pos + 2 > len || (seg = be16(in + pos)) < 2 || seg > len - pos)
			return;
		d = in + pos + 2;
		seg -= 2;
		if (marker == 0xe1 && seg >= 6 && memcmp(d, "Exif\0\0", 6) == 0) {
			m->exif_off =
			    (size_t)(d - in) + 6; /* the last one wins, as in libvips */
			m->exif_len = seg - 6;
		} else if (marker == 0xe2 && seg >= 12 && memcmp(d, "ICC_PROFILE\0", 12) == 0) {
			m->has_icc = 1;
		} else if (marker == 0xda) {
			m->scan_off = pos + 2 + seg;
			return;
		}
		pos += 2 + seg;
	}
}

int jpegfast_exif_orientation(const uint8_t *in, size_t len)
{
	struct jfmarkers m;

	if (!in || !is_jpeg(in, len))
		return 1;
	scan_markers(in, len, &m);
	return m.exif_len ? exif_orientation(in + m.exif_off, m.exif_len) : 1;
}

/* ---- buffers and planes ---------------------------------------------------- */

/* The output plane size for plane i of a w x h image in subsampling samp. */
static void plane_size(int i, int w, int h, int samp, int *pw, int *ph)
{
	*pw = i && samp == TJSAMP_420 ? (w + 1) / 2 : w;
	*ph = i && samp == TJSAMP_420 ? (h + 1) / 2 : h;
}

/* ---- errors ---------------------------------------------------------------- */

/* Copies libturbojpeg's message for the last call on h into line. */
static void take_tj_error(tjhandle h, char *line, size_t size)
{
	const char *msg = tjGetErrorStr2(h);

	snprintf(line, size, "%s", msg ? msg : "");
	line[strcspn(line, "\n")] = '\0';
}

/* The code for a failed decode, as vipskernel.c's decode_code decides it. */
static enum vherr_code decode_code(const char *msg, int lacks_eoi)
{
	if (strcasestr(msg, "out of memory") || strcasestr(msg, "allocation failure"))
		return VHERR_NOMEM;
	if (strcasestr(msg, "corrupt"))
		return VHERR_CORRUPT;
	if (strcasestr(msg, "premature end") || lacks_eoi)
		return VHERR_TRUNCATED;
	return VHERR_CORRUPT;
}

/* ---- header, limits, plan -------------------------------------------------- */

static int subsamp_ok(int subsamp, int colorspace)
{
	if (colorspace == TJCS_GRAY)
		return subsamp == TJSAMP_GRAY;
	return colorspace == TJCS_YCbCr &&
	       (subsamp == TJSAMP_444 || subsamp == TJSAMP_422 || subsamp == TJSAMP_420 ||
		subsamp == TJSAMP_440 || subsamp == TJSAMP_411);
}

/* tjDecompressHeader3, with a header warning counted as success (the decode meets it
 * again and applies fail_on). Returns 0, or -1 with the reason in msg. */
static int tj_header(tjhandle h, const uint8_t *in, size_t len, int *w, int *ht, int *ss,
		     int *cs, char *msg, size_t size)
{
	*w = *ht = 0;
	*ss = *cs = -1;
	if (tjDecompressHeader3(h, in, len, w, ht, ss, cs) &&
	    tjGetErrorCode(h) != TJERR_WARNING) {
		take_tj_error(h, msg, size);
		return -1;
	}
	if (*w <= 0 || *ht <= 0) { /* the data ended before a frame header */
		snprintf(msg, size, "no image before the end of the data");
		return -1;
	}
	return 0;
}

static int read_header(struct jfjob *j, struct vherr *err)
{
	char line[VHERR_MSG_MAX / 2];

	if (!is_jpeg(j->in, j->len))
		return vherr_set(err, VHERR_NOT_IMAGE, VHSTAGE_DECODE, NULL);
	scan_markers(j->in, j->len, &j->m);
	/* no scan: look at the tail only, as vipskernel.c's data_looks_truncated */
	j->lacks_eoi = !has_eoi(j->in, j->len,
				j->m.scan_off ? j->m.scan_off
				: j->len > 64 ? j->len - 64
					      : 0);
	if (tj_header(j->jf->dec, j->in, j->len, &j->in_w, &j->in_h, &j->subsamp,
		      &j->colorspace, line, sizeof(line)))
		return vherr_set(err, decode_code(line, j->lacks_eoi), VHSTAGE_DECODE,
				 "cannot read image header: %s", line);
	if (!subsamp_ok(j->subsamp, j->colorspace) || j->m.has_icc)
		return vherr_set(err, VHERR_INTERNAL, VHSTAGE_DECODE,
				 "the jpeg-fast path cannot take this JPEG (colour space %d, "
				 "subsampling %d%s)",
				 j->colorspace, j->subsamp,
				 j->m.has_icc ? ", ICC profile" : "");
	if (j->p->autorotate && j->m.exif_len)
		j->orientation = exif_orientation(j->in + j->m.exif_off, j->m.exif_len);
	j->swap = j->orientation >= 5;
	return 0;
}

/* The shared plan, the JPEG side limit, and the output's subsampling. */
static int plan(struct jfjob *j, struct vherr *err)
{
	const struct kernel_params *p = j->p;
	int rc = plan_image(p, j->in_w, j->in_h, j->swap, &j->geo, err);

	if (rc)
		return rc;
	if (j->geo.out_w > JPEG_MAX_SIDE || j->geo.out_h > JPEG_MAX_SIDE)
		return vherr_set(err, VHERR_ENCODE, VHSTAGE_ENCODE,
				 "image is %dx%d, over the JPEG limit of %d pixels per side",
				 j->geo.out_w, j->geo.out_h, JPEG_MAX_SIDE);
	j->pre_w = j->swap ? j->geo.scaled_h : j->geo.scaled_w;
	j->pre_h = j->swap ? j->geo.scaled_w : j->geo.scaled_h;
	j->quality = kernel_quality(p);
	j->out_samp = p->gray			 ? TJSAMP_GRAY
		      : p->subsample == KSUB_444 ? TJSAMP_444
						 : TJSAMP_420;
	j->n_planes = p->gray ? 1 : 3;
	return 0;
}

/* ---- libvips' reading, for a file without an EOI --------------------------- */

/* libvips' JPEG reader turns the 100th warning of a file into a fatal error, whatever
 * fail_on (jpeg2vips.c: readjpeg_emit_message). */
#define LIBVIPS_MAX_WARNINGS 100

struct probe_err {
	struct jpeg_error_mgr pub;
	jmp_buf jmp;
	int warnings; /* met in the reading, up to LIBVIPS_MAX_WARNINGS */
};

struct probe_src {
	struct jpeg_source_mgr pub;
	int hit_end; /* fill_input_buffer was called: the data had ended */
};

static void probe_error_exit(j_common_ptr c)
{
	longjmp(((struct probe_err *)c->err)->jmp, 1);
}

static void probe_output_message(j_common_ptr c)
{
	(void)c; /* silent: only whether the end was met, and how many warnings */
}

/* Counts a warning; the 100th ends the reading, as libvips' reader fails there. */
static void probe_emit_message(j_common_ptr c, int level)
{
	struct probe_err *e = (struct probe_err *)c->err;

	if (level < 0 && ++e->warnings >= LIBVIPS_MAX_WARNINGS)
		longjmp(e->jmp, 1);
}

static void probe_init_source(j_decompress_ptr d)
{
	(void)d;
}

/* The end of the data, answered as libjpeg's memory source and libvips' do: a fake EOI. */
static boolean probe_fill(j_decompress_ptr d)
{
	static const JOCTET eoi[2] = {0xff, JPEG_EOI};
	struct probe_src *s = (struct probe_src *)d->src;

	s->hit_end = 1;
	s->pub.next_input_byte = eoi;
	s->pub.bytes_in_buffer = sizeof(eoi);
	return TRUE;
}

static void probe_skip(j_decompress_ptr d, long n)
{
	struct jpeg_source_mgr *s = d->src;

	if (n <= 0)
		return;
	while ((size_t)n > s->bytes_in_buffer) {
		n -= (long)s->bytes_in_buffer;
		probe_fill(d);
	}
	s->next_input_byte += n;
	s->bytes_in_buffer -= (size_t)n;
}

static void probe_term(j_decompress_ptr d)
{
	(void)d;
}

/* The state of one read_past_end, in its caller's frame: nothing the reading changes
 * is a local of the function that calls setjmp. */
struct probe {
	struct jpeg_decompress_struct d;
	struct probe_err e;
	struct probe_src s;
};

/* The reading of read_past_end into p; a fatal error ends it early. */
static void probe_read(struct probe *p, const uint8_t *in, size_t len)
{
	JSAMPARRAY row;

	p->d.err = jpeg_std_error(&p->e.pub);
	p->e.pub.error_exit = probe_error_exit;
	p->e.pub.output_message = probe_output_message;
	p->e.pub.emit_message = probe_emit_message;
	if (setjmp(p->e.jmp)) {
		jpeg_destroy_decompress(&p->d);
		return;
	}
	jpeg_create_decompress(&p->d);
	p->s.pub.next_input_byte = in;
	p->s.pub.bytes_in_buffer = len;
	p->s.pub.init_source = probe_init_source;
	p->s.pub.fill_input_buffer = probe_fill;
	p->s.pub.skip_input_data = probe_skip;
	p->s.pub.resync_to_restart = jpeg_resync_to_restart;
	p->s.pub.term_source = probe_term;
	p->d.src = &p->s.pub;
	jpeg_read_header(&p->d, TRUE);
	p->d.scale_num = 1;
	p->d.scale_denom = 8;
	p->d.out_color_space = JCS_GRAYSCALE;
	p->d.dct_method = JDCT_IFAST;
	jpeg_start_decompress(&p->d);
	row = (*p->d.mem->alloc_sarray)((j_common_ptr)&p->d, JPOOL_IMAGE, p->d.output_width, 1);
	while (p->d.output_scanline < p->d.output_height)
		jpeg_read_scanlines(&p->d, row, 1);
	jpeg_destroy_decompress(&p->d);
}

/* Whether libjpeg, reading in..len as libvips does (header, start, every row, no
 * jpeg_finish_decompress), asks for data past the end. A fatal error stops the reading
 * there (libvips fails on it too; decode() fails it on its own). */
static int read_past_end(const uint8_t *in, size_t len)
{
	struct probe p = {0};

	probe_read(&p, in, len);
	return p.s.hit_end;
}

/* Whether libvips' reading of in..len meets LIBVIPS_MAX_WARNINGS warnings. */
static int too_many_warnings(const uint8_t *in, size_t len)
{
	struct probe p = {0};

	probe_read(&p, in, len);
	return p.e.warnings >= LIBVIPS_MAX_WARNINGS;
}

/* ---- decode ---------------------------------------------------------------- */

/* log2 of the DCT scale denominator: the smallest scale of 1, 1/2, 1/4, 1/8 that
 * keeps the decoded image at least JPEGFAST_DCT_KEEP (params->dct_keep) times the
 * planned size on both axes (libjpeg-turbo 2.1's M/8 scales are slower than a full
 * decode and alias, so none of those).
 *
 * Measured with bench/dct-bench.sh (vhprep-mkimages photos at q90, 6 per size, ->
 * 224x224 q75; instructions per image by callgrind, CPU ms the median of 3 passes on a
 * loaded shared machine; MAD against the docs' PIL loop, which decodes in full):
 *   source     KEEP      scale  decoded    Minstr/image  CPU ms  MAD vs PIL
 *   4000x3000  1-1.5     1/8    500x375        258         38     0.77
 *              2 (old)   1/4    1000x750       405         48     0.66
 *              full      1/1    4000x3000      536        200     1.01
 *   2000x1500  1-1.5     1/4    500x375        108         11     0.85
 *              2 (old)   1/2    1000x750       121         12     0.77
 *   1600x1200  1-1.25    1/4    400x300         71          9     1.05
 *              1.5, 2    1/2    800x600         79          9     0.86
 *   1024x768   1-1.5     1/2    512x384         35          4     1.11
 *              2 (old)   1/1    1024x768        43          5     0.96
 * Every choice stays far inside the 3.0 bar of tests/bench/test_same_pictures.sh (the
 * final bicubic resample still shrinks by 1.25x or more); 1/8 on 12 MP saves 36% of the
 * instructions. KEEP 1.25 takes every saving above and never leaves the final
 * resample less than 1.25x to shrink, so it never enlarges. */
static int pick_dct_shift(const struct jfjob *j)
{
	double keep = j->p->dct_keep > 0 ? j->p->dct_keep : JPEGFAST_DCT_KEEP;
	int shift = 0;

	if (j->p->resize_w <= 0 || j->p->resize_h <= 0)
		return 0;
	while (shift < 3) {
		tjscalingfactor sf = {1, 2 << shift};

		if (TJSCALED(j->in_w, sf) < keep * j->pre_w ||
		    TJSCALED(j->in_h, sf) < keep * j->pre_h)
			break;
		shift++;
	}
	return shift;
}

/* The rule for a decode (issue 12 item 1): an output is made only from planes the
 * decoder wrote in full, and the verdict is the one libvips 8.14's jpegload gives on the
 * same bytes at the same fail_on level.
 *
 * libvips reads the rows and stops: it never calls jpeg_finish_decompress, so what lies
 * after the last row (markers, a second scan, a missing EOI) is never seen by it unless
 * its reader runs into the end of the data while decoding (read_past_end), which it
 * fails at fail_on >= truncated. tjDecompressToYUVPlanes reads on to the EOI, and its
 * error code cannot be trusted to tell a warning from an error: once any warning was
 * emitted in the call, tjGetErrorCode says TJERR_WARNING even when a later fatal error
 * ("Bogus Huffman table definition") stopped the decode before one row was written,
 * and only one message survives. So the planes themselves say how far the decode got:
 * rows are written top to bottom, a block of every row of an iMCU row at a time, so the
 * decode finished every row iff every byte of the last row of each plane was written
 * (decode_rows' done, told by canary patterns written there before the call).
 *   - rows unfinished: the file fails (a fatal error, or the warning fail_on stopped
 *     at), whatever fail_on: libvips fails on a fatal error at every level.
 *   - rows finished: whatever was said after them (e.g. "extraneous bytes before marker
 *     0xd9", "Didn't expect more than one scan") is ignored as libvips never sees it.
 *     Unless fail_on is none the decode stops at the first warning
 *     (TJFLAG_STOPONWARNING), so finished rows mean it came after them.
 *   - a warning stopped the rows: at fail_on=warning the file fails; at truncated and
 *     error the warning decides (plan_jpeg_warning, as vipskernel.c's judge_warnings):
 *     "premature end of data segment" means the rows after it are libjpeg's grey, not
 *     the file's, and the file fails; any other first warning leaves the rows whole,
 *     and the decode runs again without stopping.
 *   - read_past_end fails as truncated unless fail_on is none.
 *   - rows whole after warnings: libvips' reader gives up at its 100th warning, at
 *     every level (too_many_warnings repeats its reading), so the file fails as
 *     corrupt. */

/* Canaries for done (decode_rows): A first; where a byte of a last row still holds A's
 * value after a decode that stopped, B tells. */
#define CANARY_A 0x5a
#define CANARY_B 0xa5

/* Canary c's value at column x: its byte, then its complement, alternating (so A's and
 * B's values differ at every column). */
static uint8_t canary_at(uint8_t c, int x)
{
	return x & 1 ? (uint8_t)~c : c;
}

static uint8_t *last_row(const struct plane *pl)
{
	return pl->p + (size_t)(pl->h - 1) * pl->stride;
}

/* Fills the last row of each of the n planes with canary c. */
static void canary_set(const struct plane *pl, int n, uint8_t c)
{
	for (int i = 0; i < n; i++)
		for (int x = 0; x < pl[i].w; x++)
			last_row(&pl[i])[x] = canary_at(c, x);
}

/* Whether a byte of the last row of one of the n planes holds canary c's value. */
static int canary_any(const struct plane *pl, int n, uint8_t c)
{
	for (int i = 0; i < n; i++)
		for (int x = 0; x < pl[i].w; x++)
			if (last_row(&pl[i])[x] == canary_at(c, x))
				return 1;
	return 0;
}

/* Copies the last rows of the n planes one after another into out (NULL: copies
 * nothing). Returns their total length. */
static size_t last_rows_copy(const struct plane *pl, int n, uint8_t *out)
{
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		if (out)
			memcpy(out + len, last_row(&pl[i]), (size_t)pl[i].w);
		len += (size_t)pl[i].w;
	}
	return len;
}

/* Whether a byte of the last rows was written by neither decode: it held canary A's
 * value after the first (saved, laid out by last_rows_copy) and holds B's now. */
static int canary_unwritten(const struct plane *pl, int n, const uint8_t *saved)
{
	for (int i = 0; i < n; saved += pl[i].w, i++)
		for (int x = 0; x < pl[i].w; x++)
			if (saved[x] == canary_at(CANARY_A, x) &&
			    last_row(&pl[i])[x] == canary_at(CANARY_B, x))
				return 1;
	return 0;
}

/* One tjDecompressToYUVPlanes into the planes pl[0..n) with canary c in their last
 * rows. Returns its result. */
static int tj_decode(struct jfjob *j, const struct plane *pl, int n, int dw, int dh, int flags,
		     uint8_t c)
{
	unsigned char *dst[3] = {NULL, NULL, NULL};
	int strides[3] = {0, 0, 0};

	for (int i = 0; i < n; i++) {
		dst[i] = pl[i].p;
		strides[i] = pl[i].stride;
	}
	canary_set(pl, n, c);
	return tjDecompressToYUVPlanes(j->jf->dec, j->in, j->len, dst, dw, strides, dh, flags);
}

/* Decodes into j->cur; *done is whether every row of every plane was written. A call
 * that returns 0 met no warning and no error: it wrote them all. One that stopped (an
 * error, or the first warning under TJFLAG_STOPONWARNING) may have stopped between two
 * blocks of the last iMCU row, whose rows then hold the file's pixels on the left and
 * what the buffers held before on the right. So the last rows are judged byte by byte:
 * when a byte still holds canary A's value the file is decoded again under B, and a
 * byte that held A's value then and holds B's now was never written (a written byte is
 * the same in both decodes). Returns the result of the last tjDecompressToYUVPlanes. */
static int decode_rows(struct jfjob *j, int n, int dw, int dh, int flags, int *done)
{
	int rc = tj_decode(j, j->cur, n, dw, dh, flags, CANARY_A);
	uint8_t *saved;

	*done = 1;
	if (rc == 0 || !canary_any(j->cur, n, CANARY_A))
		return rc;
	saved = malloc(last_rows_copy(j->cur, n, NULL));
	if (!saved) {
		*done = 0; /* cannot tell: the file fails */
		return rc;
	}
	last_rows_copy(j->cur, n, saved);
	rc = tj_decode(j, j->cur, n, dw, dh, flags, CANARY_B);
	*done = !canary_unwritten(j->cur, n, saved);
	free(saved);
	return rc;
}

static int decode(struct jfjob *j, struct vherr *err)
{
	tjscalingfactor sf = {1, 1 << pick_dct_shift(j)};
	int dw = TJSCALED(j->in_w, sf), dh = TJSCALED(j->in_h, sf);
	int n = j->subsamp == TJSAMP_GRAY ? 1 : 3, w[3], h[3];
	enum kernel_fail_on f = j->p->fail_on;
	int truncated = f != KFAIL_NONE && j->lacks_eoi && read_past_end(j->in, j->len);
	int flags = f != KFAIL_NONE ? TJFLAG_STOPONWARNING : 0;
	char line[VHERR_MSG_MAX / 2] = "";
	enum vherr_code code;
	int rc, done;

	for (int i = 0; i < n; i++) {
		w[i] = tjPlaneWidth(i, dw, j->subsamp);
		h[i] = tjPlaneHeight(i, dh, j->subsamp);
	}
	rc = plane_alloc(&j->jf->decoded, j->cur, n, w, h, err);
	if (rc)
		return rc;
	rc = decode_rows(j, n, dw, dh, flags, &done);
	if (!done && !truncated && rc && f != KFAIL_WARNING &&
	    tjGetErrorCode(j->jf->dec) == TJERR_WARNING) { /* stopped at the first warning */
		take_tj_error(j->jf->dec, line, sizeof(line));
		code = plan_jpeg_warning(line, f);
		if (code)
			return vherr_set(err, code, VHSTAGE_DECODE, "cannot decode image: %s",
					 line);
		line[0] = '\0'; /* it leaves the rows whole: decode on past it, as libvips */
		rc = decode_rows(j, n, dw, dh, 0, &done);
	}
	if (rc)
		take_tj_error(j->jf->dec, line, sizeof(line));
	if (truncated) /* libvips' code comes from its first message, as decode_code does */
		return vherr_set(err, decode_code(line, 1), VHSTAGE_DECODE,
				 "cannot decode image: the data ends inside the scan%s%s",
				 line[0] ? ": " : "", line);
	if (!done) { /* at fail_on=warning a warning stops the decode: "corrupt" */
		int stopped = f == KFAIL_WARNING && tjGetErrorCode(j->jf->dec) == TJERR_WARNING;

		return vherr_set(err, stopped ? VHERR_CORRUPT : decode_code(line, 0),
				 VHSTAGE_DECODE, "cannot decode image: %s",
				 line[0] ? line : "the decoder stopped before the last row");
	}
	if (rc && too_many_warnings(j->in, j->len)) /* rows whole, but libvips gives up */
		return vherr_set(err, VHERR_CORRUPT, VHSTAGE_DECODE,
				 "cannot decode image: %d warnings or more, the first: %s",
				 LIBVIPS_MAX_WARNINGS, line);
	j->cur[0].w = dw; /* the Y plane may be padded to even sizes; chroma is exact */
	j->cur[0].h = dh;
	return 0;
}

/* ---- the preview's source thumbnail ---------------------------------------- */

static int scaler_flags(const struct plane *src, const struct plane *dst, int sharp);

/* (w, h) shrunk to fit box x box, the aspect kept, each side at least 1. */
static void fit_box(int w, int h, int box, int *tw, int *th)
{
	*tw = w;
	*th = h;
	if (w <= box && h <= box)
		return;
	if (w >= h) {
		*tw = box;
		*th = (int)(((int64_t)h * box + w / 2) / w);
	} else {
		*th = box;
		*tw = (int)(((int64_t)w * box + h / 2) / h);
	}
	*th = *th < 1 ? 1 : *th;
	*tw = *tw < 1 ? 1 : *tw;
}

static uint8_t clamp_u8(int v)
{
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* Packs Y (n 1) or Y, Cb, Cr (n 3, same size) into t as grey or sRGB (JFIF's full-range
 * conversion, 16-bit fixed point). 0, or -1 when out of memory. */
static int thumb_pack(const struct plane *pl, int n, struct kernel_thumb *t)
{
	int w = pl[0].w, h = pl[0].h;
	uint8_t *px = malloc((size_t)w * h * n);

	if (!px)
		return -1;
	for (int y = 0; y < h; y++) {
		const uint8_t *Y = pl[0].p + (size_t)y * pl[0].stride;
		uint8_t *o = px + (size_t)y * w * n;

		if (n == 1) {
			memcpy(o, Y, (size_t)w);
			continue;
		}
		const uint8_t *cb = pl[1].p + (size_t)y * pl[1].stride;
		const uint8_t *cr = pl[2].p + (size_t)y * pl[2].stride;
		for (int x = 0; x < w; x++) {
			int l = Y[x] << 16, u = cb[x] - 128, v = cr[x] - 128;

			o[3 * x] = clamp_u8((l + 91881 * v + 32768) >> 16);
			o[3 * x + 1] = clamp_u8((l - 22554 * u - 46802 * v + 32768) >> 16);
			o[3 * x + 2] = clamp_u8((l + 116130 * u + 32768) >> 16);
		}
	}
	*t = (struct kernel_thumb){.px = px, .w = w, .h = h, .bands = n};
	return 0;
}

/* The decoded planes (j->cur, straight after decode) shrunk to the thumbnail box,
 * oriented, packed into t. Best effort: on any failure t stays empty. */
static void make_thumb(struct jfjob *j, struct kernel_thumb *t)
{
	struct jpegfast *jf = j->jf;
	int n = j->subsamp == TJSAMP_GRAY ? 1 : 3, w[3], h[3], tw, th;
	struct plane sc[3], turned[3];
	struct vherr err;
	struct timespec t0, t1;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	fit_box(j->cur[0].w, j->cur[0].h, jf->thumb_box, &tw, &th);
	for (int i = 0; i < n; i++) {
		w[i] = tw;
		h[i] = th;
	}
	if (plane_alloc(&jf->thumb, sc, n, w, h, &err))
		return;
	for (int i = 0; i < n; i++)
		if (plane_scale(&jf->scalers, &j->cur[i], &sc[i],
				scaler_flags(&j->cur[i], &sc[i], 0), NULL, &err))
			return;
	if (j->orientation > 1) {
		for (int i = 0; i < n; i++) {
			w[i] = j->swap ? th : tw;
			h[i] = j->swap ? tw : th;
		}
		if (plane_alloc(&jf->thumb_oriented, turned, n, w, h, &err))
			return;
		for (int i = 0; i < n; i++)
			plane_orient(&sc[i], &turned[i], j->orientation);
		memcpy(sc, turned, sizeof(sc));
	}
	if (thumb_pack(sc, n, t) == 0) {
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
		t->cpu_ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
			    (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec;
	}
}

void jpegfast_want_thumb(struct jpegfast *jf, int box)
{
	jf->thumb_box = box > 0 ? box : 0;
}

/* ---- resample -------------------------------------------------------------- */

/* The filter for a plane: see the top of the file. Sharp: luma, or chroma that the
 * output keeps at full resolution (4:4:4). */
static int scaler_flags(const struct plane *src, const struct plane *dst, int sharp)
{
	return sharp || dst->w > src->w || dst->h > src->h ? SWS_BICUBIC : SWS_AREA;
}

/* Every output plane at the planned size, still in the stored orientation. A plane
 * already at its size passes through; a grey input's chroma is neutral (128). */
static int resample(struct jfjob *j, struct vherr *err)
{
	struct plane out[JF_MAX_PLANES];
	int w[JF_MAX_PLANES], h[JF_MAX_PLANES];
	int have = j->subsamp == TJSAMP_GRAY ? 1 : 3;
	int rc;

	for (int i = 0; i < j->n_planes; i++)
		plane_size(i, j->pre_w, j->pre_h, j->out_samp, &w[i], &h[i]);
	rc = plane_alloc(&j->jf->resampled, out, j->n_planes, w, h, err);
	for (int i = 0; !rc && i < j->n_planes; i++) {
		if (i >= have)
			plane_fill(&out[i], 128);
		else if (j->cur[i].w == w[i] && j->cur[i].h == h[i])
			out[i] = j->cur[i];
		else
			rc = plane_scale(&j->jf->scalers, &j->cur[i], &out[i],
					 scaler_flags(&j->cur[i], &out[i],
						      i == 0 || j->out_samp == TJSAMP_444),
					 NULL, err);
	}
	if (!rc)
		memcpy(j->cur, out, sizeof(out));
	return rc;
}

/* ---- orient ---------------------------------------------------------------- */

static int orient(struct jfjob *j, struct vherr *err)
{
	struct plane out[JF_MAX_PLANES];
	int w[JF_MAX_PLANES], h[JF_MAX_PLANES];
	int rc;

	if (j->orientation <= 1)
		return 0;
	for (int i = 0; i < j->n_planes; i++) {
		w[i] = j->swap ? j->cur[i].h : j->cur[i].w;
		h[i] = j->swap ? j->cur[i].w : j->cur[i].h;
	}
	rc = plane_alloc(&j->jf->oriented, out, j->n_planes, w, h, err);
	if (rc)
		return rc;
	for (int i = 0; i < j->n_planes; i++)
		plane_orient(&j->cur[i], &out[i], j->orientation);
	memcpy(j->cur, out, sizeof(out));
	return 0;
}

/* ---- crop and pad ---------------------------------------------------------- */

/* The background colour as JPEG (JFIF, full range BT.601) Y, Cb, Cr. */
static void background_ycc(const uint8_t rgb[3], uint8_t ycc[3])
{
	double r = rgb[0], g = rgb[1], b = rgb[2];
	double v[3] = {0.299 * r + 0.587 * g + 0.114 * b,
		       128 - 0.168735892 * r - 0.331264108 * g + 0.5 * b,
		       128 + 0.5 * r - 0.418687589 * g - 0.081312411 * b};

	for (int i = 0; i < 3; i++)
		ycc[i] = (uint8_t)(v[i] < 0 ? 0 : v[i] > 255 ? 255 : v[i] + 0.5);
}

/* Chroma planes of 4:2:0 take offsets at half resolution; at an odd offset the
 * chroma lands up to half a chroma sample (one pixel) off, as 2x2 subsampling
 * cannot say better. */
static int chroma_div(const struct jfjob *j, int i)
{
	return i && j->out_samp == TJSAMP_420 ? 2 : 1;
}

static void crop(struct jfjob *j)
{
	for (int i = 0; i < j->n_planes; i++) {
		int d = chroma_div(j, i), w, h;

		plane_size(i, j->geo.out_w, j->geo.out_h, j->out_samp, &w, &h);
		j->cur[i] =
		    plane_window(&j->cur[i], j->geo.crop_x / d, j->geo.crop_y / d, w, h);
	}
}

static int pad(struct jfjob *j, struct vherr *err)
{
	struct plane out[JF_MAX_PLANES];
	int w[JF_MAX_PLANES], h[JF_MAX_PLANES];
	uint8_t ycc[3];
	int rc;

	for (int i = 0; i < j->n_planes; i++)
		plane_size(i, j->geo.out_w, j->geo.out_h, j->out_samp, &w[i], &h[i]);
	rc = plane_alloc(&j->jf->placed, out, j->n_planes, w, h, err);
	if (rc)
		return rc;
	background_ycc(j->p->background, ycc);
	for (int i = 0; i < j->n_planes; i++) {
		int d = chroma_div(j, i);

		plane_fill(&out[i], ycc[i]);
		plane_blit(&j->cur[i], &out[i], j->geo.pad_x / d, j->geo.pad_y / d);
	}
	memcpy(j->cur, out, sizeof(out));
	return 0;
}

static int place(struct jfjob *j, struct vherr *err)
{
	if (j->p->resize_w <= 0 || j->p->resize_h <= 0)
		return 0;
	if (j->p->mode == GEOMETRY_CROP)
		crop(j);
	else if (j->p->mode == GEOMETRY_PAD)
		return pad(j, err);
	return 0;
}

/* ---- encode ---------------------------------------------------------------- */

/* The encoder reads a 4:2:0 Y plane padded to even sizes: repeat the last column
 * and row there (each plane has room for one of each). */
static void pad_for_encoder(const struct plane *y)
{
	if (y->w & 1)
		for (int r = 0; r < y->h; r++)
			y->p[(size_t)r * y->stride + y->w] =
			    y->p[(size_t)r * y->stride + y->w - 1];
	if (y->h & 1)
		memcpy(y->p + (size_t)y->h * y->stride, y->p + (size_t)(y->h - 1) * y->stride,
		       (size_t)y->w + 1);
}

static int encode(struct jfjob *j, struct kernel_result *res, struct vherr *err)
{
	struct jpegfast *jf = j->jf;
	const unsigned char *planes[3] = {NULL, NULL, NULL};
	int strides[3] = {0, 0, 0};
	int w = j->cur[0].w, h = j->cur[0].h;
	unsigned long size = tjBufSize(w, h, j->out_samp);
	char line[VHERR_MSG_MAX / 2];

	if (size == (unsigned long)-1 || plane_buf_reserve(&jf->jpeg, size))
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_ENCODE,
				 "cannot allocate the output buffer for %dx%d", w, h);
	if (j->out_samp == TJSAMP_420)
		pad_for_encoder(&j->cur[0]);
	for (int i = 0; i < j->n_planes; i++) {
		planes[i] = j->cur[i].p;
		strides[i] = j->cur[i].stride;
	}
	if (tjCompressFromYUVPlanes(jf->enc, planes, w, strides, h, j->out_samp, &jf->jpeg.p,
				    &size, j->quality, TJFLAG_NOREALLOC | TJFLAG_ACCURATEDCT)) {
		take_tj_error(jf->enc, line, sizeof(line));
		return vherr_set(err, VHERR_ENCODE, VHSTAGE_ENCODE, "cannot encode image: %s",
				 line);
	}
	res->data = malloc(size);
	if (!res->data)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_ENCODE,
				 "cannot allocate %lu bytes of output", size);
	memcpy(res->data, jf->jpeg.p, size);
	res->len = size;
	res->in_w = j->in_w;
	res->in_h = j->in_h;
	res->out_w = w;
	res->out_h = h;
	res->format = KFMT_JPEG;
	res->frames = 1;
	res->frame_used = 0;
	res->kernel = "jpeg-fast";
	return 0;
}

/* ---- interface ------------------------------------------------------------- */

int jpegfast_accepts(const struct kernel_params *p, const uint8_t *in, size_t len)
{
	struct jfmarkers m;
	char msg[JMSG_LENGTH];
	tjhandle h;
	int w, ht, ss, cs, ok;

	if (!in || !is_jpeg(in, len) || (p->format != KFMT_KEEP && p->format != KFMT_JPEG) ||
	    p->blur_sigma > 0 || p->sharpen)
		return 0;
	scan_markers(in, len, &m);
	if (m.has_icc)
		return 0;
	h = tjInitDecompress();
	if (!h)
		return 0;
	ok = !tj_header(h, in, len, &w, &ht, &ss, &cs, msg, sizeof(msg)) && subsamp_ok(ss, cs);
	tjDestroy(h);
	return ok;
}

struct jpegfast *jpegfast_new(const struct kernel_params *params)
{
	struct jpegfast *jf = calloc(1, sizeof(*jf));

	if (!jf)
		return NULL;
	jf->params = params;
	jf->dec = tjInitDecompress();
	jf->enc = tjInitCompress();
	if (!jf->dec || !jf->enc) {
		jpegfast_free(jf);
		return NULL;
	}
	return jf;
}

void jpegfast_free(struct jpegfast *jf)
{
	if (!jf)
		return;
	plane_scalers_release(&jf->scalers);
	if (jf->dec)
		tjDestroy(jf->dec);
	if (jf->enc)
		tjDestroy(jf->enc);
	plane_buf_release(&jf->decoded);
	plane_buf_release(&jf->resampled);
	plane_buf_release(&jf->oriented);
	plane_buf_release(&jf->placed);
	plane_buf_release(&jf->jpeg);
	plane_buf_release(&jf->thumb);
	plane_buf_release(&jf->thumb_oriented);
	free(jf);
}

/* Frees the buffers one big file grew past JPEGFAST_KEEP_BYTES. */
static void trim_buffers(struct jpegfast *jf)
{
	struct plane_buf *all[] = {&jf->decoded, &jf->resampled, &jf->oriented, &jf->placed,
				   &jf->jpeg};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i]->cap > JPEGFAST_KEEP_BYTES)
			plane_buf_release(all[i]);
}

int jpegfast_run(struct jpegfast *jf, const uint8_t *in, size_t len, struct kernel_result *res,
		 struct vherr *err)
{
	struct jfjob j = {.jf = jf, .p = jf->params, .in = in, .len = len, .orientation = 1};
	int rc;

	memset(res, 0, sizeof(*res));
	if (len == 0 || !in)
		return vherr_set(err, VHERR_EMPTY, VHSTAGE_DECODE, NULL);
	/* A fresh decompressor for every file (under a microsecond): libjpeg keeps the
	 * Huffman and quantisation tables of the files before in its struct, and a file that
	 * lacks one would decode with them (a verdict and pixels that depend on the file
	 * before, found by fuzz_kernels); libvips starts every file afresh. */
	if (jf->dec)
		tjDestroy(jf->dec);
	jf->dec = tjInitDecompress();
	if (!jf->dec)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_DECODE,
				 "cannot create a JPEG decompressor");
	rc = read_header(&j, err);
	if (!rc)
		rc = plan(&j, err);
	if (!rc)
		rc = decode(&j, err);
	if (!rc && jf->thumb_box)
		make_thumb(&j, &res->src_thumb);
	if (!rc)
		rc = resample(&j, err);
	if (!rc)
		rc = orient(&j, err);
	if (!rc)
		rc = place(&j, err);
	if (!rc)
		rc = encode(&j, res, err);
	if (rc) {
		free(res->data);
		free(res->src_thumb.px);
		memset(res, 0, sizeof(*res));
	}
	trim_buffers(jf);
	return rc;
}
