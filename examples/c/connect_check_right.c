/* connect_check_right.c - a port checker that asks SO_ERROR (see
 * connect_check_wrong.c).
 *
 * A non-blocking connect that answered EINPROGRESS is over when the socket
 * is writable; getsockopt(SO_ERROR) then says how it ended: 0 connected,
 * else the errno connect would have returned (ECONNREFUSED here). Passes
 * under every built-in scenario.
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
                int err;
                socklen_t len = sizeof err;
                wait_for(fd, POLLOUT);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        die("getsockopt");
                open = err == 0;
        }
        close(fd);
        return open;
}

int main(void)
{
        return check_ports(port_is_open);
}
