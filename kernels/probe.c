/* probe: what kernel_run would do with a file, judged from its first bytes (kernel.h).
 *
 * The engine reads at most 64 KiB of a file before judging it (issue 13): the probe
 * parses the headers itself (JPEG markers to the first scan, PNG chunks to the first
 * IDAT, GIF's logical screen, WebP's VP8/VP8L/VP8X, TIFF's IFD0, BMP's DIB header,
 * HEIF/AVIF's primary item properties),
 * asks the same questions kernel_run asks (jpegfast_accepts, pngfast_accepts,
 * plan_image), and estimates the heap kernel_run will take (the model at the end of this file).
 * Whether bytes are an image at all is asked of libvips' buffer loaders' is_a
 * functions, the test vips_foreign_find_load_buffer makes, so a NOT_IMAGE here is
 * one there; but not through that call, which writes libvips' process-wide error
 * buffer on a miss. Formats whose header this file does not parse (JPEG 2000, JPEG XL,
 * ImageMagick's) get KERNEL_PROBE_MORE with need_bytes = file_size: the kernel judges
 * them.
 *
 * The estimate (peak(), at the end) follows each kernel's buffers as the code
 * allocates them (jpegfast.c, pngfast.c) and libvips 8.14's loaders as measured:
 * sequential loaders (JPEG, non-interlaced PNG, striped TIFF) hold a band of rows,
 * the others the whole frame. tests/kernels/test_probe.c checks it against the heap
 * kernel_run really takes, counted by an interposed malloc. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libdeflate.h>
#include <turbojpeg.h>
#include <vips/vips.h>

#include "kernels/exif.h"
#include "kernels/jpegfast.h"
#include "kernels/kernel.h"
#include "kernels/plan.h"
#include "kernels/pngfast.h"

/* libjpeg's JPEG_MAX_DIMENSION: it refuses larger frames before the size is known. */
#define JPEG_MAX_SIDE 65500
/* libpng's default user limit on either side (PNG_USER_WIDTH_MAX): libvips' PNG loader
 * refuses larger images as damaged; png-fast plans them (and refuses TOO_LARGE). */
#define LIBPNG_MAX_SIDE 1000000

/* Bytes to ask for when the first ones cannot even say the format. */
#define PROBE_SNIFF 4096

/* What a header says, beyond struct kernel_probe. */
struct hdr {
	int progressive;       /* JPEG: progressive or lossless (whole-image coefficients) */
	int ncomp, hmax, vmax; /* JPEG components and sampling factors */
	int hs[4], vs[4];
	int interlaced; /* PNG Adam7 */
	int alpha;	/* an alpha band (PNG tRNS too, WebP/VP8X alpha) */
	int lossless;	/* WebP VP8L */
	int tiled;	/* TIFF */
	int tile_w, tile_h, rows_per_strip;
};

struct pjob {
	const struct kernel_params *p;
	const uint8_t *in;
	size_t len;
	uint64_t file_size;
	struct kernel_probe *out;
	struct hdr h;
	struct geometry geo;
};

/* ---- bytes ----------------------------------------------------------------- */

static unsigned be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static unsigned le16(const uint8_t *p)
{
	return (unsigned)p[1] << 8 | p[0];
}

static uint32_t le24(const uint8_t *p)
{
	return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[3] << 24 | le24(p);
}

static uint64_t rd(const uint8_t *p, int size, int le)
{
	uint64_t v = 0;

	for (int i = 0; i < size; i++)
		v |= (uint64_t)p[le ? i : size - 1 - i] << (8 * i);
	return v;
}

/* Asks for the first need bytes (at least one more than we have, at most the file). */
static int more(struct pjob *j, uint64_t need)
{
	if (need <= j->len)
		need = j->len + 1;
	j->out->need_bytes = need > j->file_size ? j->file_size : need;
	return KERNEL_PROBE_MORE;
}

/* The data ended inside the header: more of the file, or a truncated file. */
static int short_header(struct pjob *j, uint64_t need, struct vherr *err, const char *what)
{
	if (j->len < j->file_size)
		return more(j, need);
	return vherr_set(err, VHERR_TRUNCATED, VHSTAGE_DECODE, "the data ends inside the %s",
			 what);
}

static int damaged(struct vherr *err, const char *what)
{
	return vherr_set(err, VHERR_CORRUPT, VHSTAGE_DECODE, "%s", what);
}

/* ---- libvips' loaders (read-only table) ------------------------------------ */

static void *buffer_loader(VipsForeignLoadClass *c, void *a, void *b)
{
	const struct pjob *j = a;
	const char *nick = VIPS_OBJECT_CLASS(c)->nickname;

	(void)b;
	if (g_str_has_suffix(nick, "_buffer") && c->is_a_buffer &&
	    c->is_a_buffer(j->in, j->len))
		return (void *)nick;
	return NULL;
}

/* The nickname of the buffer loader vips_image_new_from_buffer would pick, or NULL. */
static const char *find_loader(const struct pjob *j)
{
	return vips_foreign_map("VipsForeignLoad", (VipsSListMap2Fn)buffer_loader, (void *)j,
				NULL);
}

/* ---- JPEG ------------------------------------------------------------------ */

static int jpeg_sof(struct pjob *j, unsigned marker, const uint8_t *d, unsigned n,
		    struct vherr *err)
{
	struct hdr *h = &j->h;

