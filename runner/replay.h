/* replay.h - rules that inject exactly a chosen set of the injections a
 * recording lists: per point and action, `CALL FILTERS per=process
 * when=K1,K2,... ACTION` (the hits merged into ranges, at most WB_MAX_WHEN
 * items a rule; every rule counts the point's calls on its own, so several
 * rules for one point still count the same hits). */
#ifndef WB_RUNNER_REPLAY_H
#define WB_RUNNER_REPLAY_H

#include "recording.h"

/* set: n indexes into rec->injects, in any order. The rules ';'-separated
 * (malloc'd); "" for an empty set. */
char *replay_rules(const struct recording *rec, const unsigned *set, unsigned n);

#endif
