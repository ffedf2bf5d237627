/* Fuzzes nfs4dir_decode_attrs (the fattr4 attrlist decoder of the NFSv4 READDIR walk).
 * Input: one byte of mask length (0-3 words, low two bits), the mask words (big-endian),
 * then the attrlist bytes, copied into a buffer of exactly their size so that any read
 * past it is caught. A decode that succeeds must describe only what the buffer holds. */
#include <errno.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs4.h>

#include "io/nfs4dir.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t mask[3] = {0}, masklen;
	struct nfs4dir_entry e = {0};
	char *buf;
	size_t len;
	int rc;

	if (size < 1 || size > 8192)
		return 0;
	masklen = data[0] & 3u;
	if (size < 1 + 4 * (size_t)masklen)
		return 0;
	for (uint32_t w = 0; w < masklen; w++) {
		const uint8_t *p = data + 1 + 4 * w;

		mask[w] =
		    (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	}
	len = size - 1 - 4 * masklen;
	buf = malloc(len ? len : 1);
	if (!buf)
		abort();
	memcpy(buf, data + 1 + 4 * masklen, len);
	rc = nfs4dir_decode_attrs(mask, masklen, buf, (uint32_t)len, &e);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG, "returned %d", rc);
	FUZZ_CHECK((e.err == 0) == (e.errmsg == NULL), "err %d with errmsg %p", e.err,
		   (const void *)e.errmsg);
	if (rc == 0) {
		FUZZ_CHECK(e.err <= 0, "positive err %d", e.err);
		if (e.have & NFS4DIR_HAVE_FH) {
			FUZZ_CHECK(e.fhlen > 0 && e.fhlen <= NFS4DIR_FH_MAX, "fhlen %u",
				   e.fhlen);
			FUZZ_CHECK(e.fh >= buf && e.fh + e.fhlen <= buf + len,
				   "handle outside");
		}
		if (e.have & NFS4DIR_HAVE_TYPE)
			FUZZ_CHECK(e.type != NFS4DIR_UNKNOWN, "type unknown but present");
		if (e.have & NFS4DIR_HAVE_MTIME)
			FUZZ_CHECK(e.mtime_nsec < 1000000000u, "nsec %u", e.mtime_nsec);
	} else {
		FUZZ_CHECK(e.err == -EBADMSG && e.errmsg, "err %d", e.err);
	}
	free(buf);
	return 0;
}
