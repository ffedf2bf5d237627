/* preview: the run's preview sheet, vhprep-preview.jpg in the outputs root: N sampled
 * outputs (--preview N, default 24; 0: no sheet), each its source beside its output
 * with the relative path and both sizes under them, and the failed inputs in a strip
 * at the bottom, so a user sees in one glance whether crops, rotations and colours are
 * what they meant (Valohai shows image outputs in its UI).
 *
 * The samples are the N selected files of smallest path hash (select_hash with a seed
 * of the preview's own, so --sample and --shard do not skew it): a pure function of
 * the set of files, whatever the order or the thread count, spread over the whole
 * tree; a sample that failed is in the strip, not the grid. The walk counts every
 * selected file (preview_seen, lock-free unless it is among the N smallest so far);
 * a worker that has just made an output offers it with its input bytes
 * (preview_offer), and only a file among the N smallest hashes seen so far is
 * thumbnailed (kernels/contact.h, on the worker, outside any lock), then inserted
 * under a short lock, evicting the largest hash. Memory holds at most N samples of two
 * thumbnails (<= 2 x 48 KiB each) and PREVIEW_FAILURES failure lines, never an image.
 * As the walk runs ~200 files ahead of the workers, about N * ln((M + 200) / 200)
 * files of M are thumbnailed: 55 of 2,000 (130 if only processed files were counted).
 * A source that jpeg-fast takes is not decoded again for its thumbnail: the pipeline
 * asks the kernel for one (preview_thumb_box, kernel_want_thumb) made from the planes
 * it decodes anyway; other sources, and every output, are decoded by contact_thumb_make
 * (bench/preview-cost.sh has the cost on 2,000 photos).
 *
 * The sheet is written once, by preview_finish, at the end of the run, including the
 * end of a run stopped by SIGINT/SIGTERM (what was processed until then). It is an
 * output of the execution, not part of the dataset: its valohai.metadata.jsonl line
 * (binding only, no provenance) is written only with --preview-in-dataset. */
#ifndef VHPREP_ENGINE_PREVIEW_H
#define VHPREP_ENGINE_PREVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "common/vherr.h"
#include "engine/config.h"
#include "engine/stats.h"
#include "io/dirsink.h"
#include "io/metadata.h"
#include "kernels/kernel.h"

#define PREVIEW_FILE	"vhprep-preview.jpg"
#define PREVIEW_DEFAULT 24
#define PREVIEW_MAX	100
/* Failures listed on the sheet (those of smallest path hash); the strip's last line
 * counts the rest. */
#define PREVIEW_FAILURES 10

struct preview;

/* Returns the preview of a run configured by cfg (borrowed, must outlive it), or NULL
 * when cfg->preview is 0 or memory runs out (then the run has no sheet). */
struct preview *preview_new(const struct config *cfg);
/* Frees pv; pv may be NULL. */
void preview_free(struct preview *pv);

/* Counts a selected file (call where the walk's entry is taken, before it is read):
 * the sample set is then the N smallest hashes of every selected file, and only those
 * among the N smallest seen so far are thumbnailed when processed. The walk runs
 * ahead of the workers by the read queues (about 200 files at the defaults), so far
 * fewer files are thumbnailed than with the processed files alone (57 against 130
 * for 2,000 files). Without this call the set is the N smallest processed files.
 * A no-op when --min-size or --max-size is given (a file seen may be dropped by size
 * after its read). Any thread; pv may be NULL. */
void preview_seen(struct preview *pv, const char *relpath);
/* Offers one finished output: relpath (the source's relative path), the input bytes
 * in[0..in_len) and the kernel's result, all borrowed for the call. Thumbnails them
 * only when relpath's hash makes the cut. Call from any worker thread, before the
 * input is freed; pv may be NULL (no-op). A thumbnail that cannot be made leaves its
 * half of the cell blank. */
void preview_offer(struct preview *pv, const char *relpath, const uint8_t *in, size_t in_len,
		   const struct kernel_result *res);
/* Returns the thumbnail box to ask the kernel for (kernel_want_thumb) before running
 * it on relpath: CONTACT_BOX when relpath's hash makes the cut now (preview_offer will
 * then most likely keep it), else 0. Reads the cuts only (lock-free); pv may be NULL
 * (0). Any thread. */
int preview_thumb_box(struct preview *pv, const char *relpath);
/* Records a failed input (relpath may be NULL: the source itself): it leaves the
 * samples if it was one (an output that could not be written), and is listed in the
 * strip if its hash is among the PREVIEW_FAILURES smallest. Any thread; pv may be NULL. */
void preview_fail(struct preview *pv, const char *relpath, const struct vherr *err);

/* Returns the hash that orders relpath among the samples (smallest first). Pure. */
uint64_t preview_hash(const char *relpath);
/* Copies into paths[0..max) the relative paths of the samples the sheet would show now
 * (sorted; borrowed until the next call on pv) and returns how many there are. For
 * tests; call when no worker offers. */
int preview_samples(struct preview *pv, const char **paths, int max);
/* Returns how many files have been thumbnailed so far. Thread-safe. */
uint64_t preview_thumbnailed(struct preview *pv);

/* Renders the sheet and writes it as PREVIEW_FILE through sink (replacing an earlier
 * run's sheet), with the run's counts from stats and, when signal is SIGINT or SIGTERM,
 * a note that the run was stopped. A sheet that cannot be made or written is a warning
 * on stderr (unless --quiet), never a failure of the run. Returns 1 when the sheet was
 * written, else 0. Call once, after every worker has stopped; pv may be NULL (0). */
int preview_finish(struct preview *pv, struct dirsink *sink, struct stats *stats, int signal);

#endif
