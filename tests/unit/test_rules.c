/* test_rules.c - the rule language of SPEC §3: rule_parse, rule_parse_list,
 * rule_errno, rule_when_matches and rule_format.
 */
#include "wbtest.h"

#include "fmt.h"

#include <errno.h>

/* ---- CALLS ---- */

static void test_single_calls(void **state)
{
        static const struct {
                const char *name;
                uint32_t mask;
        } cases[] = {
            {"read", WB_CALL_BIT(WB_READ)},
            {"readv", WB_CALL_BIT(WB_READV)},
            {"recv", WB_CALL_BIT(WB_RECV)},
            {"recvfrom", WB_CALL_BIT(WB_RECVFROM)},
            {"recvmsg", WB_CALL_BIT(WB_RECVMSG)},
            {"recvmmsg", WB_CALL_BIT(WB_RECVMMSG)},
            {"write", WB_CALL_BIT(WB_WRITE)},
            {"writev", WB_CALL_BIT(WB_WRITEV)},
            {"send", WB_CALL_BIT(WB_SEND)},
            {"sendto", WB_CALL_BIT(WB_SENDTO)},
            {"sendmsg", WB_CALL_BIT(WB_SENDMSG)},
            {"sendmmsg", WB_CALL_BIT(WB_SENDMMSG)},
            /* the word accept names both (SPEC §3) */
            {"accept", WB_CALL_BIT(WB_ACCEPT) | WB_CALL_BIT(WB_ACCEPT4)},
            {"accept4", WB_CALL_BIT(WB_ACCEPT4)},
            {"connect", WB_CALL_BIT(WB_CONNECT)},
        };
        (void)state;

        for (size_t i = 0; i < N_ELEMS(cases); i++) {
                struct wb_rule r = parse_ok(cases[i].name);
                assert_int_equal(r.calls, cases[i].mask);
        }
        /* and the name tables agree with the enum */
        for (int c = 0; c < WB_CALL_COUNT; c++) {
                const char *name = rule_call_name((enum wb_call)c);
                assert_int_equal(rule_call_by_name(name, strlen(name)), c);
        }
        assert_int_equal(rule_call_by_name("reads", 5), -1);
        assert_int_equal(rule_call_by_name("read", 3), -1); /* "rea" */
}

static void test_call_groups(void **state)
{
        const uint32_t input = WB_CALL_BIT(WB_READ) | WB_CALL_BIT(WB_READV) | WB_CALL_BIT(WB_RECV) |
                               WB_CALL_BIT(WB_RECVFROM) | WB_CALL_BIT(WB_RECVMSG) |
                               WB_CALL_BIT(WB_RECVMMSG);
        const uint32_t output = WB_CALL_BIT(WB_WRITE) | WB_CALL_BIT(WB_WRITEV) |
                                WB_CALL_BIT(WB_SEND) | WB_CALL_BIT(WB_SENDTO) |
                                WB_CALL_BIT(WB_SENDMSG) | WB_CALL_BIT(WB_SENDMMSG) |
                                WB_CALL_BIT(WB_SENDFILE);
        const uint32_t accept = WB_CALL_BIT(WB_ACCEPT) | WB_CALL_BIT(WB_ACCEPT4);
        const uint32_t connect = WB_CALL_BIT(WB_CONNECT);
        /* named alone, in no group but all */
        const uint32_t zerocopy = WB_CALL_BIT(WB_SPLICE) | WB_CALL_BIT(WB_TEE);
        (void)state;

        assert_int_equal(parse_ok("input").calls, input);
        assert_int_equal(parse_ok("output").calls, output);
        assert_int_equal(parse_ok("accept").calls, accept);
        assert_int_equal(parse_ok("connect").calls, connect);
        assert_int_equal(parse_ok("all").calls, input | output | accept | connect | zerocopy);
        assert_int_equal(parse_ok("input,output,accept,connect").calls,
                         input | output | accept | connect);
        assert_int_equal(parse_ok("sendfile").calls, WB_CALL_BIT(WB_SENDFILE));
        assert_int_equal(parse_ok("splice,tee").calls, zerocopy);
        assert_int_equal(parse_ok("input,output,accept,connect,splice,tee").calls,
                         parse_ok("all").calls);
        assert_int_equal(parse_ok("input,connect").calls, input | connect);
        assert_int_equal(parse_ok("read,send,accept4").calls,
                         WB_CALL_BIT(WB_READ) | WB_CALL_BIT(WB_SEND) | WB_CALL_BIT(WB_ACCEPT4));
        assert_int_equal(parse_ok("output,recvmsg").calls, output | WB_CALL_BIT(WB_RECVMSG));
        assert_int_equal(parse_ok("read,read").calls, WB_CALL_BIT(WB_READ));
        assert_int_equal(parse_ok("accept4,accept").calls, accept);
        assert_int_equal(parse_ok("all,read").calls, input | output | accept | connect | zerocopy);
}

/* ---- actions ---- */

static void test_errno_by_name_and_number(void **state)
{
        static const struct {
                const char *text;
                int err;
        } cases[] = {
            {"read errno=EAGAIN", EAGAIN},
            {"read errno=EWOULDBLOCK", EAGAIN},
            {"read errno=ECONNRESET", ECONNRESET},
            {"read errno=EINTR", EINTR},
            {"write errno=EPIPE", EPIPE},
            {"connect errno=ECONNREFUSED", ECONNREFUSED},
            {"connect errno=ETIMEDOUT", ETIMEDOUT},
            {"accept errno=ECONNABORTED", ECONNABORTED},
            {"accept errno=EMFILE", EMFILE},
            {"read errno=EINPROGRESS", EINPROGRESS},
            {"read errno=11", 11},
            {"read errno=104", 104},
            {"read errno=1", 1},
            {"read errno=4095", 4095},
        };
        (void)state;

        for (size_t i = 0; i < N_ELEMS(cases); i++) {
                struct wb_rule r = parse_ok(cases[i].text);
                assert_int_equal(r.action, WB_ACT_ERRNO);
                assert_int_equal(r.err, cases[i].err);
        }
        assert_int_equal(rule_errno_by_name("EWOULDBLOCK", 11), EAGAIN);
        assert_int_equal(rule_errno_by_name("ECONNRESET", 10), ECONNRESET);
        assert_int_equal(rule_errno_by_name("ENOPE", 5), -1);
        /* printing a value finds the primary name, not the alias */
        assert_string_equal(rule_errno_name(EAGAIN), "EAGAIN");
        assert_string_equal(rule_errno_name(ECONNRESET), "ECONNRESET");
        assert_null(rule_errno_name(4000));
}

