/* config.h - scenario files and the WOULDBLOCK_* environment.
 *
 * Turns a config file's text plus the environment into a flat list of rules.
 * Used by the library's constructor, by the C API and by the runner, so that
 * an error is reported with the same FILE:LINE:COL wherever it is found.
 * Allocates (it runs at start-up, never on the hot path).
 */
#ifndef WB_CONFIG_H
#define WB_CONFIG_H

#include "rules.h"

struct wb_scenario {
        char name[WB_NAME_MAX];
        char description[WB_TEXT_MAX];
        unsigned line;                /* where [name] stands */
        unsigned first_rule, n_rules; /* into wb_config.rules */
};

struct wb_config {
        char path[512]; /* as shown in messages */
        unsigned n_scenarios;
        struct wb_rule *rules; /* malloc'd, n_rules entries (or the embedded ones) */
        unsigned n_rules;
        bool rules_embedded; /* rules is wb_embedded_rules: not to be freed */
        /* last: a lookup in the embedded library reads the counts and the
         * scenarios in use, at its start, not a page 40 KB further on */
        struct wb_scenario scenarios[WB_MAX_SCENARIOS];
};

/* The scenario library compiled into the binary (conf/wouldblock.conf). */
extern const char wb_embedded_conf[];
extern const unsigned wb_embedded_conf_size;
#define WB_EMBEDDED_NAME "wouldblock.conf"

/* The same, parsed when the library was built (confgen.c writes them; weak:
 * confgen itself, which has no parsed form yet, parses the text). */
union wb_embedded_config {
        unsigned char bytes[sizeof(struct wb_config)];
        struct wb_config cfg;
};
union wb_embedded_rule {
        unsigned char bytes[sizeof(struct wb_rule)];
        struct wb_rule rule;
};
extern const union wb_embedded_config wb_embedded_parsed __attribute__((weak));
extern const union wb_embedded_rule wb_embedded_rules[] __attribute__((weak));

/* Parse a scenario file's text. name is used in messages. 0 / -1. */
int config_parse(const char *name, const char *text, size_t len, struct wb_config *cfg,
                 struct wb_diag *diag);
/* Read and parse a file (path NULL: the embedded library). 0 / -1. */
int config_load(const char *path, struct wb_config *cfg, struct wb_diag *diag);
void config_free(struct wb_config *cfg);

const struct wb_scenario *config_find(const struct wb_config *cfg, const char *name, size_t len);

/* Append the rules of scenario name to rules[*n]. On an unknown name the
 * message names it and lists the file's scenarios; where/col locate it. */
int config_add_scenario(const struct wb_config *cfg, const char *name, size_t len,
                        const char *where, unsigned col, struct wb_rule *rules, unsigned *n,
                        unsigned max, struct wb_diag *diag);

/* WOULDBLOCK_LOG and WOULDBLOCK_REPORT paths: pattern with every %p replaced
 * by pid (its digits, pid_len of them), into out (size bytes, always
 * terminated). Returns the full length, as snprintf does. Async-signal-safe:
 * the library expands the report path in _exit; the runner expands the same
 * patterns to find the reports. */
size_t config_expand_pid(const char *pattern, const char *pid, size_t pid_len, char *out,
                         size_t size);

/* A path from variable var made absolute against the current directory
 * (the library resolves its paths at start, before the program may chdir).
 * 0, or -1 with diag "VAR:1: path too long: PATH". */
int config_absolute_path(const char *path, char *out, size_t size, struct wb_diag *diag,
                         const char *var);

/* What the environment asks for. Strings point into the environment. */
struct wb_settings {
        const char *config;    /* WOULDBLOCK_CONFIG or NULL */
        const char *scenarios; /* WOULDBLOCK_SCENARIO or NULL */
        const char *rules;     /* WOULDBLOCK_RULES or NULL */
        uint64_t seed;         /* WOULDBLOCK_SEED, default 1 */
        const char *log;       /* WOULDBLOCK_LOG or NULL */
        const char *report;    /* WOULDBLOCK_REPORT or NULL */
        const char *record;    /* WOULDBLOCK_RECORD or NULL */
        bool disabled;         /* WOULDBLOCK_DISABLE=1 */
        uint64_t spin_limit;   /* WOULDBLOCK_SPIN_LIMIT, default 1000 */
};

/* Read the variables (getenv: the library calls it from its constructor). */
int config_settings(struct wb_settings *s, struct wb_diag *diag);

/* Everything the environment selects: the config file (loaded when named or
 * when a scenario needs it; cfg left empty otherwise), the scenarios' rules,
 * then WOULDBLOCK_RULES. rules must hold WB_MAX_RULES. 0 / -1. */
int config_resolve(const struct wb_settings *s, struct wb_config *cfg, struct wb_rule *rules,
                   unsigned *n, struct wb_diag *diag);

/* The library's start-up reads the embedded library where it lies instead
 * of copying it: every page written is a page fault, and its 21 rules are
 * 20 KB. Loading: *cfg is the embedded library's parsed form itself when
 * path is NULL, else storage, filled from the file. 0 / -1. */
int config_open(const char *path, struct wb_config *storage, const struct wb_config **cfg,
                struct wb_diag *diag);
/* config_resolve with config_open: *cfg is NULL when neither a file nor a
 * scenario is asked for. *rules (n of them) are the scenarios' own rules
 * when they are one run of the file's, in order, and WOULDBLOCK_RULES adds
 * none (one scenario, or the whole library); otherwise a copy in buf, which
 * holds WB_MAX_RULES. The same rules, or the same message, as
 * config_resolve. 0 / -1. */
int config_resolve_shared(const struct wb_settings *s, struct wb_config *storage,
                          const struct wb_config **cfg, struct wb_rule *buf,
                          const struct wb_rule **rules, unsigned *n, struct wb_diag *diag);

#endif
