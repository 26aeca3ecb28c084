/* options.c - see options.h. */
#include "options.h"

#include "config.h"
#include "preload.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char usage_text[] =
    "usage: wouldblock [-c FILE] [-s SCENARIO] [-r RULES] [--seed N] [--log PATH]\n"
    "                  [--report PATH] [--expect-injections] [--summary] -- COMMAND [ARG...]\n"
    "       wouldblock --check [-c FILE] [-s SCENARIO] [-r RULES]\n"
    "       wouldblock --list [-c FILE]\n"
    "       wouldblock explore [OPTION...] -- COMMAND [ARG...]   (wouldblock explore --help)\n"
    "       wouldblock minimize [OPTION...] -- COMMAND [ARG...]  (wouldblock minimize --help)\n"
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
    "  explore                find the would-block points that break COMMAND, one by one\n"
    "  minimize               the few injections of a failing run that matter\n\n"
    "Exit status: COMMAND's; 2 usage error; 3 nothing injected (--expect-injections);\n"
    "125 configuration error; 126 COMMAND not executable; 127 COMMAND not found.\n"
    "See wouldblock(1) and wouldblock.conf(5).\n";

static bool is_unsigned(const char *s)
{
        char *end;

        if (*s < '0' || *s > '9')
                return false;
        errno = 0;
        (void)strtoull(s, &end, 10);
        return !*end && errno == 0;
}

unsigned long positive_number(const char *option, const char *value)
{
        char *end;
        unsigned long n;

        errno = 0;
        n = strtoul(value, &end, 10);
        if (*value < '0' || *value > '9' || *end || errno || n == 0 || n > 1000000000)
                usage_error("%s: '%s' is not a positive integer", option, value);
        return n;
}

bool shared_option(int c, const char *arg, struct options *o)
{
        switch (c) {
        case 'c':
                o->config = arg;
                return true;
        case 's':
                o->scenarios = append(o->scenarios, ",", arg);
                return true;
        case 'r':
                o->rules = append(o->rules, ";", arg);
                return true;
        case SEED_OPTION:
                if (!is_unsigned(arg))
                        usage_error("--seed: '%s' is not an unsigned integer", arg);
                o->seed = arg;
                return true;
        }
        return false;
}

void parse_options(int argc, char **argv, struct options *o)
{
        enum { LOG = SEED_OPTION + 1, REPORT, EXPECT, SUMMARY, CHECK, LIST, VERSION };
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"scenario", required_argument, NULL, 's'},
            {"rules", required_argument, NULL, 'r'},
            {"seed", required_argument, NULL, SEED_OPTION},
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

        set_usage(usage_text);
        opterr = 0; /* our own messages, each followed by the usage */
        /* '+': options end at COMMAND, whose own options are its business */
        while ((c = getopt_long(argc, argv, "+:c:s:r:h", longopts, NULL)) != -1) {
                const char *word = argv[optind - 1];
                if (c >= SEED_OPTION && c <= SUMMARY && !o->run_only)
                        o->run_only = word;
                if (shared_option(c, optarg, o))
                        continue;
                switch (c) {
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

void selected_rules(const struct options *o, struct wb_rule *rules, unsigned *n)
{
        struct wb_settings s = {.config = o->config, .scenarios = o->scenarios, .rules = o->rules};
        struct wb_config cfg;
        struct wb_diag d;

        *n = 0;
        if (!o->scenarios && !o->rules) {
                if (config_load(o->config, &cfg, &d))
                        fatal("%s", d.msg);
        } else if (config_resolve(&s, &cfg, rules, n, &d)) {
                fatal("%s", d.msg);
        }
        config_free(&cfg);
}

void set_variables(const struct options *o)
{
        preload_library();
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
