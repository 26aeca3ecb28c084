/* harness.h - the scaffolding the C examples share: a loopback listener, a
 * peer in a forked child, and the check of what arrived. None of it is the
 * point of an example: a *_wrong.c and its *_right.c differ only where the
 * bug is.
 *
 * The peers use blocking sockets: the built-in scenarios only touch
 * non-blocking fds (blocking=no), so the only code that meets wouldblock is
 * the example's own. Verdicts are one line on stdout, "ok: ..." or
 * "FAIL: ...", and the exit status: 0 ok, 1 the example's bug showed, 2 the
 * harness itself failed.
 */
#ifndef EXAMPLES_HARNESS_H
#define EXAMPLES_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long a peer waits for the next byte before it calls the other side
 * stuck: only a hang guard, a correct run never waits this long. */
#define STUCK_MS 2000

static inline _Noreturn void die(const char *what)
{
        fprintf(stderr, "harness: %s: %s\n", what, strerror(errno));
        exit(2);
}

static inline unsigned char pattern_byte(size_t i)
{
        return (unsigned char)(i * 131 + 7);
}

static inline void fill_pattern(unsigned char *buf, size_t len)
{
        for (size_t i = 0; i < len; i++)
                buf[i] = pattern_byte(i);
}

static inline struct sockaddr_in loopback(unsigned short port)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return a;
}

/* A blocking TCP socket bound to 127.0.0.1 on a free port, listening if
 * asked (a bound socket that does not listen refuses connections). */
static inline int bind_loopback(bool listening, unsigned short *port)
{
        struct sockaddr_in a = loopback(0);
        socklen_t len = sizeof a;
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
            (listening && listen(fd, 8) < 0) || getsockname(fd, (struct sockaddr *)&a, &len) < 0)
                die("listening socket");
        *port = ntohs(a.sin_port);
        return fd;
}

static inline int connect_loopback(unsigned short port)
{
        struct sockaddr_in a = loopback(port);
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
                die("connect");
        return fd;
}

static inline void set_nonblocking(int fd)
{
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                die("fcntl O_NONBLOCK");
}

/* Wait until fd is ready for events; the example's own loops use this. */
static inline void wait_for(int fd, short events)
{
        struct pollfd p = {.fd = fd, .events = events};
        while (poll(&p, 1, -1) < 0)
                if (errno != EINTR)
                        die("poll");
}

/* Write all of buf to a blocking or non-blocking fd (waiting with poll).
 * A peer that has gone (EPIPE, ECONNRESET) gets nothing more: its verdict
 * is already made. */
static inline void write_all(int fd, const unsigned char *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, buf, len);
                if (n >= 0) {
                        buf += n;
                        len -= (size_t)n;
                } else if (errno == EAGAIN) {
                        wait_for(fd, POLLOUT);
                } else if (errno == EPIPE || errno == ECONNRESET) {
                        return;
                } else if (errno != EINTR) {
                        die("write");
                }
        }
}

/* Read from a blocking fd into buf until len bytes, end of stream, or
 * STUCK_MS without a byte. Returns the count read. */
static inline size_t read_some(int fd, unsigned char *buf, size_t len, bool *stuck)
{
        size_t got = 0;

        *stuck = false;
        while (got < len) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int ready = poll(&p, 1, STUCK_MS);
                if (ready < 0 && errno == EINTR)
                        continue;
                if (ready < 0)
                        die("poll");
                if (ready == 0) {
                        *stuck = true;
                        break;
                }
                ssize_t n = read(fd, buf + got, len - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        die("read");
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        return got;
}

/* Print the verdict on what arrived and return the exit status. */
static inline int verdict(const char *what, const unsigned char *got, size_t got_len,
                          size_t expected_len, const char *why_short)
{
        for (size_t i = 0; i < got_len; i++)
                if (got[i] != pattern_byte(i)) {
                        printf("FAIL: %s: byte %zu is not the one sent\n", what, i);
                        return 1;
                }
        if (got_len == expected_len) {
                printf("ok: %s: all %zu bytes\n", what, expected_len);
                return 0;
        }
        printf("FAIL: %s: got %zu of %zu bytes, %zu lost%s\n", what, got_len, expected_len,
               expected_len - got_len, why_short);
        return 1;
}

/* Run peer(listener, port, done) in a child process. Returns its pid;
 * *done becomes readable when the peer writes to its end (its verdict is
 * made) or exits. */
static inline pid_t start_peer(int (*peer)(int, unsigned short, int), int listener,
                               unsigned short port, int *done)
{
        int verdict_made[2];
        pid_t pid;

        fflush(stdout);
        if (pipe2(verdict_made, O_CLOEXEC) < 0)
                die("pipe");
        pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                close(verdict_made[0]);
                int status = peer(listener, port, verdict_made[1]);
                fflush(stdout);
                exit(status);
        }
        close(verdict_made[1]);
        *done = verdict_made[0];
        return pid;
}

