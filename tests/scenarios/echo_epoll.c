/* echo_epoll.c - a correct non-blocking echo server and its clients in one
 * epoll loop: the C half of the scenario-library conformance suite.
 *
 *   echo_epoll [--et] (--tcp | --unix PATH) --payload FILE --out FILE
 *              [--clients N] [--stall-ms MS]
 *
 * A listener, N clients and the server's side of each connection share one
 * epoll instance in one thread. Client i connects (non-blocking: EINPROGRESS
 * then SO_ERROR on TCP, EAGAIN retried on AF_UNIX), sends its slice of the
 * payload while reading the echo, shuts down its write side once the whole
 * echo is back and reads until EOF; the server echoes every byte back and
 * closes after the client's EOF. (Neither end hangs up while bytes are in
 * flight: a read with the end of the stream queued behind it takes all
 * there is on Linux, so wouldblock cuts no such read.) The
 * echoed slices, concatenated in client order, go to --out for the caller to
 * compare with the payload, and are also compared here.
 *
 * Level-triggered (default): one call per readiness report, and interest in
 * EPOLLOUT only while output is pending. Edge-triggered (--et): registered
 * once with EPOLLET, every readiness report is drained until EAGAIN, and
 * new output is tried at once (no edge would announce a socket that is
 * writable already).
 *
 * Whatever a wouldblock scenario does (EAGAIN, EINPROGRESS, short counts),
 * a correct loop finishes with the same bytes. The server uses read/write
 * and the clients recv/send, so both spellings are exercised.
 *
 * --stall-ms is a hang guard, not a timing assertion: when nothing at all is
 * ready for that long the loop prints what every connection waits for and
 * exits 2, which names the stuck fd instead of leaving the caller to kill us.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define MAX_CONNS (2 * MAX_CLIENTS + 1)
#define IO_CHUNK 16384
#define UNIX_CONNECT_TRIES 10000 /* a full AF_UNIX backlog drains as we accept */

enum role { LISTENER, SERVER, CLIENT };

struct conn {
        enum role role;
        int fd;
        int index;       /* client number, for messages */
        bool connecting; /* client: connect in progress (EINPROGRESS) */
        bool retry;      /* client: AF_UNIX connect said EAGAIN, call it again */
        unsigned tries;  /* client: connect calls so far */
        bool watched;    /* in the epoll set */
        bool read_eof;
        bool write_shut;
        bool done;
        uint32_t interest; /* level-triggered: what epoll watches now */
        /* output: a client's payload slice, or the server's bytes to echo */
        unsigned char *tx;
        size_t tx_len, tx_off, tx_cap;
        /* client input: the echo received so far, rx_cap == its slice */
        unsigned char *rx;
        size_t rx_len, rx_cap;
};

static bool edge_triggered;
static int epfd;
static struct sockaddr_storage addr;
static socklen_t addr_len;
static struct conn conns[MAX_CONNS];
static int n_conns;
static unsigned long n_eagain, n_short, n_inprogress; /* what the loop met */

static _Noreturn void die(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("echo_epoll: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(1);
}

static bool would_block(int err)
{
        return err == EAGAIN || err == EWOULDBLOCK;
}

static void *xmalloc(size_t n)
{
        void *p = malloc(n ? n : 1);
        if (!p)
                die("out of memory");
        return p;
}

static const char *role_name(const struct conn *c)
{
        return c->role == LISTENER ? "listener" : c->role == SERVER ? "server" : "client";
}

static struct conn *new_conn(enum role role, int fd)
{
        if (n_conns == MAX_CONNS)
                die("too many connections");
        struct conn *c = &conns[n_conns++];
        memset(c, 0, sizeof *c);
        c->role = role;
        c->fd = fd;
        return c;
}

/* ---- epoll interest ---- */

static uint32_t wanted(const struct conn *c)
{
        if (c->role == LISTENER)
                return EPOLLIN;
        uint32_t ev = c->read_eof ? 0 : EPOLLIN;
        if (c->connecting || (c->tx_off < c->tx_len && !c->write_shut))
                ev |= EPOLLOUT;
        return ev;
}

static void watch(struct conn *c)
{
        struct epoll_event ev = {.data.ptr = c};
        c->watched = true;
        ev.events = edge_triggered ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET : wanted(c);
        c->interest = ev.events;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev))
                die("epoll_ctl ADD fd %d: %s", c->fd, strerror(errno));
}

/* Level-triggered: keep interest in step with what the connection waits
 * for, so that a writable socket with nothing to send does not spin. */
