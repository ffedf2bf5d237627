/* png-codecs: the PNG decoders and deflate encoders png-fast could use, on the same
 * files, one at a time, so callgrind can count each one's instructions (the half of
 * bench/png-codecs.sh that runs under valgrind).
 *
 *   png-codecs decode spng|libpng [--reps N] FILE...
 *   png-codecs encode libdeflate|zlib|isal|none LEVEL [--reps N] FILE...
 *
 * decode: every FILE (any PNG) decoded to 8-bit RGBA in memory (palette and tRNS
 * expanded, grey to RGB, 16 bits to 8), as png-fast needs it; libspng 0.7 with
 * SPNG_FMT_RGBA8, libpng 1.6 with the matching transforms.
 * encode: every FILE's image data (its IDAT zlib stream inflated once, before timing:
 * the filtered rows exactly as the writer made them) compressed into a zlib stream at
 * LEVEL (libdeflate 1-12, zlib 1-9, ISA-L igzip 0-3); "none" only inflates, the
 * baseline the others' counts are taken from.
 * Prints one JSON line on stdout: files, runs, input bytes, output bytes (encode: of
 * the first pass), and the CPU seconds. The decode_* and encode_* functions are kept out
 * of line so that callgrind --toggle-collect='decode_*' --toggle-collect='encode_*'
 * counts them alone (setup, file reading and inflating excluded). */
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <png.h>
#include <spng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

struct blob {
	uint8_t *p;
	size_t n;
};

