/* test_config.c - scenario files and the WOULDBLOCK_* environment:
 * config_parse, config_load, config_add_scenario, config_settings,
 * config_resolve, and the scenario library embedded in the library.
 */
#include "wbtest.h"

#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static const char *const wb_vars[] = {
    "WOULDBLOCK_CONFIG", "WOULDBLOCK_SCENARIO", "WOULDBLOCK_RULES",   "WOULDBLOCK_SEED",
    "WOULDBLOCK_LOG",    "WOULDBLOCK_REPORT",   "WOULDBLOCK_DISABLE", "WOULDBLOCK_SPIN_LIMIT",
};

/* Every test starts from an environment with no WOULDBLOCK_* variable and
 * leaves none behind; temporary files are removed whatever happened. */
static char tmp_path[64];

static int clean_env(void **state)
{
        (void)state;
        for (size_t i = 0; i < N_ELEMS(wb_vars); i++)
                unsetenv(wb_vars[i]);
        return 0;
}

static int clean_up(void **state)
{
        clean_env(state);
        if (tmp_path[0]) {
                unlink(tmp_path);
                tmp_path[0] = '\0';
        }
        return 0;
}

/* A scenario file with this text; its path is in tmp_path. */
static const char *write_conf(const char *text)
{
        int fd;
        size_t len = strlen(text);

        snprintf(tmp_path, sizeof tmp_path, "/tmp/wb-test-XXXXXX");
        fd = mkstemp(tmp_path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t)len);
        assert_int_equal(close(fd), 0);
        return tmp_path;
}

#define parse_conf_ok(text, cfg) parse_conf_ok_at(text, cfg, __FILE__, __LINE__)
static void parse_conf_ok_at(const char *text, struct wb_config *cfg, const char *file, int line)
{
        struct wb_diag diag = {{0}};

        if (config_parse("f.conf", text, strlen(text), cfg, &diag) != 0) {
                print_error("# config refused: %s\n", diag.msg);
                _fail(file, line);
        }
}

/* The file must be refused with exactly "f.conf:LINE:COL: message". */
#define conf_fails_with(text, line, col, message)                                                  \
        conf_fails_with_at(text, line, col, message, __FILE__, __LINE__)
static void conf_fails_with_at(const char *text, unsigned line_no, unsigned col,
                               const char *message, const char *file, int line)
{
        struct wb_config cfg;
        struct wb_diag diag = {{0}};
        char expected[sizeof diag.msg];

        if (config_parse("f.conf", text, strlen(text), &cfg, &diag) == 0) {
                config_free(&cfg);
                print_error("# config accepted, expected: %s\n", message);
                _fail(file, line);
        }
        snprintf(expected, sizeof expected, "f.conf:%u:%u: %s", line_no, col, message);
        expect_msg_at(diag.msg, expected, file, line);
        /* refused: nothing is left allocated or half-filled */
        assert_null(cfg.rules);
        assert_int_equal(cfg.n_rules, 0);
        assert_int_equal(cfg.n_scenarios, 0);
}

/* ---- the file format ---- */

static const char sample[] = "# header comment\n"
                             "\n"
                             "[alpha]\n"
                             "description = first scenario   # trailing comment\n"
                             "read when=1\n"
                             "  write when=2   # indented, trailing comment\n"
                             "\t\n"
                             "[beta-2.x_Y]\n"
                             "connect family=inet\n"
                             "# a comment line inside\n"
                             "   # an indented comment line\n"
                             "input,output prob=0.5\n"
                             "[gamma]\n"
                             "description=no spaces = and an equals sign\n";

static void test_sections_and_rules(void **state)
{
        struct wb_config cfg;
        (void)state;

        parse_conf_ok(sample, &cfg);
        assert_string_equal(cfg.path, "f.conf");
        assert_int_equal(cfg.n_scenarios, 3);
        assert_int_equal(cfg.n_rules, 4);

        const struct wb_scenario *a = &cfg.scenarios[0], *b = &cfg.scenarios[1],
                                 *g = &cfg.scenarios[2];
        assert_string_equal(a->name, "alpha");
        assert_string_equal(a->description, "first scenario");
        assert_int_equal(a->line, 3);
        assert_int_equal(a->first_rule, 0);
        assert_int_equal(a->n_rules, 2);
        assert_string_equal(b->name, "beta-2.x_Y");
        assert_string_equal(b->description, "");
        assert_int_equal(b->line, 8);
        assert_int_equal(b->first_rule, 2);
        assert_int_equal(b->n_rules, 2);
        assert_string_equal(g->name, "gamma");
        assert_string_equal(g->description, "no spaces = and an equals sign");
        assert_int_equal(g->n_rules, 0);

        static const struct {
                const char *text, *scenario;
                unsigned line;
                uint32_t calls;
        } rules[] = {
            {"read when=1", "alpha", 5, WB_CALL_BIT(WB_READ)},
            {"write when=2", "alpha", 6, WB_CALL_BIT(WB_WRITE)},
            {"connect family=inet", "beta-2.x_Y", 9, WB_CALL_BIT(WB_CONNECT)},
            {"input,output prob=0.5", "beta-2.x_Y", 12, WB_GROUP_INPUT | WB_GROUP_OUTPUT},
        };
        for (size_t i = 0; i < N_ELEMS(rules); i++) {
                assert_string_equal(cfg.rules[i].text, rules[i].text);
                assert_string_equal(cfg.rules[i].scenario, rules[i].scenario);
                assert_int_equal(cfg.rules[i].line, rules[i].line);
                assert_int_equal(cfg.rules[i].calls, rules[i].calls);
        }

        assert_ptr_equal(config_find(&cfg, "alpha", 5), a);
        assert_ptr_equal(config_find(&cfg, "beta-2.x_Yzzz", 10), b);
        assert_null(config_find(&cfg, "alph", 4));
        assert_null(config_find(&cfg, "Alpha", 5));

        config_free(&cfg);
        assert_null(cfg.rules);
        assert_int_equal(cfg.n_rules, 0);
        assert_int_equal(cfg.n_scenarios, 0);
}

