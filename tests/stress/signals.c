/* signals.c - a signal handler writing through the library while the
 * program is inside wrapped calls.
 *
 *   signals self-pipe|epoll-mod [MILLISECONDS [INTERVAL_US]]
 *                                  (defaults: 3000 ms, 200 us: 5 kHz)
 *
 * SIGALRM fires every INTERVAL_US (setitimer, no SA_RESTART, so waits see
 * EINTR). Its handler writes one byte to a non-blocking fd through the
 * wrapped write(), ignoring EAGAIN as every self-pipe trick does, and
 * counts what happened.
 *
 * self-pipe: the handler's fd is a self-pipe. The main thread streams bytes
 * through a non-blocking socketpair (send/recv, checked byte by byte) and
 * drains the self-pipe with read(), all driven by poll.
 *
 * epoll-mod: the handler's fd is one end of a socketpair that the main
 * thread keeps in an epoll set, switching its interest between EPOLLIN and
 * EPOLLIN|EPOLLOUT with EPOLL_CTL_MOD as a level-triggered loop does when
 * output is pending or not, asking epoll_wait what is ready (each event
 * must carry the data of the latest MOD) and draining the other end. The
 * handler's write then lands while the library is inside epoll_ctl for the
 * very fd it writes to.
 *
 * When the time is up the timer is stopped, the signal blocked and the
 * handler's fd drained: every signal handled must then be a byte read or an
 * EAGAIN seen in the handler. A watchdog thread ends the program (exit 3)
 * when the main loop makes no progress for 5 s: a hang guard that names the
 * hang rather than waiting for run.py's timeout.
 *
 * Prints signals, bytes_read, handler_eagain (run.py: the report's
 * calls.write.seen must equal signals), poll_eintr, stream_bytes, mods.
 */
#include "stress.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/time.h>

#define CHUNK 512
#define STALL_SECONDS 5

static int handler_fd = -1;
static _Atomic long signals_handled, handler_eagain, handler_other;
static _Atomic long progress; /* bumped by the main loop */
static const char *main_doing = "starting";

static void on_alarm(int sig)
{
        int saved = errno;
        (void)sig;
        atomic_fetch_add(&signals_handled, 1);
        if (write(handler_fd, "!", 1) != 1) {
                if (errno == EAGAIN)
                        atomic_fetch_add(&handler_eagain, 1);
                else
                        atomic_fetch_add(&handler_other, 1);
        }
        errno = saved;
}

static void *watchdog(void *arg)
{
        long last = -1, still = 0;
        sigset_t all;
        (void)arg;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL); /* SIGALRM is the main thread's */
        for (;;) {
                long now = atomic_load(&progress);
                struct timespec tick = {0, 100 * 1000 * 1000};
                still = now == last ? still + 1 : 0;
                last = now;
                if (still == STALL_SECONDS * 10) {
                        fprintf(stderr,
                                "FAIL: the main loop made no progress for %d s (last: %s, "
                                "%ld signals handled): stuck in the signal handler?\n",
                                STALL_SECONDS, main_doing, atomic_load(&signals_handled));
                        _exit(3);
                }
                nanosleep(&tick, NULL);
        }
        return NULL;
}

static void set_timer(long interval_us)
{
        struct itimerval t = {{0, interval_us}, {0, interval_us}};
        CHECK_SYS(setitimer(ITIMER_REAL, &t, NULL) == 0);
}

/* Read what fd holds; a read that says EAGAIN while the kernel holds bytes
 * was injected, so only an empty fd ends a drain until_empty. */
static long drain(int fd, bool until_empty)
{
        uint8_t buf[256];
        long got = 0;
        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n > 0) {
                        got += n;
                        continue;
                }
                CHECK_SYS(n < 0 && (errno == EAGAIN || errno == EINTR));
                if (!until_empty || (errno == EAGAIN && unread_bytes(fd) == 0))
                        return got;
        }
}

struct totals {
        long bytes_read, poll_eintr, mods;
        uint64_t stream_bytes;
};