static void test_short(void **state)
{
        struct wb_rule r;
        (void)state;

        r = parse_ok("read short=1");
        assert_int_equal(r.action, WB_ACT_SHORT);
        assert_int_equal(r.short_n, 1);
        r = parse_ok("input,output short=4096");
        assert_int_equal(r.action, WB_ACT_SHORT);
        assert_int_equal(r.short_n, 4096);
        r = parse_ok("sendmmsg,recvmmsg short=9223372036854775807");
        assert_int_equal(r.short_n, 9223372036854775807ull);
}

/* edge= (with short= only): the event owed after a short transfer on an
 * edge-triggered fd, owed by default */
static void test_edge(void **state)
{
        struct wb_rule r;
        (void)state;

        r = parse_ok("read short=1");
        assert_false(r.edge_none);
        r = parse_ok("read short=1 edge=owed");
        assert_false(r.edge_none);
        r = parse_ok("input,output edge=none short=3");
        assert_true(r.edge_none);
        assert_int_equal(r.short_n, 3);
}

/* ---- when= ---- */

static bool when_single(uint64_t n)
{
        return n == 5;
}
static bool when_range(uint64_t n)
{
        return n >= 3 && n <= 7;
}
static bool when_from(uint64_t n)
{
        return n >= 4;
}
static bool when_step(uint64_t n)
{
        return n >= 2 && (n - 2) % 3 == 0;
}
static bool when_range_step(uint64_t n)
{
        return n == 10 || n == 17 || n == 24;
}
static bool when_spec_example(uint64_t n)
{
        return n == 1 || (n >= 4 && n <= 6) || (n >= 10 && n % 5 == 0);
}
static bool when_every(uint64_t n)
{
        return n >= 1;
}
static bool when_first(uint64_t n)
{
        return n == 1;
}
static bool when_odd(uint64_t n)
{
        return n % 2 == 1;
}
static bool when_mixed(uint64_t n)
{
        return n == 2 || n == 3 || (n >= 8 && n <= 12) || (n >= 50 && (n - 50) % 25 == 0) ||
               n == 100;
}

static void test_when_forms(void **state)
{
        static const struct {
                const char *text;
                bool (*expect)(uint64_t);
                unsigned n_items;
        } cases[] = {
            {"read when=5", when_single, 1},
            {"read when=3..7", when_range, 1},
            {"read when=4+", when_from, 1},
            {"read when=2+3", when_step, 1},
            {"read when=10..30+7", when_range_step, 1},
            {"read when=1,4..6,10+5", when_spec_example, 3},
            {"read when=1+", when_every, 1},
            {"read when=1+1", when_every, 1},
            {"read when=1..1", when_first, 1},
            {"read when=1", when_first, 1},
            {"read when=1+2", when_odd, 1},
            {"read when=3,2,8..12,50+25,100", when_mixed, 5},
        };
        (void)state;

        for (size_t i = 0; i < N_ELEMS(cases); i++) {
                struct wb_rule r = parse_ok(cases[i].text);
                assert_int_equal(r.n_when, cases[i].n_items);
                for (uint64_t n = 1; n <= 300; n++)
                        if (rule_when_matches(&r, n) != cases[i].expect(n))
                                fail_because(
                                    "%s: call %llu %s", cases[i].text, (unsigned long long)n,
                                    cases[i].expect(n) ? "should match" : "should not match");
                /* far out: open items keep going, closed ones stay shut */
                const uint64_t far[] = {1000000000000ull, 1000000000005ull, UINT64_MAX - 1,
                                        UINT64_MAX};
                for (size_t k = 0; k < N_ELEMS(far); k++)
                        if (rule_when_matches(&r, far[k]) != cases[i].expect(far[k]))
                                fail_because("%s: call %llu", cases[i].text,
                                             (unsigned long long)far[k]);
        }
}

static void test_when_items_stored(void **state)
{
        struct wb_rule r = parse_ok("read when=1,4..6,10+5,3..9+2,7+");
        (void)state;

        assert_int_equal(r.n_when, 5);
        assert_int_equal(r.when[0].first, 1);
        assert_int_equal(r.when[0].last, 1);
        assert_int_equal(r.when[1].first, 4);
        assert_int_equal(r.when[1].last, 6);
        assert_int_equal(r.when[1].step, 1);
        assert_int_equal(r.when[2].first, 10);
        assert_true(r.when[2].last == WB_WHEN_OPEN);
        assert_int_equal(r.when[2].step, 5);
        assert_int_equal(r.when[3].first, 3);
        assert_int_equal(r.when[3].last, 9);
        assert_int_equal(r.when[3].step, 2);
        assert_int_equal(r.when[4].first, 7);
        assert_true(r.when[4].last == WB_WHEN_OPEN);
        assert_int_equal(r.when[4].step, 1);

        /* sixteen items is the limit, and it is allowed */
        r = parse_ok("read when=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16");
        assert_int_equal(r.n_when, 16);
        assert_true(rule_when_matches(&r, 16));
        assert_false(rule_when_matches(&r, 17));

        /* no when=: no items (the engine then counts every call as firing) */
        r = parse_ok("read");
        assert_int_equal(r.n_when, 0);
}

/* ---- triggers, scope, filters ---- */

