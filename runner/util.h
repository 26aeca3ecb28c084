/* util.h - the runner's messages, exit statuses and small string helpers,
 * shared by every subcommand. */
#ifndef WB_RUNNER_UTIL_H
#define WB_RUNNER_UTIL_H

#include <stddef.h>

#define EXIT_USAGE 2
#define EXIT_NO_INJECTION 3
#define EXIT_BASELINE 4
#define EXIT_CONFIG 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

/* The usage text a usage error prints after its message (each subcommand
 * sets its own). */
void set_usage(const char *text);

/* The runner's own failures, and configuration errors: 125, the library's
 * status for the latter (and env(1)'s for the former). */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A message, the usage, exit 2. */
_Noreturn void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "wouldblock: " and a line on stderr. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* vasprintf that cannot fail (it exits). */
char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* list + sep + item, list freed (a repeated -s or -r adds to the earlier). */
char *append(char *list, const char *sep, const char *item);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n, size_t size);
char *xstrdup(const char *s);

/* Relative to our working directory: COMMAND's processes may change theirs. */
char *absolute_path(const char *option, const char *path);
/* A whole file, NUL-terminated, or NULL with errno. */
char *read_whole_file(const char *path, size_t *len);
/* A private directory under $TMPDIR (or /tmp), made now. */
char *make_private_dir(void);
/* Remove dir and the files in it. */
void remove_dir(const char *dir);

/* stdout written in full, or EXIT_CONFIG saying it was not (e.g. /dev/full) */
int finish_output(void);
/* s as one shell word, quoted only when it needs to be. */
char *shell_quote(const char *s);
/* argv as a shell command line. */
char *shell_join(char *const *argv);

#endif
