/* status2report.c - status_to_report() as a command, for tests/site/run.py:
 * status2report STATUS REPORT; exit 0, or 1 with the error on stderr. */
#include "status.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
        if (argc != 3) {
                fprintf(stderr, "usage: status2report STATUS REPORT\n");
                return 2;
        }
        if (status_to_report(argv[1], argv[2]) != 0) {
                fprintf(stderr, "status2report: %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        return 0;
}
