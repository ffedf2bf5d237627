#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/metadata.h"
#include "tests/common/vhtest.h"

static const char *datasets[] = {"dataset://images/v2", "dataset://mirror/2024-01"};
static const char *aliases[] = {"latest", "prod"};
static const char *tags[] = {"preprocessed", "224px"};
static const char *ops[] = {"autorotate", "resize:224x224:stretch", "format:jpg:q75:420"};

static struct metadata_binding full_binding(void)
{
	return (struct metadata_binding){
	    .datasets = datasets,
	    .ndatasets = 1,
	    .from = "dataset://images/v1",
	    .aliases = aliases,
	    .naliases = 2,
	    .packaging = 1,
	    .tags = tags,
	    .ntags = 2,
	};
}

static struct metadata_provenance full_prov(void)
{
	return (struct metadata_provenance){
	    .source = "/mnt/raw/a/b.png",
	    .source_bytes = 123456789012ULL,
	    .source_mtime_ns = 1600000000123456789LL,
	    .source_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
	    .original_width = 4000,
	    .original_height = 3000,
	    .width = 224,
	    .height = 168,
	    .format = "jpg",
	    .kernel = "libvips",
	    .operations = ops,
	    .noperations = 3,
	    .version = "0.1.0",
	};
}

/* Parses line, checking the framing every line must have: one JSON object, exactly one
 * '\n' (the last byte), pure ASCII. Returns the object (caller decrefs). */
static json_t *parse_line(const char *line)
{
	size_t n;
	json_error_t jerr;
	json_t *o;

	cr_assert_not_null(line);
	n = strlen(line);
	cr_assert_gt(n, 1);
	cr_assert_eq(line[n - 1], '\n', "the line must end with a newline");
	cr_assert_eq(strchr(line, '\n'), line + n - 1, "a raw newline inside the line");
	cr_assert_null(strchr(line, '\r'));
	for (size_t i = 0; i < n; i++)
		cr_assert_lt((unsigned char)line[i], 0x80, "non-ASCII byte at %zu", i);
	o = json_loads(line, 0, &jerr);
	cr_assert_not_null(o, "not JSON: %s (%s)", jerr.text, line);
	cr_assert(json_is_object(o));
	return o;
}

static const char *str_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_string(v), "'%s' is not a string", key);
	return json_string_value(v);
}

static json_int_t int_at(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	cr_assert(json_is_integer(v), "'%s' is not an integer", key);
	return json_integer_value(v);
}

static void expect_string_array(json_t *a, const char **want, int n)
{
	cr_assert(json_is_array(a));
	cr_assert_eq(json_array_size(a), (size_t)n);
	for (int i = 0; i < n; i++)
		cr_assert_str_eq(json_string_value(json_array_get(a, (size_t)i)), want[i]);
}

Test(metadata_format_line, binding_and_provenance)
{
	struct metadata_binding b = full_binding();
	struct metadata_provenance p = full_prov();
	char *line = metadata_format_line(&b, "processed_images/a/b.jpg", &p);
	json_t *o = parse_line(line), *meta, *dv, *v, *pkg;

	cr_assert_eq(json_object_size(o), 2, "only file and metadata at the top");
	cr_assert_str_eq(str_at(o, "file"), "processed_images/a/b.jpg");
	meta = json_object_get(o, "metadata");
	cr_assert(json_is_object(meta));

	dv = json_object_get(meta, "valohai.dataset-versions");
	cr_assert(json_is_array(dv));
	cr_assert_eq(json_array_size(dv), 1);
	v = json_array_get(dv, 0);
	cr_assert_str_eq(str_at(v, "uri"), "dataset://images/v2");
	expect_string_array(json_object_get(v, "targeting_aliases"), aliases, 2);
	cr_assert_str_eq(str_at(v, "from"), "dataset://images/v1");
	pkg = json_object_get(v, "packaging");
	cr_assert(json_is_true(pkg), "packaging is the boolean true, as Valohai's examples");
	expect_string_array(json_object_get(meta, "valohai.tags"), tags, 2);

	cr_assert_str_eq(str_at(meta, "source"), "/mnt/raw/a/b.png");
	cr_assert_eq(int_at(meta, "source_bytes"), 123456789012LL);
	cr_assert_str_eq(str_at(meta, "source_mtime"), "2020-09-13T12:26:40.123456789Z");
	cr_assert_str_eq(str_at(meta, "source_sha256"), p.source_sha256);
	cr_assert_eq(int_at(meta, "original_width"), 4000);
	cr_assert_eq(int_at(meta, "original_height"), 3000);
	cr_assert_eq(int_at(meta, "width"), 224);
	cr_assert_eq(int_at(meta, "height"), 168);
	cr_assert_str_eq(str_at(meta, "format"), "jpg");
	cr_assert_str_eq(str_at(meta, "kernel"), "libvips");
	expect_string_array(json_object_get(meta, "operations"), ops, 3);
	cr_assert_str_eq(str_at(meta, "vhprep_version"), "0.1.0");
	json_decref(o);
	free(line);
}