	if (n < 6 || n < 6 + 3u * d[5] || d[5] == 0 || d[5] > 4)
		return damaged(err, "bad JPEG frame header");
	j->out->bits = d[0];
	j->out->height = (int)be16(d + 1);
	j->out->width = (int)be16(d + 3);
	h->ncomp = d[5];
	/* progressive (C2, C6, CA, CE) keeps whole-image coefficient arrays */
	h->progressive = (marker & 3) == 2;
	for (int i = 0; i < h->ncomp; i++) {
		h->hs[i] = d[6 + 3 * i + 1] >> 4;
		h->vs[i] = d[6 + 3 * i + 1] & 15;
		if (h->hs[i] < 1 || h->vs[i] < 1)
			return damaged(err, "bad JPEG sampling factors");
		h->hmax = h->hs[i] > h->hmax ? h->hs[i] : h->hmax;
		h->vmax = h->vs[i] > h->vmax ? h->vs[i] : h->vmax;
	}
	j->out->bands = h->ncomp == 2 ? 1 : h->ncomp;
	if (j->out->width == 0 || j->out->height == 0)
		return damaged(err, "JPEG frame of no size (DNL is not supported)");
	if (j->out->width > JPEG_MAX_SIDE || j->out->height > JPEG_MAX_SIDE)
		return damaged(err, "JPEG frame over libjpeg's 65500 pixels a side");
	/* Debian's libjpeg-turbo 2.1 (both kernels) decodes 8-bit DCT frames only */
	if ((marker & 3) == 3)
		return damaged(err, "lossless JPEG: the JPEG library here cannot decode it");
	if (d[0] != 8)
		return vherr_set(
		    err, VHERR_CORRUPT, VHSTAGE_DECODE,
		    "%d-bit JPEG: the JPEG library here decodes 8-bit samples only", d[0]);
	return 0;
}

/* Walks the markers to the first scan, as jpegfast.c's scan_markers (the last Exif
 * segment before it wins). */
static int parse_jpeg(struct pjob *j, struct vherr *err)
{
	size_t pos = 2;
	int rc, have_sof = 0;

	j->out->format = "jpeg";
	for (;;) {
		unsigned marker, seg;
		const uint8_t *d;

		while (pos < j->len && j->in[pos] == 0xff)
			pos++;
		if (pos + 3 > j->len)
			return short_header(j, pos + 4096, err, "JPEG markers");
		if (pos < 3 || j->in[pos - 1] != 0xff)
			return damaged(err, "JPEG marker expected");
		marker = j->in[pos++];
		if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8))
			continue;
		if (marker == 0xd9)
			return damaged(err, "JPEG ends before its image");
		seg = be16(j->in + pos);
		if (seg < 2)
			return damaged(err, "bad JPEG segment length");
		if (pos + seg > j->len)
			return short_header(j, pos + seg + 4096, err, "JPEG markers");
		d = j->in + pos + 2;
		if (marker == 0xe1 && seg - 2 >= 6 && memcmp(d, "Exif\0\0", 6) == 0)
			j->out->orientation = exif_orientation(d + 6, seg - 8);
		else if (marker == 0xda)
			return have_sof ? 0 : damaged(err, "JPEG scan before a frame header");
		else if (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 &&
			 marker != 0xcc && !have_sof) {
			rc = jpeg_sof(j, marker, d, seg - 2, err);
			if (rc)
				return rc;
			have_sof = 1;
		}
		pos += seg;
	}
}

/* ---- PNG ------------------------------------------------------------------- */

static int parse_png(struct pjob *j, struct vherr *err)
{
	const uint8_t *c = j->in + 8;
	size_t pos = 33;
	int ctype;

	j->out->format = "png";
	if (j->len < 33)
		return short_header(j, 33 + 4096, err, "PNG header");
	if (be32(c) != 13 || memcmp(c + 4, "IHDR", 4))
		return damaged(err, "PNG without an IHDR chunk");
	if (libdeflate_crc32(0, c + 4, 17) != be32(c + 21))
		return damaged(err, "PNG IHDR with a bad CRC"); /* both kernels refuse it */
	j->out->width = (int)(be32(c + 8) & 0x7fffffff);
	j->out->height = (int)(be32(c + 12) & 0x7fffffff);
	j->out->bits = c[16];
	ctype = c[17];
	j->h.interlaced = c[20] == 1;
	j->out->bands = ctype == 0 ? 1 : ctype == 4 ? 2 : ctype == 6 ? 4 : 3;
	j->h.alpha = ctype == 4 || ctype == 6;
	if (j->out->width == 0 || j->out->height == 0 || ctype > 6 || ctype == 1 || ctype == 5)
		return damaged(err, "bad PNG header");
	for (;;) {
		uint32_t n;

		if (pos + 8 > j->len)
			return short_header(j, pos + 4096, err, "PNG chunks before the image");
		n = be32(j->in + pos);
		if (n > 0x7fffffffu)
			return damaged(err, "bad PNG chunk length");
		c = j->in + pos + 4;
		if (!memcmp(c, "IDAT", 4))
			return 0;
		if (pos + 12 + (uint64_t)n > j->len) /* the chunk's data and CRC */
			return short_header(j, pos + 12 + (uint64_t)n + 4096, err,
					    "PNG chunks before the image");
		if (!memcmp(c, "acTL", 4) && n >= 8)
			j->out->frames = (int)(be32(c + 4) & 0x7fffffff);
		else if (!memcmp(c, "tRNS", 4))
			j->h.alpha = 1;
		else if (!memcmp(c, "eXIf", 4) && j->out->orientation == 1)
			j->out->orientation = exif_orientation(c + 4, n);
		else if (!memcmp(c, "IEND", 4))
			return damaged(err, "PNG without image data");
		pos += 12 + (size_t)n;
	}
}

/* ---- GIF, WebP, BMP -------------------------------------------------------- */

/* Skips GIF data sub-blocks from pos; returns the position after the terminator, or 0
 * when the head ends first. */
static size_t gif_skip_blocks(const struct pjob *j, size_t pos)
{
	while (pos < j->len) {
		if (j->in[pos] == 0)
			return pos + 1;
		pos += 1 + (size_t)j->in[pos];
	}
	return 0;
}

static int gif_screen_ignored(int w, int h)
{
	static const int common[][2] = {{640, 480},  {640, 512},   {800, 600},
					{1024, 768}, {1280, 1024}, {1600, 1200}};

	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		if (w == common[i][0] && h == common[i][1])
			return 1;
	return w == 0 || h == 0 || w > 2048 || h > 2048;
}

/* The size libnsgif (libvips 8.14's GIF loader) gives: the logical screen, taken as
 * 1x1 when it is a common monitor size, has a zero side or a side over 2048 (its guard
 * against files that give the size of the screen they were drawn on), then grown to
 * the first frame's extent. */
