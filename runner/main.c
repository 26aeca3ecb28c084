/* main.c - the wouldblock command (SPEC §6, §8, §9): a table of
 * subcommands, each in its own file; without one, the plain command (run
 * COMMAND, --check, --list). */
#include "commands.h"
#include "options.h"

#include <string.h>

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
} subcommands[] = {
    {"explore", cmd_explore},
    {"minimize", cmd_minimize},
};

int main(int argc, char **argv)
{
        static struct options o; /* static: what it holds is never a leak */

        if (argc > 1)
                for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
                        if (strcmp(argv[1], subcommands[i].name) == 0)
                                return subcommands[i].run(argc - 1, argv + 1);
        parse_options(argc, argv, &o);
        if (o.mode == MODE_LIST)
                return cmd_list(&o);
        if (o.mode == MODE_CHECK)
                return cmd_check(&o);
        return cmd_run(&o);
}