/* An animated or multi-page input says how many frames it had and which one was used;
 * a still (frames 0 or 1) has neither member. */
Test(metadata_format_line, frames_only_for_multi_frame_inputs)
{
	struct metadata_binding b = full_binding();
	struct metadata_provenance p = full_prov();
	char *line;
	json_t *o, *meta;

	for (int frames = 0; frames <= 3; frames++) {
		p.frames = frames;
		p.frame_used = 0;
		line = metadata_format_line(&b, "processed_images/a.png", &p);
		o = parse_line(line);
		meta = json_object_get(o, "metadata");
		if (frames > 1) {
			cr_assert_eq(int_at(meta, "frames"), frames);
			cr_assert_eq(int_at(meta, "frame_used"), 0);
		} else {
			cr_assert_null(json_object_get(meta, "frames"));
			cr_assert_null(json_object_get(meta, "frame_used"));
		}
		json_decref(o);
		free(line);
	}
}

Test(metadata_format_line, no_packaging_writes_no_key)
{
	struct metadata_binding b = full_binding();
	char *line;
	json_t *o, *v;

	b.packaging = 0;
	line = metadata_format_line(&b, "f.jpg", NULL);
	o = parse_line(line);
	v = json_array_get(
	    json_object_get(json_object_get(o, "metadata"), "valohai.dataset-versions"), 0);
	cr_assert_null(json_object_get(v, "packaging"));
	json_decref(o);
	free(line);
}

Test(metadata_format_line, every_dataset_gets_the_same_binding)
{
	struct metadata_binding b = full_binding();
	char *line;
	json_t *o, *dv;

	b.ndatasets = 2;
	line = metadata_format_line(&b, "f.jpg", NULL);
	o = parse_line(line);
	dv = json_object_get(json_object_get(o, "metadata"), "valohai.dataset-versions");
	cr_assert_eq(json_array_size(dv), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *v = json_array_get(dv, i);

		cr_assert_str_eq(str_at(v, "uri"), datasets[i]);
		expect_string_array(json_object_get(v, "targeting_aliases"), aliases, 2);
		cr_assert_str_eq(str_at(v, "from"), "dataset://images/v1");
	}
	json_decref(o);
	free(line);
}

Test(metadata_format_line, minimal_binding_has_only_uri)
{
	struct metadata_binding b = {.datasets = datasets, .ndatasets = 1};
	char *line = metadata_format_line(&b, "f.jpg", NULL);
	json_t *o = parse_line(line), *meta = json_object_get(o, "metadata"), *v;

	cr_assert_eq(json_object_size(meta), 1, "no tags key without tags");
	v = json_array_get(json_object_get(meta, "valohai.dataset-versions"), 0);
	cr_assert_eq(json_object_size(v), 1);
	cr_assert_str_eq(str_at(v, "uri"), datasets[0]);
	json_decref(o);
	free(line);
}

