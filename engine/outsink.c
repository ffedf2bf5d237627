#include "engine/outsink.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/htab.h"
#include "engine/claims.h"

int outsink_pack_name(const char *prefix, char *buf, size_t size)
{
	size_t n = strlen(prefix);

	if (n == 0 || prefix[0] == '.')
		prefix = "shard", n = 5;
	if (n >= size)
		return -1;
	for (size_t i = 0; i <= n; i++)
		buf[i] = prefix[i] == '/' ? '_' : prefix[i];
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int outsink_key_decode(const char *key, char *buf, size_t size)
{
	size_t n = 0;

	for (const char *k = key; *k; k++) {
		int c = (unsigned char)*k;

		if (c == '%') {
			int hi = hexval(k[1]), lo = hi < 0 ? -1 : hexval(k[2]);

			if (lo < 0)
				return -1;
			c = hi * 16 + lo;
			k += 2;
		}
		if (c == 0 || n + 1 >= size)
			return -1;
		buf[n++] = (char)c;
	}
	if (n >= size)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* What the resume scan gathers: the files the records bind, the shard being read. */
struct gather {
	const struct outsink_env *e;
	int dirfd;
	struct htab *bound; /* hash of a "file" of valohai.metadata.jsonl -> 1 */
	struct outsink_report rep;
	struct vherr *err;
	char shard[NAME_MAX + 1]; /* the shard whose keys are being read ("": none yet) */
	uint64_t members;
	char *first, *last;
};

static int note_bound(void *ctx, const struct metadata_line *l)
{
	struct gather *g = ctx;
	uint64_t h;
	struct htab_stripe *s;
	void *v;

	if (!l->file)
		return 0;
	h = claims_hash(l->file);
	s = htab_lock(g->bound, h);
	v = htab_insert(s, h, NULL);
	htab_unlock(s);
	return v ? 0 : -VHERR_NOMEM;
}

static int is_bound(struct gather *g, const char *file)
{
	uint64_t h = claims_hash(file);
	struct htab_stripe *s = htab_lock(g->bound, h);
	int found = htab_find(s, h) != NULL;

	htab_unlock(s);
	return found;
}

/* The SEQ of a shard name NAME-MEMBER-SEQ.tar[.zst]. */
static uint64_t seq_of(const char *shard)
{
	const char *dash = strrchr(shard, '-');

	return dash ? strtoull(dash + 1, NULL, 10) : 0;
}

/* Appends the lines a published shard lacks (a run killed between its rename and its
 * lines). */
static int restore_lines(struct gather *g)
{
	const struct config *cfg = g->e->cfg;
	char index[NAME_MAX + sizeof(PACK_INDEX_SUFFIX)];
	struct pack_shard sh = {.name = g->shard, .index = index};
	struct stat st;
	int rc = 0;

	snprintf(index, sizeof(index), "%s%s", g->shard, PACK_INDEX_SUFFIX);
	sh.seq = seq_of(g->shard);
	sh.members = g->members;
	sh.bytes = fstatat(g->dirfd, g->shard, &st, 0) == 0 ? (uint64_t)st.st_size : 0;
	sh.first_key = g->first;
	sh.last_key = g->last;
	for (int of_index = 0; rc == 0 && of_index < 2; of_index++) {
		char *line;

		if (is_bound(g, of_index ? index : g->shard))
			continue;
		line = sink_pack_line(g->e->binding, cfg->pack_format, &sh, of_index);
		if (!line)
			return vherr_set(g->err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
		rc = metadata_append_line(g->e->metadata, line, strlen(line), NULL, g->err);
		free(line);
		g->rep.lines_restored += rc == 0;
	}
	return rc;
}

/* Ends the shard being read: its lines restored if missing. */
static int end_shard(struct gather *g)
{
	int rc = 0;

	if (g->shard[0] && g->members)
		rc = restore_lines(g);
	g->shard[0] = '\0';
	g->members = 0;
	VH_FREE(g->first);
	VH_FREE(g->last);
	return rc;
}

/* pack_scan callback: one key of a published shard. */
static int on_key(void *ctx, const char *key, const char *shard)
{
	struct gather *g = ctx;
	char relout[PATH_MAX];
	int rc;

	if (strcmp(shard, g->shard) != 0) {
		if ((rc = end_shard(g)) < 0)
			return rc;
		snprintf(g->shard, sizeof(g->shard), "%s", shard);
		g->rep.shards++;
	}
	if (!g->first && !(g->first = strdup(key)))
		return vherr_set(g->err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	free(g->last);
	if (!(g->last = strdup(key)))
		return vherr_set(g->err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	g->members++;
	g->rep.keys++;
	if (outsink_key_decode(key, relout, sizeof(relout)) < 0)
		return vherr_set(g->err, VHERR_IO, VHSTAGE_RECORD,
				 "damaged index of '%s': key '%s' does not decode", shard, key);
	if (g->e->resume && resume_add_packed(g->e->resume, relout) < 0)
		return vherr_set(g->err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	return 0;
}

/* Reads what earlier runs published (see outsink.h). */
static int gather_earlier(const struct outsink_env *e, const char *name,
			  struct outsink_report *rep, struct vherr *err)
{
	struct gather g = {.e = e, .dirfd = dirsink_dirfd(e->ds), .err = err};
	int rc;

	g.bound = htab_new(1);
	if (!g.bound)
		return vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	rc = metadata_scan(g.dirfd, METADATA_FILE, note_bound, &g, err);
	if (rc == -VHERR_NOMEM)
		rc = vherr_set(err, VHERR_NOMEM, VHSTAGE_RECORD, NULL);
	if (rc == 0)
		rc = pack_scan(e->cfg->outputs, name, NULL, on_key, &g, NULL, err);
	if (rc == 0)
		rc = end_shard(&g);
	free(g.first);
	free(g.last);
	htab_free(g.bound);
	*rep = g.rep;
	return rc;
}

/* Removes the temporary sidecars (sink_write_sidecar) a dead run left in the outputs
 * root; we hold the outputs lock, so none is a live run's. */
static void remove_root_temps(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (strncmp(de->d_name, DIRSINK_TMP_MARK, strlen(DIRSINK_TMP_MARK)) == 0)
			unlinkat(dirfd, de->d_name, 0);
	closedir(d);
}

static int open_pack(const struct outsink_env *e, struct sink **out, struct outsink_report *rep,
		     struct vherr *err)
{
	const struct config *cfg = e->cfg;
	char name[NAME_MAX], member[32];
	struct sink_pack_opts o = {
	    .outputs = cfg->outputs,
	    .metadata = e->metadata,
	    .ds = e->ds,
	    .binding = e->binding,
	    .on_shard = e->on_shard,
	    .ctx = e->ctx,
	};
	int rc;

	if (outsink_pack_name(cfg->prefix, name, sizeof(name)) < 0)
		return vherr_set(err, VHERR_USAGE, VHSTAGE_NONE, "--prefix '%s' is too long",
				 cfg->prefix);
	snprintf(member, sizeof(member), "%uof%u", cfg->shard_index, cfg->shard_count);
	remove_root_temps(dirsink_dirfd(e->ds));
	rc = gather_earlier(e, name, rep, err);
	if (rc < 0)
		return rc;
	o.pack = (struct pack_options){
	    .format = cfg->pack_format,
	    .name = name,
	    .member = member,
	    .shard_size = cfg->shard_size,
	    .zstd_level = cfg->zstd_level,
	    .live_upload = cfg->live_upload,
	};
	return sink_pack_open(&o, out, err);
}

int outsink_open(const struct outsink_env *e, struct sink **out, struct outsink_report *rep,
		 struct vherr *err)
{
	struct outsink_report ignored;

	if (!rep)
		rep = &ignored;
	memset(rep, 0, sizeof(*rep));
	if (e->cfg->pack)
		return open_pack(e, out, rep, err);
	return sink_dir_open(e->ds, e->metadata, e->cfg->live_upload, out, err);
}
