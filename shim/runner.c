/* runner.c - the wouldblock command (SPEC §6).
 *
 * Puts libwouldblock.so in LD_PRELOAD, turns its options into the
 * WOULDBLOCK_* variables, checks the configuration with the library's own
 * parser (so an error stops us before COMMAND starts, with the library's
 * message and status), then execs COMMAND. With --expect-injections or
 * --summary it forks instead, points every process's JSON report into a
 * private directory, and reads them all once COMMAND has exited.
 */
#include "config.h"
#include "rules.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXIT_NO_INJECTION 3
#define EXIT_CONFIG 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

static const char usage_text[] =
    "usage: wouldblock [-c FILE] [-s SCENARIO] [-r RULES] [--seed N] [--log PATH]\n"
    "                  [--report PATH] [--expect-injections] [--summary] -- COMMAND [ARG...]\n"
    "       wouldblock --check [-c FILE] [-s SCENARIO] [-r RULES]\n"
    "       wouldblock --list [-c FILE]\n"
    "       wouldblock -h|--help | --version\n";

static const char help_text[] =
    "\nRun COMMAND with libwouldblock.so preloaded: its calls on non-blocking fds\n"
    "would block (EAGAIN, EINPROGRESS, short counts) as the scenario says.\n\n"
    "  -c, --config FILE      scenario file (default: the built-in library)\n"
    "  -s, --scenario NAME    scenario(s) to activate, comma-separated\n"
    "  -r, --rules RULES      rules inline, ';'-separated\n"
    "      --seed N           seed for prob= rules (default 1)\n"
    "      --log PATH         one line per injection: 'stderr' or a file (%p: pid)\n"
    "      --report PATH      a JSON report per process at exit (%p: pid)\n"
    "      --expect-injections  exit 3 if no process of COMMAND injected anything\n"
    "      --summary          calls, rules and the longest spin, summed, on stderr\n"
    "      --check            check the configuration, print the selected rules\n"
    "      --list             the scenarios of the file, with their descriptions\n"
    "  -h, --help             this text\n"
    "      --version          the version\n\n"
    "Exit status: COMMAND's; 2 usage error; 3 nothing injected (--expect-injections);\n"
    "125 configuration error; 126 COMMAND not executable; 127 COMMAND not found.\n"
    "See wouldblock(1) and wouldblock.conf(5).\n";

enum mode { MODE_RUN, MODE_CHECK, MODE_LIST };

struct options {
        enum mode mode;
        const char *config;   /* -c, as given */
        char *scenarios;      /* -s; repeats joined with ',' */
        char *rules;          /* -r; repeats joined with ';' */
        const char *run_only; /* the first option that needs a COMMAND, for messages */
        const char *seed, *log, *report;
        bool expect_injections, summary;
        char **command;
};

/* ---- small helpers ---- */

