#include "engine/stats.h"

#include <limits.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "common/vhclock.h"
#include "io/jsonname.h"

double stats_now(void)
{
	return (double)vhclock_ns() / 1e9;
}

void stats_init(struct stats *s)
{
	memset(s, 0, sizeof(*s));
	s->start = stats_now();
	pthread_mutex_init(&s->examples_lock, NULL);
}

void stats_release(struct stats *s)
{
	for (int r = 0; r < VHERR__COUNT; r++)
		for (int i = 0; i < STATS_EXAMPLES; i++)
			VH_FREE(s->examples[r][i]);
	pthread_mutex_destroy(&s->examples_lock);
}

void stats_fail(struct stats *s, int code, const char *path)
{
	int r = code < 0 ? -code : code;

	if (r >= VHERR__COUNT)
		r = VHERR_INTERNAL;
	atomic_fetch_add_explicit(&s->failed, 1, memory_order_relaxed);
	if (atomic_fetch_add(&s->by_reason[r], 1) >= STATS_EXAMPLES)
		return;
	pthread_mutex_lock(&s->examples_lock);
	for (int i = 0; i < STATS_EXAMPLES; i++)
		if (!s->examples[r][i]) {
			s->examples[r][i] = strdup(path);
			break;
		}
	pthread_mutex_unlock(&s->examples_lock);
}

uint64_t stats_finished(struct stats *s)
{
	return atomic_load(&s->processed) + atomic_load(&s->failed) +
	       atomic_load(&s->skipped_size) + atomic_load(&s->cancelled) +
	       atomic_load(&s->over_limit) + atomic_load(&s->already_done) +
	       atomic_load(&s->unchanged);
}

double stats_elapsed(const struct stats *s)
{
	return stats_now() - s->start;
}

json_t *stats_files_json(struct stats *s)
{
	const struct {
		const char *name;
		atomic_ullong *v;
	} counters[] = {
	    {"found", &s->found},
	    {"selected", &s->submitted},
	    {"processed", &s->processed},
	    {"failed", &s->failed},
	    {"filtered", &s->filtered},
	    {"other_shard", &s->other_shard},
	    {"skipped_type", &s->skipped_type},
	    {"skipped_size", &s->skipped_size},
	    {"cancelled", &s->cancelled},
	    {"over_limit", &s->over_limit},
	    {"already_done", &s->already_done},
	    {"unchanged", &s->unchanged},
	    {"replaced", &s->replaced},
	};
	json_t *o = json_object(), *kinds = json_object();
	int bad = !o || !kinds;

	for (size_t i = 0; !bad && i < sizeof(counters) / sizeof(*counters); i++)
		bad = json_object_set_new(o, counters[i].name,
					  json_integer((json_int_t)atomic_load(counters[i].v))) != 0;
	for (int k = 1; !bad && k < SOURCE_KIND__COUNT; k++)
		bad = json_object_set_new(kinds, source_kind_name(k),
					  json_integer((json_int_t)atomic_load(
					      &s->skipped_kind[k]))) != 0;
	if (!bad && json_object_set_new(o, "skipped_kind", kinds) == 0)
		return o;
	if (bad)
		json_decref(kinds);
	json_decref(o);
	return NULL;
}

json_t *stats_failures_json(struct stats *s)
{
	json_t *all = json_object();

	pthread_mutex_lock(&s->examples_lock);
	for (int r = 0; all && r < VHERR__COUNT; r++) {
		uint64_t n = atomic_load(&s->by_reason[r]);
		json_t *ex;

		if (!n)
			continue;
		ex = json_array();
		for (int i = 0; ex && i < STATS_EXAMPLES && s->examples[r][i]; i++) {
			char esc[4 * PATH_MAX];

			if (jsonname_escape(s->examples[r][i], esc, sizeof(esc)) >= 0)
				json_array_append_new(ex, json_string(esc));
		}
		json_object_set_new(all, vherr_reason(r),
				    json_pack("{s:I, s:o}", "count", (json_int_t)n, "examples",
					      ex ? ex : json_array()));
	}
	pthread_mutex_unlock(&s->examples_lock);
	return all;
}

uint64_t stats_peak_rss(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (uint64_t)ru.ru_maxrss * 1024;
}

uint64_t stats_current_rss(void)
{
	FILE *f = fopen("/proc/self/statm", "re");
	unsigned long size = 0, resident = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}