static void test_prob_forms(void **state)
{
        static const struct {
                const char *text;
                double prob;
        } cases[] = {
            {"read prob=0", 0.0},     {"read prob=1", 1.0},      {"read prob=0.25", 0.25},
            {"read prob=.5", 0.5},    {"read prob=1.0", 1.0},    {"read prob=0.0", 0.0},
            {"read prob=0.", 0.0},    {"read prob=0.3", 0.3},    {"read prob=0.000001", 1e-6},
            {"read prob=1.000", 1.0}, {"read prob=00.75", 0.75},
        };
        (void)state;

        for (size_t i = 0; i < N_ELEMS(cases); i++) {
                struct wb_rule r = parse_ok(cases[i].text);
                assert_true(r.has_prob);
                if (r.prob < cases[i].prob - 1e-12 || r.prob > cases[i].prob + 1e-12)
                        fail_because("%s: prob %.17g", cases[i].text, r.prob);
        }
        assert_false(parse_ok("read").has_prob);
}

static void test_scope_and_trigger_keys(void **state)
{
        struct wb_rule r;
        (void)state;

        r = parse_ok("read max=3");
        assert_int_equal(r.max, 3);
        r = parse_ok("read max=9223372036854775807");
        assert_int_equal(r.max, 9223372036854775807ull);
        r = parse_ok("read until=poll");
        assert_true(r.until_poll);
        r = parse_ok("read per=fd");
        assert_false(r.per_process);
        r = parse_ok("read per=process");
        assert_true(r.per_process);
}

static void test_filter_keys(void **state)
{
        struct wb_rule r;
        (void)state;

        r = parse_ok("read fd=0");
        assert_int_equal(r.fd, 0);
        r = parse_ok("read fd=2147483647");
        assert_int_equal(r.fd, 2147483647);

        r = parse_ok("read type=file");
        assert_int_equal(r.types, WB_TYPE_FILE);
        r = parse_ok("read type=socket,pipe,tty,file,other");
        assert_int_equal(r.types, WB_TYPE_SOCKET | WB_TYPE_PIPE | WB_TYPE_TTY | WB_TYPE_FILE |
                                      WB_TYPE_OTHER);
        r = parse_ok("read type=other,pipe");
        assert_int_equal(r.types, WB_TYPE_OTHER | WB_TYPE_PIPE);

        r = parse_ok("recv family=unix");
        assert_int_equal(r.families, WB_FAMILY_UNIX);
        r = parse_ok("recv family=inet,inet6");
        assert_int_equal(r.families, WB_FAMILY_INET | WB_FAMILY_INET6);
        r = parse_ok("recv family=inet6,unix,inet");
        assert_int_equal(r.families, WB_FAMILY_INET | WB_FAMILY_INET6 | WB_FAMILY_UNIX);

        r = parse_ok("connect port=1");
        assert_int_equal(r.port, 1);
        r = parse_ok("connect port=65535");
        assert_int_equal(r.port, 65535);

        r = parse_ok("write inflight=any");
        assert_true(r.inflight_any);
        r = parse_ok("write inflight=yes");
        assert_false(r.inflight_any);
        r = parse_ok("read blocking=any");
        assert_true(r.blocking_any);
        r = parse_ok("read blocking=no");
        assert_false(r.blocking_any);

        r = parse_ok("read process=python3");
        assert_string_equal(r.process, "python3");
        r = parse_ok("read process=python3.11");
        assert_string_equal(r.process, "python3.11");
        /* 63 characters fit */
        r = parse_ok(
            "read process=abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc");
        assert_int_equal(strlen(r.process), 63);
}

static void test_site(void **state)
{
        struct wb_rule r;
        (void)state;

        r = parse_ok("read");
        assert_string_equal(r.site, "");
        assert_false(r.site_has_offset);

        r = parse_ok("read site=libmylib.so");
        assert_string_equal(r.site, "libmylib.so");
        assert_false(r.site_has_offset);

        r = parse_ok("recv site=python3.11+0x1a2f0");
        assert_string_equal(r.site, "python3.11");
        assert_true(r.site_has_offset);
        assert_int_equal(r.site_offset, 0x1a2f0);

        /* a '+' inside a name is the name's: only a last +0x starts an offset */
        r = parse_ok("write site=libstdc++.so.6");
        assert_string_equal(r.site, "libstdc++.so.6");
        assert_false(r.site_has_offset);
        r = parse_ok("write site=libstdc++.so.6+0x10");
        assert_string_equal(r.site, "libstdc++.so.6");
        assert_int_equal(r.site_offset, 0x10);

        /* upper case and leading zeros are read; the canonical form has neither */
        r = parse_ok("read site=a.out+0X00AbC");
        assert_string_equal(r.site, "a.out");
        assert_int_equal(r.site_offset, 0xabc);
        r = parse_ok("read site=a.out+0x0");
        assert_true(r.site_has_offset);
        assert_int_equal(r.site_offset, 0);
        r = parse_ok("read site=x+0xffffffffffffffff");
        assert_int_equal(r.site_offset, UINT64_MAX);

        /* places outside every loaded object */
        r = parse_ok("read site=" WB_SITE_UNKNOWN);
        assert_string_equal(r.site, WB_SITE_UNKNOWN);

        /* 127 characters fit */
        r = parse_ok(
            "read site=abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
            "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefg");
        assert_int_equal(strlen(r.site), 127);
}

static void test_defaults(void **state)
{
        struct wb_rule r = parse_ok("read");
        (void)state;

        assert_int_equal(r.calls, WB_CALL_BIT(WB_READ));
        assert_int_equal(r.action, WB_ACT_ERRNO);
        assert_int_equal(r.err, 0);
        assert_int_equal(r.n_when, 0);
        assert_false(r.has_prob);
        assert_int_equal(r.max, 0);
        assert_false(r.until_poll);
        assert_false(r.per_process);
        assert_int_equal(r.fd, -1);
        assert_int_equal(r.types, WB_TYPE_SOCKET | WB_TYPE_PIPE | WB_TYPE_TTY);
        assert_int_equal(r.types, WB_TYPE_DEFAULT);
        assert_int_equal(r.families, 0);
        assert_int_equal(r.port, -1);
        assert_false(r.inflight_any);
        assert_false(r.blocking_any);
        assert_string_equal(r.process, "");
        assert_string_equal(r.text, "read");
}