static void say(const char *fmt, va_list ap)
{
        fputs("wouldblock: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
}

/* The runner's own failures, and configuration errors: 125, the library's
 * status for the latter (and env(1)'s for the former). */
static _Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void fatal(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        say(fmt, ap);
        va_end(ap);
        exit(EXIT_CONFIG);
}

static _Noreturn void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void usage_error(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        say(fmt, ap);
        va_end(ap);
        fputs(usage_text, stderr);
        exit(EXIT_USAGE);
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
        va_list ap;
        char *s;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                fatal("out of memory");
        return s;
}

/* A repeated -s or -r adds to the earlier ones. */
static char *append(char *list, const char *sep, const char *item)
{
        char *joined = list ? format("%s%s%s", list, sep, item) : format("%s", item);
        free(list);
        return joined;
}

static void set_variable(const char *name, const char *value)
{
        if (setenv(name, value, 1))
                fatal("cannot set %s: %s", name, strerror(errno));
}

/* The same, for a value of ours, freed: a sanitizer runtime that COMMAND's
 * LD_PRELOAD puts in us too would count a leak as a failure. */
static void set_variable_owned(const char *name, char *value)
{
        set_variable(name, value);
        free(value);
}

/* Relative to our working directory: COMMAND's processes may change theirs. */
static char *absolute_path(const char *option, const char *path)
{
        char cwd[PATH_MAX];

        if (!*path)
                usage_error("%s: empty path", option);
        if (path[0] == '/')
                return format("%s", path);
        if (!getcwd(cwd, sizeof cwd))
                fatal("cannot get the working directory: %s", strerror(errno));
        return format("%s/%s", cwd, path);
}

/* stdout written in full, or a status saying it was not (e.g. /dev/full) */
static int finish_output(void)
{
        if (fflush(stdout) || ferror(stdout)) {
                fprintf(stderr, "wouldblock: cannot write the output: %s\n", strerror(errno));
                return EXIT_CONFIG;
        }
        return 0;
}

/* ---- options ---- */

static bool is_unsigned(const char *s)
{
        char *end;

        if (*s < '0' || *s > '9')
                return false;
        errno = 0;
        (void)strtoull(s, &end, 10);
        return !*end && errno == 0;
}

static void parse_options(int argc, char **argv, struct options *o)
{
        enum { SEED = 256, LOG, REPORT, EXPECT, SUMMARY, CHECK, LIST, VERSION };
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"scenario", required_argument, NULL, 's'},
            {"rules", required_argument, NULL, 'r'},
            {"seed", required_argument, NULL, SEED},
            {"log", required_argument, NULL, LOG},
            {"report", required_argument, NULL, REPORT},
            {"expect-injections", no_argument, NULL, EXPECT},
            {"summary", no_argument, NULL, SUMMARY},
            {"check", no_argument, NULL, CHECK},
            {"list", no_argument, NULL, LIST},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, VERSION},
            {NULL, 0, NULL, 0},
        };
        bool check = false, list = false;
        int c;

        memset(o, 0, sizeof *o);
        opterr = 0; /* our own messages, each followed by the usage */
        /* '+': options end at COMMAND, whose own options are its business */
        while ((c = getopt_long(argc, argv, "+:c:s:r:h", longopts, NULL)) != -1) {
                const char *word = argv[optind - 1];
                if (c >= SEED && c <= SUMMARY && !o->run_only)
                        o->run_only = word;
                switch (c) {
                case 'c':
                        o->config = optarg;
                        break;
                case 's':
                        o->scenarios = append(o->scenarios, ",", optarg);
                        break;
                case 'r':
                        o->rules = append(o->rules, ";", optarg);
                        break;
                case SEED:
                        if (!is_unsigned(optarg))
                                usage_error("--seed: '%s' is not an unsigned integer", optarg);
                        o->seed = optarg;
                        break;
                case LOG:
                        o->log = optarg;
                        break;
                case REPORT:
                        o->report = optarg;
                        break;
                case EXPECT:
                        o->expect_injections = true;
                        break;
                case SUMMARY:
                        o->summary = true;
                        break;
                case CHECK:
                        check = true;
                        break;
                case LIST:
                        list = true;
                        break;
                case 'h':
                        printf("%s%s", usage_text, help_text);
                        exit(finish_output());
                case VERSION:
                        printf("wouldblock %s\n", WB_VERSION);
                        exit(finish_output());
                case ':':
                        usage_error("%s needs a value", word);
                default:
                        if (optopt)
                                usage_error("unknown option '-%c'", optopt);
                        usage_error("unknown option '%s'", word);
                }
        }
        o->command = argv + optind;

        if (check && list)
                usage_error("--check and --list do not go together");
        o->mode = check ? MODE_CHECK : list ? MODE_LIST : MODE_RUN;
        if (o->mode == MODE_RUN) {
                if (!*o->command)
                        usage_error("no COMMAND to run");
                return;
        }
        const char *mode_word = check ? "--check" : "--list";
        if (*o->command)
                usage_error("%s runs no COMMAND ('%s')", mode_word, *o->command);
        if (o->run_only)
                usage_error("%s goes with a COMMAND, not with %s", o->run_only, mode_word);
        if (list && (o->scenarios || o->rules))
                usage_error("--list takes only -c");
}

/* ---- --list and --check: the configuration, no COMMAND ---- */

static int list_scenarios(const struct options *o)
{
        struct wb_config cfg;
        struct wb_diag d;
        int width = 0;

        if (config_load(o->config, &cfg, &d))
                fatal("%s", d.msg);
        for (unsigned i = 0; i < cfg.n_scenarios; i++)
                if ((int)strlen(cfg.scenarios[i].name) > width)
                        width = (int)strlen(cfg.scenarios[i].name);
        for (unsigned i = 0; i < cfg.n_scenarios; i++) {
                const struct wb_scenario *sc = &cfg.scenarios[i];
                if (sc->description[0])
                        printf("%-*s  %s\n", width, sc->name, sc->description);
                else
                        printf("%s\n", sc->name);
        }
        config_free(&cfg);
        return finish_output();
}

