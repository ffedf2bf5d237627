#include "engine/options.h"

#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

enum {
	OPT_RESIZE = 256, OPT_MODE, OPT_GRAY, OPT_BLUR, OPT_SHARPEN, OPT_NO_AUTOROTATE,
	OPT_FORMAT, OPT_QUALITY, OPT_SUBSAMPLE, OPT_MAX_PIXELS, OPT_FAIL_ON, OPT_KERNEL, OPT_INCLUDE,
	OPT_EXCLUDE, OPT_MIN_SIZE, OPT_MAX_SIZE, OPT_LIMIT, OPT_SAMPLE, OPT_SEED, OPT_SHARD,
	OPT_FILES_FROM, OPT_PREFIX, OPT_LIVE_UPLOAD, OPT_OVERWRITE, OPT_DATASET,
	OPT_DATASET_FROM, OPT_DATASET_ALIAS, OPT_PACKAGING, OPT_TAG, OPT_IO_DEPTH,
	OPT_WALKERS, OPT_READ_BUDGET, OPT_MAX_ERRORS, OPT_METRICS, OPT_PROGRESS,
	OPT_NO_PROGRESS, OPT_NFS_CONNECTIONS, OPT_NFS_TIMEOUT, OPT_SINCE, OPT_SINCE_CHECKSUM,
	OPT_DATASET_EXCLUDE,
	/* packs */
	OPT_PACK, OPT_SHARD_SIZE, OPT_ZSTD_LEVEL,
	/* --urls */
	OPT_URLS, OPT_URL_COLUMN, OPT_KEY_COLUMN, OPT_PER_HOST, OPT_HTTP_TIMEOUT, OPT_RETRIES,
	OPT_KEEP_QUERY, OPT_INSECURE, OPT_CACERT, OPT_NETRC_FILE, OPT_ALLOW_METADATA_IP,
	/* png-fast */
	OPT_PNG_LEVEL,
	/* memory (issue 13) */
	OPT_MEMORY, OPT_MAX_FILE_SIZE,
	/* the preview sheet */
	OPT_PREVIEW, OPT_PREVIEW_IN_DATASET,
};

