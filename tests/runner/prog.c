/* prog.c - the runner tests' command: one non-blocking pipe, one byte
 * written, read until it arrives (at most 10 tries). Prints how many reads
 * would block, so a test sees whether the preload injected anything. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
        int fds[2], would_block = 0;
        char c;

        if (pipe2(fds, O_NONBLOCK) || write(fds[1], "x", 1) != 1) {
                perror("prog");
                return 1;
        }
        for (int tries = 0; tries < 10; tries++) {
                if (read(fds[0], &c, 1) == 1) {
                        printf("would-block reads: %d\n", would_block);
                        return 0;
                }
                if (errno != EAGAIN) {
                        perror("prog: read");
                        return 1;
                }
                would_block++;
        }
        fprintf(stderr, "prog: still nothing after 10 reads\n");
        return 1;
}