static int check_rules(const struct options *o)
{
        struct wb_settings s = {.config = o->config, .scenarios = o->scenarios, .rules = o->rules};
        struct wb_rule rules[WB_MAX_RULES];
        struct wb_config cfg;
        struct wb_diag d;
        unsigned n = 0;
        char text[1024];

        if (!o->scenarios && !o->rules) {
                if (config_load(o->config, &cfg, &d))
                        fatal("%s", d.msg);
        } else if (config_resolve(&s, &cfg, rules, &n, &d)) {
                fatal("%s", d.msg);
        }
        for (unsigned i = 0; i < n; i++) {
                rule_format(&rules[i], text, sizeof text);
                printf("%s\n", text);
        }
        config_free(&cfg);
        return finish_output();
}

/* ---- the preload ---- */

/* libwouldblock.so next to us (a build tree), else where it is installed. */
static void find_library(char *out, size_t size)
{
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

        exe[n > 0 ? n : 0] = '\0';
        if (strrchr(exe, '/')) {
                *strrchr(exe, '/') = '\0';
                snprintf(out, size, "%s/libwouldblock.so", exe);
                if (access(out, R_OK) == 0)
                        return;
        }
#ifdef WB_LIBDIR
        snprintf(out, size, "%s/libwouldblock.so", WB_LIBDIR);
        if (access(out, R_OK) == 0)
                return;
        fatal("cannot find libwouldblock.so in %s or in %s", exe, WB_LIBDIR);
#else
        fatal("cannot find libwouldblock.so in %s", exe);
#endif
}

/* A sanitizer runtime refuses to run unless it is the first library loaded. */
static bool is_sanitizer_runtime(const char *entry, size_t len)
{
        static const char *const prefixes[] = {"libasan", "libhwasan", "libtsan",     "libubsan",
                                               "liblsan", "libmsan",   "libclang_rt."};
        const char *base = entry;

        for (const char *c = entry; c < entry + len; c++)
                if (*c == '/')
                        base = c + 1;
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
                size_t plen = strlen(prefixes[i]);
                if ((size_t)(entry + len - base) >= plen && memcmp(base, prefixes[i], plen) == 0)
                        return true;
        }
        return false;
}

/* old (entries separated by ':' or ' ', as ld.so reads them) with lib added
 * in front, but behind the sanitizer runtimes that lead it. */
static char *preload_with(const char *old, const char *lib)
{
        size_t keep = 0; /* bytes of old that stay in front of lib */

        if (!old)
                old = "";
        for (;;) {
                size_t start = keep + strspn(old + keep, ": ");
                size_t len = strcspn(old + start, ": ");
                if (!len || !is_sanitizer_runtime(old + start, len))
                        break;
                keep = start + len;
        }
        const char *rest = old + keep + strspn(old + keep, ": ");
        return format("%.*s%s%s%s%s", (int)keep, old, keep ? ":" : "", lib, *rest ? ":" : "", rest);
}

/* The variables the options set: an option overrides an inherited one. */
static void set_variables(const struct options *o)
{
        char lib[PATH_MAX];

        find_library(lib, sizeof lib);
        if (strpbrk(lib, ": "))
                fatal("cannot preload %s: LD_PRELOAD cannot hold a path with ':' or ' '", lib);
        set_variable_owned("LD_PRELOAD", preload_with(getenv("LD_PRELOAD"), lib));
        if (o->config)
                set_variable_owned("WOULDBLOCK_CONFIG", absolute_path("-c", o->config));
        if (o->scenarios)
                set_variable("WOULDBLOCK_SCENARIO", o->scenarios);
        if (o->rules)
                set_variable("WOULDBLOCK_RULES", o->rules);
        if (o->seed)
                set_variable("WOULDBLOCK_SEED", o->seed);
        if (o->log && strcmp(o->log, "stderr") == 0)
                set_variable("WOULDBLOCK_LOG", o->log);
        else if (o->log)
                set_variable_owned("WOULDBLOCK_LOG", absolute_path("--log", o->log));
        if (o->report)
                set_variable_owned("WOULDBLOCK_REPORT", absolute_path("--report", o->report));
}

/* What the library will read at start-up, read the library's way now, so
 * that an error stops us before COMMAND runs. */
static void check_configuration(const struct options *o)
{
        struct wb_rule rules[WB_MAX_RULES];
        struct wb_settings s;
        struct wb_config cfg;
        struct wb_diag d;
        unsigned n;

        if (config_settings(&s, &d))
                fatal("%s", d.msg);
        if (o->config)
                s.config = o->config; /* named in messages as the user wrote it */
        if (config_resolve(&s, &cfg, rules, &n, &d))
                fatal("%s", d.msg);
        config_free(&cfg);
}

