/* table.c - see table.h. */
#include "table.h"

#include "recording.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const outcome_names[OUT_COUNT] = {"fail", "hang", "spin", "pass", "unreached"};

const char *outcome_name(enum outcome o)
{
        return outcome_names[o];
}

struct finding *add_finding(struct findings *f)
{
        f->rows = xrealloc(f->rows, f->n + 1, sizeof *f->rows);
        struct finding *row = &f->rows[f->n++];
        memset(row, 0, sizeof *row);
        row->status = row->signal = row->confirmed = -1;
        return row;
}

char *finding_repro(const struct findings *f, const struct finding *row)
{
        size_t n = json_array_size(f->command);
        char **argv = xcalloc(n + 1, sizeof *argv);
        char *rules = shell_quote(row->rules), *command, *line;

        for (size_t i = 0; i < n; i++)
                argv[i] = (char *)json_string_value(json_array_get(f->command, i));
        command = shell_join(argv);
        line = format("wouldblock -r %s -- %s", rules, command);
        free(argv);
        free(rules);
        free(command);
        return line;
}

static bool failing(const struct finding *r)
{
        return r->outcome == OUT_FAIL || r->outcome == OUT_HANG || r->outcome == OUT_SPIN;
}

/* Failing first, grouped by outcome and what it did; then by point, k and
 * action: an order that does not depend on timing or sharding. */
static int by_group(const void *pa, const void *pb)
{
        const struct finding *a = pa, *b = pb;
        int c;

        if (a->outcome != b->outcome)
                return (int)a->outcome - (int)b->outcome;
        if (failing(a) && (c = strcmp(a->what, b->what)))
                return c;
        if ((c = strcmp(a->key, b->key)))
                return c;
        if (a->k != b->k)
                return a->k < b->k ? -1 : 1;
        return strcmp(a->action, b->action);
}

int findings_status(const struct findings *f)
{
        unsigned reached = 0;

        for (unsigned i = 0; i < f->n; i++) {
                if (failing(&f->rows[i]))
                        return 1;
                reached += f->rows[i].outcome != OUT_UNREACHED;
        }
        return reached || (f->points && !f->n) ? 0 : 3;
}

void print_table(struct findings *f)
{
        unsigned count[OUT_COUNT] = {0}, groups = 0;

        if (f->n)
                qsort(f->rows, f->n, sizeof *f->rows, by_group);
        for (unsigned i = 0; i < f->n; i++)
                count[f->rows[i].outcome]++;
        printf("%llu point%s, %llu runs (naive count: %llu)%s: %u failed, %u hung, %u spun, "
               "%u passed, %u unreached\n",
               (unsigned long long)f->points, f->points == 1 ? "" : "s",
               (unsigned long long)f->runs, (unsigned long long)f->naive,
               f->stopped ? ", stopped at --max-runs" : "", count[OUT_FAIL], count[OUT_HANG],
               count[OUT_SPIN], count[OUT_PASS], count[OUT_UNREACHED]);
        for (unsigned i = 0; i < f->n && failing(&f->rows[i]); i++) {
                const struct finding *r = &f->rows[i];
                if (i == 0 || r->outcome != r[-1].outcome || strcmp(r->what, r[-1].what)) {
                        unsigned members = 1;
                        while (i + members < f->n && r[members].outcome == r->outcome &&
                               strcmp(r[members].what, r->what) == 0)
                                members++;
                        printf("\n%s: %s [%u experiment%s]\n", outcome_name(r->outcome), r->what,
                               members, members == 1 ? "" : "s");
                        groups++;
                }
                char spin[48] = "";
                if (r->outcome == OUT_SPIN)
                        snprintf(spin, sizeof spin, "  spin %llu", (unsigned long long)r->spin);
                char *repro = finding_repro(f, r);
                printf("  %s  k=%llu  %s  %s%s\n    %s\n", r->key, (unsigned long long)r->k,
                       r->action,
                       r->confirmed == 1   ? "confirmed"
                       : r->confirmed == 0 ? "flaky"
                                           : "not rerun",
                       spin, repro);
                free(repro);
        }
        if (!groups)
                printf("\nno failing point\n");
}