static const struct option long_options[] = {
	{"resize", required_argument, NULL, OPT_RESIZE},
	{"resize-mode", required_argument, NULL, OPT_MODE},
	{"gray", no_argument, NULL, OPT_GRAY},
	{"grey", no_argument, NULL, OPT_GRAY},
	{"blur", required_argument, NULL, OPT_BLUR},
	{"sharpen", no_argument, NULL, OPT_SHARPEN},
	{"no-autorotate", no_argument, NULL, OPT_NO_AUTOROTATE},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"quality", required_argument, NULL, OPT_QUALITY},
	{"subsample", required_argument, NULL, OPT_SUBSAMPLE},
	{"png-level", required_argument, NULL, OPT_PNG_LEVEL},
	{"max-pixels", required_argument, NULL, OPT_MAX_PIXELS},
	{"fail-on", required_argument, NULL, OPT_FAIL_ON},
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"background", required_argument, NULL, 'B'},
	{"include", required_argument, NULL, OPT_INCLUDE},
	{"exclude", required_argument, NULL, OPT_EXCLUDE},
	{"min-size", required_argument, NULL, OPT_MIN_SIZE},
	{"max-size", required_argument, NULL, OPT_MAX_SIZE},
	{"limit", required_argument, NULL, OPT_LIMIT},
	{"sample", required_argument, NULL, OPT_SAMPLE},
	{"seed", required_argument, NULL, OPT_SEED},
	{"shard", required_argument, NULL, OPT_SHARD},
	{"files-from", required_argument, NULL, OPT_FILES_FROM},
	{"outputs", required_argument, NULL, 'o'},
	{"prefix", required_argument, NULL, OPT_PREFIX},
	{"live-upload", no_argument, NULL, OPT_LIVE_UPLOAD},
	{"overwrite", no_argument, NULL, OPT_OVERWRITE},
	{"pack", required_argument, NULL, OPT_PACK},
	{"shard-size", required_argument, NULL, OPT_SHARD_SIZE},
	{"zstd-level", required_argument, NULL, OPT_ZSTD_LEVEL},
	{"dataset", required_argument, NULL, OPT_DATASET},
	{"dataset-from", required_argument, NULL, OPT_DATASET_FROM},
	{"dataset-alias", required_argument, NULL, OPT_DATASET_ALIAS},
	{"packaging", no_argument, NULL, OPT_PACKAGING},
	{"tag", required_argument, NULL, OPT_TAG},
	{"dataset-exclude", required_argument, NULL, OPT_DATASET_EXCLUDE},
	{"since", required_argument, NULL, OPT_SINCE},
	{"since-checksum", no_argument, NULL, OPT_SINCE_CHECKSUM},
	{"preview", required_argument, NULL, OPT_PREVIEW},
	{"preview-in-dataset", no_argument, NULL, OPT_PREVIEW_IN_DATASET},
	{"threads", required_argument, NULL, 'j'},
	{"io-depth", required_argument, NULL, OPT_IO_DEPTH},
	{"walkers", required_argument, NULL, OPT_WALKERS},
	{"nfs-connections", required_argument, NULL, OPT_NFS_CONNECTIONS},
	{"nfs-inflight", required_argument, NULL, OPT_IO_DEPTH},
	{"nfs-timeout", required_argument, NULL, OPT_NFS_TIMEOUT},
	{"read-budget", required_argument, NULL, OPT_READ_BUDGET},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"max-file-size", required_argument, NULL, OPT_MAX_FILE_SIZE},
	{"max-errors", required_argument, NULL, OPT_MAX_ERRORS},
	{"metrics-interval", required_argument, NULL, OPT_METRICS},
	{"progress", no_argument, NULL, OPT_PROGRESS},
	{"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
	{"urls", required_argument, NULL, OPT_URLS},
	{"url-column", required_argument, NULL, OPT_URL_COLUMN},
	{"key-column", required_argument, NULL, OPT_KEY_COLUMN},
	{"per-host", required_argument, NULL, OPT_PER_HOST},
	{"http-timeout", required_argument, NULL, OPT_HTTP_TIMEOUT},
	{"retries", required_argument, NULL, OPT_RETRIES},
	{"keep-query", no_argument, NULL, OPT_KEEP_QUERY},
	{"insecure", no_argument, NULL, OPT_INSECURE},
	{"cacert", required_argument, NULL, OPT_CACERT},
	{"netrc-file", required_argument, NULL, OPT_NETRC_FILE},
	{"allow-metadata-ip", no_argument, NULL, OPT_ALLOW_METADATA_IP},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

void options_usage(FILE *out)
{
	fputs(
"Usage: vhprep [OPTIONS] SOURCE\n"
"       vhprep [OPTIONS] --urls FILE    (images from a list of http(s) URLs)\n"
"       vhprep bench [OPTIONS] SOURCE   (storage benchmark: vhprep bench --help)\n"
"\n"
"Preprocess the images under SOURCE into the Valohai outputs dir, and bind every\n"
"output to a dataset version in valohai.metadata.jsonl. The source is only read,\n"
"never written. SOURCE is a directory or kernel NFS mount (/mnt/raw-images), or\n"
"nfs://HOST[:PORT]/EXPORT/PATH[?version=3|4&nfsport=N&mountport=N&uid=N&gid=N],\n"
"read directly over NFS without a mount.\n"
"\n"
"Transform:\n"
"  --resize N|WxH          resize to N x N or W x H (default: no resize, re-encode only)\n"
"  --resize-mode MODE      stretch (default; exactly WxH, like PIL img.resize((W, H))),\n"
"                          fit (inside WxH, aspect kept), short (cover WxH, aspect kept:\n"
"                          --resize N makes the short side N), crop (cover, then\n"
"                          centre-crop to WxH), pad (fit, then pad to WxH)\n"
"  --gray                  single-band grey output\n"
"  --blur SIGMA            gaussian blur after resizing\n"
"  --sharpen               sharpen after resizing\n"
"  --no-autorotate         do not apply the EXIF orientation (default: applied)\n"
"                          Animated GIF/WebP and multi-page TIFF: the first frame is\n"
"                          used and the record says \"frames\" and \"frame_used\"\n"
"                          (--frames all, one output per frame, may come later)\n"
"  --format FMT            keep (default: jpeg->jpg, png->png, webp->webp, others->png),\n"
"                          jpg, png or webp\n"
"  --quality Q             JPEG/WebP quality 1-100 (default 75, as PIL's save)\n"
"  --subsample S           JPEG chroma subsampling 420 (default, as PIL) or 444\n"
"  --png-level L           PNG compression 1-12 of the PNG fast path (libdeflate;\n"
"                          default 7: about the bytes of PIL's PNGs, in less time)\n"
"  --max-pixels N          refuse images of more pixels, read from the header before\n"
"                          decoding (default 100000000)\n"
"  --fail-on LEVEL         none, truncated (default), error or warning: how damaged\n"
"                          an input may be before it is a failure\n"
"  --kernel K              auto (default: libjpeg-turbo fast path for plain JPEG to\n"
"                          JPEG, libspng fast path for PNG to PNG or JPEG, libvips\n"
"                          for the rest) or vips (libvips for all)\n"
"  --background R,G,B      pad and alpha-flattening colour (default 0,0,0)\n"
"\n"
"Select (a file is processed when every given filter keeps it):\n"
"  (default: the files whose extension names a format vhprep reads here, any case:\n"
"  jpg jpeg jpe jfif png webp gif tif tiff bmp and the rest libvips loads; the others\n"
"  are counted as skipped_type; --files-from and --urls take every name given)\n"
"  --include GLOB          keep matching files instead (repeatable, one glob each:\n"
"                          globs are not comma-separated; a pattern without '/'\n"
"                          matches the base name, one with '/' the relative path)\n"
"  --exclude GLOB          drop matching files (repeatable, same matching)\n"
"  --min-size SIZE         drop files smaller than SIZE (bytes; k, M, G suffixes)\n"
"  --max-size SIZE         drop files larger than SIZE\n"
"  --limit N               stop after N selected files (the first found: use --sample\n"
"                          for a subset that reruns reproduce)\n"
"  --sample FRACTION       keep this fraction, chosen by a hash of the relative path:\n"
"                          a rerun picks the same files (--seed N varies the choice)\n"
"  --shard I/N             keep the files whose path hash mod N is I (0 <= I < N): N\n"
"                          machines split one job without overlap\n"
"  --shard auto[/N]        I and N from the scheduler, said on stderr: a Valohai\n"
"                          distributed task (VH_DIST_MEMBER_INDEX/COUNT, else\n"
"                          $VH_CONFIG_DIR/distributed.json), a Kubernetes Indexed Job\n"
"                          (JOB_COMPLETION_INDEX; it has no count: give auto/N) or a\n"
"                          Slurm array (SLURM_ARRAY_TASK_ID/COUNT/MIN); none: exit 2\n"
"  --files-from FILE       read relative paths from FILE ('-': stdin) instead of\n"
"                          walking SOURCE\n"
"\n"
"Write and record:\n"
"  -o, --outputs DIR       outputs dir (default: $VH_OUTPUTS_DIR, else /valohai/outputs\n"
"                          if it exists, else ./outputs)\n"
"  --prefix DIR            sub-directory of outputs for the images (default\n"
"                          processed_images)\n"
"  --live-upload           make each finished file read-only, so Valohai uploads it now\n"
"                          (its metadata first goes into the sidecar NAME.metadata.json)\n"
"  --pack tar|tar.zst      write the images into shards PREFIX-IofN-SEQ.tar[.zst] in\n"
"                          the outputs root instead of one file each (WebDataset\n"
"                          members KEY and KEY.json; one index per shard,\n"
"                          SHARD.idx.jsonl). Valohai uploads each file as a request:\n"
"                          pack when a run writes more than about a thousand.\n"
"                          tar.zst is rarely worth it: JPEG and PNG outputs are\n"
"                          compressed already (measured: within 1-3% of their size);\n"
"                          it wins back tar's 512-byte padding (~10% at 17 KB outputs)\n"
"                          for 2-3x tar's CPU. Prefer tar (README, 'Packs')\n"
"  --shard-size SIZE       bytes per shard at most (default 1G; one larger output\n"
"                          gets a shard of its own)\n"
"  --zstd-level L          tar.zst compression level 1-19 (default 3)\n"
"  --overwrite             redo every input into an outputs dir an earlier run used,\n"
"                          with any settings (default: resume, skipping inputs whose\n"
"                          output stands, and refuse other settings); outputs of the\n"
"                          prefix that no input replaces are removed\n"
"  --dataset URI           bind every output to dataset://NAME/VERSION (repeatable);\n"
"                          {shard} in it becomes IofN (dataset://imgs/v1-part{shard} ->\n"
"                          v1-part2of4), a version per member\n"
"  --dataset-from URI      the version the new one starts from\n"
"  --dataset-alias ALIAS   a targeting alias for the version (repeatable)\n"
"  --packaging             ask Valohai to package the version (\"packaging\": true,\n"
"                          the form of Valohai's examples) for faster downloads\n"
"  --tag TAG               a valohai.tags entry on every output (repeatable)\n"
"  --dataset-exclude NAME  a file of the --dataset-from version that the new version\n"
"                          leaves out (repeatable; --since adds the changed and\n"
"                          deleted ones itself)\n"
"\n"
"Incremental (each Valohai execution starts with empty outputs):\n"
"  --since FILE            an earlier run's valohai.metadata.jsonl (give it to the step\n"
"                          as an input): inputs whose path, size and mtime match their\n"
"                          line there are skipped; with --dataset-from the new version\n"
"                          is the old one plus this run's outputs, minus the outputs of\n"
"                          inputs changed or deleted since (its \"exclude\")\n"
"  --since-checksum        compare inputs with FILE by SHA-256 (read in full) instead\n"
"                          of size and mtime\n"
"\n"
"Preview:\n"
"  --preview N             vhprep-preview.jpg in the outputs root shows N outputs, each\n"
"                          beside its source, chosen by a hash of the relative path,\n"
"                          and the failed inputs (default 24, at most 100; 0: none)\n"
"  --preview-in-dataset    bind the sheet to the --dataset version too (default: it is\n"
"                          an output of the execution only)\n"
"\n"
"Run:\n"
"  -j, --threads N         image worker threads (default: all cores)\n"
"  --io-depth N            opens+reads in flight (default 64): on a network mount each\n"
"                          one is a round trip, and only many in flight hide it\n"
"  --walkers N             directories listed at once (default 16)\n"
"  --nfs-connections N     nfs://: TCP connections to the server, like nconnect\n"
"                          (default 4)\n"
"  --nfs-inflight N        nfs://: the same as --io-depth (reads in flight)\n"
"  --nfs-timeout S         nfs://: seconds to mount, for each request, and for the\n"
"                          server to come back after a dropped connection before\n"
"                          the run ends with exit 1 (default 10)\n"
"  --memory SIZE           the memory vhprep may use (default: the container's limit,\n"
"                          cgroup v2 memory.max or v1 memory.limit_in_bytes, else the\n"
"                          machine's): decodes wait for room in it, estimated from\n"
"                          each header; an image that alone needs more is too_large\n"
"  --read-budget SIZE      bytes read ahead of the workers at most (default a quarter\n"
"                          of --memory, at most 256M)\n"
"  --max-file-size SIZE    a larger input is too_large from its size, unread\n"
"                          (default 1G; --max-size instead drops files silently)\n"
"  --max-errors N          failures allowed before the exit code says so (default 0)\n"
"  --metrics-interval S    seconds between JSON metrics lines on stdout (default 5;\n"
"                          0: none)\n"
"  --progress, --no-progress  force the stderr progress line on or off (default: on\n"
"                          when stderr is a terminal)\n"
"  -q, --quiet             no progress, warnings or summary on stderr\n"
"\n"
"URL lists (instead of SOURCE):\n"
"  --urls FILE             fetch the images a list names ('-': stdin), --io-depth\n"
"                          transfers at once: one URL per line, or CSV/TSV with a\n"
"                          header, or JSON lines; other columns go into each output's\n"
"                          metadata. Only http:// and https:// (also after redirects)\n"
"  --url-column NAME       the URL column or key (default url)\n"
"  --key-column NAME       the column naming each output (default key; without one a\n"
"                          stable, collision-free name comes from the URL: HOST/PATH,\n"
"                          plus ~HASH when the URL has a query or odd characters)\n"
"  --per-host N            connections per host (default 16; HTTP/2 multiplexes)\n"
"  --http-timeout S        seconds for one attempt, connecting included (default 60)\n"
"  --retries N             retries of a 429, 5xx or broken transfer, with backoff and\n"
"                          the server's Retry-After (default 3)\n"
"  --keep-query            keep query strings in provenance (default: '?redacted', as\n"
"                          a presigned URL's signature is a credential)\n"
"  --cacert FILE           trust the CA certificates in FILE\n"
"  --insecure              do not verify TLS certificates\n"
"  --netrc-file FILE       credentials per host from FILE (never from the list)\n"
"  --allow-metadata-ip     allow cloud metadata addresses (169.254.0.0/16,\n"
"                          fd00:ec2::254; refused by default)\n"
"  --max-size SIZE         also caps a download: a longer body is cut off and recorded\n"
"                          (default cap 256M)\n"
"  -h, --help              this text\n"
"  -V, --version           the version\n"
"\n"
"The outputs dir receives: PREFIX/<relative tree>, valohai.metadata.jsonl (one line per\n"
"output, with provenance), processing_metadata.csv, vhprep-errors.jsonl (one line per\n"
"failed input), vhprep-summary.json and vhprep-preview.jpg.\n"
"\n"
"Exit codes:\n"
"  0    every selected file was processed (or failures <= --max-errors)\n"
"  1    a fatal runtime error (outputs not writable, disk full)\n"
"  2    usage error, or the source cannot be read\n"
"  3    more failures than --max-errors (see vhprep-errors.jsonl)\n"
"  129  stopped by SIGHUP,\n"
"  130  by SIGINT,\n"
"  143  by SIGTERM: the files in flight finish, the rest are dropped, records and\n"
"       summary are written; a second signal stops at once (files in flight\n"
"       abandoned, nothing partial left)\n",
	      out);
}

static int bad(struct vherr *err, const char *opt, const char *value, const char *want)
{
	return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE, "invalid %s '%s': expected %s", opt,
			 value, want);
}