/* A shell's words and statuses for a COMMAND that cannot be run. */
static int exec_failure(const char *command, int err)
{
        if (err == ENOENT && !strchr(command, '/'))
                fprintf(stderr, "wouldblock: %s: command not found\n", command);
        else
                fprintf(stderr, "wouldblock: %s: %s\n", command, strerror(err));
        return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}

/* ---- a JSON reader, for the reports of report.c ----
 *
 * Strict JSON (RFC 8259) as far as it reads; members it does not need are
 * skipped, whatever their value, so a report may gain fields. Numbers it
 * keeps are unsigned integers. Every reader returns false once an error is
 * set, so a caller may read on and check j->error at the end.
 */

struct json {
        const char *p, *end;
        const char *error; /* the first one */
};

static bool json_fail(struct json *j, const char *error)
{
        if (!j->error)
                j->error = error;
        return false;
}

static char json_peek(struct json *j)
{
        while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
                j->p++;
        return j->p < j->end ? *j->p : '\0';
}

static bool json_expect(struct json *j, char c)
{
        if (j->error || json_peek(j) != c)
                return json_fail(j, c == ':' ? "expected ':'" : "unexpected character");
        j->p++;
        return true;
}

/* Inside an object or array: true if another element follows (its comma
 * eaten), false at the closing bracket (eaten) or on an error. A trailing
 * comma fails on what should follow it. */
static bool json_next(struct json *j, char close, bool *first)
{
        if (j->error)
                return false;
        if (json_peek(j) == close) {
                j->p++;
                return false;
        }
        if (!*first && !json_expect(j, ','))
                return false;
        *first = false;
        return true;
}

static bool json_hex4(struct json *j, unsigned *out)
{
        *out = 0;
        for (int i = 0; i < 4; i++, j->p++) {
                char c = j->p < j->end ? *j->p : 'x';
                int h = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
                if (h < 0)
                        return json_fail(j, "bad \\u escape");
                *out = *out << 4 | (unsigned)h;
        }
        return true;
}

/* After "\u": a code point, joining a surrogate pair. */
static bool json_code_point(struct json *j, unsigned *cp)
{
        unsigned low;

        if (!json_hex4(j, cp))
                return false;
        if (*cp >= 0xdc00 && *cp <= 0xdfff)
                return json_fail(j, "lone surrogate");
        if (*cp < 0xd800 || *cp > 0xdbff)
                return true;
        if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
                return json_fail(j, "lone surrogate");
        j->p += 2;
        if (!json_hex4(j, &low))
                return false;
        if (low < 0xdc00 || low > 0xdfff)
                return json_fail(j, "lone surrogate");
        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (low - 0xdc00);
        return true;
}

static size_t utf8_encode(unsigned cp, char *out)
{
        if (cp < 0x80) {
                out[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char)(0xc0 | cp >> 6);
                out[1] = (char)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char)(0xe0 | cp >> 12);
                out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
                out[2] = (char)(0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (char)(0xf0 | cp >> 18);
        out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        return 4;
}

/* A string into out, as UTF-8, cut (between characters) to size - 1 bytes;
 * out NULL: read and dropped. */
static bool json_string(struct json *j, char *out, size_t size)
{
        static const char escapes[] = "\"\\/bfnrt", meanings[] = "\"\\/\b\f\n\r\t";
        size_t len = 0;
        bool cut = false;

        if (!json_expect(j, '"'))
                return false;
        while (j->p < j->end && *j->p != '"') {
                unsigned char c = (unsigned char)*j->p++;
                char enc[4] = {(char)c};
                size_t n = 1;
                unsigned cp;

                if (c < 0x20)
                        return json_fail(j, "control character in a string");
                if (c == '\\') {
                        const char *e = j->p < j->end && *j->p ? strchr(escapes, *j->p) : NULL;
                        if (j->p < j->end && *j->p == 'u') {
                                j->p++;
                                if (!json_code_point(j, &cp))
                                        return false;
                                n = utf8_encode(cp, enc);
                        } else if (e) {
                                j->p++;
                                enc[0] = meanings[e - escapes];
                        } else {
                                return json_fail(j, "bad escape");
                        }
                } else if (c >= 0xc0) { /* a UTF-8 sequence, kept whole */
                        while (n < sizeof enc && j->p < j->end && (*j->p & 0xc0) == 0x80)
                                enc[n++] = *j->p++;
                }
                if (out && !cut && len + n < size) {
                        memcpy(out + len, enc, n);
                        len += n;
                } else {
                        cut = true; /* the text is a prefix: nothing after a gap */
                }
        }
        if (j->p == j->end)
                return json_fail(j, "unterminated string");
        j->p++;
        if (out && size)
                out[len] = '\0';
        return true;
}

/* In an object: true with the next member's key (and its ':') read, false
 * at the '}' or on an error. */
static bool json_member(struct json *j, bool *first, char *key, size_t size)
{
        return json_next(j, '}', first) && json_string(j, key, size) && json_expect(j, ':');
}

static bool json_u64(struct json *j, uint64_t *out)
{
        uint64_t v = 0;
        const char *start;

        json_peek(j);
        start = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
                unsigned digit = (unsigned)(*j->p++ - '0');
                if (v > (UINT64_MAX - digit) / 10)
                        return json_fail(j, "number too large");
                v = v * 10 + digit;
        }
        if (j->p == start || (*start == '0' && j->p - start > 1))
                return json_fail(j, "expected an unsigned integer");
        if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
                return json_fail(j, "expected an integer");
        *out = v;
        return true;
}

