/* trial.h - one run of COMMAND under given rules, recorded, in its own
 * process group with a deadline, and what came of it; many at a time.
 * explore and minimize are both made of these. */
#ifndef WB_RUNNER_TRIAL_H
#define WB_RUNNER_TRIAL_H

#include "recording.h"

#include <stdbool.h>
#include <stdint.h>

struct trial {
        /* asked */
        char *rules;           /* WOULDBLOCK_RULES, or NULL */
        const char *scenarios; /* WOULDBLOCK_SCENARIO, or NULL */
        const char *seed;      /* WOULDBLOCK_SEED, or NULL */
        void *tag;             /* the caller's */

        /* what happened */
        bool hung;          /* killed at the deadline */
        int wait_status;    /* of COMMAND's own process */
        char hang[128];     /* a hang: what it was doing */
        char last_err[256]; /* the last line of its stderr */
        double seconds;
        uint64_t spin;        /* the longest spin of its processes */
        struct recording rec; /* what it reached and injected */
};

struct trial_pool {
        char **command;
        double timeout; /* seconds */
        unsigned jobs;
        const char *dir; /* a private directory to work in */
        /* called after each trial ends (progress), may be NULL */
        void (*done)(struct trial *t, void *arg);
        void *arg;
};

/* Run every trial, pool->jobs at a time. */
void run_trials(struct trial_pool *pool, struct trial **trials, unsigned n);

/* The trial's failure in words: "exit status 1", "killed by signal 9
 * (SIGKILL)", "hang: blocked in poll (prog)". "" when it passed. */
void trial_failure(const struct trial *t, char *out, size_t size);
/* Passed: exited 0 (no hang, no signal). */
bool trial_passed(const struct trial *t);
/* Same failure: same exit status or signal, or both hangs. */
bool same_failure(const struct trial *a, const struct trial *b);
void trial_free(struct trial *t);

#endif
