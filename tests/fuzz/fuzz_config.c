/* fuzz_config.c - libFuzzer target for the scenario language (SPEC §3).
 *
 * One input is read three ways:
 *   - all of it as a scenario file's text (config_parse, NUL bytes included:
 *     the parser must reject them, not stop at them);
 *   - what follows the first NUL (the whole input when there is none) as a
 *     WOULDBLOCK_RULES value, cut at the next NUL as getenv would
 *     (rule_parse_list);
 *   - the same bytes, embedded NULs and all, as one rule (rule_parse).
 *
 * A crash is not the only failure: every rule that parses must satisfy the
 * invariants the engine relies on, its canonical text (rule_format, what
 * `wouldblock --check` prints) must parse again to an equal rule, also as a
 * line of a scenario file and as a WOULDBLOCK_RULES value, and every error
 * message must point at a place that exists: "FILE:LINE:COL: " or
 * "NAME:COL: " with COL within the line's length + 1. A broken check prints
 * what it saw and calls abort(), which libFuzzer reports like a crash.
 *
 * WB_FUZZ_KNOWN=id,id... lets a long run go on past findings already
 * reported (the ids are the words in brackets of the failure messages);
 * the regression suite never sets it.
 */
#include "config.h"
#include "rules.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CONF_NAME "fuzz.conf"
#define LIST_NAME "WOULDBLOCK_RULES"
#define RULE_WHERE "rule:"
#define CANON_MAX 4096 /* far above the longest canonical rule (16 maximal when= items) */

static const char *known_ids; /* WB_FUZZ_KNOWN */

/* A finding already reported, that a long run should step over. */
static bool is_known(const char *id)
{
        size_t n = strlen(id);

        for (const char *s = known_ids; s && *s;) {
                const char *comma = strchr(s, ',');
                size_t len = comma ? (size_t)(comma - s) : strlen(s);
                if (len == n && memcmp(s, id, n) == 0)
                        return true;
                s = comma ? comma + 1 : s + len;
        }
        return false;
}

static void fail(const char *id, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* Report a broken check as a crash: libFuzzer keeps the input that did it. */
static void fail(const char *id, const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "fuzz_config: [%s] ", id);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        abort();
}

/* Text of a possibly binary buffer, for failure messages. */
static void print_escaped(const char *label, const char *s, size_t len)
{
        fprintf(stderr, "  %s: \"", label);
        for (size_t i = 0; i < len && i < 600; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '\\' || c == '"')
                        fprintf(stderr, "\\%c", c);
                else if (c >= 0x20 && c < 0x7f)
                        fputc(c, stderr);
                else
                        fprintf(stderr, "\\x%02x", c);
        }
        fprintf(stderr, "\"%s\n", len > 600 ? "..." : "");
}

/* ---- error messages ---- */

/* Digits at *p; false if there are none or they overflow. */
static bool read_number(const char **p, unsigned long long *out)
{
        const char *s = *p;
        unsigned long long v = 0;

        if (*s < '0' || *s > '9')
                return false;
        for (; *s >= '0' && *s <= '9'; s++) {
                if (v > (~0ULL - 9) / 10)
                        return false;
                v = v * 10 + (unsigned long long)(*s - '0');
        }
        *p = s;
        *out = v;
        return true;
}

/* The message is complete and starts with prefix, then [LINE:]COL": " and
 * some text. Returns a pointer to the first number. */
static const char *diag_numbers(const struct wb_diag *d, const char *prefix, const char *origin)
{
        size_t n = strlen(prefix);

        if (!memchr(d->msg, '\0', sizeof d->msg))
                fail("diag-prefix", "%s: message not NUL-terminated", origin);
        if (strncmp(d->msg, prefix, n) != 0)
                fail("diag-prefix", "%s: message does not start with \"%s\": %s", origin, prefix,
                     d->msg);
        return d->msg + n;
}

