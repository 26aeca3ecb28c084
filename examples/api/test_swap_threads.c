/* test_swap_threads.c - SPEC §7: "Swapping rules while other threads are
 * inside wrapped calls is safe."
 *
 * Four threads each talk to themselves over a non-blocking socketpair:
 * write a batch of numbered lines (write, handling EAGAIN and short
 * counts), read them back with mylib's line_read (waiting with poll on
 * LINE_AGAIN), and check every line. Meanwhile the main thread replaces the
 * active rules 10,000 times (wouldblock_set_rules, wouldblock_use_scenario,
 * now and then pause/resume): would-blocks, short counts, until=poll, no
 * rules at all. Every line must arrive intact and in order, nothing may
 * crash or hang, and every swap must succeed.
 *
 * Built and linked like test_mylib.c (see there).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mylib.h"
#include "wouldblock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define N_THREADS 4
#define SWAPS 10000
#define BATCH 4             /* lines written before reading back: bytes in flight */
#define HANG_GUARD_MS 10000 /* a poll that long means a thread is stuck */

/* What the main thread swaps between; NULL marks a scenario name. */
static const struct {
        const char *rules, *scenario;
} sets[] = {
    {"input when=1+2", NULL},
    {"output short=3", NULL},
    {"input short=1 prob=0.5; output when=2+2", NULL},
    {"", NULL},
    {"input,output prob=0.3", NULL},
    {"input short=2; output short=5 prob=0.5", NULL},
    {"output when=1+3 inflight=any", NULL},
    {NULL, "alternate"},
    {NULL, "slow-peer"},
    {NULL, "first-call"},
    {NULL, "everything"},
};

struct worker {
        pthread_t thread;
        int id;
        atomic_ulong lines; /* checked so far */
        char error[256];    /* "" while all is well (cmocka asserts are not thread-safe) */
};

static atomic_bool stop;

static int wait_for(int fd, short events)
{
        struct pollfd pfd = {.fd = fd, .events = events};
        int n;
        do
                n = poll(&pfd, 1, HANG_GUARD_MS);
        while (n < 0 && errno == EINTR);
        return n == 1 ? 0 : -1;
}

static int send_all(int fd, const char *buf, size_t len)
{
        size_t off = 0;
        while (off < len) {
                ssize_t n = write(fd, buf + off, len - off);
                if (n > 0)
                        off += (size_t)n;
                else if (n < 0 && errno == EINTR)
                        continue;
                else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        if (wait_for(fd, POLLOUT))
                                return -1;
                } else
                        return -1;
        }
        return 0;
}

static void *work(void *arg)
{
        struct worker *w = arg;
        struct line_reader reader;
        char want[64], got[64], batch[BATCH * 64];
        int sv[2];
        unsigned long seq = 0;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)) {
                snprintf(w->error, sizeof w->error, "socketpair: %s", strerror(errno));
                return NULL;
        }
        line_reader_init(&reader);
        while (!atomic_load(&stop)) {
                size_t len = 0;
                for (int i = 0; i < BATCH; i++)
                        len += (size_t)snprintf(batch + len, sizeof batch - len,
                                                "thread %d line %lu\n", w->id, seq + (unsigned)i);
                if (send_all(sv[1], batch, len)) {
                        snprintf(w->error, sizeof w->error, "write: %s", strerror(errno));
                        break;
                }
                for (int i = 0; i < BATCH; i++, seq++) {
                        enum line_status st;
                        while ((st = line_read(&reader, sv[0], got, sizeof got)) == LINE_AGAIN)
                                if (wait_for(sv[0], POLLIN)) {
                                        snprintf(w->error, sizeof w->error,
                                                 "no line %lu after %d ms", seq, HANG_GUARD_MS);
                                        goto out;
                                }
                        snprintf(want, sizeof want, "thread %d line %lu", w->id, seq);
                        if (st != LINE_READY || strcmp(got, want) != 0) {
                                snprintf(w->error, sizeof w->error,
                                         "line %lu: status %d, \"%s\", want \"%s\"", seq, st,
                                         st == LINE_READY ? got : "", want);
                                goto out;
                        }
                        atomic_fetch_add(&w->lines, 1);
                }
        }
out:
        close(sv[0]);
        close(sv[1]);
        return NULL;
}

static long rss_kib(void)
{
        long pages = 0, rss = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (f) {
                if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
                        rss = 0;
                fclose(f);
        }
        return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_swap_rules_under_traffic(void **state)
{
        (void)state;
        struct worker workers[N_THREADS];
        unsigned long during = 0, total = 0, before_swaps[N_THREADS];
        unsigned long injected = wouldblock_injected(NULL);
        long rss_before;
        bool paused = false;

        atomic_store(&stop, false);
        for (int i = 0; i < N_THREADS; i++) {
                memset(&workers[i], 0, sizeof workers[i]);
                workers[i].id = i;
                assert_int_equal(pthread_create(&workers[i].thread, NULL, work, &workers[i]), 0);
        }
        /* every thread busy before the first swap, so the swaps meet traffic */
        for (int i = 0; i < N_THREADS; i++)
                while (atomic_load(&workers[i].lines) == 0 && !workers[i].error[0])
                        sched_yield();
        for (int i = 0; i < N_THREADS; i++)
                before_swaps[i] = atomic_load(&workers[i].lines);

        rss_before = rss_kib();
        for (int s = 0; s < SWAPS; s++) {
                size_t k = (size_t)s % (sizeof sets / sizeof sets[0]);
                int r = sets[k].scenario ? wouldblock_use_scenario(sets[k].scenario)
                                         : wouldblock_set_rules(sets[k].rules);
                if (r != 0)
                        fail_msg("swap %d to \"%s\": %s", s,
                                 sets[k].scenario ? sets[k].scenario : sets[k].rules,
                                 wouldblock_last_error());
                if (s % 97 == 0) {
                        paused = !paused;
                        if (paused)
                                wouldblock_pause();
                        else
                                wouldblock_resume();
                }
        }
        long rss_after = rss_kib();
        for (int i = 0; i < N_THREADS; i++)
                during += atomic_load(&workers[i].lines) - before_swaps[i];

        /* the workers finish their batch with the last rules still active */
        atomic_store(&stop, true);
        for (int i = 0; i < N_THREADS; i++)
                assert_int_equal(pthread_join(workers[i].thread, NULL), 0);
        wouldblock_resume();
        assert_int_equal(wouldblock_set_rules(NULL), 0);

        for (int i = 0; i < N_THREADS; i++) {
                if (workers[i].error[0])
                        fail_msg("thread %d: %s", i, workers[i].error);
                total += atomic_load(&workers[i].lines);
        }
        printf("# %d swaps; %lu lines checked, %lu of them during the swaps; %lu injections; "
               "RSS %ld -> %ld KiB\n",
               SWAPS, total, during, wouldblock_injected(NULL) - injected, rss_before, rss_after);
        assert_true(total >= N_THREADS);
        /* the rules did act on the traffic (a swap test with no injection
         * would prove nothing) */
        assert_true(wouldblock_injected(NULL) > injected);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_swap_rules_under_traffic),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
