/* engine.c - the decision engine (see engine.h). */
#include "engine.h"

#include "boot.h"
#include "counter.h"
#include "faithful.h"
#include "fdstate.h"
#include "fmt.h"
#include "real.h"
#include "record.h"
#include "report.h"
#include "site.h"
#include "status.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef MADV_POPULATE_WRITE
#define WB_MADV_POPULATE_WRITE MADV_POPULATE_WRITE
#else
#define WB_MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

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

/* Which of the rarer steps a rule takes (rule_rt.check). */
#define CHECK_NONBLOCKING 0x001u /* blocking=no: only calls that could would-block */
#define CHECK_SITE 0x002u
#define CHECK_PER_PROCESS 0x004u
#define CHECK_MAX 0x008u
#define CHECK_PROB 0x010u /* prob= below 1 */
#define CHECK_WHEN 0x020u
#define CHECK_UNTIL 0x040u
#define CHECK_SHORT 0x080u
#define CHECK_INFLIGHT_ANY 0x100u
#define CHECK_EDGE_NONE 0x200u
#define CHECK_WHEN_MORE 0x400u /* when= has more than its first range */

/* A rule as a counted call reads it, packed into two cache lines: the
 * whole rule (over a kilobyte with its texts) is behind `rule`, for the
 * rarer steps and the log. */
struct rule_rt {
        uint64_t kinds[4]; /* bit (type | family << 5) of the fds types= and family= let through */
        int fd;            /* fd=, -1: any */
        int port;          /* port=, -1: any */
        uint32_t check;    /* CHECK_* */
        int err;           /* errno=, else EAGAIN (a connect's default is its own) */
        uint64_t max;
        uint64_t prob_threshold;
        struct wb_when when; /* when='s first range */
        const struct wb_rule *rule;
        bool inert;                                 /* process= names another program */
        _Atomic uint64_t proc_calls, proc_injected; /* the per=process scope */
        _Atomic uint64_t fds_counted;               /* ordinals given so far */
};

/* The fd's kind, as rule_rt.kinds indexes it: type and family are one bit each. */
static inline unsigned fd_kind(const struct wb_fdfacts *f)
{
        return (f->type | f->family << 5) & 0xff;
}

struct ruleset {
        struct ruleset *retired_next;
        unsigned n;
        uint32_t armed;
        bool recording;        /* WOULDBLOCK_RECORD: every call is seen first */
        uint32_t id;           /* which install made it: never reused, unlike its address */
        _Atomic uint64_t seed; /* wouldblock_set_seed may change it */
        unsigned bank;         /* of the status (its totals, by shard) */
        size_t bytes;          /* of this mapping, slots included */
        struct slot *slots;    /* n * WB_FD_MAX, zero pages until touched */
        /* The slots of fds below near_fds, rule by rule (n * near_fds), on
         * the set's first page after r[n] and the hot lists, where a
         * counted call reads its rule: one page, not two, between two
         * system calls (status.h).
         * As many fds as that page has room for, up to NEAR_FDS_MAX, and
         * never a page more (engine_install). */
        unsigned near_fds;
        struct slot *near;
        /* by call: the rules that name it and can fire in this process, in
         * order, hot[hot_at[call]] to hot[hot_at[call + 1]]; a call walks
         * only its own. One list for all calls, after r[n]: a table of
         * every call by every possible rule was 1.7 KB, a page more for the
         * whole library's 21 rules. */
        uint16_t hot_at[WB_CALL_COUNT + 1];
        const uint8_t *hot;
        /* n of them: the caller's own when they last as long as the
         * process (engine_install's `lasting`), else a copy in this mapping
         * after near */
        const struct wb_rule *rules;
        bool lasting;
        struct rule_rt r[];
};
#define NEAR_FDS_MAX 64u

/* The slot of (rule i, fd): near, or in the big table. */
static inline struct slot *slot_of(const struct ruleset *rs, unsigned i, int fd)
{
        if (__builtin_expect((unsigned)fd < rs->near_fds, 1))
                return &rs->near[(size_t)i * rs->near_fds + (size_t)fd];
        return &rs->slots[(size_t)i * WB_FD_MAX + (size_t)fd];
}