static void diag_tail(const struct wb_diag *d, const char *p, const char *origin)
{
        if (p[0] != ':' || p[1] != ' ' || p[2] == '\0')
                fail("diag-prefix", "%s: expected \": message\" after the position: %s", origin,
                     d->msg);
}

/* "WHERE:COL: message" with 1 <= COL <= len + 1. */
static void check_col_diag(const struct wb_diag *d, const char *where, size_t len,
                           const char *origin)
{
        const char *p = diag_numbers(d, where, origin);
        unsigned long long col;

        if (!read_number(&p, &col))
                fail("diag-prefix", "%s: no column after \"%s\": %s", origin, where, d->msg);
        diag_tail(d, p, origin);
        if (col < 1 || col > (unsigned long long)len + 1)
                fail("diag-col", "%s: column %llu outside 1..%zu: %s", origin, col, len + 1,
                     d->msg);
}

/* Length of line line_no (1-based) of a file's text, as config_parse counts
 * lines; false if the text has no such line. */
static bool line_length(const char *text, size_t size, unsigned long long line_no, size_t *len)
{
        const char *p = text, *end = text + size;

        for (unsigned long long i = 1; p < end; i++) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *line_end = nl ? nl : end;
                if (i == line_no) {
                        *len = (size_t)(line_end - p);
                        return true;
                }
                p = line_end + 1;
        }
        return false;
}

/* "fuzz.conf:LINE:COL: message", LINE a line of the text, COL within it. */
static void check_file_diag(const struct wb_diag *d, const char *text, size_t size)
{
        const char *p = diag_numbers(d, CONF_NAME ":", "config_parse");
        unsigned long long line, col;
        size_t len;

        if (!read_number(&p, &line) || *p++ != ':' || !read_number(&p, &col))
                fail("diag-prefix", "config_parse: expected LINE:COL: %s", d->msg);
        diag_tail(d, p, "config_parse");
        if (!line_length(text, size, line, &len))
                fail("diag-col", "config_parse: line %llu does not exist: %s", line, d->msg);
        if (col < 1 || col > (unsigned long long)len + 1)
                fail("diag-col", "config_parse: column %llu outside 1..%zu of line %llu: %s", col,
                     len + 1, line, d->msg);
}

/* ---- rules ---- */

/* What the engine takes for granted about a parsed rule. */
static void check_invariants(const struct wb_rule *r, const char *origin)
{
        const char *bad = NULL;

        if (!r->calls || (r->calls & ~WB_GROUP_ALL))
                bad = "calls";
        else if (r->action != WB_ACT_ERRNO && r->action != WB_ACT_SHORT)
                bad = "action";
        else if (r->action == WB_ACT_ERRNO && (r->err < 0 || r->err > 4095 || r->short_n))
                bad = "err";
        else if (r->action == WB_ACT_SHORT &&
                 (!r->short_n || r->err || (r->calls & (WB_GROUP_ACCEPT | WB_GROUP_CONNECT))))
                bad = "short";
        else if (r->n_when > WB_MAX_WHEN)
                bad = "n_when";
        else if (r->has_prob ? !(r->prob >= 0 && r->prob <= 1) : r->prob != 0)
                bad = "prob";
        else if (r->fd < -1)
                bad = "fd";
        else if (r->port != -1 && (r->port < 1 || r->port > 65535))
                bad = "port";
        else if (!r->types ||
                 (r->types & ~(unsigned)(WB_TYPE_DEFAULT | WB_TYPE_FILE | WB_TYPE_OTHER)))
                bad = "types";
        else if (r->families & ~(unsigned)(WB_FAMILY_UNIX | WB_FAMILY_INET | WB_FAMILY_INET6))
                bad = "families";
        else if (!memchr(r->process, '\0', sizeof r->process) || strchr(r->process, '/') ||
                 strpbrk(r->process, " \t\r\n\v\f"))
                bad = "process";
        else if (!memchr(r->text, '\0', sizeof r->text) ||
                 !memchr(r->scenario, '\0', sizeof r->scenario))
                bad = "text";
        for (unsigned i = 0; !bad && i < r->n_when; i++) {
                const struct wb_when *w = &r->when[i];
                if (w->first < 1 || w->last < w->first || w->step < 1 || (w->first == WB_WHEN_OPEN))
                        bad = "when";
        }
        if (bad)
                fail("invariant", "%s: parsed rule has a bad %s: %s", origin, bad, r->text);
}

