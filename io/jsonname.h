/* jsonname: file names in JSON records, whatever their bytes. JSON strings must be valid
 * UTF-8, file names on Linux need not be (Latin-1 names on old NFS shares). A name that
 * is valid UTF-8 is written as it is. One that is not is written with each byte that is
 * not part of a valid UTF-8 sequence as the four characters \xHH (and each backslash of
 * that name as \\, so the escape is lossless), and its raw bytes go beside it, base64, in
 * KEY_b64. Readers take KEY_b64 when it is there; a person reading KEY sees the name with
 * its odd bytes spelled out. Output files on disk keep the source's bytes exactly. */
#ifndef VHPREP_IO_JSONNAME_H
#define VHPREP_IO_JSONNAME_H

#include <jansson.h>
#include <stddef.h>

/* The suffix of the key that holds a name's raw bytes in base64. */
#define JSONNAME_B64_SUFFIX "_b64"

/* Whether s is valid UTF-8 (and holds no NUL before its end). */
int jsonname_valid(const char *s);
/* Writes the escaped form of name into buf (size bytes). Returns its length, or -1 if
 * it does not fit. A valid name is copied as it is. */
int jsonname_escape(const char *name, char *buf, size_t size);
/* Sets obj[key] to name (escaped if needed) and, for a name that is not valid UTF-8,
 * obj[key + "_b64"] to its bytes in base64. Returns 0, or -1 when memory runs out. */
int jsonname_set(json_t *obj, const char *key, const char *name);
/* Returns obj[key]'s name as raw bytes (caller frees): from key + "_b64" when present,
 * else the string itself; NULL if absent or malformed. */
char *jsonname_get(json_t *obj, const char *key);

#endif