static void test_everything_at_once(void **state)
{
        struct wb_rule r = parse_ok("  recv,send\terrno=ECONNRESET  when=2,5+ prob=0.5 max=4 "
                                    "until=poll per=process fd=9 type=socket family=inet "
                                    "port=8080 inflight=any blocking=any process=curl \t ");
        (void)state;

        assert_int_equal(r.calls, WB_CALL_BIT(WB_RECV) | WB_CALL_BIT(WB_SEND));
        assert_int_equal(r.err, ECONNRESET);
        assert_int_equal(r.n_when, 2);
        assert_true(r.has_prob);
        assert_true(r.prob == 0.5);
        assert_int_equal(r.max, 4);
        assert_true(r.until_poll);
        assert_true(r.per_process);
        assert_int_equal(r.fd, 9);
        assert_int_equal(r.types, WB_TYPE_SOCKET);
        assert_int_equal(r.families, WB_FAMILY_INET);
        assert_int_equal(r.port, 8080);
        assert_true(r.inflight_any);
        assert_true(r.blocking_any);
        assert_string_equal(r.process, "curl");
        /* the text as written, trimmed at both ends */
        assert_string_equal(r.text, "recv,send\terrno=ECONNRESET  when=2,5+ prob=0.5 max=4 "
                                    "until=poll per=process fd=9 type=socket family=inet "
                                    "port=8080 inflight=any blocking=any process=curl");
}

/* ---- rule_errno ---- */

static void test_rule_errno_defaults(void **state)
{
        struct wb_rule r;
        (void)state;

        r = parse_ok("connect");
        assert_int_equal(rule_errno(&r, WB_CONNECT, WB_FAMILY_INET), EINPROGRESS);
        assert_int_equal(rule_errno(&r, WB_CONNECT, WB_FAMILY_INET6), EINPROGRESS);
        assert_int_equal(rule_errno(&r, WB_CONNECT, WB_FAMILY_UNIX), EAGAIN);
        assert_int_equal(rule_errno(&r, WB_CONNECT, 0), EAGAIN);

        r = parse_ok("all");
        for (int c = 0; c < WB_CALL_COUNT; c++) {
                if (c == WB_CONNECT)
                        continue;
                assert_int_equal(rule_errno(&r, (enum wb_call)c, WB_FAMILY_INET), EAGAIN);
                assert_int_equal(rule_errno(&r, (enum wb_call)c, WB_FAMILY_INET6), EAGAIN);
                assert_int_equal(rule_errno(&r, (enum wb_call)c, WB_FAMILY_UNIX), EAGAIN);
                assert_int_equal(rule_errno(&r, (enum wb_call)c, 0), EAGAIN);
        }
        assert_int_equal(rule_errno(&r, WB_CONNECT, WB_FAMILY_INET), EINPROGRESS);

        /* an explicit errno wins over every default */
        r = parse_ok("connect errno=ECONNREFUSED");
        assert_int_equal(rule_errno(&r, WB_CONNECT, WB_FAMILY_INET), ECONNREFUSED);
        assert_int_equal(rule_errno(&r, WB_CONNECT, WB_FAMILY_UNIX), ECONNREFUSED);
        r = parse_ok("connect errno=EAGAIN");
        assert_int_equal(rule_errno(&r, WB_CONNECT, WB_FAMILY_INET), EAGAIN);
        assert_int_equal(rule_errno(&r, WB_CONNECT, WB_FAMILY_INET6), EAGAIN);
        r = parse_ok("read errno=EINTR");
        assert_int_equal(rule_errno(&r, WB_READ, WB_FAMILY_UNIX), EINTR);
        r = parse_ok("accept errno=104");
        assert_int_equal(rule_errno(&r, WB_ACCEPT4, WB_FAMILY_INET), ECONNRESET);
}

/* ---- errors ---- */

/* One refused rule: text, the substring the column points at (NULL: one past
 * the end of the text), and the message. */
struct bad_rule {
        const char *text;
        const char *at;
        const char *message;
};

