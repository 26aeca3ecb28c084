/* explore.c - wouldblock explore (SPEC §8): which would-block point breaks
 * this command?
 *
 * 1. Baseline: COMMAND twice under the library, recording (WOULDBLOCK_RECORD)
 *    and injecting nothing; both must exit 0. The points both runs reached
 *    are the candidates, narrowed by -s/-r if given.
 * 2. Plan, per point hit N times, per fitting action (EAGAIN or EINPROGRESS,
 *    short=1, a full buffer, a slow peer): the hits k = 1, then 2, then N
 *    (the first hits are where a program meets "not now" first; the last one
 *    is where a loop ends), in three stages. The pruning:
 *    - an action that failed, hung or spun at a point is not tried at that
 *      point's later hits (the point is known broken that way);
 *    - an action the library declined at a point's first hit (unreached: it
 *      would not have been faithful there) is not tried at its later hits;
 *    - only hits 1, 2 and N, not every hit: the naive count (every hit, every
 *      action) is printed next to the runs made.
 *    The stages make the plan independent of timing and --jobs.
 * 3. Every failing experiment is run again: confirmed or flaky.
 * --shard K/N takes every N-th point (K-th of them), in the sorted order of
 * the points' names, with all of its experiments: the parts add up to the
 * unsharded run exactly.
 */
#include "commands.h"
#include "config.h"
#include "options.h"
#include "preload.h"
#include "recording.h"
#include "table.h"
#include "trial.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char explore_usage[] =
    "usage: wouldblock explore [-c FILE] [-s SCENARIO] [-r RULES] [--jobs N] [--timeout SEC]\n"
    "                          [--max-runs N] [--shard K/N] [--json PATH] -- COMMAND [ARG...]\n"
    "       wouldblock explore --merge PATH... [--json PATH]\n";

static const char explore_help[] =
    "\nFind the would-block points where COMMAND breaks: run it once per point and\n"
    "action (EAGAIN/EINPROGRESS, short=1, a full buffer, a slow peer) and report\n"
    "what failed, hung or spun, each with a command line that reproduces it.\n\n"
    "  -c, --config FILE   scenario file for -s\n"
    "  -s, --scenario NAME explore only the calls and fds its rules select\n"
    "  -r, --rules RULES   the same, with rules inline\n"
    "      --jobs N        runs at a time (default: the number of CPUs)\n"
    "      --timeout SEC   a run's deadline (default: 10x the baseline, at least 5)\n"
    "      --max-runs N    stop after N runs\n"
    "      --shard K/N     run only the K-th of N parts (a CI matrix)\n"
    "      --merge PATH... print the table that the parts' --json files make\n"
    "      --json PATH     write the result as JSON\n\n"
    "Exit status: 0 every point passed; 1 a point failed, hung or spun; 3 no point\n"
    "reached; 4 the baseline failed; 2 usage; 125 configuration error.\n";

enum action { ACT_EAGAIN, ACT_SHORT, ACT_FULL, ACT_SLOW, ACT_COUNT };

struct explore {
        struct options o;
        unsigned jobs;
        double timeout;
        unsigned long max_runs;
        unsigned shard, shards;
        const char *json_path;
        uint64_t spin_limit;
        struct wb_rule narrow[WB_MAX_RULES];
        bool narrow_edge_none[WB_MAX_RULES]; /* a short= rule with edge=none */
        unsigned n_narrow;
        bool *edge_none; /* per point: its short experiments take edge=none */
        struct recording points;
        struct findings found;
        /* progress */
        unsigned done, failing;
        const char *stage;
        double started;
};

/* ---- what fits where ---- */