static void test_line_endings_and_empty_files(void **state)
{
        struct wb_config cfg;
        (void)state;

        /* CRLF, and no newline at the end of the last line */
        parse_conf_ok("[a]\r\ndescription = crlf\r\nread when=1\r\nwrite", &cfg);
        assert_int_equal(cfg.n_scenarios, 1);
        assert_int_equal(cfg.n_rules, 2);
        assert_string_equal(cfg.scenarios[0].description, "crlf");
        assert_string_equal(cfg.rules[0].text, "read when=1");
        assert_string_equal(cfg.rules[1].text, "write");
        assert_int_equal(cfg.rules[1].line, 4);
        config_free(&cfg);

        parse_conf_ok("", &cfg);
        assert_int_equal(cfg.n_scenarios, 0);
        config_free(&cfg);

        parse_conf_ok("# only a comment\n\n   \n# [not-a-scenario]\n", &cfg);
        assert_int_equal(cfg.n_scenarios, 0);
        config_free(&cfg);

        /* a scenario name may be 63 characters */
        parse_conf_ok("[abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc]\n", &cfg);
        assert_int_equal(strlen(cfg.scenarios[0].name), 63);
        config_free(&cfg);
}

static void test_many_rules_grow(void **state)
{
        struct wb_config cfg;
        char text[8192];
        size_t used;
        (void)state;

        used = (size_t)snprintf(text, sizeof text, "[big]\n");
        for (int i = 1; i <= 100; i++)
                used += (size_t)snprintf(text + used, sizeof text - used, "read when=%d\n", i);
        parse_conf_ok(text, &cfg);
        assert_int_equal(cfg.n_rules, 100);
        assert_int_equal(cfg.scenarios[0].n_rules, 100);
        assert_int_equal(cfg.rules[99].line, 101);
        assert_true(rule_when_matches(&cfg.rules[99], 100));
        config_free(&cfg);
}

static void test_file_errors(void **state)
{
        const char *t;
        (void)state;

        conf_fails_with("read when=1\n[a]\n", 1, 1,
                        "rule outside a scenario (start one with [name])");
        conf_fails_with("# comment\n\n   read when=1\n", 3, 4,
                        "rule outside a scenario (start one with [name])");
        conf_fails_with("[a]\nread\n\n[a]\n", 4, 2, "scenario 'a' already defined at line 1");
        conf_fails_with("[one]\n[two]\n  [one]  # again\n", 3, 4,
                        "scenario 'one' already defined at line 1");
        conf_fails_with("[a b]\n", 1, 3, "scenario names use letters, digits, '-', '_' and '.'");
        conf_fails_with("[ok]\n[a/b]\n", 2, 3,
                        "scenario names use letters, digits, '-', '_' and '.'");
        conf_fails_with("[x]\n[caf\xc3\xa9]\n", 2, 5,
                        "scenario names use letters, digits, '-', '_' and '.'");
        conf_fails_with("[]\n", 1, 2, "empty scenario name");
        conf_fails_with("[abc\n", 1, 1, "missing ']' after scenario name");
        conf_fails_with("[abc] x\n", 1, 7, "unexpected text after ']'");
        conf_fails_with("[abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd]\n", 1,
                        2, "scenario name longer than 63 characters");
        conf_fails_with("[a]\ndescription = x\nread\ndescription = y\n", 4, 1,
                        "duplicate description for [a]");
        conf_fails_with("description = x\n[a]\n", 1, 1, "description outside a [scenario]");
        conf_fails_with("[a]\ndescription =   \n", 2, 14, "empty description");
        conf_fails_with("[a]\ndescription = # only a comment\n", 2, 14, "empty description");
        conf_fails_with("[a]\ndescriptionary = x\n", 2, 1, "unknown call 'descriptionary'");

        /* a rule's error: the file's line, the column within that line */
        conf_fails_with("[a]\nread when=x # c\n", 2, 11, "when: 'x' is not a number");
        conf_fails_with("[a]\n\n\tread when=1 wen=2\n", 3, col_of("\tread when=1 wen=2", "wen"),
                        "unknown key 'wen'");
        t = "    connect short=1";
        conf_fails_with("[a]\ninput\n[b]\n    connect short=1\n", 4, col_of(t, "short"),
                        "short= applies to input and output calls only, not to accept or connect");
        conf_fails_with("[a]\nread,bogus\n", 2, 6, "unknown call 'bogus'");
}

