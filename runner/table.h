/* table.h - what explore found: one row per experiment (a point, a hit k,
 * an action, what came of it), printed as the table of SPEC §8 and
 * written to / read from its JSON, so that --merge prints exactly what an
 * unsharded run prints. */
#ifndef WB_RUNNER_TABLE_H
#define WB_RUNNER_TABLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum outcome { OUT_FAIL, OUT_HANG, OUT_SPIN, OUT_PASS, OUT_UNREACHED, OUT_COUNT };

struct finding {
        char *key; /* the point: "CALL FILTERS" */
        char *call;
        uint64_t k;
        char *action; /* as shown: errno=EAGAIN, short=1, ... */
        char *rules;  /* WOULDBLOCK_RULES that inject exactly this */
        enum outcome outcome;
        int status;    /* exit status, -1: none (signal or hang) */
        int signal;    /* -1: none */
        int confirmed; /* 1 confirmed, 0 flaky, -1 not rerun */
        char *what;    /* the group: "exit status 1, stderr: ...", "hang: ..." */
        uint64_t spin;
};

struct findings {
        json_t *command; /* list of strings */
        double baseline_seconds;
        double first_failure; /* seconds from the start to the first failing run; 0: none */
        double seconds;       /* the whole exploration */
        uint64_t runs, naive, points;
        bool stopped; /* --max-runs ran out */
        struct finding *rows;
        unsigned n;
};

const char *outcome_name(enum outcome o);
/* A new row (strings copied). */
struct finding *add_finding(struct findings *f);
/* The reproduction line of a row. */
char *finding_repro(const struct findings *f, const struct finding *row);
/* The table on stdout. */
void print_table(struct findings *f);
/* 1 if something failed, hung or spun; 3 if nothing was reached; else 0. */
int findings_status(const struct findings *f);

json_t *findings_to_json(const struct findings *f, const char *shard);
/* Add what a JSON file says to f (--merge). NULL, or what is wrong. */
const char *findings_from_json(struct findings *f, json_t *root);
void free_findings(struct findings *f);

#endif
