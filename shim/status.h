/* status.h - the counts of a process, kept in a file-backed shared mapping
 * so that they survive the process (SPEC §5: a killed or crashed run still
 * shows what was injected).
 *
 * With WOULDBLOCK_REPORT=R the library keeps every count of its report in
 * R.status (R after %p expansion) from start, writes R from it at exit and
 * then removes R.status. A status file left without its report belongs to
 * a process that was killed or crashed; status_to_report turns it into the
 * report that process would have written. Without a report path the same
 * structure lives in the library's memory. The hot path only ever adds to
 * counters here (relaxed atomics, as before): no system call, no lock.
 *
 * libc only: the runner links this file too.
 */
#ifndef WB_STATUS_H
#define WB_STATUS_H

#include "counter.h"
#include "rules.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WB_STATUS_SUFFIX ".status"
#define WB_STATUS_MAGIC "wbstat2" /* and the structure's size: a layout check */

struct wb_status_rule {
        char text[WB_TEXT_MAX];
        char scenario[WB_NAME_MAX];
        uint32_t line;
};

/* The rules of one installed set. Two banks: an install fills the one not
 * in use, then switches. Their totals are in the shards, their rules in
 * wb_status.rules (bank b's: rules[b]), away from this header, which is on
 * the status's first page (an install without a report writes nothing else). */
struct wb_status_bank {
        uint32_t n;
        uint32_t used; /* published once: its counters may be non-zero */
        uint64_t seed;
};

/* One thread's counts (counter.h): only its owner adds to them; the report
 * sums the shards (the spin: their maximum). */
struct wb_status_shard {
        _Atomic uint64_t calls_seen[WB_CALL_COUNT], calls_injected[WB_CALL_COUNT];
        _Atomic uint64_t counted[2][WB_MAX_RULES], injected[2][WB_MAX_RULES]; /* by bank */
        _Atomic uint64_t spin; /* the longest spin seen: length << 32 | fd << 8 | call */
} __attribute__((aligned(64)));

/* Would-block runs of the fds below this number are kept in the status's
 * first page (fd_state_spin_word, fdstate.h). */
#define WB_SPIN_NEAR 256

/* The first page (a mapping's, from offset 0) holds all that a passed-through
 * call of a process with one thread writes after its system call: its call
 * counts (single) and the spin words of the fds most programs use. Every
 * system call empties the TLB on a kernel with page-table isolation and no
 * PCID, and each other page would cost a TLB miss per call. */
struct wb_status {
        char magic[8];
        uint64_t size; /* sizeof(struct wb_status) */
        uint64_t pid;
        /* What start-up writes comes first, the banks before the texts:
         * the static status (status.c) starts some 800 bytes before the
         * end of the page the loader writes anyway, and after the texts
         * the banks were a page more, a page fault at every start. */
        _Atomic uint32_t bank; /* the banks[] entry in use */
        struct wb_status_bank banks[2];
        char program[256];
        char scenarios[1024]; /* comma-separated, as WOULDBLOCK_SCENARIO */
        /* fd state, not counts: fdstate.h owns them (a forked child's copy
         * goes with its status) */
        _Atomic uint32_t fd_spin_near[WB_SPIN_NEAR] __attribute__((aligned(64)));
        struct wb_status_shard single;                /* shard WB_SHARD_SINGLE; calls_seen first */
        struct wb_status_rule rules[2][WB_MAX_RULES]; /* by bank; only with a report */
        struct wb_status_shard shard[WB_SHARDS + 1];  /* the threads' own, then the shared one */
};
_Static_assert(offsetof(struct wb_status, single.calls_injected) <= 4096,
               "a passed call's counts are on the status's first page");

/* Shard s's counts, WB_SHARD_SINGLE included. */
static inline struct wb_status_shard *status_shard(struct wb_status *st, unsigned s)
{
        return s == WB_SHARD_SINGLE ? &st->single : &st->shard[s];
}

/* The process's status: a static one until status_open, then the mapping.
 * Always valid, also before the library's constructor. */
extern struct wb_status *wb_status __attribute__((visibility("hidden")));