/* config_parse stops at len, NULs inside it are refused, and a file that
 * was never NUL-terminated parses all the same. */
static void test_parse_uses_len(void **state)
{
        struct wb_config cfg;
        struct wb_diag diag = {{0}};
        const char text[] = "[a]\nread\n[b]\nbogus\n";
        const char with_nul[] = "[a]\nread\0write\n";
        (void)state;

        assert_int_equal(config_parse("f.conf", text, 9, &cfg, &diag), 0);
        assert_int_equal(cfg.n_scenarios, 1);
        assert_int_equal(cfg.n_rules, 1);
        config_free(&cfg);

        assert_int_equal(config_parse("f.conf", with_nul, sizeof with_nul - 1, &cfg, &diag), -1);
        expect_msg(diag.msg, "f.conf:2:1: NUL byte in a text file");
        assert_null(cfg.rules);
}

/* ---- config_load ---- */

static void test_load_file(void **state)
{
        struct wb_config cfg;
        struct wb_diag diag = {{0}};
        char expected[600];
        const char *path;
        (void)state;

        path = write_conf("[mine]\ndescription = from a file\nrecv when=2\n");
        assert_int_equal(config_load(path, &cfg, &diag), 0);
        assert_string_equal(cfg.path, path);
        assert_int_equal(cfg.n_scenarios, 1);
        assert_string_equal(cfg.scenarios[0].description, "from a file");
        assert_int_equal(cfg.rules[0].calls, WB_CALL_BIT(WB_RECV));
        config_free(&cfg);
        unlink(path);

        /* errors name the file as given */
        path = write_conf("[mine]\n\nrecv wen=2\n");
        assert_int_equal(config_load(path, &cfg, &diag), -1);
        snprintf(expected, sizeof expected, "%s:3:6: unknown key 'wen'", path);
        expect_msg(diag.msg, expected);
}

static void test_load_missing_file(void **state)
{
        struct wb_config cfg;
        struct wb_diag diag = {{0}};
        char expected[600];
        (void)state;

        assert_int_equal(config_load("/nonexistent/wb.conf", &cfg, &diag), -1);
        snprintf(expected, sizeof expected, "/nonexistent/wb.conf: cannot open: %s",
                 strerror(ENOENT));
        expect_msg(diag.msg, expected);
        assert_null(cfg.rules);
}

/* ---- config_add_scenario ---- */

static void test_add_scenario(void **state)
{
        struct wb_config cfg;
        struct wb_diag diag = {{0}};
        struct wb_rule rules[4];
        unsigned n = 1;
        (void)state;

        parse_conf_ok("[a]\nread\nwrite\n[b]\nconnect\n[empty]\n", &cfg);
        rules[0] = parse_ok("accept");
        assert_int_equal(config_add_scenario(&cfg, "b", 1, "X:", 1, rules, &n, 4, &diag), 0);
        assert_int_equal(n, 2);
        assert_int_equal(rules[0].calls, WB_GROUP_ACCEPT);
        assert_int_equal(rules[1].calls, WB_CALL_BIT(WB_CONNECT));
        assert_string_equal(rules[1].scenario, "b");
        assert_int_equal(rules[1].line, 5);
        /* only len bytes of the name count */
        assert_int_equal(config_add_scenario(&cfg, "a,b", 1, "X:", 1, rules, &n, 4, &diag), 0);
        assert_int_equal(n, 4);
        assert_int_equal(rules[2].calls, WB_CALL_BIT(WB_READ));
        assert_int_equal(rules[3].calls, WB_CALL_BIT(WB_WRITE));
        /* a scenario without rules adds nothing, even when full */
        assert_int_equal(config_add_scenario(&cfg, "empty", 5, "X:", 1, rules, &n, 4, &diag), 0);
        assert_int_equal(n, 4);

        /* full */
        n = 3;
        assert_int_equal(
            config_add_scenario(&cfg, "a", 1, "WOULDBLOCK_SCENARIO:", 7, rules, &n, 4, &diag), -1);
        expect_msg(diag.msg, "WOULDBLOCK_SCENARIO:7: too many rules (at most 4)");
        assert_int_equal(n, 3);

        /* unknown: names it and lists what the file has */
        assert_int_equal(
            config_add_scenario(&cfg, "zzz", 3, "WOULDBLOCK_SCENARIO:", 3, rules, &n, 4, &diag),
            -1);
        expect_msg(diag.msg, "WOULDBLOCK_SCENARIO:3: unknown scenario 'zzz' (f.conf has: a, b, "
                             "empty)");
        config_free(&cfg);

        parse_conf_ok("# nothing\n", &cfg);
        assert_int_equal(config_add_scenario(&cfg, "first-read", 10, "WOULDBLOCK_SCENARIO:", 1,
                                             rules, &n, 4, &diag),
                         -1);
        expect_msg(diag.msg, "WOULDBLOCK_SCENARIO:1: unknown scenario 'first-read' (f.conf has: "
                             "none)");
        config_free(&cfg);
}

/* ---- the environment ---- */