static const char *digits_end(const char *s, const char *end)
{
        while (s < end && *s >= '0' && *s <= '9')
                s++;
        return s;
}

/* Any value, read and dropped. */
static bool json_skip(struct json *j, int depth)
{
        static const char *const literals[] = {"true", "false", "null"};
        char c = json_peek(j);
        bool first = true;

        if (depth > 64)
                return json_fail(j, "nested too deep");
        if (c == '"')
                return json_string(j, NULL, 0);
        if (c == '{' || c == '[') {
                j->p++;
                while (c == '{' ? json_member(j, &first, NULL, 0) : json_next(j, ']', &first))
                        json_skip(j, depth + 1);
                return !j->error;
        }
        for (size_t i = 0; i < sizeof literals / sizeof literals[0]; i++) {
                size_t n = strlen(literals[i]);
                if ((size_t)(j->end - j->p) >= n && memcmp(j->p, literals[i], n) == 0) {
                        j->p += n;
                        return true;
                }
        }
        /* a number: -?int(.digits)?([eE][+-]?digits)? */
        const char *s = j->p + (j->p < j->end && *j->p == '-'), *e = digits_end(s, j->end);
        if (e == s || (*s == '0' && e - s > 1))
                return json_fail(j, "expected a value");
        if (e < j->end && *e == '.') {
                s = e + 1;
                if ((e = digits_end(s, j->end)) == s)
                        return json_fail(j, "bad number");
        }
        if (e < j->end && (*e == 'e' || *e == 'E')) {
                s = e + 1 + (e + 1 < j->end && (e[1] == '+' || e[1] == '-'));
                if ((e = digits_end(s, j->end)) == s)
                        return json_fail(j, "bad number");
        }
        j->p = e;
        return true;
}

/* ---- reports: one per process, and their sum ---- */

struct report_rule {
        char scenario[WB_NAME_MAX];
        uint64_t line;
        char text[WB_TEXT_MAX];
        uint64_t counted, injected;
};

struct report {
        uint64_t pid;
        char program[256];
        struct report_rule rules[WB_MAX_RULES];
        unsigned n_rules;
        uint64_t seen[WB_CALL_COUNT], injected[WB_CALL_COUNT];
        uint64_t spin_length, spin_fd;
        char spin_call[WB_NAME_MAX];
};

static bool read_report_rule(struct json *j, struct report_rule *r)
{
        bool first = true;
        char key[16];

        memset(r, 0, sizeof *r);
        if (!json_expect(j, '{'))
                return false;
        while (json_member(j, &first, key, sizeof key)) {
                if (strcmp(key, "text") == 0)
                        json_string(j, r->text, sizeof r->text);
                else if (strcmp(key, "scenario") == 0)
                        json_string(j, r->scenario, sizeof r->scenario);
                else if (strcmp(key, "line") == 0)
                        json_u64(j, &r->line);
                else if (strcmp(key, "counted") == 0)
                        json_u64(j, &r->counted);
                else if (strcmp(key, "injected") == 0)
                        json_u64(j, &r->injected);
                else
                        json_skip(j, 1);
        }
        return !j->error;
}

static bool read_report_rules(struct json *j, struct report *r)
{
        bool first = true;

        if (!json_expect(j, '['))
                return false;
        while (json_next(j, ']', &first)) {
                if (r->n_rules == WB_MAX_RULES)
                        return json_fail(j, "too many rules");
                read_report_rule(j, &r->rules[r->n_rules++]);
        }
        return !j->error;
}