/* WB_BOOT: in .data, on the page of the real functions' table and the
 * status pointer, which the pass-through path touches anyway */
_Atomic uint32_t wb_engine_armed WB_BOOT;
static _Atomic(struct ruleset *) active WB_BOOT;
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
} inside[WB_SHARDS + 1];
/* the only thread's (WB_SHARD_SINGLE), on the .data page the wrappers read
 * anyway: its own page would be one more TLB miss per armed call */
static _Atomic uint64_t inside_single WB_BOOT;
static inline _Atomic uint64_t *inside_of(unsigned s)
{
        return __builtin_expect(s == WB_SHARD_SINGLE, 1) ? &inside_single : &inside[s].n;
}
static _Atomic bool asymmetric WB_BOOT; /* membarrier registered: readers need no fence */
static _Atomic(struct ruleset *) retired WB_BOOT;
static unsigned n_retired WB_BOOT; /* writers are serialized (the API's lock, or a forked child) */
/* Replaced sets are reclaimed in batches: each attempt makes every thread
 * of the process pass a barrier (an interrupt on each CPU running one). */
#define RECLAIM_BATCH 16
static _Atomic bool paused WB_BOOT;
/* A pause of one thread's own calls (wouldblock_pause_thread): its own
 * variable, so setting it is one store, safe in a signal handler and free
 * of any lock; a forked child keeps the forking thread's. */
static __thread bool thread_paused __attribute__((tls_model("initial-exec")));
static uint32_t installs WB_BOOT; /* writers are serialized */
static char process_argv0[WB_NAME_MAX] WB_BOOT, process_exe[WB_NAME_MAX] WB_BOOT;

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

static inline __attribute__((always_inline)) struct ruleset *read_begin(unsigned s)
{
#ifndef __SANITIZE_THREAD__ /* TSan knows no membarrier: it checks the locked form */
        if (__builtin_expect(s != WB_SHARD_SHARED, 1)) {
                atomic_store_explicit(inside_of(s),
                                      atomic_load_explicit(inside_of(s), memory_order_relaxed) + 1,
                                      memory_order_relaxed);
                if (__builtin_expect(atomic_load_explicit(&asymmetric, memory_order_relaxed), 1))
                        atomic_signal_fence(memory_order_seq_cst);
                else
                        atomic_thread_fence(memory_order_seq_cst);
                return atomic_load_explicit(&active, memory_order_acquire);
        }
#endif
        atomic_fetch_add_explicit(inside_of(s), 1, memory_order_seq_cst);
        return atomic_load_explicit(&active, memory_order_seq_cst);
}

static inline __attribute__((always_inline)) void read_end(unsigned s)
{
#ifndef __SANITIZE_THREAD__
        if (__builtin_expect(s != WB_SHARD_SHARED, 1)) {
                atomic_store_explicit(inside_of(s),
                                      atomic_load_explicit(inside_of(s), memory_order_relaxed) - 1,
                                      memory_order_release);
                return;
        }
#endif
        atomic_fetch_sub_explicit(inside_of(s), 1, memory_order_release);
}

/* Readers may skip their fence once membarrier's expedited form is ours
 * (Linux 4.14); called by the writer, before it publishes. Again in a
 * forked child, which may not inherit the registration. */