static bool action_fits(enum action a, int call)
{
        unsigned bit = call >= 0 ? 1u << call : 0;
        bool stream = call != WB_RECVMMSG && call != WB_SENDMMSG; /* cut one message: no */

        switch (a) {
        case ACT_EAGAIN:
                return true;
        case ACT_SHORT:
                return (bit & (WB_GROUP_INPUT | WB_GROUP_OUTPUT)) && stream;
        case ACT_FULL:
                return (bit & WB_GROUP_OUTPUT) && stream;
        case ACT_SLOW:
                return bit & (WB_GROUP_INPUT | WB_GROUP_OUTPUT | WB_GROUP_ACCEPT);
        default:
                return false;
        }
}

static bool inet(const char *filters)
{
        char family[16];
        filter_value(filters, "family", family, sizeof family);
        return strcmp(family, "inet") == 0 || strcmp(family, "inet6") == 0;
}

/* The rules that inject exactly hit k of point p with action a, and the
 * action as the table shows it. */
static char *action_rules(const struct rec_point *p, enum action a, uint64_t k, bool edge_none,
                          char **shown)
{
        const char *edge = edge_none ? " edge=none" : "";
        unsigned long long kk = (unsigned long long)k;
        bool connect_inet = strcmp(p->call, "connect") == 0 && inet(p->filters);

        switch (a) {
        case ACT_EAGAIN:
                *shown = xstrdup(connect_inet ? "errno=EINPROGRESS" : "errno=EAGAIN");
                return format("%s per=process when=%llu %s", p->key, kk, *shown);
        case ACT_SHORT:
                *shown = format("short=1%s", edge);
                return format("%s per=process when=%llu short=1%s", p->key, kk, edge);
        case ACT_FULL:
                *shown = format("short=1%s, then errno=EAGAIN", edge);
                return format("%s per=process when=%llu short=1%s;%s per=process when=%llu "
                              "errno=EAGAIN",
                              p->key, kk, edge, p->key, kk + 1);
        default:
                *shown = xstrdup("until=poll");
                return format("%s per=process when=%llu until=poll", p->key, kk);
        }
}

static unsigned name_bit(const char *value, const char *const *names, unsigned count)
{
        for (unsigned i = 0; i < count; i++)
                if (strcmp(value, names[i]) == 0)
                        return 1u << i;
        return 0;
}

/* Does a rule of -s/-r (or the default: every call on the default fd
 * types) select the point? *edge_none: a selecting short= rule asks for
 * epoll(7)'s contract (edge=none, as `-s epoll-strict` does). */
static bool selected(const struct explore *e, const struct rec_point *p, bool *edge_none)
{
        bool any = false;
        static const char *const types[] = {"socket", "pipe", "tty", "file", "other"};
        static const char *const families[] = {"unix", "inet", "inet6"};
        char type[32], family[32], port[16], process[WB_NAME_MAX];
        int call = rule_call_by_name(p->call, strlen(p->call));

        filter_value(p->filters, "type", type, sizeof type);
        filter_value(p->filters, "family", family, sizeof family);
        filter_value(p->filters, "port", port, sizeof port);
        filter_value(p->filters, "process", process, sizeof process);
        unsigned type_bit = name_bit(type, types, 5), family_bit = name_bit(family, families, 3);
        for (unsigned i = 0; i < e->n_narrow; i++) {
                const struct wb_rule *r = &e->narrow[i];
                if (call < 0 || !(r->calls & WB_CALL_BIT(call)) || !(r->types & type_bit) ||
                    (r->families && !(r->families & family_bit)) ||
                    (r->port >= 0 && atoi(port) != r->port) ||
                    (r->process[0] && strcmp(r->process, process)))
                        continue;
                any = true;
                *edge_none |= e->narrow_edge_none[i];
        }
        return any;
}

/* ---- progress ---- */

static double seconds_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum outcome classify(const struct explore *e, const struct trial *t);
static bool is_failing(enum outcome o);