static json_t *finding_json(const struct findings *f, const struct finding *r)
{
        char site[256], *fd = NULL, *repro = finding_repro(f, r);
        const char *filters = strchr(r->key, ' ') ? strchr(r->key, ' ') + 1 : "";

        filter_value(filters, "site", site, sizeof site);
        for (const char *s = filters; *s;) { /* the fd's kind: FILTERS but site= and process= */
                size_t len = strcspn(s, " ");
                if (strncmp(s, "site=", 5) && strncmp(s, "process=", 8)) {
                        char *word = format("%.*s", (int)len, s);
                        fd = append(fd, " ", word);
                        free(word);
                }
                s += len;
                s += strspn(s, " ");
        }
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:s, s:I}",
                      "call", r->call, "point", r->key, "site", site, "fd", fd ? fd : "", "k",
                      (json_int_t)r->k, "action", r->action, "outcome", outcome_name(r->outcome),
                      "status", r->status >= 0 ? json_integer(r->status) : json_null(), "signal",
                      r->signal >= 0 ? json_integer(r->signal) : json_null(), "confirmed",
                      r->confirmed >= 0 ? json_boolean(r->confirmed) : json_null(), "what", r->what,
                      "rules", r->rules, "repro", repro, "spin", (json_int_t)r->spin);
        free(fd);
        free(repro);
        if (!o)
                fatal("cannot make the JSON result");
        return o;
}

json_t *findings_to_json(const struct findings *f, const char *shard)
{
        json_t *points = json_array();

        for (unsigned i = 0; i < f->n; i++)
                json_array_append_new(points, finding_json(f, &f->rows[i]));
        json_t *o = json_pack(
            "{s:O, s:{s:i, s:f}, s:I, s:I, s:I, s:b, s:o, s:o, s:o, s:f}", "command", f->command,
            "baseline", "status", 0, "seconds", f->baseline_seconds, "runs", (json_int_t)f->runs,
            "naive", (json_int_t)f->naive, "explored_points", (json_int_t)f->points, "stopped",
            f->stopped, "shard", shard ? json_string(shard) : json_null(), "points", points,
            "first_failure_seconds",
            f->first_failure > 0 ? json_real(f->first_failure) : json_null(), "seconds",
            f->seconds);
        if (!o)
                fatal("cannot make the JSON result");
        return o;
}

const char *findings_from_json(struct findings *f, json_t *root)
{
        json_t *command, *points, *p;
        json_int_t runs, naive, explored;
        int stopped;
        size_t i;

        if (json_unpack(root, "{s:o, s:I, s:I, s:I, s:b, s:o}", "command", &command, "runs", &runs,
                        "naive", &naive, "explored_points", &explored, "stopped", &stopped,
                        "points", &points) ||
            !json_is_array(command) || !json_is_array(points))
                return "not the JSON of wouldblock explore";
        if (f->command && !json_equal(f->command, command))
                return "the command differs from the other parts'";
        if (f->command && (uint64_t)naive != f->naive)
                return "the points differ from the other parts' (not the same baseline)";
        if (!f->command)
                f->command = json_incref(command);
        f->runs += (uint64_t)runs;
        f->naive = (uint64_t)naive;
        f->points = (uint64_t)explored;
        f->stopped |= stopped;
        json_array_foreach(points, i, p)
        {
                const char *call, *key, *action, *outcome, *what, *rules;
                json_t *status, *signal, *confirmed;
                json_int_t k, spin;
                if (json_unpack(p, "{s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:I}",
                                "call", &call, "point", &key, "k", &k, "action", &action, "outcome",
                                &outcome, "status", &status, "signal", &signal, "confirmed",
                                &confirmed, "what", &what, "rules", &rules, "spin", &spin))
                        return "a point lacks a member";
                struct finding *r = add_finding(f);
                r->call = xstrdup(call);
                r->key = xstrdup(key);
                r->k = (uint64_t)k;
                r->action = xstrdup(action);
                r->what = xstrdup(what);
                r->rules = xstrdup(rules);
                r->spin = (uint64_t)spin;
                r->outcome = OUT_COUNT;
                for (int o = 0; o < OUT_COUNT; o++)
                        if (strcmp(outcome, outcome_names[o]) == 0)
                                r->outcome = (enum outcome)o;
                if (r->outcome == OUT_COUNT)
                        return "a point has an unknown outcome";
                r->status = json_is_integer(status) ? (int)json_integer_value(status) : -1;
                r->signal = json_is_integer(signal) ? (int)json_integer_value(signal) : -1;
                r->confirmed = json_is_boolean(confirmed) ? json_is_true(confirmed) : -1;
        }
        return NULL;
}

void free_findings(struct findings *f)
{
        for (unsigned i = 0; i < f->n; i++) {
                free(f->rows[i].key);
                free(f->rows[i].call);
                free(f->rows[i].action);
                free(f->rows[i].rules);
                free(f->rows[i].what);
        }
        free(f->rows);
        json_decref(f->command);
        memset(f, 0, sizeof *f);
}