static bool read_report_calls(struct json *j, struct report *r)
{
        bool first = true;
        char name[WB_NAME_MAX], key[16];

        if (!json_expect(j, '{'))
                return false;
        while (json_member(j, &first, name, sizeof name)) {
                int call = rule_call_by_name(name, strlen(name));
                bool first_key = true;

                if (call < 0) { /* a call this runner does not know of */
                        json_skip(j, 1);
                        continue;
                }
                json_expect(j, '{');
                while (json_member(j, &first_key, key, sizeof key)) {
                        if (strcmp(key, "seen") == 0)
                                json_u64(j, &r->seen[call]);
                        else if (strcmp(key, "injected") == 0)
                                json_u64(j, &r->injected[call]);
                        else
                                json_skip(j, 2);
                }
        }
        return !j->error;
}

static bool read_report_spin(struct json *j, struct report *r)
{
        bool first = true;
        char key[16];

        if (!json_expect(j, '{'))
                return false;
        while (json_member(j, &first, key, sizeof key)) {
                if (strcmp(key, "length") == 0)
                        json_u64(j, &r->spin_length);
                else if (strcmp(key, "fd") == 0 && json_peek(j) != 'n') /* null: no spin */
                        json_u64(j, &r->spin_fd);
                else if (strcmp(key, "call") == 0 && json_peek(j) != 'n')
                        json_string(j, r->spin_call, sizeof r->spin_call);
                else
                        json_skip(j, 1);
        }
        return !j->error;
}

/* One report as report.c writes it. NULL, or what is wrong with it. */
static const char *read_report(const char *text, size_t len, struct report *r)
{
        enum { PID = 1, RULES = 2, CALLS = 4, SPIN = 8 }; /* what every report has */
        struct json j = {text, text + len, NULL};
        unsigned have = 0;
        bool first = true;
        char key[16];

        memset(r, 0, sizeof *r);
        json_expect(&j, '{');
        while (json_member(&j, &first, key, sizeof key)) {
                if (strcmp(key, "pid") == 0) {
                        have |= PID;
                        json_u64(&j, &r->pid);
                } else if (strcmp(key, "program") == 0) {
                        json_string(&j, r->program, sizeof r->program);
                } else if (strcmp(key, "rules") == 0) {
                        have |= RULES;
                        read_report_rules(&j, r);
                } else if (strcmp(key, "calls") == 0) {
                        have |= CALLS;
                        read_report_calls(&j, r);
                } else if (strcmp(key, "spin") == 0) {
                        have |= SPIN;
                        read_report_spin(&j, r);
                } else {
                        json_skip(&j, 1);
                }
        }
        json_peek(&j); /* white space may follow the object, nothing else */
        if (!j.error && j.p != j.end)
                json_fail(&j, "text after the report");
        if (!j.error && have != (PID | RULES | CALLS | SPIN))
                json_fail(&j, "pid, rules, calls or spin missing");
        return j.error;
}

/* What every report says, summed. */
struct totals {
        unsigned processes;
        uint64_t seen[WB_CALL_COUNT], injected[WB_CALL_COUNT];
        struct report_rule *rules; /* one per (scenario, line, text) */
        unsigned n_rules;
        uint64_t spin_length, spin_fd, spin_pid;
        char spin_call[WB_NAME_MAX], spin_program[256];
};

static void add_report(struct totals *t, const struct report *r)
{
        t->processes++;
        for (int c = 0; c < WB_CALL_COUNT; c++) {
                t->seen[c] += r->seen[c];
                t->injected[c] += r->injected[c];
        }
        for (unsigned i = 0; i < r->n_rules; i++) {
                const struct report_rule *rr = &r->rules[i];
                unsigned k = 0;
                while (k < t->n_rules &&
                       (t->rules[k].line != rr->line || strcmp(t->rules[k].text, rr->text) ||
                        strcmp(t->rules[k].scenario, rr->scenario)))
                        k++;
                if (k == t->n_rules) {
                        struct report_rule *more = realloc(t->rules, (k + 1) * sizeof *more);
                        if (!more)
                                fatal("out of memory");
                        t->rules = more;
                        t->rules[t->n_rules++] = *rr;
                } else {
                        t->rules[k].counted += rr->counted;
                        t->rules[k].injected += rr->injected;
                }
        }
        if (r->spin_length > t->spin_length) {
                t->spin_length = r->spin_length;
                t->spin_fd = r->spin_fd;
                t->spin_pid = r->pid;
                snprintf(t->spin_call, sizeof t->spin_call, "%s", r->spin_call);
                snprintf(t->spin_program, sizeof t->spin_program, "%s", r->program);
        }
}