/* The errno a rule returns, for every call it counts and every family. */
static bool same_errno(const struct wb_rule *a, const struct wb_rule *b)
{
        static const unsigned families[] = {0, WB_FAMILY_UNIX, WB_FAMILY_INET, WB_FAMILY_INET6};

        for (int c = 0; c < WB_CALL_COUNT; c++)
                for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
                        if ((a->calls & WB_CALL_BIT(c)) &&
                            rule_errno(a, (enum wb_call)c, families[f]) !=
                                rule_errno(b, (enum wb_call)c, families[f]))
                                return false;
        return true;
}

/* The first field in which two rules would behave differently, or NULL.
 * Fields without effect are not compared: err when the call's default is
 * spelled out, the step of a single-number when= item, inflight= on a rule
 * without output calls. */
static const char *rule_difference(const struct wb_rule *a, const struct wb_rule *b)
{
        if (a->calls != b->calls)
                return "calls";
        if (a->action != b->action)
                return "action";
        if (a->action == WB_ACT_ERRNO && !same_errno(a, b))
                return "err";
        if (a->action == WB_ACT_SHORT && a->short_n != b->short_n)
                return "short_n";
        if (a->n_when != b->n_when)
                return "when";
        for (unsigned i = 0; i < a->n_when; i++) {
                const struct wb_when *x = &a->when[i], *y = &b->when[i];
                if (x->first != y->first || x->last != y->last ||
                    (x->first != x->last && x->step != y->step))
                        return "when";
        }
        if (a->has_prob != b->has_prob || a->prob != b->prob)
                return "prob";
        if (a->max != b->max)
                return "max";
        if (a->until_poll != b->until_poll)
                return "until_poll";
        if (a->per_process != b->per_process)
                return "per_process";
        if (a->fd != b->fd)
                return "fd";
        if (a->types != b->types)
                return "types";
        if (a->families != b->families)
                return "families";
        if (a->port != b->port)
                return "port";
        if ((a->calls & WB_GROUP_OUTPUT) && a->inflight_any != b->inflight_any)
                return "inflight_any";
        if (a->blocking_any != b->blocking_any)
                return "blocking_any";
        if (strcmp(a->process, b->process) != 0)
                return "process";
        return NULL;
}

static void print_rule(const char *label, const struct wb_rule *r)
{
        fprintf(stderr, "  %s: calls=%#x action=%d err=%d short_n=%llu n_when=%u", label, r->calls,
                (int)r->action, r->err, (unsigned long long)r->short_n, r->n_when);
        for (unsigned i = 0; i < r->n_when; i++)
                fprintf(stderr, " [%llu..%llu+%llu]", (unsigned long long)r->when[i].first,
                        (unsigned long long)r->when[i].last, (unsigned long long)r->when[i].step);
        fprintf(stderr,
                " has_prob=%d prob=%.17g max=%llu until_poll=%d per_process=%d fd=%d "
                "types=%#x families=%#x port=%d inflight_any=%d blocking_any=%d process=\"%s\"\n",
                r->has_prob, r->prob, (unsigned long long)r->max, r->until_poll, r->per_process,
                r->fd, r->types, r->families, r->port, r->inflight_any, r->blocking_any,
                r->process);
}

/* A mismatch already reported under its own id, so WB_FUZZ_KNOWN can name
 * it without hiding other mismatches of the same field. */