static void progress(struct trial *t, void *arg)
{
        struct explore *e = arg;
        e->done++;
        if (t->rules && !e->found.first_failure && is_failing(classify(e, t)))
                e->found.first_failure = seconds_now() - e->started;
        if (isatty(2))
                fprintf(stderr, "\rwouldblock explore: %s: %u runs done, %u failing so far   ",
                        e->stage, e->done, e->failing);
}

/* ---- baseline ---- */

static struct trial_pool pool_for(struct explore *e, const char *dir, double timeout)
{
        return (struct trial_pool){.command = e->o.command,
                                   .timeout = timeout,
                                   .jobs = e->jobs,
                                   .dir = dir,
                                   .done = progress,
                                   .arg = e};
}

static void baseline_failed(const struct trial *t)
{
        char why[256];

        trial_failure(t, why, sizeof why);
        note("explore: the baseline (nothing injected) did not pass: %s%s%s", why,
             t->last_err[0] ? "; stderr: " : "", t->last_err);
        exit(EXIT_BASELINE);
}

/* Two runs with nothing injected: the points both reached. */
static void baseline(struct explore *e, const char *dir)
{
        struct trial runs[2] = {0}, *list[2] = {&runs[0], &runs[1]};
        struct trial_pool pool = pool_for(e, dir, e->timeout > 0 ? e->timeout : 300);

        e->stage = "baseline";
        pool.jobs = 1; /* its time sets the deadline of the others */
        run_trials(&pool, list, 2);
        for (int i = 0; i < 2; i++)
                if (!trial_passed(&runs[i]))
                        baseline_failed(&runs[i]);
        e->found.baseline_seconds =
            runs[0].seconds > runs[1].seconds ? runs[0].seconds : runs[1].seconds;
        if (e->timeout <= 0) {
                e->timeout = 10 * e->found.baseline_seconds;
                if (e->timeout < 5)
                        e->timeout = 5;
        }
        recording_sort(&runs[0].rec);
        unsigned unstable = 0;
        for (unsigned i = 0; i < runs[0].rec.n_points; i++) {
                struct rec_point *p = &runs[0].rec.points[i];
                int j = recording_find(&runs[1].rec, p->key);
                if (j < 0) {
                        unstable++;
                        continue;
                }
                uint64_t hits =
                    p->hits < runs[1].rec.points[j].hits ? p->hits : runs[1].rec.points[j].hits;
                bool edge_none = false;
                if (hits == 0 || !selected(e, p, &edge_none))
                        continue;
                e->edge_none = xrealloc(e->edge_none, e->points.n_points + 1, sizeof *e->edge_none);
                e->edge_none[e->points.n_points] = edge_none;
                e->points.points =
                    xrealloc(e->points.points, e->points.n_points + 1, sizeof *e->points.points);
                struct rec_point *q = &e->points.points[e->points.n_points++];
                *q = *p;
                q->key = xstrdup(p->key);
                q->call = xstrdup(p->call);
                q->filters = xstrdup(p->filters);
                q->hits = hits;
        }
        if (unstable)
                note("explore: %u point%s reached in one baseline run but not the other: left out",
                     unstable, unstable == 1 ? "" : "s");
        trial_free(&runs[0]);
        trial_free(&runs[1]);
}

/* ---- experiments ---- */

struct cell { /* one (point, action) of this shard */
        unsigned point;
        enum action action;
        bool done; /* failed, or declined at hit 1: no later hits */
};

struct experiment {
        struct trial trial, again;
        struct cell *cell;
        uint64_t k;
        char *shown;
};

static enum outcome classify(const struct explore *e, const struct trial *t)
{
        if (t->rec.n_injects == 0)
                return OUT_UNREACHED;
        if (t->hung)
                return OUT_HANG;
        if (!trial_passed(t))
                return OUT_FAIL;
        if (e->spin_limit && t->spin > e->spin_limit)
                return OUT_SPIN;
        return OUT_PASS;
}

static bool is_failing(enum outcome o)
{
        return o == OUT_FAIL || o == OUT_HANG || o == OUT_SPIN;
}

