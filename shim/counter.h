/* counter.h - event counters that many threads bump without sharing a cache
 * line: each thread adds to its own shard, readers sum the shards. */
#ifndef WB_COUNTER_H
#define WB_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

#define WB_SHARDS 16

struct wb_counter {
        struct {
                _Atomic uint64_t v;
                char pad[64 - sizeof(uint64_t)];
        } shard[WB_SHARDS];
};

/* This thread's shard + 1 (0: not chosen yet). Initial-exec TLS: one load,
 * no allocation, safe in signal handlers. */
extern __thread unsigned wb_shard_plus1 __attribute__((tls_model("initial-exec")));
unsigned counter_pick_shard(void);

static inline void counter_add_ordered(struct wb_counter *c, uint64_t n, memory_order order)
{
        unsigned s = wb_shard_plus1;
        if (__builtin_expect(s == 0, 0))
                s = counter_pick_shard();
        atomic_fetch_add_explicit(&c->shard[s - 1].v, n, order);
}

static inline void counter_add(struct wb_counter *c, uint64_t n)
{
        counter_add_ordered(c, n, memory_order_relaxed);
}

uint64_t counter_sum(struct wb_counter *c);
void counter_reset(struct wb_counter *c);

#endif
