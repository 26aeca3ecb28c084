/* test_counter.c - per-thread counter shards (counter.h) in the status
 * (status.h): exact totals from more threads than there are shards, a
 * shard given back when its thread ends, and the reader's sum; the row of
 * call counts report_seen keeps per thread (report.h). */
#include "wbtest.h"

#include "counter.h"
#include "fdstate.h"
#include "report.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define THREADS (WB_SHARDS + 36) /* more alive at once than there are own shards */
#define ADDS 20000

static pthread_barrier_t all_alive;

static void *report_one_write(void *arg)
{
        report_seen(WB_WRITE);
        *(unsigned *)arg = counter_shard();
        return NULL;
}

/* Runs first, while the process has one thread: its counts go to the shard
 * kept for the only thread, on the status's first page with the near fds'
 * spin words (a passed-through call touches that page alone after its system
 * call); once a second thread exists every thread counts in its own, and the
 * sums take both. */
static void test_one_thread_counts_on_the_first_page(void **state)
{
        unsigned other = WB_SHARD_SINGLE;
        pthread_t t;
        (void)state;

        if (!counter_single_threaded()) {
                print_message(
                    "# skip: this libc says no process is single-threaded "
                    "(no __libc_single_threaded: musl); every thread has its own shard\n");
                skip();
        }
        WB_STATUS_ZERO(wb_status, calls_seen[WB_WRITE]);
        assert_int_equal(counter_shard(), WB_SHARD_SINGLE);
        assert_int_equal(status_row(), offsetof(struct wb_status, single));
        report_seen(WB_WRITE);
        assert_int_equal(atomic_load(&wb_status->single.calls_seen[WB_WRITE]), 1);
        assert_true((char *)&wb_status->single.calls_seen[WB_CALL_COUNT - 1] - (char *)wb_status <
                    4096);
        assert_true((char *)&wb_status->fd_spin_near[WB_SPIN_NEAR - 1] - (char *)wb_status < 4096);
        assert_ptr_equal(fd_state_spin_word(wb_status, 3), &wb_status->fd_spin_near[3]);

        assert_int_equal(pthread_create(&t, NULL, report_one_write, &other), 0);
        pthread_join(t, NULL);
        assert_true(other < WB_SHARDS);
        assert_false(counter_single_threaded()); /* glibc: never back */
        assert_int_not_equal(counter_shard(), WB_SHARD_SINGLE);
        report_seen(WB_WRITE);
        assert_int_equal(atomic_load(&wb_status->single.calls_seen[WB_WRITE]), 1);
        assert_int_equal(WB_STATUS_SUM(wb_status, calls_seen[WB_WRITE]), 3);
}
static unsigned shard_of[THREADS];

static void *adder(void *arg)
{
        unsigned me = (unsigned)(uintptr_t)arg, s = counter_shard();

        shard_of[me] = s;
        pthread_barrier_wait(&all_alive); /* nobody ends (and gives back) before all claimed */
        for (int i = 0; i < ADDS; i++)
                counter_bump(&wb_status->shard[s].calls_seen[WB_READ], s, 1);
        return NULL;
}

static void *shard_only(void *arg)
{
        *(unsigned *)arg = counter_shard();
        return NULL;
}