static void rewatch(struct conn *c)
{
        if (edge_triggered || c->done || !c->watched)
                return;
        struct epoll_event ev = {.events = wanted(c), .data.ptr = c};
        if (ev.events == c->interest)
                return;
        c->interest = ev.events;
        if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev))
                die("epoll_ctl MOD fd %d: %s", c->fd, strerror(errno));
}

static void finish(struct conn *c)
{
        /* close drops the fd from the epoll set */
        if (close(c->fd))
                die("close %s fd %d: %s", role_name(c), c->fd, strerror(errno));
        c->done = true;
}

/* ---- listener ---- */

static void accept_ready(struct conn *l)
{
        for (;;) {
                int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (would_block(errno)) {
                                n_eagain++;
                                return;
                        }
                        die("accept4: %s", strerror(errno));
                }
                struct conn *s = new_conn(SERVER, fd);
                s->tx_cap = IO_CHUNK;
                s->tx = xmalloc(s->tx_cap);
                watch(s);
                if (!edge_triggered)
                        return; /* level-triggered: epoll tells us again if more wait */
        }
}

/* ---- output, shared by both sides ---- */

static ssize_t put(struct conn *c, const void *buf, size_t len)
{
        return c->role == SERVER ? write(c->fd, buf, len) : send(c->fd, buf, len, 0);
}

static void flush(struct conn *c)
{
        while (c->tx_off < c->tx_len) {
                /* at most IO_CHUNK a call, as a real sender of a stream
                 * does: the later calls find bytes in flight, where an
                 * output EAGAIN is faithful on a unix socket (SPEC §4) */
                size_t want = c->tx_len - c->tx_off < IO_CHUNK ? c->tx_len - c->tx_off : IO_CHUNK;
                ssize_t n = put(c, c->tx + c->tx_off, want);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (would_block(errno)) {
                                n_eagain++;
                                break; /* EPOLLOUT tells us when */
                        }
                        die("%s %d: write: %s", role_name(c), c->index, strerror(errno));
                }
                if ((size_t)n < want)
                        n_short++;
                c->tx_off += (size_t)n;
                if (!edge_triggered)
                        break; /* level-triggered: epoll tells us again if there is room */
        }
        if (c->role == SERVER && c->tx_off == c->tx_len)
                c->tx_off = c->tx_len = 0; /* all echoed: reuse the buffer */

        bool all_sent = c->tx_off == c->tx_len;
        bool sender_done = c->role == CLIENT ? c->rx_len == c->rx_cap : c->read_eof;
        if (all_sent && sender_done && !c->write_shut) {
                /* the client's EOF to the server, or the server's after the echo */
                if (shutdown(c->fd, SHUT_WR))
                        die("%s %d: shutdown: %s", role_name(c), c->index, strerror(errno));
                c->write_shut = true;
        }
}

/* ---- input ---- */

/* Where the next bytes go: the server appends to its echo buffer, growing
 * it; a client fills its slice and must never get more than it sent. */
static unsigned char *room(struct conn *c, size_t *len)
{
        static unsigned char excess[1];

        if (c->role == SERVER) {
                if (c->tx_len == c->tx_cap) {
                        c->tx_cap *= 2;
                        c->tx = realloc(c->tx, c->tx_cap);
                        if (!c->tx)
                                die("out of memory");
                }
                *len = c->tx_cap - c->tx_len < IO_CHUNK ? c->tx_cap - c->tx_len : IO_CHUNK;
                return c->tx + c->tx_len;
        }
        if (c->rx_len == c->rx_cap) {
                *len = sizeof excess; /* expecting EOF: anything else is an error */
                return excess;
        }
        *len = c->rx_cap - c->rx_len < IO_CHUNK ? c->rx_cap - c->rx_len : IO_CHUNK;
        return c->rx + c->rx_len;
}

static void take(struct conn *c)
{
        do {
                size_t len;
                unsigned char *buf = room(c, &len);
                ssize_t n = c->role == SERVER ? read(c->fd, buf, len) : recv(c->fd, buf, len, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (would_block(errno)) {
                                n_eagain++;
                                return;
                        }
                        die("%s %d: read: %s", role_name(c), c->index, strerror(errno));
                }
                if (n == 0) {
                        c->read_eof = true;
                        return;
                }
                if ((size_t)n < len)
                        n_short++;
                if (c->role == SERVER) {
                        c->tx_len += (size_t)n;
                } else {
                        if (c->rx_len == c->rx_cap)
                                die("client %d: the echo is longer than what was sent", c->index);
                        c->rx_len += (size_t)n;
                }
        } while (edge_triggered); /* edge-triggered: drain until EAGAIN or EOF */
}

/* ---- clients ---- */

