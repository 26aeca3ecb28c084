/* test_json.c - the runner's report reader (jansson), summing, recordings,
 * LD_PRELOAD editing and messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "preload.h"
#include "recording.h"
#include "replay.h"
#include "reports.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What report.c writes (taken from a run of tests/runner/prog.c). */
static const char real_report[] =
    "{\"pid\": 10125, \"program\": \"/tmp/wbprog\", \"scenarios\": [\"first-read\"], \"seed\": 1,\n"
    " \"rules\": [\n"
    "   {\"text\": \"input when=1\", \"scenario\": \"first-read\", \"line\": 9, \"counted\": 2, "
    "\"injected\": 1}],\n"
    " \"calls\": {\n"
    "   \"read\": {\"seen\": 2, \"injected\": 1},\n"
    "   \"readv\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"recv\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"recvfrom\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"recvmsg\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"recvmmsg\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"write\": {\"seen\": 1, \"injected\": 0},\n"
    "   \"writev\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"send\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"sendto\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"sendmsg\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"sendmmsg\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"accept\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"accept4\": {\"seen\": 0, \"injected\": 0},\n"
    "   \"connect\": {\"seen\": 0, \"injected\": 7}},\n"
    " \"spin\": {\"length\": 1, \"fd\": 3, \"call\": \"read\"}}\n";

static struct report report;

static const char *parse(const char *text)
{
        return read_report(text, strlen(text), &report);
}

static void expect_error(const char *text)
{
        const char *error = parse(text);
        if (!error) {
                print_error("# accepted: %s\n", text);
                fail();
        }
}

static void reads_what_report_c_writes(void **state)
{
        (void)state;
        assert_null(parse(real_report));
        assert_int_equal(report.pid, 10125);
        assert_string_equal(report.program, "/tmp/wbprog");
        assert_int_equal(report.n_rules, 1);
        assert_string_equal(report.rules[0].text, "input when=1");
        assert_string_equal(report.rules[0].scenario, "first-read");
        assert_int_equal(report.rules[0].line, 9);
        assert_int_equal(report.rules[0].counted, 2);
        assert_int_equal(report.rules[0].injected, 1);
        assert_int_equal(report.seen[WB_READ], 2);
        assert_int_equal(report.injected[WB_READ], 1);
        assert_int_equal(report.seen[WB_WRITE], 1);
        assert_int_equal(report.injected[WB_CONNECT], 7);
        assert_int_equal(report.spin_length, 1);
        assert_int_equal(report.spin_fd, 3);
        assert_string_equal(report.spin_call, "read");
}

static void every_cut_report_is_refused(void **state)
{
        (void)state;
        size_t len = strlen(real_report);
        /* a process killed while writing leaves a prefix; the last byte is
         * the newline, which may be missing */
        for (size_t n = 0; n < len - 1; n++)
                if (!read_report(real_report, n, &report)) {
                        print_error("# accepted the first %zu bytes\n", n);
                        fail();
                }
}

/* Bytes flipped, dropped and repeated at random (a fixed seed): whatever
 * comes of it, the reader stays inside the buffer (run under ASan to see)
 * and either reads a report or says what is wrong. */
static void survives_mangled_reports(void **state)
{
        (void)state;
        size_t len = strlen(real_report);
        uint64_t x = 42;

        for (int round = 0; round < 20000; round++) {
                char *text = malloc(len); /* no NUL after it */
                size_t n = len;
                memcpy(text, real_report, len);
                for (int edits = 1 + round % 4; edits > 0; edits--) {
                        x = x * 6364136223846793005u + 1442695040888963407u;
                        size_t at = (size_t)(x >> 33) % n;
                        switch ((x >> 20) % 3) {
                        case 0:
                                text[at] = (char)(x >> 40);
                                break;
                        case 1:
                                memmove(text + at, text + at + 1, n - at - 1);
                                n--;
                                break;
                        default:
                                text[at] = text[(at * 7) % n];
                        }
                }
                const char *error = read_report(text, n, &report);
                if (error)
                        assert_true(strlen(error) > 0);
                free(text);
        }
}

static void skips_members_it_does_not_need(void **state)
{
        (void)state;
        assert_null(parse("{\"new\": {\"a\": [1, -2.5e+3, 0.5, 1E2, true, false, null, \"s\"]},"
                          " \"pid\": 1, \"rules\": [], \"spin\": {\"length\": 0, \"fd\": null,"
                          " \"call\": null, \"extra\": [[]]}, \"calls\": {\"read\":"
                          " {\"seen\": 5, \"injected\": 0, \"later\": {}}, \"frobnicate\":"
                          " {\"seen\": 9}}, \"seed\": 18446744073709551615}"));
        assert_int_equal(report.seen[WB_READ], 5);
        assert_int_equal(report.spin_length, 0);
        assert_string_equal(report.spin_call, "");
}