static char *what_happened(const struct explore *e, const struct trial *t, enum outcome o)
{
        char failure[256];

        if (o == OUT_SPIN)
                return format("a would-block run longer than %llu (a busy-wait)",
                              (unsigned long long)e->spin_limit);
        trial_failure(t, failure, sizeof failure);
        if (o == OUT_HANG)
                return format("%s", failure + strlen("hang: "));
        if (o == OUT_FAIL)
                return format("%s%s%s", failure, t->last_err[0] ? ", stderr: " : "", t->last_err);
        return xstrdup("");
}

/* Run what is left of budget of xs; false if the budget ran out. */
static unsigned within_budget(struct explore *e, unsigned n)
{
        if (e->max_runs && e->found.runs + n > e->max_runs) {
                e->found.stopped = true;
                return e->max_runs > e->found.runs ? (unsigned)(e->max_runs - e->found.runs) : 0;
        }
        return n;
}

static void run_stage(struct explore *e, const char *dir, struct cell *cells, unsigned n_cells,
                      int stage)
{
        struct experiment *xs = xcalloc(n_cells, sizeof *xs);
        struct trial **list = xcalloc(n_cells, sizeof *list);
        unsigned n = 0, again = 0;
        struct trial_pool pool = pool_for(e, dir, e->timeout);
        char stage_name[32];

        for (unsigned i = 0; i < n_cells; i++) {
                struct cell *c = &cells[i];
                const struct rec_point *p = &e->points.points[c->point];
                uint64_t ks[3] = {1, 2, p->hits}, k = ks[stage];
                if (c->done || k > p->hits || (stage > 0 && k <= ks[stage - 1]))
                        continue;
                struct experiment *x = &xs[n];
                x->cell = c;
                x->k = k;
                x->trial.rules = action_rules(p, c->action, k, e->edge_none[c->point], &x->shown);
                x->trial.tag = x;
                list[n++] = &x->trial;
        }
        snprintf(stage_name, sizeof stage_name, "%s hits",
                 stage == 0   ? "first"
                 : stage == 1 ? "second"
                              : "last");
        e->stage = stage_name;
        unsigned run = within_budget(e, n);
        if (!isatty(2) && run)
                note("explore: %u run%s at the %s", run, run == 1 ? "" : "s", stage_name);
        run_trials(&pool, list, run);
        e->found.runs += run;

        /* every failure again */
        for (unsigned i = 0; i < run; i++) {
                enum outcome o = classify(e, &xs[i].trial);
                if (is_failing(o)) {
                        e->failing++;
                        xs[i].again.rules = xstrdup(xs[i].trial.rules);
                        list[again++] = &xs[i].again;
                }
        }
        unsigned rerun = within_budget(e, again);
        e->stage = "confirming";
        run_trials(&pool, list, rerun);
        e->found.runs += rerun;

        for (unsigned i = 0, a = 0; i < run; i++) {
                struct experiment *x = &xs[i];
                const struct rec_point *p = &e->points.points[x->cell->point];
                enum outcome o = classify(e, &x->trial);
                struct finding *r = add_finding(&e->found);
                r->key = xstrdup(p->key);
                r->call = xstrdup(p->call);
                r->k = x->k;
                r->action = x->shown;
                r->rules = x->trial.rules;
                x->trial.rules = NULL;
                r->outcome = o;
                r->spin = x->trial.spin;
                r->what = what_happened(e, &x->trial, o);
                if (!x->trial.hung && WIFEXITED(x->trial.wait_status))
                        r->status = WEXITSTATUS(x->trial.wait_status);
                if (!x->trial.hung && WIFSIGNALED(x->trial.wait_status))
                        r->signal = WTERMSIG(x->trial.wait_status);
                if (is_failing(o)) {
                        if (a++ < rerun) {
                                enum outcome o2 = classify(e, &x->again);
                                r->confirmed = o2 == o && (o != OUT_FAIL ||
                                                           same_failure(&x->trial, &x->again));
                        }
                        x->cell->done = true;
                } else if (o == OUT_UNREACHED && stage == 0) {
                        x->cell->done = true;
                }
                trial_free(&x->trial);
                trial_free(&x->again);
        }
        for (unsigned i = run; i < n; i++) {
                free(xs[i].shown);
                trial_free(&xs[i].trial);
        }
        free(xs);
        free(list);
}