static int parse_background(const char *s, uint8_t rgb[3])
{
	unsigned r, g, b;
	char extra;

	if (sscanf(s, "%u,%u,%u%c", &r, &g, &b, &extra) != 3 || r > 255 || g > 255 || b > 255)
		return -1;
	rgb[0] = (uint8_t)r;
	rgb[1] = (uint8_t)g;
	rgb[2] = (uint8_t)b;
	return 0;
}

/* The transform options. Returns 1 if opt is not one of them. */
static int parse_transform(int opt, const char *v, struct config *cfg, struct vherr *err)
{
	struct kernel_params *k = &cfg->kernel;
	long n;

	switch (opt) {
	case OPT_RESIZE:
		return config_parse_resize(v, &k->resize_w, &k->resize_h)
			       ? bad(err, "--resize", v, "N or WxH, 1-65535")
			       : 0;
	case OPT_MODE:
		return geometry_mode_parse(v, &k->mode)
			       ? bad(err, "--resize-mode", v, "stretch|fit|short|crop|pad")
			       : 0;
	case OPT_GRAY:
		k->gray = 1;
		return 0;
	case OPT_BLUR: {
		char *end;
		k->blur_sigma = strtod(v, &end);
		return *end || end == v || !(k->blur_sigma > 0 && k->blur_sigma <= 100)
			       ? bad(err, "--blur", v, "a sigma in (0, 100]")
			       : 0;
	}
	case OPT_SHARPEN:
		k->sharpen = 1;
		return 0;
	case OPT_NO_AUTOROTATE:
		k->autorotate = 0;
		return 0;
	case OPT_FORMAT:
		return kernel_format_parse(v, &k->format)
			       ? bad(err, "--format", v, "keep|jpg|png|webp")
			       : 0;
	case OPT_QUALITY:
		if (config_parse_long(v, 1, 100, &n))
			return bad(err, "--quality", v, "1-100");
		k->quality = (int)n;
		return 0;
	case OPT_SUBSAMPLE:
		return kernel_subsample_parse(v, &k->subsample) ? bad(err, "--subsample", v, "420|444")
								: 0;
	case OPT_PNG_LEVEL:
		if (config_parse_long(v, 1, 12, &n))
			return bad(err, "--png-level", v, "1-12");
		k->png_level = (int)n;
		return 0;
	case OPT_MAX_PIXELS:
		return config_parse_size(v, &k->max_pixels) || k->max_pixels == 0
			       ? bad(err, "--max-pixels", v, "a positive count")
			       : 0;
	case OPT_FAIL_ON:
		return kernel_fail_on_parse(v, &k->fail_on)
			       ? bad(err, "--fail-on", v, "none|truncated|error|warning")
			       : 0;
	case OPT_KERNEL:
		if (strcmp(v, "auto") == 0)
			k->choice = KERNEL_AUTO;
		else if (strcmp(v, "vips") == 0 || strcmp(v, "libvips") == 0)
			k->choice = KERNEL_VIPS;
		else
			return bad(err, "--kernel", v, "auto|vips");
		return 0;
	case 'B':
		return parse_background(v, k->background) ? bad(err, "--background", v, "R,G,B")
							   : 0;
	}
	return 1;
}

