/* replay.c - see replay.h. */
#include "replay.h"

#include "rules.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static const struct recording *sorting; /* qsort has no context argument */

static int by_point_action_k(const void *pa, const void *pb)
{
        const struct rec_inject *a = &sorting->injects[*(const unsigned *)pa];
        const struct rec_inject *b = &sorting->injects[*(const unsigned *)pb];
        int c;

        if (a->point != b->point)
                return a->point < b->point ? -1 : 1;
        if ((c = strcmp(a->action, b->action)))
                return c;
        return a->k < b->k ? -1 : a->k > b->k;
}

char *replay_rules(const struct recording *rec, const unsigned *set, unsigned n)
{
        unsigned *order = xcalloc(n, sizeof *order);
        char *rules = NULL;

        if (n)
                memcpy(order, set, n * sizeof *order);
        sorting = rec;
        qsort(order, n, sizeof *order, by_point_action_k);
        for (unsigned i = 0; i < n;) {
                const struct rec_inject *first = &rec->injects[order[i]];
                char *when = NULL;
                unsigned items = 0;
                /* the hits of one point and action, as ranges */
                while (i < n && items < WB_MAX_WHEN) {
                        const struct rec_inject *in = &rec->injects[order[i]];
                        if (in->point != first->point || strcmp(in->action, first->action))
                                break;
                        uint64_t lo = in->k, hi = in->k;
                        i++;
                        while (i < n && rec->injects[order[i]].point == first->point &&
                               strcmp(rec->injects[order[i]].action, first->action) == 0 &&
                               rec->injects[order[i]].k <= hi + 1) {
                                hi = rec->injects[order[i]].k;
                                i++;
                        }
                        char *item = lo == hi ? format("%llu", (unsigned long long)lo)
                                              : format("%llu..%llu", (unsigned long long)lo,
                                                       (unsigned long long)hi);
                        when = append(when, ",", item);
                        free(item);
                        items++;
                }
                char *rule = format("%s per=process when=%s %s", rec->points[first->point].key,
                                    when ? when : "", first->action);
                rules = append(rules, ";", rule);
                free(rule);
                free(when);
        }
        free(order);
        return rules ? rules : xstrdup("");
}
