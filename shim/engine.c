/* engine.c - the decision engine (see engine.h). */
#include "engine.h"

#include "counter.h"
#include "faithful.h"
#include "fdstate.h"
#include "real.h"
#include "record.h"
#include "site.h"
#include "status.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

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
        _Atomic uint64_t ordinal; /* the fd's name in prob=, see fd_ordinal */
};

struct rule_rt {
        struct wb_rule rule;
        bool inert; /* process= names another program */
        uint64_t prob_threshold;
        bool prob_always;
        _Atomic uint64_t proc_calls, proc_injected; /* the per=process scope */
        _Atomic uint64_t fds_counted;               /* ordinals given so far */
};

struct ruleset {
        struct ruleset *retired_next;
        unsigned n;
        uint32_t armed;
        _Atomic uint64_t seed; /* wouldblock_set_seed may change it */
        unsigned bank;         /* of the status (its totals, by shard) */
        size_t bytes;          /* of this mapping, slots included */
        struct slot *slots;    /* n * WB_FD_MAX, zero pages until touched */
        /* by call: the rules that name it and can fire in this process, in
         * order; a call walks only its own */
        uint8_t hot_n[WB_CALL_COUNT];
        uint8_t hot[WB_CALL_COUNT][WB_MAX_RULES];
        struct rule_rt r[];
};

/* in .data, not .bss: on the page of the real functions' table and the status
 * pointer, which the pass-through path touches anyway */
_Atomic uint32_t wb_engine_armed __attribute__((section(".data")));
static _Atomic(struct ruleset *) active;
/* Threads inside the engine right now, by counter shard (counter.h), and
 * the sets replaced but maybe still in use. A reader counts itself in
 * before it loads `active`, so once a swap has happened and every count is
 * seen at zero, no thread holds a replaced set. The order of that store and
 * load is what matters: with membarrier(2) registered, the writer makes
 * every thread pass a full barrier before it reads the counts, and a reader
 * needs only the compiler's ordering, no locked instruction (the shard is
 * its own, so a plain store counts it in; a signal handler nests inside and
 * restores the count before it returns). Without membarrier, readers fence.
 * The shared shard (threads beyond WB_SHARDS) counts with locked adds. */
static struct {
        _Atomic uint64_t n;
        char pad[64 - sizeof(uint64_t)];
} inside[WB_SHARD_COUNT];
static _Atomic bool asymmetric; /* membarrier registered: readers need no fence */
static _Atomic(struct ruleset *) retired;
static unsigned n_retired; /* writers are serialized (the API's lock, or a forked child) */
/* Replaced sets are reclaimed in batches: each attempt makes every thread
 * of the process pass a barrier (an interrupt on each CPU running one). */
#define RECLAIM_BATCH 16
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

static struct ruleset *read_begin(unsigned s)
{
#ifndef __SANITIZE_THREAD__ /* TSan knows no membarrier: it checks the locked form */
        if (__builtin_expect(s != WB_SHARD_SHARED, 1)) {
                atomic_store_explicit(&inside[s].n,
                                      atomic_load_explicit(&inside[s].n, memory_order_relaxed) + 1,
                                      memory_order_relaxed);
                if (__builtin_expect(atomic_load_explicit(&asymmetric, memory_order_relaxed), 1))
                        atomic_signal_fence(memory_order_seq_cst);
                else
                        atomic_thread_fence(memory_order_seq_cst);
                return atomic_load_explicit(&active, memory_order_acquire);
        }
#endif
        atomic_fetch_add_explicit(&inside[s].n, 1, memory_order_seq_cst);
        return atomic_load_explicit(&active, memory_order_seq_cst);
}

static void read_end(unsigned s)
{
#ifndef __SANITIZE_THREAD__
        if (__builtin_expect(s != WB_SHARD_SHARED, 1)) {
                atomic_store_explicit(&inside[s].n,
                                      atomic_load_explicit(&inside[s].n, memory_order_relaxed) - 1,
                                      memory_order_release);
                return;
        }
#endif
        atomic_fetch_sub_explicit(&inside[s].n, 1, memory_order_release);
}

void engine_hold(void)
{
        read_begin(counter_shard());
}

