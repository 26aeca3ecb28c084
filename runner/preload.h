/* preload.h - putting libwouldblock.so in front of a command, and checking
 * what the library will read before the command starts. */
#ifndef WB_RUNNER_PRELOAD_H
#define WB_RUNNER_PRELOAD_H

#include <stddef.h>

/* libwouldblock.so next to us (a build tree), else where it is installed;
 * exits 125 if neither has it. */
void find_library(char *out, size_t size);

/* old (entries separated by ':' or ' ', as ld.so reads them) with lib added
 * in front, but behind the sanitizer runtimes that lead it. */
char *preload_with(const char *old, const char *lib);

/* LD_PRELOAD in our environment with the library in it. */
void preload_library(void);

/* What the library will read at start-up from our environment, read the
 * library's way now, so that an error stops us (125, the library's
 * message) before COMMAND runs. config: -c as the user wrote it, or NULL. */
void check_configuration(const char *config);

/* setenv that cannot fail (it exits); _owned frees value. */
void set_variable(const char *name, const char *value);
void set_variable_owned(const char *name, char *value);

#endif
