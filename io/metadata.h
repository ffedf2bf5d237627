/* metadata: valohai.metadata.jsonl in the outputs root, one JSON line per output file:
 * {"file": "<path relative to outputs>", "metadata": {"valohai.dataset-versions": [...],
 *  "valohai.tags": [...], <provenance>}}. Lines are appended as outputs are renamed into
 * place (see appendlog), encoded with jansson. */
#ifndef VHPREP_IO_METADATA_H
#define VHPREP_IO_METADATA_H

#include <jansson.h>
#include <stdint.h>

#include "common/vherr.h"

#define METADATA_FILE "valohai.metadata.jsonl"

/* What every line binds the file to. Set once; arrays of ndatasets/naliases/ntags strings. */
struct metadata_binding {
	const char *const *datasets; /* dataset://name/version URIs */
	int ndatasets;
	const char *from;            /* "from" of each dataset version, or NULL */
	const char *const *aliases;  /* targeting_aliases, or none */
	int naliases;
	const char *packaging;       /* "packaging": JSON text or a plain word, or NULL */
	const char *const *tags;     /* valohai.tags */
	int ntags;
};

/* Where one output came from and what was done to it. */
struct metadata_provenance {
	const char *source;       /* the input's location (path or URL) */
	uint64_t source_bytes;
	int64_t source_mtime_ns;
	const char *source_sha256; /* hex */
	int original_width, original_height;
	int width, height;
	const char *format;       /* output format word */
	const char *kernel;
	const char *const *operations;
	int noperations;
	const char *version;      /* vhprep version */
	json_t *extra;            /* NULL, or members added where they replace none of the
				   * above (a URL source's provenance); borrowed */
};

struct metadata;

/* Returns one encoded line ending in '\n' (caller frees), or NULL if a string is not
 * valid UTF-8 (JSON cannot carry it) or memory ran out. prov may be NULL (binding only). */
char *metadata_format_line(const struct metadata_binding *b, const char *file,
			   const struct metadata_provenance *prov);
/* Creates (or empties) dirfd/valohai.metadata.jsonl for appending. b must outlive the
 * result. Returns 0 and *out (caller owns), or a negative code with err set. */
int metadata_open(int dirfd, const struct metadata_binding *b, struct metadata **out,
		  struct vherr *err);
/* Appends the line for file. Thread-safe. Returns 0 or a negative code with err set
 * (VHERR_BAD_NAME when a name is not valid UTF-8). */
int metadata_append(struct metadata *m, const char *file,
		    const struct metadata_provenance *prov, struct vherr *err);
/* Returns the number of lines appended (a snapshot). */
uint64_t metadata_lines(struct metadata *m);
/* Closes and frees m; m may be NULL. */
void metadata_close(struct metadata *m);

#endif