static int add(struct strlist *l, const char *v, struct vherr *err)
{
	return strlist_add(l, v) ? vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, NULL) : 0;
}

/* --shard I/N, or auto[/N]: the index (and count) from the scheduler's environment,
 * resolved by config_finish. I/N wins over auto whatever their order. */
static int parse_shard(const char *v, struct config *cfg, struct vherr *err)
{
	if (config_parse_shard_auto(v, &cfg->shard_auto_count) == 0) {
		cfg->shard_auto = 1;
		return 0;
	}
	if (config_parse_shard(v, &cfg->shard_index, &cfg->shard_count) != 0)
		return bad(err, "--shard", v, "I/N with 0 <= I < N, auto or auto/N");
	cfg->shard_explicit = 1;
	return 0;
}

/* The select options. Returns 1 if opt is not one of them. */
static int parse_select(int opt, const char *v, struct config *cfg, struct vherr *err)
{
	long n;

	switch (opt) {
	case OPT_INCLUDE:
		return add(&cfg->includes, v, err);
	case OPT_EXCLUDE:
		return add(&cfg->excludes, v, err);
	case OPT_MIN_SIZE:
		return config_parse_size(v, &cfg->min_size) ? bad(err, "--min-size", v, "a size")
							     : 0;
	case OPT_MAX_SIZE:
		return config_parse_size(v, &cfg->max_size) ? bad(err, "--max-size", v, "a size")
							     : 0;
	case OPT_LIMIT:
		if (config_parse_long(v, 1, LONG_MAX, &n))
			return bad(err, "--limit", v, "a positive count");
		cfg->limit = (uint64_t)n;
		return 0;
	case OPT_SAMPLE:
		return config_parse_fraction(v, &cfg->sample)
			       ? bad(err, "--sample", v, "a fraction in (0, 1]")
			       : 0;
	case OPT_SEED:
		if (config_parse_long(v, 0, LONG_MAX, &n))
			return bad(err, "--seed", v, "a non-negative integer");
		cfg->seed = (uint64_t)n;
		return 0;
	case OPT_SHARD:
		return parse_shard(v, cfg, err);
	case OPT_FILES_FROM:
		cfg->files_from = v;
		return 0;
	}
	return 1;
}