static int parse_gif(struct pjob *j, struct vherr *err)
{
	size_t pos = 13;

	j->out->format = "gif";
	j->out->bands = 4;
	j->out->bits = 8;
	j->out->frames = 0; /* only the whole file tells */
	j->h.alpha = 1;
	if (j->len < 13)
		return short_header(j, 4096, err, "GIF header");
	j->out->width = (int)le16(j->in + 6);
	j->out->height = (int)le16(j->in + 8);
	if (gif_screen_ignored(j->out->width, j->out->height))
		j->out->width = j->out->height = 1;
	if (j->in[10] & 0x80)
		pos += 3u << ((j->in[10] & 7) + 1);
	while (pos < j->len && j->in[pos] == 0x21) /* extensions */
		if (pos + 2 >= j->len || !(pos = gif_skip_blocks(j, pos + 2)))
			return short_header(j, j->len + 65536, err, "GIF header");
	if (pos + 9 > j->len)
		return short_header(j, pos + 4096, err, "GIF header");
	if (j->in[pos] != 0x2c)
		return damaged(err, "GIF without an image");
	if ((int)(le16(j->in + pos + 1) + le16(j->in + pos + 5)) > j->out->width)
		j->out->width = (int)(le16(j->in + pos + 1) + le16(j->in + pos + 5));
	if ((int)(le16(j->in + pos + 3) + le16(j->in + pos + 7)) > j->out->height)
		j->out->height = (int)(le16(j->in + pos + 3) + le16(j->in + pos + 7));
	if (j->out->width == 0 || j->out->height == 0)
		return damaged(err, "GIF image of no size");
	return 0;
}

/* What the RIFF chunks of a WebP say. */
struct webp {
	int canvas_w, canvas_h; /* VP8X; 0: none */
	int frame_w, frame_h;	/* the first VP8/VP8L bitstream's; 0: not seen */
	int animated, exif;	/* VP8X flags (exif: the chunk still to find) */
};

static int webp_chunk(struct pjob *j, const uint8_t *c, uint32_t n, struct webp *w,
		      struct vherr *err)
{
	if (!memcmp(c, "VP8X", 4) && n >= 10) {
		j->h.alpha = (c[8] & 0x10) != 0;
		w->exif = (c[8] & 0x08) != 0;
		w->animated = (c[8] & 0x02) != 0;
		w->canvas_w = (int)le24(c + 12) + 1;
		w->canvas_h = (int)le24(c + 15) + 1;
	} else if (!memcmp(c, "VP8 ", 4) && w->frame_w == 0) {
		if (n < 10 || c[11] != 0x9d || c[12] != 0x01 || c[13] != 0x2a)
			return damaged(err, "bad VP8 frame header");
		w->frame_w = (int)(le16(c + 14) & 0x3fff);
		w->frame_h = (int)(le16(c + 16) & 0x3fff);
	} else if (!memcmp(c, "VP8L", 4) && w->frame_w == 0) {
		uint32_t b;

		if (n < 5 || c[8] != 0x2f)
			return damaged(err, "bad VP8L header");
		b = le32(c + 9);
		w->frame_w = (int)(b & 0x3fff) + 1;
		w->frame_h = (int)((b >> 14) & 0x3fff) + 1;
		j->h.alpha |= (b >> 28) & 1;
		j->h.lossless = 1;
	} else if (!memcmp(c, "EXIF", 4)) {
		const uint8_t *t = c + 8;

		if (n >= 6 && !memcmp(t, "Exif\0\0", 6)) /* some writers keep the prefix */
			j->out->orientation = exif_orientation(t + 6, n - 6);
		else
			j->out->orientation = exif_orientation(t, n);
		w->exif = 0;
	}
	return 0;
}

/* Whether the walk has what it needs: the image's size, and the EXIF chunk (often at
 * the end) when VP8X says there is one: libvips applies its orientation. */
static int webp_done(const struct webp *w)
{
	return !w->exif && (w->frame_w > 0 || (w->canvas_w > 0 && w->animated));
}

/* Walks the RIFF chunks. libwebp refuses a still image whose VP8X canvas differs from
 * its bitstream's size, and canvases of 2^32 pixels or more. */
static int parse_webp(struct pjob *j, struct vherr *err)
{
	struct webp w = {0};
	size_t pos = 12;
	int rc;

	j->out->format = "webp";
	j->out->bits = 8;
	while (pos + 8 <= j->len && !webp_done(&w)) {
		uint32_t n = le32(j->in + pos + 4);

		if (pos + 8 + (uint64_t)n > j->len && j->len < j->file_size &&
		    (memcmp(j->in + pos, "VP8", 3) != 0 || j->len - pos < 8 + 30))
			break; /* further on; a bitstream's header is in its first 30 bytes */
		rc = webp_chunk(j, j->in + pos,
				n > j->len - pos - 8 ? (uint32_t)(j->len - pos - 8) : n, &w,
				err);
		if (rc)
			return rc;
		pos += 8 + (size_t)n + (n & 1);
	}
	if (!webp_done(&w))
		return short_header(j, w.frame_w > 0 ? j->file_size : pos + 4096, err,
				    "WebP header");
	if (w.canvas_w > 0 && !w.animated &&
	    (w.canvas_w != w.frame_w || w.canvas_h != w.frame_h))
		return damaged(err, "WebP canvas and image sizes differ");
	if ((uint64_t)w.canvas_w * (uint64_t)w.canvas_h >= (1ull << 32))
		return damaged(err, "WebP canvas too large");
	j->out->width = w.canvas_w > 0 ? w.canvas_w : w.frame_w;
	j->out->height = w.canvas_h > 0 ? w.canvas_h : w.frame_h;
	j->out->frames = w.animated ? 0 : 1;
	j->out->bands = j->h.alpha ? 4 : 3;
	return 0;
}

