/* vhstatus: the Valohai execution's "status detail", the one line the Valohai UI shows
 * beside a running execution. When $VH_CONFIG_DIR/api.json (default
 * /valohai/config/api.json) names a set_status_detail endpoint, a thread of its own
 * POSTs {"status_detail": "<one-line progress>"} about every VHSTATUS_INTERVAL_S seconds,
 * and vhstatus_stop posts a last line. Short timeouts (VHSTATUS_TIMEOUT_MS); a failing or
 * absent endpoint never affects the run: the first failure prints one warning, later
 * ones nothing.
 *
 * The file's shape, as valohai-utils reads it (valohai/internals/api_calls.py,
 * get_api_requests_kwargs and send_api_request; valohai/e2c.py set_status_detail):
 *     {"set_status_detail": {"url": "https://...", "method": "POST",
 *                            "headers": {"Authorization": "..."}}, ...}
 * i.e. each endpoint is the keyword arguments of a requests.request() call: "url"
 * (required), "method", "headers"; valohai-utils adds json={"status_detail": text}.
 * Only url, method and string-valued headers are used here; only http(s) is posted to.
 *
 * VHPREP_STATUS_INTERVAL (seconds, > 0) replaces the interval (tests). Threads: start and
 * stop from one thread (the run's); the poster reads the stats with atomics. */
#ifndef VHPREP_ENGINE_VHSTATUS_H
#define VHPREP_ENGINE_VHSTATUS_H

#include "engine/stats.h"

#define VHSTATUS_INTERVAL_S 10.0
#define VHSTATUS_TIMEOUT_MS 3000 /* one POST, connecting included */
#define VHSTATUS_TEXT_MAX   240

struct vhstatus;

/* Starts posting when api.json names the endpoint; returns NULL (nothing to do) when it
 * does not, cannot be read, or memory runs out (the run goes on either way). stats is
 * borrowed and must outlive the result. quiet: no warning. */
struct vhstatus *vhstatus_start(struct stats *stats, int quiet);
/* Stops the thread, posts the last line ("done: ..." with exit_code), frees v. v may be
 * NULL. */
void vhstatus_stop(struct vhstatus *v, int exit_code);

/* Formats the progress line of stats into buf (at most VHSTATUS_TEXT_MAX bytes). final
 * says the run is over; exit_code is used only then. */
void vhstatus_format(struct stats *stats, int final, int exit_code, char *buf, size_t size);

#endif
