/* readiness.c - after an injected EAGAIN the fd's readiness stays true to
 * the kernel (SPEC §4). Run under "input prob=0.5" (et-writer: "output
 * prob=0.5").
 *
 *   readiness et  epoll_wait|epoll_pwait|epoll_pwait2 [ROUNDS]
 *   readiness lt  epoll_wait|epoll_pwait|epoll_pwait2|poll|ppoll|select|pselect [ROUNDS]
 *   readiness two        one fd in two (and three) epoll instances: MOD, DEL, close+reuse
 *   readiness oneshot    EPOLLONESHOT, edge- and level-triggered
 *   readiness et-writer [ROUNDS]   an EPOLLOUT|EPOLLET writer under an output rule
 *   readiness many       8 fds owed an edge at once, read with maxevents 1;
 *                        an epoll fd closed with edges owed and its number reused
 *
 * et/lt: ROUNDS times (default 2000) a batch of bytes is written, then the
 * reader waits and reads until EAGAIN, again and again until the batch is
 * read. An EAGAIN while the kernel still holds bytes (FIONREAD > 0) was
 * injected; the next wait must report the fd though nothing was written
 * since. Edge-triggered, the kernel has no edge left to give: that event is
 * the library's owed edge, and run.py requires some ("reported_after_
 * injection" > 0). Level-triggered and with poll/select the kernel reports it
 * by itself. Every epoll event must carry the epoll_data the program
 * registered (a pointer), never the library's key; a second registered fd
 * that is never written must never be reported; and once a batch is drained
 * for real, a wait with timeout 0 must report nothing (no spurious event).
 *
 * Waits use a 10 s timeout as a hang guard: running into it means a correct
 * program would have hung, and is reported as such.
 */
#include "stress.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>

#define GUARD_MS 10000
#define MAX_BATCH 4096
#define MAX_READ 512

enum wait_kind {
        W_EPOLL_WAIT,
        W_EPOLL_PWAIT,
        W_EPOLL_PWAIT2,
        W_POLL,
        W_PPOLL,
        W_SELECT,
        W_PSELECT
};
static const char *const wait_names[] = {"epoll_wait", "epoll_pwait", "epoll_pwait2", "poll",
                                         "ppoll",      "select",      "pselect"};

/* what a registration's epoll_data points to */
struct watched {
        int fd;
};

struct reader {
        enum wait_kind wait;
        bool edge;
        int epfd;
        struct watched data, idle; /* idle: registered, never written */
        int idle_fd;
};

static int epoll_wait_kind(enum wait_kind kind, int epfd, struct epoll_event *ev, int max,
                           int timeout_ms)
{
        sigset_t none;
        sigemptyset(&none);
        switch (kind) {
        case W_EPOLL_PWAIT:
                return epoll_pwait(epfd, ev, max, timeout_ms, &none);
        case W_EPOLL_PWAIT2: {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
                struct timespec t = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
                return epoll_pwait2(epfd, ev, max, &t, &none);
#else
                errno = ENOSYS;
                return -1;
#endif
        }
        default:
                return epoll_wait(epfd, ev, max, timeout_ms);
        }
}

