/* counter.h - counts that many threads bump with no locked instruction.
 *
 * Each thread claims a shard of its own (an index below WB_SHARDS) at its
 * first count and gives it back when it ends; only the owner writes to its
 * shard, so an add is one plain instruction, which a signal handler on the
 * same thread cannot split. Readers sum the shards. Threads beyond
 * WB_SHARDS share the last index, WB_SHARD_SHARED, with locked adds.
 * The counters themselves live where their readers need them (the status
 * mapping, status.h), indexed by shard.
 */
#ifndef WB_COUNTER_H
#define WB_COUNTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define WB_SHARDS 64                    /* threads with a shard of their own */
#define WB_SHARD_SHARED WB_SHARDS       /* the one the other threads share */
#define WB_SHARD_SINGLE (WB_SHARDS + 1) /* the only thread's, see below */
#define WB_SHARD_COUNT (WB_SHARDS + 2)

/* While the process has one thread (glibc's __libc_single_threaded, which
 * goes false inside the first pthread_create and never back), that thread
 * counts in a shard kept for it, WB_SHARD_SINGLE, found with no thread-local
 * read: the status keeps it on its first page (status.h), beside what else a
 * passed-through call writes. Nobody else writes there: a second thread can
 * only come from the one thread, outside any count, and every thread then
 * counts in its own shard. musl has no such flag: a thread's own shard there.
 * The flag is read through a copy of its address in .data, on the page the
 * wrappers read anyway (through the GOT it is a page more per call);
 * relocated by the loader, so right before any constructor. */
extern const char *wb_single_flag __attribute__((visibility("hidden")));
static inline bool counter_single_threaded(void)
{
        const char *flag = wb_single_flag;
        /* both likely: the hot paths lay out the single thread's case first */
        return __builtin_expect(flag != 0, 1) &&
               __builtin_expect(__atomic_load_n(flag, __ATOMIC_RELAXED), 1);
}

/* This thread's shard + 1 (0: not chosen yet). Initial-exec TLS: one load,
 * no allocation, safe in signal handlers. */
extern __thread unsigned wb_shard_plus1 __attribute__((tls_model("initial-exec")));
unsigned counter_pick_shard(void);

/* A word its user derives from this thread's own shard and keeps here, to
 * find its counters with no arithmetic (report.h keeps the offset of the
 * thread's row of call counts in the status): 0 until the user sets it,
 * and set back to 0 whenever the thread's shard changes (its release at
 * thread exit). Never set for the shared shard, whose adds are locked. */
extern __thread uintptr_t wb_shard_row __attribute__((tls_model("initial-exec")));
void counter_set_row(uintptr_t row);

/* Reading wb_shard_row the usual way loads its offset from the thread
 * pointer out of the GOT, a page the pass-through path touches for nothing
 * else: after a system call (which empties the TLB on a kernel with page
 * table isolation and no PCID) each page costs a TLB miss, far more than an
 * instruction. The offset is the same in every thread, so counter_set_row
 * keeps a copy in .data, beside what the path reads anyway, and the row is
 * read %fs-relative through it (the copy 0: not known yet, the row is 0). */
#ifdef __x86_64__
extern _Atomic uintptr_t wb_shard_row_tpoff __attribute__((visibility("hidden")));
#endif
static inline uintptr_t counter_row(void)
{
#ifdef __x86_64__
        uintptr_t off = atomic_load_explicit(&wb_shard_row_tpoff, memory_order_relaxed), row;
        if (__builtin_expect(off == 0, 0))
                return 0;
        /* the copy as a memory input: not moved across what may change it */
        __asm__("movq %%fs:(%1), %0"
                : "=r"(row)
                : "r"(off), "m"(*(const uintptr_t *)&wb_shard_row_tpoff));
        return row;
#else
        return wb_shard_row;
#endif
}

static inline __attribute__((always_inline)) unsigned counter_shard(void)
{
        if (__builtin_expect(counter_single_threaded(), 1))
                return WB_SHARD_SINGLE;
        unsigned s = wb_shard_plus1;
        if (__builtin_expect(s == 0, 0))
                s = counter_pick_shard();
        return s - 1;
}

/* Add 1 to a counter of this thread's own shard (not the shared one). */
static inline void counter_bump_own(_Atomic uint64_t *v)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
        /* one instruction: atomic with respect to this thread's signal
         * handlers, and nobody else writes here */
        __asm__ volatile("addq $1, %0" : "+m"(*(uint64_t *)v));
#else
        atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + 1,
                              memory_order_relaxed);
#endif
}

/* Add n to a counter of shard `shard` (this thread's). */
static inline void counter_bump(_Atomic uint64_t *v, unsigned shard, uint64_t n)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
        if (__builtin_expect(shard != WB_SHARD_SHARED, 1)) {
                /* one instruction: atomic with respect to this thread's signal
                 * handlers, and nobody else writes here */
                __asm__ volatile("addq %1, %0" : "+m"(*(uint64_t *)v) : "er"(n));
                return;
        }
#else
        if (shard != WB_SHARD_SHARED) {
                atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                                      memory_order_relaxed);
                return;
        }
#endif
        atomic_fetch_add_explicit(v, n, memory_order_relaxed);
}

/* Raise a per-shard maximum, compared by its top 32 bits, to v. */
static inline void counter_raise(_Atomic uint64_t *m, unsigned shard, uint64_t v)
{
        uint64_t cur = atomic_load_explicit(m, memory_order_relaxed);
        if (__builtin_expect(cur >> 32 >= v >> 32, 1))
                return;
        if (shard != WB_SHARD_SHARED) {
                atomic_store_explicit(m, v, memory_order_relaxed);
                return;
        }
        while (cur >> 32 < v >> 32 && !atomic_compare_exchange_weak_explicit(
                                          m, &cur, v, memory_order_relaxed, memory_order_relaxed))
                ;
}

/* In a forked child: the parent's other threads are gone, their shards free. */
void counter_fork_child(void);

#endif