Test(metadata_format_line, null_provenance_is_binding_only)
{
	struct metadata_binding b = full_binding();
	char *line = metadata_format_line(&b, "f.jpg", NULL);
	json_t *o = parse_line(line), *meta = json_object_get(o, "metadata");

	cr_assert_eq(json_object_size(meta), 2);
	cr_assert_not_null(json_object_get(meta, "valohai.dataset-versions"));
	cr_assert_not_null(json_object_get(meta, "valohai.tags"));
	json_decref(o);
	free(line);
}

Test(metadata_format_line, empty_binding_and_no_provenance)
{
	struct metadata_binding b = {0};
	char *line = metadata_format_line(&b, "f.jpg", NULL);
	json_t *o = parse_line(line);

	cr_assert_eq(json_object_size(json_object_get(o, "metadata")), 0);
	json_decref(o);
	free(line);
}

Test(metadata_format_line, awkward_names_round_trip_exactly)
{
	static const char *names[] = {
	    "dir/\xc3\xbcn\xc3\xaf \"q\" back\\slash \xe5\x90\x8d\xe5\x89\x8d\t.jpg",
	    "new\nline/and\rcr.jpg",
	    "emoji \xf0\x9f\x98\x80/\x7f del.jpg",
	    "'single' {braces} [brackets] : , .jpg",
	};
	struct metadata_binding b = full_binding();
	struct metadata_provenance p = full_prov();

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		char *line;
		json_t *o;

		p.source = names[i];
		line = metadata_format_line(&b, names[i], &p);
		o = parse_line(line);
		cr_assert_str_eq(str_at(o, "file"), names[i]);
		cr_assert_str_eq(str_at(json_object_get(o, "metadata"), "source"), names[i]);
		json_decref(o);
		free(line);
	}
}

/* A name that is not valid UTF-8 (Latin-1 "café") is written escaped, \xHH for each odd
 * byte and \\ for its backslashes, with its raw bytes beside it in base64: the line stays
 * JSON and the name stays recoverable. Valid names are written as they are. */
Test(metadata_format_line, names_that_are_not_utf8_are_escaped_with_their_bytes)
{
	struct metadata_binding b = full_binding();
	struct metadata_provenance p = full_prov();
	char *line;
	json_t *o, *m;

	p.source = "/mnt/caf\xe9\\x.jpg";
	p.source_relpath = "caf\xe9\\x.jpg";
	line = metadata_format_line(&b, "processed_images/caf\xe9\\x.jpg", &p);
	o = parse_line(line);
	cr_assert_str_eq(str_at(o, "file"), "processed_images/caf\\xE9\\\\x.jpg");
	/* base64 of "processed_images/caf\xe9\\x.jpg" */
	cr_assert_str_eq(str_at(o, "file_b64"), "cHJvY2Vzc2VkX2ltYWdlcy9jYWbpXHguanBn");
	m = json_object_get(o, "metadata");
	cr_assert_str_eq(str_at(m, "source"), "/mnt/caf\\xE9\\\\x.jpg");
	cr_assert_not_null(json_object_get(m, "source_b64"));
	cr_assert_str_eq(str_at(m, "source_relpath"), "caf\\xE9\\\\x.jpg");
	cr_assert_not_null(json_object_get(m, "source_relpath_b64"));
	json_decref(o);
	free(line);
	/* a valid name with a backslash is not escaped, and has no _b64 */
	line = metadata_format_line(&b, "a\\b.jpg", NULL);
	o = parse_line(line);
	cr_assert_str_eq(str_at(o, "file"), "a\\b.jpg");
	cr_assert_null(json_object_get(o, "file_b64"));
	json_decref(o);
	free(line);
}

/* Binding values are the user's (config_finish refuses ones that are not UTF-8): a
 * dataset URI or "from" that is not valid UTF-8 still makes no line. */
