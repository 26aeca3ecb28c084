/* spin.c - until=poll and spin detection (SPEC §3, §5).
 *
 *   spin until-poll RETRIES   under "recv when=1 until=poll"
 *   spin busy N               recv N times on an empty socket, no wait
 *   spin correct poll|select|epoll [BYTES]   a correct loop, under input rules
 *
 * until-poll: three socketpairs hold data. On each, the first recv fails
 * (when=1) and so must every retry made without waiting, though the kernel
 * has the bytes: RETRIES on the first fd, RETRIES/2 on the second, 10 on
 * the third. Waiting on another fd in between changes nothing. Then the fd
 * is waited for, with poll, select and epoll_wait respectively, and the
 * next recv must succeed, and so must the ones after it until the data is
 * gone. run.py checks the report's spin (the first fd, at least RETRIES + 1)
 * and that the log warned exactly once, though two fds passed the limit.
 *
 * busy: the report's spin must be at least N. correct: a loop that waits
 * whenever it hears EAGAIN; its spin must stay at 1 or 2.
 *
 * Prints fd numbers, call counts and EAGAINs for run.py.
 */
#include "stress.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>

#define GUARD_MS 10000

static void fill(int fd, size_t len)
{
        uint8_t buf[4096];
        CHECK(len <= sizeof buf);
        stream_fill(buf, len, 0, 3);
        CHECK_SYS(send(fd, buf, len, 0) == (ssize_t)len);
}

static void wait_with(const char *how, int fd)
{
        if (strcmp(how, "poll") == 0) {
                wait_fd(fd, POLLIN, GUARD_MS, how);
        } else if (strcmp(how, "select") == 0) {
                fd_set rs;
                struct timeval tv = {GUARD_MS / 1000, 0};
                FD_ZERO(&rs);
                FD_SET(fd, &rs);
                CHECK_SYS(select(fd + 1, &rs, NULL, NULL, &tv) == 1);
        } else {
                struct epoll_event ev = {EPOLLIN, {.fd = fd}};
                int ep;
                CHECK_SYS((ep = epoll_create1(EPOLL_CLOEXEC)) >= 0);
                CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
                CHECK_SYS(epoll_wait(ep, &ev, 1, GUARD_MS) == 1);
                CHECK(ev.data.fd == fd);
                close(ep);
        }
}

/* One fd's until=poll run: the first call and `retries` more fail, the wait
 * ends it, then the rest of the data comes. */
static void until_poll_on(int sv[2], long retries, const char *wait_how)
{
        const size_t len = 100;
        uint8_t buf[16];
        size_t got = 0;
        long failed = 0;

        fill(sv[0], len);
        for (long i = 0; i <= retries; i++) {
                ssize_t n = recv(sv[1], buf, sizeof buf, 0);
                if (n >= 0)
                        die("recv %ld on fd %d returned %zd: until=poll let it through with no "
                            "wait",
                            i + 1, sv[1], n);
                CHECK_SYS(errno == EAGAIN);
                failed++;
                /* a wait for another fd does not count for this one */
                if (i % 100 == 50)
                        wait_fd(sv[0], POLLOUT, GUARD_MS, "the other end");
        }
        CHECK(unread_bytes(sv[1]) == (int)len);
        wait_with(wait_how, sv[1]);
        while (got < len) {
                ssize_t n = recv(sv[1], buf, sizeof buf, 0);
                if (n <= 0)
                        die("recv on fd %d after %s reported it ready: %zd (%s), %zu of %zu bytes",
                            sv[1], wait_how, n, n < 0 ? strerror(errno) : "", got, len);
                got += (size_t)n;
        }
        CHECK(recv(sv[1], buf, sizeof buf, 0) < 0 && errno == EAGAIN); /* real: empty */
        printf("fd_%s=%d\nfailed_%s=%ld\n", wait_how, sv[1], wait_how, failed);
}

