#include "engine/claims.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/htab.h"

/* One name's record: 16 bytes, 24 with its key. */
struct claim {
	uint64_t owner;			/* hash of the owner's location */
	char suffix[CLAIMS_SUFFIX_MAX]; /* not NUL-terminated when full */
	uint8_t state;			/* enum claim_state */
};

struct claims {
	struct htab *tab; /* set at creation */
};

struct claims *claims_new(void)
{
	struct claims *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->tab = htab_new(sizeof(struct claim));
	if (!c->tab) {
		free(c);
		return NULL;
	}
	return c;
}

void claims_free(struct claims *c)
{
	if (!c)
		return;
	htab_free(c->tab);
	free(c);
}

uint64_t claims_hash(const char *s)
{
	return XXH3_64bits(s, strlen(s));
}

const char *claims_suffix(const char *relpath)
{
	const char *base = strrchr(relpath, '/');
	const char *dot;

	base = base ? base + 1 : relpath;
	dot = strrchr(base, '.');
	return dot && dot != base ? dot : relpath + strlen(relpath);
}

static void set_suffix(struct claim *cl, const char *suffix)
{
	size_t n = strnlen(suffix, CLAIMS_SUFFIX_MAX);

	memset(cl->suffix, 0, CLAIMS_SUFFIX_MAX);
	memcpy(cl->suffix, suffix, n);
}

static void get_suffix(const struct claim *cl, char out[CLAIMS_SUFFIX_MAX + 1])
{
	memcpy(out, cl->suffix, CLAIMS_SUFFIX_MAX);
	out[CLAIMS_SUFFIX_MAX] = '\0';
}

/* Whether the input (owner, suffix) sorts before the claim's owner. */
static int sorts_first(const struct claim *cl, uint64_t owner, const char *suffix)
{
	char mine[CLAIMS_SUFFIX_MAX + 1] = {0};
	int cmp;

	memcpy(mine, suffix, strnlen(suffix, CLAIMS_SUFFIX_MAX));
	cmp = strncmp(mine, cl->suffix, CLAIMS_SUFFIX_MAX);
	return cmp ? cmp < 0 : owner < cl->owner;
}

static int add(struct claims *c, const char *name, uint64_t owner, const char *suffix,
	       enum claim_state state)
{
	uint64_t key = claims_hash(name);
	struct htab_stripe *s = htab_lock(c->tab, key);
	struct claim *cl = htab_insert(s, key, NULL);

	if (cl) {
		cl->owner = owner;
		set_suffix(cl, suffix);
		cl->state = (uint8_t)state;
	}
	htab_unlock(s);
	return cl ? 0 : -1;
}

int claims_add_earlier(struct claims *c, const char *name, const char *owner,
		       const char *suffix)
{
	return add(c, name, claims_hash(owner), suffix, CLAIM_EARLIER);
}

int claims_add_foreign(struct claims *c, const char *name)
{
	return add(c, name, 0, "", CLAIM_FOREIGN);
}

int claims_confirm(struct claims *c, uint64_t name, uint64_t owner)
{
	struct htab_stripe *s = htab_lock(c->tab, name);
	struct claim *cl = htab_find(s, name);
	int mine = cl && cl->owner == owner &&
		   (cl->state == CLAIM_EARLIER || cl->state == CLAIM_PUBLISHED);

	if (mine)
		cl->state = CLAIM_PUBLISHED;
	htab_unlock(s);
	return mine;
}

/* The verdict for an input on a name held by cl. */
static enum claim_verdict judge(const struct claim *cl, uint64_t owner, const char *suffix,
				struct claim_ticket *t)
{
	switch ((enum claim_state)cl->state) {
	case CLAIM_FREE:
		return CLAIM_TAKE;
	case CLAIM_FOREIGN:
		return CLAIM_LOSE;
	case CLAIM_EARLIER:
	case CLAIM_PUBLISHED:
	default:
		if (cl->owner == owner) {
			t->other_is_self = 1;
			return CLAIM_REPLACE;
		}
		return sorts_first(cl, owner, suffix) ? CLAIM_REPLACE : CLAIM_LOSE;
	}
}

int claims_begin(struct claims *c, const char *name, const char *relpath, const char *suffix,
		 struct claim_ticket *t)
{
	uint64_t owner = claims_hash(relpath);
	struct htab_stripe *s;
	struct claim *cl;
	int added;

	memset(t, 0, sizeof(*t));
	t->name = claims_hash(name);
	s = htab_lock(c->tab, t->name);
	cl = htab_insert(s, t->name, &added);
	if (!cl) {
		htab_unlock(s);
		return -1;
	}
	t->stripe = s;
	t->prev_state = (enum claim_state)cl->state;
	get_suffix(cl, t->other_suffix);
	t->verdict = judge(cl, owner, suffix, t);
	return 0;
}

void claims_end(struct claims *c, struct claim_ticket *t, const char *relpath,
		const char *suffix, int published, int removed)
{
	struct htab_stripe *s = t->stripe;
	struct claim *cl = htab_find(s, t->name);

	(void)c;
	if (cl && published) {
		cl->owner = claims_hash(relpath);
		set_suffix(cl, suffix);
		cl->state = CLAIM_PUBLISHED;
	} else if (cl && removed) {
		cl->state = CLAIM_FREE;
	}
	htab_unlock(s);
}

enum claim_state claims_state(struct claims *c, uint64_t name)
{
	struct htab_stripe *s = htab_lock(c->tab, name);
	struct claim *cl = htab_find(s, name);
	enum claim_state st = cl ? (enum claim_state)cl->state : CLAIM_FREE;

	htab_unlock(s);
	return st;
}

struct unseen_ctx {
	void (*fn)(void *ctx, uint64_t name);
	void *ctx;
};

static int visit_unseen(void *ctx, uint64_t key, void *value)
{
	struct unseen_ctx *u = ctx;
	const struct claim *cl = value;

	if (cl->state == CLAIM_EARLIER)
		u->fn(u->ctx, key);
	return 0;
}

void claims_each_unseen(struct claims *c, void (*fn)(void *ctx, uint64_t name), void *ctx)
{
	struct unseen_ctx u = {fn, ctx};

	htab_foreach(c->tab, visit_unseen, &u);
}