static int parse_bmp(struct pjob *j, struct vherr *err)
{
	uint32_t dib;
	int64_t h;

	j->out->format = "bmp";
	if (j->len < 26)
		return short_header(j, 64, err, "BMP header");
	dib = le32(j->in + 14);
	if (dib == 12) {
		j->out->width = (int)le16(j->in + 18);
		j->out->height = (int)le16(j->in + 20);
		j->out->bits = (int)le16(j->in + 24);
	} else {
		if (j->len < 30)
			return short_header(j, 64, err, "BMP header");
		j->out->width = (int32_t)le32(j->in + 18);
		h = (int32_t)le32(j->in + 22); /* negative: rows stored top-down */
		h = h < 0 ? -h : h;
		j->out->height = h > INT32_MAX ? 0 : (int)h;
		j->out->bits = (int)le16(j->in + 28);
	}
	j->out->bands = j->out->bits == 32 ? 4 : 3;
	j->h.alpha = j->out->bits == 32;
	if (j->out->width <= 0 || j->out->height <= 0)
		return damaged(err, "bad BMP size");
	j->out->bits = 8;
	return 0;
}

/* ---- TIFF ------------------------------------------------------------------ */

/* The first value of a TIFF entry e (12 or 20 bytes), or -1 when it lies beyond len. */
static int64_t tiff_value(const struct pjob *j, size_t e, int big, int le)
{
	unsigned type = (unsigned)rd(j->in + e + 2, 2, le);
	int size = type == 3 || type == 8 ? 2 : type == 4 || type == 9 ? 4 : type == 16 ? 8 : 1;
	uint64_t count = rd(j->in + e + 4, big ? 8 : 4, le);
	size_t inline_max = big ? 8 : 4, at = e + (big ? 12 : 8);

	if (count * (uint64_t)size > inline_max) {
		uint64_t off = rd(j->in + at, big ? 8 : 4, le);

		if (off + (uint64_t)size > j->len)
			return -1;
		at = (size_t)off;
	}
	return (int64_t)rd(j->in + at, size, le);
}

static void tiff_tag(struct pjob *j, unsigned tag, int64_t v)
{
	struct kernel_probe *o = j->out;

	switch (tag) {
	case 256:
		o->width = (int)(v > INT32_MAX ? 0 : v);
		break;
	case 257:
		o->height = (int)(v > INT32_MAX ? 0 : v);
		break;
	case 258:
		o->bits = (int)v;
		break;
	case 274:
		o->orientation = v >= 1 && v <= 8 ? (int)v : 1;
		break;
	case 277:
		o->bands = (int)v;
		break;
	case 278:
		j->h.rows_per_strip = (int)(v > INT32_MAX ? INT32_MAX : v);
		break;
	case 322:
		j->h.tile_w = (int)v;
		j->h.tiled = 1;
		break;
	case 323:
		j->h.tile_h = (int)v;
		break;
	case 338:
		j->h.alpha = v == 1 || v == 2;
		break;
	default:
		break;
	}
}

static int parse_tiff(struct pjob *j, struct vherr *err)
{
	int le = j->in[0] == 'I', big = rd(j->in + 2, 2, le) == 43;
	size_t esize = big ? 20 : 12, csize = big ? 8 : 2;
	uint64_t ifd, count;

	j->out->format = "tiff";
	j->out->bands = 1;
	j->out->bits = 1;
	if (j->len < 16)
		return short_header(j, 4096, err, "TIFF header");
	ifd = big ? rd(j->in + 8, 8, le) : rd(j->in + 4, 4, le);
	if (ifd < 8 || ifd >= j->file_size)
		return damaged(err, "TIFF IFD offset outside the file");
	if (ifd + csize > j->len)
		return short_header(j, ifd + csize + 256 * esize, err, "TIFF IFD");
	count = rd(j->in + ifd, (int)csize, le);
	if (ifd + csize + count * esize > j->len)
		return short_header(j, ifd + csize + count * esize + 4096, err, "TIFF IFD");
	for (uint64_t i = 0; i < count; i++) {
		size_t e = (size_t)(ifd + csize + i * esize);
		unsigned tag = (unsigned)rd(j->in + e, 2, le);
		int64_t v;

		if (tag != 256 && tag != 257 && tag != 258 && tag != 274 && tag != 277 &&
		    tag != 278 && tag != 322 && tag != 323 && tag != 338)
			continue;
		v = tiff_value(j, e, big, le);
		if (v < 0)
			return short_header(j, j->file_size, err, "TIFF IFD values");
		tiff_tag(j, tag, v);
	}
	if (j->out->width <= 0 || j->out->height <= 0 || j->out->bands < 1 ||
	    j->out->bits < 1 || j->out->bits > 64)
		return damaged(err, "TIFF IFD without a valid size");
	j->out->frames = 0; /* pages: only the whole chain of IFDs tells */
	return 0;
}

/* ---- HEIF and AVIF --------------------------------------------------------- */

/* One ISO BMFF box: its type, and its contents [body, end) clipped to what we have. */
struct box {
	const uint8_t *type;
	size_t body, end;
	uint64_t full_end; /* where it ends in the file */
};

/* Reads the box at pos (below limit). Returns 0, or -1 when its header is not there
 * or its size is impossible. */
static int box_at(const struct pjob *j, size_t pos, size_t limit, struct box *b)
{
	uint64_t size;
	size_t hdr = 8;

	if (pos + 8 > limit)
		return -1;
	size = be32(j->in + pos);
	if (size == 1) {
		if (pos + 16 > limit)
			return -1;
		size = (uint64_t)be32(j->in + pos + 8) << 32 | be32(j->in + pos + 12);
		hdr = 16;
	} else if (size == 0) {
		size = j->file_size - pos;
	}
	if (size < hdr || size > j->file_size - pos)
		return -1;
	b->type = j->in + pos + 4;
	b->body = pos + hdr;
	b->full_end = pos + size;
	b->end = b->full_end < limit ? (size_t)b->full_end : limit;
	return 0;
}

/* Finds the first child box of type t in [pos, end); 0 or -1. */
static int box_find(const struct pjob *j, size_t pos, size_t end, const char *t, struct box *b)
{
	while (box_at(j, pos, end, b) == 0) {
		if (!memcmp(b->type, t, 4))
			return 0;
		pos = (size_t)b->full_end;
	}
	return -1;
}

/* What the primary item's properties say. */
struct heif {
	uint32_t primary;
	int w, h, bits, rotated, clap;
};

