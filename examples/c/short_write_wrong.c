/* short_write_wrong.c - a client that ignores send's count.
 *
 * The bug: send on a non-blocking socket may take fewer bytes than it was
 * given (the socket buffer had room for only part of them) and says how many
 * in its return value. The client takes "no error" for "all sent": the rest
 * of its message is lost.
 * Exposed by: short-writes (every write transfers at most 1 byte): the
 * server gets 1 byte of 20000, on every run. Without wouldblock it works
 * while the message fits the socket buffer.
 * The fix (short_write_right.c): send the rest until every byte is out,
 * waiting with poll(POLLOUT) when send says EAGAIN.
 */
#include "harness.h"

int main(void)
{
        struct sink_setup s = sink_start();
        static unsigned char msg[SINK_LEN];

        fill_pattern(msg, sizeof msg);
        /* BUG: a count below sizeof msg is taken for success */
        while (send(s.fd, msg, sizeof msg, 0) < 0) {
                if (errno == EAGAIN)
                        wait_for(s.fd, POLLOUT);
                else if (errno != EINTR)
                        die("send");
        }
        return sink_finish(&s);
}