/* The pack options. Returns 1 if opt is not one of them. */
static int parse_pack(int opt, const char *v, struct config *cfg, struct vherr *err)
{
	long n;

	switch (opt) {
	case OPT_PACK:
		if (pack_format_parse(v, &cfg->pack_format) != 0)
			return bad(err, "--pack", v, "tar|tar.zst");
		cfg->pack = 1;
		return 0;
	case OPT_SHARD_SIZE:
		return config_parse_size(v, &cfg->shard_size) ||
				       cfg->shard_size < PACK_SHARD_SIZE_MIN
			       ? bad(err, "--shard-size", v, "a size of at least 64k")
			       : 0;
	case OPT_ZSTD_LEVEL:
		if (config_parse_long(v, 1, 19, &n))
			return bad(err, "--zstd-level", v, "1-19");
		cfg->zstd_level = (int)n;
		return 0;
	}
	return 1;
}

/* The write and record options. Returns 1 if opt is not one of them. */
static int parse_output(int opt, const char *v, struct config *cfg, struct vherr *err)
{
	switch (opt) {
	case 'o':
		cfg->outputs = v;
		return 0;
	case OPT_PREFIX:
		cfg->prefix = v;
		return 0;
	case OPT_LIVE_UPLOAD:
		cfg->live_upload = 1;
		return 0;
	case OPT_OVERWRITE:
		cfg->overwrite = 1;
		return 0;
	case OPT_DATASET:
		return add(&cfg->datasets, v, err);
	case OPT_DATASET_FROM:
		cfg->dataset_from = v;
		return 0;
	case OPT_DATASET_ALIAS:
		return add(&cfg->aliases, v, err);
	case OPT_PACKAGING:
		cfg->packaging = 1;
		return 0;
	case OPT_TAG:
		return add(&cfg->tags, v, err);
	case OPT_DATASET_EXCLUDE:
		return add(&cfg->dataset_excludes, v, err);
	case OPT_SINCE:
		cfg->since = v;
		return 0;
	case OPT_SINCE_CHECKSUM:
		cfg->since_checksum = 1;
		return 0;
	}
	return parse_pack(opt, v, cfg, err);
}