static uint64_t total_injected(const struct totals *t)
{
        uint64_t sum = 0;
        for (int c = 0; c < WB_CALL_COUNT; c++)
                sum += t->injected[c];
        return sum;
}

static void print_summary(const struct totals *t, const char *command)
{
        if (!t->processes) {
                fprintf(stderr,
                        "wouldblock: no process of %s wrote a report: was libwouldblock.so "
                        "loaded? (see LIMITS in wouldblock(1))\n",
                        command);
                return;
        }
        fprintf(stderr, "wouldblock: summary of %u process%s: %llu injected\n", t->processes,
                t->processes == 1 ? "" : "es", (unsigned long long)total_injected(t));
        fprintf(stderr, "  %9s %9s  %s\n", "seen", "injected", "call");
        for (int c = 0; c < WB_CALL_COUNT; c++)
                if (t->seen[c])
                        fprintf(stderr, "  %9llu %9llu  %s\n", (unsigned long long)t->seen[c],
                                (unsigned long long)t->injected[c],
                                rule_call_name((enum wb_call)c));
        fprintf(stderr, "  %9s %9s  %s\n", "counted", "injected", "rule");
        for (unsigned i = 0; i < t->n_rules; i++)
                fprintf(stderr, "  %9llu %9llu  %s:%llu: %s\n",
                        (unsigned long long)t->rules[i].counted,
                        (unsigned long long)t->rules[i].injected, t->rules[i].scenario,
                        (unsigned long long)t->rules[i].line, t->rules[i].text);
        if (t->spin_length)
                fprintf(stderr, "  longest spin: %llu (%s on fd %llu, pid %llu %s)\n",
                        (unsigned long long)t->spin_length, t->spin_call,
                        (unsigned long long)t->spin_fd, (unsigned long long)t->spin_pid,
                        t->spin_program);
        else
                fprintf(stderr, "  longest spin: 0\n");
}

/* A whole file, NUL-terminated; NULL (with a warning) if it cannot be read. */
static char *read_file(const char *path, size_t *len)
{
        FILE *f = fopen(path, "re");
        char *text = NULL;
        size_t cap = 0, n;

        *len = 0;
        if (!f) {
                fprintf(stderr, "wouldblock: cannot read report %s: %s\n", path, strerror(errno));
                return NULL;
        }
        do {
                if (*len + 1 >= cap) {
                        char *more = realloc(text, cap = cap ? cap * 2 : 4096);
                        if (!more)
                                fatal("out of memory");
                        text = more;
                }
                n = fread(text + *len, 1, cap - *len - 1, f);
                *len += n;
        } while (n > 0);
        text[*len] = '\0';
        if (ferror(f)) {
                fprintf(stderr, "wouldblock: cannot read report %s: %s\n", path, strerror(errno));
                free(text);
                text = NULL;
        }
        fclose(f);
        return text;
}

/* pattern with every %p replaced by pid: the library's own expansion */
static char *expand_pid(const char *pattern, const char *pid, int pid_len)
{
        size_t len = config_expand_pid(pattern, pid, (size_t)pid_len, NULL, 0);
        char *out = malloc(len + 1);

        if (!out)
                fatal("out of memory");
        config_expand_pid(pattern, pid, (size_t)pid_len, out, len + 1);
        return out;
}

/* A report where the user's --report (or WOULDBLOCK_REPORT) asked for it. */
static void copy_report(const char *pattern, const char *pid, int pid_len, const char *text,
                        size_t len)
{
        char *path = expand_pid(pattern, pid, pid_len);
        FILE *f = fopen(path, "we");

        if (!f || fwrite(text, 1, len, f) != len || fclose(f)) {
                fprintf(stderr, "wouldblock: cannot write report %s: %s\n", path, strerror(errno));
                if (f)
                        fclose(f);
        }
        free(path);
}

/* Read, sum and delete the reports in dir (named PID.json by the library),
 * then dir itself. Each goes to user_pattern too, if one was asked for:
 * with %p, every process's; without, COMMAND's own (the one the library
 * would usually leave there: a parent exits after its children). */
static void collect_reports(const char *dir, const char *user_pattern, pid_t command_pid,
                            struct totals *t)
{
        static struct report report; /* large, and one at a time */
        DIR *d = opendir(dir);
        struct dirent *e;

