/* vhprep: the command. Everything is in run.c; main only hands over argv. */
#include "engine/run.h"

int main(int argc, char **argv)
{
	return run_main(argc, argv);
}
