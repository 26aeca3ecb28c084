/* timing.h - what the benchmark programs measure with: a clock in ns and
 * a pin to the current CPU (no migration in the middle of a loop). */
#ifndef WB_BENCH_TIMING_H
#define WB_BENCH_TIMING_H

#include <sched.h>
#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t clock)
{
        struct timespec t;
        clock_gettime(clock, &t);
        return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline void pin_here(void)
{
        int cpu = sched_getcpu();
        cpu_set_t set;

        if (cpu < 0)
                return;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        (void)sched_setaffinity(0, sizeof set, &set);
}

#endif