static const char *mismatch_id(const struct wb_rule *r, const char *field)
{
        if (strcmp(field, "when") == 0)
                for (unsigned i = 0; i < r->n_when; i++)
                        if (r->when[i].first == r->when[i].last && r->when[i].step > 1)
                                return "when-single-step";
        if (strcmp(field, "prob") == 0 && r->has_prob) {
                /* beyond 15 decimals the digits are more than a double holds */
                const char *v = strstr(r->text, "prob=");
                size_t digits = 0;
                if (v)
                        for (v += 5; *v >= '0' && *v <= '9'; v++)
                                ;
                if (v && *v == '.')
                        while (v[1 + digits] >= '0' && v[1 + digits] <= '9')
                                digits++;
                if (digits > 15)
                        return "prob-digits";
        }
        return "roundtrip";
}

/* How a canonical text that parsed (or not) differs from the rule it
 * came from. Returns false when the mismatch is a known one. */
static bool compare_reparse(const struct wb_rule *r, const char *canon, int parsed,
                            const struct wb_rule *back, const struct wb_diag *diag, const char *how,
                            const char *origin)
{
        const char *field = parsed ? "syntax" : rule_difference(r, back);
        const char *id;

        if (!field)
                return true;
        if (strcmp(how, "config_parse") == 0)
                id = strchr(r->process, '#') ? "process-hash" : "canon-config";
        else if (strcmp(how, "rule_parse_list") == 0)
                id = strchr(r->process, ';') ? "process-semicolon" : "canon-list";
        else
                id = parsed ? "canon-parse" : mismatch_id(r, field);
        if (is_known(id))
                return false;
        fprintf(stderr, "fuzz_config: %s: canonical text read back with %s differs in %s\n", origin,
                how, field);
        print_escaped("rule as written", r->text, strlen(r->text));
        print_escaped("canonical text", canon, strlen(canon));
        if (parsed)
                fprintf(stderr, "  error: %s\n", diag->msg);
        print_rule("parsed", r);
        if (!parsed)
                print_rule("read back", back);
        fail(id, "round trip of the canonical form");
        return false;
}

/* The canonical text parses back to an equal rule: alone, as a line of a
 * scenario file, and as a WOULDBLOCK_RULES value. */
static void check_round_trip(const struct wb_rule *r, const char *origin)
{
        static char canon[CANON_MAX], again[CANON_MAX], file[CANON_MAX + 16];
        static struct wb_rule list[2];
        static struct wb_config cfg;
        struct wb_rule back;
        struct wb_diag diag;
        unsigned n_list = 0;
        int len, parsed;

        check_invariants(r, origin);
        len = rule_format(r, canon, sizeof canon);
        if (len < 0 || (size_t)len >= sizeof canon || strlen(canon) != (size_t)len)
                fail("format-size", "%s: rule_format returned %d for \"%s\"", origin, len, canon);

        /* a short buffer gets a NUL-terminated prefix and the full length */
        for (size_t size = 1; size <= (size_t)len; size += 1 + (size_t)len / 3) {
                memset(again, 'x', sizeof again);
                if (rule_format(r, again, size) != len || strlen(again) != size - 1 ||
                    memcmp(again, canon, size - 1) != 0 || again[size] != 'x')
                        fail("format-truncation", "%s: rule_format into %zu bytes", origin, size);
        }

        parsed = rule_parse(canon, (size_t)len, "canonical:", 1, &back, &diag);
        if (!compare_reparse(r, canon, parsed, &back, &diag, "rule_parse", origin))
                return;
        if (rule_format(&back, again, sizeof again) != len || strcmp(again, canon) != 0) {
                print_escaped("first", canon, strlen(canon));
                print_escaped("second", again, strlen(again));
                fail("idempotent", "%s: formatting the read-back rule gives another text", origin);
        }

        /* what --check prints must be usable where rules are written */
        int flen = snprintf(file, sizeof file, "[s]\n%s\n", canon);
        parsed = config_parse(CONF_NAME, file, (size_t)flen, &cfg, &diag) || cfg.n_rules != 1;
        if (!parsed)
                back = cfg.rules[0];
        config_free(&cfg);
        if (!compare_reparse(r, canon, parsed, &back, &diag, "config_parse", origin))
                return;
        parsed = rule_parse_list(canon, LIST_NAME, list, &n_list, 2, &diag) || n_list != 1;
        if (!parsed)
                back = list[0];
        compare_reparse(r, canon, parsed, &back, &diag, "rule_parse_list", origin);
}

