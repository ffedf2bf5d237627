#include "io/metadata.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/appendlog.h"

struct metadata {
	const struct metadata_binding *binding; /* set at creation */
	struct appendlog *log;                  /* set at creation */
	atomic_ullong lines;
};

static json_t *string_array(const char *const *v, int n)
{
	json_t *a = json_array();

	for (int i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* "packaging" given as JSON text is inserted as JSON, anything else as a string. */
static json_t *packaging_value(const char *text)
{
	json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);

	return v ? v : json_string(text);
}

static json_t *dataset_versions(const struct metadata_binding *b)
{
	json_t *list = json_array();

	for (int i = 0; list && i < b->ndatasets; i++) {
		json_t *v = json_pack("{s:s}", "uri", b->datasets[i]);
		int bad = !v;

		if (!bad && b->naliases)
			bad = json_object_set_new(v, "targeting_aliases",
						  string_array(b->aliases, b->naliases)) != 0;
		if (!bad && b->from)
			bad = json_object_set_new(v, "from", json_string(b->from)) != 0;
		if (!bad && b->packaging)
			bad = json_object_set_new(v, "packaging", packaging_value(b->packaging)) != 0;
		if (bad || json_array_append_new(list, v) != 0) {
			json_decref(v);
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

static void format_mtime(int64_t ns, char *buf, size_t size)
{
	int64_t frac = ns % 1000000000;
	time_t sec = (time_t)(ns / 1000000000 - (frac < 0));
	struct tm tm;
	char base[32];

	frac += frac < 0 ? 1000000000 : 0;

	gmtime_r(&sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%09lldZ", base, (long long)frac);
}

static json_t *provenance(const struct metadata_provenance *p)
{
	char mtime[48];
	json_t *o;

	format_mtime(p->source_mtime_ns, mtime, sizeof(mtime));
	o = json_pack("{s:s, s:I, s:s, s:s?, s:i, s:i, s:i, s:i, s:s, s:s, s:o, s:s}",
			 "source", p->source, "source_bytes", (json_int_t)p->source_bytes,
			 "source_mtime", mtime, "source_sha256", p->source_sha256,
			 "original_width", p->original_width, "original_height",
			 p->original_height, "width", p->width, "height", p->height,
			 "format", p->format, "kernel", p->kernel, "operations",
			 string_array(p->operations, p->noperations), "vhprep_version",
			 p->version);
	if (o && p->extra)
		json_object_update_missing(o, p->extra);
	return o;
}

static json_t *build(const struct metadata_binding *b, const char *file,
		     const struct metadata_provenance *prov)
{
	json_t *meta = prov ? provenance(prov) : json_object();
	json_t *v;

	if (!meta)
		return NULL;
	if (b->ndatasets) {
		v = dataset_versions(b);
		if (!v || json_object_set_new(meta, "valohai.dataset-versions", v) != 0)
			goto fail;
	}
	if (b->ntags) {
		v = string_array(b->tags, b->ntags);
		if (!v || json_object_set_new(meta, "valohai.tags", v) != 0)
			goto fail;
	}
	return json_pack("{s:s, s:o}", "file", file, "metadata", meta);
fail:
	json_decref(meta);
	return NULL;
}

char *metadata_format_line(const struct metadata_binding *b, const char *file,
			   const struct metadata_provenance *prov)
{
	json_t *root = build(b, file, prov);
	char *text, *line = NULL;
	size_t n;

	if (!root)
		return NULL;
	text = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(root);
	if (!text)
		return NULL;
	n = strlen(text);
	line = malloc(n + 2);
	if (line) {
		memcpy(line, text, n);
		line[n] = '\n';
		line[n + 1] = '\0';
	}
	free(text);
	return line;
}

int metadata_open(int dirfd, const struct metadata_binding *b, struct metadata **out,
		  struct vherr *err)
{
	struct metadata *m = calloc(1, sizeof(*m));
	int rc;

	*out = NULL;
	if (!m)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	rc = appendlog_open(dirfd, METADATA_FILE, 1, &m->log, err);
	if (rc < 0) {
		free(m);
		return rc;
	}
	m->binding = b;
	*out = m;
	return 0;
}

int metadata_append(struct metadata *m, const char *file,
		    const struct metadata_provenance *prov, struct vherr *err)
{
	json_t *root = build(m->binding, file, prov);
	int rc;

	if (!root)
		return vherr_set(err, VHERR_BAD_NAME, VHSTAGE_RECORD,
				 "cannot encode metadata for '%s' (not valid UTF-8?)", file);
	rc = appendlog_write_json(m->log, root, err);
	json_decref(root);
	if (rc == 0)
		atomic_fetch_add(&m->lines, 1);
	return rc;
}

uint64_t metadata_lines(struct metadata *m)
{
	return atomic_load(&m->lines);
}

void metadata_close(struct metadata *m)
{
	if (!m)
		return;
	appendlog_close(m->log);
	free(m);
}
