/* itest: helpers shared by the integration tests, which run the built vhprep binary.
 *
 * The binary comes from $VHPREP_BIN, the build dir from $VHPREP_BUILD_DIR and the source
 * dir from $VHPREP_SOURCE_DIR (vh_test sets all three for ctest).
 *
 * Criterion runs each test in its own process. A suite uses
 *     TestSuite(name, .init = itest_setup, .fini = itest_teardown);
 * so every test gets a fresh temporary directory, itest_root, removed afterwards, and an
 * initialised libvips (for making inputs and decoding outputs).
 *
 * Every helper asserts (cr_assert) on failure unless it says otherwise, so a test never
 * goes on with a half-made fixture. Returned strings and lists are owned by the caller. */
#ifndef VHPREP_TESTS_ITEST_H
#define VHPREP_TESTS_ITEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The current test's temporary directory (absolute), set by itest_setup. */
extern char *itest_root;

/* Makes itest_root and initialises libvips. Use as a suite's .init. */
void itest_setup(void);
/* Removes itest_root (best effort). Use as a suite's .fini. */
void itest_teardown(void);

/* $VHPREP_BIN (asserted set and executable), $VHPREP_BUILD_DIR, $VHPREP_SOURCE_DIR.
 * $VHPREP_TEST_BUILD_DIR, when set, replaces the first two: the tests built here then
 * drive another build's vhprep and tools (tests/run.sh's ThreadSanitizer stage, whose
 * build cannot run Criterion itself). */
const char *itest_bin(void);
const char *itest_build_dir(void);
const char *itest_source_dir(void);

/* ---- paths and files ---- */

