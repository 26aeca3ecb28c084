/* engine.c - the decision engine (see engine.h). */
#include "engine.h"

#include "counter.h"
#include "faithful.h"
#include "fdstate.h"
#include "record.h"
#include "site.h"
#include "status.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* A packed counter: the fd generation it belongs to in the top 24 bits,
 * the value below. A word whose generation is stale reads as zero. */
#define TAG_SHIFT 40
#define VALUE_MASK ((1ull << TAG_SHIFT) - 1)

/* flags word of a slot: generation | ready epoch << 8 | bits */
#define FLAG_DEFERRED 1u /* an output EAGAIN waits for bytes in flight */
#define FLAG_UNTIL 2u    /* until=poll: failing until the fd is reported ready */

struct slot {
        _Atomic uint64_t calls;
        _Atomic uint64_t injected;
        _Atomic uint64_t flags;
};

struct rule_rt {
        struct wb_rule rule;
        bool inert; /* process= names another program */
        uint64_t prob_threshold;
        bool prob_always;
        struct wb_counter *counted, *injected;      /* totals, in the status (the report) */
        _Atomic uint64_t proc_calls, proc_injected; /* the per=process scope */
};

struct ruleset {
        struct ruleset *retired_next;
        unsigned n;
        uint32_t armed;
        uint64_t seed;
        size_t bytes;       /* of this mapping, slots included */
        struct slot *slots; /* n * WB_FD_MAX, zero pages until touched */
        struct rule_rt r[];
};

_Atomic uint32_t wb_engine_armed;
static _Atomic(struct ruleset *) active;
/* Threads inside the engine right now (sharded), and the sets replaced but
 * maybe still in use. A reader counts itself in before it loads `active`
 * (both sequentially consistent), so once a swap has happened and the count
 * is seen at zero, no thread holds a replaced set. */
static struct wb_counter readers;
static _Atomic(struct ruleset *) retired;
static _Atomic bool paused;
static char process_argv0[WB_NAME_MAX], process_exe[WB_NAME_MAX];

static uint64_t mix64(uint64_t z)
{
        z += 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static uint64_t prob_hash(uint64_t seed, unsigned rule, int64_t scope, uint64_t n)
{
        return mix64(mix64(mix64(mix64(seed) ^ rule) ^ (uint64_t)scope) ^ n);
}

static uint64_t prob_threshold(double p, bool *always)
{
        *always = p >= 1.0;
        return *always ? UINT64_MAX : (uint64_t)(p * 18446744073709551616.0);
}

bool engine_prob_fires(double prob, uint64_t seed, unsigned rule, int64_t scope, uint64_t n)
{
        bool always;
        uint64_t thr = prob_threshold(prob, &always);
        return always || prob_hash(seed, rule, scope, n) < thr;
}

static struct ruleset *read_begin(void)
{
        counter_add_ordered(&readers, 1, memory_order_seq_cst);
        return atomic_load_explicit(&active, memory_order_seq_cst);
}

static void read_end(void)
{
        counter_add_ordered(&readers, (uint64_t)-1, memory_order_release);
}

void engine_hold(void)
{
        read_begin();
}

void engine_release(void)
{
        read_end();
}

static void retire(struct ruleset *rs)
{
        rs->retired_next = atomic_load_explicit(&retired, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&retired, &rs->retired_next, rs,
                                                      memory_order_release, memory_order_relaxed))
                ;
}

/* Unmap the replaced sets if no thread is inside the engine; otherwise they
 * wait for the next swap. */
static void reclaim(void)
{
        struct ruleset *list = atomic_exchange_explicit(&retired, NULL, memory_order_acq_rel);
        uint64_t inside = 0;

        for (int i = 0; i < WB_SHARDS; i++)
                inside += atomic_load_explicit(&readers.shard[i].v, memory_order_seq_cst);
        while (list) {
                struct ruleset *next = list->retired_next;
                if (inside == 0)
                        munmap(list, list->bytes);
                else
                        retire(list);
                list = next;
        }
}

void engine_set_process_names(const char *argv0, const char *exe)
{
        snprintf(process_argv0, sizeof process_argv0, "%s", argv0 ? argv0 : "");
        snprintf(process_exe, sizeof process_exe, "%s", exe ? exe : "");
}