/* ---- the three entry points ---- */

static void check_config(const char *text, size_t size)
{
        static struct wb_config cfg;
        static struct wb_rule rules[WB_MAX_RULES];
        struct wb_diag diag;
        unsigned total = 0;

        memset(diag.msg, 0, sizeof diag.msg);
        if (config_parse(CONF_NAME, text, size, &cfg, &diag)) {
                check_file_diag(&diag, text, size);
                if (cfg.rules || cfg.n_rules || cfg.n_scenarios)
                        fail("config-shape", "config_parse failed but left rules behind");
                config_free(&cfg);
                return;
        }
        if (cfg.n_scenarios > WB_MAX_SCENARIOS || (cfg.n_rules && !cfg.rules))
                fail("config-shape", "%u scenarios, %u rules", cfg.n_scenarios, cfg.n_rules);
        for (unsigned i = 0; i < cfg.n_scenarios; i++) {
                const struct wb_scenario *sc = &cfg.scenarios[i];
                size_t name_len = strnlen(sc->name, sizeof sc->name);
                unsigned n = 0;

                if (!name_len || name_len == sizeof sc->name ||
                    !memchr(sc->description, '\0', sizeof sc->description) ||
                    sc->first_rule != total || sc->line < 1)
                        fail("config-shape", "scenario %u is malformed", i);
                total += sc->n_rules;
                if (total > cfg.n_rules || config_find(&cfg, sc->name, name_len) != sc)
                        fail("config-shape", "scenario [%s]: rules or lookup wrong", sc->name);
                for (unsigned k = sc->first_rule; k < sc->first_rule + sc->n_rules; k++)
                        if (strcmp(cfg.rules[k].scenario, sc->name) != 0 ||
                            cfg.rules[k].line <= sc->line ||
                            (k > sc->first_rule && cfg.rules[k].line <= cfg.rules[k - 1].line))
                                fail("config-shape", "rule %u is not where [%s] says", k, sc->name);

                /* what WOULDBLOCK_SCENARIO=name does */
                if (config_add_scenario(&cfg, sc->name, name_len, "WOULDBLOCK_SCENARIO:", 1, rules,
                                        &n, WB_MAX_RULES, &diag)) {
                        check_col_diag(&diag, "WOULDBLOCK_SCENARIO:", name_len, "add_scenario");
                        if (sc->n_rules <= WB_MAX_RULES)
                                fail("scenario-add", "[%s] refused: %s", sc->name, diag.msg);
                } else if (n != sc->n_rules ||
                           (n && memcmp(rules, &cfg.rules[sc->first_rule], n * sizeof *rules))) {
                        fail("scenario-add", "[%s]: %u rules added, not its own", sc->name, n);
                }
        }
        if (total != cfg.n_rules)
                fail("config-shape", "scenarios hold %u of %u rules", total, cfg.n_rules);
        for (unsigned k = 0; k < cfg.n_rules; k++)
                check_round_trip(&cfg.rules[k], "config_parse");

        /* an unknown scenario is an error that lists the file's scenarios */
        unsigned n = 0;
        if (!config_add_scenario(&cfg, "no such scenario", 16, "WOULDBLOCK_SCENARIO:", 1, rules, &n,
                                 WB_MAX_RULES, &diag))
                fail("scenario-add", "an unknown scenario was found");
        check_col_diag(&diag, "WOULDBLOCK_SCENARIO:", 16, "add_scenario");
        config_free(&cfg);
}

