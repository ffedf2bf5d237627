#include "engine/preview.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "engine/select.h"
#include "io/report.h"
#include "kernels/contact.h"

#define PREVIEW_SEED 0x50524556494557ULL /* "PREVIEW" */
#define OPS_MAX	     8
#define TEXT_MAX     1024

/* One sampled output: its two thumbnails and what its caption says. */
struct sample {
	uint64_t hash;
	char *relpath;
	struct contact_thumb src, out;
	uint64_t src_bytes, out_bytes;
	int src_w, src_h, out_w, out_h;
};

/* One failed input as the strip shows it. */
struct failure {
	uint64_t hash;
	char *relpath;
	char *line;
};

struct preview {
	const struct config *cfg; /* set at creation */
	int max;		  /* set at creation: cfg->preview */
	int seen_at_select;	  /* set at creation: preview_seen counts (no size bounds) */
	/* the largest hash of a full set of samples, and of the seen hashes (UINT64_MAX
	 * while a set is not full): the lock-free tests made for every file; written
	 * under lock */
	atomic_uint_least64_t cut, seen_cut;
	pthread_mutex_t lock;
	uint64_t *seen;		  /* under lock: the max smallest hashes of the files seen */
	int nseen;		  /* under lock */
	struct sample **samples;  /* under lock: nsamples of max slots */
	int nsamples;		  /* under lock */
	struct failure *failures; /* under lock: nfailures of PREVIEW_FAILURES */
	int nfailures;		  /* under lock */
	atomic_int warmed;	  /* a worker has loaded the sheet's font (contact_warm_up) */
	atomic_ullong thumbed;	  /* files thumbnailed */
	atomic_ullong thumb_ns;	  /* the workers' CPU time making thumbnails */
};

/* The calling thread's CPU time, ns. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sample_free(struct sample *s)
{
	if (!s)
		return;
	contact_thumb_release(&s->src);
	contact_thumb_release(&s->out);
	free(s->relpath);
	free(s);
}

struct preview *preview_new(const struct config *cfg)
{
	struct preview *pv;

	if (cfg->preview <= 0)
		return NULL;
	pv = calloc(1, sizeof(*pv));
	if (!pv)
		return NULL;
	pv->cfg = cfg;
	pv->max = cfg->preview;
	pv->seen_at_select = cfg->min_size == 0 && cfg->max_size == UINT64_MAX;
	pv->samples = calloc((size_t)pv->max, sizeof(*pv->samples));
	pv->seen = calloc((size_t)pv->max, sizeof(*pv->seen));
	pv->failures = calloc(PREVIEW_FAILURES, sizeof(*pv->failures));
	if (!pv->samples || !pv->seen || !pv->failures) {
		free(pv->samples);
		free(pv->seen);
		free(pv->failures);
		free(pv);
		return NULL;
	}
	atomic_init(&pv->cut, UINT64_MAX);
	atomic_init(&pv->seen_cut, UINT64_MAX);
	pthread_mutex_init(&pv->lock, NULL);
	return pv;
}

void preview_free(struct preview *pv)
{
	if (!pv)
		return;
	for (int i = 0; i < pv->nsamples; i++)
		sample_free(pv->samples[i]);
	for (int i = 0; i < pv->nfailures; i++) {
		free(pv->failures[i].relpath);
		free(pv->failures[i].line);
	}
	free(pv->samples);
	free(pv->seen);
	free(pv->failures);
	pthread_mutex_destroy(&pv->lock);
	free(pv);
}

/* ---- the sample set (under lock) ------------------------------------------ */

/* The index of the largest hash in the set, or -1 when it is empty. */
static int largest(const struct preview *pv)
{
	int at = -1;

	for (int i = 0; i < pv->nsamples; i++)
		if (at < 0 || pv->samples[i]->hash > pv->samples[at]->hash)
			at = i;
	return at;
}

static void update_cut(struct preview *pv)
{
	atomic_store(&pv->cut,
		     pv->nsamples < pv->max ? UINT64_MAX : pv->samples[largest(pv)]->hash);
}

/* Puts s in the set; returns what the set no longer holds (s itself, or the evicted
 * sample, or NULL), for the caller to free outside the lock. */
static struct sample *insert(struct preview *pv, struct sample *s)
{
	struct sample *out = s;
	int at;

	for (int i = 0; i < pv->nsamples; i++)
		if (pv->samples[i]->hash == s->hash &&
		    !strcmp(pv->samples[i]->relpath, s->relpath)) {
			out = pv->samples[i]; /* the same file again: the newer one wins */
			pv->samples[i] = s;
			return out;
		}
	if (pv->nsamples < pv->max) {
		pv->samples[pv->nsamples++] = s;
		out = NULL;
	} else if ((at = largest(pv)) >= 0 && s->hash < pv->samples[at]->hash) {
		out = pv->samples[at];
		pv->samples[at] = s;
	}
	update_cut(pv);
	return out;
}

