#include "commands.h"
#include "util.h"
int cmd_minimize(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        usage_error("minimize: not yet");
}