static const struct bad_rule bad_rules[] = {
    /* CALLS */
    {"reed when=1", "reed", "unknown call 'reed'"},
    {"READ", "READ", "unknown call 'READ'"},
    {"read,foo when=1", "foo", "unknown call 'foo'"},
    {"read,,write", ",write", "empty call name"},
    {"when=1", "when=1", "unknown call 'when=1'"},
    {"input,outputs", "outputs", "unknown call 'outputs'"},
    /* keys */
    {"read wen=1", "wen", "unknown key 'wen'"},
    {"read when=1 Prob=0.5", "Prob", "unknown key 'Prob'"},
    {"read when1", "when1", "expected KEY=VALUE, got 'when1'"},
    {"read when=1 oops", "oops", "expected KEY=VALUE, got 'oops'"},
    {"read when=1 prob=0.5 when=2", "when=2", "duplicate key 'when'"},
    {"read errno=EAGAIN errno=EINTR", "errno=EINTR", "duplicate key 'errno'"},
    {"read type=pipe max=1 type=socket", "type=socket", "duplicate key 'type'"},
    {"read short=1 short=2", "short=2", "duplicate key 'short'"},
    /* errno= */
    {"read errno=EAGIAN", "EAGIAN", "unknown errno 'EAGIAN'"},
    {"read errno=eagain", "eagain", "unknown errno 'eagain'"},
    {"read errno=0", "0", "errno: 0 is out of range (1..4095)"},
    {"read errno=4096", "4096", "errno: 4096 is out of range (1..4095)"},
    {"read errno=11x", "11x", "errno: '11x' is not a number"},
    {"read errno=99999999999999999999", "9999", "errno: 99999999999999999999 is too large"},
    /* short= */
    {"read short=0", "0", "short: 0 is out of range (1..9223372036854775807)"},
    {"read short=x", "x", "short: 'x' is not a number"},
    {"connect short=1", "short",
     "short= applies to input and output calls only, not to accept or connect"},
    {"accept short=1", "short",
     "short= applies to input and output calls only, not to accept or connect"},
    {"accept4 short=2", "short",
     "short= applies to input and output calls only, not to accept or connect"},
    {"all short=1", "short",
     "short= applies to input and output calls only, not to accept or connect"},
    {"read,connect when=1 short=8", "short",
     "short= applies to input and output calls only, not to accept or connect"},
    {"read errno=EAGAIN short=1", "short", "a rule has one action: errno= or short=, not both"},
    {"read short=1 errno=EAGAIN", "errno", "a rule has one action: errno= or short=, not both"},
    /* edge= */
    {"read edge=none", "edge", "edge= applies with short= only"},
    {"read when=1 edge=owed errno=EINTR", "edge", "edge= applies with short= only"},
    {"read short=1 edge=sometimes", "sometimes", "edge: expected owed or none, got 'sometimes'"},
    {"read short=1 edge=", NULL, "edge: expected owed or none, got ''"},
    {"read short=1 edge=none edge=owed", "edge=owed", "duplicate key 'edge'"},
    /* when= */
    {"read when=5..3", "5..3", "when: descending range 5..3"},
    {"read when=1,9..2+2", "9..2", "when: descending range 9..2"},
    {"read when=0", "0", "when: call numbers start at 1, not 0"},
    {"read when=3,0..5", "0..5", "when: call numbers start at 1, not 0"},
    {"read when=2+0", "0", "when: steps start at 1, not 0"},
    {"read when=2..8+", "+", "when: N..M+ needs a step after '+'"},
    {"read when=x", "x", "when: 'x' is not a number"},
    {"read when=1,x2", "x2", "when: 'x2' is not a number"},
    {"read when=1,,3", ",3", "when: expected a number"},
    {"read when=18446744073709551616", "1844", "when: 18446744073709551616 is too large"},
    {"read when=18446744073709551615", "1844", "when: 18446744073709551615 is too large"},
    {"read when=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", "17", "when: at most 16 items"},
    /* prob= */
    {"read prob=1.5", "1.5", "prob: 1.5 is not between 0 and 1"},
    {"read prob=2", "2", "prob: 2 is not between 0 and 1"},
    {"read prob=1.0000000000000000001", "1.0", "prob: at most 18 decimals"},
    {"read prob=0.0000000000000000009", "0.0", "prob: at most 18 decimals"},
    {"read prob=1.0000001", "1.0", "prob: 1.0000001 is not between 0 and 1"},
    {"read prob=-0.1", "-0.1", "prob: '-0.1' is not a number"},
    {"read prob=0.3x", "0.3x", "prob: '0.3x' is not a number"},
    {"read prob=.", ".", "prob: '.' is not a number"},
    {"read prob=1e-3", "1e-3", "prob: '1e-3' is not a number"},
    {"read prob=0,5", "0,5", "prob: '0,5' is not a number"},
    {"read prob=half", "half", "prob: 'half' is not a number"},
    /* numbers */
    {"read max=0", "0", "max: 0 is out of range (1..9223372036854775807)"},
    {"read max=12a", "12a", "max: '12a' is not a number"},
    {"read max=99999999999999999999", "9999", "max: 99999999999999999999 is too large"},
    {"read max=18446744073709551615", "1844",
     "max: 18446744073709551615 is out of range (1..9223372036854775807)"},
    {"read fd=abc", "abc", "fd: 'abc' is not a number"},
    {"read fd=-1", "-1", "fd: '-1' is not a number"},
    {"read fd=2147483648", "2147483648", "fd: 2147483648 is out of range (0..2147483647)"},
    {"connect port=0", "0", "port: 0 is out of range (1..65535)"},
    {"connect port=65536", "65536", "port: 65536 is out of range (1..65535)"},
    {"connect port=http", "http", "port: 'http' is not a number"},
    /* words */
    {"read type=socket,fifo", "fifo", "type: unknown value 'fifo'"},
    {"read type=Socket", "Socket", "type: unknown value 'Socket'"},
    {"recv family=ipx", "ipx", "family: unknown value 'ipx'"},
    {"recv family=inet,inet4", "inet4", "family: unknown value 'inet4'"},
    {"read until=recv", "recv", "until: expected poll, got 'recv'"},
    {"read per=thread", "thread", "per: expected fd or process, got 'thread'"},
    {"write inflight=no", "no", "inflight: expected yes or any, got 'no'"},
    {"read blocking=yes", "yes", "blocking: expected no or any, got 'yes'"},
    {"read process=/usr/bin/python3", "/usr",
     "process: expected a program name (no '/', '#' or ';', at most 63 characters)"},
    {"read process=abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd", "abcd",
     "process: expected a program name (no '/', '#' or ';', at most 63 characters)"},
    /* site= */
    {"read site=/usr/lib/libc.so.6", "/usr",
     "site: expected the basename of a loaded object (no '/', '#' or ';', at most 127 "
     "characters)"},
    {"read site=a#b", "a#b",
     "site: expected the basename of a loaded object (no '/', '#' or ';', at most 127 "
     "characters)"},
    {"read site=+0x10", "+0x10",
     "site: expected the basename of a loaded object (no '/', '#' or ';', at most 127 "
     "characters)"},
    {"read site=abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
     "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefgh",
     "abcdefghij",
     "site: expected the basename of a loaded object (no '/', '#' or ';', at most 127 "
     "characters)"},
    {"read site=prog+0x", NULL, "site: expected hexadecimal digits after 0x"},
    {"read site=prog+0x12g4", "g4", "site: 'g' is not a hexadecimal digit"},
    {"read site=prog+0x1ffffffffffffffff", "1fff", "site: offset 0x1ffffffffffffffff is too large"},
    {"read site=prog+1234", "1234", "site: the offset is hexadecimal with a 0x prefix"},
    {"read site=?+0x10", "+0x10", "site: a place outside every object (?) has no offset"},
    {"read site=libc.so.6 site=prog", "site=prog", "duplicate key 'site'"},
    /* empty values: the column is one past the '=' */
    {"read when=", NULL, "when: expected call numbers"},
    {"read when=1,", NULL, "when: expected a number"},
    {"read errno=", NULL, "unknown errno ''"},
    {"read max=", NULL, "max: expected a number"},
    {"read prob=", NULL, "prob: '' is not a number"},
    {"read process=a#b", "a#b",
     "process: expected a program name (no '/', '#' or ';', at most 63 characters)"},
    {"read process=", NULL,
     "process: expected a program name (no '/', '#' or ';', at most 63 characters)"},
};