/* Takes relpath's sample out of the set; returns it (or NULL) for the caller to free. */
static struct sample *take_out(struct preview *pv, uint64_t hash, const char *relpath)
{
	for (int i = 0; i < pv->nsamples; i++) {
		struct sample *s = pv->samples[i];

		if (s->hash == hash && !strcmp(s->relpath, relpath)) {
			pv->samples[i] = pv->samples[--pv->nsamples];
			update_cut(pv);
			return s;
		}
	}
	return NULL;
}

/* Counts hash among the files seen: keeps the max smallest. Lock-free when it is not
 * among them (the common case). */
static void see(struct preview *pv, uint64_t hash)
{
	int at = 0;

	if (hash > atomic_load(&pv->seen_cut))
		return;
	pthread_mutex_lock(&pv->lock);
	for (int i = 0; i < pv->nseen; i++) {
		if (pv->seen[i] == hash)
			goto out; /* seen at select, now offered */
		if (pv->seen[i] > pv->seen[at])
			at = i;
	}
	if (pv->nseen < pv->max)
		pv->seen[pv->nseen++] = hash;
	else if (hash < pv->seen[at])
		pv->seen[at] = hash;
	if (pv->nseen == pv->max) {
		at = 0;
		for (int i = 1; i < pv->nseen; i++)
			at = pv->seen[i] > pv->seen[at] ? i : at;
		atomic_store(&pv->seen_cut, pv->seen[at]);
	}
out:
	pthread_mutex_unlock(&pv->lock);
}

uint64_t preview_hash(const char *relpath)
{
	return select_hash(relpath, PREVIEW_SEED);
}

uint64_t preview_thumbnailed(struct preview *pv)
{
	return pv ? atomic_load(&pv->thumbed) : 0;
}

/* Drops the samples that are not among the max smallest hashes of all the files seen
 * (taken before a smaller one was seen): what stays depends on the set of files only.
 * A run stopped early keeps what it has. */
static void keep_smallest_seen(struct preview *pv)
{
	uint64_t cut = atomic_load(&pv->seen_cut);

	for (int i = 0; i < pv->nsamples;) {
		if (pv->samples[i]->hash > cut) {
			sample_free(pv->samples[i]);
			pv->samples[i] = pv->samples[--pv->nsamples];
		} else {
			i++;
		}
	}
}

/* ---- offers and failures ----------------------------------------------------- */

void preview_seen(struct preview *pv, const char *relpath)
{
	if (pv && pv->seen_at_select)
		see(pv, preview_hash(relpath));
}

/* Copies the source thumbnail the kernel made from its decoded planes (a 128-pixel box,
 * as contact_thumb_make's) into t: 0, or -1 when there is none or no memory. */
static int take_kernel_thumb(const struct kernel_thumb *k, struct contact_thumb *t)
{
	size_t size = (size_t)k->w * k->h * k->bands;

	if (!k->px || k->w > CONTACT_BOX || k->h > CONTACT_BOX || !(t->px = malloc(size)))
		return -1;
	memcpy(t->px, k->px, size);
	t->w = k->w;
	t->h = k->h;
	t->bands = k->bands;
	return 0;
}

int preview_thumb_box(struct preview *pv, const char *relpath)
{
	uint64_t hash;

	if (!pv)
		return 0;
	hash = preview_hash(relpath);
	return hash <= atomic_load(&pv->seen_cut) && hash < atomic_load(&pv->cut) ? CONTACT_BOX
										  : 0;
}

/* A new sample of relpath with its thumbnails (made here, on the calling worker, or the
 * source's by the kernel from the planes it decoded). */
static struct sample *sample_new(const struct preview *pv, uint64_t hash, const char *relpath,
				 const uint8_t *in, size_t in_len,
				 const struct kernel_result *res)
{
	struct sample *s = calloc(1, sizeof(*s));
	struct vherr err;

	if (!s || !(s->relpath = strdup(relpath))) {
		free(s);
		return NULL;
	}
	s->hash = hash;
	s->src_bytes = in_len;
	s->src_w = res->in_w;
	s->src_h = res->in_h;
	s->out_bytes = res->len;
	s->out_w = res->out_w;
	s->out_h = res->out_h;
	/* a half that cannot be made stays blank: the caption still tells */
	if (take_kernel_thumb(&res->src_thumb, &s->src) < 0)
		contact_thumb_make(in, in_len, CONTACT_BOX, pv->cfg->kernel.autorotate, &s->src,
				   &err);
	contact_thumb_make(res->data, res->len, CONTACT_BOX, 1, &s->out, &err);
	return s;
}