/* The peer's exit status, its verdict. */
static inline int wait_peer(pid_t pid)
{
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        die("waitpid");
        return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

/* ---- epoll_echo_*: a client sends a message and waits for its echo ---- */

#define ECHO_LEN 1000

static inline int echo_client(int listener, unsigned short port, int done)
{
        unsigned char msg[ECHO_LEN], back[ECHO_LEN];
        bool stuck;
        int fd, status;

        close(listener);
        fd = connect_loopback(port);
        fill_pattern(msg, sizeof msg);
        write_all(fd, msg, sizeof msg);
        size_t got = read_some(fd, back, sizeof back, &stuck);
        status = verdict("echo", back, got, sizeof msg,
                         stuck ? " (the server was stuck: no echo for 2 s)" : "");
        /* Tell the server, and keep the connection until it closes: a close
         * from here would be one more event for it, and the runs would
         * differ by how the two raced. */
        fflush(stdout);
        if (write(done, "", 1) != 1)
                die("write done");
        while (read(fd, back, sizeof back) > 0)
                ;
        close(fd);
        return status;
}

struct echo_setup {
        int conn;        /* the server's non-blocking connection to the client */
        int epfd;        /* epoll instance watching conn and client_done */
        int client_done; /* readable once the client has its verdict */
        pid_t client;
};

/* Start the client, accept its connection (non-blocking) and watch it
 * with epoll for `events`. */
static inline struct echo_setup echo_start(unsigned events)
{
        struct echo_setup s;
        unsigned short port;
        int listener = bind_loopback(true, &port);

        signal(SIGPIPE, SIG_IGN); /* a client that gave up is no crash */
        s.client = start_peer(echo_client, listener, port, &s.client_done);
        s.conn = accept(listener, NULL, NULL);
        if (s.conn < 0)
                die("accept");
        close(listener);
        set_nonblocking(s.conn);
        s.epfd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event conn_ev = {.events = events, .data.fd = s.conn};
        struct epoll_event done_ev = {.events = EPOLLIN, .data.fd = s.client_done};
        if (s.epfd < 0 || epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.conn, &conn_ev) < 0 ||
            epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.client_done, &done_ev) < 0)
                die("epoll");
        return s;
}

/* The next event's fd (EINTR retried). */
static inline int echo_wait(const struct echo_setup *s)
{
        struct epoll_event ev;
        while (epoll_wait(s->epfd, &ev, 1, -1) < 0)
                if (errno != EINTR)
                        die("epoll_wait");
        return ev.data.fd;
}

/* The client's verdict is the program's. */
static inline int echo_finish(struct echo_setup *s)
{
        close(s->conn);
        return wait_peer(s->client);
}

/* ---- short_write_*: a server counts what arrives ---- */

#define SINK_LEN 20000

static inline int sink_server(int listener, unsigned short port, int done)
{
        static unsigned char got[SINK_LEN];
        bool stuck;
        (void)port;
        (void)done; /* the client learns it from the exit status */

        int conn = accept(listener, NULL, NULL);
        if (conn < 0)
                die("accept");
        size_t n = read_some(conn, got, sizeof got, &stuck);
        close(conn);
        return verdict("server received", got, n, SINK_LEN,
                       stuck ? " (the client was stuck: nothing for 2 s)" : "");
}

struct sink_setup {
        int fd; /* the client's non-blocking connection to the server */
        pid_t server;
};

static inline struct sink_setup sink_start(void)
{
        struct sink_setup s;
        unsigned short port;
        int done;
        int listener = bind_loopback(true, &port);

        s.server = start_peer(sink_server, listener, port, &done);
        close(done);
        close(listener);
        s.fd = connect_loopback(port);
        set_nonblocking(s.fd);
        return s;
}

/* The server's verdict is the program's. */
static inline int sink_finish(struct sink_setup *s)
{
        close(s->fd);
        return wait_peer(s->server);
}

/* ---- connect_check_*: is anybody listening on these ports? ---- */

static inline int check_ports(bool (*port_is_open)(unsigned short))
{
        unsigned short open_port, closed_port;
        int listener = bind_loopback(true, &open_port);
        int bound = bind_loopback(false, &closed_port); /* holds the port, refuses */
        bool open = port_is_open(open_port), closed = !port_is_open(closed_port);

        printf("port %u (listening): %s\n", open_port, open ? "open" : "closed");
        printf("port %u (nobody listening): %s\n", closed_port, closed ? "closed" : "open");
        close(listener);
        close(bound);
        if (open && closed) {
                printf("ok: both ports told right\n");
                return 0;
        }
        printf("FAIL: %s\n", open ? "closed port reported open" : "listening port reported closed");
        return 1;
}

/* ---- sendfile_server_*: a server sends a file to the client that came ---- */

#define FILE_LEN 20000

/* A regular file holding FILE_LEN pattern bytes, its offset at 0. */
static inline int pattern_file(void)
{
        static unsigned char data[FILE_LEN];
        char path[] = "/tmp/wb-example-XXXXXX";
        int fd = mkstemp(path);

        if (fd < 0)
                die("mkstemp");
        unlink(path);
        fill_pattern(data, sizeof data);
        write_all(fd, data, sizeof data);
        if (lseek(fd, 0, SEEK_SET) != 0)
                die("lseek");
        return fd;
}

static inline int file_client(int listener, unsigned short port, int done)
{
        static unsigned char got[FILE_LEN];
        bool stuck;
        (void)done; /* the server learns it from the exit status */

        close(listener);
        int fd = connect_loopback(port);
        size_t n = read_some(fd, got, sizeof got, &stuck);
        close(fd);
        return verdict("client received", got, n, FILE_LEN,
                       stuck ? " (the server was stuck: nothing for 2 s)" : "");
}

struct file_setup {
        int conn; /* the server's non-blocking connection to the client */
        int file; /* what it serves: FILE_LEN bytes */
        pid_t client;
};

static inline struct file_setup file_start(void)
{
        struct file_setup s;
        unsigned short port;
        int done;
        int listener = bind_loopback(true, &port);

        signal(SIGPIPE, SIG_IGN); /* a client that gave up is no crash */
        s.client = start_peer(file_client, listener, port, &done);
        close(done);
        s.conn = accept(listener, NULL, NULL);
        if (s.conn < 0)
                die("accept");
        close(listener);
        set_nonblocking(s.conn);
        s.file = pattern_file();
        return s;
}

/* The client's verdict is the program's. */
static inline int file_finish(struct file_setup *s)
{
        close(s->conn);
        close(s->file);
        return wait_peer(s->client);
}

#endif