static int parse_count(const char *opt, const char *v, long max, int *out, struct vherr *err)
{
	long n;

	if (config_parse_long(v, 1, max, &n))
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "invalid %s '%s': expected 1-%ld", opt, v, max);
	*out = (int)n;
	return 0;
}

/* The preview options. Returns 1 if opt is not one of them. */
static int parse_preview(int opt, const char *v, struct config *cfg, struct vherr *err)
{
	long n;

	switch (opt) {
	case OPT_PREVIEW:
		if (config_parse_long(v, 0, 100, &n)) /* PREVIEW_MAX */
			return bad(err, "--preview", v, "a count of 0-100");
		cfg->preview = (int)n;
		return 0;
	case OPT_PREVIEW_IN_DATASET:
		cfg->preview_in_dataset = 1;
		return 0;
	}
	return 1;
}

/* The run options. Returns 1 if opt is not one of them. */
static int parse_run(int opt, const char *v, struct config *cfg, struct vherr *err)
{
	long n;
	char *end;

	switch (opt) {
	case 'j':
		return parse_count("--threads", v, 1024, &cfg->threads, err);
	case OPT_IO_DEPTH:
		return parse_count("--io-depth", v, 4096, &cfg->io_depth, err);
	case OPT_WALKERS:
		return parse_count("--walkers", v, 1024, &cfg->walkers, err);
	case OPT_NFS_CONNECTIONS:
		return parse_count("--nfs-connections", v, 64, &cfg->nfs_connections, err);
	case OPT_NFS_TIMEOUT:
		cfg->nfs_timeout = strtod(v, &end);
		return *end || end == v || !(cfg->nfs_timeout > 0 && cfg->nfs_timeout <= 3600)
			       ? bad(err, "--nfs-timeout", v, "seconds in (0, 3600]")
			       : 0;
	case OPT_READ_BUDGET:
		cfg->read_budget_set = 1;
		return config_parse_size(v, &cfg->read_budget) || cfg->read_budget < 1024
			       ? bad(err, "--read-budget", v, "a size of at least 1k")
			       : 0;
	case OPT_MEMORY:
		return config_parse_size(v, &cfg->memory) || cfg->memory < CONFIG_MEMORY_MIN
			       ? bad(err, "--memory", v, "a size of at least 64M")
			       : 0;
	case OPT_MAX_FILE_SIZE:
		return config_parse_size(v, &cfg->max_file_size) || cfg->max_file_size == 0
			       ? bad(err, "--max-file-size", v, "a size above 0")
			       : 0;
	case OPT_MAX_ERRORS:
		if (config_parse_long(v, 0, LONG_MAX, &n))
			return bad(err, "--max-errors", v, "a count");
		cfg->max_errors = (uint64_t)n;
		return 0;
	case OPT_METRICS:
		cfg->metrics_interval = strtod(v, &end);
		return *end || end == v || !(cfg->metrics_interval >= 0)
			       ? bad(err, "--metrics-interval", v, "seconds >= 0")
			       : 0;
	case OPT_PROGRESS:
		cfg->progress = 1;
		return 0;
	case OPT_NO_PROGRESS:
		cfg->progress = 0;
		return 0;
	case 'q':
		cfg->quiet = 1;
		return 0;
	}
	return 1;
}