static void check_list(const char *text)
{
        static struct wb_rule rules[WB_MAX_RULES];
        struct wb_diag diag;
        unsigned n = 0;

        memset(diag.msg, 0, sizeof diag.msg);
        if (rule_parse_list(text, LIST_NAME, rules, &n, WB_MAX_RULES, &diag)) {
                check_col_diag(&diag, LIST_NAME ":", strlen(text), "rule_parse_list");
                return;
        }
        if (n > WB_MAX_RULES)
                fail("invariant", "rule_parse_list: %u rules", n);
        for (unsigned i = 0; i < n; i++) {
                if (strcmp(rules[i].scenario, LIST_NAME) != 0 || rules[i].line != i + 1)
                        fail("invariant", "rule_parse_list: rule %u has provenance %s:%u", i,
                             rules[i].scenario, rules[i].line);
                check_round_trip(&rules[i], "rule_parse_list");
        }
}

/* The text as WOULDBLOCK_SCENARIO, over the embedded library: the name
 * list is split and trimmed, and an unknown name is located in it. */
static void check_scenario_list(const char *text)
{
        static struct wb_config cfg;
        static struct wb_rule rules[WB_MAX_RULES];
        struct wb_settings settings = {.scenarios = text, .seed = 1, .spin_limit = 1000};
        struct wb_diag diag;
        unsigned n = 0;

        memset(diag.msg, 0, sizeof diag.msg);
        if (config_resolve(&settings, &cfg, rules, &n, &diag)) {
                check_col_diag(&diag, "WOULDBLOCK_SCENARIO:", strlen(text), "config_resolve");
                if (cfg.rules || cfg.n_rules)
                        fail("config-shape", "config_resolve failed but kept its rules");
                return;
        }
        if (n > WB_MAX_RULES)
                fail("invariant", "config_resolve: %u rules", n);
        for (unsigned i = 0; i < n; i++)
                if (!config_find(&cfg, rules[i].scenario, strlen(rules[i].scenario)))
                        fail("invariant", "config_resolve: rule %u from unknown [%s]", i,
                             rules[i].scenario);
        config_free(&cfg);
}

static void check_rule(const char *text, size_t len)
{
        struct wb_rule r;
        struct wb_diag diag;

        memset(diag.msg, 0, sizeof diag.msg);
        if (rule_parse(text, len, RULE_WHERE, 1, &r, &diag))
                check_col_diag(&diag, RULE_WHERE, len, "rule_parse");
        else
                check_round_trip(&r, "rule_parse");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        static struct wb_config cfg;
        struct wb_diag diag;

        (void)argc;
        (void)argv;
        known_ids = getenv("WB_FUZZ_KNOWN");

        /* the shipped scenario library is the first thing that must hold */
        if (config_load(NULL, &cfg, &diag))
                fail("embedded", "the embedded scenario library does not parse: %s", diag.msg);
        if (cfg.n_scenarios == 0)
                fail("embedded", "the embedded scenario library has no scenario");
        for (unsigned k = 0; k < cfg.n_rules; k++)
                check_round_trip(&cfg.rules[k], "embedded " WB_EMBEDDED_NAME);
        config_free(&cfg);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data;
        const char *nul = memchr(text, '\0', size);
        const char *rules = nul ? nul + 1 : text;
        size_t rules_len = size - (size_t)(rules - text);
        char *list;

        check_config(text, size);

        /* exactly rules_len + 1 bytes, so an overread past the value is caught */
        list = malloc(rules_len + 1);
        if (!list)
                return 0;
        memcpy(list, rules, rules_len);
        list[rules_len] = '\0';
        check_list(list);
        /* parsing the embedded library costs more than the rest: only for
         * what could be a list of names */
        if (!strpbrk(list, "=;"))
                check_scenario_list(list);
        free(list);

        check_rule(rules, rules_len);
        return 0;
}