void preview_offer(struct preview *pv, const char *relpath, const uint8_t *in, size_t in_len,
		   const struct kernel_result *res)
{
	uint64_t hash, t0;
	struct sample *s;

	if (!pv)
		return;
	hash = preview_hash(relpath);
	see(pv, hash);
	if (hash > atomic_load(&pv->seen_cut) || hash >= atomic_load(&pv->cut))
		return;
	t0 = thread_cpu_ns();
	if (!atomic_exchange(&pv->warmed, 1))
		contact_warm_up(); /* here, on one worker, not at the run's end */
	s = sample_new(pv, hash, relpath, in, in_len, res);
	atomic_fetch_add(&pv->thumb_ns, thread_cpu_ns() - t0 + res->src_thumb.cpu_ns);
	atomic_fetch_add(&pv->thumbed, 1);
	if (!s)
		return;
	pthread_mutex_lock(&pv->lock);
	s = insert(pv, s);
	pthread_mutex_unlock(&pv->lock);
	sample_free(s);
}

/* Keeps the failure in the strip's set (the PREVIEW_FAILURES smallest hashes); under
 * lock. Takes relpath and line (malloc'd) or frees them. */
static void keep_failure(struct preview *pv, uint64_t hash, char *relpath, char *line)
{
	int at = pv->nfailures;

	if (!relpath || !line) { /* no memory: the strip's count line still tells */
		free(relpath);
		free(line);
		return;
	}
	if (pv->nfailures == PREVIEW_FAILURES) {
		at = 0;
		for (int i = 1; i < pv->nfailures; i++)
			if (pv->failures[i].hash > pv->failures[at].hash)
				at = i;
		if (hash >= pv->failures[at].hash) {
			free(relpath);
			free(line);
			return;
		}
		free(pv->failures[at].relpath);
		free(pv->failures[at].line);
	} else {
		pv->nfailures++;
	}
	pv->failures[at] = (struct failure){.hash = hash, .relpath = relpath, .line = line};
}

void preview_fail(struct preview *pv, const char *relpath, const struct vherr *err)
{
	const char *name = relpath && *relpath ? relpath : ".";
	uint64_t hash;
	char line[TEXT_MAX];
	struct sample *gone;

	if (!pv)
		return;
	hash = preview_hash(name);
	snprintf(line, sizeof(line), "%s  %s: %s", name, vherr_reason(err->code),
		 *err->msg ? err->msg : vherr_message(err->code));
	pthread_mutex_lock(&pv->lock);
	gone = take_out(pv, hash, name);
	keep_failure(pv, hash, strdup(name), strdup(line));
	pthread_mutex_unlock(&pv->lock);
	sample_free(gone);
}

/* ---- the sheet -------------------------------------------------------------- */

static int by_relpath(const void *a, const void *b)
{
	return strcmp((*(struct sample *const *)a)->relpath,
		      (*(struct sample *const *)b)->relpath);
}

int preview_samples(struct preview *pv, const char **paths, int max)
{
	int n = 0;

	if (!pv)
		return 0;
	pthread_mutex_lock(&pv->lock);
	keep_smallest_seen(pv);
	qsort(pv->samples, (size_t)pv->nsamples, sizeof(*pv->samples), by_relpath);
	for (int i = 0; i < pv->nsamples && n < max; i++)
		paths[n++] = pv->samples[i]->relpath;
	pthread_mutex_unlock(&pv->lock);
	return n;
}

static int failure_by_relpath(const void *a, const void *b)
{
	return strcmp(((const struct failure *)a)->relpath,
		      ((const struct failure *)b)->relpath);
}

/* n bytes as "812 B", "69.2 kB", "3.4 MB" (powers of 1000, as file browsers show). */
static void human_bytes(uint64_t n, char *buf, size_t size)
{
	if (n < 1000)
		snprintf(buf, size, "%llu B", (unsigned long long)n);
	else if (n < 1000000)
		snprintf(buf, size, "%.1f kB", (double)n / 1e3);
	else
		snprintf(buf, size, "%.1f MB", (double)n / 1e6);
}

/* "relpath\n500x375 69.2 kB -> 224x224 12.1 kB" */
static void caption(const struct sample *s, char *buf, size_t size)
{
	char in[32], out[32];

	human_bytes(s->src_bytes, in, sizeof(in));
	human_bytes(s->out_bytes, out, sizeof(out));
	snprintf(buf, size, "%s\n%dx%d %s \xe2\x86\x92 %dx%d %s", s->relpath, s->src_w,
		 s->src_h, in, s->out_w, s->out_h, out);
}

/* The two lines over the grid: what was sampled, the failures and the stop; then the
 * operations every output went through. */
