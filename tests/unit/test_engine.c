/* test_engine.c - the decision engine: engine_install + engine_decide on
 * real fds made here (pipes, socket pairs, TCP over 127.0.0.1, a regular
 * file, an eventfd, a pty).
 *
 * The unit tests link the engine without the public wrappers, so nothing
 * tells the fd table that a number was closed: every fd made here goes
 * through track() (which forgets what the table knew of its number, as the
 * close wrapper of its previous holder would have) and is closed through
 * close_fd() (which forgets, as the close wrapper does); a mode changed with
 * F_SETFL is announced with fd_state_flags_changed(), as the fcntl wrapper
 * does.
 */
#include "wbtest.h"

#include "engine.h"
#include "fdstate.h"
#include "site.h"
#include "status.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- fds ---- */

static int open_fds[64];
static unsigned n_open;

static int track(int fd)
{
        assert_true(fd >= 0);
        assert_true(n_open < N_ELEMS(open_fds));
        fd_state_forget(fd);
        open_fds[n_open++] = fd;
        return fd;
}

static void close_fd(int fd)
{
        for (unsigned i = 0; i < n_open; i++)
                if (open_fds[i] == fd) {
                        open_fds[i] = open_fds[--n_open];
                        break;
                }
        fd_state_forget(fd);
        close(fd);
}

static void make_pipe(int p[2], int flags)
{
        assert_int_equal(pipe2(p, flags | O_CLOEXEC), 0);
        track(p[0]);
        track(p[1]);
}

static void make_socketpair(int type, int sv[2])
{
        assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
        track(sv[0]);
        track(sv[1]);
}

/* F_SETFL, and what the fcntl wrapper then tells the fd table */
static void set_nonblocking(int fd)
{
        int fl = fcntl(fd, F_GETFL);
        assert_true(fl >= 0);
        assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
        fd_state_flags_changed();
}

/* A listener on 127.0.0.1 and a connection to it. */
struct tcp {
        int listener, client, server; /* client and server non-blocking */
        unsigned port;                /* the listener's */
};

