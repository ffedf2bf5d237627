/* exif: see exif.h. Moved out of jpegfast.c unchanged when pngfast.c came to read
 * the same orientation from a PNG eXIf chunk. */
#include "kernels/exif.h"

static unsigned be16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static unsigned rd16(const uint8_t *p, int le)
{
	return le ? (unsigned)p[1] << 8 | p[0] : be16(p);
}

static uint32_t rd32(const uint8_t *p, int le)
{
	return le ? (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]
		  : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int exif_orientation(const uint8_t *t, size_t n)
{
	int le;
	uint32_t ifd;
	unsigned count;

	if (n < 8 || !((t[0] == 'I' && t[1] == 'I') || (t[0] == 'M' && t[1] == 'M')))
		return 1;
	le = t[0] == 'I';
	if (rd16(t + 2, le) != 42)
		return 1;
	ifd = rd32(t + 4, le);
	if (ifd > n - 2)
		return 1;
	count = rd16(t + ifd, le);
	for (unsigned i = 0; i < count; i++) {
		size_t e = (size_t)ifd + 2 + (size_t)i * 12;
		unsigned type;
		uint32_t ncomp;
		size_t size, at;
		long v;

		if (e + 12 > n)
			return 1;
		if (rd16(t + e, le) != 0x0112)
			continue;
		type = rd16(t + e + 2, le);
		ncomp = rd32(t + e + 4, le);
		if (ncomp == 0)
			return 1;
		size = type == 3 || type == 8 ? 2 : type == 4 || type == 9 ? 4 : 0;
		if (size == 0)
			return 1;
		/* values of up to 4 bytes sit in the entry, longer ones at an offset */
		at = (uint64_t)ncomp * size <= 4 ? e + 8 : rd32(t + e + 8, le);
		if (at > n || n - at < size)
			return 1;
		if (size == 2)
			v = type == 8 ? (long)(int16_t)rd16(t + at, le)
				      : (long)rd16(t + at, le);
		else
			v = type == 9 ? (long)(int32_t)rd32(t + at, le)
				      : (long)rd32(t + at, le);
		return v >= 1 && v <= 8 ? (int)v : 1;
	}
	return 1;
}