static void test_settings_defaults(void **state)
{
        struct wb_settings s;
        struct wb_diag diag = {{0}};
        (void)state;

        assert_int_equal(config_settings(&s, &diag), 0);
        assert_null(s.config);
        assert_null(s.scenarios);
        assert_null(s.rules);
        assert_null(s.log);
        assert_null(s.report);
        assert_int_equal(s.seed, 1);
        assert_false(s.disabled);
        assert_int_equal(s.spin_limit, 1000);

        /* empty strings are as good as unset */
        setenv("WOULDBLOCK_CONFIG", "", 1);
        setenv("WOULDBLOCK_SCENARIO", "", 1);
        setenv("WOULDBLOCK_LOG", "", 1);
        setenv("WOULDBLOCK_REPORT", "", 1);
        setenv("WOULDBLOCK_DISABLE", "", 1);
        assert_int_equal(config_settings(&s, &diag), 0);
        assert_null(s.config);
        assert_null(s.scenarios);
        assert_null(s.log);
        assert_null(s.report);
        assert_false(s.disabled);
}

static void test_settings_values(void **state)
{
        struct wb_settings s;
        struct wb_diag diag = {{0}};
        (void)state;

        setenv("WOULDBLOCK_CONFIG", "/etc/x.conf", 1);
        setenv("WOULDBLOCK_SCENARIO", "first-read,alternate", 1);
        setenv("WOULDBLOCK_RULES", "read when=1", 1);
        setenv("WOULDBLOCK_SEED", "42", 1);
        setenv("WOULDBLOCK_LOG", "stderr", 1);
        setenv("WOULDBLOCK_REPORT", "/tmp/r-%p.json", 1);
        setenv("WOULDBLOCK_DISABLE", "1", 1);
        setenv("WOULDBLOCK_SPIN_LIMIT", "5", 1);
        assert_int_equal(config_settings(&s, &diag), 0);
        assert_string_equal(s.config, "/etc/x.conf");
        assert_string_equal(s.scenarios, "first-read,alternate");
        assert_string_equal(s.rules, "read when=1");
        assert_int_equal(s.seed, 42);
        assert_string_equal(s.log, "stderr");
        assert_string_equal(s.report, "/tmp/r-%p.json");
        assert_true(s.disabled);
        assert_int_equal(s.spin_limit, 5);

        setenv("WOULDBLOCK_DISABLE", "0", 1);
        setenv("WOULDBLOCK_SEED", "0", 1);
        assert_int_equal(config_settings(&s, &diag), 0);
        assert_false(s.disabled);
        assert_int_equal(s.seed, 0);

        setenv("WOULDBLOCK_SEED", "18446744073709551615", 1);
        assert_int_equal(config_settings(&s, &diag), 0);
        assert_true(s.seed == UINT64_MAX);
}

static void test_settings_errors(void **state)
{
        static const char *const bad_seeds[] = {
            "abc", "-1", "1.5", " 5", "5 ", "0x10", "18446744073709551616", "99999999999999999999",
        };
        struct wb_settings s;
        struct wb_diag diag = {{0}};
        char expected[256];
        (void)state;

        for (size_t i = 0; i < N_ELEMS(bad_seeds); i++) {
                setenv("WOULDBLOCK_SEED", bad_seeds[i], 1);
                assert_int_equal(config_settings(&s, &diag), -1);
                snprintf(expected, sizeof expected,
                         "WOULDBLOCK_SEED:1: '%s' is not an unsigned integer", bad_seeds[i]);
                expect_msg(diag.msg, expected);
        }
        unsetenv("WOULDBLOCK_SEED");

        setenv("WOULDBLOCK_DISABLE", "yes", 1);
        assert_int_equal(config_settings(&s, &diag), -1);
        expect_msg(diag.msg, "WOULDBLOCK_DISABLE:1: expected 1 or 0, got 'yes'");
        unsetenv("WOULDBLOCK_DISABLE");

        setenv("WOULDBLOCK_SPIN_LIMIT", "many", 1);
        assert_int_equal(config_settings(&s, &diag), -1);
        expect_msg(diag.msg, "WOULDBLOCK_SPIN_LIMIT:1: 'many' is not an unsigned integer");
}

/* settings from the environment, then resolve; the test frees cfg. The
 * library's start-up form, config_resolve_shared, must give the same rules
 * or the same message: every resolve test checks it too. */
static int resolve(struct wb_config *cfg, struct wb_rule *rules, unsigned *n, struct wb_diag *diag)
{
        static struct wb_rule buf[WB_MAX_RULES];
        static struct wb_config storage;
        struct wb_settings s;
        const struct wb_config *shared;
        const struct wb_rule *got;
        struct wb_diag shared_diag = {{0}};
        unsigned shared_n = 99;
        int r, shared_r;

        memset(cfg, 0, sizeof *cfg); /* so the test may free it whatever happened */
        if (config_settings(&s, diag))
                return -1;
        r = config_resolve(&s, cfg, rules, n, diag);
        shared_r = config_resolve_shared(&s, &storage, &shared, buf, &got, &shared_n, &shared_diag);
        assert_int_equal(shared_r, r);
        if (r) {
                assert_string_equal(shared_diag.msg, diag->msg);
                assert_null(shared);
                return r;
        }
        assert_int_equal(shared_n, *n);
        if (*n)
                assert_memory_equal(got, rules, *n * sizeof *rules);
        if (s.config || s.scenarios)
                assert_string_equal(shared->path, cfg->path);
        else
                assert_null(shared);
        if (shared == &storage)
                config_free(&storage);
        return r;
}

