/* child.h - running COMMAND: in the foreground (wouldblock -- COMMAND), or
 * as one of many experiments in its own process group, killed whole at a
 * deadline after saying what it was doing. */
#ifndef WB_RUNNER_CHILD_H
#define WB_RUNNER_CHILD_H

#include <stddef.h>
#include <sys/types.h>

/* A shell's words and statuses for a COMMAND that cannot be run. */
int exec_failure(const char *command, int err);

/* Fork, exec COMMAND and wait for it, passing on SIGTERM/SIGHUP and staying
 * through ^C. 0 and its wait status, or the errno of an exec that failed. */
int run_foreground(char **command, pid_t *pid, int *status);

/* Fork COMMAND as the leader of a new process group, stdin from /dev/null,
 * stdout and stderr into files, the environment changed by setenv pairs
 * (name, value; value NULL unsets) in the child. An exec failure ends the
 * child with 127 (126) after a line on its stderr. */
pid_t spawn_experiment(char **command, const char *const *env, const char *out_path,
                       const char *err_path);

/* What the processes of group pgid are doing, for a hang: "blocked in
 * epoll_wait (NAME)" or "spinning on the CPU (NAME)". Samples for a moment. */
void describe_hang(pid_t pgid, char *out, size_t size);

/* SIGKILL to the group, whatever is left of it. */
void kill_group(pid_t pgid);

/* The name of syscall number nr, or NULL. */
const char *syscall_name(long nr);

#endif