static void asymmetric_init(bool again)
{
        static bool tried WB_BOOT;

        if (tried && !again)
                return;
        tried = true;
        /* no QUERY first: a kernel without the expedited form refuses to
         * register it (EINVAL, or ENOSYS without membarrier at all) */
        atomic_store(&asymmetric, syscall(SYS_membarrier,
                                          WB_MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0);
}

/* After a swap: has every thread left the replaced sets? */
static bool quiescent(void)
{
        uint64_t in = 0;

        if (atomic_load(&asymmetric) &&
            syscall(SYS_membarrier, WB_MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
                return false; /* readers did not fence: keep the sets */
        for (unsigned i = 0; i < WB_SHARD_COUNT; i++)
                in += atomic_load_explicit(inside_of(i), memory_order_seq_cst);
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
        argv0 = argv0 ? argv0 : "";
        exe = exe ? exe : "";
        fmt_copy(process_argv0, sizeof process_argv0, argv0, strlen(argv0));
        fmt_copy(process_exe, sizeof process_exe, exe, strlen(exe));
}

/* The seed while no set is installed (engine_seed). */
static uint64_t none_seed WB_BOOT = 1;

/* No rule and no recording: no set at all, rather than an empty one, which
 * was a mapping and a page fault at every start without rules. decide()
 * passes every call when there is none; the seed is kept for engine_seed
 * and the status bank, as an empty set kept it. */
static int install_none(uint64_t seed)
{
        struct wb_status_bank *bank = status_bank_prepare(NULL, 0, seed);
        struct ruleset *old;

        asymmetric_init(false);
        none_seed = seed;
        old = atomic_exchange_explicit(&active, NULL, memory_order_seq_cst);
        atomic_store_explicit(&wb_engine_armed, 0, memory_order_release);
        status_bank_publish(bank);
        if (old)
                retire(old);
        reclaim();
        return 0;
}

/* The kinds (fd_kind: type | family << 5) a rule's type= and family= let
 * through: a type passes if it shares a bit with types, a family if
 * families is 0 (any) or shares a bit with it. One 32-bit row of types,
 * then a row per family: 40 steps a rule, not 256. */
static void kinds_build(uint64_t kinds[4], unsigned types, unsigned families)
{
        uint64_t row = 0;

        for (unsigned t = 0; t < 32; t++)
                if (types & t)
                        row |= 1ull << t;
        for (unsigned f = 0; f < 8; f++)
                if (!families || (families & f))
                        kinds[f >> 1] |= row << (f & 1) * 32;
}

/* How many (call, rule) pairs the set's hot lists can hold. */
static size_t hot_entries(const struct wb_rule *rules, unsigned n)
{
        size_t total = 0;

        for (unsigned i = 0; i < n; i++)
                total += (size_t)__builtin_popcount(rules[i].calls & WB_GROUP_ALL);
        return total;
}

/* The calls' lists of the rules that can fire, in rule order. */
static void hot_build(struct ruleset *rs, uint8_t *hot)
{
        uint16_t at = 0;

        for (int call = 0; call < WB_CALL_COUNT; call++) {
                rs->hot_at[call] = at;
                for (unsigned i = 0; i < rs->n; i++)
                        if (!rs->r[i].inert && (rs->rules[i].calls & WB_CALL_BIT(call)))
                                hot[at++] = (uint8_t)i;
        }
        rs->hot_at[WB_CALL_COUNT] = at;
        rs->hot = hot;
}

int engine_install(const struct wb_rule *rules, unsigned n, uint64_t seed, bool lasting)
{
        const size_t page = 4096, align = _Alignof(struct slot);
        /* the set's first part: itself, the compact rules, the hot lists */
        const size_t lists = sizeof(struct ruleset) + n * sizeof(struct rule_rt),
                     first = (lists + hot_entries(rules, n) + align - 1) & ~(align - 1),
                     rest = first + (lasting ? 0 : n * sizeof(struct wb_rule));
        /* room for the near slots: on the first page, and in what the head
         * leaves free of its last page (they cost no page more) */
        size_t room = ((rest + page - 1) & ~(page - 1)) - rest;
        size_t head, slots = (size_t)n * WB_FD_MAX * sizeof(struct slot), bytes;
        unsigned near_fds;
        struct ruleset *rs, *old;
        struct wb_status_bank *bank;
        struct wb_rule *copy;

        if (n > WB_MAX_RULES) {
                errno = EINVAL;
                return -1;
        }
        if (!n && !record_active())
                return install_none(seed);
        if (first >= page)
                room = 0;
        else if (page - first < room)
                room = page - first;
        near_fds = n ? (unsigned)(room / (n * sizeof(struct slot))) : 0; /* n = 0: recording */
        if (near_fds > NEAR_FDS_MAX)
                near_fds = NEAR_FDS_MAX;
        head = rest + (size_t)n * near_fds * sizeof(struct slot);
        head = (head + page - 1) & ~(page - 1);
        bytes = head + slots;
        /* mmap, not malloc: this also runs in a forked child of a threaded
         * parent, where malloc's locks may be held by threads that are gone. */
        rs = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                  -1, 0);
        if (rs == MAP_FAILED)
                return -1;
        if (head > page) {
                /* the head is written whole just below: one call makes its
                 * pages, cheaper than a fault each (half the time in a VM);
                 * a kernel without it (< 5.14) faults them in as before */
                int saved = errno;
                madvise(rs, head, WB_MADV_POPULATE_WRITE);
                errno = saved;
        }
        rs->n = n;
        atomic_init(&rs->seed, seed);
        rs->bytes = bytes;
        rs->slots = (struct slot *)((char *)rs + head);
        rs->near_fds = near_fds;
        rs->near = (struct slot *)((char *)rs + first);
        copy = (struct wb_rule *)&rs->near[(size_t)n * near_fds];
        if (!lasting)
                for (unsigned i = 0; i < n; i++)
                        copy[i] = rules[i];
        rs->rules = lasting ? rules : copy;
        rs->lasting = lasting;
        bank = status_bank_prepare(rules, n, seed);
        rs->bank = status_bank_index(bank);
        asymmetric_init(false);
        for (unsigned i = 0; i < n; i++) {
                struct rule_rt *rt = &rs->r[i];
                const struct wb_rule *r = &rs->rules[i];
                bool always = false;
                rt->rule = r;
                rt->inert = r->process[0] && strcmp(r->process, process_argv0) != 0 &&
                            strcmp(r->process, process_exe) != 0;
                kinds_build(rt->kinds, r->types, r->families);
                rt->fd = r->fd;
                rt->port = r->port;
                rt->err = r->err ? r->err : EAGAIN;
                rt->max = r->max;
                if (r->has_prob)
                        rt->prob_threshold = prob_threshold(r->prob, &always);
                if (r->n_when)
                        rt->when = r->when[0];
                rt->check =
                    (r->blocking_any ? 0 : CHECK_NONBLOCKING) | (r->site[0] ? CHECK_SITE : 0) |
                    (r->per_process ? CHECK_PER_PROCESS : 0) | (r->max ? CHECK_MAX : 0) |
                    (r->has_prob && !always ? CHECK_PROB : 0) | (r->n_when ? CHECK_WHEN : 0) |
                    (r->n_when > 1 ? CHECK_WHEN_MORE : 0) | (r->until_poll ? CHECK_UNTIL : 0) |
                    (r->action == WB_ACT_SHORT ? CHECK_SHORT : 0) |
                    (r->inflight_any ? CHECK_INFLIGHT_ANY : 0) |
                    (r->edge_none ? CHECK_EDGE_NONE : 0);
                if (!rt->inert)
                        rs->armed |= r->calls;
        }
        hot_build(rs, (uint8_t *)&rs->r[n]);
        rs->recording = record_active();
        rs->id = ++installs;
        if (rs->recording)
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

bool engine_pause_thread(bool p)
{
        bool was = thread_paused;
        thread_paused = p;
        return was;
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
        return &rs->rules[i];
}

uint64_t engine_seed(void)
{
        struct ruleset *rs = atomic_load_explicit(&active, memory_order_acquire);
        return rs ? atomic_load_explicit(&rs->seed, memory_order_relaxed) : none_seed;
}

void engine_restart_counts(void)
{
        /* the only thread of a forked child: the parent's other threads,
         * counted inside the engine at the fork, are not here */
        for (unsigned i = 0; i < WB_SHARD_COUNT; i++)
                atomic_store(inside_of(i), 0);
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
                return install_none(seed);
        if (rs->lasting)
                return engine_install(rs->rules, rs->n, seed, true);
        for (unsigned i = 0; i < rs->n; i++)
                rules[i] = rs->rules[i];
        return engine_install(rules, rs->n, seed, false);
}

/* ---- tagged counters ---- */

static uint64_t tagged_value(uint64_t w, uint32_t gen)
{
        return (uint32_t)(w >> TAG_SHIFT) == gen ? (w & VALUE_MASK) : 0;
}

/* Add one to a count that threads share; its value before. With one
 * thread (counter_single_threaded, glibc's flag) no other CPU writes here,
 * and an exchange-and-add without the lock prefix is still one instruction,
 * which a signal handler on this thread cannot split: each call still gets
 * its own number. The flag goes from true to false only inside
 * pthread_create, which is not in the middle of this. Otherwise (threads,
 * musl, TSan): the locked form. */
static inline uint64_t shared_add1(_Atomic uint64_t *w)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
        if (__builtin_expect(counter_single_threaded(), 1)) {
                uint64_t old = 1;
                __asm__ volatile("xaddq %0, %1" : "+r"(old), "+m"(*(uint64_t *)w));
                return old;
        }
#endif
        return atomic_fetch_add_explicit(w, 1, memory_order_relaxed);
}

/* A stale generation (a reused fd number, once per file): the add went to
 * a count nobody reads; start this generation's at 1. */
static __attribute__((noinline, cold)) uint64_t tagged_restart(_Atomic uint64_t *w, uint32_t gen)
{
        uint64_t old = atomic_load_explicit(w, memory_order_relaxed), nw;
        do
                nw = (uint64_t)gen << TAG_SHIFT | ((tagged_value(old, gen) + 1) & VALUE_MASK);
        while (!atomic_compare_exchange_weak_explicit(w, &old, nw, memory_order_relaxed,
                                                      memory_order_relaxed));
        return nw & VALUE_MASK;
}

static inline __attribute__((always_inline)) uint64_t tagged_bump(_Atomic uint64_t *w, uint32_t gen)
{
        uint64_t old = shared_add1(w);

        /* the common case: the count is this fd generation's */
        if (__builtin_expect((uint32_t)(old >> TAG_SHIFT) == gen, 1))
                return (old + 1) & VALUE_MASK;
        return tagged_restart(w, gen);
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
static __attribute__((noinline)) uint64_t fd_ordinal(struct rule_rt *rt, struct slot *s,
                                                     uint32_t gen)
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

/* Does when= pick call n? Its first range inline: one range is the common
 * form (explore's points among them); no division for a step of 1. */
static inline bool when_picks(const struct rule_rt *rt, uint64_t n)
{
        const struct wb_when *w = &rt->when;
        if (n >= w->first && n <= w->last && (w->step == 1 || (n - w->first) % w->step == 0))
                return true;
        /* the whole rule only for more ranges: it is on another page */
        return (rt->check & CHECK_WHEN_MORE) && rule_when_matches(rt->rule, n);
}

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

/* A thread's answers to "does site= pass a call from this address",
 * worked out once per (address, rule) while the table of loaded objects
 * stays the same: a lookup and a name comparison cost more than the rest
 * of a counted call. Direct-mapped by address; a program loops over a few
 * call places. The thread's own, so a hit takes no locked instruction.
 * A signal handler on the thread may ask (and write) in the middle of an
 * outer read or write: `writes` is odd while an entry is written (the
 * handler then asks the table itself) and moves on every write, so a read
 * that a write interrupted is not believed. */
#define MEMO_SLOTS 8
struct site_memo {
        uintptr_t addr; /* 0: empty */
        uint32_t set;   /* ruleset id (ids start at 1) */
        uint32_t epoch; /* site_epoch() read before the lookup */
        uint8_t rule;
        bool passes;
};
struct site_memos {
        struct site_memo slot[MEMO_SLOTS];
        _Atomic unsigned writes;
};
static __thread struct site_memos memo_own __attribute__((tls_model("initial-exec")));
/* The only thread's (counter_single_threaded), on the .data page a counted
 * call reads anyway: the thread's own would be two pages more between two
 * system calls, the GOT's entry of its TLS offset and the TLS block. The
 * process never had another thread, so no other thread ever uses it; the
 * flag turns false inside pthread_create, after which this thread uses its
 * own (an answer is kept in either, never needed in both). */
static struct site_memos memo_single WB_BOOT;

/* Out of line: its GOT load is not hoisted into the single thread's path. */
static __attribute__((noinline)) struct site_memos *memo_of_thread(void)
{
        return &memo_own;
}

static bool site_allows(const struct ruleset *rs, unsigned i, const void *site, struct wb_site *at,
                        bool *located)
{
        const uintptr_t a = (uintptr_t)site;
        struct site_memos *mm = counter_single_threaded() ? &memo_single : memo_of_thread();
        struct site_memo *m = &mm->slot[(a * 0x9e3779b97f4a7c15ull) >> 61], e;
        const unsigned epoch = site_epoch();
        unsigned w = atomic_load_explicit(&mm->writes, memory_order_relaxed);
        bool passes;

        if (!(w & 1)) {
                e = *m;
                atomic_signal_fence(memory_order_seq_cst);
                if (atomic_load_explicit(&mm->writes, memory_order_relaxed) == w && e.addr == a &&
                    e.set == rs->id && e.rule == i && e.epoch == epoch)
                        return e.passes;
        }
        if (!*located)
                site_lookup(site, at);
        *located = true;
        passes = site_passes(&rs->rules[i], at);
        /* a miss: the locked adds are off the common path */
        if (!(atomic_load_explicit(&mm->writes, memory_order_relaxed) & 1)) {
                atomic_fetch_add_explicit(&mm->writes, 1, memory_order_relaxed);
                atomic_signal_fence(memory_order_seq_cst);
                *m = (struct site_memo){a, rs->id, epoch, (uint8_t)i, passes};
                atomic_signal_fence(memory_order_seq_cst);
                atomic_fetch_add_explicit(&mm->writes, 1, memory_order_relaxed);
        }
        return passes;
}

/* What decide learns about a call as it asks the rules, for their rarer
 * steps. */
struct asking {
        const struct wb_callinfo *c;
        struct wb_fdfacts f;
        int nonblocking; /* -1: not asked yet */
        bool located;    /* at is looked up */
        struct wb_site at;
        struct wb_rec rec; /* recording: the call's point */
};

static inline void commit(const struct wb_decision *d, unsigned shard);

/* Recording: every call a blocking=no rule would count is a hit of its
 * point, seen before the rules are asked. */
static __attribute__((noinline, cold)) void record_seen(struct asking *a)
{
        const struct wb_callinfo *c = a->c;

        if (!(c->flags & MSG_DONTWAIT))
                a->nonblocking = fd_state_nonblocking(c->fd, a->f.gen);
        site_lookup(c->site, &a->at);
        a->located = true;
        record_call(c, &a->f, (c->flags & MSG_DONTWAIT) || a->nonblocking, &a->at, &a->rec);
}

/* Rule i picked the call (n: its number in the rule's scope; fl: the slot's
 * flags; forced: an until=poll run goes on): what firing means for this
 * call, only what Linux could do here and now (SPEC §4). WB_PASS when it
 * cannot fire (the next rules are asked); else d is filled, and a WB_FAIL
 * committed. Inline: out of line, the call with its nine arguments made an
 * injected read 7-10 ns slower (30-34 ns, not 23), for the half page of
 * code it kept off a counted call's pages. */
static inline __attribute__((always_inline)) enum wb_verdict
fire(struct ruleset *rs, unsigned i, struct asking *a, struct slot *s, uint64_t n, unsigned fl,
     bool forced, struct wb_decision *d, unsigned shard)
{
        const struct wb_callinfo *c = a->c;
        const struct wb_fdfacts *f = &a->f;
        struct rule_rt *rt = &rs->r[i];
        const unsigned check = rt->check;

        if (check & CHECK_SHORT) {
                size_t limit =
                    faithful_short_limit(c, f, (size_t)rt->rule->short_n, &a->nonblocking);
                if (!limit)
                        return WB_PASS;
                d->verdict = WB_SHORT;
                d->limit = limit;
                d->edge_owed = !(check & CHECK_EDGE_NONE);
        } else if (c->call == WB_CONNECT && !faithful_connect(f)) {
                return WB_PASS; /* a datagram connect is never in progress */
        } else {
                d->err = c->call == WB_CONNECT ? rule_errno(rt->rule, c->call, f->family) : rt->err;
                if (d->err == EAGAIN && engine_call_writes(c) && !(check & CHECK_INFLIGHT_ANY) &&
                    !output_eagain_faithful(c, f)) {
                        if (s && !(fl & FLAG_DEFERRED))
                                flags_update(&s->flags, f->gen, FLAG_DEFERRED, 0, 0);
                        return WB_PASS; /* deferred: the next rules are asked */
                }
                d->verdict = WB_FAIL;
        }

        d->rule = rt->rule;
        if (report_logging()) /* the set may be gone when the line is written */
                memcpy(d->scenario, rt->rule->scenario, sizeof d->scenario);
        d->line = rt->rule->line;
        d->per_process = check & CHECK_PER_PROCESS;
        d->callno = n;
        d->set_ = rs;
        d->family = f->family;
        d->sotype = f->sotype;
        d->rule_rt_ = rt;
        d->slot_ = s;
        d->gen_ = f->gen;
        d->fd_ = c->fd;
        d->rec_id_ = a->rec.id;
        d->rec_k_ = a->rec.k;
        if (s && (fl & FLAG_DEFERRED))
                flags_update(&s->flags, f->gen, 0, FLAG_DEFERRED, 0);
        d->until_start_ = (check & CHECK_UNTIL) && !forced;
        if (d->verdict == WB_FAIL)
                commit(d, shard);
        return d->verdict;
}

/* Does prob= pick call n of rule i (scope: the fd's ordinal, or -1 per
 * process)? */
static __attribute__((noinline)) bool prob_picks(const struct ruleset *rs, unsigned i,
                                                 int64_t scope, uint64_t n)
{
        return prob_hash(atomic_load_explicit(&rs->seed, memory_order_relaxed), i, scope, n) <
               rs->r[i].prob_threshold;
}

void engine_commit(const struct wb_decision *d)
{
        /* a short is committed after its real call, which may have taken
         * long: the set may have been replaced meanwhile (and its counts
         * with it) */
        unsigned s = counter_shard();
        if (read_begin(s) == d->set_)
                commit(d, s);
        read_end(s);
}

/* book an injection (inside a reader section, or in decide) */
static inline __attribute__((always_inline)) void commit(const struct wb_decision *d,
                                                         unsigned shard)
{
        struct rule_rt *rt = d->rule_rt_;
        struct slot *s = d->slot_;

        if (s && d->until_start_)
                flags_update(&s->flags, d->gen_, FLAG_UNTIL, 0, fd_state_ready_epoch(d->fd_));

        if (!(rt->check & CHECK_MAX))
                ; /* only max= reads the count of its scope */
        else if (rt->check & CHECK_PER_PROCESS)
                shared_add1(&rt->proc_injected);
        else if (s)
                tagged_bump(&s->injected, d->gen_);
        WB_STATUS_BUMP(shard, injected[((const struct ruleset *)d->set_)->bank]
                                      [rt - ((const struct ruleset *)d->set_)->r]);
        if (d->rec_id_)
                record_injection(&(struct wb_rec){d->rec_id_, d->rec_k_}, d);
}

/* ---- the hot path ----
 *
 * engine_decide starts a page of its own (shim/hot.ld): a counted read,
 * write, recv or send that does not fire runs it and the page of its
 * public function, armed half and finish, two pages of code (each page
 * between two system calls is a TLB miss here, status.h). The rarer steps
 * a counted call takes are out of line above. */

static inline __attribute__((always_inline)) enum wb_verdict
decide(struct ruleset *rs, const struct wb_callinfo *c, struct wb_decision *d, unsigned shard)
{
        const uint32_t bit = WB_CALL_BIT(c->call);
        enum wb_verdict verdict = WB_PASS;
        struct asking a;
        bool hold = atomic_load_explicit(&paused, memory_order_relaxed);
        unsigned kind;

        if (!rs || !(rs->armed & bit))
                return WB_PASS;
        a.c = c;
        a.nonblocking = -1;
        a.located = false;
        a.rec = (struct wb_rec){0, 0};
        fd_state_get(c->fd, &a.f);
        if (__builtin_expect(rs->recording, 0) && (a.f.type & WB_TYPE_DEFAULT))
                record_seen(&a);
        kind = fd_kind(&a.f);

        for (const uint8_t *h = rs->hot + rs->hot_at[c->call],
                           *end = rs->hot + rs->hot_at[c->call + 1];
             h < end; h++) {
                const unsigned i = *h;
                struct rule_rt *rt = &rs->r[i];
                const unsigned check = rt->check;
                struct slot *s = NULL;
                uint64_t n, done = 0, scope = 0;
                unsigned fl = 0;
                bool forced = false;

                /* filters */
                if ((rt->fd >= 0 && rt->fd != c->fd) || !(rt->kinds[kind >> 6] >> (kind & 63) & 1))
                        continue;
                if (rt->port >= 0 &&
                    (unsigned)rt->port !=
                        (c->addr ? fd_state_addr_port(c->addr, c->addrlen) : a.f.port))
                        continue;
                if (__builtin_expect((check & CHECK_NONBLOCKING) && !(c->flags & MSG_DONTWAIT),
                                     1)) {
                        if (__builtin_expect(a.nonblocking < 0, 1))
                                a.nonblocking = fd_state_nonblocking(c->fd, a.f.gen);
                        if (!a.nonblocking)
                                continue;
                }
                if ((check & CHECK_SITE) && !site_allows(rs, i, c->site, &a.at, &a.located))
                        continue;
                if (a.f.tracked)
                        s = slot_of(rs, i, c->fd);
                else if (!(check & CHECK_PER_PROCESS))
                        continue; /* beyond the table: no per-fd scope to count in */

                /* count (the call number: threads share fds); injections in
                 * the scope are kept only for max= */
                if (check & CHECK_PER_PROCESS) {
                        n = shared_add1(&rt->proc_calls) + 1;
                        if (check & CHECK_MAX)
                                done =
                                    atomic_load_explicit(&rt->proc_injected, memory_order_relaxed);
                } else {
                        n = tagged_bump(&s->calls, a.f.gen);
                        if (check & CHECK_MAX)
                                done = tagged_value(
                                    atomic_load_explicit(&s->injected, memory_order_relaxed),
                                    a.f.gen);
                        if (check & CHECK_PROB) /* named when first counted (SPEC §3) */
                                scope = fd_ordinal(rt, s, a.f.gen);
                }
                WB_STATUS_BUMP(shard, counted[rs->bank][i]);
                if (verdict != WB_PASS || hold)
                        continue; /* decided already: the later rules only count */

                /* trigger */
                if (s) {
                        uint64_t w = atomic_load_explicit(&s->flags, memory_order_relaxed);
                        fl = flags_bits(w, a.f.gen);
                        if ((fl & FLAG_UNTIL) && flags_epoch(w) == fd_state_ready_epoch(c->fd))
                                forced = true;
                }
                if (!forced) {
                        if ((check & CHECK_MAX) && done >= rt->max)
                                continue;
                        if (!(fl & FLAG_DEFERRED)) {
                                /* a when= counts most calls it does not pick */
                                if (__builtin_expect(check & CHECK_WHEN, CHECK_WHEN) &&
                                    __builtin_expect(!when_picks(rt, n), 1))
                                        continue;
                                if ((check & CHECK_PROB) &&
                                    !prob_picks(rs, i,
                                                (check & CHECK_PER_PROCESS) ? -1 : (int64_t)scope,
                                                n))
                                        continue;
                        }
                }
                /* a cold label: the firing is laid out after the counting
                 * above, which every armed call runs (1.7 KB, not 3.7) */
        fires:
                __attribute__((cold, unused));
                /* a thread's own pause, asked here: its read (the GOT's
                 * offset, then the thread's TLS) would be two pages more
                 * on every counted call (status.h) */
                if (__builtin_expect(thread_paused, 0))
                        continue; /* as under hold: counted, and not fired */
                verdict = fire(rs, i, &a, s, n, fl, forced, d, shard);
        }
        return verdict;
}

/* First in the section of the other calls' armed halves (shim/hot.ld). */
__attribute__((section(".text.wb.armed"))) enum wb_verdict
engine_decide(const struct wb_callinfo *c, struct wb_decision *d)
{
        unsigned s = counter_shard();
        enum wb_verdict v = decide(read_begin(s), c, d, s);
        read_end(s);
        return v;
}