Test(metadata_format_line, invalid_utf8_in_the_binding_is_refused)
{
	struct metadata_binding b = full_binding();
	const char *bad = "caf\xe9";
	char *line;

	b.datasets = (const char *[]){bad};
	line = metadata_format_line(&b, "ok.jpg", NULL);
	cr_expect_null(line, "dataset uri: got %s", line ? line : "");
	free(line);

	b = full_binding();
	b.from = bad;
	line = metadata_format_line(&b, "ok.jpg", NULL);
	cr_expect_null(line, "from: got %s", line ? line : "");
	free(line);
}

/* A file modified before 1970 has a negative mtime: the nanoseconds must still be a
 * 9-digit fraction of the right second (-1.5 s is 23:59:58.5). format_mtime() truncates
 * toward zero and prints a negative remainder: "1969-12-31T23:59:59.-500000000Z". */
Test(metadata_format_line, mtime_before_1970)
{
	struct metadata_binding b = {0};
	struct metadata_provenance p = full_prov();
	char *line;
	json_t *o;

	p.source_mtime_ns = -1500000000LL;
	line = metadata_format_line(&b, "old.jpg", &p);
	o = parse_line(line);
	cr_expect_str_eq(str_at(json_object_get(o, "metadata"), "source_mtime"),
			 "1969-12-31T23:59:58.500000000Z");
	json_decref(o);
	free(line);
}

Test(metadata_format_line, epoch_and_whole_seconds)
{
	struct metadata_binding b = {0};
	struct metadata_provenance p = full_prov();
	char *line;
	json_t *o;

	p.source_mtime_ns = 0;
	line = metadata_format_line(&b, "e.jpg", &p);
	o = parse_line(line);
	cr_assert_str_eq(str_at(json_object_get(o, "metadata"), "source_mtime"),
			 "1970-01-01T00:00:00.000000000Z");
	json_decref(o);
	free(line);
}

/* ---- metadata_open / append ---- */

static char dir[PATH_MAX];
static int dfd = -1;

