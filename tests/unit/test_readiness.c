/* test_readiness.c - what poll and epoll report after an injected short
 * transfer (shim/readiness.c, SPEC 4): the edge owed to an edge-triggered
 * waiter, and the hang-up held back while bytes a short read left remain.
 *
 * The wrappers are not linked here: each test makes the real calls itself
 * and hands their results to readiness_* as the poll and epoll wrappers do,
 * and tells it of the injection as the read and write wrappers do.
 */
#include "wbtest.h"

#include "fdstate.h"
#include "readiness.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

static int sv[2], ep = -1;

static int setup(void **state)
{
        (void)state;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        fd_state_created(sv[0]);
        fd_state_created(sv[1]);
        ep = epoll_create1(EPOLL_CLOEXEC);
        assert_true(ep >= 0);
        fd_state_created(ep);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        for (int i = 0; i < 2; i++) {
                readiness_after_read(sv[i]); /* nothing left: marks go */
                close(sv[i]);
                fd_state_forget(sv[i]);
        }
        close(ep);
        fd_state_forget(ep);
        return 0;
}

/* poll one fd, then what the poll wrapper does with the result */
static short polled(int fd, short events)
{
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, 0);
        readiness_after_poll(&p, 1, r);
        return p.revents;
}

/* epoll_ctl and epoll_wait as the wrappers make them */
static void register_fd(int fd, uint32_t events)
{
        struct epoll_event ev = {.events = events, .data.u64 = 0xabc}, kernel;
        readiness_epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev, &kernel);
        int r = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &kernel);
        readiness_epoll_ctl_done(ep, EPOLL_CTL_ADD, fd, r);
        assert_int_equal(r, 0);
}

static int waited(struct epoll_event *got, int max)
{
        int r = epoll_wait(ep, got, max, 0);
        return readiness_epoll_done(ep, got, max, r);
}

static void put(int fd, size_t n)
{
        static const char junk[8192];
        assert_int_equal(write(fd, junk, n), (ssize_t)n);
}

static void take(int fd, size_t n)
{
        static char buf[8192];
        assert_int_equal(read(fd, buf, n), (ssize_t)n);
}

static void test_short_read_owes_edge(void **state)
{
        struct epoll_event got[4];
        (void)state;

        put(sv[1], 100);
        register_fd(sv[0], EPOLLIN | EPOLLET);
        assert_int_equal(waited(got, 4), 1); /* the registration's edge */
        take(sv[0], 1);
        assert_int_equal(waited(got, 4), 0); /* Linux: no new edge */
        readiness_short(sv[0], false, true);
        assert_true(readiness_epoll_owed(ep));
        assert_int_equal(waited(got, 4), 1);
        assert_int_equal(got[0].events, EPOLLIN);
        assert_int_equal(got[0].data.u64, 0xabc);
        assert_int_equal(waited(got, 4), 0); /* owed once */
        /* edge=none: nothing owed */
        take(sv[0], 1);
        readiness_short(sv[0], false, false);
        assert_false(readiness_epoll_owed(ep));
        assert_int_equal(waited(got, 4), 0);
}

static void test_short_write_owes_edge(void **state)
{
        struct epoll_event got[4];
        (void)state;

        register_fd(sv[1], EPOLLOUT | EPOLLET);
        assert_int_equal(waited(got, 4), 1);
        put(sv[1], 10);
        readiness_short(sv[1], true, true);
        assert_int_equal(waited(got, 4), 1);
        assert_int_equal(got[0].events, EPOLLOUT);
        /* an EPOLLIN registration is owed nothing for a write */
        put(sv[0], 10);
        register_fd(sv[0], EPOLLIN | EPOLLET);
        assert_int_equal(waited(got, 4), 1);
        readiness_short(sv[0], true, true);
        assert_int_equal(waited(got, 4), 0);
}

static void test_hangup_held_while_bytes_remain(void **state)
{
        (void)state;

        put(sv[1], 100);
        take(sv[0], 1);
        readiness_short(sv[0], false, false);
        assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
        assert_int_equal(polled(sv[0], POLLIN | POLLRDHUP), POLLIN);
        take(sv[0], 50);
        assert_int_equal(polled(sv[0], POLLIN | POLLRDHUP), POLLIN);
        take(sv[0], 49);
        assert_int_equal(polled(sv[0], POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
}

static void test_hangup_without_short_read_is_reported(void **state)
{
        (void)state;

        put(sv[1], 100);
        assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
        assert_int_equal(polled(sv[0], POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
        /* a short write marks nothing */
        readiness_short(sv[0], true, false);
        assert_int_equal(polled(sv[0], POLLIN | POLLRDHUP), POLLIN | POLLRDHUP);
}

static void test_hangup_held_from_epoll_then_owed(void **state)
{
        struct epoll_event got[4];
        (void)state;

        put(sv[1], 100);
        register_fd(sv[0], EPOLLIN | EPOLLRDHUP | EPOLLET);
        take(sv[0], 1);
        readiness_short(sv[0], false, false);
        assert_int_equal(shutdown(sv[1], SHUT_WR), 0);
        assert_int_equal(waited(got, 4), 1);
        assert_int_equal(got[0].events, EPOLLIN);
        take(sv[0], 99);
        readiness_after_read(sv[0]);
        /* its edge came while held back: owed now that the bytes are gone */
        assert_int_equal(waited(got, 4), 1);
        assert_int_equal(got[0].events, EPOLLIN | EPOLLRDHUP);
        assert_int_equal(waited(got, 4), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
            T(test_short_read_owes_edge),
            T(test_short_write_owes_edge),
            T(test_hangup_held_while_bytes_remain),
            T(test_hangup_without_short_read_is_reported),
            T(test_hangup_held_from_epoll_then_owed),
        };
        return cmocka_run_group_tests_name("readiness", tests, NULL, NULL);
}