int engine_install(const struct wb_rule *rules, unsigned n, uint64_t seed)
{
        size_t head = sizeof(struct ruleset) + n * sizeof(struct rule_rt);
        size_t slots = (size_t)n * WB_FD_MAX * sizeof(struct slot);
        size_t page = 4096, bytes;
        struct ruleset *rs, *old;
        struct wb_status_bank *bank;

        if (n > WB_MAX_RULES) {
                errno = EINVAL;
                return -1;
        }
        head = (head + page - 1) & ~(page - 1);
        bytes = head + slots;
        /* mmap, not malloc: this also runs in a forked child of a threaded
         * parent, where malloc's locks may be held by threads that are gone. */
        rs = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                  -1, 0);
        if (rs == MAP_FAILED)
                return -1;
        rs->n = n;
        rs->seed = seed;
        rs->bytes = bytes;
        rs->slots = (struct slot *)((char *)rs + head);
        bank = status_bank_prepare(rules, n, seed);
        for (unsigned i = 0; i < n; i++) {
                struct rule_rt *rt = &rs->r[i];
                rt->rule = rules[i];
                rt->counted = &bank->counted[i];
                rt->injected = &bank->injected[i];
                rt->inert = rules[i].process[0] && strcmp(rules[i].process, process_argv0) != 0 &&
                            strcmp(rules[i].process, process_exe) != 0;
                if (rules[i].has_prob)
                        rt->prob_threshold = prob_threshold(rules[i].prob, &rt->prob_always);
                if (!rt->inert)
                        rs->armed |= rules[i].calls;
        }
        if (record_active())
                rs->armed = WB_GROUP_ALL; /* every call is seen and recorded */
        old = atomic_exchange_explicit(&active, rs, memory_order_seq_cst);
        atomic_store_explicit(&wb_engine_armed, rs->armed, memory_order_release);
        status_bank_publish(bank);
        if (old)
                retire(old);
        reclaim();
        return 0;
}

void engine_pause(bool p)
{
        atomic_store_explicit(&paused, p, memory_order_release);
}

unsigned engine_rule_count(void)
{
        struct ruleset *rs = atomic_load_explicit(&active, memory_order_acquire);
        return rs ? rs->n : 0;
}

const struct wb_rule *engine_rule(unsigned i, uint64_t *counted, uint64_t *injected)
{
        struct ruleset *rs = atomic_load_explicit(&active, memory_order_acquire);
        if (!rs || i >= rs->n)
                return NULL;
        *counted = counter_sum(rs->r[i].counted);
        *injected = counter_sum(rs->r[i].injected);
        return &rs->r[i].rule;
}

uint64_t engine_seed(void)
{
        struct ruleset *rs = atomic_load_explicit(&active, memory_order_acquire);
        return rs ? rs->seed : 1;
}

void engine_restart_counts(void)
{
        /* static: the forking thread's stack may be small, and a forked
         * child has only this thread, so nothing else uses it */
        static struct wb_rule rules[WB_MAX_RULES];
        struct ruleset *rs = atomic_load_explicit(&active, memory_order_acquire);

        /* the only thread of a forked child: the parent's other threads,
         * counted inside the engine at the fork, are not here */
        counter_reset(&readers);
        if (!rs)
                return;
        for (unsigned i = 0; i < rs->n; i++)
                rules[i] = rs->r[i].rule;
        engine_install(rules, rs->n, rs->seed);
}

/* ---- tagged counters ---- */

static uint64_t tagged_value(uint64_t w, uint32_t gen)
{
        return (uint32_t)(w >> TAG_SHIFT) == gen ? (w & VALUE_MASK) : 0;
}

static uint64_t tagged_bump(_Atomic uint64_t *w, uint32_t gen)
{
        uint64_t old = atomic_load_explicit(w, memory_order_relaxed), nw;
        do
                nw = (uint64_t)gen << TAG_SHIFT | ((tagged_value(old, gen) + 1) & VALUE_MASK);
        while (!atomic_compare_exchange_weak_explicit(w, &old, nw, memory_order_relaxed,
                                                      memory_order_relaxed));
        return nw & VALUE_MASK;
}

static unsigned flags_bits(uint64_t w, uint32_t gen)
{
        return (uint32_t)(w >> TAG_SHIFT) == gen ? (unsigned)(w & 0xff) : 0;
}

