/* preload_prog.c - a correct poll loop reading a socketpair with read(),
 * for the preload-order cases (libwbother.so wraps read) and, built with
 * -fsanitize=address, for libasan in front of the library.
 *
 *   preload_prog [BYTES]      (default 2000, at most 4096)
 *
 * Writes BYTES bytes into a non-blocking socketpair, then reads them one at
 * a time, polling on EAGAIN. Prints reads (calls made) and eagain.
 */
#include "stress.h"

int main(int argc, char **argv)
{
        long bytes = arg_long(argc, argv, 1, 2000), reads = 0, eagain = 0, got = 0;
        uint8_t data[4096];
        int sv[2];

        CHECK(bytes <= (long)sizeof data);
        nb_socketpair(sv);
        stream_fill(data, (size_t)bytes, 0, 9);
        CHECK_SYS(send(sv[0], data, (size_t)bytes, 0) == bytes);
        while (got < bytes) {
                uint8_t b;
                ssize_t n = read(sv[1], &b, 1);
                reads++;
                if (n == 1) {
                        CHECK(b == stream_byte((uint64_t)got, 9));
                        got++;
                } else {
                        CHECK_SYS(n < 0 && errno == EAGAIN);
                        eagain++;
                        wait_fd(sv[1], POLLIN, 60000, "reader");
                }
        }
        printf("reads=%ld\neagain=%ld\n", reads, eagain);
        return 0;
}