/* Wait for the reader's fd. true: reported readable; false: timeout. */
static bool wait_readable(struct reader *r, int timeout_ms)
{
        struct timespec ts = {timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        struct pollfd p[2] = {{r->data.fd, POLLIN, 0}, {r->idle_fd, POLLIN, 0}};
        struct epoll_event ev[4];
        fd_set rs;
        int n;

        switch (r->wait) {
        case W_POLL:
        case W_PPOLL:
                n = r->wait == W_POLL ? poll(p, 2, timeout_ms) : ppoll(p, 2, &ts, NULL);
                CHECK_SYS(n >= 0);
                CHECK(!p[1].revents);
                return p[0].revents != 0;
        case W_SELECT:
        case W_PSELECT:
                FD_ZERO(&rs);
                FD_SET(r->data.fd, &rs);
                FD_SET(r->idle_fd, &rs);
                n = r->wait == W_SELECT ? select(FD_SETSIZE, &rs, NULL, NULL, &tv)
                                        : pselect(FD_SETSIZE, &rs, NULL, NULL, &ts, NULL);
                CHECK_SYS(n >= 0);
                CHECK(!FD_ISSET(r->idle_fd, &rs));
                return FD_ISSET(r->data.fd, &rs);
        default:
                n = epoll_wait_kind(r->wait, r->epfd, ev, 4, timeout_ms);
                CHECK_SYS(n >= 0);
                for (int i = 0; i < n; i++)
                        if (ev[i].data.ptr != &r->data)
                                die("%s returned epoll_data %p, registered %p (idle fd's: %p)",
                                    wait_names[r->wait], ev[i].data.ptr, (void *)&r->data,
                                    (void *)&r->idle);
                CHECK(n <= 1);
                return n == 1;
        }
}

static void write_all(int fd, const uint8_t *buf, size_t len)
{
        while (len) {
                ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EAGAIN)
                        continue; /* an injected output EAGAIN, if the rules have one */
                CHECK_SYS(n > 0);
                buf += n;
                len -= (size_t)n;
        }
}

static int reader_rounds(enum wait_kind wait, bool edge, long rounds)
{
        struct reader r = {.wait = wait, .edge = edge, .epfd = -1};
        int sv[2], idle[2];
        uint8_t batch[MAX_BATCH], buf[MAX_READ];
        uint64_t rng = 99, written = 0, received = 0;
        long waits = 0, injected_with_data = 0, reported_after = 0;

        nb_socketpair(sv);
        nb_socketpair(idle);
        r.data = (struct watched){sv[1]};
        r.idle = (struct watched){idle[1]};
        r.idle_fd = idle[1];
        if (wait <= W_EPOLL_PWAIT2) {
                struct epoll_event ev = {EPOLLIN | (edge ? EPOLLET : 0), {.ptr = &r.data}};
                CHECK_SYS((r.epfd = epoll_create1(EPOLL_CLOEXEC)) >= 0);
                CHECK_SYS(epoll_ctl(r.epfd, EPOLL_CTL_ADD, sv[1], &ev) == 0);
                ev.data.ptr = &r.idle;
                CHECK_SYS(epoll_ctl(r.epfd, EPOLL_CTL_ADD, idle[1], &ev) == 0);
                if (wait == W_EPOLL_PWAIT2 && epoll_wait_kind(wait, r.epfd, &ev, 1, 0) < 0 &&
                    errno == ENOSYS) {
                        printf("skip=epoll_pwait2 is not available here\n");
                        return 0;
                }
        }

        for (long round = 0; round < rounds; round++) {
                size_t len = 1 + rng_next(&rng) % MAX_BATCH;
                bool after_injection = false;

                stream_fill(batch, len, written, 5);
                write_all(sv[0], batch, len);
                written += len;
                for (;;) {
                        if (!wait_readable(&r, GUARD_MS))
                                die("%s%s: no event for fd %d in round %ld%s", wait_names[wait],
                                    edge ? " (EPOLLET)" : "", sv[1], round,
                                    after_injection ? ", after an injected EAGAIN with data left"
                                                    : "");
                        waits++;
                        /* nothing was written since that EAGAIN */
                        reported_after += after_injection;
                        for (;;) {
                                size_t want = 1 + rng_next(&rng) % MAX_READ;
                                ssize_t n = (round & 1) ? read(sv[1], buf, want)
                                                        : recv(sv[1], buf, want, 0);
                                if (n > 0) {
                                        size_t bad = stream_check(buf, (size_t)n, received, 5);
                                        if (bad < (size_t)n)
                                                die("byte %llu is wrong",
                                                    (unsigned long long)(received + bad));
                                        received += (uint64_t)n;
                                        continue;
                                }
                                CHECK_SYS(n < 0 && errno == EAGAIN);
                                break;
                        }
                        if (received == written) {
                                after_injection = false;
                                break;
                        }
                        injected_with_data++;
                        after_injection = true;
                }
                /* drained for real: no event is due, edge or level */
                if (wait_readable(&r, 0))
                        die("%s%s: an event for fd %d with nothing to read (round %ld)",
                            wait_names[wait], edge ? " (EPOLLET)" : "", sv[1], round);
        }
        printf("rounds=%ld\nbytes=%llu\nwaits=%ld\ninjected_with_data=%ld\n"
               "reported_after_injection=%ld\n",
               rounds, (unsigned long long)received, waits, injected_with_data, reported_after);
        return 0;
}

