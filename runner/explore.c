#include "commands.h"
#include "util.h"
int cmd_explore(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        usage_error("explore: not yet");
}