static void test_errors(void **state)
{
        (void)state;

        for (size_t i = 0; i < N_ELEMS(bad_rules); i++) {
                const struct bad_rule *b = &bad_rules[i];
                unsigned col = b->at ? col_of(b->text, b->at) : (unsigned)strlen(b->text) + 1;
                parse_fails_with(b->text, col, b->message);
        }
}

/* Columns written out by hand, so a shared mistake in col_of and the
 * parser cannot hide. */
static void test_errors_literal_columns(void **state)
{
        (void)state;

        parse_fails_with("reed", 1, "unknown call 'reed'");
        parse_fails_with("read when=x", 11, "when: 'x' is not a number");
        parse_fails_with("read  wen=1", 7, "unknown key 'wen'");
        parse_fails_with("read when=1 when=2", 13, "duplicate key 'when'");
        parse_fails_with("connect short=1", 9,
                         "short= applies to input and output calls only, not to accept or connect");
        parse_fails_with("read edge=none", 6, "edge= applies with short= only");
        parse_fails_with("read when=4..2", 11, "when: descending range 4..2");
        parse_fails_with("read when=1..5+", 15, "when: N..M+ needs a step after '+'");
        parse_fails_with("read site=prog+0x1x", 19, "site: 'x' is not a hexadecimal digit");
        parse_fails_with("read site=", 11,
                         "site: expected the basename of a loaded object (no '/', '#' or ';', at "
                         "most 127 characters)");
        parse_fails_with("   read prob=7", 14, "prob: 7 is not between 0 and 1");
        parse_fails_with("", 1, "empty rule");
}

/* In a file the caller passes "FILE:LINE:" and the column of the rule's
 * first character. */
static void test_error_in_file_position(void **state)
{
        struct wb_rule r;
        struct wb_diag diag = {{0}};
        const char *text = "read when=x";
        (void)state;

        assert_int_equal(rule_parse(text, strlen(text), "my.conf:12:", 5, &r, &diag), -1);
        expect_msg(diag.msg, "my.conf:12:15: when: 'x' is not a number");

        /* only len bytes are the rule: what follows is not looked at */
        text = "read when=1 garbage";
        assert_int_equal(rule_parse(text, 11, "my.conf:3:", 1, &r, &diag), 0);
        assert_string_equal(r.text, "read when=1");
}

/* ---- lists ---- */

static void list_fails_with(const char *text, unsigned col, const char *message)
{
        struct wb_rule rules[8];
        struct wb_diag diag = {{0}};
        char expected[sizeof diag.msg];
        unsigned n = 0;

        if (rule_parse_list(text, "WOULDBLOCK_RULES", rules, &n, N_ELEMS(rules), &diag) == 0)
                fail_because("rules '%s' accepted, expected: %s", text, message);
        snprintf(expected, sizeof expected, "WOULDBLOCK_RULES:%u: %s", col, message);
        expect_msg(diag.msg, expected);
}

static void test_list(void **state)
{
        struct wb_rule rules[8];
        unsigned n;
        (void)state;

        n = parse_list_ok("read when=1; write when=2 ;connect family=inet", rules, 8);
        assert_int_equal(n, 3);
        assert_int_equal(rules[0].calls, WB_CALL_BIT(WB_READ));
        assert_int_equal(rules[1].calls, WB_CALL_BIT(WB_WRITE));
        assert_int_equal(rules[2].calls, WB_CALL_BIT(WB_CONNECT));
        assert_string_equal(rules[0].text, "read when=1");
        assert_string_equal(rules[1].text, "write when=2");
        assert_string_equal(rules[2].text, "connect family=inet");
        for (unsigned i = 0; i < n; i++) {
                assert_string_equal(rules[i].scenario, "WOULDBLOCK_RULES");
                assert_int_equal(rules[i].line, i + 1);
        }

        /* empty items are skipped, and do not count as positions */
        n = parse_list_ok(";read;; ;write;", rules, 8);
        assert_int_equal(n, 2);
        assert_int_equal(rules[1].line, 2);
        assert_int_equal(parse_list_ok("", rules, 8), 0);
        assert_int_equal(parse_list_ok(" ; ;", rules, 8), 0);
}

static void test_list_appends(void **state)
{
        struct wb_rule rules[4];
        struct wb_diag diag = {{0}};
        unsigned n = 1;
        (void)state;

        rules[0] = parse_ok("accept");
        assert_int_equal(rule_parse_list("read;write", "api", rules, &n, 4, &diag), 0);
        assert_int_equal(n, 3);
        assert_int_equal(rules[0].calls, WB_GROUP_ACCEPT);
        assert_int_equal(rules[1].calls, WB_CALL_BIT(WB_READ));
        assert_string_equal(rules[2].scenario, "api");

        /* the name given is the name in messages too */
        n = 0;
        assert_int_equal(rule_parse_list("read;bogus", "api", rules, &n, 4, &diag), -1);
        expect_msg(diag.msg, "api:6: unknown call 'bogus'");
}

static void test_list_errors(void **state)
{
        const char *t;
        (void)state;

        /* the column counts from the start of the whole string */
        list_fails_with("recv;send when=x", 16, "when: 'x' is not a number");
        list_fails_with("read when=1;write when=2;connect short=1", 34,
                        "short= applies to input and output calls only, not to accept or connect");
        list_fails_with("  read ; bogus", 10, "unknown call 'bogus'");

        t = "read when=1; write wen=2";
        list_fails_with(t, col_of(t, "wen"), "unknown key 'wen'");
        t = "input when=1;output when=1;accept when=1+2; recv prob=1.5";
        list_fails_with(t, col_of(t, "1.5"), "prob: 1.5 is not between 0 and 1");
        t = "read;read;read;read when=3..1";
        list_fails_with(t, col_of(t, "3..1"), "when: descending range 3..1");
        t = ";;read when=1 when=2";
        list_fails_with(t, col_of(t, "when=2"), "duplicate key 'when'");
        t = "read\twhen=1;\twrite errno=EFOO";
        list_fails_with(t, col_of(t, "EFOO"), "unknown errno 'EFOO'");
}