static uint32_t flags_epoch(uint64_t w)
{
        return (uint32_t)((w >> 8) & 0xffffffffu);
}

/* Set and clear flag bits of this generation; epoch replaces the stored one
 * when FLAG_UNTIL is set. */
static void flags_update(_Atomic uint64_t *w, uint32_t gen, unsigned set, unsigned clear,
                         uint32_t epoch)
{
        uint64_t old = atomic_load_explicit(w, memory_order_relaxed), nw;
        do {
                unsigned bits = (flags_bits(old, gen) | set) & ~clear;
                uint32_t e = (set & FLAG_UNTIL) ? epoch : flags_epoch(old);
                nw = (uint64_t)gen << TAG_SHIFT | (uint64_t)e << 8 | bits;
        } while (!atomic_compare_exchange_weak_explicit(w, &old, nw, memory_order_relaxed,
                                                        memory_order_relaxed));
}

/* ---- deciding ---- */

/* Would a real EAGAIN on this output call be possible now? On pipes and
 * unix sockets only while the reader has bytes to take (SPEC §4). */
static bool output_eagain_faithful(const struct wb_callinfo *c, const struct wb_fdfacts *f)
{
        bool watched =
            f->type == WB_TYPE_PIPE || (f->type == WB_TYPE_SOCKET && f->family == WB_FAMILY_UNIX);
        return !watched || fd_state_in_flight(c->fd, f->type) > 0;
}

/* Does the call's place pass the rule's site=? The executable answers to
 * its file's basename and to argv[0]'s, as with process=. */
static bool site_passes(const struct wb_rule *r, const struct wb_site *at)
{
        if (strcmp(r->site, at->module) != 0 && !(at->main && strcmp(r->site, process_argv0) == 0))
                return false;
        return !r->site_has_offset || r->site_offset == at->offset;
}

static enum wb_verdict decide(struct ruleset *rs, const struct wb_callinfo *c,
                              struct wb_decision *d);
static void commit(const struct wb_decision *d);

enum wb_verdict engine_decide(const struct wb_callinfo *c, struct wb_decision *d)
{
        enum wb_verdict v = decide(read_begin(), c, d);
        read_end();
        return v;
}

static enum wb_verdict decide(struct ruleset *rs, const struct wb_callinfo *c,
                              struct wb_decision *d)
{
        const uint32_t bit = WB_CALL_BIT(c->call);
        enum wb_verdict verdict = WB_PASS;
        struct wb_fdfacts f;
        int nonblocking = -1;
        struct wb_site at;
        bool located = false;
        struct wb_rec rec = {0, 0}; /* recording: the call's point */
        bool hold = atomic_load_explicit(&paused, memory_order_relaxed);

        if (!rs || !(rs->armed & bit))
                return WB_PASS;
        fd_state_get(c->fd, &f);
        if (record_active() && (f.type & WB_TYPE_DEFAULT)) {
                /* a hit: a call that a blocking=no rule would count */
                if (!(c->flags & MSG_DONTWAIT))
                        nonblocking = fd_state_nonblocking(c->fd, f.gen);
                site_lookup(c->site, &at);
                located = true;
                record_call(c, &f, (c->flags & MSG_DONTWAIT) || nonblocking, &at, &rec);
        }