/* The --urls options. Returns 1 if opt is not one of them. */
static int parse_urls(int opt, const char *v, struct config *cfg, struct vherr *err)
{
	char *end;
	long n;

	switch (opt) {
	case OPT_URLS:
		cfg->urls = v;
		return 0;
	case OPT_URL_COLUMN:
		cfg->url_column = v;
		return 0;
	case OPT_KEY_COLUMN:
		cfg->key_column = v;
		return 0;
	case OPT_PER_HOST:
		return parse_count("--per-host", v, 1024, &cfg->per_host, err);
	case OPT_HTTP_TIMEOUT:
		cfg->http_timeout = strtod(v, &end);
		return *end || end == v || !(cfg->http_timeout > 0 && cfg->http_timeout <= 3600)
			       ? bad(err, "--http-timeout", v, "seconds in (0, 3600]")
			       : 0;
	case OPT_RETRIES:
		if (config_parse_long(v, 0, 100, &n))
			return bad(err, "--retries", v, "0-100");
		cfg->retries = (int)n;
		return 0;
	case OPT_KEEP_QUERY:
		cfg->keep_query = 1;
		return 0;
	case OPT_INSECURE:
		cfg->insecure = 1;
		return 0;
	case OPT_CACERT:
		cfg->cacert = v;
		return 0;
	case OPT_NETRC_FILE:
		cfg->netrc_file = v;
		return 0;
	case OPT_ALLOW_METADATA_IP:
		cfg->allow_metadata_ip = 1;
		return 0;
	}
	return 1;
}

