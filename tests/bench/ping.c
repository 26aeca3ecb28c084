/* ping.c - the program `make bench` times, with and without the preload.
 *
 *   ping MODE ITERATIONS [--no-pin] [--paired]
 *
 * MODE:
 *   pipe        write 1 byte into a non-blocking pipe, read it back (one round trip)
 *   socket      send 1 byte on a non-blocking AF_UNIX socketpair, recv it on the other end
 *   read-empty  read() an empty non-blocking pipe: every call fails with EAGAIN
 *   recv-empty  recv() an empty non-blocking socketpair: every call fails with EAGAIN
 *   rss         a short pipe ping that waits with poll() on EAGAIN (it runs under
 *               injecting scenarios), then the process's resident memory
 *
 * One thread does both ends, so a round trip is two system calls and no
 * context switch: what is timed is the cost of the calls themselves, which
 * is what the preload adds to. Any result other than the expected one (a
 * byte that is not the one sent, a short count, an error where data was
 * due, data where EAGAIN was due) is a broken measurement: exit status 2.
 *
 * --paired (pipe and socket): in one process, blocks of PAIR_BLOCK round
 * trips through the program's own calls (the PLT: whatever preload is
 * there) alternate with blocks through libc's own definitions, found past
 * any preload; ITERATIONS round trips each way. Noise from the host (on a
 * shared VM, runs of the same program differ by 10% and more) hits both
 * sides of a pair alike, so the preload's cost stands out of it. Adds
 *   paired=1 direct_ns_per_iter pair_ratio
 * (ns_per_iter and direct_ns_per_iter: the medians of the blocks; pair_ratio:
 * the median of each pair's ratio), and calls counts only the calls through
 * the PLT, the ones a preload sees.
 *
 * Prints one line of key=value pairs for tests/bench/run.py:
 *   mode iterations ns_per_iter cpu_ns_per_iter calls wouldblock_mapped fiu_mapped
 *   floor_mapped traced
 * ns_per_iter is wall-clock time (CLOCK_MONOTONIC) around the timed loop;
 * cpu_ns_per_iter is this process's CPU time (user + system) over the same
 * loop, which leaves out the time other programs held the CPU: on a shared
 * machine it is the steadier figure (but not for a traced process, whose
 * tracer's time it does not see). calls: the wrapped calls made in all,
 * warm-up included, which the armed configuration's report must have
 * counted. For rss:
 *   mode vm_rss_kib rss_anon_kib rss_file_kib wouldblock_mapped fiu_mapped floor_mapped
 *   traced
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sched_getcpu, pipe2 */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

#define WARMUP_MAX 100000ul
#define RETRY_MAX 100    /* would-blocks in a row on one byte before giving up */
#define PAIR_BLOCK 500ul /* round trips in a block of --paired */

static _Noreturn void broken(const char *what, long i, long ret, int err)
{
        fprintf(stderr, "ping: broken measurement: %s at iteration %ld (returned %ld, %s)\n", what,
                i, ret, ret < 0 ? strerror(err) : "no error");
        exit(2);
}

static _Noreturn void die(const char *what)
{
        fprintf(stderr, "ping: %s: %s\n", what, strerror(errno));
        exit(1);
}

static void open_pair(bool on_socket, int fds[2])
{
        if (on_socket ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0
                      : pipe2(fds, O_NONBLOCK) != 0)
                die(on_socket ? "socketpair" : "pipe2");
}

/* n round trips of one byte from fds[1] to fds[0]; each byte differs from
 * the one before, so a stale or lost byte is seen. */
static void ping(bool on_socket, const int fds[2], unsigned long n)
{
        for (unsigned long i = 0; i < n; i++) {
                unsigned char out = (unsigned char)(i * 7 + 1), in = 0;
                long w = on_socket ? send(fds[1], &out, 1, 0) : write(fds[1], &out, 1);
                if (w != 1)
                        broken(on_socket ? "send" : "write", (long)i, w, errno);
                long r = on_socket ? recv(fds[0], &in, 1, 0) : read(fds[0], &in, 1);
                if (r != 1)
                        broken(on_socket ? "recv" : "read", (long)i, r, errno);
                if (in != out)
                        broken("wrong byte received", (long)i, r, 0);
        }
}

/* libc's own definitions of the ping's calls, for --paired: the object that
 * defines getpid (which no preload here wraps), asked for them by name. */
struct direct {
        ssize_t (*write)(int, const void *, size_t);
        ssize_t (*read)(int, void *, size_t);
        ssize_t (*send)(int, const void *, size_t, int);
        ssize_t (*recv)(int, void *, size_t, int);
};

static struct direct find_direct(void)
{
        Dl_info info;
        void *libc = NULL;
        struct direct d = {0};

