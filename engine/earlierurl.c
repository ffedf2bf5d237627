#include "engine/earlierurl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/htab.h"
#include "common/vherr.h"

/* One earlier URL input. */
struct url_record {
	uint64_t url;	  /* hash of the recorded (redacted) URL */
	char *validators; /* NULL, or malloc'd "ETAG\0LAST-MODIFIED\0" */
};

struct earlierurl {
	struct htab *tab; /* set at creation: key -> struct url_record */
};

struct earlierurl *earlierurl_new(void)
{
	struct earlierurl *t = calloc(1, sizeof(*t));

	if (t && !(t->tab = htab_new(sizeof(struct url_record)))) {
		free(t);
		t = NULL;
	}
	return t;
}

static uint64_t url_hash(const char *url)
{
	return XXH3_64bits(url, strlen(url));
}

/* "ETAG\0LAST-MODIFIED\0" of meta (caller frees), NULL when it has neither, or *nomem. */
static char *validators_of(json_t *meta, int *nomem)
{
	const char *etag = json_string_value(json_object_get(meta, "etag"));
	const char *lm = json_string_value(json_object_get(meta, "last_modified"));
	size_t ne, nl;
	char *v;

	etag = etag ? etag : "";
	lm = lm ? lm : "";
	/* validators too long to send back as they came cannot be asked with */
	if (strlen(etag) >= sizeof(((struct source_validators *)0)->etag))
		etag = "";
	if (strlen(lm) >= sizeof(((struct source_validators *)0)->last_modified))
		lm = "";
	if (!*etag && !*lm)
		return NULL;
	ne = strlen(etag) + 1;
	nl = strlen(lm) + 1;
	v = malloc(ne + nl);
	if (!v) {
		*nomem = 1;
		return NULL;
	}
	memcpy(v, etag, ne);
	memcpy(v + ne, lm, nl);
	return v;
}

int earlierurl_add(struct earlierurl *t, uint64_t key, json_t *meta)
{
	const char *url = json_string_value(json_object_get(meta, "url"));
	struct htab_stripe *s;
	struct url_record *r;
	int nomem = 0;
	char *v;

	if (!url)
		return 0;
	v = validators_of(meta, &nomem);
	if (nomem)
		return -VHERR_NOMEM;
	s = htab_lock(t->tab, key);
	r = htab_insert(s, key, NULL);
	if (r) {
		free(r->validators);
		r->url = url_hash(url);
		r->validators = v;
	}
	htab_unlock(s);
	if (!r) {
		free(v);
		return -VHERR_NOMEM;
	}
	return 1;
}

enum earlierurl_verdict earlierurl_check(struct earlierurl *t, uint64_t key, const char *url,
					 struct source_validators *v)
{
	struct htab_stripe *s = htab_lock(t->tab, key);
	struct url_record *r = htab_find(s, key);
	enum earlierurl_verdict verdict = EARLIERURL_NONE;

	if (r && r->url != url_hash(url))
		verdict = EARLIERURL_OTHER;
	else if (r && !r->validators)
		verdict = EARLIERURL_SAME;
	else if (r) {
		verdict = EARLIERURL_ASK;
		if (v) {
			const char *etag = r->validators;

			snprintf(v->etag, sizeof(v->etag), "%s", etag);
			snprintf(v->last_modified, sizeof(v->last_modified), "%s",
				 etag + strlen(etag) + 1);
		}
	}
	htab_unlock(s);
	return verdict;
}

uint64_t earlierurl_count(struct earlierurl *t)
{
	return htab_count(t->tab);
}

static int free_one(void *ctx, uint64_t key, void *value)
{
	struct url_record *r = value;

	(void)ctx;
	(void)key;
	free(r->validators);
	r->validators = NULL;
	return 0;
}

void earlierurl_free(struct earlierurl *t)
{
	if (!t)
		return;
	htab_foreach(t->tab, free_one, NULL);
	htab_free(t->tab);
	free(t);
}