/* ---- an edge-triggered writer ---- */

#define ROUND_CAP (16 * 1024) /* far below the socket buffer: no real EAGAIN */

/* Does the kernel itself call fd writable? Asked with the system call, past
 * the library: a probe of the test, not a wait of the program. */
static bool kernel_writable(int fd)
{
        struct pollfd p = {fd, POLLOUT, 0};
        struct timespec zero = {0, 0};
        long r = syscall(SYS_ppoll, &p, 1, &zero, NULL, 8);
        CHECK_SYS(r >= 0);
        return p.revents & POLLOUT;
}

/* Read all that was written, checking it. */
static void drain_stream(int fd, uint64_t *received, uint64_t written)
{
        uint8_t buf[MAX_READ];
        while (*received < written) {
                ssize_t n = recv(fd, buf, sizeof buf, 0);
                if (n < 0 && errno == EAGAIN)
                        continue; /* an injected one, if the rules have input */
                CHECK_SYS(n > 0);
                CHECK(stream_check(buf, (size_t)n, *received, 11) == (size_t)n);
                *received += (uint64_t)n;
        }
}

/* Under an output rule: a writer registered EPOLLOUT|EPOLLET writes until
 * EAGAIN, then waits for its edge; each round writes at most ROUND_CAP
 * bytes, so every EAGAIN is injected. When the kernel still calls the
 * socket writable (an AF_UNIX socket is, while under a quarter of its
 * buffer is taken), no edge of its own is coming: nothing was read since
 * the last event, so the event that ends the wait can only be the library's
 * owed edge, and it must carry the writer's epoll_data. When the kernel
 * does not (a real EAGAIN could not happen yet, but poll would not say
 * writable either), the loop reads its peer first, as any loop serving both
 * ends would, and then an edge (the kernel's or the owed one) must come. */
static int et_writer(long rounds)
{
        struct watched writer;
        struct epoll_event ev = {EPOLLOUT | EPOLLET, {.ptr = &writer}};
        uint8_t buf[MAX_READ];
        uint64_t rng = 7, written = 0, received = 0;
        long eagain = 0, owed = 0, woken = 0;
        int sv[2], ep;

        nb_socketpair(sv);
        writer = (struct watched){sv[0]};
        CHECK_SYS((ep = epoll_create1(EPOLL_CLOEXEC)) >= 0);
        CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &ev) == 0);
        for (long round = 0; round < rounds; round++) {
                uint64_t round_end = written + ROUND_CAP;
                /* whatever edge the last drain made is not this round's */
                CHECK_SYS(epoll_wait(ep, &ev, 1, 0) >= 0);
                while (written < round_end) {
                        size_t len = 1 + rng_next(&rng) % MAX_READ;
                        bool only_owed;
                        ssize_t n;
                        if (len > round_end - written)
                                len = (size_t)(round_end - written);
                        stream_fill(buf, len, written, 11);
                        n = send(sv[0], buf, len, MSG_NOSIGNAL);
                        if (n > 0) {
                                written += (uint64_t)n;
                                continue;
                        }
                        CHECK_SYS(n < 0 && errno == EAGAIN);
                        eagain++;
                        only_owed = kernel_writable(sv[0]);
                        if (!only_owed)
                                drain_stream(sv[1], &received, written);
                        n = epoll_wait(ep, &ev, 1, GUARD_MS);
                        CHECK_SYS(n >= 0);
                        if (n == 0)
                                die("round %ld: no EPOLLOUT edge after an injected EAGAIN%s: the "
                                    "writer would hang",
                                    round,
                                    only_owed ? " on a socket the kernel calls writable" : "");
                        if (ev.data.ptr != &writer || !(ev.events & EPOLLOUT))
                                die("round %ld: event %#x with data %p, registered EPOLLOUT with "
                                    "%p",
                                    round, ev.events, ev.data.ptr, (void *)&writer);
                        woken++;
                        owed += only_owed;
                }
                drain_stream(sv[1], &received, written);
        }
        printf("rounds=%ld\nbytes=%llu\neagain=%ld\nwoken=%ld\nonly_owed=%ld\n", rounds,
               (unsigned long long)written, eagain, woken, owed);
        return 0;
}

