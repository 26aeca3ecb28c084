/* wbtest.h - what the unit tests share: cmocka, and parsing helpers that
 * fail the test with the library's own diagnostic when a rule is refused.
 */
#ifndef WB_TEST_H
#define WB_TEST_H

/* cmocka.h needs these in front of it */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rules.h"

#include <stdio.h>
#include <string.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Fail the test with a message, as TAP comment lines. */
#define fail_because(...)                                                                          \
        do {                                                                                       \
                print_error("# ");                                                                 \
                print_error(__VA_ARGS__);                                                          \
                print_error("\n");                                                                 \
                fail();                                                                            \
        } while (0)

/* The where-prefix rule_parse is given in the tests that call it directly. */
#define TEST_WHERE "t:"

/* 1-based column of the first needle in text: expected columns are found in
 * the text itself, so editing a case cannot leave a stale number behind. */
#define col_of(text, needle) col_of_at(text, needle, __FILE__, __LINE__)
static inline unsigned col_of_at(const char *text, const char *needle, const char *file, int line)
{
        const char *at = strstr(text, needle);

        if (!at) {
                print_error("# '%s' does not occur in '%s'\n", needle, text);
                _fail(file, line);
        }
        return (unsigned)(at - text) + 1;
}

/* A diagnostic must be exactly this text. */
#define expect_msg(got, expected) expect_msg_at(got, expected, __FILE__, __LINE__)
static inline void expect_msg_at(const char *got, const char *expected, const char *file, int line)
{
        if (strcmp(got, expected) != 0) {
                print_error("# message differs\n#   got:      %s\n#   expected: %s\n", got,
                            expected);
                _fail(file, line);
        }
}

/* Parse one rule that must be accepted. */
#define parse_ok(text) parse_ok_at(text, __FILE__, __LINE__)
static inline struct wb_rule parse_ok_at(const char *text, const char *file, int line)
{
        struct wb_rule r;
        struct wb_diag diag = {{0}};

        if (rule_parse(text, strlen(text), TEST_WHERE, 1, &r, &diag) != 0) {
                print_error("# rule '%s' refused: %s\n", text, diag.msg);
                _fail(file, line);
        }
        return r;
}

/* Parse a ';' list that must be accepted; returns how many rules it held. */
#define parse_list_ok(text, rules, max) parse_list_ok_at(text, rules, max, __FILE__, __LINE__)
static inline unsigned parse_list_ok_at(const char *text, struct wb_rule *rules, unsigned max,
                                        const char *file, int line)
{
        struct wb_diag diag = {{0}};
        unsigned n = 0;

        if (rule_parse_list(text, "WOULDBLOCK_RULES", rules, &n, max, &diag) != 0) {
                print_error("# rules '%s' refused: %s\n", text, diag.msg);
                _fail(file, line);
        }
        return n;
}

/* The message rule_parse gives for text (which must be refused). */
#define parse_fails_with(text, col, message)                                                       \
        parse_fails_with_at(text, col, message, __FILE__, __LINE__)
static inline void parse_fails_with_at(const char *text, unsigned col, const char *message,
                                       const char *file, int line)
{
        struct wb_rule r;
        struct wb_diag diag = {{0}};
        char expected[sizeof diag.msg];

        if (rule_parse(text, strlen(text), TEST_WHERE, 1, &r, &diag) == 0) {
                print_error("# rule '%s' accepted, expected: %s\n", text, message);
                _fail(file, line);
        }
        snprintf(expected, sizeof expected, "%s%u: %s", TEST_WHERE, col, message);
        expect_msg_at(diag.msg, expected, file, line);
}

#endif