static int slurp(const char *path, struct blob *b)
{
	FILE *f = fopen(path, "rb");
	long n;

	b->p = NULL;
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		if (f)
			fclose(f);
		return -1;
	}
	b->n = (size_t)n;
	b->p = malloc(b->n + 1);
	if (!b->p || fread(b->p, 1, b->n, f) != b->n) {
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- decoders ---------------------------------------------------------------- */

__attribute__((noinline)) static size_t decode_spng(const struct blob *in)
{
	spng_ctx *ctx = spng_ctx_new(0);
	size_t size = 0;
	void *out = NULL;

	spng_set_png_buffer(ctx, in->p, in->n);
	if (!spng_decoded_image_size(ctx, SPNG_FMT_RGBA8, &size) && (out = malloc(size)) &&
	    spng_decode_image(ctx, out, size, SPNG_FMT_RGBA8, SPNG_DECODE_TRNS))
		size = 0;
	free(out);
	spng_ctx_free(ctx);
	return size;
}

struct reader {
	const struct blob *in;
	size_t pos;
};

static void read_fn(png_structp png, png_bytep data, png_size_t n)
{
	struct reader *r = png_get_io_ptr(png);

	if (r->pos + n > r->in->n)
		png_error(png, "not enough data");
	memcpy(data, r->in->p + r->pos, n);
	r->pos += n;
}

__attribute__((noinline)) static size_t decode_libpng(const struct blob *in)
{
	struct reader r = {in, 0};
	png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	uint8_t *volatile out = NULL;
	png_bytep *volatile rows = NULL;
	volatile size_t size = 0;

	if (!info || setjmp(png_jmpbuf(png)))
		goto out;
	png_set_read_fn(png, &r, read_fn);
	png_read_info(png, info);
	png_set_expand(png); /* palette to RGB, grey < 8 to 8, tRNS to alpha */
	png_set_strip_16(png);
	png_set_gray_to_rgb(png);
	png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
	{
		size_t stride = png_get_rowbytes(png, info);
		uint32_t h = png_get_image_height(png, info);

		out = malloc(stride * h);
		rows = malloc(sizeof(*rows) * h);
		if (!out || !rows)
			goto out;
		for (uint32_t y = 0; y < h; y++)
			rows[y] = out + stride * y;
		png_read_image(png, rows);
		png_read_end(png, NULL);
		size = stride * h;
	}
out:
	free(out);
	free(rows);
	png_destroy_read_struct(&png, &info, NULL);
	return size;
}

/* ---- encoders ---------------------------------------------------------------- */

/* The inflated image data of a PNG (all IDAT chunks), or an empty blob. */
static struct blob idat_data(const struct blob *png)
{
	struct blob z = {malloc(png->n), 0}, raw = {NULL, 0};
	struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
	uint32_t w = be32(png->p + 16), h = be32(png->p + 20);
	size_t cap = (size_t)w * h * 8 + h, got = 0;

	for (size_t pos = 8; z.p && pos + 12 <= png->n;) {
		uint32_t n = be32(png->p + pos);

		if (!memcmp(png->p + pos + 4, "IDAT", 4)) {
			memcpy(z.p + z.n, png->p + pos + 8, n);
			z.n += n;
		}
		pos += 12 + (size_t)n;
	}
	raw.p = malloc(cap);
	if (raw.p &&
	    libdeflate_zlib_decompress(d, z.p, z.n, raw.p, cap, &got) == LIBDEFLATE_SUCCESS)
		raw.n = got;
	libdeflate_free_decompressor(d);
	free(z.p);
	return raw;
}

__attribute__((noinline)) static size_t encode_libdeflate(const struct blob *raw, int level,
							  uint8_t *out, size_t cap)
{
	struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
	size_t n = libdeflate_zlib_compress(c, raw->p, raw->n, out, cap);

	libdeflate_free_compressor(c);
	return n;
}

__attribute__((noinline)) static size_t encode_zlib(const struct blob *raw, int level,
						    uint8_t *out, size_t cap)
{
	uLongf n = cap;

	return compress2(out, &n, raw->p, raw->n, level) == Z_OK ? n : 0;
}

__attribute__((noinline)) static size_t encode_isal(const struct blob *raw, int level,
						    uint8_t *out, size_t cap)
{
	static const uint32_t level_buf[] = {0, ISAL_DEF_LVL1_DEFAULT, ISAL_DEF_LVL2_DEFAULT,
					     ISAL_DEF_LVL3_DEFAULT};
	struct isal_zstream s;
	size_t n = 0;

	isal_deflate_init(&s);
	s.level = (uint32_t)level;
	s.level_buf_size = level_buf[level];
	s.level_buf = level ? malloc(s.level_buf_size) : NULL;
	s.gzip_flag = IGZIP_ZLIB;
	s.end_of_stream = 1;
	s.flush = NO_FLUSH;
	s.next_in = raw->p;
	s.avail_in = (uint32_t)raw->n;
	s.next_out = out;
	s.avail_out = (uint32_t)cap;
	if (isal_deflate(&s) == COMP_OK && s.internal_state.state == ZSTATE_END)
		n = s.total_out;
	free(s.level_buf);
	return n;
}

/* ---- main ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	int encode = argc > 2 && !strcmp(argv[1], "encode");
	int first = encode ? 4 : 3, reps = 1, level = encode && argc > 3 ? atoi(argv[3]) : 0;
	const char *codec = argc > 2 ? argv[2] : "";
	size_t in_bytes = 0, out_bytes = 0;
	struct timespec t0, t1;
	struct blob *files;
	int n;

	if (argc > first + 1 && !strcmp(argv[first], "--reps")) {
		reps = atoi(argv[first + 1]);
		first += 2;
	}
	n = argc - first;
	if (n <= 0 || reps <= 0 || (!encode && strcmp(argv[1], "decode"))) {
		fprintf(stderr, "usage: png-codecs decode spng|libpng [--reps N] FILE...\n"
				"       png-codecs encode libdeflate|zlib|isal|none LEVEL "
				"[--reps N] FILE...\n");
		return 2;
	}
	files = calloc(n, sizeof(*files));
	for (int i = 0; i < n; i++) {
		struct blob png;

		if (slurp(argv[first + i], &png)) {
			fprintf(stderr, "png-codecs: cannot read '%s'\n", argv[first + i]);
			return 1;
		}
		files[i] = encode ? idat_data(&png) : png;
		if (encode)
			free(png.p);
		in_bytes += files[i].n;
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	for (int r = 0; r < reps; r++) {
		for (int i = 0; i < n; i++) {
			size_t cap = files[i].n + files[i].n / 8 + 1024, got = 0;
			uint8_t *out = encode ? malloc(cap) : NULL;

			if (!encode)
				got = !strcmp(codec, "spng") ? decode_spng(&files[i])
							     : decode_libpng(&files[i]);
			else if (!strcmp(codec, "libdeflate"))
				got = encode_libdeflate(&files[i], level, out, cap);
			else if (!strcmp(codec, "zlib"))
				got = encode_zlib(&files[i], level, out, cap);
			else if (!strcmp(codec, "isal"))
				got = encode_isal(&files[i], level, out, cap);
			if (r == 0)
				out_bytes += got;
			free(out);
		}
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	printf(
	    "{\"mode\": \"%s\", \"codec\": \"%s\", \"level\": %d, \"files\": %d, \"runs\": %d, "
	    "\"in_bytes\": %zu, \"out_bytes\": %zu, \"cpu_s\": %.4f}\n",
	    encode ? "encode" : "decode", codec, level, n, reps * n, in_bytes, out_bytes,
	    (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
	for (int i = 0; i < n; i++)
		free(files[i].p);
	free(files);
	return 0;
}