static void explore_points(struct explore *e, const char *dir)
{
        struct cell *cells = xcalloc((size_t)e->points.n_points * ACT_COUNT, sizeof *cells);
        unsigned n = 0;

        for (unsigned i = 0; i < e->points.n_points; i++) {
                const struct rec_point *p = &e->points.points[i];
                int call = rule_call_by_name(p->call, strlen(p->call));
                for (int a = 0; a < ACT_COUNT; a++) {
                        if (!action_fits((enum action)a, call))
                                continue;
                        e->found.naive += p->hits;
                        if (i % e->shards == e->shard - 1)
                                cells[n++] = (struct cell){i, (enum action)a, false};
                }
        }
        e->found.points = e->points.n_points;
        for (int stage = 0; stage < 3; stage++)
                run_stage(e, dir, cells, n, stage);
        if (isatty(2))
                fputc('\n', stderr);
        free(cells);
}

/* ---- output ---- */

static void write_json(const struct findings *f, const char *path, const char *shard)
{
        json_t *o = findings_to_json(f, shard);
        if (json_dump_file(o, path, JSON_INDENT(1) | JSON_SORT_KEYS))
                fatal("cannot write %s", path);
        json_decref(o);
}

static int merge(char **paths, const char *json_path)
{
        struct findings f = {0};

        for (; *paths; paths++) {
                json_error_t err;
                json_t *root = json_load_file(*paths, 0, &err);
                if (!root)
                        fatal("explore --merge: %s:%d: %s", *paths, err.line, err.text);
                const char *why = findings_from_json(&f, root);
                json_decref(root);
                if (why)
                        fatal("explore --merge: %s: %s", *paths, why);
        }
        print_table(&f);
        if (json_path)
                write_json(&f, json_path, NULL);
        int status = findings_status(&f);
        free_findings(&f);
        return finish_output() ? EXIT_CONFIG : status;
}

static void parse_shard(struct explore *e, const char *value)
{
        char *end;
        e->shard = (unsigned)strtoul(value, &end, 10);
        if (*end != '/' || !e->shard)
                usage_error("--shard: '%s' is not K/N", value);
        e->shards = (unsigned)positive_number("--shard", end + 1);
        if (e->shard > e->shards)
                usage_error("--shard: '%s': K is more than N", value);
}