        if (dladdr((void *)getpid, &info) && info.dli_fname)
                libc = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
        if (libc) {
                d.write = (ssize_t(*)(int, const void *, size_t))dlsym(libc, "write");
                d.read = (ssize_t(*)(int, void *, size_t))dlsym(libc, "read");
                d.send = (ssize_t(*)(int, const void *, size_t, int))dlsym(libc, "send");
                d.recv = (ssize_t(*)(int, void *, size_t, int))dlsym(libc, "recv");
        }
        if (!d.write || !d.read || !d.send || !d.recv) {
                fprintf(stderr, "ping: libc's own read/write/send/recv not found: %s\n", dlerror());
                exit(1);
        }
        return d;
}

/* ping() through libc's own definitions: the same loop, the same checks,
 * no preload on the way. */
static void ping_direct(const struct direct *d, bool on_socket, const int fds[2], unsigned long n)
{
        for (unsigned long i = 0; i < n; i++) {
                unsigned char out = (unsigned char)(i * 7 + 1), in = 0;
                long w = on_socket ? d->send(fds[1], &out, 1, 0) : d->write(fds[1], &out, 1);
                if (w != 1)
                        broken(on_socket ? "send (direct)" : "write (direct)", (long)i, w, errno);
                long r = on_socket ? d->recv(fds[0], &in, 1, 0) : d->read(fds[0], &in, 1);
                if (r != 1)
                        broken(on_socket ? "recv (direct)" : "read (direct)", (long)i, r, errno);
                if (in != out)
                        broken("wrong byte received", (long)i, r, 0);
        }
}

