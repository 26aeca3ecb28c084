/* epoll_echo_wrong.c - an edge-triggered epoll echo server that reads once per event.
 *
 * The bug: with EPOLLET, epoll reports a socket when data arrives, not while
 * data is there. The server reads once per event and goes back to
 * epoll_wait; whatever that read left in the socket gets no new event, and
 * the client waits for its echo forever.
 * Exposed by: epoll-strict (epoll(7)'s documented contract: reads return at
 * most 3 bytes and no edge follows a short read): the server echoes 3 bytes
 * of the client's 1000 and hangs, on every run (the client gives up after
 * 2 s). Without wouldblock it works: the message fits one read.
 * It passes short-reads: on Linux a read that returns less than asked took
 * everything there was, and new bytes bring a new edge, so after a short
 * read wouldblock owes the edge Linux would give (edge=owed). nginx relies
 * on that, on purpose; epoll(7) does not promise it.
 * The fix (epoll_echo_right.c): on each event, read until EAGAIN.
 */
#include "harness.h"

int main(void)
{
        struct echo_setup s = echo_start(EPOLLIN | EPOLLET);
        unsigned char buf[4096];

        while (echo_wait(&s) == s.conn) {
                /* BUG: one read per event; what it leaves behind waits for an
                 * event that never comes */
                ssize_t n = read(s.conn, buf, sizeof buf);
                if (n > 0)
                        write_all(s.conn, buf, (size_t)n);
                else if (n == 0)
                        break; /* the client closed */
                else if (errno != EAGAIN && errno != EINTR)
                        die("read");
        }
        return echo_finish(&s);
}