/* ---- one fd, several epoll instances ---- */

/* 64 bytes for the reader: enough for several injections with data left. */
static void put(int wfd)
{
        static const uint8_t filler[64] = "0123456789abcdef0123456789abcdef"
                                          "0123456789abcdef0123456789abcdef";
        write_all(wfd, filler, sizeof filler);
}

/* Read one byte at a time until a read fails with EAGAIN while the kernel
 * still holds bytes: an injected EAGAIN that leaves data behind. Nothing is
 * written here: a write would make a real edge, and the events the callers
 * then expect must be the owed ones. */
static void inject_with_data(int rfd)
{
        uint8_t b;
        while (unread_bytes(rfd) >= 2) {
                ssize_t n = read(rfd, &b, 1);
                if (n < 0) {
                        CHECK_SYS(errno == EAGAIN);
                        return;
                }
                CHECK(n == 1);
        }
        die("fd %d: no read was injected before the data ran out: do the rules fail reads?", rfd);
}

/* Exactly one event, carrying want; or, want == 0, none (timeout 0). */
static void expect_event(int epfd, uint64_t want, const char *what)
{
        struct epoll_event ev[4];
        int n = epoll_wait(epfd, ev, 4, want ? GUARD_MS : 0);
        CHECK_SYS(n >= 0);
        if (!want && n)
                die("%s: epoll %d returned an event with data %#llx, expected none", what, epfd,
                    (unsigned long long)ev[0].data.u64);
        if (want && n != 1)
                die("%s: epoll %d returned %d events, expected one with data %#llx", what, epfd, n,
                    (unsigned long long)want);
        if (want && ev[0].data.u64 != want)
                die("%s: epoll %d returned data %#llx, expected %#llx", what, epfd,
                    (unsigned long long)ev[0].data.u64, (unsigned long long)want);
}

static void ctl(int epfd, int op, int fd, uint32_t events, uint64_t data)
{
        struct epoll_event ev = {events, {.u64 = data}};
        CHECK_SYS(epoll_ctl(epfd, op, fd, &ev) == 0);
}