/* Applies property number idx (1-based, in ipco) to the primary item. */
static void heif_property(const struct pjob *j, const struct box *ipco, unsigned idx,
			  struct heif *hf)
{
	struct box b;
	size_t pos = ipco->body;

	for (unsigned i = 1; box_at(j, pos, ipco->end, &b) == 0;
	     i++, pos = (size_t)b.full_end) {
		if (i != idx)
			continue;
		if (!memcmp(b.type, "ispe", 4) && b.body + 12 <= b.end) {
			hf->w = (int)(be32(j->in + b.body + 4) & 0x7fffffff);
			hf->h = (int)(be32(j->in + b.body + 8) & 0x7fffffff);
		} else if (!memcmp(b.type, "irot", 4) && b.body < b.end) {
			hf->rotated = j->in[b.body] & 1; /* 90 or 270 degrees */
		} else if (!memcmp(b.type, "clap", 4)) {
			hf->clap = 1;
		} else if (!memcmp(b.type, "pixi", 4) && b.body + 6 <= b.end) {
			hf->bits = j->in[b.body + 5];
		}
		return;
	}
}

/* Walks ipma for the primary item's property indices. Returns 0 or -1. */
static int heif_associations(const struct pjob *j, const struct box *ipma,
			     const struct box *ipco, struct heif *hf)
{
	int version = j->in[ipma->body], wide_idx = j->in[ipma->body + 3] & 1;
	size_t pos = ipma->body + 8, idsize = version < 1 ? 2 : 4;
	uint32_t n = be32(j->in + ipma->body + 4);

	for (uint32_t e = 0; e < n; e++) {
		uint32_t id;
		unsigned count;

		if (pos + idsize + 1 > ipma->end)
			return -1;
		id = idsize == 2 ? be16(j->in + pos) : be32(j->in + pos);
		count = j->in[pos + idsize];
		pos += idsize + 1;
		if (pos + (size_t)count * (wide_idx ? 2 : 1) > ipma->end)
			return -1;
		for (unsigned a = 0; a < count; a++, pos += wide_idx ? 2 : 1)
			if (id == hf->primary)
				heif_property(j, ipco,
					      wide_idx ? be16(j->in + pos) & 0x7fff
						       : j->in[pos] & 0x7fu,
					      hf);
	}
	return 0;
}

/* The primary image's size as libheif gives it (after an irot of 90 or 270 degrees;
 * libvips 8.14's heifload applies none of the EXIF orientation on top). A clap
 * (crop) or a meta box this cannot read leaves the file to the kernel. */
static int parse_heif(struct pjob *j, struct vherr *err)
{
	struct box meta, pitm, iprp, ipco, ipma, ftyp;
	struct heif hf = {.bits = 8};

	j->out->format = "heif";
	if (box_find(j, 0, j->len, "ftyp", &ftyp) == 0 && ftyp.body + 4 <= ftyp.end &&
	    !memcmp(j->in + ftyp.body, "avi", 3))
		j->out->format = "avif";
	if (box_find(j, 0, j->len, "meta", &meta))
		return short_header(j, j->file_size, err, "HEIF header");
	if (meta.end < meta.full_end)
		return short_header(j, meta.full_end, err, "HEIF header");
	if (box_find(j, meta.body + 4, meta.end, "pitm", &pitm) || pitm.body + 6 > pitm.end ||
	    box_find(j, meta.body + 4, meta.end, "iprp", &iprp) ||
	    box_find(j, iprp.body, iprp.end, "ipco", &ipco) ||
	    box_find(j, iprp.body, iprp.end, "ipma", &ipma) || ipma.body + 8 > ipma.end)
		return damaged(err, "HEIF without a primary image's properties");
	hf.primary = j->in[pitm.body] == 0	 ? be16(j->in + pitm.body + 4)
		     : pitm.body + 8 <= pitm.end ? be32(j->in + pitm.body + 4)
						 : 0;
	if (heif_associations(j, &ipma, &ipco, &hf))
		return damaged(err, "bad HEIF item properties");
	if (hf.w <= 0 || hf.h <= 0 || hf.clap) { /* the kernel judges it */
		j->out->need_bytes = j->file_size;
		return KERNEL_PROBE_MORE;
	}
	j->out->width = hf.rotated ? hf.h : hf.w;
	j->out->height = hf.rotated ? hf.w : hf.h;
	j->out->bits = hf.bits > 8 ? hf.bits : 8;
	j->out->bands = 3; /* an alpha is an auxiliary item: counted in the estimate */
	j->h.alpha = 1;
	return 0;
}

/* ---- choosing, planning ---------------------------------------------------- */

enum pfmt { PF_NONE, PF_JPEG, PF_PNG, PF_GIF, PF_WEBP, PF_TIFF, PF_BMP, PF_HEIF };

static enum pfmt sniff(const uint8_t *in, size_t len)
{
	static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

	if (len >= 3 && in[0] == 0xff && in[1] == 0xd8 && in[2] == 0xff)
		return PF_JPEG;
	if (len >= 8 && !memcmp(in, png_sig, 8))
		return PF_PNG;
	if (len >= 6 && (!memcmp(in, "GIF87a", 6) || !memcmp(in, "GIF89a", 6)))
		return PF_GIF;
	if (len >= 12 && !memcmp(in, "RIFF", 4) && !memcmp(in + 8, "WEBP", 4))
		return PF_WEBP;
	if (len >= 4 && (!memcmp(in, "II*\0", 4) || !memcmp(in, "MM\0*", 4) ||
			 !memcmp(in, "II+\0", 4) || !memcmp(in, "MM\0+", 4)))
		return PF_TIFF;
	if (len >= 2 && in[0] == 'B' && in[1] == 'M')
		return PF_BMP;
	return PF_NONE;
}

/* The kernel kernel_run picks (kernel.c's kernel_pick), on a head that holds every
 * marker or chunk the accepts functions read. */
static enum kernel_choice pick(const struct pjob *j, enum pfmt f)
{
	if (j->p->choice != KERNEL_AUTO)
		return j->p->choice;
	if (f == PF_JPEG && jpegfast_accepts(j->p, j->in, j->len))
		return KERNEL_JPEGFAST;
	if (f == PF_PNG && pngfast_accepts(j->p, j->in, j->len))
		return KERNEL_PNGFAST;
	return KERNEL_VIPS;
}