        for (unsigned i = 0; i < rs->n; i++) {
                struct rule_rt *rt = &rs->r[i];
                const struct wb_rule *r = &rt->rule;
                struct slot *s = NULL;
                uint64_t n, done;
                unsigned fl = 0;
                bool forced = false;

                /* filters */
                if (!(r->calls & bit) || rt->inert)
                        continue;
                if ((r->fd >= 0 && r->fd != c->fd) || !(r->types & f.type) ||
                    (r->families && !(r->families & f.family)))
                        continue;
                if (r->port >= 0 &&
                    (unsigned)r->port !=
                        (c->addr ? fd_state_addr_port(c->addr, c->addrlen) : f.port))
                        continue;
                if (!r->blocking_any && !(c->flags & MSG_DONTWAIT)) {
                        if (nonblocking < 0)
                                nonblocking = fd_state_nonblocking(c->fd, f.gen);
                        if (!nonblocking)
                                continue;
                }
                if (r->site[0]) {
                        if (!located)
                                site_lookup(c->site, &at);
                        located = true;
                        if (!site_passes(r, &at))
                                continue;
                }
                if (f.tracked)
                        s = &rs->slots[(size_t)i * WB_FD_MAX + (size_t)c->fd];
                else if (!r->per_process)
                        continue; /* beyond the table: no per-fd scope to count in */

                /* count */
                if (r->per_process) {
                        n = atomic_fetch_add_explicit(&rt->proc_calls, 1, memory_order_relaxed) + 1;
                        done = atomic_load_explicit(&rt->proc_injected, memory_order_relaxed);
                } else {
                        n = tagged_bump(&s->calls, f.gen);
                        done = tagged_value(
                            atomic_load_explicit(&s->injected, memory_order_relaxed), f.gen);
                }
                counter_add(rt->counted, 1);
                if (verdict != WB_PASS || hold)
                        continue; /* decided already: the later rules only count */

                /* trigger */
                if (s) {
                        uint64_t w = atomic_load_explicit(&s->flags, memory_order_relaxed);
                        fl = flags_bits(w, f.gen);
                        if ((fl & FLAG_UNTIL) && flags_epoch(w) == fd_state_ready_epoch(c->fd))
                                forced = true;
                }
                if (!forced) {
                        if (r->max && done >= r->max)
                                continue;
                        if (!(fl & FLAG_DEFERRED)) {
                                if (r->n_when && !rule_when_matches(r, n))
                                        continue;
                                if (r->has_prob && !rt->prob_always &&
                                    prob_hash(rs->seed, i, r->per_process ? -1 : c->fd, n) >=
                                        rt->prob_threshold)
                                        continue;
                        }
                }

                /* what firing means for this call */
                if (r->action == WB_ACT_SHORT) {
                        /* only a cut Linux could make here and now (SPEC 4) */
                        size_t limit =
                            faithful_short_limit(c, &f, (size_t)r->short_n, &nonblocking);
                        if (!limit)
                                continue;
                        d->verdict = WB_SHORT;
                        d->limit = limit;
                        d->edge_owed = !r->edge_none;
                } else if (c->call == WB_CONNECT && !faithful_connect(&f)) {
                        continue; /* a datagram connect is never in progress */
                } else {
                        d->err = rule_errno(r, c->call, f.family);
                        if (d->err == EAGAIN && (bit & WB_GROUP_OUTPUT) && !r->inflight_any &&
                            !output_eagain_faithful(c, &f)) {
                                if (s && !(fl & FLAG_DEFERRED))
                                        flags_update(&s->flags, f.gen, FLAG_DEFERRED, 0, 0);
                                continue; /* deferred: the next rules are asked */
                        }
                        d->verdict = WB_FAIL;
                }

                d->rule = r;
                memcpy(d->scenario, r->scenario, sizeof d->scenario);
                d->line = r->line;
                d->per_process = r->per_process;
                d->set_ = rs;
                d->callno = n;
                d->family = f.family;
                d->sotype = f.sotype;
                d->rule_rt_ = rt;
                d->slot_ = s;
                d->gen_ = f.gen;
                d->fd_ = c->fd;
                d->rec_id_ = rec.id;
                d->rec_k_ = rec.k;
                if (s && (fl & FLAG_DEFERRED))
                        flags_update(&s->flags, f.gen, 0, FLAG_DEFERRED, 0);
                d->until_start_ = r->until_poll && !forced;
                verdict = d->verdict;
                if (verdict == WB_FAIL)
                        commit(d);
        }
        return verdict;
}

void engine_commit(const struct wb_decision *d)
{
        /* a short is committed after its real call, which may have taken
         * long: the set may have been replaced meanwhile (and its counts
         * with it) */
        if (read_begin() == d->set_)
                commit(d);
        read_end();
}

/* book an injection (inside a reader section, or in decide) */
static void commit(const struct wb_decision *d)
{
        struct rule_rt *rt = d->rule_rt_;
        struct slot *s = d->slot_;

        if (s && d->until_start_)
                flags_update(&s->flags, d->gen_, FLAG_UNTIL, 0, fd_state_ready_epoch(d->fd_));
        if (rt->rule.per_process)
                atomic_fetch_add_explicit(&rt->proc_injected, 1, memory_order_relaxed);
        else if (s)
                tagged_bump(&s->injected, d->gen_);
        counter_add(rt->injected, 1);
        record_injection(&(struct wb_rec){d->rec_id_, d->rec_k_}, d);
}