static void title(const struct preview *pv, struct stats *st, int signal, char *buf,
		  size_t size)
{
	char ops[OPS_MAX][KERNEL_OP_MAX];
	int nops = kernel_describe(&pv->cfg->kernel, ops, OPS_MAX);
	size_t n;

	n = (size_t)snprintf(
	    buf, size, "vhprep %s: %d of %llu outputs (smallest path hashes), %llu failed%s\n",
	    VHPREP_VERSION, pv->nsamples, (unsigned long long)atomic_load(&st->processed),
	    (unsigned long long)atomic_load(&st->failed),
	    signal == SIGTERM  ? ", stopped by SIGTERM"
	    : signal == SIGINT ? ", stopped by SIGINT"
			       : "");
	for (int i = 0; i < nops && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? " " : "", ops[i]);
}

/* The sheet as JPEG bytes (malloc'd); every sample and failure in path order. */
static int render(struct preview *pv, struct stats *st, int signal, uint8_t **jpg, size_t *len,
		  struct vherr *err)
{
	int n = pv->nsamples, nf = pv->nfailures, rc;
	uint64_t failed = atomic_load(&st->failed);
	struct contact_cell *cells = calloc((size_t)n + 1, sizeof(*cells));
	char(*captions)[TEXT_MAX] = calloc((size_t)n + 1, sizeof(*captions));
	const char **strip = calloc((size_t)nf + 1, sizeof(*strip));
	char head[TEXT_MAX], more[TEXT_MAX];
	struct contact_sheet sheet = {.title = head,
				      .cells = cells,
				      .ncells = n,
				      .strip = strip,
				      .nstrip = nf,
				      .quality = 85};

	if (!cells || !captions || !strip) {
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_NONE, NULL);
		goto out;
	}
	qsort(pv->samples, (size_t)n, sizeof(*pv->samples), by_relpath);
	qsort(pv->failures, (size_t)nf, sizeof(*pv->failures), failure_by_relpath);
	for (int i = 0; i < n; i++) {
		caption(pv->samples[i], captions[i], sizeof(captions[i]));
		cells[i] = (struct contact_cell){.left = &pv->samples[i]->src,
						 .right = &pv->samples[i]->out,
						 .caption = captions[i]};
	}
	for (int i = 0; i < nf; i++)
		strip[i] = pv->failures[i].line;
	if (failed > (uint64_t)nf) {
		snprintf(more, sizeof(more), "%s%llu %sfailed inputs: see %s", nf ? "and " : "",
			 (unsigned long long)(failed - (uint64_t)nf), nf ? "more " : "",
			 REPORT_ERRORS_FILE);
		strip[sheet.nstrip++] = more;
	}
	title(pv, st, signal, head, sizeof(head));
	rc = contact_sheet_jpeg(&sheet, jpg, len, err);
out:
	free(cells);
	free(captions);
	free(strip);
	return rc;
}

/* With VHPREP_PREVIEW_STATS set: one line on stderr with what the preview cost, for
 * bench/preview-cost.sh. */
static void print_cost(struct preview *pv, uint64_t sheet_ns)
{
	struct rusage ru;

	if (!getenv("VHPREP_PREVIEW_STATS") || getrusage(RUSAGE_SELF, &ru) != 0)
		return;
	fprintf(stderr,
		"vhprep: preview stats: samples=%d thumbnailed=%llu thumb_cpu_ms=%.1f "
		"sheet_ms=%.1f process_cpu_ms=%.1f\n",
		pv->nsamples, (unsigned long long)atomic_load(&pv->thumbed),
		(double)atomic_load(&pv->thumb_ns) / 1e6, (double)sheet_ns / 1e6,
		(double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
		    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3);
}

int preview_finish(struct preview *pv, struct dirsink *sink, struct stats *stats, int signal)
{
	uint8_t *jpg = NULL;
	size_t len = 0;
	struct vherr why = {0};
	uint64_t t0 = thread_cpu_ns();
	int rc;

	if (!pv)
		return 0;
	pthread_mutex_lock(&pv->lock);
	if (!signal && !atomic_load(&stats->cancelled) && atomic_load(&stats->walk_complete))
		keep_smallest_seen(pv);
	rc = render(pv, stats, signal, &jpg, &len, &why);
	pthread_mutex_unlock(&pv->lock);
	if (rc == 0)
		rc = dirsink_remove(sink, PREVIEW_FILE, &why);
	if (rc == 0)
		rc = dirsink_write(sink, PREVIEW_FILE, jpg, len, &why);
	free(jpg);
	print_cost(pv, thread_cpu_ns() - t0);
	if (rc < 0) {
		if (!pv->cfg->quiet)
			fprintf(stderr, "vhprep: warning: no %s: %s\n", PREVIEW_FILE, why.msg);
		return 0;
	}
	return 1;
}