static int two_instances(void)
{
        const uint32_t et = EPOLLIN | EPOLLET;
        const uint64_t d1 = 0xd1d1d1d100000001, d1b = 0xd1b0d1b000000002, d2 = 0xd2d2d2d200000003,
                       d3 = 0xd3d3d3d300000004, d4 = 0xd4d4d4d400000005, d5 = 0xd5d5d5d500000006;
        int ep1, ep2, ep3, sv[2], nv[2], fd;

        CHECK_SYS((ep1 = epoll_create1(EPOLL_CLOEXEC)) >= 0);
        CHECK_SYS((ep2 = epoll_create1(EPOLL_CLOEXEC)) >= 0);
        CHECK_SYS((ep3 = epoll_create1(EPOLL_CLOEXEC)) >= 0);
        nb_socketpair(sv);
        fd = sv[1];
        ctl(ep1, EPOLL_CTL_ADD, fd, et, d1);
        ctl(ep2, EPOLL_CTL_ADD, fd, et, d2);
        ctl(ep3, EPOLL_CTL_ADD, fd, et, d3);

        /* a real edge: each instance reports it with its own data */
        put(sv[0]);
        expect_event(ep1, d1, "first edge");
        expect_event(ep2, d2, "first edge");
        expect_event(ep3, d3, "first edge, third instance");

        /* an injected EAGAIN with data left: both instances owe an edge */
        inject_with_data(fd);
        expect_event(ep1, d1, "owed edge");
        expect_event(ep2, d2, "owed edge");
        expect_event(ep1, 0, "owed edge delivered once");
        expect_event(ep2, 0, "owed edge delivered once");

        /* MOD: new data from now on, on the kernel's events and ours */
        ctl(ep1, EPOLL_CTL_MOD, fd, et, d1b);
        expect_event(ep1, d1b, "after EPOLL_CTL_MOD (kernel re-check)");
        inject_with_data(fd);
        expect_event(ep1, d1b, "owed edge after EPOLL_CTL_MOD");
        expect_event(ep2, d2, "owed edge, other instance");

        /* DEL: that instance hears no more of the fd */
        CHECK_SYS(epoll_ctl(ep2, EPOLL_CTL_DEL, fd, NULL) == 0);
        inject_with_data(fd);
        expect_event(ep2, 0, "after EPOLL_CTL_DEL");
        expect_event(ep1, d1b, "owed edge, instance still registered");

        /* close with an edge owed, then the number reused by a new socket */
        inject_with_data(fd);
        close(sv[0]);
        close(sv[1]);
        expect_event(ep1, 0, "owed edge of a closed fd");
        expect_event(ep3, 0, "third instance, closed fd");
        nb_socketpair(nv);
        if (nv[0] == fd) { /* a socketpair's ends are alike: keep fd the reader */
                nv[0] = nv[1];
                nv[1] = fd;
        }
        if (nv[1] != fd)
                die("fd %d was not reused (new pair %d, %d)", fd, nv[0], nv[1]);
        put(nv[0]);
        expect_event(ep1, 0, "reused fd, not registered");
        expect_event(ep2, 0, "reused fd, not registered");
        inject_with_data(fd);
        expect_event(ep1, 0, "reused fd, not registered, after an injected EAGAIN");
        ctl(ep1, EPOLL_CTL_ADD, fd, et, d4);
        ctl(ep2, EPOLL_CTL_ADD, fd, et, d5);
        expect_event(ep1, d4, "reused fd registered again");
        expect_event(ep2, d5, "reused fd registered again");
        inject_with_data(fd);
        expect_event(ep1, d4, "owed edge of the reused fd");
        expect_event(ep2, d5, "owed edge of the reused fd");
        expect_event(ep3, 0, "third instance, reused fd never registered there");
        printf("checks=ok\n");
        return 0;
}

/* ---- many fds owed at once ---- */

#define MANY 8

/* Every fd of one instance owed an edge at once, read back one event per
 * epoll_wait (maxevents 1): each comes once, with its own data, and an fd
 * that also has a real edge is reported once, not twice. */