void engine_release(void)
{
        read_end(counter_shard());
}

/* Readers may skip their fence once membarrier's expedited form is ours
 * (Linux 4.14); called by the writer, before it publishes. Again in a
 * forked child, which may not inherit the registration. */
static void asymmetric_init(bool again)
{
        static bool tried;
        long cmds;

        if (tried && !again)
                return;
        tried = true;
        cmds = syscall(SYS_membarrier, WB_MEMBARRIER_CMD_QUERY, 0, 0);
        atomic_store(
            &asymmetric,
            cmds > 0 && (cmds & WB_MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
                syscall(SYS_membarrier, WB_MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0);
}

/* After a swap: has every thread left the replaced sets? */
static bool quiescent(void)
{
        uint64_t in = 0;

        if (atomic_load(&asymmetric) &&
            syscall(SYS_membarrier, WB_MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
                return false; /* readers did not fence: keep the sets */
        for (int i = 0; i < WB_SHARD_COUNT; i++)
                in += atomic_load_explicit(&inside[i].n, memory_order_seq_cst);
        return in == 0;
}

static void push_retired(struct ruleset *rs)
{
        rs->retired_next = atomic_load_explicit(&retired, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&retired, &rs->retired_next, rs,
                                                      memory_order_release, memory_order_relaxed))
                ;
}

static void retire(struct ruleset *rs)
{
        n_retired++;
        push_retired(rs);
}

/* Unmap the replaced sets if no thread is inside the engine; otherwise they
 * wait for the next swap. */
static void reclaim(void)
{
        struct ruleset *list;
        bool gone;

        if (n_retired < RECLAIM_BATCH)
                return;
        list = atomic_exchange_explicit(&retired, NULL, memory_order_acq_rel);
        gone = list && quiescent();
        if (gone)
                n_retired = 0;

        while (list) {
                struct ruleset *next = list->retired_next;
                if (gone)
                        munmap(list, list->bytes);
                else
                        push_retired(list);
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
        atomic_init(&rs->seed, seed);
        rs->bytes = bytes;
        rs->slots = (struct slot *)((char *)rs + head);
        bank = status_bank_prepare(rules, n, seed);
        rs->bank = status_bank_index(bank);
        asymmetric_init(false);
        for (unsigned i = 0; i < n; i++) {
                struct rule_rt *rt = &rs->r[i];
                rt->rule = rules[i];
                rt->inert = rules[i].process[0] && strcmp(rules[i].process, process_argv0) != 0 &&
                            strcmp(rules[i].process, process_exe) != 0;
                if (rules[i].has_prob)
                        rt->prob_threshold = prob_threshold(rules[i].prob, &rt->prob_always);
                if (rt->inert)
                        continue;
                rs->armed |= rules[i].calls;
                for (int call = 0; call < WB_CALL_COUNT; call++)
                        if (rules[i].calls & WB_CALL_BIT(call))
                                rs->hot[call][rs->hot_n[call]++] = (uint8_t)i;
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
        *counted = WB_STATUS_SUM(wb_status, counted[rs->bank][i]);
        *injected = WB_STATUS_SUM(wb_status, injected[rs->bank][i]);
        return &rs->r[i].rule;
}

uint64_t engine_seed(void)
{
        struct ruleset *rs = atomic_load_explicit(&active, memory_order_acquire);
        return rs ? atomic_load_explicit(&rs->seed, memory_order_relaxed) : 1;
}

void engine_restart_counts(void)
{
        /* the only thread of a forked child: the parent's other threads,
         * counted inside the engine at the fork, are not here */
        for (int i = 0; i < WB_SHARD_COUNT; i++)
                atomic_store(&inside[i].n, 0);
        counter_fork_child();
        asymmetric_init(true);
        engine_reseed(engine_seed());
}

int engine_reseed(uint64_t seed)
{
        /* static: the forking thread's stack may be small; callers are the
         * only thread of a forked child, or serialized by the API's lock */
        static struct wb_rule rules[WB_MAX_RULES];
        struct ruleset *rs = atomic_load_explicit(&active, memory_order_acquire);

        if (!rs)
                return 0;
        for (unsigned i = 0; i < rs->n; i++)
                rules[i] = rs->r[i].rule;
        return engine_install(rules, rs->n, seed);
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

/* The name of this fd in the rule's prob= scope: the order in which the rule
 * first counted it (1, 2, ...), never its number, so a run reproduces with
 * other fds inherited (SPEC §3). Tagged with the fd generation: a reused
 * number is a new fd. Two threads naming the same fd at once agree on the
 * first ordinal stored; the loser's number is skipped (only a program racing
 * its own first calls on one fd sees that). */
static uint64_t fd_ordinal(struct rule_rt *rt, struct slot *s, uint32_t gen)
{
        uint64_t w = atomic_load_explicit(&s->ordinal, memory_order_relaxed), v, nw;

        if ((v = tagged_value(w, gen)))
                return v;
        v = atomic_fetch_add_explicit(&rt->fds_counted, 1, memory_order_relaxed) + 1;
        nw = (uint64_t)gen << TAG_SHIFT | (v & VALUE_MASK);
        while (!atomic_compare_exchange_weak_explicit(&s->ordinal, &w, nw, memory_order_relaxed,
                                                      memory_order_relaxed))
                if (tagged_value(w, gen))
                        return tagged_value(w, gen);
        return v;
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
        unsigned s = counter_shard();
        enum wb_verdict v = decide(read_begin(s), c, d);
        read_end(s);
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
        unsigned shard = 0;
        bool shard_known = false;

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

        for (unsigned h = 0, nh = rs->hot_n[c->call]; h < nh; h++) {
                const unsigned i = rs->hot[c->call][h];
                struct rule_rt *rt = &rs->r[i];
                const struct wb_rule *r = &rt->rule;
                struct slot *s = NULL;
                uint64_t n, done = 0, scope = 0;
                unsigned fl = 0;
                bool forced = false;

                /* filters */
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

                /* count: the call number is the one locked instruction (threads
                 * share fds); injections in the scope are kept only for max= */
                if (r->per_process) {
                        n = atomic_fetch_add_explicit(&rt->proc_calls, 1, memory_order_relaxed) + 1;
                        if (r->max)
                                done =
                                    atomic_load_explicit(&rt->proc_injected, memory_order_relaxed);
                } else {
                        n = tagged_bump(&s->calls, f.gen);
                        if (r->max)
                                done = tagged_value(
                                    atomic_load_explicit(&s->injected, memory_order_relaxed),
                                    f.gen);
                        if (r->has_prob)
                                scope = fd_ordinal(rt, s, f.gen);
                }
                if (!shard_known) {
                        shard = counter_shard();
                        shard_known = true;
                }
                counter_bump(&wb_status->shard[shard].counted[rs->bank][i], shard, 1);
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
                                    prob_hash(atomic_load_explicit(&rs->seed, memory_order_relaxed),
                                              i, r->per_process ? -1 : (int64_t)scope,
                                              n) >= rt->prob_threshold)
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
                        if (d->err == EAGAIN && engine_call_writes(c) && !r->inflight_any &&
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
        unsigned s = counter_shard();
        if (read_begin(s) == d->set_)
                commit(d);
        read_end(s);
}

/* book an injection (inside a reader section, or in decide) */
static void commit(const struct wb_decision *d)
{
        struct rule_rt *rt = d->rule_rt_;
        struct slot *s = d->slot_;

        if (s && d->until_start_)
                flags_update(&s->flags, d->gen_, FLAG_UNTIL, 0, fd_state_ready_epoch(d->fd_));
        unsigned shard = counter_shard();

        if (!rt->rule.max)
                ; /* only max= reads the count of its scope */
        else if (rt->rule.per_process)
                atomic_fetch_add_explicit(&rt->proc_injected, 1, memory_order_relaxed);
        else if (s)
                tagged_bump(&s->injected, d->gen_);
        counter_bump(&wb_status->shard[shard].injected[((const struct ruleset *)d->set_)->bank]
                                                      [rt - ((const struct ruleset *)d->set_)->r],
                     shard, 1);
        record_injection(&(struct wb_rec){d->rec_id_, d->rec_k_}, d);
}
