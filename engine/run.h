/* run: one vhprep run's lifecycle: options → config → open the source, outputs and
 * records → pipeline (with a monitor thread for signals and progress) → summary → exit
 * code. The only place that decides the process's exit status. */
#ifndef VHPREP_ENGINE_RUN_H
#define VHPREP_ENGINE_RUN_H

/* Exit codes (documented in --help). */
enum run_exit {
	RUN_EXIT_OK = 0,
	RUN_EXIT_FATAL = 1,
	RUN_EXIT_USAGE = 2,
	RUN_EXIT_FAILURES = 3,
	RUN_EXIT_SIGHUP = 129,
	RUN_EXIT_SIGINT = 130,
	RUN_EXIT_SIGTERM = 143,
};

/* Runs vhprep with argv; returns the process exit code. Call once, from main, before
 * any other thread exists (it blocks SIGINT/SIGTERM/SIGHUP in every thread it starts and
 * ignores SIGPIPE: a closed stdout only ends the metrics lines). */
int run_main(int argc, char **argv);

#endif
