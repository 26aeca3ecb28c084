/* connect_check_wrong.c - a port checker that takes "writable" for "connected".
 *
 * The bug: a non-blocking connect answers EINPROGRESS, and the socket turns
 * writable when the attempt is over: connected, or refused. Writable alone
 * does not say which. The checker reports a port where nobody listens as
 * open.
 * Exposed by: slow-connect (every non-blocking TCP connect answers
 * EINPROGRESS while it really connects), on every run. (Linux says
 * EINPROGRESS on loopback by itself; the scenario makes sure of it wherever
 * a connect might finish at once. A refusal that connect itself returns is
 * passed through: the checker would then be right by luck.)
 * The fix (connect_check_right.c): once poll says POLLOUT, read the outcome
 * with getsockopt(SO_ERROR).
 */
#include "harness.h"

static bool port_is_open(unsigned short port)
{
        struct sockaddr_in addr = loopback(port);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        bool open = false;

        if (fd < 0)
                die("socket");
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
                open = true;
        } else if (errno == EINPROGRESS) {
                wait_for(fd, POLLOUT);
                open = true; /* BUG: writable means "over", not "connected" */
        }
        close(fd);
        return open;
}

int main(void)
{
        return check_ports(port_is_open);
}
