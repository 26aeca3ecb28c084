/* minimize.c - wouldblock minimize (SPEC §9): the few injections of a
 * failing run that matter.
 *
 * The run under the user's rules is recorded (WOULDBLOCK_RECORD): its
 * `inject` lines name each injection as point + hit k + action. A set of
 * them is replayed with rules that inject exactly those (replay.h), and
 * Zeller's ddmin shrinks the set while the command still fails the same way
 * (same exit status or signal, or a hang). What is left is 1-minimal: every
 * injection in it was tried away, and the failure went with it. A last run
 * verifies the reproduction line.
 */
#include "commands.h"
#include "options.h"
#include "preload.h"
#include "recording.h"
#include "replay.h"
#include "table.h"
#include "trial.h"
#include "util.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char minimize_usage[] =
    "usage: wouldblock minimize [-c FILE] [-s SCENARIO] [-r RULES] [--seed N] [--timeout SEC]\n"
    "                           [--json PATH] -- COMMAND [ARG...]\n";

static const char minimize_help[] =
    "\nCOMMAND fails under many injections (a prob= scenario such as flaky-net):\n"
    "find the few of them that still make it fail the same way, by delta\n"
    "debugging over the injections of the failing run, and print a command line\n"
    "that reproduces the failure with only those.\n\n"
    "  -c, --config FILE   scenario file\n"
    "  -s, --scenario NAME scenario(s) of the failing run\n"
    "  -r, --rules RULES   rules of the failing run\n"
    "      --seed N        seed of the failing run (default 1)\n"
    "      --timeout SEC   a run's deadline (default: 10x the run without injections,\n"
    "                      at least 5)\n"
    "      --json PATH     write the result as JSON\n\n"
    "Exit status: 0 found and verified; 1 the reproduction did not verify; 4 COMMAND\n"
    "does not fail under the rules; 3 it fails without any injection; 2 usage;\n"
    "125 configuration error.\n";

struct tested {
        char *rules;
        bool fails;
};

struct minimize {
        struct options o;
        double timeout;
        const char *json_path;
        char *dir;
        struct trial original;
        struct tested *cache;
        unsigned n_cache;
        unsigned runs;
};

static void run_one(struct minimize *m, struct trial *t, double timeout)
{
        struct trial_pool pool = {
            .command = m->o.command, .timeout = timeout, .jobs = 1, .dir = m->dir};
        struct trial *list[1] = {t};
        run_trials(&pool, list, 1);
        m->runs++;
}

/* Does replaying these injections fail the way the original run did? */
static bool fails(struct minimize *m, const unsigned *set, unsigned n)
{
        char *rules = replay_rules(&m->original.rec, set, n);

        for (unsigned i = 0; i < m->n_cache; i++)
                if (strcmp(m->cache[i].rules, rules) == 0) {
                        free(rules);
                        return m->cache[i].fails;
                }
        struct trial t = {.rules = xstrdup(rules)};
        run_one(m, &t, m->timeout);
        bool same = same_failure(&m->original, &t);
        trial_free(&t);
        m->cache = xrealloc(m->cache, m->n_cache + 1, sizeof *m->cache);
        m->cache[m->n_cache++] = (struct tested){rules, same};
        if (isatty(2))
                fprintf(stderr, "\rwouldblock minimize: %u runs, %u injections left   ", m->runs,
                        n);
        return same;
}

