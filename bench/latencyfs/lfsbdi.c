#include "bench/latencyfs/lfsbdi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Undoes mountinfo's octal escapes (\040 for a space...) in place. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* Returns 1 and sets *dev ("MAJ:MIN") if line is the mount of mountpoint. */
static int match_line(char *line, const char *mountpoint, char *dev, size_t devlen)
{
	char *save = NULL, *field[5];
	int i;

	for (i = 0; i < 5; i++) {
		field[i] = strtok_r(i ? NULL : line, " ", &save);
		if (!field[i])
			return 0;
	}
	unescape(field[4]);
	if (strcmp(field[4], mountpoint) != 0)
		return 0;
	snprintf(dev, devlen, "%s", field[2]);
	return 1;
}

int lfsbdi_find(const char *mountpoint, char *path, size_t len, char *err, size_t errlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char *line = NULL, dev[32] = "";
	size_t cap = 0;
	int rc = 0;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "cannot open '/proc/self/mountinfo': %s", strerror(-rc));
		return rc;
	}
	while (getline(&line, &cap, f) > 0)
		match_line(line, mountpoint, dev, sizeof(dev)); /* the last match wins */
	if (!dev[0]) {
		rc = -ENOENT;
		snprintf(err, errlen, "cannot find '%s' in /proc/self/mountinfo", mountpoint);
		goto out;
	}
	snprintf(path, len, "/sys/class/bdi/%s/read_ahead_kb", dev);
out:
	free(line);
	fclose(f);
	return rc;
}

int lfsbdi_set_readahead(const char *path, unsigned kb, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (!f) {
		rc = -errno;
		goto out;
	}
	if (fprintf(f, "%u\n", kb) < 0)
		rc = -EIO;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
out:
	if (rc < 0)
		snprintf(err, errlen, "cannot write '%s': %s", path, strerror(-rc));
	return rc;
}
