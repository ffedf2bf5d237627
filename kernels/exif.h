/* exif: the one EXIF tag the kernels read, Orientation, from the TIFF data that a
 * JPEG APP1 "Exif" segment (after its 6-byte header) or a PNG eXIf chunk holds. */
#ifndef VHPREP_KERNELS_EXIF_H
#define VHPREP_KERNELS_EXIF_H

#include <stddef.h>
#include <stdint.h>

/* Returns the IFD0 Orientation value (1..8) of the TIFF data t[0..n), or 1 when there
 * is none, it is out of range, or the data is malformed. Like libvips 8.14 via libexif:
 * the first component of a SHORT, SSHORT, LONG or SLONG entry, kept only if 1..8; the
 * first Orientation entry wins. Never reads outside t[0..n). Pure and thread-safe. */
int exif_orientation(const uint8_t *t, size_t n);

#endif
