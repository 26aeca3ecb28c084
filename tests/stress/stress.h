/* stress.h - what the stress programs share: failing loudly, non-blocking
 * fds, a byte stream whose every byte can be checked, and a checksum.
 *
 * A program prints its results as "key=value" lines on stdout for run.py,
 * which compares them with the library's JSON report. Any check that fails
 * here prints "FAIL: ..." on stderr and exits 1: the program's own view of
 * its data (order, integrity, events) is judged here, the library's view of
 * its calls in run.py.
 */
#ifndef WB_STRESS_H
#define WB_STRESS_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

__attribute__((format(printf, 1, 2), noreturn)) static inline void die(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("FAIL: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        exit(1);
}

#define CHECK(cond) ((cond) ? (void)0 : die("%s:%d: %s", __FILE__, __LINE__, #cond))
/* a system call's result: errno is shown when it fails */
#define CHECK_SYS(cond)                                                                            \
        ((cond) ? (void)0 : die("%s:%d: %s: %s", __FILE__, __LINE__, #cond, strerror(errno)))

/* A count from argv[i], or def when absent. */
static inline long arg_long(int argc, char **argv, int i, long def)
{
        char *end;
        long v;
        if (i >= argc)
                return def;
        v = strtol(argv[i], &end, 10);
        if (*end || v < 0)
                die("bad count '%s'", argv[i]);
        return v;
}

/* A connected AF_UNIX stream pair, both ends non-blocking. */
static inline void nb_socketpair(int sv[2])
{
        CHECK_SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
}

static inline void nb_pipe(int p[2])
{
        CHECK_SYS(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
}

/* Bytes the kernel holds for a reader of fd: what tells an injected EAGAIN
 * (data was there) from a real one. */
static inline int unread_bytes(int fd)
{
        int n = 0;
        CHECK_SYS(ioctl(fd, FIONREAD, &n) == 0);
        return n;
}

/* Wait for events on one fd. The timeout is a hang guard only: running into
 * it means the program would have waited forever. */
static inline short wait_fd(int fd, short events, int guard_ms, const char *why)
{
        struct pollfd p = {fd, events, 0};
        int r;
        do
                r = poll(&p, 1, guard_ms);
        while (r < 0 && errno == EINTR);
        CHECK_SYS(r >= 0);
        if (r == 0)
                die("fd %d never became ready (%s): the program would hang", fd, why);
        return p.revents;
}

/* The byte at position pos of stream number salt: any byte lost, doubled or
 * moved shows as a mismatch at once. */
static inline uint8_t stream_byte(uint64_t pos, uint32_t salt)
{
        uint32_t x = (uint32_t)pos * 0x9e3779b1u + salt * 0x85ebca6bu;
        return (uint8_t)((x >> 24) ^ (x >> 11));
}

static inline void stream_fill(uint8_t *buf, size_t len, uint64_t pos, uint32_t salt)
{
        for (size_t i = 0; i < len; i++)
                buf[i] = stream_byte(pos + i, salt);
}

/* Index of the first byte of buf that is not the stream's, or len. */
static inline size_t stream_check(const uint8_t *buf, size_t len, uint64_t pos, uint32_t salt)
{
        for (size_t i = 0; i < len; i++)
                if (buf[i] != stream_byte(pos + i, salt))
                        return i;
        return len;
}

/* xorshift64*: chunk sizes and data that differ call by call */
static inline uint64_t rng_next(uint64_t *state)
{
        uint64_t x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        return x * 0x2545f4914f6cdd1dull;
}

/* FNV-1a, 64 bit, fed in pieces: the same bytes in the same order give the
 * same value however they were cut. */
#define FNV_OFFSET 0xcbf29ce484222325ull
static inline uint64_t fnv1a(uint64_t h, const uint8_t *buf, size_t len)
{
        for (size_t i = 0; i < len; i++)
                h = (h ^ buf[i]) * 0x100000001b3ull;
        return h;
}

static inline double now_seconds(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

#endif
