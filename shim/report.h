/* report.h - log lines and the JSON report (SPEC §5).
 *
 * Everything here that runs during a wrapped call is async-signal-safe: it
 * formats into a stack buffer and writes with one write(2). Counters are
 * relaxed atomics.
 */
#ifndef WB_REPORT_H
#define WB_REPORT_H

#include "config.h"
#include "counter.h"
#include "engine.h"
#include "fdstate.h"
#include "status.h"

#include <stdbool.h>
#include <stdint.h>

/* Set up from the environment: open the log, remember the report path and
 * the scenario names. Called once by the constructor. 0 / -1 (diag set). */
int report_init(const struct wb_settings *s, struct wb_diag *d);

/* Where a passed-through call is counted: this thread's row of call counts
 * in the status, as an offset (status_row: the only thread's shard, or the
 * row a thread keeps, counter.h), and the status itself. A wrapper finds it
 * before the system call: afterwards, with the TLB emptied (status.h), only
 * the status's first page is touched (one thread, a near fd). row 0: not
 * known (a thread's first count, or a thread on the shared shard). */
struct report_pass {
        struct wb_status *st;
        uintptr_t row;
};
static inline struct report_pass report_pass_begin(void)
{
        return (struct report_pass){wb_status, status_row()};
}

/* Count a call passed through (seen, not injected) where p says: one add,
 * the same count as report_call(call, false). False, counting nothing, when
 * the row is not known: report_seen_slow counts then, keeping errno. */
static inline bool report_pass_count(struct report_pass p, enum wb_call call)
{
        if (__builtin_expect(p.row == 0, 0))
                return false;
        counter_bump_own((_Atomic uint64_t *)((char *)p.st + p.row) + call);
        return true;
}
void report_seen_slow(enum wb_call call);
static inline void report_seen(enum wb_call call)
{
        if (!report_pass_count(report_pass_begin(), call))
                report_seen_slow(call);
}

/* Count a call (seen), and whether it was injected. Inline, with the
 * counters of the status (status.h) exposed: every wrapped call comes here. */
static inline __attribute__((always_inline)) void report_call(enum wb_call call, bool injected)
{
        if (injected) {
                unsigned s = counter_shard();
                WB_STATUS_BUMP(s, calls_injected[call]);
                WB_STATUS_BUMP(s, calls_seen[call]);
                return;
        }
        report_seen(call);
}

/* Is there a log to write injections to (WOULDBLOCK_LOG)? Inline: the
 * engine asks on every injection, before it copies what the line needs. */
extern int wb_log_fd;
static inline bool report_logging(void)
{
        return wb_log_fd >= 0;
}

/* One log line for an injection; ret is what the program got back. */
void report_injection(const struct wb_callinfo *c, const struct wb_decision *d, long ret);

/* A would-block result (injected or real) on fd: extends its spin, and
 * past WOULDBLOCK_SPIN_LIMIT warns once in the log. Inline: every EAGAIN
 * comes here, injected or real. */
extern uint64_t wb_spin_limit;
extern _Atomic bool wb_spin_warned; /* the one warning is written */
void report_spin_warning(int fd, enum wb_call call, uint32_t run);
static inline __attribute__((always_inline)) void report_would_block(int fd, enum wb_call call)
{
        uint32_t run = fd_state_spin_bump(fd);
        unsigned s = counter_shard();

        /* this thread's longest; the report takes the longest of all */
        counter_raise(&status_shard(wb_status, s)->spin, s,
                      (uint64_t)run << 32 | (uint64_t)(fd & 0xffffff) << 8 | (unsigned)call);
        /* a busy loop past the limit comes here on every call: a load first */
        if (__builtin_expect(run > wb_spin_limit && wb_spin_limit, 0) &&
            !atomic_load_explicit(&wb_spin_warned, memory_order_relaxed))
                report_spin_warning(fd, call, run);
}

/* Injections so far (call < 0: all calls). */
uint64_t report_injected(int call);

/* Write the JSON report now, once per process (exit, _exit), then remove
 * the status file that kept the counts meanwhile. */
void report_write(void);

/* The scenario names the report lists (comma-separated). */
void report_set_scenarios(const char *list);

/* In a forked child: counters from zero, log reopened for its own pid. */
void report_restart(void);

#endif