static int by_value(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

static double median(double *v, unsigned long n)
{
        qsort(v, n, sizeof *v, by_value);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* --paired: blocks through the PLT and straight into libc, alternating
 * which goes first. Prints the fields before print_environment's. */
static void ping_paired(bool on_socket, const int fds[2], unsigned long n, unsigned long warm)
{
        struct direct d = find_direct();
        unsigned long block = n < PAIR_BLOCK ? n : PAIR_BLOCK, blocks = n / block;
        unsigned long warm_blocks = (warm + block - 1) / block;
        double *plt = calloc(blocks, sizeof *plt), *direct = calloc(blocks, sizeof *direct);
        double *ratio = calloc(blocks, sizeof *ratio);
        uint64_t cpu0, cpu1;

        if (!plt || !direct || !ratio)
                die("calloc");
        ping(on_socket, fds, warm_blocks * block);
        ping_direct(&d, on_socket, fds, warm_blocks * block);
        cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        for (unsigned long b = 0; b < blocks; b++) {
                for (int side = 0; side < 2; side++) {
                        bool through_libc = (side == 0) == (b % 2 == 0);
                        uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
                        if (through_libc)
                                ping_direct(&d, on_socket, fds, block);
                        else
                                ping(on_socket, fds, block);
                        double ns = (double)(clock_ns(CLOCK_MONOTONIC) - t0) / (double)block;
                        *(through_libc ? &direct[b] : &plt[b]) = ns;
                }
                ratio[b] = plt[b] / direct[b];
        }
        cpu1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        printf("mode=%s iterations=%lu ns_per_iter=%.3f cpu_ns_per_iter=%.3f calls=%lu paired=1 "
               "direct_ns_per_iter=%.3f pair_ratio=%.5f",
               on_socket ? "socket" : "pipe", blocks * block, median(plt, blocks),
               (double)(cpu1 - cpu0) / (double)(2 * blocks * block),
               (warm_blocks + blocks) * block * 2, median(direct, blocks), median(ratio, blocks));
        free(plt);
        free(direct);
        free(ratio);
}

/* Move one byte with fn (read or write), waiting for events on EAGAIN as
 * an event loop does. */
static void move_byte(ssize_t (*fn)(int, void *, size_t), int fd, short events, void *byte,
                      unsigned long i)
{
        for (int tries = 0; tries < RETRY_MAX; tries++) {
                long r = fn(fd, byte, 1);
                if (r == 1)
                        return;
                if (r != -1 || errno != EAGAIN)
                        broken(events == POLLIN ? "read" : "write", (long)i, r, errno);
                struct pollfd p = {.fd = fd, .events = events};
                if (poll(&p, 1, 1000) != 1)
                        broken("poll found no event", (long)i, -1, errno);
        }
        broken("one byte would-blocked too often", (long)i, -1, EAGAIN);
}

static ssize_t write_byte(int fd, void *buf, size_t len)
{
        return write(fd, buf, len);
}

/* A ping that survives injected would-blocks and short counts. */
static void ping_tolerant(const int fds[2], unsigned long n)
{
        for (unsigned long i = 0; i < n; i++) {
                unsigned char out = (unsigned char)(i * 7 + 1), in = 0;
                move_byte(write_byte, fds[1], POLLOUT, &out, i);
                move_byte(read, fds[0], POLLIN, &in, i);
                if (in != out)
                        broken("wrong byte received", (long)i, 1, 0);
        }
}

/* n calls on an empty fd, each of which must fail with EAGAIN. */
static void drain_empty(bool on_socket, int fd, unsigned long n)
{
        unsigned char in;
        for (unsigned long i = 0; i < n; i++) {
                long r = on_socket ? recv(fd, &in, 1, 0) : read(fd, &in, 1);
                if (r != -1 || errno != EAGAIN)
                        broken(on_socket ? "recv of an empty socket" : "read of an empty pipe",
                               (long)i, r, errno);
        }
}

/* Which preloads are really in this process, and is it traced? run.py
 * checks these, so a preload that failed to load cannot pass for fast. */
static void print_environment(void)
{
        char line[4096];
        bool wouldblock = false, fiu = false, floor = false;
        long tracer = 0;
        FILE *f = fopen("/proc/self/maps", "r");

        while (f && fgets(line, sizeof line, f)) {
                wouldblock |= strstr(line, "/libwouldblock.so") != NULL;
                fiu |= strstr(line, "/fiu_posix_preload.so") != NULL;
                floor |= strstr(line, "/libfloor.so") != NULL; /* tests/bench/floor.c */
        }
        if (f)
                fclose(f);
        f = fopen("/proc/self/status", "r");
        while (f && fgets(line, sizeof line, f))
                if (strncmp(line, "TracerPid:", 10) == 0)
                        tracer = strtol(line + 10, NULL, 10);
        if (f)
                fclose(f);
        printf(" wouldblock_mapped=%d fiu_mapped=%d floor_mapped=%d traced=%d\n", wouldblock, fiu,
               floor, tracer != 0);
}

static long status_kib(const char *key)
{
        char line[256];
        size_t len = strlen(key);
        long kib = -1;
        FILE *f = fopen("/proc/self/status", "r");

        while (f && fgets(line, sizeof line, f))
                if (strncmp(line, key, len) == 0 && line[len] == ':')
                        kib = strtol(line + len + 1, NULL, 10);
        if (f)
                fclose(f);
        return kib;
}

int main(int argc, char **argv)
{
        const char *mode = argc > 1 ? argv[1] : "";
        unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : 0, warm = n / 10;
        bool on_socket = strcmp(mode, "socket") == 0 || strcmp(mode, "recv-empty") == 0;
        bool empty = strcmp(mode, "read-empty") == 0 || strcmp(mode, "recv-empty") == 0;
        unsigned long calls_per_iter = empty ? 1 : 2;
        bool pin = true, paired = false, bad_flag = false;
        int fds[2];
        uint64_t t0, t1, cpu0, cpu1;

        for (int i = 3; i < argc; i++) {
                if (strcmp(argv[i], "--no-pin") == 0)
                        pin = false;
                else if (strcmp(argv[i], "--paired") == 0)
                        paired = true;
                else
                        bad_flag = true;
        }
        if (!(on_socket || empty || strcmp(mode, "pipe") == 0 || strcmp(mode, "rss") == 0) ||
            (n == 0 && strcmp(mode, "rss") != 0) || bad_flag ||
            (paired &&
             (empty || strcmp(mode, "rss") == 0 || n % (n < PAIR_BLOCK ? n : PAIR_BLOCK) != 0))) {
                fprintf(stderr,
                        "usage: ping pipe|socket|read-empty|recv-empty|rss ITERATIONS "
                        "[--no-pin] [--paired]\n"
                        "  --paired: pipe or socket, ITERATIONS below %lu or a multiple "
                        "of it\n",
                        PAIR_BLOCK);
                return 1;
        }
        if (pin)
                pin_here();
        if (warm > WARMUP_MAX)
                warm = WARMUP_MAX;
        open_pair(on_socket, fds);

        if (strcmp(mode, "rss") == 0) {
                /* touch what a program's calls touch, then measure */
                ping_tolerant(fds, n ? n : 1000);
                printf("mode=rss vm_rss_kib=%ld rss_anon_kib=%ld rss_file_kib=%ld",
                       status_kib("VmRSS"), status_kib("RssAnon"), status_kib("RssFile"));
                print_environment();
                return 0;
        }

        if (paired) {
                ping_paired(on_socket, fds, n, warm);
                print_environment();
                return 0;
        }
        if (empty) {
                drain_empty(on_socket, fds[0], warm);
                cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
                t0 = clock_ns(CLOCK_MONOTONIC);
                drain_empty(on_socket, fds[0], n);
                t1 = clock_ns(CLOCK_MONOTONIC);
                cpu1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        } else {
                ping(on_socket, fds, warm);
                cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
                t0 = clock_ns(CLOCK_MONOTONIC);
                ping(on_socket, fds, n);
                t1 = clock_ns(CLOCK_MONOTONIC);
                cpu1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
        }
        printf("mode=%s iterations=%lu ns_per_iter=%.3f cpu_ns_per_iter=%.3f calls=%lu", mode, n,
               (double)(t1 - t0) / (double)n, (double)(cpu1 - cpu0) / (double)n,
               (warm + n) * calls_per_iter);
        print_environment();
        return 0;
}
