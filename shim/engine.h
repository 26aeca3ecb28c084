/* engine.h - decide: does this call on this fd fire, and what is done.
 *
 * The active rule set is immutable once published; engine_install builds a
 * new one and swaps a pointer, so a wrapped call running in another thread
 * keeps a consistent view. Counters live beside the set, keyed by (rule, fd,
 * fd generation), so a reused fd number counts from 1 again. prob= names a
 * per-fd scope by the order in which the rule first counted the fd, never by
 * its number.
 */
#ifndef WB_ENGINE_H
#define WB_ENGINE_H

#include "rules.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct wb_callinfo {
        enum wb_call call;
        int fd;
        size_t len;                  /* bytes asked for; messages for the mmsg calls */
        int flags;                   /* MSG_* of socket calls */
        const struct sockaddr *addr; /* destination of connect/sendto, or NULL */
        socklen_t addrlen;
        bool control;     /* a message that carries or asks for control data */
        const void *site; /* the return address of the program's call into the wrapper */
        bool writes_fd;   /* splice/tee counted on their fd_out (output calls: by their group) */
};

/* Does the call write to its fd? Then a would-block on it means a full
 * buffer (SPEC §4's in-flight rule) and an edge-triggered waiter is owed
 * its EPOLLOUT. */
static inline bool engine_call_writes(const struct wb_callinfo *c)
{
        return (WB_CALL_BIT(c->call) & WB_GROUP_OUTPUT) || c->writes_fd;
}

/* Does the call read the fd it is counted on (input calls; splice and tee
 * counted on their fd_in)? */
static inline bool engine_call_reads(const struct wb_callinfo *c)
{
        const uint32_t by_name = WB_CALL_BIT(WB_SPLICE) | WB_CALL_BIT(WB_TEE);
        return (WB_CALL_BIT(c->call) & WB_GROUP_INPUT) ||
               ((WB_CALL_BIT(c->call) & by_name) && !c->writes_fd);
}

enum wb_verdict {
        WB_PASS,  /* call the real function unchanged */
        WB_FAIL,  /* return -1 with decision.err, doing nothing */
        WB_SHORT, /* call the real function with at most decision.limit bytes */
};

struct wb_decision {
        enum wb_verdict verdict;
        int err;
        size_t limit;
        bool edge_owed;             /* a short: an edge-triggered waiter is owed its event */
        const struct wb_rule *rule; /* that fired: valid until the next engine_install */
        char scenario[WB_NAME_MAX]; /* its provenance, copied only for a log */
        unsigned line;
        bool per_process;
        uint64_t callno; /* its call number in its scope */
        unsigned family; /* WB_FAMILY_* of the fd */
        int sotype;      /* SOCK_* of the fd, 0 if not a socket */
        /* the engine's own, for engine_commit */
        const void *set_;
        void *rule_rt_;
        void *slot_;
        uint32_t gen_;
        int fd_;
        bool until_start_; /* an until=poll run starts here */
        bool mmsg_cut_;    /* the wrapper's: an mmsg call was really cut */
        uint32_t rec_id_;  /* recording: the call's point and hit number */
        uint64_t rec_k_;
};

/* Calls that some active rule names: the wrappers' one-branch fast path. */
extern _Atomic uint32_t wb_engine_armed __attribute__((visibility("hidden")));

/* Names rules with process= are matched against (argv[0] and exe basenames). */
void engine_set_process_names(const char *argv0, const char *exe);

/* Build and publish a rule set (replacing the active one); no rule and no
 * recording publish none, which maps nothing. lasting: the rules stay where
 * they are, unchanged, as long as the process (the embedded library's, a
 * scenario file's), and the set reads them there instead of copying them
 * (some 1 KB a rule, written at every start). 0 / -1 (ENOMEM). */
int engine_install(const struct wb_rule *rules, unsigned n, uint64_t seed, bool lasting);

/* Decide for one call; d is filled for WB_FAIL and WB_SHORT. A WB_FAIL is
 * counted as an injection at once; a WB_SHORT only when the caller, having
 * made the shortened call, sees that it really was cut and commits it (a
 * short that met EAGAIN, end of file or less data than the limit changed
 * nothing and proves nothing). */
enum wb_verdict engine_decide(const struct wb_callinfo *c, struct wb_decision *d);
void engine_commit(const struct wb_decision *d);

/* Stop injecting but keep counting (wouldblock_pause, WOULDBLOCK_DISABLE). */
void engine_pause(bool paused);
/* The same for the calling thread's calls alone; returns what it had. */
bool engine_pause_thread(bool paused);

/* The active rules and their totals (a rule set replaced by engine_install
 * is unmapped once no thread in the engine can be using it: not while
 * another thread installs). */
unsigned engine_rule_count(void);
const struct wb_rule *engine_rule(unsigned i, uint64_t *counted, uint64_t *injected);
uint64_t engine_seed(void);

/* In a forked child: same rules, counters from zero (each process counts on
 * its own). Uses mmap only, so it is safe after fork in a threaded parent. */
void engine_restart_counts(void);

/* The same rules, counters and fd ordinals from zero, prob= under a new seed:
 * what follows depends only on the seed and the calls from now on
 * (wouldblock_set_seed). 0 / -1 (ENOMEM); the API serializes callers. */
int engine_reseed(uint64_t seed);

/* The deterministic prob= function, exposed for the unit tests. scope: -1
 * per process, else the fd's ordinal in the rule (1 for its first fd). */
bool engine_prob_fires(double prob, uint64_t seed, unsigned rule, int64_t scope, uint64_t n);

#endif