        if (!d)
                fatal("cannot read %s: %s", dir, strerror(errno));
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                char *path = format("%s/%s", dir, e->d_name);
                int pid_len = (int)strcspn(e->d_name, ".");
                size_t len;
                char *text = read_file(path, &len);
                if (text) {
                        const char *error = read_report(text, len, &report);
                        if (error)
                                fprintf(stderr, "wouldblock: report of pid %.*s not counted: %s\n",
                                        pid_len, e->d_name, error);
                        else
                                add_report(t, &report);
                        if (user_pattern && (strstr(user_pattern, "%p") ||
                                             strtol(e->d_name, NULL, 10) == command_pid))
                                copy_report(user_pattern, e->d_name, pid_len, text, len);
                        free(text);
                }
                unlink(path);
                free(path);
        }
        closedir(d);
        if (rmdir(dir))
                fprintf(stderr, "wouldblock: cannot remove %s: %s\n", dir, strerror(errno));
}

/* ---- running COMMAND ---- */

static volatile sig_atomic_t child_pid;

static void forward_signal(int sig)
{
        if (child_pid > 0)
                kill(child_pid, sig);
}

/* Fork, exec COMMAND and wait for it. 0 and its wait status, or the errno
 * of an exec that failed (told through a close-on-exec pipe). */
static int run_child(char **command, pid_t *pid, int *status)
{
        struct sigaction ignore = {.sa_handler = SIG_IGN}, forward = {.sa_handler = forward_signal};
        int tell[2], err = 0;

        if (pipe2(tell, O_CLOEXEC))
                fatal("cannot make a pipe: %s", strerror(errno));
        fflush(NULL);
        *pid = fork();
        if (*pid < 0)
                fatal("cannot fork: %s", strerror(errno));
        if (*pid == 0) {
                execvp(command[0], command);
                err = errno;
                ssize_t n = write(tell[1], &err, sizeof err);
                (void)n;
                _exit(EXIT_NOT_FOUND);
        }
        close(tell[1]);
        child_pid = *pid;
        /* a ^C at the terminal reaches COMMAND too: we stay to tell its status;
         * a kill meant for us is passed on */
        sigaction(SIGINT, &ignore, NULL);
        sigaction(SIGQUIT, &ignore, NULL);
        sigaction(SIGTERM, &forward, NULL);
        sigaction(SIGHUP, &forward, NULL);
        while (read(tell[0], &err, sizeof err) < 0 && errno == EINTR)
                ;
        close(tell[0]);
        while (waitpid(*pid, status, 0) < 0)
                if (errno != EINTR)
                        fatal("cannot wait for %s: %s", command[0], strerror(errno));
        return err;
}

/* Run COMMAND in a child, with every process's report in a private
 * directory; read them all when it has exited. */
static int run_and_collect(const struct options *o)
{
        const char *tmp = getenv("TMPDIR"), *inherited = getenv("WOULDBLOCK_REPORT");
        char *tmp_dir = tmp && *tmp ? absolute_path("TMPDIR", tmp) : format("/tmp");
        char *dir = format("%s/wouldblock.XXXXXX", tmp_dir);
        char *user_pattern = inherited && *inherited ? absolute_path("--report", inherited) : NULL;
        struct totals t = {0};
        int status, err, code;
        pid_t pid;

        if (!mkdtemp(dir))
                fatal("cannot make a directory %s: %s", dir, strerror(errno));
        free(tmp_dir);
        set_variable_owned("WOULDBLOCK_REPORT", format("%s/%%p.json", dir));
        err = run_child(o->command, &pid, &status);
        collect_reports(dir, user_pattern, pid, &t);
        free(dir);
        free(user_pattern);
        if (err)
                return exec_failure(o->command[0], err);
        code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);

        bool nothing = o->expect_injections && total_injected(&t) == 0;
        if (o->summary || nothing)
                print_summary(&t, o->command[0]);
        if (nothing)
                fprintf(stderr,
                        "wouldblock: --expect-injections: nothing was injected "
                        "(%s exited with status %d)\n",
                        o->command[0], code);
        free(t.rules);
        return nothing ? EXIT_NO_INJECTION : code;
}

static int run(const struct options *o)
{
        set_variables(o);
        check_configuration(o);
        if (o->expect_injections || o->summary)
                return run_and_collect(o);
        execvp(o->command[0], o->command);
        return exec_failure(o->command[0], errno);
}

int main(int argc, char **argv)
{
        static struct options o; /* static: what it holds is never a leak */

        parse_options(argc, argv, &o);
        if (o.mode == MODE_LIST)
                return list_scenarios(&o);
        if (o.mode == MODE_CHECK)
                return check_rules(&o);
        return run(&o);
}
