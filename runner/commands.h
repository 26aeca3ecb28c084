/* commands.h - the subcommands, each in its own file, called from main.c's
 * table. Each returns the runner's exit status. */
#ifndef WB_RUNNER_COMMANDS_H
#define WB_RUNNER_COMMANDS_H

struct options;

int cmd_run(const struct options *o);    /* run.c: wouldblock -- COMMAND */
int cmd_check(const struct options *o);  /* check.c: --check */
int cmd_list(const struct options *o);   /* list.c: --list */
int cmd_explore(int argc, char **argv);  /* explore.c */
int cmd_minimize(int argc, char **argv); /* minimize.c */

#endif
