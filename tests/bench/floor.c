/* floor.c - libfloor.so: the cheapest preload that still chains to the next
 * definition, for `make bench` (not part of libwouldblock, not installed).
 *
 *   LD_PRELOAD=build/bench/libfloor.so [FLOOR_PAGES=K] build/bench/ping pipe N
 *
 * It exports what the ping calls (read, write, send, recv). Each does one
 * load and one indirect tail jump (`jmp *entry(%rip)`): whatever any
 * LD_PRELOAD shim costs at the very least, its code page and the page its
 * pointer lives on, between two system calls. On a machine whose kernel
 * empties the TLB on every system call (page-table isolation without PCID)
 * each distinct page is a TLB miss, so that is the floor a shim cannot go
 * under.
 *
 * With FLOOR_PAGES=K (0..FLOOR_PAGES_MAX, read once in the constructor) the
 * jump goes instead to a forwarder that calls the real function and, after
 * it returned, loads one byte from each of K pages of its own: K more
 * distinct pages between two system calls, which is what each extra page
 * touched costs. Its code page it shares with the exported functions, so
 * FLOOR_PAGES=0 (return through its own code, touch nothing) has the same 2
 * pages between two system calls as the tail jump: what is left of their
 * difference is the call and the return. A bad FLOOR_PAGES stops the
 * process (exit 2): a measurement that did not do what it says must not
 * pass for one that did.
 *
 * A call made before the constructor ran (another library's constructor)
 * goes through a resolver that looks the real function up first. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define FLOOR_PAGE 4096
#define FLOOR_PAGES_MAX 64

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*recv_fn)(int, void *, size_t, int);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);

/* The pages the touching forwarders load from: written once by the
 * constructor, so each is a page of its own and not the shared zero page. */
static _Alignas(FLOOR_PAGE) unsigned char touched[FLOOR_PAGES_MAX][FLOOR_PAGE];

static ssize_t resolve_read(int fd, void *buf, size_t n);
static ssize_t resolve_write(int fd, const void *buf, size_t n);
static ssize_t resolve_recv(int fd, void *buf, size_t n, int flags);
static ssize_t resolve_send(int fd, const void *buf, size_t n, int flags);

/* Everything a call reads, on one data page: per function the entry the
 * exported function jumps to (the real definition, the toucher, or the
 * resolver before the constructor ran) and the real definition. */
static struct {
        read_fn entry_read, real_read;
        write_fn entry_write, real_write;
        recv_fn entry_recv, real_recv;
        send_fn entry_send, real_send;
        unsigned touch_pages;
} hot = {
    .entry_read = resolve_read,
    .entry_write = resolve_write,
    .entry_recv = resolve_recv,
    .entry_send = resolve_send,
};

static void touch(unsigned k)
{
        for (unsigned i = 0; i < k; i++)
                (void)*(volatile unsigned char *)&touched[i][0];
}

/* dlsym's answer, or the end of the process: there is nothing to forward to. */
static void *next(const char *name)
{
        void *f = dlsym(RTLD_NEXT, name);
        if (!f) {
                fprintf(stderr, "libfloor: no next definition of %s\n", name);
                _exit(2);
        }
        return f;
}

/* Per function: the touching forwarder, the resolver, and the exported
 * function, a tail jump through its entry. */
#define FLOOR_FORWARD(name, params, args)                                                          \
        static ssize_t touch_##name params                                                         \
        {                                                                                          \
                unsigned k = hot.touch_pages;                                                      \
                ssize_t r = hot.real_##name args;                                                  \
                touch(k);                                                                          \
                return r;                                                                          \
        }                                                                                          \
        static ssize_t resolve_##name params                                                       \
        {                                                                                          \
                if (!hot.real_##name)                                                              \
                        hot.real_##name = (name##_fn)next(#name);                                  \
                return hot.real_##name args;                                                       \
        }                                                                                          \
        EXPORT ssize_t name params                                                                 \
        {                                                                                          \
                return hot.entry_##name args;                                                      \
        }

FLOOR_FORWARD(read, (int fd, void *buf, size_t n), (fd, buf, n))
FLOOR_FORWARD(write, (int fd, const void *buf, size_t n), (fd, buf, n))
FLOOR_FORWARD(recv, (int fd, void *buf, size_t n, int flags), (fd, buf, n, flags))
FLOOR_FORWARD(send, (int fd, const void *buf, size_t n, int flags), (fd, buf, n, flags))

/* FLOOR_PAGES, or -1 when it is not set (the tail jump). */
static int pages_from_env(void)
{
        const char *s = getenv("FLOOR_PAGES");
        char *end;
        unsigned long k;

        if (!s)
                return -1;
        k = strtoul(s, &end, 10);
        if (!*s || *end || s[0] == '-' || k > FLOOR_PAGES_MAX) {
                fprintf(stderr, "libfloor: FLOOR_PAGES=%s: want a number of pages 0..%d\n", s,
                        FLOOR_PAGES_MAX);
                _exit(2);
        }
        return (int)k;
}

__attribute__((constructor)) static void floor_init(void)
{
        int pages = pages_from_env();
        bool touching = pages >= 0;
        unsigned k = touching ? (unsigned)pages : 0;

        for (unsigned i = 0; i < k; i++)
                memset(touched[i], (int)i + 1, FLOOR_PAGE);
        hot.real_read = (read_fn)next("read");
        hot.real_write = (write_fn)next("write");
        hot.real_recv = (recv_fn)next("recv");
        hot.real_send = (send_fn)next("send");
        hot.touch_pages = k;
        hot.entry_read = touching ? touch_read : hot.real_read;
        hot.entry_write = touching ? touch_write : hot.real_write;
        hot.entry_recv = touching ? touch_recv : hot.real_recv;
        hot.entry_send = touching ? touch_send : hot.real_send;
}
