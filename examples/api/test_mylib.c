/* test_mylib.c - a user's own cmocka tests of their library (mylib.c),
 * switching wouldblock's rules per test through the C API (wouldblock.h).
 *
 * Build it against the library, wrappers and API together:
 *
 *   cc test_mylib.c mylib.c $(pkg-config --cflags --libs wouldblock) -lcmocka
 *   (in this tree: -Ishim -Lbuild -Wl,-rpath,$PWD/build -lwouldblock)
 *
 * and run it as it is: no LD_PRELOAD needed. Linking is enough because the
 * dynamic linker looks a symbol up in the program's libraries in the order
 * of its DT_NEEDED list, and -lwouldblock puts libwouldblock.so there before
 * libc.so.6 (which the compiler driver always links last): the program's
 * read() is the library's wrapper, as it would be under LD_PRELOAD. Check
 * with `readelf -d test_mylib | grep NEEDED`. Two ways to lose that:
 * naming -lc before -lwouldblock, or --as-needed dropping the library from a
 * program that calls none of wouldblock_*() (this one does; the Makefile
 * passes --no-as-needed anyway). test_reads_are_interposed says so plainly
 * instead of letting every other test fail for an obscure reason.
 *
 * The same binary also runs under LD_PRELOAD=libwouldblock.so: the loader
 * finds the preloaded object has the soname the program needs and uses it,
 * so there is still one library, one set of rules and one set of counters.
 *
 * wouldblock_injected() counts for the whole process, so each test compares
 * it before and after. Rules count per fd by default and every test opens
 * fresh fds, so "when=1" is the first read of this test's socket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mylib.h"
#include "wouldblock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HANG_GUARD_MS 10000 /* a poll that long means the test is stuck */
#define MAX_TRIES 100       /* line_read calls per line before we give up */

struct pair {
        /* a non-blocking TCP connection over the loopback: over a pipe or a
         * unix socket one small write arrives whole, and wouldblock does not
         * cut what Linux would not (short=1 would meet nothing to cut) */
        int rd, wr;
        struct line_reader reader;
};

static int setup(void **state)
{
        static struct pair p;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        int lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lst < 0 || bind(lst, (struct sockaddr *)&a, sizeof a) || listen(lst, 1) ||
            getsockname(lst, (struct sockaddr *)&a, &len))
                return -1;
        p.wr = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (p.wr < 0 || connect(p.wr, (struct sockaddr *)&a, sizeof a)) /* blocking: not counted */
                return -1;
        p.rd = accept4(lst, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        close(lst);
        if (p.rd < 0 || fcntl(p.wr, F_SETFL, O_NONBLOCK))
                return -1;
        line_reader_init(&p.reader);
        *state = &p;
        return 0;
}

static int teardown(void **state)
{
        struct pair *p = *state;
        wouldblock_set_rules(NULL); /* the next test starts with none */
        wouldblock_resume();
        close(p->rd);
        close(p->wr);
        return 0;
}

static void wait_for(int fd, short events)
{
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, HANG_GUARD_MS);
        assert_int_equal(n, 1);
}

/* The test's own writer: correct under any output rule (EAGAIN, short). */
static void send_text(int fd, const char *text)
{
        size_t off = 0, len = strlen(text);
        for (int tries = 0; off < len; tries++) {
                assert_true(tries < MAX_TRIES * 10);
                ssize_t n = write(fd, text + off, len - off);
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                        wait_for(fd, POLLOUT);
                        continue;
                }
                assert_true(n > 0);
                off += (size_t)n;
        }
}

/* What an event loop does with line_read: call, wait on LINE_AGAIN, call
 * again. Returns how many times it had to wait. */
static int read_line_waiting(struct pair *p, char *out, size_t cap)
{
        int waits = 0;
        for (int tries = 0; tries < MAX_TRIES; tries++) {
                enum line_status st = line_read(&p->reader, p->rd, out, cap);
                if (st == LINE_READY)
                        return waits;
                assert_int_equal(st, LINE_AGAIN);
                wait_for(p->rd, POLLIN);
                waits++;
        }
        fail_msg("no line after %d calls", MAX_TRIES);
        return -1;
}

/* Linked or preloaded, read() must be the library's. */
static void test_reads_are_interposed(void **state)
{
        struct pair *p = *state;
        char c;
        unsigned long before = wouldblock_injected("read");

        assert_int_equal(wouldblock_set_rules("read when=1"), 0);
        send_text(p->wr, "x");
        errno = 0;
        if (read(p->rd, &c, 1) != -1 || errno != EAGAIN)
                fail_msg("read() was not interposed: link -lwouldblock before libc (see the "
                         "top of this file) or run under LD_PRELOAD=libwouldblock.so");
        assert_int_equal(wouldblock_injected("read") - before, 1);
        assert_int_equal(read(p->rd, &c, 1), 1);
        assert_int_equal(c, 'x');
}