static void start_connect(struct conn *c)
{
        if (connect(c->fd, (struct sockaddr *)&addr, addr_len) == 0) {
                c->connecting = c->retry = false;
                return;
        }
        if (errno == EINPROGRESS) {
                n_inprogress++;
                c->connecting = true;
                c->retry = false;
                return;
        }
        if (would_block(errno) && addr.ss_family == AF_UNIX) {
                /* AF_UNIX: no connection was made; the listener's backlog is
                 * full (or we were told so): call connect again later */
                n_eagain++;
                if (++c->tries > UNIX_CONNECT_TRIES)
                        die("client %d: connect keeps saying EAGAIN", c->index);
                c->retry = true;
                return;
        }
        die("client %d: connect: %s", c->index, strerror(errno));
}

/* Connect, and once the connect is made or in progress, watch the socket
 * (not before: an unconnected stream socket polls as hung up). */
static void client_start(struct conn *c)
{
        start_connect(c);
        if (c->retry)
                return;
        watch(c); /* after connect: ADD reports what is ready already */
        if (!c->connecting)
                flush(c);
        rewatch(c);
}

/* EINPROGRESS done: the socket is writable, SO_ERROR says how it went. */
static void connect_done(struct conn *c)
{
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len))
                die("client %d: getsockopt SO_ERROR: %s", c->index, strerror(errno));
        if (err)
                die("client %d: connect finished with %s", c->index, strerror(err));
        c->connecting = false;
}

static void client_event(struct conn *c, uint32_t ev)
{
        if (c->connecting) {
                if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                        return;
                connect_done(c);
                flush(c); /* connected: start sending now */
        }
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                take(c);
                if (c->rx_len == c->rx_cap)
                        flush(c); /* the whole echo is back: now the EOF */
        }
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                flush(c);
        if (c->read_eof) {
                if (c->rx_len != c->rx_cap)
                        die("client %d: EOF after %zu of %zu bytes", c->index, c->rx_len,
                            c->rx_cap);
                if (c->tx_off != c->tx_len)
                        die("client %d: EOF before all was sent", c->index);
                finish(c);
        }
}

static void server_event(struct conn *c, uint32_t ev)
{
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                take(c);
                flush(c); /* new bytes to echo: try at once */
        } else if (ev & EPOLLOUT) {
                flush(c);
        }
        if (c->read_eof && c->write_shut)
                finish(c);
}

/* ---- set-up ---- */

static unsigned char *read_file(const char *path, size_t *len)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st))
                die("%s: %s", path, strerror(errno));
        unsigned char *buf = xmalloc((size_t)st.st_size);
        size_t got = 0;
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        die("%s: read: %s", path, n ? strerror(errno) : "file shrank");
                got += (size_t)n;
        }
        close(fd);
        *len = got;
        return buf;
}

static void write_file(const char *path, struct conn **clients, int n)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                die("%s: %s", path, strerror(errno));
        for (int i = 0; i < n; i++) {
                size_t off = 0;
                while (off < clients[i]->rx_len) {
                        ssize_t w = write(fd, clients[i]->rx + off, clients[i]->rx_len - off);
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0)
                                die("%s: write: %s", path, strerror(errno));
                        off += (size_t)w;
                }
        }
        if (close(fd))
                die("%s: close: %s", path, strerror(errno));
}