/* The main thread's work in self-pipe mode: poll, stream, drain. */
static void self_pipe_loop(int pipe_r, double end, struct totals *t)
{
        uint8_t out[CHUNK], in[CHUNK];
        uint64_t sent = 0, received = 0;
        long pending = 0, pending_off = 0;
        int sv[2];

        nb_socketpair(sv);
        main_doing = "poll, send, recv, read";
        while (now_seconds() < end) {
                struct pollfd p[3] = {{pipe_r, POLLIN, 0}, {sv[1], POLLIN, 0}, {sv[0], 0, 0}};
                int r;
                atomic_fetch_add(&progress, 1);
                if (sent - received < 64 * 1024)
                        p[2].events = POLLOUT; /* keep a bounded amount in flight */
                r = poll(p, 3, 1000);
                if (r < 0 && errno == EINTR) {
                        t->poll_eintr++;
                        continue;
                }
                CHECK_SYS(r >= 0);
                if (p[0].revents)
                        t->bytes_read += drain(pipe_r, false);
                if (p[1].revents) {
                        ssize_t n = recv(sv[1], in, sizeof in, 0);
                        if (n > 0) {
                                size_t bad = stream_check(in, (size_t)n, received, 1);
                                if (bad < (size_t)n)
                                        die("stream byte %llu is wrong",
                                            (unsigned long long)(received + bad));
                                received += (uint64_t)n;
                        } else {
                                CHECK_SYS(n < 0 && (errno == EAGAIN || errno == EINTR));
                        }
                }
                if (p[2].revents & POLLOUT) {
                        ssize_t n;
                        if (!pending) {
                                pending = 1 + (long)(sent % CHUNK);
                                pending_off = 0;
                                stream_fill(out, (size_t)pending, sent, 1);
                        }
                        n = send(sv[0], out + pending_off, (size_t)(pending - pending_off),
                                 MSG_NOSIGNAL);
                        if (n > 0) {
                                sent += (uint64_t)n;
                                pending_off += n;
                                if (pending_off == pending)
                                        pending = 0;
                        } else {
                                CHECK_SYS(n < 0 && (errno == EAGAIN || errno == EINTR));
                        }
                }
        }
        t->stream_bytes = received;
}

/* The main thread's work in epoll-mod mode: re-register the handler's fd
 * again and again, ask epoll, drain the peer. */
static void epoll_mod_loop(int peer, double end, struct totals *t)
{
        int ep;
        CHECK_SYS((ep = epoll_create1(EPOLL_CLOEXEC)) >= 0);
        struct epoll_event ev = {EPOLLIN, {.u64 = 0}};
        CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, handler_fd, &ev) == 0);
        while (now_seconds() < end) {
                struct epoll_event got[4];
                int n;
                atomic_fetch_add(&progress, 1);
                ev.events = (t->mods & 1) ? EPOLLIN | EPOLLOUT : EPOLLIN;
                ev.data.u64 = (uint64_t)++t->mods;
                main_doing = "epoll_ctl(EPOLL_CTL_MOD) on the handler's fd";
                CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_MOD, handler_fd, &ev) == 0);
                main_doing = "epoll_wait";
                n = epoll_wait(ep, got, 4, 0);
                if (n < 0 && errno == EINTR) {
                        t->poll_eintr++;
                        continue;
                }
                CHECK_SYS(n >= 0);
                for (int i = 0; i < n; i++)
                        if (got[i].data.u64 != (uint64_t)t->mods)
                                die("epoll_wait returned data %llu after a MOD to %ld",
                                    (unsigned long long)got[i].data.u64, t->mods);
                main_doing = "read";
                if ((t->mods & 63) == 0)
                        t->bytes_read += drain(peer, false);
        }
        close(ep);
}

int main(int argc, char **argv)
{
        if (argc < 2)
                die("usage: signals self-pipe|epoll-mod [MILLISECONDS [INTERVAL_US]]");
        bool epoll_mod = strcmp(argv[1], "epoll-mod") == 0;
        long duration_ms = arg_long(argc, argv, 2, 3000),
             interval_us = arg_long(argc, argv, 3, 200);
        struct totals t = {0};
        struct sigaction sa;
        sigset_t alarm_set;
        pthread_t dog;
        int fds[2], reader;

        if (epoll_mod)
                nb_socketpair(fds);
        else
                nb_pipe(fds);
        handler_fd = fds[1];
        reader = fds[0];
        CHECK(pthread_create(&dog, NULL, watchdog, NULL) == 0);

        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm; /* no SA_RESTART: waits are interrupted */
        sigemptyset(&sa.sa_mask);
        CHECK_SYS(sigaction(SIGALRM, &sa, NULL) == 0);
        set_timer(interval_us);

        if (epoll_mod)
                epoll_mod_loop(reader, now_seconds() + (double)duration_ms / 1000, &t);
        else
                self_pipe_loop(reader, now_seconds() + (double)duration_ms / 1000, &t);

        /* Stop the signals, then account for every one of them. */
        set_timer(0);
        sigemptyset(&alarm_set);
        sigaddset(&alarm_set, SIGALRM);
        CHECK_SYS(sigprocmask(SIG_BLOCK, &alarm_set, NULL) == 0);
        main_doing = "the final drain";
        t.bytes_read += drain(reader, true);

        printf("signals=%ld\nbytes_read=%ld\nhandler_eagain=%ld\nhandler_other=%ld\n"
               "poll_eintr=%ld\nstream_bytes=%llu\nmods=%ld\n",
               atomic_load(&signals_handled), t.bytes_read, atomic_load(&handler_eagain),
               atomic_load(&handler_other), t.poll_eintr, (unsigned long long)t.stream_bytes,
               t.mods);
        if (atomic_load(&handler_other))
                die("the handler's write failed with something else than EAGAIN");
        if (atomic_load(&signals_handled) != t.bytes_read + atomic_load(&handler_eagain))
                die("%ld signals handled, but %ld bytes read + %ld EAGAINs in the handler",
                    atomic_load(&signals_handled), t.bytes_read, atomic_load(&handler_eagain));
        if (atomic_load(&signals_handled) == 0)
                die("no signal was handled");
        return 0;
}
