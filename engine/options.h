/* options: the command line → struct config (getopt_long), and --help / --version. */
#ifndef VHPREP_ENGINE_OPTIONS_H
#define VHPREP_ENGINE_OPTIONS_H

#include <stdio.h>

#include "engine/config.h"

enum options_result {
	OPTIONS_RUN,  /* cfg is filled: run it */
	OPTIONS_EXIT, /* --help or --version was printed: exit 0 */
};

/* Parses argv into cfg (which config_defaults filled). argv must outlive cfg. Prints
 * --help/--version to out. Returns OPTIONS_RUN or OPTIONS_EXIT, or -VHERR_USAGE with
 * err saying which option is wrong. Does not call config_finish. Not reentrant (getopt). */
int options_parse(int argc, char **argv, struct config *cfg, FILE *out, struct vherr *err);
/* Parses the value v of --name, one of the options a run and `vhprep bench` share
 * (io-depth, walkers, nfs-connections, nfs-timeout, read-budget, urls, per-host, cacert),
 * into cfg with the run's bounds. Returns 0, or -VHERR_USAGE with err saying why (an
 * option outside that list too). */
int options_parse_shared(const char *name, const char *v, struct config *cfg,
			 struct vherr *err);
/* Prints the --help text to out. */
void options_usage(FILE *out);

#endif
