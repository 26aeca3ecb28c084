/* sendfile_server_right.c - a file server that sends the rest (see
 * sendfile_server_wrong.c).
 *
 * sendfile advances the offset it is given by the bytes it sent: call it
 * again from there until the offset reaches the end of the file, waiting
 * with poll(POLLOUT) when it says EAGAIN. Passes under every built-in
 * scenario.
 */
#include "harness.h"

#include <sys/sendfile.h>

int main(void)
{
        struct file_setup s = file_start();
        off_t offset = 0;

        while (offset < FILE_LEN) {
                ssize_t n = sendfile(s.conn, s.file, &offset, FILE_LEN - (size_t)offset);
                if (n == 0)
                        die("sendfile: the file ended early");
                if (n < 0 && errno == EAGAIN)
                        wait_for(s.conn, POLLOUT);
                else if (n < 0 && errno != EINTR)
                        die("sendfile");
        }
        return file_finish(&s);
}