int options_parse_shared(const char *name, const char *v, struct config *cfg,
			 struct vherr *err)
{
	static const int shared[] = {OPT_IO_DEPTH,    OPT_WALKERS,     OPT_NFS_CONNECTIONS,
				     OPT_NFS_TIMEOUT, OPT_READ_BUDGET, OPT_URLS,
				     OPT_PER_HOST,    OPT_CACERT};
	const struct option *o = long_options;
	int rc;

	while (o->name && strcmp(o->name, name) != 0)
		o++;
	for (size_t i = 0; o->name && i < sizeof(shared) / sizeof(shared[0]); i++) {
		if (o->val != shared[i])
			continue;
		rc = parse_run(o->val, v, cfg, err);
		return rc == 1 ? parse_urls(o->val, v, cfg, err) : rc;
	}
	return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE, "unknown option '--%s'", name);
}

int options_parse(int argc, char **argv, struct config *cfg, FILE *out, struct vherr *err)
{
	int opt, rc;

	optind = 0; /* full reinitialisation: options_parse may run more than once */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "o:j:qhV", long_options, NULL)) != -1) {
		if (opt == 'h') {
			options_usage(out);
			return OPTIONS_EXIT;
		}
		if (opt == 'V') {
			fprintf(out, "vhprep %s\n", VHPREP_VERSION);
			return OPTIONS_EXIT;
		}
		if ((opt == '?' || opt == ':') && optopt > 0 && optopt < 128)
			return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
					 "unknown option or missing value: '-%c' (try --help)",
					 optopt);
		if (opt == '?' || opt == ':')
			return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
					 "unknown option or missing value: '%s' (try --help)",
					 argv[optind - 1]);
		rc = parse_transform(opt, optarg, cfg, err);
		if (rc == 1)
			rc = parse_select(opt, optarg, cfg, err);
		if (rc == 1)
			rc = parse_output(opt, optarg, cfg, err);
		if (rc == 1)
			rc = parse_preview(opt, optarg, cfg, err);
		if (rc == 1)
			rc = parse_run(opt, optarg, cfg, err);
		if (rc == 1)
			rc = parse_urls(opt, optarg, cfg, err);
		if (rc != 0)
			return rc < 0 ? rc : vherr_set(err, VHERR_INTERNAL, VHSTAGE_NONE,
						       "unhandled option");
	}
	if (optind < argc)
		cfg->source = argv[optind++];
	if (optind < argc)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE,
				 "one SOURCE only: unexpected '%s'", argv[optind]);
	return OPTIONS_RUN;
}
