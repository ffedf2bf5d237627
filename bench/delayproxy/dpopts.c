/* dpopts.c: command line of bench/delayproxy. */
#include "bench/delayproxy/dpopts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
	"usage: delayproxy --listen [ADDR:]PORT --to ADDR:PORT [--listen ... --to ...]\n"
	"                  [--forward [LADDR:]LPORT:RHOST:RPORT]... [--delay-ms F]\n"
	"                  [--jitter-ms F] [--rate-mbit F] [--burst-kb N] [--seed S]\n"
	"                  [--stats-file PATH] [--allow-remote]\n"
	"\n"
	"User-space TCP delay proxy (IPv4). Each accepted connection is forwarded to its target;\n"
	"every chunk read from one side is released to the other after --delay-ms (one way)\n"
	"+ uniform(-jitter, +jitter), never reordered, and each direction is capped by a token\n"
	"bucket of --rate-mbit (0 = unlimited) with --burst-kb of burst (default 64).\n"
	"Several pairs per process (e.g. NFS nfsport and mountport). Listen address defaults to\n"
	"127.0.0.1; targets must be loopback unless --allow-remote. Hosts: dotted quad or\n"
	"localhost. SIGINT/SIGTERM: exit 0 and write the counters as one JSON object to\n"
	"--stats-file and stderr.\n";

static int parse_addr(const char *host, struct in_addr *a)
{
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	return inet_pton(AF_INET, host, a) == 1 ? 0 : -1;
}

static int parse_port(const char *s, in_port_t *port)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > 65535)
		return -1;
	*port = htons((uint16_t)v);
	return 0;
}

/* "[HOST:]PORT" into *sa; host defaults to 127.0.0.1. */
static int parse_endpoint(const char *arg, struct sockaddr_in *sa, int need_host)
{
	char buf[256];
	char *colon;

	if (strlen(arg) >= sizeof(buf))
		return -1;
	strcpy(buf, arg);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	colon = strrchr(buf, ':');
	if (!colon)
		return need_host ? -1 : parse_port(buf, &sa->sin_port);
	*colon = '\0';
	if (parse_addr(buf, &sa->sin_addr) < 0)
		return -1;
	return parse_port(colon + 1, &sa->sin_port);
}

/* "[LADDR:]LPORT:RHOST:RPORT": the last two fields are the target. */
static int parse_forward(const char *arg, struct dpforward *f)
{
	char buf[256];
	char *rport, *rhost;

	if (strlen(arg) >= sizeof(buf))
		return -1;
	strcpy(buf, arg);
	rport = strrchr(buf, ':');
	if (!rport)
		return -1;
	*rport = '\0';
	rhost = strrchr(buf, ':');
	if (!rhost)
		return -1;
	*rhost = '\0';
	*rport = ':';
	return parse_endpoint(buf, &f->listen, 0) < 0 ? -1 : parse_endpoint(rhost + 1, &f->to, 1);
}

static int parse_double(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return (errno || end == s || *end || !(*v >= 0) || *v > 1e9) ? -1 : 0;
}

static int bad(const char *opt, const char *arg)
{
	fprintf(stderr, "delayproxy: invalid %s '%s'\n", opt, arg);
	return -1;
}

static int add_forward(struct dpopts *o, const struct dpforward *f)
{
	if (o->nfwd == DPOPTS_MAX_FORWARDS) {
		fprintf(stderr, "delayproxy: at most %d forwards\n", DPOPTS_MAX_FORWARDS);
		return -1;
	}
	o->fwd[o->nfwd++] = *f;
	return 0;
}

static int validate(const struct dpopts *o, int pending_listen)
{
	int i;

	if (pending_listen) {
		fprintf(stderr, "delayproxy: --listen without its --to\n");
		return -1;
	}
	if (o->nfwd == 0) {
		fprintf(stderr, "delayproxy: nothing to forward (try --help)\n");
		return -1;
	}
	for (i = 0; i < o->nfwd && !o->allow_remote; i++) {
		if ((ntohl(o->fwd[i].to.sin_addr.s_addr) >> 24) != 127) {
			fprintf(stderr, "delayproxy: refusing non-loopback target (--allow-remote)\n");
			return -1;
		}
	}
	return 0;
}

enum { OPT_LISTEN = 256, OPT_TO, OPT_FORWARD, OPT_DELAY, OPT_JITTER, OPT_RATE, OPT_BURST,
       OPT_SEED, OPT_STATS, OPT_REMOTE, OPT_HELP };

static const struct option longopts[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "to", required_argument, NULL, OPT_TO },
	{ "forward", required_argument, NULL, OPT_FORWARD },
	{ "delay-ms", required_argument, NULL, OPT_DELAY },
	{ "jitter-ms", required_argument, NULL, OPT_JITTER },
	{ "rate-mbit", required_argument, NULL, OPT_RATE },
	{ "burst-kb", required_argument, NULL, OPT_BURST },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "stats-file", required_argument, NULL, OPT_STATS },
	{ "allow-remote", no_argument, NULL, OPT_REMOTE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* One option; returns 0, 1 (help) or -1. *pending holds a --listen waiting for its --to. */
static int apply(struct dpopts *o, int c, const char *arg, struct dpforward *f, int *pending)
{
	double d;

	switch (c) {
	case OPT_LISTEN:
		*pending = 1;
		return parse_endpoint(arg, &f->listen, 0) < 0 ? bad("--listen", arg) : 0;
	case OPT_TO:
		if (!*pending)
			return bad("--to (no --listen before it)", arg);
		*pending = 0;
		return parse_endpoint(arg, &f->to, 1) < 0 ? bad("--to", arg) : add_forward(o, f);
	case OPT_FORWARD:
		return parse_forward(arg, f) < 0 ? bad("--forward", arg) : add_forward(o, f);
	case OPT_DELAY:
		return parse_double(arg, &o->delay_ms) < 0 ? bad("--delay-ms", arg) : 0;
	case OPT_JITTER:
		return parse_double(arg, &o->jitter_ms) < 0 ? bad("--jitter-ms", arg) : 0;
	case OPT_RATE:
		return parse_double(arg, &o->rate_mbit) < 0 ? bad("--rate-mbit", arg) : 0;
	case OPT_BURST:
		if (parse_double(arg, &d) < 0 || d < 1 || d > 1048576)
			return bad("--burst-kb", arg);
		o->burst_kb = (long)d;
		return 0;
	case OPT_SEED:
		o->seed = strtoull(arg, NULL, 0);
		return 0;
	case OPT_STATS:
		o->stats_file = arg;
		return 0;
	case OPT_REMOTE:
		o->allow_remote = 1;
		return 0;
	case OPT_HELP:
		fputs(usage, stdout);
		return 1;
	default:
		fputs(usage, stderr);
		return -1;
	}
}

int dpopts_parse(struct dpopts *o, int argc, char **argv)
{
	struct dpforward f;
	int c, rc, pending = 0;

	memset(o, 0, sizeof(*o));
	memset(&f, 0, sizeof(f));
	o->seed = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		rc = apply(o, c, optarg, &f, &pending);
		if (rc != 0)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "delayproxy: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return validate(o, pending);
}