static int listen_on(bool tcp, const char *unix_path)
{
        int fd = socket(tcp ? AF_INET : AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                die("socket: %s", strerror(errno));
        memset(&addr, 0, sizeof addr);
        if (tcp) {
                struct sockaddr_in *in = (struct sockaddr_in *)&addr;
                in->sin_family = AF_INET;
                in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                addr_len = sizeof *in;
        } else {
                struct sockaddr_un *un = (struct sockaddr_un *)&addr;
                if (strlen(unix_path) >= sizeof un->sun_path)
                        die("%s: path too long", unix_path);
                un->sun_family = AF_UNIX;
                strcpy(un->sun_path, unix_path);
                unlink(unix_path);
                addr_len = sizeof *un;
        }
        if (bind(fd, (struct sockaddr *)&addr, addr_len) || listen(fd, MAX_CLIENTS))
                die("bind/listen: %s", strerror(errno));
        if (tcp && getsockname(fd, (struct sockaddr *)&addr, &addr_len)) /* the port */
                die("getsockname: %s", strerror(errno));
        return fd;
}

static void print_stuck(int stall_ms)
{
        fprintf(stderr, "echo_epoll: nothing ready for %d ms (%s-triggered); waiting:\n", stall_ms,
                edge_triggered ? "edge" : "level");
        for (int i = 0; i < n_conns; i++) {
                struct conn *c = &conns[i];
                if (c->done || c->role == LISTENER)
                        continue;
                fprintf(stderr, "  %s %d fd %d: %s%s, sent %zu/%zu, received %zu%s%s\n",
                        role_name(c), c->index, c->fd, c->connecting ? "connecting, " : "",
                        c->read_eof ? "read EOF" : "reading", c->tx_off, c->tx_len,
                        c->role == CLIENT ? c->rx_len : c->tx_len,
                        c->role == CLIENT ? " of the echo" : " to echo",
                        c->write_shut ? ", write shut" : "");
        }
}

int main(int argc, char **argv)
{
        const char *payload_path = NULL, *out_path = NULL, *unix_path = NULL;
        bool tcp = false;
        int n_clients = 4, stall_ms = 10000;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (!strcmp(a, "--et"))
                        edge_triggered = true;
                else if (!strcmp(a, "--tcp"))
                        tcp = true;
                else if (!strcmp(a, "--unix") && v)
                        unix_path = argv[++i];
                else if (!strcmp(a, "--payload") && v)
                        payload_path = argv[++i];
                else if (!strcmp(a, "--out") && v)
                        out_path = argv[++i];
                else if (!strcmp(a, "--clients") && v)
                        n_clients = atoi(argv[++i]);
                else if (!strcmp(a, "--stall-ms") && v)
                        stall_ms = atoi(argv[++i]);
                else
                        die("usage: echo_epoll [--et] (--tcp | --unix PATH) --payload FILE "
                            "--out FILE [--clients N] [--stall-ms MS]");
        }
        if (tcp == !!unix_path || !payload_path || !out_path || n_clients < 1 ||
            n_clients > MAX_CLIENTS || stall_ms < 1)
                die("need one of --tcp and --unix, --payload, --out, 1..%d clients", MAX_CLIENTS);

        size_t payload_len;
        unsigned char *payload = read_file(payload_path, &payload_len);

        epfd = epoll_create1(EPOLL_CLOEXEC);
        if (epfd < 0)
                die("epoll_create1: %s", strerror(errno));
        struct conn *listener = new_conn(LISTENER, listen_on(tcp, unix_path));
        watch(listener);

        struct conn *clients[MAX_CLIENTS];
        for (int i = 0; i < n_clients; i++) {
                size_t from = payload_len * (size_t)i / (size_t)n_clients;
                size_t to = payload_len * (size_t)(i + 1) / (size_t)n_clients;
                int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        die("socket: %s", strerror(errno));
                struct conn *c = clients[i] = new_conn(CLIENT, fd);
                c->index = i;
                c->tx = payload + from;
                c->tx_len = to - from;
                c->rx_cap = to - from;
                c->rx = xmalloc(c->rx_cap);
                client_start(c);
        }

        for (;;) {
                bool busy = false, retrying = false;
                for (int i = 0; i < n_conns; i++) {
                        busy |= conns[i].role != LISTENER && !conns[i].done;
                        retrying |= conns[i].retry;
                }
                if (!busy)
                        break;

                struct epoll_event evs[16];
                /* a client retrying an AF_UNIX connect does not wait */
                int n = epoll_wait(epfd, evs, 16, retrying ? 0 : stall_ms);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        die("epoll_wait: %s", strerror(errno));
                if (n == 0 && !retrying) {
                        print_stuck(stall_ms);
                        exit(2);
                }
                for (int i = 0; i < n; i++) {
                        struct conn *c = evs[i].data.ptr;
                        if (c->done)
                                continue;
                        if (c->role == LISTENER)
                                accept_ready(c);
                        else if (c->role == SERVER)
                                server_event(c, evs[i].events);
                        else
                                client_event(c, evs[i].events);
                        rewatch(c);
                }
                for (int i = 0; i < n_clients; i++) {
                        struct conn *c = clients[i];
                        if (c->retry)
                                client_start(c);
                }
        }

        size_t echoed = 0;
        for (int i = 0; i < n_clients; i++) {
                size_t from = payload_len * (size_t)i / (size_t)n_clients;
                if (memcmp(clients[i]->rx, payload + from, clients[i]->rx_len))
                        die("client %d: the echo differs from what was sent", i);
                echoed += clients[i]->rx_len;
        }
        write_file(out_path, clients, n_clients);
        printf("echo_epoll: %s-triggered %s: %d clients, %zu bytes echoed; met %lu EAGAIN, %lu "
               "short counts, %lu EINPROGRESS\n",
               edge_triggered ? "edge" : "level", tcp ? "tcp" : "unix", n_clients, echoed, n_eagain,
               n_short, n_inprogress);
        close(listener->fd);
        if (unix_path)
                unlink(unix_path);
        return 0;
}
