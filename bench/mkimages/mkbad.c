/* mkbad: crafted bad inputs. See mkbad.h. */
#include "mkbad.h"

#include <string.h>
#include <zlib.h>

#include "mkpaint.h"
#include "mkrng.h"

#define MKBAD_BOMB_SIDE		  60000u
#define MKBAD_BOMB_ROWS_PER_CHUNK 600u

const char *mkbad_file(enum mkbad_kind kind)
{
	static const char *const files[] = {
#define MKBAD_NAME(name, file, w, h) file,
	    MKBAD_FILES(MKBAD_NAME)
#undef MKBAD_NAME
	};
	return kind < MKBAD__COUNT ? files[kind] : "?";
}

static void mkbad_dims(enum mkbad_kind kind, struct mkencode_file *out)
{
	static const int dims[][2] = {
#define MKBAD_DIMS(name, file, w, h) {w, h},
	    MKBAD_FILES(MKBAD_DIMS)
#undef MKBAD_DIMS
	};
	out->width = dims[kind][0];
	out->height = dims[kind][1];
}

/* The control picture, 320x240, as JPEG or PNG. */
static int mkbad_control(uint64_t seed, const struct mkpaint_assets *assets,
			 enum mkencode_kind kind, struct mkencode_file *out)
{
	VipsImage *im = NULL;
	int rc;

	if (mkpaint_photo(&im, 320, 240, seed, assets))
		return -1;
	rc = mkencode_image(im, kind, 90, seed, out);
	g_object_unref(im);
	return rc;
}

/* Offset of the SOS marker (ff da), or 0. */
static size_t mkbad_sos_offset(const unsigned char *p, size_t len)
{
	size_t i = 2;

	while (i + 4 <= len && p[i] == 0xff) {
		if (p[i + 1] == 0xda)
			return i;
		i += 2 + (((size_t)p[i + 2] << 8) | p[i + 3]);
	}
	return 0;
}

/* Offset of the first byte of entropy-coded data (after the SOS segment), or 0. */
static size_t mkbad_scan_start(const unsigned char *p, size_t len)
{
	size_t sos = mkbad_sos_offset(p, len);
	size_t end = sos ? sos + 2 + (((size_t)p[sos + 2] << 8) | p[sos + 3]) : 0;

	return end < len ? end : 0;
}

/* Keeps every header and the first bytes of the scan, then garbage up to the EOI marker.
 * The garbage includes 0xff bytes, so the decoder also meets stray markers: random bits
 * alone often decode without a single warning. */
static int mkbad_corrupt(uint64_t seed, const struct mkpaint_assets *assets,
			 struct mkencode_file *out)
{
	unsigned char *p;
	size_t start;
	uint64_t rng = seed;

	if (mkbad_control(seed, assets, MKENCODE_JPEG, out))
		return -1;
	p = out->data;
	start = mkbad_scan_start(p, out->len);
	if (!start || start + 64 >= out->len) {
		vips_error("mkimages", "%s", "cannot find the JPEG scan to corrupt");
		return -1;
	}
	for (size_t i = start + 32; i + 2 < out->len; i++)
		p[i] = (unsigned char)mkrng_next(&rng);
	return 0;
}

/* Points the first component of the scan at Huffman tables 3/3, which good.jpg never
 * defines: jpeg_read_header succeeds, jpeg_start_decompress fails. */
static int mkbad_undecodable(uint64_t seed, const struct mkpaint_assets *assets,
			     struct mkencode_file *out)
{
	unsigned char *p;
	size_t start;

	if (mkbad_control(seed, assets, MKENCODE_JPEG, out))
		return -1;
	p = out->data;
	start = mkbad_scan_start(p, out->len);
	/* SOS: ff da, length (2), component count, then (id, tables) per component */
	if (!start || mkbad_sos_offset(p, out->len) + 7 >= start) {
		vips_error("mkimages", "%s", "cannot find the JPEG scan header");
		return -1;
	}
	p[mkbad_sos_offset(p, out->len) + 6] = 0x33;
	return 0;
}

static int mkbad_truncated(uint64_t seed, const struct mkpaint_assets *assets,
			   enum mkencode_kind kind, struct mkencode_file *out)
{
	if (mkbad_control(seed, assets, kind, out))
		return -1;
	out->len = out->len * 6 / 10;
	return 0;
}

static void mkbad_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Appends one PNG chunk (length, type, data, CRC) at *pos. */
static void mkbad_png_chunk(unsigned char *buf, size_t *pos, const char *type,
			    const unsigned char *data, uint32_t len)
{
	unsigned char *p = buf + *pos;

	mkbad_put32(p, len);
	memcpy(p + 4, type, 4);
	if (len)
		memcpy(p + 8, data, len);
	mkbad_put32(p + 8 + len, (uint32_t)crc32(0L, p + 4, 4 + len));
	*pos += 12 + len;
}

/* Raw-deflates one chunk of all-zero rows ending in a full flush, so the bytes stand alone
 * and the same segment can be repeated for every chunk of the image. Returns its length,
 * or 0 on failure; *seg is g_malloc'd. */
