/* epoll_echo_right.c - an edge-triggered epoll echo server that drains (see
 * epoll_echo_wrong.c).
 *
 * Edge-triggered epoll reports data once, when it arrives: on each event the
 * server reads until read says EAGAIN (or the end), so nothing is left
 * behind without an event to come. Passes under every built-in scenario.
 */
#include "harness.h"

int main(void)
{
        struct echo_setup s = echo_start(EPOLLIN | EPOLLET);
        unsigned char buf[4096];
        bool open = true;

        while (open && echo_wait(&s) == s.conn) {
                for (;;) {
                        ssize_t n = read(s.conn, buf, sizeof buf);
                        if (n > 0) {
                                write_all(s.conn, buf, (size_t)n);
                        } else if (n == 0) {
                                open = false; /* the client closed */
                                break;
                        } else if (errno == EAGAIN) {
                                break; /* drained: the next arrival is a new event */
                        } else if (errno != EINTR) {
                                die("read");
                        }
                }
        }
        return echo_finish(&s);
}
