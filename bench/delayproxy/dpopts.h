/* dpopts.h: command line of bench/delayproxy. */
#ifndef VHPREP_DPOPTS_H
#define VHPREP_DPOPTS_H

#include <netinet/in.h>
#include <stdint.h>

#define DPOPTS_MAX_FORWARDS 16

struct dpforward {
	struct sockaddr_in listen; /* default 127.0.0.1 */
	struct sockaddr_in to;
};

struct dpopts {
	struct dpforward fwd[DPOPTS_MAX_FORWARDS];
	int nfwd;
	double delay_ms, jitter_ms, rate_mbit;
	long burst_kb;      /* 0 = default: 64 KiB */
	uint64_t seed;
	const char *stats_file; /* NULL = stderr only */
	int allow_remote;
};

/* Parse argv into *o and validate it. Returns 0 to run, 1 when --help was printed (exit 0),
 * or -1 after printing an error to stderr (exit 2). */
int dpopts_parse(struct dpopts *o, int argc, char **argv);

#endif