int cmd_explore(int argc, char **argv)
{
        enum { JOBS = 300, TIMEOUT, MAX_RUNS, SHARD, JSON, MERGE };
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"scenario", required_argument, NULL, 's'},
            {"rules", required_argument, NULL, 'r'},
            {"jobs", required_argument, NULL, JOBS},
            {"timeout", required_argument, NULL, TIMEOUT},
            {"max-runs", required_argument, NULL, MAX_RUNS},
            {"shard", required_argument, NULL, SHARD},
            {"json", required_argument, NULL, JSON},
            {"merge", no_argument, NULL, MERGE},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        static struct explore e;
        bool merging = false;
        int c;

        set_usage(explore_usage);
        e.shard = e.shards = 1;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        e.jobs = cpus > 0 ? (unsigned)cpus : 1;
        opterr = 0;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+:c:s:r:h", longopts, NULL)) != -1) {
                const char *word = argv[optind - 1];
                if (shared_option(c, optarg, &e.o))
                        continue;
                switch (c) {
                case JOBS:
                        e.jobs = (unsigned)positive_number("--jobs", optarg);
                        break;
                case TIMEOUT: {
                        char *end;
                        e.timeout = strtod(optarg, &end);
                        if (*end || !(e.timeout > 0) || e.timeout > 1e6)
                                usage_error("--timeout: '%s' is not a number of seconds", optarg);
                        break;
                }
                case MAX_RUNS:
                        e.max_runs = positive_number("--max-runs", optarg);
                        break;
                case SHARD:
                        parse_shard(&e, optarg);
                        break;
                case JSON:
                        e.json_path = optarg;
                        break;
                case MERGE:
                        merging = true;
                        break;
                case 'h':
                        printf("%s%s", explore_usage, explore_help);
                        return finish_output();
                case ':':
                        usage_error("%s needs a value", word);
                default:
                        usage_error("unknown option '%s'", word);
                }
        }
        e.o.command = argv + optind;
        if (merging) {
                /* --merge A.json B.json [--json OUT] */
                char **paths = xcalloc((size_t)argc, sizeof *paths);
                unsigned n = 0;
                for (char **a = e.o.command; *a; a++) {
                        if (strcmp(*a, "--json") == 0 && a[1])
                                e.json_path = *++a;
                        else if (strncmp(*a, "--json=", 7) == 0)
                                e.json_path = *a + 7;
                        else
                                paths[n++] = *a;
                }
                if (!n)
                        usage_error("--merge needs the JSON files of the parts");
                if (e.o.config || e.o.scenarios || e.o.rules || e.shards > 1 || e.max_runs)
                        usage_error("--merge takes only --json");
                int status = merge(paths, e.json_path);
                free(paths);
                return status;
        }
        if (!*e.o.command)
                usage_error("no COMMAND to explore");

        /* what to explore: -s/-r, else every call on the default fd types */
        if (e.o.scenarios || e.o.rules) {
                selected_rules(&e.o, e.narrow, &e.n_narrow);
                for (unsigned i = 0; i < e.n_narrow; i++) {
                        char text[1024];
                        rule_format(&e.narrow[i], text, sizeof text);
                        e.narrow_edge_none[i] = strstr(text, " edge=none") != NULL;
                }
        } else {
                struct wb_diag d;
                if (rule_parse_list("all", "explore", e.narrow, &e.n_narrow, WB_MAX_RULES, &d))
                        fatal("%s", d.msg);
        }
        struct wb_settings s;
        struct wb_diag d;
        if (config_settings(&s, &d))
                fatal("%s", d.msg);
        e.spin_limit = s.spin_limit;

        /* the runs: the library, and nothing of the user's -s/-r injected */
        struct options none = {.config = e.o.config};
        set_variables(&none);
        unsetenv("WOULDBLOCK_SCENARIO");
        unsetenv("WOULDBLOCK_RULES");
        check_configuration(e.o.config);

        char *dir = make_private_dir();
        e.started = seconds_now();
        e.found.command = json_array();
        for (char **a = e.o.command; *a; a++)
                json_array_append_new(e.found.command, json_string(*a));
        baseline(&e, dir);
        note("explore: baseline %.2f s, %u point%s; timeout %.1f s, %u job%s",
             e.found.baseline_seconds, e.points.n_points, e.points.n_points == 1 ? "" : "s",
             e.timeout, e.jobs, e.jobs == 1 ? "" : "s");
        explore_points(&e, dir);
        remove_dir(dir);
        free(dir);
        e.found.seconds = seconds_now() - e.started;

        print_table(&e.found);
        char shard[32];
        snprintf(shard, sizeof shard, "%u/%u", e.shard, e.shards);
        if (e.json_path)
                write_json(&e.found, e.json_path, e.shards > 1 ? shard : NULL);
        int status = findings_status(&e.found);
        free_findings(&e.found);
        recording_free(&e.points);
        free(e.edge_none);
        return finish_output() ? EXIT_CONFIG : status;
}
