/* short_write_right.c - a client that sends the rest (see short_write_wrong.c).
 *
 * send returns how many bytes it took: send the rest until none is left,
 * waiting with poll(POLLOUT) when send says EAGAIN. Passes under every
 * built-in scenario.
 */
#include "harness.h"

int main(void)
{
        struct sink_setup s = sink_start();
        static unsigned char msg[SINK_LEN];
        size_t sent = 0;

        fill_pattern(msg, sizeof msg);
        while (sent < sizeof msg) {
                ssize_t n = send(s.fd, msg + sent, sizeof msg - sent, 0);
                if (n >= 0)
                        sent += (size_t)n;
                else if (errno == EAGAIN)
                        wait_for(s.fd, POLLOUT);
                else if (errno != EINTR)
                        die("send");
        }
        return sink_finish(&s);
}