static void test_list_too_many(void **state)
{
        struct wb_rule rules[2];
        struct wb_diag diag = {{0}};
        unsigned n = 0;
        const char *t = "read; write;  connect";
        char expected[128];
        (void)state;

        assert_int_equal(rule_parse_list(t, "WOULDBLOCK_RULES", rules, &n, 2, &diag), -1);
        snprintf(expected, sizeof expected, "WOULDBLOCK_RULES:%u: too many rules (at most 2)",
                 col_of(t, "connect"));
        expect_msg(diag.msg, expected);
        assert_int_equal(n, 2);
}

/* ---- canonical form ---- */

static void expect_format(const char *text, const char *canonical)
{
        struct wb_rule r = parse_ok(text);
        char buf[WB_TEXT_MAX * 2];
        int len = rule_format(&r, buf, sizeof buf);

        if (strcmp(buf, canonical) != 0)
                fail_because("format of '%s'\n#   got:      %s\n#   expected: %s", text, buf,
                             canonical);
        assert_int_equal(len, strlen(canonical));
}

static void test_format(void **state)
{
        (void)state;

        expect_format("read", "read errno=EAGAIN per=fd type=socket,pipe,tty blocking=no");
        expect_format("input when=1",
                      "input errno=EAGAIN when=1 per=fd type=socket,pipe,tty blocking=no");
        expect_format(
            "output when=1",
            "output errno=EAGAIN when=1 per=fd type=socket,pipe,tty inflight=yes blocking=no");
        expect_format("connect family=inet,inet6",
                      "connect per=fd type=socket,pipe,tty family=inet,inet6 blocking=no");
        expect_format("all", "all per=fd type=socket,pipe,tty inflight=yes blocking=no");
        expect_format("read,readv,recv,recvfrom,recvmsg,recvmmsg,connect",
                      "input,connect per=fd type=socket,pipe,tty blocking=no");
        expect_format("accept4,accept errno=ECONNABORTED",
                      "accept errno=ECONNABORTED per=fd type=socket,pipe,tty blocking=no");
        expect_format("accept4", "accept4 errno=EAGAIN per=fd type=socket,pipe,tty blocking=no");
        expect_format("write short=3 prob=1", "write short=3 edge=owed prob=1.0 per=fd "
                                              "type=socket,pipe,tty inflight=yes blocking=no");
        expect_format("read edge=none short=1",
                      "read short=1 edge=none per=fd type=socket,pipe,tty blocking=no");
        expect_format("read prob=0", "read errno=EAGAIN prob=0.0 per=fd type=socket,pipe,tty "
                                     "blocking=no");
        expect_format("read errno=200", "read errno=200 per=fd type=socket,pipe,tty blocking=no");
        expect_format("read errno=104",
                      "read errno=ECONNRESET per=fd type=socket,pipe,tty blocking=no");
        expect_format("send,recv errno=EWOULDBLOCK when=1,4..6,10+5,3..9+2 prob=.5 max=3 "
                      "until=poll per=process fd=7 type=tty,socket family=unix port=8080 "
                      "inflight=any blocking=any process=python3",
                      "recv,send errno=EAGAIN when=1,4..6,10+5,3..9+2 prob=0.5 max=3 until=poll "
                      "per=process fd=7 type=socket,tty family=unix port=8080 inflight=any "
                      "blocking=any process=python3");
        expect_format("input,output when=5+ prob=0.25",
                      "input,output errno=EAGAIN when=5+ prob=0.25 per=fd "
                      "type=socket,pipe,tty inflight=yes blocking=no");
        expect_format(
            "sendfile,write,writev,send,sendto,sendmsg,sendmmsg short=4096",
            "output short=4096 edge=owed per=fd type=socket,pipe,tty inflight=yes blocking=no");
        expect_format("tee,splice", "splice,tee errno=EAGAIN per=fd type=socket,pipe,tty "
                                    "inflight=yes blocking=no");
        expect_format("tee", "tee errno=EAGAIN per=fd type=socket,pipe,tty blocking=no");
        expect_format("read site=libc.so.6", "read errno=EAGAIN per=fd type=socket,pipe,tty "
                                             "blocking=no site=libc.so.6");
        expect_format("recv site=python3.11+0X00Ab0 process=python3",
                      "recv errno=EAGAIN per=fd type=socket,pipe,tty blocking=no "
                      "site=python3.11+0xab0 process=python3");
        expect_format("read site=prog+0x0",
                      "read errno=EAGAIN per=fd type=socket,pipe,tty blocking=no site=prog+0x0");
        expect_format("read when=2+3,1+1,4..9+1",
                      "read errno=EAGAIN when=2+3,1+,4..9 per=fd type=socket,pipe,tty blocking=no");
}

static void test_format_truncates(void **state)
{
        struct wb_rule r = parse_ok("read");
        char buf[10];
        char whole[WB_TEXT_MAX];
        int len;
        (void)state;

        len = rule_format(&r, whole, sizeof whole);
        assert_int_equal(rule_format(&r, buf, sizeof buf), len);
        assert_int_equal(strlen(buf), sizeof buf - 1);
        assert_memory_equal(buf, whole, sizeof buf - 1);
}

/* Same meaning: every field the engine reads, errno by what it resolves to
 * (a default EAGAIN prints as errno=EAGAIN and comes back explicit). */