static int until_poll(long retries)
{
        int a[2], b[2], c[2];
        nb_socketpair(a);
        nb_socketpair(b);
        nb_socketpair(c);
        until_poll_on(a, retries, "poll");
        until_poll_on(b, retries / 2, "select");
        until_poll_on(c, 10, "epoll");
        return 0;
}

static int busy(long n)
{
        int sv[2];
        uint8_t b;
        nb_socketpair(sv);
        for (long i = 0; i < n; i++)
                CHECK(recv(sv[1], &b, 1, 0) < 0 && errno == EAGAIN);
        printf("fd=%d\nbusy_calls=%ld\n", sv[1], n);
        return 0;
}

/* The writer of the correct loop: a blocking socket in a thread of its own,
 * so the reader's loop has only its own fd to wait for. */
struct writer_job {
        int fd;
        long bytes;
};

static void *write_stream(void *arg)
{
        struct writer_job *job = arg;
        uint8_t buf[1024];
        uint64_t rng = 23, sent = 0;
        while (sent < (uint64_t)job->bytes) {
                size_t len = 1 + rng_next(&rng) % sizeof buf;
                ssize_t n;
                if (len > (uint64_t)job->bytes - sent)
                        len = (size_t)((uint64_t)job->bytes - sent);
                stream_fill(buf, len, sent, 3);
                CHECK_SYS((n = send(job->fd, buf, len, MSG_NOSIGNAL)) > 0);
                sent += (uint64_t)n;
        }
        return NULL;
}

/* A correct loop: read until EAGAIN, then wait for the fd (poll, select, or
 * edge-triggered epoll), until the writer thread's stream is all read. */
static int correct(const char *how, long bytes)
{
        struct writer_job job;
        pthread_t writer;
        int sv[2], ep = -1;
        uint8_t buf[1024];
        uint64_t rng = 17, got = 0;
        long calls = 0, eagain = 0;

        nb_socketpair(sv);
        CHECK_SYS(fcntl(sv[0], F_SETFL, 0) == 0); /* the writer blocks */
        if (strcmp(how, "epoll") == 0) {
                struct epoll_event ev = {EPOLLIN | EPOLLET, {.fd = sv[1]}};
                CHECK_SYS((ep = epoll_create1(EPOLL_CLOEXEC)) >= 0);
                CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev) == 0);
        }
        job = (struct writer_job){sv[0], bytes};
        CHECK(pthread_create(&writer, NULL, write_stream, &job) == 0);
        while (got < (uint64_t)bytes) {
                ssize_t n = recv(sv[1], buf, 1 + rng_next(&rng) % sizeof buf, 0);
                calls++;
                if (n > 0) {
                        CHECK(stream_check(buf, (size_t)n, got, 3) == (size_t)n);
                        got += (uint64_t)n;
                        continue;
                }
                CHECK_SYS(n < 0 && errno == EAGAIN);
                eagain++;
                if (ep >= 0) {
                        struct epoll_event ev;
                        CHECK_SYS(epoll_wait(ep, &ev, 1, GUARD_MS) == 1);
                        CHECK(ev.data.fd == sv[1]);
                } else {
                        wait_with(how, sv[1]);
                }
        }
        CHECK(pthread_join(writer, NULL) == 0);
        printf("fd=%d\nrecv_calls=%ld\neagain=%ld\nbytes=%llu\n", sv[1], calls, eagain,
               (unsigned long long)got);
        return 0;
}

int main(int argc, char **argv)
{
        const char *mode = argc > 1 ? argv[1] : "";

        if (strcmp(mode, "until-poll") == 0)
                return until_poll(arg_long(argc, argv, 2, 3000));
        if (strcmp(mode, "busy") == 0)
                return busy(arg_long(argc, argv, 2, 5000));
        if (strcmp(mode, "correct") == 0 && argc > 2)
                return correct(argv[2], arg_long(argc, argv, 3, 1 << 20));
        die("usage: spin until-poll RETRIES | busy N | correct poll|select|epoll [BYTES]");
}
