#include "io/jsonname.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s (1-4), or 0 if there is none. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return c ? 1 : 0;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and what lies beyond U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int jsonname_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = utf8_len(p);

		if (!n)
			return 0;
		p += n;
	}
	return 1;
}

int jsonname_escape(const char *name, char *buf, size_t size)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t o = 0;

	if (jsonname_valid(name)) {
		int n = snprintf(buf, size, "%s", name);

		return n < 0 || (size_t)n >= size ? -1 : n;
	}
	while (*p) {
		size_t n = utf8_len(p), len;
		char tmp[8];
		const char *out;

		if (!n) { /* a byte of no valid sequence: \xHH */
			len = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02X", *p);
			out = tmp;
			n = 1;
		} else if (*p == '\\') {
			out = "\\\\";
			len = 2;
		} else {
			out = (const char *)p;
			len = n;
		}
		if (o + len + 1 > size)
			return -1;
		memcpy(buf + o, out, len);
		o += len;
		p += n;
	}
	buf[o] = '\0';
	return (int)o;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const unsigned char *in, size_t len)
{
	char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 |
			     (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < len ? in[i + 2] : 0);

		*o++ = b64[v >> 18 & 63];
		*o++ = b64[v >> 12 & 63];
		*o++ = i + 1 < len ? b64[v >> 6 & 63] : '=';
		*o++ = i + 2 < len ? b64[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;

	return p ? (int)(p - b64) : -1;
}

static char *unbase64(const char *in)
{
	size_t len = strlen(in), o = 0;
	char *out;

	if (len % 4)
		return NULL;
	out = malloc(len / 4 * 3 + 1);
	for (size_t i = 0; out && i < len; i += 4) {
		int v[4];

		for (int k = 0; k < 4; k++)
			v[k] = in[i + k] == '=' && k >= 2 ? 0 : b64_value(in[i + k]);
		if (v[0] < 0 || v[1] < 0 || v[2] < 0 || v[3] < 0) {
			free(out);
			return NULL;
		}
		out[o++] = (char)(v[0] << 2 | v[1] >> 4);
		if (in[i + 2] != '=')
			out[o++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
		if (in[i + 3] != '=')
			out[o++] = (char)((v[2] & 3) << 6 | v[3]);
	}
	if (out)
		out[o] = '\0';
	if (out && strlen(out) != o) { /* a NUL inside: no file name */
		free(out);
		return NULL;
	}
	return out;
}

int jsonname_set(json_t *obj, const char *key, const char *name)
{
	size_t cap = strlen(name) * 4 + 1;
	char *esc, *raw, b64key[128];
	int rc;

	if (jsonname_valid(name))
		return json_object_set_new(obj, key, json_string(name));
	esc = malloc(cap);
	raw = base64((const unsigned char *)name, strlen(name));
	snprintf(b64key, sizeof(b64key), "%s%s", key, JSONNAME_B64_SUFFIX);
	rc = esc && raw && jsonname_escape(name, esc, cap) >= 0 &&
		     json_object_set_new(obj, key, json_string(esc)) == 0 &&
		     json_object_set_new(obj, b64key, json_string(raw)) == 0
		 ? 0
		 : -1;
	free(esc);
	free(raw);
	return rc;
}

char *jsonname_get(json_t *obj, const char *key)
{
	char b64key[128];
	const char *s;

	snprintf(b64key, sizeof(b64key), "%s%s", key, JSONNAME_B64_SUFFIX);
	s = json_string_value(json_object_get(obj, b64key));
	if (s)
		return unbase64(s);
	s = json_string_value(json_object_get(obj, key));
	return s ? strdup(s) : NULL;
}