static void test_resolve_nothing(void **state)
{
        struct wb_config cfg;
        struct wb_rule rules[WB_MAX_RULES];
        struct wb_diag diag = {{0}};
        unsigned n = 99;
        (void)state;

        assert_int_equal(resolve(&cfg, rules, &n, &diag), 0);
        assert_int_equal(n, 0);
        assert_int_equal(cfg.n_scenarios, 0);
        config_free(&cfg);
}

static void test_resolve_rules_without_config(void **state)
{
        struct wb_config cfg;
        struct wb_rule rules[WB_MAX_RULES];
        struct wb_diag diag = {{0}};
        unsigned n;
        (void)state;

        setenv("WOULDBLOCK_RULES", "read when=1; write when=2", 1);
        assert_int_equal(resolve(&cfg, rules, &n, &diag), 0);
        assert_int_equal(n, 2);
        assert_int_equal(cfg.n_scenarios, 0); /* no file was needed */
        assert_string_equal(rules[0].scenario, "WOULDBLOCK_RULES");
        assert_int_equal(rules[1].line, 2);
        config_free(&cfg);

        setenv("WOULDBLOCK_RULES", "recv;send when=x", 1);
        assert_int_equal(resolve(&cfg, rules, &n, &diag), -1);
        expect_msg(diag.msg, "WOULDBLOCK_RULES:16: when: 'x' is not a number");
        config_free(&cfg);
}

static void test_resolve_embedded_scenarios(void **state)
{
        struct wb_config cfg;
        struct wb_rule rules[WB_MAX_RULES];
        struct wb_diag diag = {{0}};
        unsigned n;
        (void)state;

        setenv("WOULDBLOCK_SCENARIO", "first-read", 1);
        assert_int_equal(resolve(&cfg, rules, &n, &diag), 0);
        assert_string_equal(cfg.path, WB_EMBEDDED_NAME);
        assert_int_equal(n, 1);
        assert_string_equal(rules[0].scenario, "first-read");
        assert_int_equal(rules[0].calls, WB_GROUP_INPUT);
        assert_true(rule_when_matches(&rules[0], 1));
        assert_false(rule_when_matches(&rules[0], 2));
        config_free(&cfg);

        /* several, in order, white space around names ignored, then the rules */
        setenv("WOULDBLOCK_SCENARIO", " first-write , first-read", 1);
        setenv("WOULDBLOCK_RULES", "connect", 1);
        assert_int_equal(resolve(&cfg, rules, &n, &diag), 0);
        assert_int_equal(n, 3);
        assert_string_equal(rules[0].scenario, "first-write");
        assert_string_equal(rules[1].scenario, "first-read");
        assert_string_equal(rules[2].scenario, "WOULDBLOCK_RULES");
        assert_int_equal(rules[2].calls, WB_GROUP_CONNECT);
        config_free(&cfg);
}

static void test_resolve_unknown_scenario(void **state)
{
        struct wb_config cfg, lib;
        struct wb_rule rules[WB_MAX_RULES];
        struct wb_diag diag = {{0}};
        unsigned n;
        char expected[1024];
        size_t used;
        (void)state;

        setenv("WOULDBLOCK_SCENARIO", "first-read,nope", 1);
        assert_int_equal(resolve(&cfg, rules, &n, &diag), -1);
        config_free(&cfg);

        /* the list, built from the embedded library itself */
        assert_int_equal(config_load(NULL, &lib, &diag), 0);
        used = (size_t)snprintf(
            expected, sizeof expected,
            "WOULDBLOCK_SCENARIO:12: unknown scenario 'nope' (%s has: ", WB_EMBEDDED_NAME);
        for (unsigned i = 0; i < lib.n_scenarios; i++)
                used += (size_t)snprintf(expected + used, sizeof expected - used, "%s%s",
                                         i ? ", " : "", lib.scenarios[i].name);
        snprintf(expected + used, sizeof expected - used, ")");
        config_free(&lib);
        setenv("WOULDBLOCK_SCENARIO", "first-read,nope", 1);
        assert_int_equal(resolve(&cfg, rules, &n, &diag), -1);
        expect_msg(diag.msg, expected);
        config_free(&cfg);

        /* and literally, for the part that does not depend on the library */
        assert_memory_equal(diag.msg,
                            "WOULDBLOCK_SCENARIO:12: unknown scenario 'nope' (wouldblock.conf "
                            "has: first-read, ",
                            strlen("WOULDBLOCK_SCENARIO:12: unknown scenario 'nope' "
                                   "(wouldblock.conf has: first-read, "));
}

