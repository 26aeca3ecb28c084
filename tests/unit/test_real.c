/* test_real.c - the real functions: bound once, and usable while binding.
 *
 * A wrapped call can arrive while real_bind is inside dlsym (dlsym may call
 * malloc, and a malloc may call write), or on another thread while one
 * binds: real_bind then answers false and each trampoline makes the system
 * call itself. These tests hold the table in that state and check that the
 * fallbacks do the work and set errno as libc would. Every entry of the
 * table is callable from the start: the first call through one binds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "real.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

/* wb_real.read before anything was bound: the function that binds */
static ssize_t (*first_read)(int, void *, size_t);

static void test_fallbacks_while_binding(void **state)
{
        int p[2], saved = atomic_load(&wb_real_state);
        char buf[4] = {0};
        struct iovec iov = {buf + 1, 2};
        (void)state;

        first_read = atomic_load(&wb_real.read);
        assert_int_equal(pipe2(p, O_NONBLOCK), 0);
        atomic_store(&wb_real_state, 1); /* a bind under way */
        assert_false(real_bind());       /* the caller must take the fallback */

        assert_int_equal(real_write(p[1], "ab", 2), 2);
        assert_int_equal(real_read(p[0], buf, 1), 1);
        assert_int_equal(real_readv(p[0], &iov, 1), 1);
        assert_memory_equal(buf, "ab", 2);
        errno = 0;
        assert_int_equal(real_read(p[0], buf, 1), -1);
        assert_int_equal(errno, EAGAIN); /* the kernel's answer, through syscall(2) */
        errno = 0;
        assert_int_equal(real_read(-1, buf, 1), -1);
        assert_int_equal(errno, EBADF);
        struct pollfd pfd = {p[1], POLLOUT, 0};
        assert_int_equal(real_poll(&pfd, 1, 0), 1);
        assert_int_equal(real_close(p[0]), 0);
        assert_int_equal(real_close(p[1]), 0);
        errno = 0;
        assert_int_equal(real_close(p[1]), -1);
        assert_int_equal(errno, EBADF);

        atomic_store(&wb_real_state, saved);
}

/* libc's own function: what an entry holds once bound */
#define LIBC(name) dlsym(RTLD_DEFAULT, #name)
#define ENTRY(name) ((void *)atomic_load(&wb_real.name))

static void test_first_call_binds(void **state)
{
        int p[2];
        char c = 0;
        (void)state;

        assert_int_equal(atomic_load(&wb_real_state), 0); /* nothing called yet */
        assert_ptr_not_equal(ENTRY(write), LIBC(write));
        assert_int_equal(pipe2(p, O_NONBLOCK), 0);
        assert_int_equal(real_write(p[1], "x", 1), 1); /* binds, then writes */
        assert_int_equal(atomic_load(&wb_real_state), 2);
        assert_ptr_equal(ENTRY(write), LIBC(write));
        assert_ptr_equal(ENTRY(read), LIBC(read));
        assert_int_equal(real_read(p[0], &c, 1), 1);
        assert_int_equal(c, 'x');
        errno = 0;
        assert_int_equal(real_read(p[0], &c, 1), -1);
        assert_int_equal(errno, EAGAIN);
        real_close(p[0]);
        real_close(p[1]);
}

static void test_bind_fills_the_table(void **state)
{
        (void)state;
        assert_true(real_bind());
        assert_int_equal(atomic_load(&wb_real_state), 2);
        assert_true(real_bind()); /* idempotent */
        /* every function glibc 2.34+ has is bound (none take the fallback) */
        assert_ptr_equal(ENTRY(read), LIBC(read));
        assert_ptr_equal(ENTRY(recvmmsg), LIBC(recvmmsg));
        assert_ptr_equal(ENTRY(__recvfrom_chk), LIBC(__recvfrom_chk));
        assert_ptr_equal(ENTRY(epoll_pwait2), LIBC(epoll_pwait2));
        assert_ptr_equal(ENTRY(close_range), LIBC(close_range));
        assert_ptr_equal(ENTRY(posix_spawnp), LIBC(posix_spawnp));
        assert_non_null(wb_real.fcntl64);
        assert_ptr_not_equal((void *)wb_real.read, (void *)real_read);
}

/* An entry the next object has no function for keeps its first value: once
 * bound, that takes the fallback (musl has no __read_chk, say). */
static void test_missing_function_takes_the_fallback(void **state)
{
        int p[2];
        char c = 0;
        (void)state;

        assert_true(real_bind());
        assert_int_equal(pipe2(p, O_NONBLOCK), 0);
        atomic_store(&wb_real.read, first_read); /* as if dlsym had found none */
        assert_int_equal(real_write(p[1], "y", 1), 1);
        assert_int_equal(real_read(p[0], &c, 1), 1);
        assert_int_equal(c, 'y');
        errno = 0;
        assert_int_equal(real_read(p[0], &c, 1), -1);
        assert_int_equal(errno, EAGAIN); /* the kernel's answer, through syscall(2) */
        atomic_store(&wb_real.read, (ssize_t(*)(int, void *, size_t))LIBC(read));
        real_close(p[0]);
        real_close(p[1]);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_fallbacks_while_binding),
            cmocka_unit_test(test_first_call_binds),
            cmocka_unit_test(test_bind_fills_the_table),
            cmocka_unit_test(test_missing_function_takes_the_fallback),
        };
        return cmocka_run_group_tests_name("real", tests, NULL, NULL);
}