static void expect_same_rule(const struct wb_rule *a, const struct wb_rule *b, const char *text,
                             const char *canonical)
{
        static const unsigned families[] = {0, WB_FAMILY_UNIX, WB_FAMILY_INET, WB_FAMILY_INET6};

        if (a->calls != b->calls || a->action != b->action ||
            (a->action == WB_ACT_SHORT && a->short_n != b->short_n) ||
            (a->action == WB_ACT_SHORT && a->edge_none != b->edge_none) ||
            a->has_prob != b->has_prob ||
            (a->has_prob && (a->prob - b->prob > 1e-9 || b->prob - a->prob > 1e-9)) ||
            a->max != b->max || a->until_poll != b->until_poll ||
            a->per_process != b->per_process || a->fd != b->fd || a->types != b->types ||
            a->families != b->families || a->port != b->port ||
            ((a->calls & (WB_GROUP_OUTPUT | WB_CALL_BIT(WB_SPLICE))) &&
             a->inflight_any != b->inflight_any) ||
            a->blocking_any != b->blocking_any || strcmp(a->process, b->process) != 0 ||
            strcmp(a->site, b->site) != 0 || a->site_has_offset != b->site_has_offset ||
            a->site_offset != b->site_offset)
                fail_because("'%s' changed meaning after a round trip", text);
        for (int c = 0; c < WB_CALL_COUNT; c++)
                for (size_t f = 0; f < N_ELEMS(families); f++)
                        if ((a->calls & WB_CALL_BIT(c)) &&
                            rule_errno(a, (enum wb_call)c, families[f]) !=
                                rule_errno(b, (enum wb_call)c, families[f]))
                                fail_because("'%s': errno for %s changed", text,
                                             rule_call_name((enum wb_call)c));
        if ((a->n_when == 0) != (b->n_when == 0))
                fail_because("'%s': when= appeared or vanished", text);
        for (uint64_t n = 1; n <= 200; n++)
                if (rule_when_matches(a, n) != rule_when_matches(b, n))
                        fail_because("'%s': call %llu %s after a round trip through '%s'", text,
                                     (unsigned long long)n,
                                     rule_when_matches(a, n) ? "no longer fires" : "fires now",
                                     canonical);
}

static void round_trip(const char *text)
{
        struct wb_rule a = parse_ok(text), b;
        char first[WB_TEXT_MAX * 2], second[WB_TEXT_MAX * 2];

        rule_format(&a, first, sizeof first);
        b = parse_ok(first);
        rule_format(&b, second, sizeof second);
        if (strcmp(first, second) != 0)
                fail_because("'%s': canonical form not stable\n#   first:  %s\n#   second: %s",
                             text, first, second);
        expect_same_rule(&a, &b, text, first);
}

static void test_round_trip(void **state)
{
        static const char *const texts[] = {
            "read",
            "all",
            "input when=1",
            "output when=1",
            "input,output prob=0.3 type=socket",
            "connect family=inet,inet6",
            "connect family=unix errno=ECONNREFUSED",
            "accept when=1+2",
            "accept4 errno=EMFILE max=2",
            "input short=1",
            "output short=3 prob=0.3",
            "input,output short=3 edge=none",
            "read,write,connect when=1,4..6,10+5",
            "recv,send errno=EWOULDBLOCK when=1,4..6,10+5,3..9+2 prob=.5 max=3 until=poll "
            "per=process fd=7 type=tty,socket family=unix port=8080 inflight=any blocking=any "
            "process=python3",
            "write errno=4000 inflight=any",
            "read prob=0",
            "read prob=1",
            "read prob=0.000001",
            "read type=file,other blocking=any",
            "sendmmsg,recvmmsg short=2 per=process",
            "read when=5..6+3",
            "read when=1..1",
            "sendfile short=4096",
            "splice inflight=any prob=0.5",
            "tee,splice when=1",
            "read site=libstdc++.so.6",
            "read site=libstdc++.so.6+0x1f",
            "write site=?",
            "send site=prog+0X00F process=prog",
        };
        (void)state;

        for (size_t i = 0; i < N_ELEMS(texts); i++)
                round_trip(texts[i]);
}

/* An item whose range holds one number but has a step: the step means
 * nothing, and the canonical form must not glue it onto the number. */
static void test_round_trip_single_with_step(void **state)
{
        (void)state;

        round_trip("read when=7..7+3");
        round_trip("read when=1,2..2+5,9");
}

/* fmt_copy is snprintf(dst, size, "%.*s", n, src) without the formatter
 * (the parser uses it for the rule's text and scenario) */
static void test_fmt_copy_is_snprintf(void **state)
{
        const char *srcs[] = {"", "a", "read when=1", "0123456789abcdef"};
        char got[20], want[20];
        (void)state;

        for (size_t i = 0; i < N_ELEMS(srcs); i++)
                for (size_t size = 1; size <= sizeof got; size++)
                        for (size_t n = 0; n <= strlen(srcs[i]) + 2; n++) {
                                memset(got, 'x', sizeof got);
                                memset(want, 'x', sizeof want);
                                fmt_copy(got, size, srcs[i], n);
                                snprintf(want, size, "%.*s", (int)n, srcs[i]);
                                assert_memory_equal(got, want, sizeof got);
                        }
        /* a long scenario name is cut, never overrun */
        struct wb_rule r[1];
        struct wb_diag diag = {{0}};
        unsigned n = 0;
        char name[200];
        memset(name, 'n', sizeof name - 1);
        name[sizeof name - 1] = '\0';
        assert_int_equal(rule_parse_list("read", name, r, &n, 1, &diag), 0);
        assert_int_equal(strlen(r[0].scenario), WB_NAME_MAX - 1);
        assert_string_equal(r[0].text, "read");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_fmt_copy_is_snprintf),
            cmocka_unit_test(test_single_calls),
            cmocka_unit_test(test_call_groups),
            cmocka_unit_test(test_errno_by_name_and_number),
            cmocka_unit_test(test_short),
            cmocka_unit_test(test_edge),
            cmocka_unit_test(test_when_forms),
            cmocka_unit_test(test_when_items_stored),
            cmocka_unit_test(test_prob_forms),
            cmocka_unit_test(test_scope_and_trigger_keys),
            cmocka_unit_test(test_filter_keys),
            cmocka_unit_test(test_site),
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_everything_at_once),
            cmocka_unit_test(test_rule_errno_defaults),
            cmocka_unit_test(test_errors),
            cmocka_unit_test(test_errors_literal_columns),
            cmocka_unit_test(test_error_in_file_position),
            cmocka_unit_test(test_list),
            cmocka_unit_test(test_list_appends),
            cmocka_unit_test(test_list_errors),
            cmocka_unit_test(test_list_too_many),
            cmocka_unit_test(test_format),
            cmocka_unit_test(test_format_truncates),
            cmocka_unit_test(test_round_trip),
            cmocka_unit_test(test_round_trip_single_with_step),
        };
        return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