static size_t mkbad_zero_segment(size_t inlen, unsigned char **seg)
{
	unsigned char *in = g_malloc0(inlen);
	size_t cap = inlen / 100 + 4096;
	z_stream z = {0};
	size_t len = 0;

	*seg = g_malloc(cap);
	if (deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK) {
		z.next_in = in;
		z.avail_in = (uInt)inlen;
		z.next_out = *seg;
		z.avail_out = (uInt)cap;
		if (deflate(&z, Z_FULL_FLUSH) == Z_OK && z.avail_in == 0 && z.avail_out > 0)
			len = cap - z.avail_out;
		deflateEnd(&z);
	}
	g_free(in);
	return len;
}

/* A real PNG: 60000x60000, 1-bit grey, every pixel black. The zlib stream is a header,
 * 100 identical flushed segments, an empty final block and the Adler-32 of the rows. */
static int mkbad_bomb(struct mkencode_file *out)
{
	static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	static const unsigned char zhead[2] = {0x78, 0xda}, zfinal[2] = {0x03, 0x00};
	const size_t rowbytes = 1 + (MKBAD_BOMB_SIDE + 7) / 8;
	const size_t chunkbytes = rowbytes * MKBAD_BOMB_ROWS_PER_CHUNK;
	const unsigned nchunks = MKBAD_BOMB_SIDE / MKBAD_BOMB_ROWS_PER_CHUNK;
	unsigned char ihdr[13] = {0}, *seg = NULL, *idat, *buf;
	size_t seglen = mkbad_zero_segment(chunkbytes, &seg), idatlen, pos = 0;
	/* Adler-32 of n zero bytes: a stays 1, b gains 1 per byte. */
	const uint64_t nbytes = (uint64_t)rowbytes * MKBAD_BOMB_SIDE;
	const uint32_t adler = (uint32_t)((nbytes % 65521u) << 16) | 1u;

	if (!seglen) {
		g_free(seg);
		vips_error("mkimages", "%s", "zlib failed to compress the bomb rows");
		return -1;
	}
	idatlen = 2 + seglen * nchunks + 2 + 4;
	idat = g_malloc(idatlen);
	memcpy(idat, zhead, 2);
	for (unsigned c = 0; c < nchunks; c++)
		memcpy(idat + 2 + seglen * c, seg, seglen);
	memcpy(idat + 2 + seglen * nchunks, zfinal, 2);
	mkbad_put32(idat + idatlen - 4, adler);
	mkbad_put32(ihdr, MKBAD_BOMB_SIDE);
	mkbad_put32(ihdr + 4, MKBAD_BOMB_SIDE);
	ihdr[8] = 1; /* bit depth; colour type 0 (grey), deflate, filter 0, no interlace */
	buf = g_malloc(sizeof(sig) + 12 + sizeof(ihdr) + 12 + idatlen + 12);
	memcpy(buf, sig, sizeof(sig));
	pos = sizeof(sig);
	mkbad_png_chunk(buf, &pos, "IHDR", ihdr, sizeof(ihdr));
	mkbad_png_chunk(buf, &pos, "IDAT", idat, (uint32_t)idatlen);
	mkbad_png_chunk(buf, &pos, "IEND", NULL, 0);
	g_free(idat);
	g_free(seg);
	out->data = buf;
	out->len = pos;
	return 0;
}

static int mkbad_text(struct mkencode_file *out)
{
	static const char text[] = "This is not an image.\n"
				   "It is a text file that happens to be named notimage.jpg,\n"
				   "as a misnamed export or a stray README would be.\n";

	out->data = g_memdup2(text, sizeof(text) - 1);
	out->len = sizeof(text) - 1;
	return 0;
}

int mkbad_make(enum mkbad_kind kind, uint64_t seed, const struct mkpaint_assets *assets,
	       struct mkencode_file *out)
{
	int rc = 0;

	memset(out, 0, sizeof(*out));
	switch (kind) {
	case MKBAD_GOOD:
		rc = mkbad_control(seed, assets, MKENCODE_JPEG, out);
		break;
	case MKBAD_CORRUPT:
		rc = mkbad_corrupt(seed, assets, out);
		break;
	case MKBAD_UNDECODABLE:
		rc = mkbad_undecodable(seed, assets, out);
		break;
	case MKBAD_TRUNCATED_JPEG:
		rc = mkbad_truncated(seed, assets, MKENCODE_JPEG, out);
		break;
	case MKBAD_TRUNCATED_PNG:
		rc = mkbad_truncated(seed, assets, MKENCODE_PNG, out);
		break;
	case MKBAD_ZERO:
		break;
	case MKBAD_NOTIMAGE:
		rc = mkbad_text(out);
		break;
	case MKBAD_BOMB:
		rc = mkbad_bomb(out);
		break;
	default:
		vips_error("mkimages", "%s", "unknown bad file kind");
		return -1;
	}
	if (rc) {
		mkencode_release(out);
		return -1;
	}
	mkbad_dims(kind, out);
	out->bands = kind == MKBAD_BOMB ? 1 : out->bands;
	return 0;
}