static void make_tcp(struct tcp *t)
{
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t len = sizeof a;

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        t->listener = track(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        assert_int_equal(bind(t->listener, (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(listen(t->listener, 4), 0);
        assert_int_equal(getsockname(t->listener, (struct sockaddr *)&a, &len), 0);
        t->port = ntohs(a.sin_port);
        t->client = track(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        /* a blocking connect on loopback completes at once (the backlog has room) */
        assert_int_equal(connect(t->client, (struct sockaddr *)&a, sizeof a), 0);
        t->server = track(accept4(t->listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK));
        set_nonblocking(t->client);
}

static struct sockaddr_in loopback(unsigned port)
{
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return a;
}

/* ---- the engine ---- */

static void install(const char *rules, uint64_t seed)
{
        struct wb_rule r[WB_MAX_RULES];
        unsigned n = parse_list_ok(rules, r, WB_MAX_RULES);
        assert_int_equal(engine_install(r, n, seed, false), 0);
}

static enum wb_verdict decide_full(enum wb_call call, int fd, size_t len, int flags,
                                   const struct sockaddr *addr, struct wb_decision *d)
{
        /* as a wrapper does: the destination with the length the program gave */
        socklen_t addrlen = !addr                         ? 0
                            : addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                          : sizeof(struct sockaddr_in);
        struct wb_callinfo c = {
            .call = call, .fd = fd, .len = len, .flags = flags, .addr = addr, .addrlen = addrlen};
        memset(d, 0, sizeof *d);
        return engine_decide(&c, d);
}

static enum wb_verdict decide(enum wb_call call, int fd, struct wb_decision *d)
{
        return decide_full(call, fd, 4096, 0, NULL, d);
}

/* counted and injected of rule i */
static void totals(unsigned i, uint64_t *counted, uint64_t *injected)
{
        assert_non_null(engine_rule(i, counted, injected));
}

#define expect_totals(i, counted, injected) expect_totals_at(i, counted, injected, __LINE__)
static void expect_totals_at(unsigned i, uint64_t counted, uint64_t injected, int line)
{
        uint64_t c, j;

        totals(i, &c, &j);
        if (c != counted || j != injected) {
                print_error("# rule %u: counted %llu injected %llu, expected %llu and %llu\n", i,
                            (unsigned long long)c, (unsigned long long)j,
                            (unsigned long long)counted, (unsigned long long)injected);
                _fail(__FILE__, line);
        }
}

static int group_setup(void **state)
{
        (void)state;
        engine_set_process_names("test_engine", "test_engine");
        return 0;
}

static int setup(void **state)
{
        (void)state;
        n_open = 0;
        engine_pause(false);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        while (n_open)
                close_fd(open_fds[n_open - 1]);
        engine_pause(false);
        engine_set_process_names("test_engine", "test_engine");
        return engine_install(NULL, 0, 1, false);
}

/* ---- triggers ---- */

static bool spec_example(uint64_t n)
{
        return n == 1 || (n >= 4 && n <= 6) || (n >= 10 && n % 5 == 0);
}

static void test_when_fires_on_exact_calls(void **state)
{
        struct wb_decision d;
        int p[2];
        unsigned fired = 0;
        uint64_t c, j;
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read when=1,4..6,10+5", 1);
        const struct wb_rule *rule = engine_rule(0, &c, &j);
        assert_non_null(rule);
        for (uint64_t n = 1; n <= 60; n++) {
                enum wb_verdict v = decide(WB_READ, p[0], &d);
                if ((v == WB_FAIL) != spec_example(n))
                        fail_because("call %llu: verdict %d", (unsigned long long)n, v);
                if (v == WB_FAIL) {
                        fired++;
                        assert_int_equal(d.verdict, WB_FAIL);
                        assert_int_equal(d.err, EAGAIN);
                        assert_int_equal(d.callno, n);
                        assert_ptr_equal(d.rule, rule);
                        assert_int_equal(d.sotype, 0);
                }
        }
        expect_totals(0, 60, fired);
        assert_int_equal(fired, 1 + 3 + 11);
}

static void test_no_trigger_fires_every_call(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("input", 1);
        for (unsigned n = 1; n <= 10; n++) {
                assert_int_equal(decide(WB_READV, p[0], &d), WB_FAIL);
                assert_int_equal(d.callno, n);
        }
        expect_totals(0, 10, 10);
}

static void test_unnamed_calls_pass_uncounted(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read", 1);
        assert_int_equal(wb_engine_armed, WB_CALL_BIT(WB_READ));
        assert_int_equal(decide(WB_WRITE, p[1], &d), WB_PASS);
        assert_int_equal(decide(WB_READV, p[0], &d), WB_PASS);
        assert_int_equal(decide(WB_RECV, p[0], &d), WB_PASS);
        expect_totals(0, 0, 0);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        expect_totals(0, 1, 1);

        install("accept;connect", 1);
        assert_int_equal(wb_engine_armed, WB_GROUP_ACCEPT | WB_GROUP_CONNECT);
}

static void test_max_caps_per_fd(void **state)
{
        struct wb_decision d;
        int a[2], b[2];
        (void)state;

        make_pipe(a, O_NONBLOCK);
        make_pipe(b, O_NONBLOCK);
        install("read max=2", 1);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_FAIL);
        for (int i = 0; i < 5; i++)
                assert_int_equal(decide(WB_READ, a[0], &d), WB_PASS);
        /* another fd has its own two */
        assert_int_equal(decide(WB_READ, b[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, b[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, b[0], &d), WB_PASS);
        expect_totals(0, 10, 4);
}

static void test_max_caps_per_process(void **state)
{
        struct wb_decision d;
        int a[2], b[2];
        (void)state;

        make_pipe(a, O_NONBLOCK);
        make_pipe(b, O_NONBLOCK);
        install("read max=3 per=process", 1);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, b[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 3);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(decide(WB_READ, b[0], &d), WB_PASS);
                assert_int_equal(decide(WB_READ, a[0], &d), WB_PASS);
        }
        expect_totals(0, 9, 3);
}

static void test_per_fd_counts_each_fd(void **state)
{
        struct wb_decision d;
        int a[2], b[2];
        (void)state;

        make_pipe(a, O_NONBLOCK);
        make_pipe(b, O_NONBLOCK);
        install("read when=2", 1);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, b[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 2);
        assert_int_equal(decide(WB_READ, b[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 2);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, b[0], &d), WB_PASS);
        expect_totals(0, 6, 2);
}

/* A set keeps the slots of small fds on its first page and the others in
 * its big table (engine_install): a call is counted for its own fd on both
 * sides of that line and for its own rule, whatever room the set left near
 * (at today's sizes: 64 fds with 1 rule, so fds 40 and 63 are near and 64
 * is not; 27 with 2 rules; 26 with 4; none with 40; the pipe's own fd is
 * near but with 40). */
static void test_per_fd_counts_near_and_far_fds(void **state)
{
        static const int numbers[] = {40, 63, 64, 65, 200, 1000};
        static const unsigned sizes[] = {1, 2, 4, 40};
        int p[2], fds[N_ELEMS(numbers) + 1];
        struct wb_decision d;
        (void)state;

        make_pipe(p, O_NONBLOCK);
        fds[0] = p[0];
        for (size_t k = 0; k < N_ELEMS(numbers); k++)
                fds[k + 1] = track(dup2(p[0], numbers[k]));
        for (size_t z = 0; z < N_ELEMS(sizes); z++) {
                /* rule 1, if any, counts the same calls, in slots beside rule 0's */
                char rules[64 * 16] = "read when=3";
                if (sizes[z] > 1)
                        strcat(rules, "; read when=1000");
                for (unsigned r = 2; r < sizes[z]; r++)
                        strcat(rules, "; write fd=1");
                install(rules, 1);
                for (uint64_t n = 1; n <= 4; n++)
                        for (size_t k = 0; k < N_ELEMS(fds); k++) {
                                enum wb_verdict v = decide(WB_READ, fds[k], &d);
                                if ((v == WB_FAIL) != (n == 3) || (v == WB_FAIL && d.callno != 3))
                                        fail_because("%u rules, fd %d, call %llu: verdict %d",
                                                     sizes[z], fds[k], (unsigned long long)n, v);
                        }
                expect_totals(0, 4 * N_ELEMS(fds), N_ELEMS(fds));
                if (sizes[z] > 1)
                        expect_totals(1, 4 * N_ELEMS(fds), 0);
        }
}

/* The facts of fds below WB_FD_NEAR are kept apart from the table's
 * (fdstate.h): each fd has its own on both sides of that line, here a
 * socket at 50 and a pipe at 50 + WB_FD_NEAR, asked in both orders. */
static void test_fd_facts_near_and_far(void **state)
{
        int p[2], sv[2], near_fd, far_fd;
        struct wb_decision d;
        (void)state;

        make_pipe(p, O_NONBLOCK);
        make_socketpair(SOCK_STREAM, sv);
        set_nonblocking(sv[0]);
        install("read type=pipe", 1);
        for (int order = 0; order < 2; order++) {
                near_fd = track(dup2(sv[0], 50));
                far_fd = track(dup2(p[0], 50 + WB_FD_NEAR));
                if (order == 0)
                        assert_int_equal(decide(WB_READ, near_fd, &d), WB_PASS); /* a socket */
                assert_int_equal(decide(WB_READ, far_fd, &d), WB_FAIL);          /* a pipe */
                assert_int_equal(decide(WB_READ, near_fd, &d), WB_PASS);
                close_fd(near_fd);
                close_fd(far_fd);
        }
}

static void test_per_process_counts_across_fds(void **state)
{
        struct wb_decision d;
        int a[2], b[2];
        (void)state;

        make_pipe(a, O_NONBLOCK);
        make_pipe(b, O_NONBLOCK);
        install("read when=2,5 per=process", 1);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, b[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 2);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, b[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 5);
        assert_int_equal(decide(WB_READ, b[0], &d), WB_PASS);
        expect_totals(0, 6, 2);
}

static void test_forgotten_fd_counts_from_one(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read when=2 max=1", 1);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        /* what the close wrapper does when the number is closed */
        fd_state_forget(p[0]);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL); /* max= counts again too */
        assert_int_equal(d.callno, 2);
        expect_totals(0, 5, 2);
}

static void test_reused_fd_number_counts_from_one(void **state)
{
        struct wb_decision d;
        int p[2], q[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read when=1", 1);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        int old = p[0];
        close_fd(p[1]);
        close_fd(p[0]);
        make_pipe(q, O_NONBLOCK);
        /* POSIX: the lowest free numbers, so the same ones again */
        assert_int_equal(q[0], old);
        assert_int_equal(decide(WB_READ, q[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 1);
}

static void test_reused_fd_number_is_probed_again(void **state)
{
        struct wb_decision d;
        int p[2], sv[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("recv family=unix", 1);
        assert_int_equal(decide(WB_RECV, p[0], &d), WB_PASS); /* a pipe has no family */
        int old = p[0];
        close_fd(p[1]);
        close_fd(p[0]);
        make_socketpair(SOCK_STREAM | SOCK_NONBLOCK, sv);
        assert_int_equal(sv[0], old);
        assert_int_equal(decide(WB_RECV, sv[0], &d), WB_FAIL);
        assert_int_equal(d.family, WB_FAMILY_UNIX);
        assert_int_equal(d.sotype, SOCK_STREAM);
}

/* ---- prob= ---- */

#define PROB_CALLS 256

static void prob_sequence(int fd, bool out[PROB_CALLS])
{
        struct wb_decision d;
        for (unsigned n = 0; n < PROB_CALLS; n++)
                out[n] = decide(WB_READ, fd, &d) == WB_FAIL;
}

static void test_prob_is_deterministic(void **state)
{
        bool first[PROB_CALLS], again[PROB_CALLS], other_seed[PROB_CALLS], other_fd[PROB_CALLS];
        int p[2], q[2];
        unsigned fired = 0;
        (void)state;

        make_pipe(p, O_NONBLOCK);
        make_pipe(q, O_NONBLOCK);
        install("read prob=0.5", 12345);
        assert_int_equal(engine_seed(), 12345);
        prob_sequence(p[0], first);
        prob_sequence(q[0], other_fd);
        install("read prob=0.5", 12345);
        prob_sequence(p[0], again);
        install("read prob=0.5", 12346);
        prob_sequence(p[0], other_seed);

        for (unsigned n = 0; n < PROB_CALLS; n++)
                fired += first[n];
        assert_true(fired > 0 && fired < PROB_CALLS);
        assert_memory_equal(first, again, sizeof first);
        /* 2^-256 odds of a false alarm */
        assert_memory_not_equal(first, other_seed, sizeof first);
        /* each fd draws its own sequence: not every fd fails in step */
        assert_memory_not_equal(first, other_fd, sizeof first);
}

static void test_prob_matches_exposed_function(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        /* per fd: the scope is the fd's order in the rule (its first fd: 1);
         * rule 1 is the rule's place in the set */
        install("write when=1; read prob=0.4", 99);
        for (uint64_t n = 1; n <= 500; n++) {
                bool fired = decide(WB_READ, p[0], &d) == WB_FAIL;
                if (fired != engine_prob_fires(0.4, 99, 1, 1, n))
                        fail_because("per=fd call %llu differs", (unsigned long long)n);
        }
        /* per process: one scope for all fds, -1 */
        install("read prob=0.4 per=process", 7);
        for (uint64_t n = 1; n <= 500; n++) {
                bool fired = decide(WB_READ, p[0], &d) == WB_FAIL;
                if (fired != engine_prob_fires(0.4, 7, 0, -1, n))
                        fail_because("per=process call %llu differs", (unsigned long long)n);
        }
}

/* The sequence an fd gets is named by the order in which the rule first
 * counted it, never by its number: the same program with other fds
 * inherited (so other numbers) gets the same faults. */
static void test_prob_scope_is_fd_order_not_number(void **state)
{
        bool p_first[PROB_CALLS], q_second[PROB_CALLS], q_first[PROB_CALLS], p_second[PROB_CALLS];
        int p[2], q[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        make_pipe(q, O_NONBLOCK);
        assert_int_not_equal(p[0], q[0]);
        install("read prob=0.5", 7);
        prob_sequence(p[0], p_first);
        prob_sequence(q[0], q_second);
        install("read prob=0.5", 7);
        prob_sequence(q[0], q_first);
        prob_sequence(p[0], p_second);
        assert_memory_equal(q_first, p_first, sizeof p_first);
        assert_memory_equal(p_second, q_second, sizeof q_second);
        assert_memory_not_equal(p_first, q_second, sizeof p_first);
        for (uint64_t n = 0; n < PROB_CALLS; n++)
                if (p_first[n] != engine_prob_fires(0.5, 7, 0, 1, n + 1) ||
                    q_second[n] != engine_prob_fires(0.5, 7, 0, 2, n + 1))
                        fail_because("call %llu is not scope 1 / scope 2's",
                                     (unsigned long long)n + 1);
}

/* Each rule orders the fds it counts itself; an fd a rule never counted
 * takes no place in its order. */
static void test_prob_fd_order_is_per_rule(void **state)
{
        struct wb_decision d;
        int p[2], sv[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        make_socketpair(SOCK_STREAM | SOCK_NONBLOCK, sv);
        install("read prob=0.5 type=pipe; recv prob=0.5", 3);
        decide(WB_READ, p[0], &d); /* rule 0's first fd; rule 1 never counts it */
        for (uint64_t n = 1; n <= 200; n++) {
                bool fired = decide(WB_RECV, sv[0], &d) == WB_FAIL;
                if (fired != engine_prob_fires(0.5, 3, 1, 1, n))
                        fail_because("recv call %llu is not rule 1's first fd's",
                                     (unsigned long long)n);
        }
}

/* A closed number that comes back is a new fd: the next place in the order. */
static void test_prob_reused_fd_number_is_a_new_fd(void **state)
{
        struct wb_decision d;
        int p[2], q[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read prob=0.5", 11);
        decide(WB_READ, p[0], &d);
        int old = p[0];
        close_fd(p[1]);
        close_fd(p[0]);
        make_pipe(q, O_NONBLOCK);
        assert_int_equal(q[0], old);
        for (uint64_t n = 1; n <= 200; n++) {
                bool fired = decide(WB_READ, q[0], &d) == WB_FAIL;
                if (fired != engine_prob_fires(0.5, 11, 0, 2, n))
                        fail_because("call %llu is not the second fd's", (unsigned long long)n);
        }
}

/* Counting while paused still places the fd in the order: the order is
 * that of counting, not of firing. */
static void test_prob_fd_order_counts_while_paused(void **state)
{
        struct wb_decision d;
        int p[2], q[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        make_pipe(q, O_NONBLOCK);
        install("read prob=0.5", 5);
        engine_pause(true);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        engine_pause(false);
        for (uint64_t n = 1; n <= 200; n++) {
                bool fired = decide(WB_READ, q[0], &d) == WB_FAIL;
                if (fired != engine_prob_fires(0.5, 5, 0, 2, n))
                        fail_because("call %llu is not the second fd's", (unsigned long long)n);
        }
}

/* engine_reseed (wouldblock_set_seed): from then on, exactly what a fresh
 * install with that seed gives, whatever was counted before. */
static void test_reseed_restarts_like_a_fresh_install(void **state)
{
        bool fresh[PROB_CALLS], reseeded[PROB_CALLS];
        struct wb_decision d;
        int p[2], q[2];
        uint64_t c, j;
        (void)state;

        make_pipe(p, O_NONBLOCK);
        make_pipe(q, O_NONBLOCK);
        install("read prob=0.5; write when=1 inflight=any", 1);
        prob_sequence(p[0], fresh); /* p is the first fd, then q */
        assert_int_equal(decide(WB_WRITE, p[1], &d), WB_FAIL);
        assert_int_equal(engine_reseed(42), 0);
        assert_int_equal(engine_seed(), 42);
        totals(0, &c, &j);
        assert_int_equal(c, 0);
        prob_sequence(q[0], reseeded); /* q is now the first fd */
        install("read prob=0.5; write when=1 inflight=any", 42);
        prob_sequence(q[0], fresh);
        assert_memory_equal(reseeded, fresh, sizeof fresh);
        /* when= counts start again too */
        assert_int_equal(engine_reseed(42), 0);
        assert_int_equal(decide(WB_WRITE, p[1], &d), WB_FAIL);
        assert_string_equal(engine_rule(1, &c, &j)->text, "write when=1 inflight=any");
}

/* Bounds at more than 6 standard deviations of a binomial: a correct
 * engine fails them less than once in a billion runs. */
static void test_prob_rate(void **state)
{
        struct wb_decision d;
        int p[2];
        unsigned fired = 0;
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read prob=0.3", 1);
        for (int n = 0; n < 10000; n++)
                fired += decide(WB_READ, p[0], &d) == WB_FAIL;
        assert_in_range(fired, 2700, 3300); /* sd 46 */
        expect_totals(0, 10000, fired);

        static const struct {
                double prob;
                unsigned lo, hi; /* out of 10000 */
        } rates[] = {
            {0.05, 350, 650},  /* sd 22 */
            {0.3, 2700, 3300}, /* sd 46 */
            {0.5, 4650, 5350}, /* sd 50 */
            {0.9, 8800, 9200}, /* sd 30 */
            {0.0, 0, 0},       {1.0, 10000, 10000},
        };
        for (size_t i = 0; i < N_ELEMS(rates); i++)
                for (uint64_t seed = 1; seed <= 3; seed++) {
                        unsigned hits = 0;
                        for (uint64_t n = 1; n <= 10000; n++)
                                hits += engine_prob_fires(rates[i].prob, seed, 0, 5, n);
                        if (hits < rates[i].lo || hits > rates[i].hi)
                                fail_because("prob=%g seed %llu: %u of 10000", rates[i].prob,
                                             (unsigned long long)seed, hits);
                }
}

static void test_prob_zero_and_one(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read prob=0; read prob=1 errno=EINTR", 1);
        for (int n = 0; n < 1000; n++) {
                assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
                assert_int_equal(d.err, EINTR);
        }
        expect_totals(0, 1000, 0);
        expect_totals(1, 1000, 1000);
}

/* ---- filters ---- */

static void test_blocking_fd_not_counted_by_default(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, 0);
        install("read", 1);
        for (int i = 0; i < 3; i++)
                assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        expect_totals(0, 0, 0);

        install("read blocking=any", 1);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 1);
        expect_totals(0, 1, 1);

        /* a mode changed by F_SETFL is seen, also through a dup'd fd that
         * shares the open file description */
        int dup_fd = track(dup(p[0]));
        install("read", 1);
        assert_int_equal(decide(WB_READ, dup_fd, &d), WB_PASS);
        set_nonblocking(p[0]);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, dup_fd, &d), WB_FAIL);
}

static void test_msg_dontwait_counts_blocking_socket(void **state)
{
        struct wb_decision d;
        int sv[2];
        (void)state;

        make_socketpair(SOCK_STREAM, sv);
        install("recv,send", 1);
        assert_int_equal(decide_full(WB_RECV, sv[0], 100, 0, NULL, &d), WB_PASS);
        expect_totals(0, 0, 0);
        assert_int_equal(decide_full(WB_RECV, sv[0], 100, MSG_DONTWAIT, NULL, &d), WB_FAIL);
        assert_int_equal(d.err, EAGAIN);
        assert_int_equal(d.callno, 1);
        assert_int_equal(decide_full(WB_RECV, sv[0], 100, MSG_PEEK, NULL, &d), WB_PASS);
        expect_totals(0, 1, 1);
}

static void test_type_default_excludes_regular_file(void **state)
{
        struct wb_decision d;
        FILE *f = tmpfile();
        int fd;
        (void)state;

        assert_non_null(f);
        fd = track(dup(fileno(f)));
        fd_state_forget(fileno(f));
        fclose(f);
        set_nonblocking(fd); /* so only type= can keep it out */

        install("read", 1);
        assert_int_equal(decide(WB_READ, fd, &d), WB_PASS);
        expect_totals(0, 0, 0);
        install("read type=file", 1);
        assert_int_equal(decide(WB_READ, fd, &d), WB_FAIL);
        install("read type=socket,pipe,tty,other", 1);
        assert_int_equal(decide(WB_READ, fd, &d), WB_PASS);
}

static void test_type_default_excludes_eventfd(void **state)
{
        struct wb_decision d;
        int efd, p[2];
        (void)state;

        efd = track(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
        make_pipe(p, O_NONBLOCK);
        install("read", 1);
        assert_int_equal(decide(WB_READ, efd, &d), WB_PASS);
        expect_totals(0, 0, 0);
        install("read type=other", 1);
        assert_int_equal(decide(WB_READ, efd, &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        install("read type=pipe", 1);
        assert_int_equal(decide(WB_READ, efd, &d), WB_PASS);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
}

static void test_type_tty(void **state)
{
        struct wb_decision d;
        int master, slave;
        (void)state;

        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) || unlockpt(master) || !ptsname(master)) {
                if (master >= 0)
                        close(master);
                print_message("# skip: no pseudo-terminal here (posix_openpt: %s)\n",
                              strerror(errno));
                skip();
        }
        track(master);
        slave = track(open(ptsname(master), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
        install("read", 1);
        assert_int_equal(decide(WB_READ, slave, &d), WB_FAIL);
        install("read type=socket,pipe", 1);
        assert_int_equal(decide(WB_READ, slave, &d), WB_PASS);
}

static void test_family_filter(void **state)
{
        struct wb_decision d;
        struct tcp t;
        int sv[2], p[2];
        (void)state;

        make_tcp(&t);
        make_socketpair(SOCK_STREAM | SOCK_NONBLOCK, sv);
        make_pipe(p, O_NONBLOCK);

        install("recv,read family=unix", 1);
        assert_int_equal(decide(WB_RECV, sv[0], &d), WB_FAIL);
        assert_int_equal(d.family, WB_FAMILY_UNIX);
        assert_int_equal(decide(WB_RECV, t.client, &d), WB_PASS);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS); /* not a socket: never passes */
        expect_totals(0, 1, 1);

        install("recv family=inet", 1);
        assert_int_equal(decide(WB_RECV, t.client, &d), WB_FAIL);
        assert_int_equal(d.family, WB_FAMILY_INET);
        assert_int_equal(d.sotype, SOCK_STREAM);
        assert_int_equal(decide(WB_RECV, sv[0], &d), WB_PASS);

        install("recv family=inet6", 1);
        assert_int_equal(decide(WB_RECV, t.client, &d), WB_PASS);
        install("recv family=inet6,unix", 1);
        assert_int_equal(decide(WB_RECV, t.client, &d), WB_PASS);
        assert_int_equal(decide(WB_RECV, sv[1], &d), WB_FAIL);
}

static void test_port_filter(void **state)
{
        struct wb_decision d;
        struct tcp t;
        char rules[64];
        unsigned other;
        (void)state;

        make_tcp(&t);
        other = t.port == 65535 ? 1 : t.port + 1;

        snprintf(rules, sizeof rules, "recv port=%u", t.port);
        install(rules, 1);
        assert_int_equal(decide(WB_RECV, t.client, &d), WB_FAIL); /* its peer is the listener */
        assert_int_equal(decide(WB_RECV, t.server, &d), WB_PASS); /* its peer's port is random */
        expect_totals(0, 1, 1);
        snprintf(rules, sizeof rules, "recv port=%u", other);
        install(rules, 1);
        assert_int_equal(decide(WB_RECV, t.client, &d), WB_PASS);

        /* connect and sendto: the destination given in the call */
        int s = track(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        struct sockaddr_in to = loopback(t.port), elsewhere = loopback(other);
        snprintf(rules, sizeof rules, "connect port=%u", t.port);
        install(rules, 1);
        assert_int_equal(decide_full(WB_CONNECT, s, 0, 0, (struct sockaddr *)&elsewhere, &d),
                         WB_PASS);
        assert_int_equal(decide_full(WB_CONNECT, s, 0, 0, (struct sockaddr *)&to, &d), WB_FAIL);
        assert_int_equal(d.err, EINPROGRESS);

        int u = track(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        snprintf(rules, sizeof rules, "sendto port=%u", t.port);
        install(rules, 1);
        assert_int_equal(decide_full(WB_SENDTO, u, 10, 0, (struct sockaddr *)&to, &d), WB_FAIL);
        assert_int_equal(d.err, EAGAIN);
        assert_int_equal(d.sotype, SOCK_DGRAM);
        assert_int_equal(decide_full(WB_SENDTO, u, 10, 0, (struct sockaddr *)&elsewhere, &d),
                         WB_PASS);
        assert_int_equal(decide_full(WB_SENDTO, u, 10, 0, NULL, &d), WB_PASS); /* no peer */
}

static void test_fd_filter(void **state)
{
        struct wb_decision d;
        int a[2], b[2];
        char rules[32];
        (void)state;

        make_pipe(a, O_NONBLOCK);
        make_pipe(b, O_NONBLOCK);
        snprintf(rules, sizeof rules, "read fd=%d", b[0]);
        install(rules, 1);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, b[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_PASS);
        expect_totals(0, 1, 1);
}

static void test_process_filter(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        engine_set_process_names("python3", "python3.11");
        install("read process=curl", 1);
        assert_int_equal(wb_engine_armed, 0);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        expect_totals(0, 0, 0);
        install("read process=python3", 1);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        install("read process=python3.11", 1);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
}

/* a read as a wrapper would see it, called from place */
static enum wb_verdict decide_from(const void *place, int fd, struct wb_decision *d)
{
        struct wb_callinfo c = {.call = WB_READ, .fd = fd, .len = 4096, .site = place};
        memset(d, 0, sizeof *d);
        return engine_decide(&c, d);
}

/* No rule: no set at all (nothing mapped), yet the seed is kept as an
 * empty set kept it, for reseeding and the report, and rules installed
 * later work as ever. */
static void test_no_rules_install_no_set(void **state)
{
        const struct wb_status_bank *b;
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        assert_int_equal(engine_install(NULL, 0, 7, false), 0);
        assert_int_equal(engine_rule_count(), 0);
        assert_int_equal(engine_seed(), 7);
        b = &wb_status->banks[atomic_load(&wb_status->bank) & 1];
        assert_int_equal(b->n, 0);
        assert_int_equal(b->seed, 7);
        assert_int_equal(wb_engine_armed, 0);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);

        assert_int_equal(engine_reseed(9), 0);
        assert_int_equal(engine_seed(), 9);
        b = &wb_status->banks[atomic_load(&wb_status->bank) & 1];
        assert_int_equal(b->seed, 9);

        install("read when=1", 5);
        assert_int_equal(engine_seed(), 5);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(engine_install(NULL, 0, 3, false), 0);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        assert_int_equal(engine_seed(), 3);
}

/* The rules' texts go into the status only when a report is asked for,
 * the only reader of them: otherwise an install writes none of those pages
 * (each a page fault at start-up). The counts are kept either way. */
static void test_status_keeps_texts_for_reports_only(void **state)
{
        const struct wb_status_bank *b;
        const struct wb_status_rule *r;
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        status_keep_rules(false);
        for (int i = 0; i < 2; i++) { /* both banks */
                install("write when=9; read when=1", 1);
                b = &wb_status->banks[atomic_load(&wb_status->bank) & 1];
                r = wb_status->rules[status_bank_index(b)];
                assert_int_equal(b->n, 2);
                assert_int_equal(r[0].text[0], '\0');
                assert_int_equal(r[1].scenario[0], '\0');
        }
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        expect_totals(1, 1, 1);

        status_keep_rules(true);
        install("write when=9; read when=1", 1);
        r = wb_status
                ->rules[status_bank_index(&wb_status->banks[atomic_load(&wb_status->bank) & 1])];
        assert_string_equal(r[0].text, "write when=9");
        assert_string_equal(r[1].text, "read when=1");
        assert_string_equal(r[1].scenario, "WOULDBLOCK_RULES");
        assert_int_equal(r[1].line, 2);
        status_keep_rules(false);
}

static void test_site_filter(void **state)
{
        const void *here = (const void *)test_site_filter, *in_libc = (const void *)abort,
                   *nowhere = (const void *)16;
        struct wb_decision d;
        struct wb_site at;
        char rule[WB_TEXT_MAX];
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        site_refresh();
        site_lookup(here, &at);
        assert_string_equal(at.module, "test_engine");
        assert_true(at.main);
        site_lookup(in_libc, &at);
        assert_string_equal(at.module, "libc.so.6");
        assert_false(at.main);
        site_lookup(nowhere, &at);
        assert_string_equal(at.module, WB_SITE_UNKNOWN);

        install("read site=test_engine", 1);
        assert_int_equal(decide_from(here, p[0], &d), WB_FAIL);
        assert_int_equal(decide_from(in_libc, p[0], &d), WB_PASS);
        assert_int_equal(decide_from(nowhere, p[0], &d), WB_PASS);
        expect_totals(0, 1, 1); /* a call from elsewhere is not counted */

        install("read site=libc.so.6", 1);
        assert_int_equal(decide_from(here, p[0], &d), WB_PASS);
        assert_int_equal(decide_from(in_libc, p[0], &d), WB_FAIL);

        install("read site=?", 1);
        assert_int_equal(decide_from(here, p[0], &d), WB_PASS);
        assert_int_equal(decide_from(nowhere, p[0], &d), WB_FAIL);

        /* the offset names one place exactly */
        site_lookup(here, &at);
        snprintf(rule, sizeof rule, "read site=test_engine+0x%llx", (unsigned long long)at.offset);
        install(rule, 1);
        assert_int_equal(decide_from(here, p[0], &d), WB_FAIL);
        assert_int_equal(decide_from((const char *)here + 1, p[0], &d), WB_PASS);

        /* the executable also answers to argv[0]'s basename */
        engine_set_process_names("alias", "test_engine");
        install("read site=alias", 1);
        assert_int_equal(decide_from(here, p[0], &d), WB_FAIL);
        assert_int_equal(decide_from(in_libc, p[0], &d), WB_PASS);
}

/* The first PT_LOAD address of the loaded object whose name ends in want. */
static int find_object(struct dl_phdr_info *info, size_t size, void *arg)
{
        const char **want = arg;
        size_t n = strlen(info->dlpi_name), w = strlen(*want);
        (void)size;
        if (n < w || strcmp(info->dlpi_name + n - w, *want) != 0)
                return 0;
        for (int i = 0; i < info->dlpi_phnum; i++)
                if (info->dlpi_phdr[i].p_type == PT_LOAD) {
                        *want = (const char *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
                        return 1;
                }
        return 0;
}

/* An answer of site= is remembered per call place, and forgotten when the
 * table of objects changes: a place in an object unloaded since is no
 * longer in it. */
static void test_site_answer_follows_the_table(void **state)
{
        const char *lib = "libresolv.so.2", *place = lib;
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        struct wb_decision d;
        int p[2];
        (void)state;

        if (!h || dl_iterate_phdr(find_object, &place) != 1) {
                print_message(
                    "# skip: libresolv.so.2 cannot be loaded here: no object to unload\n");
                skip();
        }
        make_pipe(p, O_NONBLOCK);
        site_refresh();
        install("read site=libresolv.so.2", 1);
        assert_int_equal(decide_from(place, p[0], &d), WB_FAIL);
        assert_int_equal(decide_from(place, p[0], &d), WB_FAIL); /* remembered */
        if (dlclose(h) != 0 || dl_iterate_phdr(find_object, &(const char *){lib}) != 0) {
                print_message("# skip: libresolv.so.2 stays loaded after dlclose\n");
                skip();
        }
        site_refresh();
        assert_int_equal(decide_from(place, p[0], &d), WB_PASS);
        install("read site=?", 1);
        assert_int_equal(decide_from(place, p[0], &d), WB_FAIL);
}

/* site= answers from a second thread, and then from the first, which
 * with another thread around keeps its answers in its own memo, not the
 * only thread's (engine.c). Last of the suite: the process has threads
 * from here on. */
struct site_asker {
        int fd;
        enum wb_verdict here[2], in_libc[2];
};

static void ask_twice(struct site_asker *q)
{
        struct wb_decision d;
        for (int k = 0; k < 2; k++) { /* the second answer is remembered */
                q->here[k] = decide_from((const void *)test_site_filter, q->fd, &d);
                q->in_libc[k] = decide_from((const void *)abort, q->fd, &d);
        }
}

static void *ask_in_thread(void *arg)
{
        ask_twice(arg);
        return NULL;
}

static void test_site_answers_with_threads(void **state)
{
        struct site_asker q[2];
        pthread_t t;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        site_refresh();
        install("read site=test_engine", 1);
        q[0].fd = q[1].fd = p[0];
        assert_int_equal(pthread_create(&t, NULL, ask_in_thread, &q[0]), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        ask_twice(&q[1]);
        for (int w = 0; w < 2; w++)
                for (int k = 0; k < 2; k++) {
                        assert_int_equal(q[w].here[k], WB_FAIL);
                        assert_int_equal(q[w].in_libc[k], WB_PASS);
                }
        expect_totals(0, 4, 4);
}

/* ---- several rules ---- */

static void test_first_firing_rule_decides(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read when=1 errno=ECONNRESET; read when=1,2 errno=EINTR; read when=3", 1);
        const struct wb_rule *second = engine_rule(1, &(uint64_t){0}, &(uint64_t){0});

        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(d.err, ECONNRESET);
        /* the second rule counted call 1 although the first decided it */
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(d.err, EINTR);
        assert_int_equal(d.callno, 2);
        assert_ptr_equal(d.rule, second);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(d.err, EAGAIN);
        assert_int_equal(d.callno, 3);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);

        expect_totals(0, 4, 1);
        expect_totals(1, 4, 1);
        expect_totals(2, 4, 1);
}

/* ---- output EAGAIN and bytes in flight (SPEC §4) ---- */

static void test_output_eagain_deferred_on_pipe(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("write when=1", 1);
        assert_int_equal(decide(WB_WRITE, p[1], &d), WB_PASS); /* nothing in flight */
        assert_int_equal(decide(WB_WRITE, p[1], &d), WB_PASS); /* still nothing */
        expect_totals(0, 2, 0);
        assert_int_equal(write(p[1], "x", 1), 1);
        assert_int_equal(decide(WB_WRITE, p[1], &d), WB_FAIL);
        assert_int_equal(d.err, EAGAIN);
        assert_int_equal(d.callno, 3);
        /* the deferred injection happened once; when=1 is spent */
        assert_int_equal(decide(WB_WRITE, p[1], &d), WB_PASS);
        expect_totals(0, 4, 1);
}

static void test_output_eagain_not_deferred_with_bytes_in_flight(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        assert_int_equal(write(p[1], "xy", 2), 2);
        install("write when=1", 1);
        assert_int_equal(decide(WB_WRITE, p[1], &d), WB_FAIL);
        assert_int_equal(d.callno, 1);
}

static void test_output_inflight_any_fires_at_once(void **state)
{
        struct wb_decision d;
        int p[2], sv[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        make_socketpair(SOCK_STREAM | SOCK_NONBLOCK, sv);
        install("write,send when=1 inflight=any", 1);
        assert_int_equal(decide(WB_WRITE, p[1], &d), WB_FAIL);
        assert_int_equal(d.err, EAGAIN);
        assert_int_equal(d.callno, 1);
        assert_int_equal(decide(WB_SEND, sv[0], &d), WB_FAIL);
}

/* sendfile is output by its group; splice writes only when counted on its
 * fd_out (writes_fd): a splice counted on the pipe it reads is never
 * deferred, one counted on the pipe it fills waits for bytes in flight. */
static void test_zero_copy_inflight_by_direction(void **state)
{
        struct wb_decision d;
        int p[2];
        struct wb_callinfo reads = {.call = WB_SPLICE, .len = 20};
        struct wb_callinfo writes = {.call = WB_SPLICE, .len = 20, .writes_fd = true};
        (void)state;

        make_pipe(p, O_NONBLOCK);
        reads.fd = p[0];
        writes.fd = p[1];
        assert_true(engine_call_writes(&writes));
        assert_false(engine_call_writes(&reads));
        install("splice,sendfile when=1", 1);
        assert_int_equal(decide(WB_SENDFILE, p[1], &d), WB_PASS); /* empty pipe: deferred */
        assert_int_equal(engine_decide(&writes, &d), WB_PASS);    /* the same fd, still empty */
        assert_int_equal(engine_decide(&reads, &d), WB_FAIL);     /* input side: at once */
        assert_int_equal(write(p[1], "x", 1), 1);
        assert_int_equal(engine_decide(&writes, &d), WB_FAIL); /* in flight now */
        assert_int_equal(d.callno, 3);
}

static void test_output_hard_errno_not_deferred(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("write when=1 errno=EPIPE", 1);
        assert_int_equal(decide(WB_WRITE, p[1], &d), WB_FAIL);
        assert_int_equal(d.err, EPIPE);
}

static void test_deferred_eagain_lets_next_rule_decide(void **state)
{
        struct wb_decision d;
        int p[2];
        uint64_t c, j;
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("write when=1; write when=1 short=2", 1);
        /* more than PIPE_BUF: a pipe write within it is never cut */
        assert_int_equal(decide_full(WB_WRITE, p[1], 5000, 0, NULL, &d), WB_SHORT);
        assert_int_equal(d.limit, 2);
        assert_ptr_equal(d.rule, engine_rule(1, &c, &j));
        engine_commit(&d); /* as the wrapper does when the write was cut */
        expect_totals(0, 1, 0);
        expect_totals(1, 1, 1);
}

static void test_output_eagain_deferred_on_unix_socket(void **state)
{
        struct wb_decision d;
        int sv[2];
        (void)state;

        make_socketpair(SOCK_STREAM | SOCK_NONBLOCK, sv);
        install("send when=1", 1);
        assert_int_equal(decide(WB_SEND, sv[0], &d), WB_PASS);
        assert_int_equal(send(sv[0], "abc", 3, 0), 3); /* unread by sv[1] */
        assert_int_equal(decide(WB_SEND, sv[0], &d), WB_FAIL);
        assert_int_equal(d.err, EAGAIN);
        assert_int_equal(d.callno, 2);
}

static void test_output_eagain_at_once_on_tcp(void **state)
{
        struct wb_decision d;
        struct tcp t;
        (void)state;

        make_tcp(&t);
        install("send when=1", 1);
        assert_int_equal(decide(WB_SEND, t.client, &d), WB_FAIL);
        assert_int_equal(d.err, EAGAIN);
        assert_int_equal(d.callno, 1);
}

/* ---- short= ---- */

/* bytes waiting on the socket's reading end (loopback TCP delivers at once) */
static void send_bytes(int fd, size_t n)
{
        static const char junk[16384];
        assert_true(n <= sizeof junk);
        assert_int_equal(send(fd, junk, n, 0), (ssize_t)n);
}

static void test_short(void **state)
{
        struct wb_decision d;
        struct tcp t;
        (void)state;

        make_tcp(&t);
        send_bytes(t.client, 200);
        install("read short=4", 1);
        assert_int_equal(decide_full(WB_READ, t.server, 100, 0, NULL, &d), WB_SHORT);
        assert_int_equal(d.verdict, WB_SHORT);
        assert_int_equal(d.limit, 4);
        assert_int_equal(d.callno, 1);
        assert_true(d.edge_owed);
        /* a short is an injection only once the wrapper saw the cut take */
        expect_totals(0, 1, 0);
        engine_commit(&d);
        expect_totals(0, 1, 1);
        /* nothing to cut */
        assert_int_equal(decide_full(WB_READ, t.server, 4, 0, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_READ, t.server, 3, 0, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_READ, t.server, 5, 0, NULL, &d), WB_SHORT);
        assert_int_equal(d.callno, 4);
        engine_commit(&d);
        expect_totals(0, 4, 2);
        /* max= counts committed cuts only: an uncommitted one leaves room */
        install("read short=4 max=1", 1);
        assert_int_equal(decide_full(WB_READ, t.server, 100, 0, NULL, &d), WB_SHORT);
        assert_int_equal(decide_full(WB_READ, t.server, 100, 0, NULL, &d), WB_SHORT);
        engine_commit(&d);
        assert_int_equal(decide_full(WB_READ, t.server, 100, 0, NULL, &d), WB_PASS);
        expect_totals(0, 3, 1);

        /* output needs no bytes in flight for a short count */
        install("write short=1", 1);
        assert_int_equal(decide_full(WB_WRITE, t.client, 2, 0, NULL, &d), WB_SHORT);
        assert_int_equal(d.limit, 1);
        assert_int_equal(d.sotype, SOCK_STREAM);

        /* edge=none: nothing owed */
        install("read short=4 edge=none", 1);
        assert_int_equal(decide_full(WB_READ, t.server, 100, 0, NULL, &d), WB_SHORT);
        assert_false(d.edge_owed);
}

/* ---- faithful short counts (SPEC 4, shim/faithful.c) ---- */

static enum wb_verdict decide_msg(enum wb_call call, int fd, size_t len, bool control,
                                  struct wb_decision *d)
{
        struct wb_callinfo c = {.call = call, .fd = fd, .len = len, .control = control};
        memset(d, 0, sizeof *d);
        return engine_decide(&c, d);
}

static void test_short_local_ipc_reads(void **state)
{
        static char junk[10000];
        struct wb_decision d;
        int p[2], sv[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        make_socketpair(SOCK_STREAM | SOCK_NONBLOCK, sv);
        install("read short=4", 1);
        /* empty: nothing to cut (the read says EAGAIN) */
        assert_int_equal(decide_full(WB_READ, p[0], 100, 0, NULL, &d), WB_PASS);
        /* one small write is not split */
        assert_int_equal(write(p[1], junk, 20), 20);
        assert_int_equal(write(sv[1], junk, 20), 20);
        assert_int_equal(decide_full(WB_READ, p[0], 100, 0, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_READ, sv[0], 100, 0, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_READ, p[0], 9, 0, NULL, &d), WB_PASS);
        /* more than PIPE_BUF waiting: at least PIPE_BUF */
        assert_int_equal(write(p[1], junk, sizeof junk), (ssize_t)sizeof junk);
        assert_int_equal(write(sv[1], junk, sizeof junk), (ssize_t)sizeof junk);
        assert_int_equal(decide_full(WB_READ, p[0], 8192, 0, NULL, &d), WB_SHORT);
        assert_int_equal(d.limit, PIPE_BUF);
        assert_int_equal(decide_full(WB_READ, sv[0], 8192, 0, NULL, &d), WB_SHORT);
        assert_int_equal(d.limit, PIPE_BUF);
        assert_int_equal(decide_full(WB_READ, p[0], 3000, 0, NULL, &d), WB_PASS);
        /* a rule's own larger N stands */
        install("read short=5000", 1);
        assert_int_equal(decide_full(WB_READ, p[0], 8192, 0, NULL, &d), WB_SHORT);
        assert_int_equal(d.limit, 5000);
}

static void test_short_local_ipc_writes(void **state)
{
        struct wb_decision d;
        int p[2], sv[2];
        struct tcp t;
        (void)state;

        make_pipe(p, O_NONBLOCK);
        make_socketpair(SOCK_STREAM | SOCK_NONBLOCK, sv);
        make_tcp(&t);
        install("output short=5", 1);
        assert_int_equal(decide_full(WB_WRITE, p[1], PIPE_BUF, 0, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_WRITEV, p[1], 16, 0, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_SEND, sv[1], PIPE_BUF, 0, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_WRITE, p[1], PIPE_BUF + 1, 0, NULL, &d), WB_SHORT);
        assert_int_equal(d.limit, 5);
        assert_int_equal(decide_full(WB_SEND, sv[1], PIPE_BUF + 1, 0, NULL, &d), WB_SHORT);
        assert_int_equal(decide_full(WB_SEND, t.client, 16, 0, NULL, &d), WB_SHORT);
        /* the mmsg calls on a unix stream: a message is not split */
        assert_int_equal(decide_full(WB_SENDMMSG, sv[1], 3, 0, NULL, &d), WB_PASS);
}

static void test_short_never_cuts_control_messages(void **state)
{
        struct wb_decision d;
        struct tcp t;
        (void)state;

        make_tcp(&t);
        send_bytes(t.client, 100);
        install("recvmsg,sendmsg,recvmmsg,sendmmsg short=1", 1);
        assert_int_equal(decide_msg(WB_RECVMSG, t.server, 50, true, &d), WB_PASS);
        assert_int_equal(decide_msg(WB_SENDMSG, t.client, 50, true, &d), WB_PASS);
        assert_int_equal(decide_msg(WB_SENDMMSG, t.client, 2, true, &d), WB_PASS);
        assert_int_equal(decide_msg(WB_RECVMMSG, t.server, 2, true, &d), WB_PASS);
        expect_totals(0, 4, 0);
        assert_int_equal(decide_msg(WB_RECVMSG, t.server, 50, false, &d), WB_SHORT);
        assert_int_equal(decide_msg(WB_SENDMSG, t.client, 50, false, &d), WB_SHORT);
}

static void test_short_flags(void **state)
{
        struct wb_decision d;
        struct tcp t;
        (void)state;

        make_tcp(&t);
        send_bytes(t.client, 100);
        install("recv,send short=1", 1);
        assert_int_equal(decide_full(WB_RECV, t.server, 50, MSG_PEEK, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_RECV, t.server, 50, MSG_OOB, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_SEND, t.client, 50, MSG_OOB, NULL, &d), WB_PASS);
        /* MSG_WAITALL returns short on a non-blocking call, never on a blocking one */
        assert_int_equal(decide_full(WB_RECV, t.server, 50, MSG_WAITALL, NULL, &d), WB_SHORT);
        install("recv short=1 blocking=any", 1);
        int c2 = track(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        struct sockaddr_in a = loopback(t.port);
        assert_int_equal(connect(c2, (struct sockaddr *)&a, sizeof a), 0);
        int s2 = track(accept4(t.listener, NULL, NULL, SOCK_CLOEXEC)); /* blocking */
        send_bytes(c2, 100);
        assert_int_equal(decide_full(WB_RECV, s2, 50, MSG_WAITALL, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_RECV, s2, 50, MSG_WAITALL | MSG_DONTWAIT, NULL, &d),
                         WB_SHORT);
        assert_int_equal(decide_full(WB_RECV, s2, 50, 0, NULL, &d), WB_SHORT);
}

static void test_short_half_closed_and_lowat(void **state)
{
        struct wb_decision d;
        struct tcp t;
        int p[2], big = 10;
        static char junk[6000];
        (void)state;

        make_tcp(&t);
        send_bytes(t.client, 100);
        install("read short=1", 1);
        assert_int_equal(decide_full(WB_READ, t.server, 50, 0, NULL, &d), WB_SHORT);
        /* the peer has sent all it will: everything is there */
        assert_int_equal(shutdown(t.client, SHUT_WR), 0);
        assert_int_equal(decide_full(WB_READ, t.server, 50, 0, NULL, &d), WB_PASS);

        make_pipe(p, O_NONBLOCK);
        assert_int_equal(write(p[1], junk, sizeof junk), (ssize_t)sizeof junk);
        assert_int_equal(decide_full(WB_READ, p[0], 8192, 0, NULL, &d), WB_SHORT);
        close_fd(p[1]);
        assert_int_equal(decide_full(WB_READ, p[0], 8192, 0, NULL, &d), WB_PASS);

        /* SO_RCVLOWAT: poll would not report what a cut leaves below the mark */
        make_tcp(&t);
        send_bytes(t.client, 100);
        assert_int_equal(setsockopt(t.server, SOL_SOCKET, SO_RCVLOWAT, &big, sizeof big), 0);
        assert_int_equal(decide_full(WB_READ, t.server, 50, 0, NULL, &d), WB_PASS);
}

static void test_connect_injected_on_connection_sockets_only(void **state)
{
        struct wb_decision d;
        struct sockaddr_in a = loopback(9);
        int udp = track(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        int tcp = track(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        int ud = track(socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        int us = track(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        (void)state;

        install("connect", 1);
        assert_int_equal(decide_full(WB_CONNECT, udp, 0, 0, (struct sockaddr *)&a, &d), WB_PASS);
        assert_int_equal(decide_full(WB_CONNECT, ud, 0, 0, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_CONNECT, tcp, 0, 0, (struct sockaddr *)&a, &d), WB_FAIL);
        assert_int_equal(d.err, EINPROGRESS);
        assert_int_equal(decide_full(WB_CONNECT, us, 0, 0, NULL, &d), WB_FAIL);
        assert_int_equal(d.err, EAGAIN);
}

static void test_first_connect(void **state)
{
        int s = track(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        (void)state;

        assert_true(fd_state_first_connect(s));
        assert_false(fd_state_first_connect(s));
        assert_false(fd_state_first_connect(s));
        /* a new file on the number: its first connect again */
        fd_state_forget(s);
        assert_true(fd_state_first_connect(s));
}

static void test_short_never_cuts_datagrams(void **state)
{
        struct wb_decision d;
        int sv[2];
        struct tcp t;
        (void)state;

        make_socketpair(SOCK_DGRAM | SOCK_NONBLOCK, sv);
        make_tcp(&t);
        install("recv,send short=4", 1);
        assert_int_equal(decide_full(WB_RECV, sv[0], 100, 0, NULL, &d), WB_PASS);
        assert_int_equal(decide_full(WB_SEND, sv[1], 100, 0, NULL, &d), WB_PASS);
        expect_totals(0, 2, 0);
        assert_int_equal(decide_full(WB_RECV, t.client, 100, 0, NULL, &d), WB_SHORT);

        int u = track(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        assert_int_equal(decide_full(WB_SEND, u, 100, 0, NULL, &d), WB_PASS);

        /* the mmsg calls are shortened by whole messages: len counts them */
        install("sendmmsg,recvmmsg short=4", 1);
        assert_int_equal(decide_full(WB_SENDMMSG, sv[0], 3, 0, NULL, &d), WB_SHORT);
        assert_int_equal(decide_full(WB_RECVMMSG, sv[1], 1, 0, NULL, &d), WB_PASS);
}

/* ---- pause, until=poll, totals ---- */

static void test_pause_counts_but_never_injects(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read when=1+", 1);
        engine_pause(true);
        for (int i = 0; i < 3; i++)
                assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        expect_totals(0, 3, 0);
        engine_pause(false);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 4);
        expect_totals(0, 4, 1);

        /* a call number that passed during the pause is not made up later */
        install("read when=2", 1);
        engine_pause(true);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        engine_pause(false);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        expect_totals(0, 3, 0);
}

/* A thread's own pause: its calls count, the others' still fire. */
struct pause_asker {
        int fd;
        bool was; /* the setting a fresh thread starts with */
        enum wb_verdict v;
};

static void *ask_paused_in_thread(void *arg)
{
        struct pause_asker *q = arg;
        struct wb_decision d;

        q->was = engine_pause_thread(true);
        q->v = decide(WB_READ, q->fd, &d);
        engine_pause_thread(false);
        return NULL;
}

static void test_pause_thread_holds_only_that_thread(void **state)
{
        struct pause_asker q;
        struct wb_decision d;
        pthread_t t;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read when=1+", 1);
        q.fd = p[0];
        assert_int_equal(pthread_create(&t, NULL, ask_paused_in_thread, &q), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_false(q.was);
        assert_int_equal(q.v, WB_PASS);
        expect_totals(0, 1, 0); /* counted all the same */
        /* this thread is not paused: the next call is number 2, and fires */
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 2);

        /* here, the previous setting comes back, and a process-wide resume
         * does not lift a thread's own pause */
        assert_false(engine_pause_thread(true));
        engine_pause(false);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        assert_true(engine_pause_thread(false));
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 4);
        expect_totals(0, 4, 2);

        /* a child forked by a paused thread is that thread: paused */
        engine_pause_thread(true);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(engine_pause_thread(false) ? 0 : 1);
        engine_pause_thread(false);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_until_poll(void **state)
{
        struct wb_decision d;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read when=1 until=poll", 1);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 2);
        /* a wait that did not report it ready changes nothing */
        fd_state_note_wait(p[0], false);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        fd_state_note_wait(p[0], true);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        expect_totals(0, 5, 3);
}

static void test_rule_totals_and_accessors(void **state)
{
        struct wb_decision d;
        int a[2], b[2];
        uint64_t want_counted[2] = {0, 0}, want_injected[2] = {0, 0};
        uint64_t c, j;
        (void)state;

        make_pipe(a, O_NONBLOCK);
        make_pipe(b, O_NONBLOCK);
        install("read when=2+2 max=5; read,readv prob=0.5 errno=EINTR", 77);
        assert_int_equal(engine_rule_count(), 2);
        assert_int_equal(engine_seed(), 77);
        assert_string_equal(engine_rule(0, &c, &j)->text, "read when=2+2 max=5");
        assert_string_equal(engine_rule(1, &c, &j)->text, "read,readv prob=0.5 errno=EINTR");
        assert_null(engine_rule(2, &c, &j));

        for (int i = 0; i < 200; i++) {
                int fd = i % 3 ? a[0] : b[0];
                enum wb_call call = i % 5 ? WB_READ : WB_READV;
                enum wb_verdict v = decide(call, fd, &d);

                if (call == WB_READ)
                        want_counted[0]++;
                want_counted[1]++;
                if (v == WB_FAIL)
                        want_injected[d.err == EINTR]++;
        }
        for (unsigned i = 0; i < 2; i++) {
                totals(i, &c, &j);
                assert_int_equal(c, want_counted[i]);
                assert_int_equal(j, want_injected[i]);
        }
        assert_int_equal(want_injected[0], 10); /* max=5 on each of two fds */
        assert_true(want_injected[1] > 0);

        /* a new set starts from zero */
        install("read", 1);
        expect_totals(0, 0, 0);
        assert_int_equal(engine_rule_count(), 1);
        install("", 1);
        assert_int_equal(engine_rule_count(), 0);
        assert_int_equal(decide(WB_READ, a[0], &d), WB_PASS);
}

/* after fork: the same rules, every count from zero */
static void test_restart_counts(void **state)
{
        struct wb_decision d;
        int p[2];
        uint64_t c, j;
        (void)state;

        make_pipe(p, O_NONBLOCK);
        install("read when=1; read when=2 per=process", 5);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        engine_restart_counts();
        assert_int_equal(engine_rule_count(), 2);
        assert_int_equal(engine_seed(), 5);
        assert_string_equal(engine_rule(1, &c, &j)->text, "read when=2 per=process");
        expect_totals(0, 0, 0);
        expect_totals(1, 0, 0);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 1);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_int_equal(d.callno, 2);
        assert_string_equal(d.rule->text, "read when=2 per=process");
}

/* Rules that last as long as the process (the embedded library's, a
 * file's) are read where they are; any others are copied, so the caller may
 * reuse its buffer. Either way the set decides the same, reseeded too. */
static void test_lasting_rules_read_in_place(void **state)
{
        static struct wb_rule kept[4];
        struct wb_rule mine[4];
        struct wb_decision d;
        uint64_t c, j;
        unsigned n;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        n = parse_list_ok("write fd=1; read when=2", kept, N_ELEMS(kept));
        assert_int_equal(engine_install(kept, n, 9, true), 0);
        assert_ptr_equal(engine_rule(1, &c, &j), &kept[1]);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_ptr_equal(d.rule, &kept[1]);
        assert_int_equal(engine_reseed(10), 0);
        assert_ptr_equal(engine_rule(1, &c, &j), &kept[1]);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_PASS);
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);

        n = parse_list_ok("write fd=1; read when=1", mine, N_ELEMS(mine));
        assert_int_equal(engine_install(mine, n, 9, false), 0);
        assert_ptr_not_equal(engine_rule(1, &c, &j), &mine[1]);
        memset(mine, 0, sizeof mine); /* the caller's buffer, reused */
        assert_string_equal(engine_rule(1, &c, &j)->text, "read when=1");
        assert_int_equal(decide(WB_READ, p[0], &d), WB_FAIL);
        assert_string_equal(d.rule->text, "read when=1");
}

/* A call walks the rules that name it, in their order, whatever the other
 * calls' lists hold: 40 rules over two calls, each call's first firing rule
 * decides and every rule naming it counts it. */
static void test_each_call_walks_its_own_rules(void **state)
{
        static const char *const calls[] = {"read", "readv", "read,readv"};
        char rules[40 * 24] = "";
        struct wb_decision d;
        uint64_t c, j;
        int p[2];
        (void)state;

        make_pipe(p, O_NONBLOCK);
        /* rule i names calls[i % 3]; only 37 (readv) and 39 (read) fire */
        for (unsigned i = 0; i < 40; i++) {
                char one[24];
                snprintf(one, sizeof one, "%s%s when=%s", i ? "; " : "", calls[i % 3],
                         i == 37 || i == 39 ? "1..9" : "99");
                strcat(rules, one);
        }
        install(rules, 1);
        /* a read, then a readv: the rule that fires, then rules 36-39's
         * totals (counted, injected) */
        static const struct {
                enum wb_call call;
                unsigned fires;
                uint64_t totals[4][2];
        } steps[] = {{WB_READ, 39, {{1, 0}, {0, 0}, {1, 0}, {1, 1}}},
                     {WB_READV, 37, {{1, 0}, {1, 1}, {2, 0}, {1, 1}}}};
        for (size_t k = 0; k < N_ELEMS(steps); k++) {
                assert_int_equal(decide(steps[k].call, p[0], &d), WB_FAIL);
                assert_ptr_equal(d.rule, engine_rule(steps[k].fires, &c, &j));
                for (unsigned r = 0; r < 4; r++)
                        expect_totals(36 + r, steps[k].totals[r][0], steps[k].totals[r][1]);
        }
}

/* ---- default errnos per call and family ---- */

static void test_default_errnos(void **state)
{
        struct wb_decision d;
        struct tcp t;
        (void)state;

        make_tcp(&t);
        set_nonblocking(t.listener);
        install("accept; connect", 1);
        /* accept names accept4 too */
        assert_int_equal(decide(WB_ACCEPT4, t.listener, &d), WB_FAIL);
        assert_int_equal(d.err, EAGAIN);
        assert_int_equal(decide(WB_ACCEPT, t.listener, &d), WB_FAIL);
        assert_int_equal(d.err, EAGAIN);

        int s = track(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        struct sockaddr_in to = loopback(t.port);
        assert_int_equal(decide_full(WB_CONNECT, s, 0, 0, (struct sockaddr *)&to, &d), WB_FAIL);
        assert_int_equal(d.err, EINPROGRESS);

        int u = track(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        struct sockaddr_un path = {.sun_family = AF_UNIX, .sun_path = "/nonexistent/sock"};
        assert_int_equal(decide_full(WB_CONNECT, u, 0, 0, (struct sockaddr *)&path, &d), WB_FAIL);
        assert_int_equal(d.err, EAGAIN);

        int s6 = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s6 >= 0) {
                struct sockaddr_in6 to6 = {.sin6_family = AF_INET6,
                                           .sin6_port = htons((uint16_t)t.port)};
                to6.sin6_addr = in6addr_loopback;
                track(s6);
                assert_int_equal(decide_full(WB_CONNECT, s6, 0, 0, (struct sockaddr *)&to6, &d),
                                 WB_FAIL);
                assert_int_equal(d.err, EINPROGRESS);
                assert_int_equal(d.family, WB_FAMILY_INET6);
        }
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
            T(test_when_fires_on_exact_calls),
            T(test_no_trigger_fires_every_call),
            T(test_unnamed_calls_pass_uncounted),
            T(test_max_caps_per_fd),
            T(test_max_caps_per_process),
            T(test_per_fd_counts_each_fd),
            T(test_per_fd_counts_near_and_far_fds),
            T(test_fd_facts_near_and_far),
            T(test_per_process_counts_across_fds),
            T(test_forgotten_fd_counts_from_one),
            T(test_reused_fd_number_counts_from_one),
            T(test_reused_fd_number_is_probed_again),
            T(test_prob_is_deterministic),
            T(test_prob_matches_exposed_function),
            T(test_prob_scope_is_fd_order_not_number),
            T(test_prob_fd_order_is_per_rule),
            T(test_prob_reused_fd_number_is_a_new_fd),
            T(test_prob_fd_order_counts_while_paused),
            T(test_reseed_restarts_like_a_fresh_install),
            T(test_prob_rate),
            T(test_prob_zero_and_one),
            T(test_blocking_fd_not_counted_by_default),
            T(test_msg_dontwait_counts_blocking_socket),
            T(test_type_default_excludes_regular_file),
            T(test_type_default_excludes_eventfd),
            T(test_type_tty),
            T(test_family_filter),
            T(test_port_filter),
            T(test_fd_filter),
            T(test_process_filter),
            T(test_no_rules_install_no_set),
            T(test_status_keeps_texts_for_reports_only),
            T(test_site_filter),
            T(test_site_answer_follows_the_table),
            T(test_first_firing_rule_decides),
            T(test_output_eagain_deferred_on_pipe),
            T(test_output_eagain_not_deferred_with_bytes_in_flight),
            T(test_output_inflight_any_fires_at_once),
            T(test_zero_copy_inflight_by_direction),
            T(test_output_hard_errno_not_deferred),
            T(test_deferred_eagain_lets_next_rule_decide),
            T(test_output_eagain_deferred_on_unix_socket),
            T(test_output_eagain_at_once_on_tcp),
            T(test_short),
            T(test_short_never_cuts_datagrams),
            T(test_short_local_ipc_reads),
            T(test_short_local_ipc_writes),
            T(test_short_never_cuts_control_messages),
            T(test_short_flags),
            T(test_short_half_closed_and_lowat),
            T(test_connect_injected_on_connection_sockets_only),
            T(test_first_connect),
            T(test_pause_counts_but_never_injects),
            T(test_pause_thread_holds_only_that_thread),
            T(test_until_poll),
            T(test_rule_totals_and_accessors),
            T(test_restart_counts),
            T(test_lasting_rules_read_in_place),
            T(test_each_call_walks_its_own_rules),
            T(test_default_errnos),
            T(test_site_answers_with_threads),
        };
        return cmocka_run_group_tests_name("engine", tests, group_setup, NULL);
}
