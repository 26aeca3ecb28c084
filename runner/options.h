/* options.h - the options of the plain command (run, --check, --list), and
 * the ones every subcommand shares (-c, -s, -r, --seed). */
#ifndef WB_RUNNER_OPTIONS_H
#define WB_RUNNER_OPTIONS_H

#include <stdbool.h>

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

/* -c, -s, -r and --seed (SEED_OPTION): true if c was one of them. */
#define SEED_OPTION 256
bool shared_option(int c, const char *arg, struct options *o);

/* A positive integer option value, or a usage error naming option. */
unsigned long positive_number(const char *option, const char *value);

void parse_options(int argc, char **argv, struct options *o);

/* The rules that -c/-s/-r select (n of them into rules[WB_MAX_RULES]),
 * or exit 125 with the library's message. */
struct wb_rule;
void selected_rules(const struct options *o, struct wb_rule *rules, unsigned *n);

/* -c/-s/-r/--seed into the environment, with the library preloaded: what
 * every subcommand does before it runs anything. */
void set_variables(const struct options *o);

extern const char usage_text[];

#endif