/* Zeller's ddmin: *n injections in set, shrunk in place. */
static void ddmin(struct minimize *m, unsigned *set, unsigned *n)
{
        unsigned granularity = 2;
        unsigned *part = xcalloc(*n, sizeof *part);

        while (*n >= 2) {
                bool reduced = false;
                /* each part alone, then (past two parts) each complement */
                for (int complement = 0; complement < 2 && !reduced; complement++) {
                        if (complement && granularity == 2)
                                break; /* the complements are the parts */
                        for (unsigned i = 0; i < granularity && !reduced; i++) {
                                unsigned lo = (unsigned)((uint64_t)*n * i / granularity);
                                unsigned hi = (unsigned)((uint64_t)*n * (i + 1) / granularity);
                                unsigned len = 0;
                                for (unsigned j = 0; j < *n; j++)
                                        if ((j >= lo && j < hi) != complement)
                                                part[len++] = set[j];
                                if (len == 0 || len == *n || !fails(m, part, len))
                                        continue;
                                memcpy(set, part, len * sizeof *set);
                                *n = len;
                                granularity =
                                    complement ? (granularity > 2 ? granularity - 1 : 2) : 2;
                                reduced = true;
                        }
                }
                if (reduced)
                        continue;
                if (granularity >= *n)
                        break;
                granularity = granularity * 2 < *n ? granularity * 2 : *n;
        }
        free(part);
}

static json_t *status_json(const struct trial *t)
{
        return json_pack(
            "{s:o, s:o, s:b}", "status",
            !t->hung && WIFEXITED(t->wait_status) ? json_integer(WEXITSTATUS(t->wait_status))
                                                  : json_null(),
            "signal",
            !t->hung && WIFSIGNALED(t->wait_status) ? json_integer(WTERMSIG(t->wait_status))
                                                    : json_null(),
            "hang", t->hung);
}

static void parse(struct minimize *m, int argc, char **argv)
{
        enum { TIMEOUT = 300, JSON };
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"scenario", required_argument, NULL, 's'},
            {"rules", required_argument, NULL, 'r'},
            {"seed", required_argument, NULL, SEED_OPTION},
            {"timeout", required_argument, NULL, TIMEOUT},
            {"json", required_argument, NULL, JSON},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int c;

        set_usage(minimize_usage);
        opterr = 0;
        optind = 1;
        while ((c = getopt_long(argc, argv, "+:c:s:r:h", longopts, NULL)) != -1) {
                const char *word = argv[optind - 1];
                if (shared_option(c, optarg, &m->o))
                        continue;
                switch (c) {
                case TIMEOUT: {
                        char *end;
                        m->timeout = strtod(optarg, &end);
                        if (*end || !(m->timeout > 0) || m->timeout > 1e6)
                                usage_error("--timeout: '%s' is not a number of seconds", optarg);
                        break;
                }
                case JSON:
                        m->json_path = optarg;
                        break;
                case 'h':
                        printf("%s%s", minimize_usage, minimize_help);
                        exit(finish_output());
                case ':':
                        usage_error("%s needs a value", word);
                default:
                        usage_error("unknown option '%s'", word);
                }
        }
        m->o.command = argv + optind;
        if (!*m->o.command)
                usage_error("no COMMAND to run");
        if (!m->o.scenarios && !m->o.rules)
                usage_error("minimize needs the rules of a failing run: -s or -r");
}

