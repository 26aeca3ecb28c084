/* sendfile_server_wrong.c - a file server that takes one sendfile for the file.
 *
 * The bug: sendfile to a non-blocking socket sends what fits in the socket
 * buffer and returns that count, as write does. The server takes "no error"
 * for "the whole file went out" and closes the connection: the client gets
 * the first part of the file and then end of stream. (Its twin bug: after
 * EAGAIN, sending again from offset 0 instead of from where the kernel's
 * count says: pypy's sock_sendfile looped forever that way, #3963.)
 * Exposed by: short-writes (every write, sendfile included, transfers at
 * most 1 byte): the client gets 1 byte of 20000, on every run. Without
 * wouldblock it works while the file fits the socket buffer.
 * The fix (sendfile_server_right.c): let sendfile advance an offset, and
 * call it again until the offset reaches the file's end, waiting with
 * poll(POLLOUT) when it says EAGAIN.
 */
#include "harness.h"

#include <sys/sendfile.h>

int main(void)
{
        struct file_setup s = file_start();

        /* BUG: a count below FILE_LEN is taken for the whole file */
        while (sendfile(s.conn, s.file, NULL, FILE_LEN) < 0) {
                if (errno == EAGAIN)
                        wait_for(s.conn, POLLOUT);
                else if (errno != EINTR)
                        die("sendfile");
        }
        return file_finish(&s);
}
