/* run.c - wouldblock -- COMMAND: set the variables and exec COMMAND; with
 * --expect-injections or --summary, fork instead, point every process's
 * JSON report into a private directory, and read them all once COMMAND has
 * exited (a killed process's status file included). */
#include "child.h"
#include "commands.h"
#include "options.h"
#include "preload.h"
#include "reports.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int run_and_collect(const struct options *o)
{
        const char *inherited = getenv("WOULDBLOCK_REPORT");
        char *dir = make_private_dir();
        char *user_pattern = inherited && *inherited ? absolute_path("--report", inherited) : NULL;
        struct totals t = {0};
        int status, err, code;
        pid_t pid;

        set_variable_owned("WOULDBLOCK_REPORT", format("%s/%%p.json", dir));
        err = run_foreground(o->command, &pid, &status);
        collect_reports(dir, user_pattern, pid, &t);
        remove_dir(dir);
        free(dir);
        free(user_pattern);
        if (err)
                return exec_failure(o->command[0], err);
        code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);

        /* a killed COMMAND is a failure of its own: its counts (if its
         * status file kept them) are shown, "nothing injected" never said */
        bool killed = WIFSIGNALED(status);
        bool nothing = o->expect_injections && total_injected(&t) == 0 && !killed;
        if (o->summary || nothing || (o->expect_injections && killed))
                print_summary(&t, o->command[0], status);
        if (nothing)
                fprintf(stderr,
                        "wouldblock: --expect-injections: nothing was injected "
                        "(%s exited with status %d)\n",
                        o->command[0], code);
        free_totals(&t);
        return nothing ? EXIT_NO_INJECTION : code;
}

int cmd_run(const struct options *o)
{
        set_variables(o);
        check_configuration(o->config);
        if (o->expect_injections || o->summary)
                return run_and_collect(o);
        execvp(o->command[0], o->command);
        return exec_failure(o->command[0], errno);
}