int cmd_minimize(int argc, char **argv)
{
        static struct minimize m;
        char failure[256];

        parse(&m, argc, argv);
        set_variables(&m.o);
        check_configuration(m.o.config);
        m.dir = make_private_dir();

        /* without injections: it must pass, and its time sets the deadline */
        struct trial clean = {0};
        run_one(&m, &clean, m.timeout > 0 ? m.timeout : 300);
        if (!trial_passed(&clean)) {
                trial_failure(&clean, failure, sizeof failure);
                note("minimize: %s fails without any injection (%s): nothing to minimize",
                     m.o.command[0], failure);
                remove_dir(m.dir);
                return EXIT_NO_INJECTION;
        }
        if (m.timeout <= 0)
                m.timeout = clean.seconds * 10 > 5 ? clean.seconds * 10 : 5;
        trial_free(&clean);

        /* the failing run, recorded */
        m.original.scenarios = m.o.scenarios;
        m.original.rules = m.o.rules ? xstrdup(m.o.rules) : NULL;
        m.original.seed = m.o.seed;
        run_one(&m, &m.original, m.timeout);
        if (trial_passed(&m.original)) {
                note("minimize: %s does not fail under these rules and seed", m.o.command[0]);
                remove_dir(m.dir);
                return EXIT_BASELINE;
        }
        trial_failure(&m.original, failure, sizeof failure);
        unsigned n = m.original.rec.n_injects;
        if (n == 0) {
                note("minimize: %s failed (%s) but nothing was injected: it fails without "
                     "injections",
                     m.o.command[0], failure);
                remove_dir(m.dir);
                return EXIT_NO_INJECTION;
        }
        note("minimize: %s: %s after %u injections", m.o.command[0], failure, n);

        unsigned *set = xcalloc(n, sizeof *set);
        for (unsigned i = 0; i < n; i++)
                set[i] = i;
        bool replays = fails(&m, set, n);
        if (replays)
                ddmin(&m, set, &n);
        if (isatty(2))
                fputc('\n', stderr);

        /* the result, verified by a run of its own */
        struct trial verify = {.rules = replay_rules(&m.original.rec, set, n)};
        bool verified = false;
        if (replays) {
                run_one(&m, &verify, m.timeout);
                verified = same_failure(&m.original, &verify);
        }
        struct findings f = {.command = json_array()};
        for (char **a = m.o.command; *a; a++)
                json_array_append_new(f.command, json_string(*a));
        json_t *minimal = json_array();
        if (replays) {
                printf("%u of the %u injections make %s fail the same way (%s):\n", n,
                       m.original.rec.n_injects, m.o.command[0], failure);
                for (unsigned i = 0; i < n; i++) {
                        const struct rec_inject *in = &m.original.rec.injects[set[i]];
                        const struct rec_point *p = &m.original.rec.points[in->point];
                        printf("  %s  k=%llu  %s\n", p->key, (unsigned long long)in->k, in->action);
                        char *one = replay_rules(&m.original.rec, &set[i], 1);
                        char site[256];
                        filter_value(p->filters, "site", site, sizeof site);
                        json_array_append_new(minimal,
                                              json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "call",
                                                        p->call, "point", p->key, "site", site, "k",
                                                        (json_int_t)in->k, "action", in->action,
                                                        "rules", one));
                        free(one);
                }
        } else {
                printf("replaying all %u injections of the failing run does not fail the same "
                       "way: the command does not take the same path twice\n",
                       m.original.rec.n_injects);
        }
        struct finding row = {.rules = verify.rules};
        char *repro = finding_repro(&f, &row);
        if (replays)
                printf("%s\n", repro);
        printf("%s; %u runs\n",
               verified  ? "verified: it fails the same way"
               : replays ? "NOT verified: the last run did not fail the same way"
                         : "nothing minimized",
               m.runs);
        if (m.json_path) {
                json_t *o = json_pack("{s:O, s:{s:o, s:I}, s:o, s:s, s:s, s:I, s:b}", "command",
                                      f.command, "original", "status", status_json(&m.original),
                                      "injections", (json_int_t)m.original.rec.n_injects, "minimal",
                                      minimal, "rules", verify.rules, "repro", repro, "runs",
                                      (json_int_t)m.runs, "verified", verified);
                if (!o || json_dump_file(o, m.json_path, JSON_INDENT(1) | JSON_SORT_KEYS))
                        fatal("cannot write %s", m.json_path);
                json_decref(o);
        } else {
                json_decref(minimal);
        }
        free(repro);
        free(set);
        trial_free(&verify);
        trial_free(&m.original);
        json_decref(f.command);
        for (unsigned i = 0; i < m.n_cache; i++)
                free(m.cache[i].rules);
        free(m.cache);
        remove_dir(m.dir);
        free(m.dir);
        return finish_output() ? EXIT_CONFIG : verified ? 0 : 1;
}
