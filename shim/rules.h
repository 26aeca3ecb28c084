/* rules.h - the scenario language: parse, validate, print canonical form.
 *
 * Pure data in, pure data out: nothing here touches file descriptors, the
 * environment or the real libc functions, so the runner, the library and the
 * unit tests share one parser. Every struct is flat (no pointers) so a rule
 * set can be copied, published atomically and never freed under a reader.
 */
#ifndef WB_RULES_H
#define WB_RULES_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every interposed call, in SPEC §3 order (the zero-copy calls came later
 * and follow connect, so the older numbers stay). The fortified variants
 * count as the call they check and sendfile64 as sendfile, so they have no
 * entry of their own. */
enum wb_call {
        WB_READ,
        WB_READV,
        WB_RECV,
        WB_RECVFROM,
        WB_RECVMSG,
        WB_RECVMMSG,
        WB_WRITE,
        WB_WRITEV,
        WB_SEND,
        WB_SENDTO,
        WB_SENDMSG,
        WB_SENDMMSG,
        WB_ACCEPT,
        WB_ACCEPT4,
        WB_CONNECT,
        WB_SENDFILE, /* group output: the fd is out_fd */
        WB_SPLICE,   /* named alone: see wrappers.c for the fd it is counted on */
        WB_TEE,
        WB_CALL_COUNT
};

#define WB_CALL_BIT(c) (1u << (c))
#define WB_GROUP_INPUT 0x003fu                               /* read .. recvmmsg */
#define WB_GROUP_OUTPUT (0x0fc0u | WB_CALL_BIT(WB_SENDFILE)) /* write .. sendmmsg, sendfile */
#define WB_GROUP_ACCEPT (WB_CALL_BIT(WB_ACCEPT) | WB_CALL_BIT(WB_ACCEPT4))
#define WB_GROUP_CONNECT WB_CALL_BIT(WB_CONNECT)
#define WB_GROUP_ALL ((1u << WB_CALL_COUNT) - 1u)

/* fd types for type= (a bit each) */
enum {
        WB_TYPE_SOCKET = 1,
        WB_TYPE_PIPE = 2,
        WB_TYPE_TTY = 4,
        WB_TYPE_FILE = 8,
        WB_TYPE_OTHER = 16,
        WB_TYPE_DEFAULT = WB_TYPE_SOCKET | WB_TYPE_PIPE | WB_TYPE_TTY,
};

/* socket families for family= (a bit each; 0 in a rule means any fd) */
enum {
        WB_FAMILY_UNIX = 1,
        WB_FAMILY_INET = 2,
        WB_FAMILY_INET6 = 4,
};

enum wb_action {
        WB_ACT_ERRNO, /* fail with err (0: the call's default, see rule_errno) */
        WB_ACT_SHORT, /* transfer at most short_n bytes */
};

#define WB_MAX_WHEN 16
#define WB_WHEN_OPEN UINT64_MAX /* no upper bound: N+ and N+S */
#define WB_NAME_MAX 64
#define WB_TEXT_MAX 256
#define WB_MAX_RULES 64
#define WB_MAX_SCENARIOS 128
#define WB_SITE_MAX 128     /* a site='s module name, with its terminator */
#define WB_SITE_UNKNOWN "?" /* the module of a place outside every loaded object */

/* One item of when=: first..last stepping by step (step >= 1). */
struct wb_when {
        uint64_t first;
        uint64_t last;
        uint64_t step;
};

struct wb_rule {
        /* what the engine reads on every counted call, first */
        uint32_t calls; /* WB_CALL_BIT mask */
        unsigned types; /* WB_TYPE_* mask */
        unsigned families;
        int fd;   /* -1: any */
        int port; /* -1: any */
        bool blocking_any;
        bool inflight_any;
        bool per_process;
        bool until_poll;
        bool has_prob;
        bool edge_none;  /* short=: no event owed to an edge-triggered waiter (edge=none) */
        unsigned n_when; /* 0: no when= */
        enum wb_action action;
        int err;          /* WB_ACT_ERRNO: errno value, 0 = default */
        uint64_t short_n; /* WB_ACT_SHORT: N >= 1 */
        uint64_t max;     /* 0: no max= */
        double prob;
        struct wb_when when[WB_MAX_WHEN];
        char process[WB_NAME_MAX]; /* "": any */
        char site[WB_SITE_MAX];    /* site= module basename; "": any */
        bool site_has_offset;
        uint64_t site_offset; /* site=MODULE+0xOFFSET */

        /* provenance, for the log and the report */
        char scenario[WB_NAME_MAX]; /* scenario name, or "WOULDBLOCK_RULES", "api" */
        unsigned line;              /* line in the file, or 1-based position in the list */
        char text[WB_TEXT_MAX];     /* the rule as written, trimmed */
};

/* Where a configuration error was found. */
struct wb_diag {
        char msg[1024]; /* complete: "FILE:LINE:COL: message" or "WOULDBLOCK_RULES:COL: message" */
};

/* Name <-> value tables. */
const char *rule_call_name(enum wb_call call);
int rule_call_by_name(const char *name, size_t len);  /* -1 if unknown */
const char *rule_errno_name(int err);                 /* NULL if not in the table */
int rule_errno_by_name(const char *name, size_t len); /* -1 if unknown */

/* Parse one rule from text[0..len). On error fills diag with
 * "<where>COL: message" where COL = col_base + offset in text (1-based)
 * and where is e.g. "file.conf:12:" or "WOULDBLOCK_RULES:". Returns 0 / -1. */
int rule_parse(const char *text, size_t len, const char *where, unsigned col_base,
               struct wb_rule *out, struct wb_diag *diag);

/* Parse a ';'-separated list (WOULDBLOCK_RULES, wouldblock_set_rules).
 * name is used for errors ("name:COL: msg") and as the rules' scenario.
 * Appends to rules[*n], at most max entries. Returns 0 / -1. */
int rule_parse_list(const char *text, const char *name, struct wb_rule *rules, unsigned *n,
                    unsigned max, struct wb_diag *diag);

/* The errno a firing rule returns for call on a socket of family
 * (WB_FAMILY_*, 0 if not a socket): the rule's own, or the SPEC defaults. */
static inline int rule_errno(const struct wb_rule *r, enum wb_call call, unsigned family)
{
        if (r->err)
                return r->err;
        if (call == WB_CONNECT && (family & (WB_FAMILY_INET | WB_FAMILY_INET6)))
                return EINPROGRESS;
        return EAGAIN;
}

/* Does the 1-based call number n fall in the rule's when= set? */
bool rule_when_matches(const struct wb_rule *r, uint64_t n);

/* Canonical text: every key spelled out with its effective value. */
int rule_format(const struct wb_rule *r, char *buf, size_t size);

#endif