static enum kernel_format out_format(const struct pjob *j, enum pfmt f, enum kernel_choice k)
{
	if (j->p->format != KFMT_KEEP)
		return j->p->format;
	if (k == KERNEL_JPEGFAST)
		return KFMT_JPEG;
	if (k == KERNEL_PNGFAST)
		return KFMT_PNG;
	return f == PF_JPEG ? KFMT_JPEG : f == PF_WEBP ? KFMT_WEBP : KFMT_PNG;
}

static int parse(struct pjob *j, enum pfmt f, struct vherr *err)
{
	switch (f) {
	case PF_JPEG:
		return parse_jpeg(j, err);
	case PF_PNG:
		return parse_png(j, err);
	case PF_GIF:
		return parse_gif(j, err);
	case PF_WEBP:
		return parse_webp(j, err);
	case PF_TIFF:
		return parse_tiff(j, err);
	case PF_BMP:
		return parse_bmp(j, err);
	case PF_HEIF:
		return parse_heif(j, err);
	case PF_NONE:
	default:
		return damaged(err, "unknown format");
	}
}

static uint64_t peak(const struct pjob *j, enum pfmt f, enum kernel_choice k);

int kernel_probe(const struct kernel_params *p, const uint8_t *head, size_t len,
		 uint64_t file_size, struct kernel_probe *out, struct vherr *err)
{
	struct pjob j = {.p = p, .in = head, .len = len, .file_size = file_size, .out = out};
	enum pfmt f;
	enum kernel_choice k;
	const char *loader;
	int rc;

	memset(out, 0, sizeof(*out));
	out->orientation = 1;
	out->frames = 1;
	if (file_size == 0)
		return vherr_set(err, VHERR_EMPTY, VHSTAGE_DECODE, NULL);
	if (!head || len == 0 || (len < 16 && len < file_size))
		return more(&j, PROBE_SNIFF);
	f = sniff(head, len);
	loader = find_loader(&j);
	if (!loader) {
		if (f != PF_NONE && len < file_size)
			return more(&j, file_size); /* e.g. BMP: let the kernel judge */
		return vherr_set(err, VHERR_NOT_IMAGE, VHSTAGE_DECODE, NULL);
	}
	out->loader = loader;
	if (f == PF_NONE && !strcmp(loader, "heifload_buffer"))
		f = PF_HEIF;
	if (f == PF_NONE) { /* a format we do not parse: the kernel judges it */
		out->format = loader;
		out->kernel = "libvips";
		out->need_bytes = file_size;
		return KERNEL_PROBE_MORE;
	}
	rc = parse(&j, f, err);
	if (rc)
		return rc;
	k = pick(&j, f);
	out->kernel = k == KERNEL_JPEGFAST  ? "jpeg-fast"
		      : k == KERNEL_PNGFAST ? "png-fast"
					    : "libvips";
	if (k != KERNEL_VIPS)
		out->loader = out->kernel;
	out->out_format = out_format(&j, f, k);
	if (k == KERNEL_VIPS && f == PF_PNG &&
	    (out->width > LIBPNG_MAX_SIDE || out->height > LIBPNG_MAX_SIDE))
		return damaged(err, "PNG over libpng's limit of 1000000 pixels a side");
	rc = plan_image(p, out->width, out->height, p->autorotate && out->orientation >= 5,
			&j.geo, err);
	if (rc)
		return rc;
	out->out_w = j.geo.out_w;
	out->out_h = j.geo.out_h;
	out->peak_bytes = peak(&j, f, k);
	return 0;
}

/* ---- the heap estimate ----------------------------------------------------- */

#define MIB (1ull << 20)

/* What every kernel_run allocates besides the image buffers (codec states, libswscale
 * contexts, libvips' operation objects); measured by tests/kernels/test_probe.c. */
#define FAST_FIXED (1 * MIB)
#define VIPS_FIXED (5 * MIB)
/* Rows of the widest image a libvips pipeline holds at once (region buffers of the
 * load, the sequential cache and the resize); measured, with margin. */
#define VIPS_ROWS 384
#define VIPS_TILE 128
/* libwebp's lossy encoder, bytes per output pixel besides the picture it is given
 * (alpha: its plane is compressed losslessly, with hash chains); measured. */
#define VIPS_WEBP	16
#define VIPS_WEBP_ALPHA 48

/* A plane as plane_alloc lays it out: rows 64-byte aligned with a spare byte, a spare
 * row. */
static uint64_t plane_bytes(uint64_t w, uint64_t h)
{
	return (w + 1 + 63) / 64 * 64 * (h + 1);
}

static int clamp_quality(int q)
{
	return q < 1 ? 90 : q > 100 ? 100 : q;
}

/* The planned size before orientation (the fast paths resample before they rotate). */
static void pre_size(const struct pjob *j, uint64_t *w, uint64_t *h)
{
	int swap = j->p->autorotate && j->out->orientation >= 5;

	*w = (uint64_t)(swap ? j->geo.scaled_h : j->geo.scaled_w);
	*h = (uint64_t)(swap ? j->geo.scaled_w : j->geo.scaled_h);
}

/* jpegfast.c's pick_dct_shift. */
static int dct_shift(const struct pjob *j, uint64_t pre_w, uint64_t pre_h)
{
	double keep = j->p->dct_keep > 0 ? j->p->dct_keep : JPEGFAST_DCT_KEEP;
	int shift = 0;

	if (j->p->resize_w <= 0 || j->p->resize_h <= 0)
		return 0;
	while (shift < 3) {
		uint64_t d = 2u << shift;

		if ((j->out->width + d - 1) / d < keep * pre_w ||
		    (j->out->height + d - 1) / d < keep * pre_h)
			break;
		shift++;
	}
	return shift;
}

/* libjpeg's own arrays: whole-image coefficients for a progressive or lossless file
 * (2 bytes a sample of each component at full size), else a few block rows. */