static void test_resolve_config_file(void **state)
{
        struct wb_config cfg;
        struct wb_rule rules[WB_MAX_RULES];
        struct wb_diag diag = {{0}};
        unsigned n;
        char expected[600];
        const char *path;
        (void)state;

        path = write_conf("[mine]\nrecv when=3\n[other]\nsend\n");
        setenv("WOULDBLOCK_CONFIG", path, 1);
        setenv("WOULDBLOCK_SCENARIO", "mine", 1);
        assert_int_equal(resolve(&cfg, rules, &n, &diag), 0);
        assert_string_equal(cfg.path, path);
        assert_int_equal(n, 1);
        assert_int_equal(rules[0].calls, WB_CALL_BIT(WB_RECV));
        config_free(&cfg);

        /* the file replaces the library: its scenarios are not there */
        setenv("WOULDBLOCK_SCENARIO", "first-read", 1);
        assert_int_equal(resolve(&cfg, rules, &n, &diag), -1);
        snprintf(expected, sizeof expected,
                 "WOULDBLOCK_SCENARIO:1: unknown scenario 'first-read' (%s has: mine, other)",
                 path);
        expect_msg(diag.msg, expected);
        config_free(&cfg);

        /* a named file is read even when no scenario asks for it */
        unsetenv("WOULDBLOCK_SCENARIO");
        setenv("WOULDBLOCK_CONFIG", "/nonexistent/wb.conf", 1);
        setenv("WOULDBLOCK_RULES", "read", 1);
        assert_int_equal(resolve(&cfg, rules, &n, &diag), -1);
        snprintf(expected, sizeof expected, "/nonexistent/wb.conf: cannot open: %s",
                 strerror(ENOENT));
        expect_msg(diag.msg, expected);
        config_free(&cfg);
}

/* The embedded scenarios' rules are used where they lie when they are one
 * run of the library, in order; other selections are copied. */
static void test_resolve_shared_in_place(void **state)
{
        static struct wb_rule buf[WB_MAX_RULES];
        struct wb_config storage, lib;
        const struct wb_config *cfg;
        const struct wb_rule *rules;
        struct wb_settings s;
        struct wb_diag diag = {{0}};
        const struct wb_scenario *a, *b;
        char list[WB_MAX_SCENARIOS * (WB_NAME_MAX + 1)];
        size_t used = 0;
        unsigned n;
        (void)state;

        assert_int_equal(config_load(NULL, &lib, &diag), 0);
        assert_true(lib.n_scenarios >= 3);
        a = &lib.scenarios[0];
        b = &lib.scenarios[1];
        assert_true(a->n_rules > 0 && b->n_rules > 0);

        /* one scenario: its own rules, and the library itself as cfg */
        setenv("WOULDBLOCK_SCENARIO", a->name, 1);
        assert_int_equal(config_settings(&s, &diag), 0);
        assert_int_equal(config_resolve_shared(&s, &storage, &cfg, buf, &rules, &n, &diag), 0);
        assert_ptr_equal(cfg, &wb_embedded_parsed.cfg);
        assert_ptr_equal(rules, &wb_embedded_rules[a->first_rule].rule);
        assert_int_equal(n, a->n_rules);

        /* every scenario, in the library's order: all its rules, in place */
        for (unsigned i = 0; i < lib.n_scenarios; i++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? "," : "",
                                         lib.scenarios[i].name);
        setenv("WOULDBLOCK_SCENARIO", list, 1);
        assert_int_equal(config_settings(&s, &diag), 0);
        assert_int_equal(config_resolve_shared(&s, &storage, &cfg, buf, &rules, &n, &diag), 0);
        assert_ptr_equal(rules, &wb_embedded_rules[0].rule);
        assert_int_equal(n, lib.n_rules);

        /* out of order, twice the same, or with WOULDBLOCK_RULES: a copy */
        snprintf(list, sizeof list, "%s,%s", b->name, a->name);
        setenv("WOULDBLOCK_SCENARIO", list, 1);
        assert_int_equal(config_settings(&s, &diag), 0);
        assert_int_equal(config_resolve_shared(&s, &storage, &cfg, buf, &rules, &n, &diag), 0);
        assert_ptr_equal(rules, buf);
        assert_int_equal(n, a->n_rules + b->n_rules);
        assert_memory_equal(&buf[b->n_rules], &wb_embedded_rules[a->first_rule].rule,
                            a->n_rules * sizeof *buf);
        snprintf(list, sizeof list, "%s,%s", a->name, a->name);
        setenv("WOULDBLOCK_SCENARIO", list, 1);
        assert_int_equal(config_settings(&s, &diag), 0);
        assert_int_equal(config_resolve_shared(&s, &storage, &cfg, buf, &rules, &n, &diag), 0);
        assert_ptr_equal(rules, buf);
        assert_int_equal(n, 2 * a->n_rules);
        setenv("WOULDBLOCK_SCENARIO", a->name, 1);
        setenv("WOULDBLOCK_RULES", "read", 1);
        assert_int_equal(config_settings(&s, &diag), 0);
        assert_int_equal(config_resolve_shared(&s, &storage, &cfg, buf, &rules, &n, &diag), 0);
        assert_ptr_equal(rules, buf);
        assert_int_equal(n, a->n_rules + 1);
        assert_string_equal(buf[a->n_rules].scenario, "WOULDBLOCK_RULES");

        /* a file is parsed into the storage given */
        unsetenv("WOULDBLOCK_RULES");
        setenv("WOULDBLOCK_CONFIG", write_conf("[mine]\nrecv when=3\n"), 1);
        setenv("WOULDBLOCK_SCENARIO", "mine", 1);
        assert_int_equal(config_settings(&s, &diag), 0);
        assert_int_equal(config_resolve_shared(&s, &storage, &cfg, buf, &rules, &n, &diag), 0);
        assert_ptr_equal(cfg, &storage);
        assert_int_equal(n, 1);
        assert_int_equal(rules[0].calls, WB_CALL_BIT(WB_RECV));
        config_free(&storage);
        config_free(&lib);
}