static void test_no_rules(void **state)
{
        struct pair *p = *state;
        char line[64];
        unsigned long before = wouldblock_injected(NULL);

        assert_int_equal(wouldblock_set_rules(NULL), 0);
        send_text(p->wr, "one\ntwo\n");
        assert_int_equal(line_read(&p->reader, p->rd, line, sizeof line), LINE_READY);
        assert_string_equal(line, "one");
        /* the second line came with the first: served from the buffer */
        assert_int_equal(line_read(&p->reader, p->rd, line, sizeof line), LINE_READY);
        assert_string_equal(line, "two");
        assert_int_equal(line_read(&p->reader, p->rd, line, sizeof line), LINE_AGAIN);
        assert_int_equal(wouldblock_injected(NULL) - before, 0);
}

static void test_first_read_would_block(void **state)
{
        struct pair *p = *state;
        char line[64];
        unsigned long before = wouldblock_injected("read");

        assert_int_equal(wouldblock_set_rules("input when=1"), 0);
        send_text(p->wr, "hello\n");
        /* the data is there, but the first read says EAGAIN: mylib must
         * report "not yet" and lose nothing */
        assert_int_equal(line_read(&p->reader, p->rd, line, sizeof line), LINE_AGAIN);
        assert_int_equal(line_read(&p->reader, p->rd, line, sizeof line), LINE_READY);
        assert_string_equal(line, "hello");
        assert_int_equal(wouldblock_injected("read") - before, 1);
}

static void test_short_reads(void **state)
{
        struct pair *p = *state;
        char line[64];
        unsigned long before = wouldblock_injected("read");

        assert_int_equal(wouldblock_set_rules("input short=1"), 0);
        send_text(p->wr, "hello world\n");
        /* one byte a read: twelve reads, each cut short, for one line */
        assert_int_equal(read_line_waiting(p, line, sizeof line), 0);
        assert_string_equal(line, "hello world");
        assert_int_equal(wouldblock_injected("read") - before, strlen("hello world\n"));
}

static void test_alternate_scenario(void **state)
{
        struct pair *p = *state;
        char line[64];
        unsigned long before = wouldblock_injected("read");

        /* "every other read and write would block, starting with the first" */
        assert_int_equal(wouldblock_use_scenario("alternate"), 0);
        send_text(p->wr, "ping\n");
        assert_int_equal(read_line_waiting(p, line, sizeof line), 1); /* read 1 */
        assert_string_equal(line, "ping");                            /* read 2 */
        send_text(p->wr, "pong\n");
        assert_int_equal(read_line_waiting(p, line, sizeof line), 1); /* read 3 */
        assert_string_equal(line, "pong");                            /* read 4 */
        assert_int_equal(wouldblock_injected("read") - before, 2);
}

static void test_bad_rules_keep_the_active_ones(void **state)
{
        struct pair *p = *state;
        char line[64];
        const char *msg;
        unsigned long before = wouldblock_injected("input");

        assert_int_equal(wouldblock_set_rules("input when=1"), 0);
        assert_int_equal(wouldblock_set_rules("bogus"), -1);
        msg = wouldblock_last_error();
        /* "NAME:COL: message", like a file's "FILE:LINE:COL: message" */
        unsigned col = 0;
        char colon = 0;
        if (sscanf(strchr(msg, ':') ? strchr(msg, ':') + 1 : "", "%u%c", &col, &colon) != 2 ||
            colon != ':' || col == 0 || !strstr(msg, "bogus"))
                fail_msg("wouldblock_last_error() = \"%s\": want NAME:COL: ... naming 'bogus'",
                         msg);

        /* the error left "input when=1" in force */
        send_text(p->wr, "still\n");
        assert_int_equal(line_read(&p->reader, p->rd, line, sizeof line), LINE_AGAIN);
        assert_int_equal(line_read(&p->reader, p->rd, line, sizeof line), LINE_READY);
        assert_string_equal(line, "still");
        assert_int_equal(wouldblock_injected("input") - before, 1);

        assert_int_equal(wouldblock_use_scenario("no-such-scenario"), -1);
        msg = wouldblock_last_error();
        if (!strstr(msg, "no-such-scenario") || !strstr(msg, "first-read"))
                fail_msg("wouldblock_last_error() = \"%s\": want the name and the scenarios", msg);
}

static void test_pause_keeps_counting(void **state)
{
        struct pair *p = *state;
        char line[64];
        unsigned long before = wouldblock_injected("read");

        assert_int_equal(wouldblock_set_rules("input when=1"), 0);
        wouldblock_pause();
        send_text(p->wr, "a\n");
        /* read 1: counted, not injected */
        assert_int_equal(line_read(&p->reader, p->rd, line, sizeof line), LINE_READY);
        wouldblock_resume();
        send_text(p->wr, "b\n");
        /* read 2: were it read 1 (had the pause stopped counting) it would fail */
        assert_int_equal(line_read(&p->reader, p->rd, line, sizeof line), LINE_READY);
        assert_string_equal(line, "b");
        assert_int_equal(wouldblock_injected("read") - before, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_reads_are_interposed, setup, teardown),
            cmocka_unit_test_setup_teardown(test_no_rules, setup, teardown),
            cmocka_unit_test_setup_teardown(test_first_read_would_block, setup, teardown),
            cmocka_unit_test_setup_teardown(test_short_reads, setup, teardown),
            cmocka_unit_test_setup_teardown(test_alternate_scenario, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bad_rules_keep_the_active_ones, setup, teardown),
            cmocka_unit_test_setup_teardown(test_pause_keeps_counting, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