static uint64_t libjpeg_bytes(const struct pjob *j)
{
	const struct hdr *h = &j->h;
	uint64_t sum = 0;

	for (int i = 0; i < h->ncomp; i++) {
		uint64_t bw = ((uint64_t)j->out->width * h->hs[i] / h->hmax + 15) / 8;
		uint64_t bh = ((uint64_t)j->out->height * h->vs[i] / h->vmax + 15) / 8;

		sum += h->progressive ? bw * bh * 128 : bw * 128 * 2 * h->vmax;
	}
	return sum * (j->out->bits > 8 ? 2 : 1);
}

/* The bytes of an encoded output, as an upper bound for noise-like pictures (the worst
 * the tests met): JPEG at 0.8 bytes a pixel below quality 90 (4:2:0), 2 from 90 (4:4:4),
 * 3.5 from 95, capped by libjpeg-turbo's own bound; PNG and WebP at the raw size. */
static uint64_t encoded_bytes(const struct pjob *j, enum kernel_format fmt, uint64_t w,
			      uint64_t h, int bands)
{
	int q = clamp_quality(j->p->quality);

	if (fmt == KFMT_JPEG) {
		uint64_t bound =
		    tjBufSize((int)w, (int)h, bands == 1 ? TJSAMP_GRAY : TJSAMP_444);
		uint64_t est = w * h *
				   (q < 90   ? 8
				    : q < 95 ? 20
					     : 35) /
				   10 * (bands == 1 ? 1 : 1) +
			       64 * 1024;

		return est < bound ? est : bound;
	}
	return w * h * (uint64_t)bands + h + w * h / 64 + 64 * 1024;
}

/* libjpeg-turbo's buffer that jpeg-fast reserves for its encoder: tjBufSize. */
static uint64_t tj_reserved(const struct pjob *j, uint64_t w, uint64_t h)
{
	int samp = j->p->gray			       ? TJSAMP_GRAY
		   : clamp_quality(j->p->quality) < 90 ? TJSAMP_420
						       : TJSAMP_444;

	return tjBufSize((int)w, (int)h, samp);
}

static uint64_t peak_jpegfast(const struct pjob *j)
{
	const struct kernel_probe *o = j->out;
	const struct hdr *h = &j->h;
	uint64_t pre_w, pre_h, sum = FAST_FIXED + libjpeg_bytes(j);
	int shift, n_out = j->p->gray ? 1 : 3;
	int sub = !j->p->gray && clamp_quality(j->p->quality) < 90; /* 4:2:0 out */

	pre_size(j, &pre_w, &pre_h);
	shift = dct_shift(j, pre_w, pre_h);
	for (int i = 0; i < h->ncomp; i++) { /* decoded, padded to whole blocks */
		uint64_t dw = ((uint64_t)o->width * h->hs[i] / h->hmax + 15) >> shift;
		uint64_t dh = ((uint64_t)o->height * h->vs[i] / h->vmax + 15) >> shift;

		sum += plane_bytes(dw + 8, dh + 8);
	}
	for (int i = 0; i < n_out; i++) { /* resampled, oriented, padded */
		uint64_t d = i && sub ? 2 : 1;
		uint64_t pw = (pre_w + d - 1) / d, ph = (pre_h + d - 1) / d;
		uint64_t ow = ((uint64_t)o->out_w + d - 1) / d,
			 oh = ((uint64_t)o->out_h + d - 1) / d;

		sum += plane_bytes(pw, ph);
		if (j->p->autorotate && o->orientation > 1)
			sum += plane_bytes(ph, pw);
		if (j->p->resize_w > 0 && j->p->mode == GEOMETRY_PAD)
			sum += plane_bytes(ow, oh);
	}
	return sum + tj_reserved(j, (uint64_t)o->out_w, (uint64_t)o->out_h) +
	       encoded_bytes(j, KFMT_JPEG, (uint64_t)o->out_w, (uint64_t)o->out_h, n_out);
}

static uint64_t peak_pngfast(const struct pjob *j)
{
	const struct kernel_probe *o = j->out;
	uint64_t w = (uint64_t)o->width, ht = (uint64_t)o->height, pre_w, pre_h;
	uint64_t out_w = (uint64_t)o->out_w, out_h = (uint64_t)o->out_h;
	int colours = o->bands <= 2 ? 1 : 3, n = colours + j->h.alpha;
	int out_ch = j->p->gray ? 1 : j->h.alpha && o->out_format == KFMT_PNG ? 4 : 3;
	uint64_t bps = o->bits == 16 ? 2 : 1;
	uint64_t sum = FAST_FIXED + w * ht * (uint64_t)n * bps; /* libspng's output */

	pre_size(j, &pre_w, &pre_h);
	sum += (uint64_t)n * plane_bytes(w, ht);	/* split */
	sum += (uint64_t)n * plane_bytes(pre_w, pre_h); /* resampled */
	if (j->p->autorotate && o->orientation > 1)
		sum += (uint64_t)n * plane_bytes(pre_h, pre_w);
	sum += out_w * out_h * (uint64_t)out_ch;       /* rows */
	sum += (out_w * (uint64_t)out_ch + 1) * out_h; /* filtered */
	sum += 4 * w * (uint64_t)n * bps;	       /* libspng's rows */
	if (o->out_format == KFMT_JPEG)
		return sum + tj_reserved(j, out_w, out_h) +
		       encoded_bytes(j, KFMT_JPEG, out_w, out_h, out_ch);
	return sum + 2 * encoded_bytes(j, o->out_format, out_w, out_h, out_ch);
}

/* libvips 8.14's thumbnail shrink-on-load for JPEG: leaves at least 2x for the resize. */
static int vips_jpeg_shrink(const struct pjob *j)
{
	double hs, vs, s;
	int swap = j->p->autorotate && j->out->orientation >= 5;

	if (j->p->resize_w <= 0 || j->p->resize_h <= 0)
		return 1;
	hs = (double)(swap ? j->out->height : j->out->width) / j->geo.scaled_w;
	vs = (double)(swap ? j->out->width : j->out->height) / j->geo.scaled_h;
	s = hs < vs ? hs : vs;
	return s >= 16 ? 8 : s >= 8 ? 4 : s >= 4 ? 2 : 1;
}