/* The offset in the status of this thread's own shard; 0 when not known
 * yet (a thread's first count) or shared (counter.h): the only thread's
 * shard, else the thread's kept row, which counter_row() (counter.h) reads
 * with no arithmetic on the shard number (an offset stays right when the
 * status moves to its mapping or a forked child's). */
static inline uintptr_t status_row(void)
{
        if (__builtin_expect(counter_single_threaded(), 1))
                return offsetof(struct wb_status, single);
        return counter_row();
}

/* This thread's own shard; NULL for the shared one, whose adds are locked.
 * shard: this thread's (counter_shard(), which has asked glibc's flag). */
static inline __attribute__((always_inline)) struct wb_status_shard *
status_own_shard(unsigned shard)
{
        if (__builtin_expect(shard == WB_SHARD_SINGLE, 1))
                return &wb_status->single;
        uintptr_t row = counter_row();
        if (__builtin_expect(row != 0, 1))
                return (struct wb_status_shard *)((char *)wb_status + row);
        if (shard == WB_SHARD_SHARED)
                return NULL;
        counter_set_row((uintptr_t)((char *)&wb_status->shard[shard] - (char *)wb_status));
        return &wb_status->shard[shard];
}

/* Add 1 to a counter (a field of struct wb_status_shard) of this thread. */
#define WB_STATUS_BUMP(my_shard, field)                                                            \
        do {                                                                                       \
                struct wb_status_shard *own_ = status_own_shard(my_shard);                         \
                if (__builtin_expect(own_ != NULL, 1))                                             \
                        counter_bump_own(&own_->field);                                            \
                else                                                                               \
                        counter_bump(&wb_status->shard[WB_SHARD_SHARED].field, WB_SHARD_SHARED,    \
                                     1);                                                           \
        } while (0)

/* Move the status, counts so far included, into a new file status_path
 * (created or truncated) mapped shared; path NULL: into a fresh private
 * mapping (a forked child whose report path is its parent's). The previous
 * mapping is replaced by memory nobody reads (the static one is kept): a
 * passed-through call finds its counters before its system call, and one
 * in flight across the move (a fork in a signal handler that interrupted
 * it) writes there. Call it at start, or in a forked child, where no other
 * thread can be writing to it. 0, or -1 with errno (the status stays where
 * it was). */
int status_open(const char *status_path);

/* An install: the bank not in use (or the one in use, while no set has
 * used it), filled with the rules, its counters zeroed in every shard;
 * then published once the engine uses it. A thread still in the
 * set replaced two installs ago may add to a reused bank: under concurrent
 * rule swaps a total can be off by the calls in flight. */
struct wb_status_bank *status_bank_prepare(const struct wb_rule *rules, unsigned n, uint64_t seed);
/* Whether the banks keep the rules' texts, scenarios and lines: only a
 * report reads them (report_init asks for them when a report is asked
 * for). Without, an install writes the bank's header alone: 21 rules' texts
 * are three pages, each a page fault. Off until asked. */
void status_keep_rules(bool keep);
void status_bank_publish(struct wb_status_bank *bank);
/* Which of the two banks (0, 1): the index of its counters in a shard. */
unsigned status_bank_index(const struct wb_status_bank *bank);

/* Totals over the shards. */
uint64_t status_sum(const struct wb_status *st, size_t offset); /* of one shard's counter */
#define WB_STATUS_SUM(st, field) status_sum((st), offsetof(struct wb_status_shard, field))
/* Zero one counter in every shard. */
void status_zero(struct wb_status *st, size_t offset);
#define WB_STATUS_ZERO(st, field) status_zero((st), offsetof(struct wb_status_shard, field))
/* The longest spin over the shards, as in wb_status_shard.spin. */
uint64_t status_spin(const struct wb_status *st);

/* The report is written: the status file is not needed any more. */
void status_remove(void);

/* The JSON report of st to fd (a formatter of fmt.h; async-signal-safe). */
void status_write_report(const struct wb_status *st, int fd, bool complete);

/* Write the JSON report that the process which left status_path would have
 * written, marked "complete": false. 0 on success, -1 with errno. */
int status_to_report(const char *status_path, const char *report_path);

#endif