static void test_resolve_too_many_rules(void **state)
{
        struct wb_config cfg;
        struct wb_rule rules[WB_MAX_RULES];
        struct wb_diag diag = {{0}};
        unsigned n;
        char list[WB_MAX_RULES * 8 + 16];
        char expected[128];
        size_t used = 0;
        (void)state;

        for (int i = 0; i <= WB_MAX_RULES; i++)
                used += (size_t)snprintf(list + used, sizeof list - used, "read;");
        setenv("WOULDBLOCK_RULES", list, 1);
        assert_int_equal(resolve(&cfg, rules, &n, &diag), -1);
        snprintf(expected, sizeof expected, "WOULDBLOCK_RULES:%u: too many rules (at most %u)",
                 WB_MAX_RULES * 5 + 1, WB_MAX_RULES);
        expect_msg(diag.msg, expected);
        config_free(&cfg);
}

/* ---- the embedded scenario library (conf/wouldblock.conf) ---- */

static void test_embedded_library_parses(void **state)
{
        struct wb_config cfg;
        struct wb_diag diag = {{0}};
        (void)state;

        if (config_load(NULL, &cfg, &diag) != 0)
                fail_because("the embedded library is refused: %s", diag.msg);
        assert_string_equal(cfg.path, WB_EMBEDDED_NAME);
        assert_true(cfg.n_scenarios > 0);
        /* the scenarios SPEC §3 and the README name */
        assert_non_null(config_find(&cfg, "first-read", strlen("first-read")));
        assert_non_null(config_find(&cfg, "flaky-net", strlen("flaky-net")));
        for (unsigned i = 0; i < cfg.n_scenarios; i++) {
                const struct wb_scenario *sc = &cfg.scenarios[i];
                if (!sc->description[0])
                        fail_because("[%s] (line %u) has no description", sc->name, sc->line);
                if (sc->n_rules == 0)
                        fail_because("[%s] (line %u) has no rule", sc->name, sc->line);
        }
        config_free(&cfg);
}

/* SPEC §3: every shipped scenario keeps the kernel's contract, so a correct
 * program passes under each: would-block errors, EINPROGRESS, short counts;
 * no hard errno, no blocking=any (nor inflight=any, nor fd types on which
 * the kernel never says EAGAIN). contract_breaker returns the first rule of
 * cfg that breaks it, described in why; NULL when every rule keeps it. */
static const struct wb_rule *contract_breaker(const struct wb_config *cfg, char *why, size_t size)
{
        static const unsigned families[] = {0, WB_FAMILY_UNIX, WB_FAMILY_INET, WB_FAMILY_INET6};

        for (unsigned i = 0; i < cfg->n_rules; i++) {
                const struct wb_rule *r = &cfg->rules[i];

                if (r->blocking_any) {
                        snprintf(why, size, "blocking=any");
                        return r;
                }
                if (r->inflight_any && (r->calls & WB_GROUP_OUTPUT)) {
                        snprintf(why, size, "inflight=any");
                        return r;
                }
                if (r->types & ~(unsigned)WB_TYPE_DEFAULT) {
                        snprintf(why, size, "type= beyond socket,pipe,tty");
                        return r;
                }
                if (r->action == WB_ACT_SHORT)
                        continue;
                for (int c = 0; c < WB_CALL_COUNT; c++)
                        for (size_t f = 0; f < N_ELEMS(families); f++) {
                                int e = rule_errno(r, (enum wb_call)c, families[f]);
                                if (!(r->calls & WB_CALL_BIT(c)) || e == EAGAIN ||
                                    (e == EINPROGRESS && c == WB_CONNECT))
                                        continue;
                                snprintf(why, size, "%s answers errno %d",
                                         rule_call_name((enum wb_call)c), e);
                                return r;
                        }
        }
        return NULL;
}

static void test_embedded_library_keeps_kernel_contract(void **state)
{
        struct wb_config cfg;
        struct wb_diag diag = {{0}};
        const struct wb_rule *r;
        char why[128];
        (void)state;

        assert_int_equal(config_load(NULL, &cfg, &diag), 0);
        r = contract_breaker(&cfg, why, sizeof why);
        if (r)
                fail_because("[%s] line %u '%s': %s", r->scenario, r->line, r->text, why);
        config_free(&cfg);
}

/* The check above can fail: each of these breaks the contract. */
static void test_contract_check_catches_breakers(void **state)
{
        static const char *const breakers[] = {
            "read errno=ECONNRESET",   "write errno=EPIPE",      "read blocking=any",
            "write inflight=any",      "read type=file",         "input type=socket,other",
            "connect errno=ETIMEDOUT", "read errno=EINPROGRESS", "accept errno=ECONNABORTED",
        };
        static const char *const keepers[] = {
            "input when=1",
            "connect family=inet",
            "output short=3 prob=0.3",
            "read errno=EWOULDBLOCK",
            "connect errno=EINPROGRESS family=inet6",
        };
        struct wb_config cfg;
        char text[256], why[128];
        (void)state;

        for (size_t i = 0; i < N_ELEMS(breakers); i++) {
                snprintf(text, sizeof text, "[s]\ninput when=1\n%s\n", breakers[i]);
                parse_conf_ok(text, &cfg);
                if (contract_breaker(&cfg, why, sizeof why) != &cfg.rules[1])
                        fail_because("'%s' not caught", breakers[i]);
                config_free(&cfg);
        }
        for (size_t i = 0; i < N_ELEMS(keepers); i++) {
                snprintf(text, sizeof text, "[s]\n%s\n", keepers[i]);
                parse_conf_ok(text, &cfg);
                if (contract_breaker(&cfg, why, sizeof why))
                        fail_because("'%s' wrongly caught: %s", keepers[i], why);
                config_free(&cfg);
        }
}