/* What the loader holds: a band of rows for the sequential ones, the frame for the
 * others. */
/* What the loader holds besides the rows of the pipeline: whole-image arrays for the
 * loaders that decode a frame at once, strips or tile rows for TIFF. *load_w and
 * *load_h: the size it delivers (after shrink-on-load). */
static uint64_t vips_load_bytes(const struct pjob *j, enum pfmt f, uint64_t *load_w,
				uint64_t *load_h)
{
	const struct kernel_probe *o = j->out;
	uint64_t w = (uint64_t)o->width, h = (uint64_t)o->height, s;
	uint64_t bps = o->bits > 16 ? 4 : o->bits > 8 ? 2 : 1, bands = (uint64_t)o->bands;
	uint64_t row = w * bands * bps, strip;

	*load_w = w;
	*load_h = h;
	switch (f) {
	case PF_JPEG:
		s = (uint64_t)vips_jpeg_shrink(j);
		*load_w = (w + s - 1) / s;
		*load_h = (h + s - 1) / s;
		return libjpeg_bytes(j);
	case PF_PNG:
		/* Adam7: libpng reads the whole image, libvips loads it into a memory image,
		 * and thumbnail premultiplies it as float */
		return j->h.interlaced ? w * h * bands * (2 * bps + 4) : 0;
	case PF_TIFF:
		if (j->h.tiled)
			return 2 * (uint64_t)j->h.tile_h * row;
		strip = j->h.rows_per_strip > 0 && (uint64_t)j->h.rows_per_strip < h
			    ? (uint64_t)j->h.rows_per_strip
			    : h;
		return 2 * strip * row;
	case PF_GIF: /* libnsgif's frame, and libvips' */
		return 2 * w * h * 4;
	case PF_WEBP: /* libwebp decodes the whole frame (VP8L: with its own ARGB copies) */
		return w * h * 4 * (j->h.lossless ? 3 : 1);
	case PF_HEIF: /* libheif decodes the whole image: its YCbCr planes and the RGB(A)
			 image libvips reads from */
		return w * h * (3 + 4) * bps;
	case PF_BMP:
	default: /* ImageMagick's pixel cache (4 x 16-bit samples), then libvips' copy */
		return w * h * (8 + 2 * bands);
	}
}

/* The rows a libvips pipeline holds: the sequential loader's cache and the shrink in
 * front of it span VIPS_TILE rows for each row of output, plus VIPS_ROWS. Measured
 * on PNG and TIFF without shrink-on-load (2000-6000 pixels wide, 7-18x shrinks). */
static uint64_t vips_rows(const struct pjob *j, uint64_t load_h)
{
	double vshrink = (double)load_h / (double)(j->geo.scaled_h < 1 ? 1 : j->geo.scaled_h);
	uint64_t rows = (uint64_t)(VIPS_TILE * (vshrink > 1 ? vshrink : 1)) + VIPS_ROWS;

	return rows < load_h + VIPS_ROWS ? rows : load_h + VIPS_ROWS;
}

static uint64_t peak_vips(const struct pjob *j, enum pfmt f)
{
	const struct kernel_probe *o = j->out;
	uint64_t lw, lh, sum = VIPS_FIXED + vips_load_bytes(j, f, &lw, &lh);
	uint64_t sw = (uint64_t)j->geo.scaled_w, sh = (uint64_t)j->geo.scaled_h;
	uint64_t out_w = (uint64_t)o->out_w, out_h = (uint64_t)o->out_h;
	uint64_t out_px = out_w * out_h, bps = o->bits > 8 ? 2 : 1;
	int out_b = j->p->gray ? 1 : j->h.alpha && o->out_format != KFMT_JPEG ? 4 : 3;
	/* a row as loaded; thumbnail premultiplies alpha in float */
	uint64_t row = lw * (uint64_t)o->bands * (j->h.alpha ? 4 : bps);

	sum += vips_rows(j, lh) * row + VIPS_ROWS * sw * 4 * 4;
	if (j->p->autorotate && o->orientation > 1) /* thumbnail rotates in memory */
		sum += sw * sh * 4 * bps;
	if (o->out_format == KFMT_WEBP) /* render(), then libwebp's encoder */
		sum += out_px * (uint64_t)out_b +
		       out_px * (out_b == 4 ? VIPS_WEBP_ALPHA : VIPS_WEBP);
	return sum + 2 * encoded_bytes(j, o->out_format, out_w, out_h, out_b);
}

static uint64_t peak(const struct pjob *j, enum pfmt f, enum kernel_choice k)
{
	switch (k) {
	case KERNEL_JPEGFAST:
		return peak_jpegfast(j);
	case KERNEL_PNGFAST:
		return peak_pngfast(j);
	case KERNEL_VIPS:
	case KERNEL_AUTO:
	default:
		return peak_vips(j, f);
	}
}

uint64_t kernel_retained_max(void)
{
	/* jpegfast.c's five plane buffers and pngfast.c's seven, each trimmed after a file
	 * when it grew past its KEEP_BYTES */
	return 5ull * JPEGFAST_KEEP_BYTES + 7ull * PNGFAST_KEEP_BYTES;
}

/* ---- extensions ------------------------------------------------------------ */

int kernel_extension_readable(const char *ext)
{
	/* libvips 8.14.1's buffer loaders in Debian bookworm (jpegload, pngload, webpload,
	 * gifload, tiffload, heifload, jp2kload, jxlload, radload) and ImageMagick's through
	 * magickload (bmp, the netpbm family), plus jfif (a JPEG by any other name). Not pdf,
	 * svg, svgz: documents and drawings (see kernel.h). */
	static const char *const exts[] = {
	    "jpg", "jpeg", "jpe",  "jfif", "png", "webp", "gif", "tif", "tiff",
	    "bmp", "heic", "heif", "avif", "jp2", "j2k",  "jpt", "j2c", "jpc",
	    "jxl", "ppm",  "pgm",  "pbm",  "pnm", "pfm",  "hdr",
	};

	for (size_t i = 0; ext && i < sizeof(exts) / sizeof(exts[0]); i++)
		if (strcasecmp(ext, exts[i]) == 0)
			return 1;
	return 0;
}
