/* orclock: see orclock.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT, RTLD_DEFAULT */
#endif
#include "kernels/orclock.h"

#include <dlfcn.h>
#include <orc/orc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

typedef OrcCompileResult (*compile_fn)(OrcProgram *);
typedef void (*free_fn)(OrcProgram *);

static pthread_mutex_t orc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t found = PTHREAD_ONCE_INIT;
static compile_fn real_compile;
static free_fn real_free;

static void find_real(void)
{
	real_compile = (compile_fn)dlsym(RTLD_NEXT, "orc_program_compile");
	real_free = (free_fn)dlsym(RTLD_NEXT, "orc_program_free");
}

/* Only libvips calls these, so liborc is loaded: the lookup failing is a broken install. */
static void need_real(const void *fn, const char *name)
{
	if (fn)
		return;
	fprintf(stderr, "vhprep: cannot find liborc's %s\n", name);
	abort();
}

OrcCompileResult orc_program_compile(OrcProgram *p)
{
	OrcCompileResult r;

	pthread_once(&found, find_real);
	need_real((const void *)real_compile, "orc_program_compile");
	pthread_mutex_lock(&orc_lock);
	r = real_compile(p);
	pthread_mutex_unlock(&orc_lock);
	return r;
}

void orc_program_free(OrcProgram *p)
{
	pthread_once(&found, find_real);
	need_real((const void *)real_free, "orc_program_free");
	pthread_mutex_lock(&orc_lock);
	real_free(p);
	pthread_mutex_unlock(&orc_lock);
}

bool orclock_active(void)
{
	pthread_once(&found, find_real);
	return real_compile && real_free &&
	       dlsym(RTLD_DEFAULT, "orc_program_compile") == (void *)orc_program_compile &&
	       dlsym(RTLD_DEFAULT, "orc_program_free") == (void *)orc_program_free;
}