static void test_totals_exact_beyond_the_shards(void **state)
{
        pthread_t t[THREADS];
        bool owned[WB_SHARDS] = {false};
        unsigned shared = 0, later;
        (void)state;

        WB_STATUS_ZERO(wb_status, calls_seen[WB_READ]);
        pthread_barrier_init(&all_alive, NULL, THREADS);
        for (unsigned i = 0; i < THREADS; i++)
                assert_int_equal(pthread_create(&t[i], NULL, adder, (void *)(uintptr_t)i), 0);
        for (unsigned i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        pthread_barrier_destroy(&all_alive);

        /* every own shard had one owner; the threads beyond shared the last */
        for (unsigned i = 0; i < THREADS; i++) {
                if (shard_of[i] == WB_SHARD_SHARED) {
                        shared++;
                        continue;
                }
                assert_true(shard_of[i] < WB_SHARDS);
                assert_false(owned[shard_of[i]]);
                owned[shard_of[i]] = true;
        }
        assert_true(shared >= THREADS - WB_SHARDS);
        assert_int_equal(WB_STATUS_SUM(wb_status, calls_seen[WB_READ]), (uint64_t)THREADS * ADDS);

        /* the threads ended: their shards are free for the next one */
        pthread_create(&t[0], NULL, shard_only, &later);
        pthread_join(t[0], NULL);
        assert_true(later < WB_SHARDS);
}

static void test_spin_is_the_longest_of_the_shards(void **state)
{
        (void)state;
        WB_STATUS_ZERO(wb_status, spin);
        counter_raise(&wb_status->shard[3].spin, 3, 7ull << 32 | 5 << 8 | WB_READ);
        counter_raise(&wb_status->shard[9].spin, 9, 12ull << 32 | 6 << 8 | WB_WRITE);
        counter_raise(&wb_status->shard[9].spin, 9, 4ull << 32 | 7 << 8 | WB_RECV); /* shorter */
        assert_int_equal(status_spin(wb_status), 12ull << 32 | 6 << 8 | WB_WRITE);
        WB_STATUS_ZERO(wb_status, spin);
}

static uintptr_t row_offset(unsigned s)
{
        return (uintptr_t)((char *)wb_status->shard[s].calls_seen - (char *)wb_status);
}

struct seen_run {
        unsigned shard;         /* the thread's */
        uintptr_t row;          /* wb_shard_row after its first count */
        uintptr_t row_read;     /* what counter_row read then (through the kept offset) */
        int err;                /* errno after its first count */
        uintptr_t row_at_death; /* wb_shard_row in a destructor after the library's */
};
static pthread_key_t later_key;

/* A destructor of a key made after the library's: the thread's shard was
 * given back, and the kept row with it; a count here still counts. */
static void counts_at_death(void *arg)
{
        ((struct seen_run *)arg)->row_at_death = wb_shard_row;
        report_seen(WB_WRITE);
}

static void *seen_thread(void *arg)
{
        struct seen_run *r = arg;

        pthread_setspecific(later_key, r);
        errno = EAGAIN;
        report_seen(WB_WRITE); /* the first: picks the shard, keeps the row */
        r->err = errno;
        r->row = wb_shard_row;
        r->row_read = counter_row();
        r->shard = counter_shard();
        for (int i = 1; i < ADDS; i++)
                report_seen(WB_WRITE);
        return NULL;
}

static void test_seen_row_kept_until_the_shard_goes(void **state)
{
        struct seen_run r = {.row_at_death = 1};
        pthread_t t;
        (void)state;

        assert_int_equal(pthread_key_create(&later_key, counts_at_death), 0);
        WB_STATUS_ZERO(wb_status, calls_seen[WB_WRITE]);
        assert_int_equal(pthread_create(&t, NULL, seen_thread, &r), 0);
        pthread_join(t, NULL);
        assert_true(r.shard < WB_SHARDS);
        assert_int_equal(r.row, row_offset(r.shard));
        assert_int_equal(r.row_read, r.row);
        assert_int_equal(r.err, EAGAIN);     /* the first count kept errno */
        assert_int_equal(r.row_at_death, 0); /* released with the shard */
        assert_int_equal(WB_STATUS_SUM(wb_status, calls_seen[WB_WRITE]), ADDS + 1);
        pthread_key_delete(later_key);
}

static void *shared_thread(void *arg)
{
        wb_shard_plus1 = WB_SHARD_SHARED + 1; /* as when every own shard is taken */
        for (int i = 0; i < ADDS; i++)
                report_seen(WB_RECV);
        *(uintptr_t *)arg = wb_shard_row;
        wb_shard_plus1 = 0;
        return NULL;
}

static void test_seen_row_never_kept_for_the_shared_shard(void **state)
{
        uintptr_t row = 1;
        pthread_t t;
        (void)state;

        WB_STATUS_ZERO(wb_status, calls_seen[WB_RECV]);
        assert_int_equal(pthread_create(&t, NULL, shared_thread, &row), 0);
        pthread_join(t, NULL);
        /* its adds are locked ones, each through the slow path */
        assert_int_equal(row, 0);
        assert_int_equal(atomic_load(&wb_status->shard[WB_SHARD_SHARED].calls_seen[WB_RECV]), ADDS);
        assert_int_equal(WB_STATUS_SUM(wb_status, calls_seen[WB_RECV]), ADDS);
}

/* A passed-through call finds its counters before its system call; a fork
 * in a signal handler that interrupted it moves the child's status (a fresh
 * mapping) while the call is in flight. Its late add must land in memory
 * nobody reads: not in the parent's file, and not on an unmapped page. */
static void test_status_move_leaves_the_old_mapping_harmless(void **state)
{
        char path[] = "/tmp/wb-test-statusXXXXXX";
        int fd = mkstemp(path);
        (void)state;

        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(status_open(path), 0);
        struct wb_status *old = wb_status;
        struct report_pass in_flight = report_pass_begin();
        uint64_t before = WB_STATUS_SUM(wb_status, calls_seen[WB_READ]);

        assert_int_equal(status_open(NULL), 0); /* the forked child's move */
        assert_ptr_not_equal(wb_status, old);
        assert_true(report_pass_count(in_flight, WB_READ) || in_flight.row == 0);
        assert_int_equal(WB_STATUS_SUM(wb_status, calls_seen[WB_READ]), before);

        struct wb_status file;
        fd = open(path, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, &file, sizeof file), sizeof file);
        close(fd);
        unlink(path);
        assert_int_equal(WB_STATUS_SUM(&file, calls_seen[WB_READ]), before);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_one_thread_counts_on_the_first_page), /* first: no thread yet */
            cmocka_unit_test(test_totals_exact_beyond_the_shards),
            cmocka_unit_test(test_spin_is_the_longest_of_the_shards),
            cmocka_unit_test(test_seen_row_kept_until_the_shard_goes),
            cmocka_unit_test(test_seen_row_never_kept_for_the_shared_shard),
            cmocka_unit_test(test_status_move_leaves_the_old_mapping_harmless), /* last: moves it */
        };
        return cmocka_run_group_tests_name("counter", tests, NULL, NULL);
}