static void decodes_string_escapes(void **state)
{
        (void)state;
        assert_null(
            parse("{\"pid\": 1, \"program\": \"a\\\"b\\\\c\\/d\\n\\u00e9\\u20ac\\ud83d\\ude00"
                  "\\u00ff\", \"rules\": [], \"calls\": {}, \"spin\": {\"length\": 0}}"));
        assert_string_equal(report.program,
                            "a\"b\\c/d\n\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xbf");
}

static void cuts_long_strings_between_characters(void **state)
{
        (void)state;
        char text[2048] =
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"program\": \"";
        for (int i = 0; i < 300; i++)
                strcat(text, i % 2 ? "\\u00e9" : "\xc3\xa9"); /* é, escaped or not */
        strcat(text, "\"}");
        assert_null(parse(text));
        /* 127 two-byte characters fit in 255 bytes; half of one never does */
        assert_int_equal(strlen(report.program), 254);
        for (size_t i = 0; i < 254; i += 2)
                assert_memory_equal(report.program + i, "\xc3\xa9", 2);
}

static void refuses_what_is_not_json(void **state)
{
        (void)state;
        static const char *const bad[] = {
            "",
            "[]",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}} x",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {},}",
            "{\"pid\": 1, \"rules\": [,], \"calls\": {}, \"spin\": {}}",
            "{\"pid\": 1 \"rules\": [], \"calls\": {}, \"spin\": {}}",
            "{\"pid\": 01, \"rules\": [], \"calls\": {}, \"spin\": {}}",
            "{\"pid\": -1, \"rules\": [], \"calls\": {}, \"spin\": {}}",
            "{\"pid\": 1.5, \"rules\": [], \"calls\": {}, \"spin\": {}}",
            "{\"pid\": 18446744073709551616, \"rules\": [], \"calls\": {}, \"spin\": {}}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {\"fd\": nul}}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": tru}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": 1.}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": 1e}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": -}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": \"\\x\"}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": \"\\u12\"}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": \"\\ud83d\"}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": \"\\ude00\"}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": \"\\ud83d\\u0041\"}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": 01}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": -01.5}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": [1,]}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {\"call\": 5}}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {\"fd\": \"3\"}}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": \"a\tb\"}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}, \"x\": 'a'}",
            "{pid: 1, \"rules\": [], \"calls\": {}, \"spin\": {}}",
            /* well-formed, but not a report */
            "{\"pid\": 1, \"rules\": [], \"calls\": {}}",
            "{\"rules\": [], \"calls\": {}, \"spin\": {}}",
            "{\"pid\": 1, \"rules\": {}, \"calls\": {}, \"spin\": {}}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {\"read\": 1}, \"spin\": {}}",
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {\"length\": \"1\"}}",
            "{\"pid\": \"1\", \"rules\": [], \"calls\": {}, \"spin\": {}}",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                expect_error(bad[i]);

        static const char nul_after[] =
            "{\"pid\": 1, \"rules\": [], \"calls\": {}, \"spin\": {}}\n\0";
        assert_non_null(read_report(nul_after, sizeof nul_after - 1, &report));
        assert_null(read_report(nul_after, sizeof nul_after - 2, &report));
}

static void refuses_too_many_rules(void **state)
{
        (void)state;
        char text[8192];

        strcpy(text, "{\"pid\": 1, \"calls\": {}, \"spin\": {}, \"rules\": [");
        for (int i = 0; i <= WB_MAX_RULES; i++)
                strcat(text, i ? ", {}" : "{}");
        strcat(text, "]}");
        expect_error(text);
}

static void sums_processes_and_merges_their_rules(void **state)
{
        (void)state;
        struct totals t = {0};

        assert_null(parse(real_report));
        add_report(&t, &report);
        report.pid = 99;
        report.spin_length = 5;
        report.spin_fd = 7;
        snprintf(report.spin_call, sizeof report.spin_call, "recv");
        report.rules[1] = report.rules[0];
        report.rules[1].line = 10; /* another rule with the same text */
        report.n_rules = 2;
        add_report(&t, &report);
        report.spin_length = 4; /* shorter: not the longest */
        report.pid = 100;
        report.n_rules = 1;
        add_report(&t, &report);

        assert_int_equal(t.processes, 3);
        assert_int_equal(t.seen[WB_READ], 6);
        assert_int_equal(t.injected[WB_READ], 3);
        assert_int_equal(total_injected(&t), 3 + 21);
        assert_int_equal(t.n_rules, 2);
        assert_int_equal(t.rules[0].line, 9);
        assert_int_equal(t.rules[0].counted, 6);
        assert_int_equal(t.rules[0].injected, 3);
        assert_int_equal(t.rules[1].line, 10);
        assert_int_equal(t.rules[1].counted, 2);
        assert_int_equal(t.spin_length, 5);
        assert_int_equal(t.spin_pid, 99);
        assert_int_equal(t.spin_fd, 7);
        assert_string_equal(t.spin_call, "recv");
        free(t.rules);
}

static void expands_pid_like_the_library(void **state)
{
        (void)state;
        static const struct {
                const char *pattern, *expanded;
        } cases[] = {
            {"/r/%p.json", "/r/42.json"},
            {"/r/%p-%p", "/r/42-42"},
            {"/r/report.json", "/r/report.json"},
            {"/r/100%", "/r/100%"},
            {"/r/%%p", "/r/%42"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *got = expand_pid(cases[i].pattern, "42.json", 2);
                assert_string_equal(got, cases[i].expanded);
                free(got);
        }
}

static void puts_the_library_first_but_behind_sanitizers(void **state)
{
        (void)state;
        static const struct {
                const char *old, *expected;
        } cases[] = {
            {NULL, "/w/lib.so"},
            {"", "/w/lib.so"},
            {" : ", "/w/lib.so"},
            {"a.so", "/w/lib.so:a.so"},
            {"a.so b.so", "/w/lib.so:a.so b.so"},
            {"/usr/lib/libasan.so.8", "/usr/lib/libasan.so.8:/w/lib.so"},
            {"libasan.so.8 a.so", "libasan.so.8:/w/lib.so:a.so"},
            {"/x/libclang_rt.asan-x86_64.so:/y/libubsan.so.1:a.so:libtsan.so",
             "/x/libclang_rt.asan-x86_64.so:/y/libubsan.so.1:/w/lib.so:a.so:libtsan.so"},
            {"libhwasan.so:liblsan.so.0:libmsan.so",
             "libhwasan.so:liblsan.so.0:libmsan.so:/w/lib.so"},
            {"a.so:libasan.so.8", "/w/lib.so:a.so:libasan.so.8"},
            {"/opt/libasan/a.so", "/w/lib.so:/opt/libasan/a.so"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *got = preload_with(cases[i].old, "/w/lib.so");
                assert_string_equal(got, cases[i].expected);
                free(got);
        }
}

/* Two processes of the same program, and a third cut by a kill (no hits,
 * a last line without its newline), as WOULDBLOCK_RECORD writes them. */
static const char recording_text[] =
    "process 100 srv\n"
    "point 1 recv site=srv+0x1a2b type=socket family=inet process=srv\n"
    "point 2 write site=libc.so.6+0x10 type=pipe process=srv\n"
    "inject 1 3 errno=EAGAIN\n"
    "hits 1 7 0\n"
    "hits 2 2 5\n"
    "process 101 srv\n"
    "point 1 write site=libc.so.6+0x10 type=pipe process=srv\n"
    "point 2 recv site=srv+0x1a2b type=socket family=inet process=srv\n"
    "hits 1 4 0\n"
    "hits 2 9 1\n"
    "process 102 cli\n"
    "point 1 connect site=cli+0x99 type=socket family=inet port=8080 process=cli\n"
    "inject 1 1 errno=EINPROGRESS\n"
    "inject 1 2 short=1 edge=none\n"
    "bogus 1 2\n"
    "inject 7 1 errno=EAGAIN\n"
    "hits 1 1";

static void reads_a_recording(void **state)
{
        (void)state;
        struct recording rec = {0};

        recording_sort(&rec); /* nothing recorded: a run that reached no point */
        assert_int_equal(rec.n_points, 0);
        recording_parse(&rec, recording_text, strlen(recording_text));
        assert_int_equal(rec.processes, 3);
        assert_int_equal(rec.n_points, 3);
        assert_int_equal(rec.bad_lines, 3); /* bogus, inject 7, the cut line */
        recording_sort(&rec);
        assert_string_equal(rec.points[0].key,
                            "connect site=cli+0x99 type=socket family=inet port=8080 process=cli");
        assert_string_equal(rec.points[1].call, "recv");
        assert_string_equal(rec.points[1].filters,
                            "site=srv+0x1a2b type=socket family=inet process=srv");
        assert_int_equal(rec.points[1].hits, 9); /* the most of one process */
        assert_int_equal(rec.points[1].blocking, 1);
        assert_int_equal(rec.points[2].hits, 4);
        assert_int_equal(rec.points[2].blocking, 5);
        assert_int_equal(rec.points[0].hits, 0); /* killed before exit */
        assert_int_equal(rec.n_injects, 3);
        assert_string_equal(rec.injects[2].action, "short=1 edge=none");
        assert_int_equal(rec.points[0].max_inject, 2);
        assert_int_equal(rec.injects[0].point, 1);
        assert_int_equal(rec.injects[0].k, 3);
        assert_string_equal(rec.injects[0].action, "errno=EAGAIN");
        assert_int_equal(rec.injects[1].point, 0);
        assert_string_equal(rec.injects[1].action, "errno=EINPROGRESS");
        assert_int_equal(recording_find(&rec, rec.points[2].key), 2);
        assert_int_equal(recording_find(&rec, "recv"), -1);

        char v[64];
        filter_value(rec.points[0].filters, "port", v, sizeof v);
        assert_string_equal(v, "8080");
        filter_value(rec.points[0].filters, "site", v, sizeof v);
        assert_string_equal(v, "cli+0x99");
        filter_value(rec.points[1].filters, "port", v, sizeof v);
        assert_string_equal(v, "");
        recording_free(&rec);
}

static void says_killed_or_crashed(void **state)
{
        (void)state;
        char buf[64];
        assert_string_equal(describe_signal(SIGKILL, buf, sizeof buf),
                            "killed by signal 9 (SIGKILL)");
        assert_string_equal(describe_signal(SIGTERM, buf, sizeof buf),
                            "killed by signal 15 (SIGTERM)");
        assert_string_equal(describe_signal(SIGSEGV, buf, sizeof buf),
                            "crashed (signal 11, SIGSEGV)");
        assert_string_equal(describe_signal(SIGABRT, buf, sizeof buf),
                            "crashed (signal 6, SIGABRT)");
}

/* Replayed injections: one rule per point and action, hits merged into
 * ranges, at most WB_MAX_WHEN items a rule. */
static void replays_a_set_of_injections(void **state)
{
        (void)state;
        struct recording rec = {0};
        char text[8192] = "process 1 p\npoint 1 recv site=p+0x10 type=socket process=p\n"
                          "point 2 write site=p+0x20 type=pipe process=p\n";
        for (int k = 1; k <= 40; k++) {
                char line[64];
                /* recv: hits 1..3, then every other hit; write: 5, short=1 at 6 */
                if (k <= 3 || k % 2 == 0) {
                        snprintf(line, sizeof line, "inject 1 %d errno=EAGAIN\n", k);
                        strcat(text, line);
                }
        }
        strcat(text, "inject 2 6 short=1\ninject 2 5 errno=EAGAIN\n");
        recording_parse(&rec, text, strlen(text));
        assert_int_equal(rec.n_injects, 24);

        unsigned all[24], two[2] = {23, 0}; /* write at 5, recv at 1 */
        for (unsigned i = 0; i < 24; i++)
                all[i] = 23 - i; /* any order */
        char *rules = replay_rules(&rec, two, 2);
        assert_string_equal(rules, "recv site=p+0x10 type=socket process=p per=process when=1 "
                                   "errno=EAGAIN;write site=p+0x20 type=pipe process=p "
                                   "per=process when=5 errno=EAGAIN");
        free(rules);
        rules = replay_rules(&rec, all, 24);
        assert_string_equal(rules,
                            "recv site=p+0x10 type=socket process=p per=process "
                            "when=1..4,6,8,10,12,14,16,18,20,22,24,26,28,30,32,34 errno=EAGAIN;"
                            "recv site=p+0x10 type=socket process=p per=process when=36,38,40 "
                            "errno=EAGAIN;"
                            "write site=p+0x20 type=pipe process=p per=process when=5 errno=EAGAIN;"
                            "write site=p+0x20 type=pipe process=p per=process when=6 short=1");
        free(rules);
        rules = replay_rules(&rec, all, 0);
        assert_string_equal(rules, "");
        free(rules);
        recording_free(&rec);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(reads_what_report_c_writes),
            cmocka_unit_test(every_cut_report_is_refused),
            cmocka_unit_test(survives_mangled_reports),
            cmocka_unit_test(skips_members_it_does_not_need),
            cmocka_unit_test(decodes_string_escapes),
            cmocka_unit_test(cuts_long_strings_between_characters),
            cmocka_unit_test(refuses_what_is_not_json),
            cmocka_unit_test(refuses_too_many_rules),
            cmocka_unit_test(sums_processes_and_merges_their_rules),
            cmocka_unit_test(expands_pid_like_the_library),
            cmocka_unit_test(puts_the_library_first_but_behind_sanitizers),
            cmocka_unit_test(reads_a_recording),
            cmocka_unit_test(says_killed_or_crashed),
            cmocka_unit_test(replays_a_set_of_injections),
        };
        return cmocka_run_group_tests_name("runner", tests, NULL, NULL);
}