/* Returns a malloc'd printf-formatted string. */
char *itest_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Returns itest_root + "/" + rel (malloc'd). */
char *itest_path(const char *rel);
/* mkdir -p. */
void itest_mkdirs(const char *path);
/* Writes data to path (created or truncated, parents created). */
void itest_write_file(const char *path, const void *data, size_t len);
/* Returns the whole file, NUL-terminated (caller frees); *len may be NULL. Asserts it
 * exists. */
char *itest_slurp(const char *path, size_t *len);
/* Whether path exists (lstat). */
int itest_exists(const char *path);
/* File size (stat), asserted. */
uint64_t itest_file_size(const char *path);
/* Removes path recursively (best effort, directories made unreadable are opened). */
void itest_rmtree(const char *path);
/* Copies the tree src to dst (regular files, directories; mtimes are not kept). */
void itest_copy_tree(const char *src, const char *dst);

/* ---- lists of relative paths ---- */

struct itest_list {
	char **v;
	size_t n, cap;
};

void itest_list_add(struct itest_list *l, const char *s);
void itest_list_sort(struct itest_list *l);
int itest_list_has(const struct itest_list *l, const char *s);
void itest_list_free(struct itest_list *l);
/* Fills l with the relative paths of the regular files under root, sorted. A missing
 * root gives an empty list. */
void itest_list_files(const char *root, struct itest_list *l);
/* Returns how many names (files, dirs, anything) under root contain needle. */
int itest_count_names(const char *root, const char *needle);
/* Asserts that two sorted lists are equal, printing the first difference. */
void itest_assert_lists_equal(const struct itest_list *a, const struct itest_list *b,
			      const char *what);

/* ---- hashes and tree snapshots ---- */

/* SHA-256 of a file as 64 lowercase hex digits plus NUL. */
void itest_sha256_file(const char *path, char hex[65]);
/* A snapshot of everything under root (root included): relpath -> "type size mode
 * mtime-ns sha256" (sha256 for regular files, the target for symlinks). */
json_t *itest_snapshot(const char *root);
/* Asserts two snapshots are equal, naming the first path that differs. */
void itest_assert_snapshots_equal(json_t *before, json_t *after, const char *what);
/* Asserts that the regular files under a and b have the same names and bytes. */
void itest_assert_trees_identical(const char *a, const char *b);

/* ---- JSON ---- */

/* Reads a JSON-lines file into a new array; asserts every line is one JSON object and the
 * file ends with a newline (if not empty). A missing file gives an empty array. */
json_t *itest_read_jsonl(const char *path);
/* Reads one JSON document (asserted). */
json_t *itest_read_json(const char *path);
/* Object member as string/int (asserted present and of that type). */
const char *itest_jstr(json_t *obj, const char *key);
json_int_t itest_jint(json_t *obj, const char *key);
/* Follows a "a.b.c" path of object keys; NULL if absent. */
json_t *itest_jget(json_t *obj, const char *dotted);

/* ---- processes ---- */

struct itest_proc {
	int exit_code;	 /* exit status, or -1 when killed by a signal */
	int term_signal; /* the signal that ended it, or 0 */
	int timed_out;	 /* killed by the helper after its timeout */
	char *out, *err; /* stdout and stderr, NUL-terminated */
	size_t out_len, err_len;
};

/* Seconds a synchronous run may take before it is killed and the test fails. */
#define ITEST_RUN_TIMEOUT 90.0

/* A growable NULL-terminated argv. */
struct itest_argv {
	char **v;
	int n, cap;
};
void itest_argv_add(struct itest_argv *a, const char *s);
void itest_argv_addf(struct itest_argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void itest_argv_free(struct itest_argv *a);

/* Options of a spawn. */
struct itest_spawn_opts {
	const char *cwd;	/* NULL: itest_root */
	const char *stdin_path; /* NULL: /dev/null */
	int drop_dac;		/* root: drop CAP_DAC_OVERRIDE/READ_SEARCH from the child's
				   bounding set, so file permissions apply to it */
	int stderr_tty;		/* itest_run only: the child's stderr is a pseudo-terminal
				   (raw mode: no "\n" -> "\r\n"), so isatty(2) is true */
};

/* Starts argv[0] (a path) with stdout/stderr into out_path/err_path. Returns the pid. */
pid_t itest_spawn(char *const argv[], const struct itest_spawn_opts *o, const char *out_path,
		  const char *err_path);
/* Waits up to timeout_s for pid; returns 1 if it ended (*exit_code, *sig filled), 0 on
 * timeout (the child is left running). */
int itest_wait(pid_t pid, double timeout_s, int *exit_code, int *sig);
/* Runs argv to completion (killed after ITEST_RUN_TIMEOUT), capturing its output. */
void itest_run(char *const argv[], const struct itest_spawn_opts *o, struct itest_proc *p);
/* Runs vhprep with the NULL-terminated arguments, in itest_root. */
void itest_vhprep(struct itest_proc *p, ...) __attribute__((sentinel));
/* Runs vhprep with a.v (a.v[0] must be itest_bin()). */
void itest_vhprep_argv(struct itest_proc *p, struct itest_argv *a);
void itest_proc_release(struct itest_proc *p);
/* Asserts p exited with code want, showing its stderr if not. */
void itest_assert_exit(const struct itest_proc *p, int want);

/* ---- fixtures: the scripts of tests/fixtures ---- */

/* Runs "bash $VHPREP_SOURCE_DIR/tests/fixtures/SCRIPT ARGS..." (NULL-terminated) to its
 * end; returns its exit code (77: cannot run here) and, when out/err are not NULL, its
 * stdout and stderr (malloc'd). */
int itest_fixture(const char *script, char **out, char **err, ...) __attribute__((sentinel));
/* The value of the line "KEY=value" in text (malloc'd), asserted present. */
char *itest_line_value(const char *text, const char *key);

/* ---- images ---- */

/* Writes a w x h image of bands (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) to path; the format
 * comes from the extension (jpg/jpeg, png, webp, tif/tiff, gif). The content is a
 * deterministic pattern of seed. orientation > 0 sets the EXIF orientation (JPEG). */
void itest_make_image(const char *path, int w, int h, int bands, unsigned seed,
		      int orientation);
/* Encodes like itest_make_image into a malloc'd buffer. */
void *itest_encode_image(const char *ext, int w, int h, int bands, unsigned seed,
			 int orientation, size_t *len);

struct itest_image {
	int w, h, bands;
	int uchar;	    /* 8 bits per sample */
	int interpretation; /* VipsInterpretation */
	char loader[64];    /* libvips loader class, e.g. "VipsForeignLoadJpegBuffer" */
};
/* Reads an image's header (asserted decodable) into *info. Returns 0, or -1 if libvips
 * cannot read it (only when may_fail; else asserts). */
int itest_image_info(const char *path, struct itest_image *info, int may_fail);
/* Decodes fully and returns the pixel at x,y band b (asserted). */
double itest_image_pixel(const char *path, int x, int y, int band);
/* The format the first bytes say: "jpg", "png", "webp", "gif", "tiff", or NULL. */
const char *itest_sniff(const char *path);

/* ---- vhprep records ---- */

/* The checks every finished or interrupted run's outputs must pass:
 * - valohai.metadata.jsonl: one JSON object per line, each {"file", "metadata"};
 * - the "file" values are distinct and every one exists;
 * - the set of "file" values under prefix equals the files on disk under outputs/prefix
 *   (live-upload sidecars NAME.metadata.json aside);
 * - if want_csv_line, exactly one line for processing_metadata.csv (else at most one);
 * - no name containing ".vhprep-tmp" anywhere under outputs.
 * Returns the metadata lines (caller decrefs). */
json_t *itest_check_outputs(const char *outputs, const char *prefix, int want_csv_line);

/* A whole CSV file, parsed with RFC 4180 quoting: rows[i] holds the fields of row i. */
struct itest_csv {
	struct itest_list *rows; /* rows[i] is the list of fields of row i */
	size_t nrows;
};
/* Parses path (asserting well-formed quoting) into csv. */
void itest_read_csv(const char *path, struct itest_csv *csv);
void itest_csv_free(struct itest_csv *csv);

/* The mtime of path as vhprep writes it: "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ". */
void itest_mtime_string(const char *path, char *buf, size_t size);

#endif
