/* counter.c - sharded counters (see counter.h). */
#include "counter.h"

__thread unsigned wb_shard_plus1 __attribute__((tls_model("initial-exec")));
static _Atomic unsigned next_shard;

unsigned counter_pick_shard(void)
{
        unsigned s = atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % WB_SHARDS;
        return wb_shard_plus1 = s + 1;
}

uint64_t counter_sum(struct wb_counter *c)
{
        uint64_t sum = 0;
        for (int i = 0; i < WB_SHARDS; i++)
                sum += atomic_load_explicit(&c->shard[i].v, memory_order_relaxed);
        return sum;
}

void counter_reset(struct wb_counter *c)
{
        for (int i = 0; i < WB_SHARDS; i++)
                atomic_store_explicit(&c->shard[i].v, 0, memory_order_relaxed);
}