static void setup(void)
{
	vht_tmpdir(dir, sizeof(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void teardown(void)
{
	close(dfd);
	vht_rm_rf(dir);
}

Test(metadata, append_writes_the_formatted_lines, .init = setup, .fini = teardown)
{
	struct metadata_binding b = full_binding();
	struct metadata_provenance p = full_prov();
	struct metadata *m;
	struct vherr err = {0};
	char path[PATH_MAX], *text, *l1, *l2, *want;

	vht_put(dir, METADATA_FILE, "stale line from an earlier run\n");
	cr_assert_eq(metadata_open(dfd, &b, &m, &err), 0, "%s", err.msg);
	cr_assert_eq(metadata_append(m, "a.jpg", &p, &err), 0, "%s", err.msg);
	cr_assert_eq(metadata_append(m, "b.jpg", NULL, &err), 0);
	cr_assert_eq(metadata_lines(m), 2);
	metadata_close(m, NULL);
	metadata_close(NULL, NULL);

	l1 = metadata_format_line(&b, "a.jpg", &p);
	l2 = metadata_format_line(&b, "b.jpg", NULL);
	want = malloc(strlen(l1) + strlen(l2) + 64);
	strcpy(want, "stale line from an earlier run\n");
	strcat(want, l1);
	strcat(want, l2);
	text = vht_slurp(vht_join(path, sizeof(path), dir, METADATA_FILE), NULL);
	cr_assert_str_eq(text, want, "the file must keep what it held, then the two lines");
	free(text);
	free(want);
	free(l1);
	free(l2);
}

/* Collects the "file" of every line scanned, and counts the lines that are not JSON. */
struct scanned {
	char files[16][64];
	int n, junk;
};

static int collect(void *ctx, const struct metadata_line *l)
{
	struct scanned *sc = ctx;

	if (!l->obj)
		sc->junk++;
	else if (sc->n < 16)
		snprintf(sc->files[sc->n++], 64, "%s", l->file);
	return 0;
}

static void scan_all(struct scanned *sc)
{
	struct vherr err = {0};

	memset(sc, 0, sizeof(*sc));
	cr_assert_eq(metadata_scan(dfd, METADATA_FILE, collect, sc, &err), 0, "%s", err.msg);
}

/* Compaction keeps the last line of each file, in order, drops retracted lines and lines
 * that are not JSON (a half line a crash of an older version left), and appends go on
 * after it. */
Test(metadata, compact_keeps_the_last_line_of_each_file, .init = setup, .fini = teardown)
{
	struct metadata_binding b = {0};
	struct metadata *m;
	struct vherr err = {0};
	struct scanned sc;
	uint64_t at_b2;
	char *l;
	int did;

	vht_put(dir, METADATA_FILE, "{\"file\": \"a\", \"metadata\": {}}\nnot json\n");
	cr_assert_eq(metadata_open(dfd, &b, &m, &err), 0, "%s", err.msg);
	cr_assert_eq(metadata_append(m, "b", NULL, &err), 0);
	cr_assert_eq(metadata_append(m, "a", NULL, &err), 0); /* supersedes the first a */
	l = metadata_format_line(&b, "b", NULL);
	cr_assert_eq(metadata_append_line(m, l, strlen(l), &at_b2, &err), 0);
	cr_assert_gt(at_b2, 0);
	cr_assert_eq(metadata_retract(m, at_b2), 0); /* b's second line: never published */
	free(l);
	metadata_superseded(m);
	cr_assert_eq(metadata_finish(m, &did, &err), 0, "%s", err.msg);
	cr_assert_eq(did, 1);
	scan_all(&sc);
	cr_assert_eq(sc.junk, 0);
	cr_assert_eq(sc.n, 2);
	cr_assert_str_eq(sc.files[0], "b");
	cr_assert_str_eq(sc.files[1], "a");
	cr_assert_eq(metadata_append(m, "c", NULL, &err), 0, "appends go on after compaction");
	cr_assert_eq(metadata_finish(m, &did, &err), 0);
	cr_assert_eq(did, 0, "nothing superseded since: no second compaction");
	metadata_close(m, NULL);
	scan_all(&sc);
	cr_assert_eq(sc.n, 3);
	cr_assert_str_eq(sc.files[2], "c");
	cr_assert_eq(vht_count_names(dir, "vhprep-tmp"), 0);
}

static int keep_not_a(void *ctx, const struct metadata_line *l)
{
	(void)ctx;
	return strcmp(l->file, "a") != 0;
}

/* A keep predicate drops whole files; a line cut short (no newline) counts as junk. */
Test(metadata, compact_with_a_predicate_and_a_cut_line, .init = setup, .fini = teardown)
{
	struct metadata_binding b = {0};
	struct metadata *m;
	struct vherr err = {0};
	struct scanned sc;

	vht_put(dir, METADATA_FILE,
		"{\"file\": \"a\", \"metadata\": {}}\n{\"file\": \"b\", \"metadata\": {}}\n"
		"{\"file\": \"c\", \"metadata\": {}}");
	scan_all(&sc);
	cr_assert_eq(sc.n, 2);
	cr_assert_eq(sc.junk, 1, "a last line without its newline is not trusted");
	cr_assert_eq(metadata_open(dfd, &b, &m, &err), 0);
	cr_assert_eq(metadata_compact(m, keep_not_a, NULL, &err), 0, "%s", err.msg);
	metadata_close(m, NULL);
	scan_all(&sc);
	cr_assert_eq(sc.n, 1);
	cr_assert_eq(sc.junk, 0);
	cr_assert_str_eq(sc.files[0], "b");
}

Test(metadata, scan_of_a_missing_file_has_no_lines, .init = setup, .fini = teardown)
{
	struct scanned sc;

	scan_all(&sc);
	cr_assert_eq(sc.n + sc.junk, 0);
}