/* What --check prints must read back as the same rules. */
static void test_embedded_library_round_trips(void **state)
{
        struct wb_config cfg;
        struct wb_diag diag = {{0}};
        (void)state;

        assert_int_equal(config_load(NULL, &cfg, &diag), 0);
        for (unsigned i = 0; i < cfg.n_rules; i++) {
                char first[WB_TEXT_MAX * 2], second[WB_TEXT_MAX * 2];
                struct wb_rule again;

                rule_format(&cfg.rules[i], first, sizeof first);
                again = parse_ok(first);
                rule_format(&again, second, sizeof second);
                assert_string_equal(first, second);
                assert_int_equal(again.calls, cfg.rules[i].calls);
        }
        config_free(&cfg);
}

static void test_expand_pid(void **state)
{
        char out[32];
        (void)state;

        assert_int_equal(config_expand_pid("/tmp/r.%p.json", "4242", 4, out, sizeof out), 16);
        assert_string_equal(out, "/tmp/r.4242.json");
        assert_int_equal(config_expand_pid("%p-%p%", "7", 1, out, sizeof out), 4);
        assert_string_equal(out, "7-7%"); /* a lone % stays */
        assert_int_equal(config_expand_pid("no pid", "7", 1, out, sizeof out), 6);
        assert_string_equal(out, "no pid");
        /* cut at the buffer, always terminated, the full length returned */
        assert_int_equal(config_expand_pid("abc%pdef", "12345", 5, out, 6), 11);
        assert_string_equal(out, "abc12");
        assert_int_equal(config_expand_pid("abc", "1", 1, NULL, 0), 3);
}

/* The embedded library, parsed at build time (confgen), is what parsing
 * its text gives now: same scenarios, same rules, same provenance. */
static void test_embedded_parsed_matches_text(void **state)
{
        struct wb_config built, now;
        struct wb_diag d;
        char a[512], b[512];
        (void)state;

        assert_non_null(&wb_embedded_parsed); /* linked in: start-up parses nothing */
        assert_int_equal(config_load(NULL, &built, &d), 0);
        assert_true(built.rules_embedded);
        assert_int_equal(
            config_parse(WB_EMBEDDED_NAME, wb_embedded_conf, wb_embedded_conf_size, &now, &d), 0);
        assert_string_equal(built.path, now.path);
        assert_int_equal(built.n_scenarios, now.n_scenarios);
        assert_true(now.n_scenarios > 0);
        for (unsigned i = 0; i < now.n_scenarios; i++) {
                assert_string_equal(built.scenarios[i].name, now.scenarios[i].name);
                assert_string_equal(built.scenarios[i].description, now.scenarios[i].description);
                assert_int_equal(built.scenarios[i].line, now.scenarios[i].line);
                assert_int_equal(built.scenarios[i].first_rule, now.scenarios[i].first_rule);
                assert_int_equal(built.scenarios[i].n_rules, now.scenarios[i].n_rules);
        }
        assert_int_equal(built.n_rules, now.n_rules);
        for (unsigned i = 0; i < now.n_rules; i++) {
                assert_true(rule_format(&built.rules[i], a, sizeof a) >= 0);
                assert_true(rule_format(&now.rules[i], b, sizeof b) >= 0);
                assert_string_equal(a, b);
                assert_string_equal(built.rules[i].text, now.rules[i].text);
                assert_string_equal(built.rules[i].scenario, now.rules[i].scenario);
                assert_int_equal(built.rules[i].line, now.rules[i].line);
        }
        config_free(&built); /* the embedded rules are not freed */
        config_free(&now);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_expand_pid),
            cmocka_unit_test(test_embedded_parsed_matches_text),
            cmocka_unit_test_setup_teardown(test_sections_and_rules, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_line_endings_and_empty_files, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_many_rules_grow, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_file_errors, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_parse_uses_len, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_load_file, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_load_missing_file, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_add_scenario, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_settings_defaults, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_settings_values, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_settings_errors, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_resolve_nothing, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_resolve_rules_without_config, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_resolve_embedded_scenarios, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_resolve_unknown_scenario, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_resolve_config_file, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_resolve_shared_in_place, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_resolve_too_many_rules, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_embedded_library_parses, clean_env, clean_up),
            cmocka_unit_test_setup_teardown(test_embedded_library_keeps_kernel_contract, clean_env,
                                            clean_up),
            cmocka_unit_test_setup_teardown(test_contract_check_catches_breakers, clean_env,
                                            clean_up),
            cmocka_unit_test_setup_teardown(test_embedded_library_round_trips, clean_env, clean_up),
        };
        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
