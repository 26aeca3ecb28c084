/* counter.c - per-thread shards (see counter.h). */
#include "counter.h"

#include <pthread.h>

__thread unsigned wb_shard_plus1 __attribute__((tls_model("initial-exec")));
__thread uintptr_t wb_shard_row __attribute__((tls_model("initial-exec")));
#ifdef __x86_64__
_Atomic uintptr_t wb_shard_row_tpoff;
#endif
/* weak: musl has none (counter.h) */
extern char __libc_single_threaded __attribute__((weak));
const char *wb_single_flag = &__libc_single_threaded;
static _Atomic uint64_t claimed; /* bit s: shard s has an owner */
static pthread_key_t release_key;
static bool key_made;

/* A thread ends: its shard (counts kept) goes to the next thread. */
static void release(void *arg)
{
        unsigned s = (unsigned)(uintptr_t)arg - 1;
        wb_shard_row = 0;   /* derived from the shard: gone with it */
        wb_shard_plus1 = 0; /* a later count in this thread claims again */
        if (s < WB_SHARDS)
                atomic_fetch_and_explicit(&claimed, ~(1ull << s), memory_order_release);
}

__attribute__((constructor)) static void make_key(void)
{
        key_made = pthread_key_create(&release_key, release) == 0;
}

void counter_set_row(uintptr_t row)
{
        wb_shard_row = row;
#ifdef __x86_64__
        /* x86-64 ABI: the word at the thread pointer is the thread pointer */
        uintptr_t tp;
        __asm__("movq %%fs:0, %0" : "=r"(tp));
        atomic_store_explicit(&wb_shard_row_tpoff, (uintptr_t)&wb_shard_row - tp,
                              memory_order_relaxed);
#endif
}

unsigned counter_pick_shard(void)
{
        uint64_t w = atomic_load_explicit(&claimed, memory_order_relaxed);
        unsigned s = WB_SHARD_SHARED;

        while (~w) {
                unsigned free = (unsigned)__builtin_ctzll(~w);
                if (atomic_compare_exchange_weak_explicit(&claimed, &w, w | 1ull << free,
                                                          memory_order_acquire,
                                                          memory_order_relaxed)) {
                        s = free;
                        break;
                }
        }
        /* no key (a call before constructors ran): the shard stays claimed */
        if (s != WB_SHARD_SHARED && key_made)
                pthread_setspecific(release_key, (void *)(uintptr_t)(s + 1));
        return wb_shard_plus1 = s + 1;
}

void counter_fork_child(void)
{
        unsigned s = wb_shard_plus1;
        atomic_store_explicit(&claimed, s && s - 1 < WB_SHARDS ? 1ull << (s - 1) : 0,
                              memory_order_relaxed);
}
