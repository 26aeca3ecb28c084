/* early.c - wrapped calls made before libwouldblock's constructor has run.
 * Built twice: with -DEARLY_LIB as a second preload whose constructor does
 * pipe I/O (placed after libwouldblock in LD_PRELOAD, its constructor runs
 * first), and as the program, whose main does the same once every
 * constructor ran. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* write "x" into a new non-blocking pipe and read it back */
static const char *pipe_round_trip(void)
{
        int p[2];
        char c = 0;
        ssize_t n;
        if (pipe2(p, O_NONBLOCK) != 0)
                return "pipe2 failed";
        if (write(p[1], "x", 1) != 1)
                return "write failed";
        n = read(p[0], &c, 1);
        close(p[0]);
        close(p[1]);
        if (n == 1 && c == 'x')
                return "data";
        if (n < 0 && errno == EAGAIN)
                return "EAGAIN";
        return "other";
}

#ifdef EARLY_LIB
__attribute__((constructor)) static void early(void)
{
        /* before libwouldblock's constructor: no rule is active yet, and the
         * real functions are bound on demand */
        dprintf(1, "constructor %s\n", pipe_round_trip());
}
#else
int main(void)
{
        printf("main %s\n", pipe_round_trip());
        return 0;
}
#endif