static int many(void)
{
        int ep, sv[MANY][2];
        bool seen[MANY] = {false};

        CHECK_SYS((ep = epoll_create1(EPOLL_CLOEXEC)) >= 0);
        for (int i = 0; i < MANY; i++) {
                nb_socketpair(sv[i]);
                ctl(ep, EPOLL_CTL_ADD, sv[i][1], EPOLLIN | EPOLLET, 0xa000 + (uint64_t)i);
                put(sv[i][0]);
        }
        for (int i = 0; i < MANY; i++) { /* the real edges, all of them */
                struct epoll_event ev;
                CHECK_SYS(epoll_wait(ep, &ev, 1, GUARD_MS) == 1);
                CHECK(ev.data.u64 >= 0xa000 && ev.data.u64 < 0xa000 + MANY);
                CHECK(!seen[ev.data.u64 - 0xa000]);
                seen[ev.data.u64 - 0xa000] = true;
        }
        expect_event(ep, 0, "all real edges taken");
        for (int i = 0; i < MANY; i++)
                inject_with_data(sv[i][1]);
        /* half of them get a real edge too */
        for (int i = 0; i < MANY; i += 2)
                write_all(sv[i][0], (const uint8_t *)"y", 1);
        memset(seen, 0, sizeof seen);
        for (int i = 0; i < MANY; i++) {
                struct epoll_event ev;
                int n = epoll_wait(ep, &ev, 1, GUARD_MS);
                CHECK_SYS(n >= 0);
                if (n == 0)
                        die("owed edge %d of %d never came", i + 1, MANY);
                if (ev.data.u64 < 0xa000 || ev.data.u64 >= 0xa000 + MANY)
                        die("event with data %#llx, registered 0xa000..0xa007",
                            (unsigned long long)ev.data.u64);
                if (seen[ev.data.u64 - 0xa000])
                        die("fd with data %#llx reported twice", (unsigned long long)ev.data.u64);
                seen[ev.data.u64 - 0xa000] = true;
        }
        expect_event(ep, 0, "every owed edge delivered once");

        /* the epoll fd itself closed with edges owed, its number reused */
        for (int i = 0; i < MANY; i++)
                inject_with_data(sv[i][1]);
        close(ep);
        CHECK_SYS(epoll_create1(EPOLL_CLOEXEC) == ep);
        expect_event(ep, 0, "a new epoll instance with the number of a closed one");
        printf("fds=%d\n", MANY);
        return 0;
}

/* ---- EPOLLONESHOT ---- */

static int oneshot(void)
{
        long rounds = 0;
        for (int edge = 0; edge < 2; edge++) {
                const uint32_t events = EPOLLIN | EPOLLONESHOT | (edge ? EPOLLET : 0);
                int ep, sv[2];
                CHECK_SYS((ep = epoll_create1(EPOLL_CLOEXEC)) >= 0);
                nb_socketpair(sv);
                ctl(ep, EPOLL_CTL_ADD, sv[1], events, 0x0e000000);
                for (uint64_t i = 1; i <= 20; i++, rounds++) {
                        put(sv[0]);
                        expect_event(ep, 0x0e000000 + i - 1, "oneshot armed");
                        /* disarmed now: an injected EAGAIN must not rearm it */
                        inject_with_data(sv[1]);
                        expect_event(ep, 0, "oneshot after an injected EAGAIN");
                        write_all(sv[0], (const uint8_t *)"more", 4);
                        expect_event(ep, 0, "oneshot, disarmed, new data");
                        /* the program rearms: the kernel reports the data */
                        ctl(ep, EPOLL_CTL_MOD, sv[1], events, 0x0e000000 + i);
                        expect_event(ep, 0x0e000000 + i, "oneshot rearmed");
                        ctl(ep, EPOLL_CTL_MOD, sv[1], events, 0x0e000000 + i);
                }
                close(sv[0]);
                close(sv[1]);
                close(ep);
        }
        printf("rounds=%ld\n", rounds);
        return 0;
}

int main(int argc, char **argv)
{
        const char *mode = argc > 1 ? argv[1] : "";

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (strcmp(mode, "two") == 0)
                return two_instances();
        if (strcmp(mode, "oneshot") == 0)
                return oneshot();
        if (strcmp(mode, "many") == 0)
                return many();
        if (strcmp(mode, "et-writer") == 0)
                return et_writer(arg_long(argc, argv, 2, 2000));
        if ((strcmp(mode, "et") == 0 || strcmp(mode, "lt") == 0) && argc > 2) {
                bool edge = mode[0] == 'e';
                for (int w = 0; w < (int)(sizeof wait_names / sizeof wait_names[0]); w++)
                        if (strcmp(argv[2], wait_names[w]) == 0 && (!edge || w <= W_EPOLL_PWAIT2))
                                return reader_rounds((enum wait_kind)w, edge,
                                                     arg_long(argc, argv, 3, 2000));
        }
        die("usage: readiness et|lt WAIT [ROUNDS] | et-writer [ROUNDS] | two | oneshot | many");
}
