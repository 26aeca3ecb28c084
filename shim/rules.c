/* rules.c - the scenario language of SPEC §3: one rule line to a wb_rule. */
#include "rules.h"

#include "fmt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const call_names[WB_CALL_COUNT] = {
    "read",   "readv",   "recv",    "recvfrom", "recvmsg", "recvmmsg",
    "write",  "writev",  "send",    "sendto",   "sendmsg", "sendmmsg",
    "accept", "accept4", "connect", "sendfile", "splice",  "tee",
};

/* Groups a CALLS list may name, and how the canonical form spells them. */
static const struct {
        const char *name;
        uint32_t mask;
} call_groups[] = {
    {"all", WB_GROUP_ALL},         {"input", WB_GROUP_INPUT}, {"output", WB_GROUP_OUTPUT},
    {"accept", WB_GROUP_ACCEPT}, /* the word accept names accept and accept4 */
    {"connect", WB_GROUP_CONNECT},
};

/* clang-format re-wraps this table differently on every pass: kept by hand */
// clang-format off
#define WB_ERRNOS(X) \
        X(EAGAIN) X(EINPROGRESS) X(EALREADY) X(EINTR) X(ECONNRESET) X(ECONNREFUSED) \
        X(ECONNABORTED) X(EPIPE) X(ENOTCONN) X(ETIMEDOUT) X(EHOSTUNREACH) X(ENETUNREACH) \
        X(ENETDOWN) X(ENETRESET) X(EHOSTDOWN) X(EADDRINUSE) X(EADDRNOTAVAIL) X(ENOBUFS) \
        X(ENOMEM) X(EMFILE) X(ENFILE) X(EBADF) X(EINVAL) X(EFAULT) X(EIO) X(EACCES) \
        X(EPERM) X(EPROTO) X(EMSGSIZE) X(ENOSPC) X(EDQUOT) X(EISCONN) X(ENOTSOCK) \
        X(EOPNOTSUPP) X(ESHUTDOWN) X(ENOENT) X(ESPIPE) X(EBUSY) X(ECANCELED) X(EROFS) \
        X(EFBIG) X(ENXIO) X(ENODEV) X(EAFNOSUPPORT) X(EPROTONOSUPPORT) X(ENOPROTOOPT) \
        X(EDESTADDRREQ) X(ESOCKTNOSUPPORT) X(EPFNOSUPPORT) X(ETOOMANYREFS) X(ENOSR) \
        X(ENOLINK) X(ECOMM) X(ERESTART) X(EOVERFLOW) X(EILSEQ) X(ENOTSUP) X(ETXTBSY) \
        X(ENOTTY) X(EEXIST) X(EISDIR) X(ENOTDIR) X(ELOOP) X(ENAMETOOLONG) X(EDEADLK) \
        X(ENOLCK) X(ENOSYS) X(ESTALE) X(EREMOTEIO)
// clang-format on

static const struct {
        const char *name;
        int value;
} errno_table[] = {
#define WB_ERRNO_ENTRY(e) {#e, e},
    WB_ERRNOS(WB_ERRNO_ENTRY)
#undef WB_ERRNO_ENTRY
    /* aliases last, so printing a value finds the primary name */
    {"EWOULDBLOCK", EWOULDBLOCK},
    {"EDEADLOCK", EDEADLOCK},
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

const char *rule_call_name(enum wb_call call)
{
        return (unsigned)call < WB_CALL_COUNT ? call_names[call] : "?";
}

static bool word_is(const char *s, size_t len, const char *word)
{
        return strlen(word) == len && memcmp(s, word, len) == 0;
}

int rule_call_by_name(const char *name, size_t len)
{
        for (int c = 0; c < WB_CALL_COUNT; c++)
                if (word_is(name, len, call_names[c]))
                        return c;
        return -1;
}

const char *rule_errno_name(int err)
{
        for (size_t i = 0; i < N_ELEMS(errno_table); i++)
                if (errno_table[i].value == err)
                        return errno_table[i].name;
        return NULL;
}

int rule_errno_by_name(const char *name, size_t len)
{
        for (size_t i = 0; i < N_ELEMS(errno_table); i++)
                if (word_is(name, len, errno_table[i].name))
                        return errno_table[i].value;
        return -1;
}

bool rule_when_matches(const struct wb_rule *r, uint64_t n)
{
        for (unsigned i = 0; i < r->n_when; i++) {
                const struct wb_when *w = &r->when[i];
                if (n >= w->first && n <= w->last && (n - w->first) % w->step == 0)
                        return true;
        }
        return false;
}

/* ---- parsing ---- */

struct parser {
        const char *text; /* the rule */
        size_t len;
        const char *where;
        unsigned col_base; /* column of text[0] */
        struct wb_diag *diag;
};

static int fail_at(struct parser *p, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct parser *p, const char *at, const char *fmt, ...)
{
        char msg[400];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(p->diag->msg, sizeof p->diag->msg, "%s%u: %s", p->where,
                 p->col_base + (unsigned)(at - p->text), msg);
        return -1;
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

/* An unsigned decimal of exactly [s, end). */
static int parse_u64(struct parser *p, const char *s, const char *end, uint64_t *out,
                     const char *what)
{
        uint64_t v = 0;

        if (s == end)
                return fail_at(p, s, "%s: expected a number", what);
        for (const char *c = s; c < end; c++) {
                if (!is_digit(*c))
                        return fail_at(p, s, "%s: '%.*s' is not a number", what, (int)(end - s), s);
                if (v > (UINT64_MAX - (uint64_t)(*c - '0')) / 10)
                        return fail_at(p, s, "%s: %.*s is too large", what, (int)(end - s), s);
                v = v * 10 + (uint64_t)(*c - '0');
        }
        *out = v;
        return 0;
}

static int parse_range(struct parser *p, const char *s, const char *end, uint64_t lo, uint64_t hi,
                       uint64_t *out, const char *what)
{
        if (parse_u64(p, s, end, out, what))
                return -1;
        if (*out < lo || *out > hi)
                return fail_at(p, s, "%s: %.*s is out of range (%llu..%llu)", what, (int)(end - s),
                               s, (unsigned long long)lo, (unsigned long long)hi);
        return 0;
}

static const char *find_char(const char *s, const char *end, char c)
{
        const char *r = memchr(s, c, (size_t)(end - s));
        return r ? r : end;
}

static const char *find_str(const char *s, const char *end, const char *needle)
{
        size_t n = strlen(needle);
        for (const char *c = s; c + n <= end; c++)
                if (memcmp(c, needle, n) == 0)
                        return c;
        return end;
}

/* A call number (1-based) or step of when=. */
static int parse_when_number(struct parser *p, const char *s, const char *end, uint64_t *out,
                             const char *what)
{
        if (parse_u64(p, s, end, out, "when"))
                return -1;
        if (*out == 0)
                return fail_at(p, s, "when: %s start at 1, not 0", what);
        if (*out == UINT64_MAX)
                return fail_at(p, s, "when: %.*s is too large", (int)(end - s), s);
        return 0;
}

/* when= item: N | N..M | N+ | N+S | N..M+S */
static int parse_when_item(struct parser *p, const char *s, const char *end, struct wb_when *w)
{
        const char *plus = find_char(s, end, '+');
        const char *dots = find_str(s, plus, "..");

        if (parse_when_number(p, s, dots, &w->first, "call numbers"))
                return -1;
        w->last = w->first;
        w->step = 1;
        if (dots < plus) {
                if (parse_when_number(p, dots + 2, plus, &w->last, "call numbers"))
                        return -1;
                if (w->last < w->first)
                        return fail_at(p, s, "when: descending range %.*s", (int)(plus - s), s);
        }
        if (plus < end) {
                if (dots == plus)
                        w->last = WB_WHEN_OPEN; /* N+ and N+S run on */
                if (plus + 1 < end && parse_when_number(p, plus + 1, end, &w->step, "steps"))
                        return -1;
                if (plus + 1 == end && dots < plus)
                        return fail_at(p, plus, "when: N..M+ needs a step after '+'");
        }
        return 0;
}

static int parse_when(struct parser *p, const char *s, const char *end, struct wb_rule *r)
{
        if (s == end)
                return fail_at(p, s, "when: expected call numbers");
        while (s <= end) {
                const char *comma = find_char(s, end, ',');
                if (r->n_when == WB_MAX_WHEN)
                        return fail_at(p, s, "when: at most %d items", WB_MAX_WHEN);
                if (parse_when_item(p, s, comma, &r->when[r->n_when++]))
                        return -1;
                s = comma + 1;
        }
        return 0;
}

static const double pow10_table[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8, 1e9,
                                     1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};
#define PROB_DIGITS 18 /* decimals kept: more than a double tells apart */

/* 0 <= P <= 1, plain decimal (no locale, no exponent). The value is the
 * integer of its digits divided once by a power of ten, so the canonical
 * form (put_prob) reads back to the very same double. */
static int parse_prob(struct parser *p, const char *s, const char *end, double *out)
{
        uint64_t mant = 0;
        unsigned decimals = 0;
        const char *c = s;
        bool digits = false, dot = false;

        for (; c < end; c++) {
                if (*c == '.' && !dot) {
                        dot = true;
                        continue;
                }
                if (!is_digit(*c))
                        break;
                digits = true;
                if (dot && decimals == PROB_DIGITS) {
                        /* beyond what a double holds: dropping a 1 here would
                         * let 1.0000000000000000001 pass for 1 */
                        if (*c != '0')
                                return fail_at(p, s, "prob: at most %d decimals", PROB_DIGITS);
                        continue;
                }
                if (mant > (UINT64_MAX - 9) / 10)
                        return fail_at(p, s, "prob: %.*s is not between 0 and 1", (int)(end - s),
                                       s);
                mant = mant * 10 + (uint64_t)(*c - '0');
                decimals += dot;
        }
        if (!digits || c != end)
                return fail_at(p, s, "prob: '%.*s' is not a number", (int)(end - s), s);
        *out = (double)mant / pow10_table[decimals];
        if (*out > 1)
                return fail_at(p, s, "prob: %.*s is not between 0 and 1", (int)(end - s), s);
        return 0;
}

static int parse_errno(struct parser *p, const char *s, const char *end, int *out)
{
        uint64_t v;
        int e;

        if (s < end && is_digit(*s)) {
                if (parse_range(p, s, end, 1, 4095, &v, "errno"))
                        return -1;
                *out = (int)v;
                return 0;
        }
        e = rule_errno_by_name(s, (size_t)(end - s));
        if (e < 0)
                return fail_at(p, s, "unknown errno '%.*s'", (int)(end - s), s);
        *out = e;
        return 0;
}

/* A comma list of words, each a bit. */
static int parse_word_list(struct parser *p, const char *s, const char *end, const char *key,
                           const char *const *words, const unsigned *bits, unsigned n_words,
                           unsigned *out)
{
        *out = 0;
        while (s <= end) {
                const char *comma = find_char(s, end, ',');
                unsigned i;
                for (i = 0; i < n_words; i++)
                        if (word_is(s, (size_t)(comma - s), words[i]))
                                break;
                if (i == n_words)
                        return fail_at(p, s, "%s: unknown value '%.*s'", key, (int)(comma - s), s);
                *out |= bits[i];
                s = comma + 1;
        }
        return 0;
}

/* A key=value whose value is one of two words. */
static int parse_choice(struct parser *p, const char *s, const char *end, const char *key,
                        const char *no, const char *yes, bool *out)
{
        if (word_is(s, (size_t)(end - s), no))
                *out = false;
        else if (word_is(s, (size_t)(end - s), yes))
                *out = true;
        else
                return fail_at(p, s, "%s: expected %s or %s, got '%.*s'", key, no, yes,
                               (int)(end - s), s);
        return 0;
}

static int parse_calls(struct parser *p, const char *s, const char *end, uint32_t *out)
{
        *out = 0;
        while (s <= end) {
                const char *comma = find_char(s, end, ',');
                size_t n = (size_t)(comma - s);
                int c = rule_call_by_name(s, n);
                uint32_t mask = c >= 0 ? WB_CALL_BIT(c) : 0;

                for (size_t g = 0; g < N_ELEMS(call_groups); g++)
                        if (word_is(s, n, call_groups[g].name))
                                mask = call_groups[g].mask;
                if (!mask)
                        return fail_at(p, s, n ? "unknown call '%.*s'" : "empty call name%.*s",
                                       (int)n, s);
                *out |= mask;
                s = comma + 1;
        }
        return 0;
}

/* The 0xOFFSET of site=: hexadecimal, at most 16 digits. */
static int parse_site_offset(struct parser *p, const char *s, const char *end, uint64_t *out)
{
        uint64_t v = 0;

        if (s == end)
                return fail_at(p, s, "site: expected hexadecimal digits after 0x");
        for (const char *c = s; c < end; c++) {
                int d = is_digit(*c)               ? *c - '0'
                        : (*c >= 'a' && *c <= 'f') ? *c - 'a' + 10
                        : (*c >= 'A' && *c <= 'F') ? *c - 'A' + 10
                                                   : -1;
                if (d < 0)
                        return fail_at(p, c, "site: '%c' is not a hexadecimal digit", *c);
                if (v >> 60)
                        return fail_at(p, s, "site: offset 0x%.*s is too large", (int)(end - s), s);
                v = v << 4 | (uint64_t)d;
        }
        *out = v;
        return 0;
}

/* site=MODULE or site=MODULE+0xOFFSET. A module name may itself hold '+'
 * (libstdc++.so.6): only a last '+' followed by 0x starts an offset. */
static int parse_site(struct parser *p, const char *v, const char *end, struct wb_rule *r)
{
        const char *plus = NULL, *mod_end = end;

        for (const char *c = v; c < end; c++)
                if (*c == '+')
                        plus = c;
        if (plus && end - plus >= 3 && plus[1] == '0' && (plus[2] == 'x' || plus[2] == 'X')) {
                mod_end = plus;
                if (parse_site_offset(p, plus + 3, end, &r->site_offset))
                        return -1;
                r->site_has_offset = true;
        } else if (plus && plus + 1 < end && is_digit(plus[1])) {
                return fail_at(p, plus + 1, "site: the offset is hexadecimal with a 0x prefix");
        }
        /* '#' and ';' would not survive the canonical form (see process=) */
        bool control = false; /* a NUL would cut the name short in the canonical form */
        for (const char *c = v; c < mod_end; c++)
                control |= (unsigned char)*c < 0x20 || *c == 0x7f;
        if (v == mod_end || (size_t)(mod_end - v) >= sizeof r->site || control ||
            memchr(v, '/', (size_t)(mod_end - v)) || memchr(v, '#', (size_t)(mod_end - v)) ||
            memchr(v, ';', (size_t)(mod_end - v)))
                return fail_at(p, v,
                               "site: expected the basename of a loaded object (no '/', '#' or "
                               "';', at most %zu characters)",
                               sizeof r->site - 1);
        if (r->site_has_offset && word_is(v, (size_t)(mod_end - v), WB_SITE_UNKNOWN))
                return fail_at(p, mod_end,
                               "site: a place outside every object (" WB_SITE_UNKNOWN
                               ") has no offset");
        memcpy(r->site, v, (size_t)(mod_end - v));
        r->site[mod_end - v] = '\0';
        return 0;
}

enum key {
        K_ERRNO,
        K_SHORT,
        K_WHEN,
        K_PROB,
        K_MAX,
        K_UNTIL,
        K_PER,
        K_FD,
        K_TYPE,
        K_FAMILY,
        K_PORT,
        K_INFLIGHT,
        K_BLOCKING,
        K_PROCESS,
        K_SITE,
        K_EDGE,
        K_COUNT
};
static const char *const key_names[K_COUNT] = {
    "errno", "short",  "when", "prob",     "max",      "until",   "per",  "fd",
    "type",  "family", "port", "inflight", "blocking", "process", "site", "edge",
};

static const char *const type_words[] = {"socket", "pipe", "tty", "file", "other"};
static const unsigned type_bits[] = {WB_TYPE_SOCKET, WB_TYPE_PIPE, WB_TYPE_TTY, WB_TYPE_FILE,
                                     WB_TYPE_OTHER};
static const char *const family_words[] = {"unix", "inet", "inet6"};
static const unsigned family_bits[] = {WB_FAMILY_UNIX, WB_FAMILY_INET, WB_FAMILY_INET6};

static int parse_value(struct parser *p, enum key k, const char *v, const char *end,
                       struct wb_rule *r)
{
        uint64_t n;
        bool b;

        switch (k) {
        case K_ERRNO:
                r->action = WB_ACT_ERRNO;
                return parse_errno(p, v, end, &r->err);
        case K_SHORT:
                r->action = WB_ACT_SHORT;
                return parse_range(p, v, end, 1, UINT64_MAX >> 1, &r->short_n, "short");
        case K_WHEN:
                return parse_when(p, v, end, r);
        case K_PROB:
                r->has_prob = true;
                return parse_prob(p, v, end, &r->prob);
        case K_MAX:
                return parse_range(p, v, end, 1, UINT64_MAX >> 1, &r->max, "max");
        case K_UNTIL:
                if (!word_is(v, (size_t)(end - v), "poll"))
                        return fail_at(p, v, "until: expected poll, got '%.*s'", (int)(end - v), v);
                r->until_poll = true;
                return 0;
        case K_PER:
                return parse_choice(p, v, end, "per", "fd", "process", &r->per_process);
        case K_FD:
                if (parse_range(p, v, end, 0, INT32_MAX, &n, "fd"))
                        return -1;
                r->fd = (int)n;
                return 0;
        case K_TYPE:
                return parse_word_list(p, v, end, "type", type_words, type_bits,
                                       N_ELEMS(type_words), &r->types);
        case K_FAMILY:
                return parse_word_list(p, v, end, "family", family_words, family_bits,
                                       N_ELEMS(family_words), &r->families);
        case K_PORT:
                if (parse_range(p, v, end, 1, 65535, &n, "port"))
                        return -1;
                r->port = (int)n;
                return 0;
        case K_INFLIGHT:
                return parse_choice(p, v, end, "inflight", "yes", "any", &r->inflight_any);
        case K_BLOCKING:
                if (parse_choice(p, v, end, "blocking", "no", "any", &b))
                        return -1;
                r->blocking_any = b;
                return 0;
        case K_PROCESS:
                /* '#' and ';' would not survive the canonical form in a file
                 * (a comment) or in a rule list (a separator) */
                if (v == end || (size_t)(end - v) >= sizeof r->process ||
                    memchr(v, '/', (size_t)(end - v)) || memchr(v, '#', (size_t)(end - v)) ||
                    memchr(v, ';', (size_t)(end - v)))
                        return fail_at(p, v,
                                       "process: expected a program name (no '/', '#' or ';', "
                                       "at most %zu characters)",
                                       sizeof r->process - 1);
                memcpy(r->process, v, (size_t)(end - v));
                r->process[end - v] = '\0';
                return 0;
        case K_SITE:
                return parse_site(p, v, end, r);
        case K_EDGE:
                return parse_choice(p, v, end, "edge", "owed", "none", &r->edge_none);
        case K_COUNT:
                break;
        }
        return -1;
}

int rule_parse(const char *text, size_t len, const char *where, unsigned col_base,
               struct wb_rule *r, struct wb_diag *diag)
{
        struct parser p = {text, len, where, col_base, diag};
        const char *s = text, *end = text + len, *seen[K_COUNT] = {0};

        memset(r, 0, sizeof *r);
        r->fd = -1;
        r->port = -1;
        r->types = WB_TYPE_DEFAULT;

        while (s < end && is_space(*s))
                s++;
        while (end > s && is_space(end[-1]))
                end--;
        if (s == end)
                return fail_at(&p, s, "empty rule");
        fmt_copy(r->text, sizeof r->text, s, (size_t)(end - s));

        /* CALLS */
        const char *tok_end = s;
        while (tok_end < end && !is_space(*tok_end))
                tok_end++;
        if (parse_calls(&p, s, tok_end, &r->calls))
                return -1;

        for (s = tok_end; s < end; s = tok_end) {
                while (s < end && is_space(*s))
                        s++;
                if (s == end)
                        break;
                tok_end = s;
                while (tok_end < end && !is_space(*tok_end))
                        tok_end++;
                const char *eq = find_char(s, tok_end, '=');
                if (eq == tok_end)
                        return fail_at(&p, s, "expected KEY=VALUE, got '%.*s'", (int)(tok_end - s),
                                       s);
                enum key k;
                for (k = 0; k < K_COUNT; k++)
                        if (word_is(s, (size_t)(eq - s), key_names[k]))
                                break;
                if (k == K_COUNT)
                        return fail_at(&p, s, "unknown key '%.*s'", (int)(eq - s), s);
                if (seen[k])
                        return fail_at(&p, s, "duplicate key '%s'", key_names[k]);
                if ((k == K_ERRNO && seen[K_SHORT]) || (k == K_SHORT && seen[K_ERRNO]))
                        return fail_at(&p, s, "a rule has one action: errno= or short=, not both");
                seen[k] = s;
                if (parse_value(&p, k, eq + 1, tok_end, r))
                        return -1;
        }

        if (seen[K_SHORT] && (r->calls & (WB_GROUP_ACCEPT | WB_GROUP_CONNECT)))
                return fail_at(
                    &p, seen[K_SHORT],
                    "short= applies to input and output calls only, not to accept or connect");
        if (seen[K_EDGE] && !seen[K_SHORT])
                return fail_at(&p, seen[K_EDGE], "edge= applies with short= only");
        return 0;
}

int rule_parse_list(const char *text, const char *name, struct wb_rule *rules, unsigned *n,
                    unsigned max, struct wb_diag *diag)
{
        char where[WB_NAME_MAX + 2];
        const char *s = text;
        unsigned pos = 0;
        size_t wl = strnlen(name, sizeof where - 1);

        memcpy(where, name, wl); /* "%s:", cut to the buffer */
        if (wl < sizeof where - 1)
                where[wl++] = ':';
        where[wl] = '\0';
        for (;;) {
                const char *semi = strchr(s, ';');
                const char *end = semi ? semi : s + strlen(s);
                const char *t = s;

                while (t < end && is_space(*t))
                        t++;
                if (t < end) {
                        if (*n >= max) {
                                snprintf(diag->msg, sizeof diag->msg,
                                         "%s%u: too many rules (at most %u)", where,
                                         (unsigned)(t - text) + 1, max);
                                return -1;
                        }
                        struct wb_rule *r = &rules[*n];
                        if (rule_parse(s, (size_t)(end - s), where, (unsigned)(s - text) + 1, r,
                                       diag))
                                return -1;
                        fmt_copy(r->scenario, sizeof r->scenario, name, strlen(name));
                        r->line = ++pos;
                        (*n)++;
                }
                if (!semi)
                        return 0;
                s = semi + 1;
        }
}

/* ---- canonical form ---- */

struct out {
        char *buf;
        size_t size, len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(o->buf + (o->len < o->size ? o->len : o->size),
                      o->len < o->size ? o->size - o->len : 0, fmt, ap);
        va_end(ap);
        if (n > 0)
                o->len += (size_t)n;
}

static void put_words(struct out *o, const char *key, unsigned bits, const char *const *words,
                      const unsigned *word_bits, size_t n)
{
        const char *sep = "";
        put(o, " %s=", key);
        for (size_t i = 0; i < n; i++)
                if (bits & word_bits[i]) {
                        put(o, "%s%s", sep, words[i]);
                        sep = ",";
                }
}

/* The shortest decimal that parse_prob reads back as this very double:
 * parse_prob divides the digits once by 10^k, so for each k the digits to
 * print are round(prob * 10^k) or a neighbour (the product itself rounds). */
static void put_prob(struct out *o, double prob)
{
        for (unsigned k = 1; k <= PROB_DIGITS; k++) {
                uint64_t near = (uint64_t)(prob * pow10_table[k] + 0.5);
                for (uint64_t m = near > 2 ? near - 2 : 0; m <= near + 2; m++) {
                        if ((double)m / pow10_table[k] != prob)
                                continue;
                        uint64_t one = (uint64_t)pow10_table[k];
                        put(o, " prob=%llu.%0*llu", (unsigned long long)(m / one), (int)k,
                            (unsigned long long)(m % one));
                        return;
                }
        }
        /* not reached for a value parse_prob made; the closest, then */
        put(o, " prob=0.%018llu", (unsigned long long)(prob * 1e18 + 0.5));
}

int rule_format(const struct wb_rule *r, char *buf, size_t size)
{
        struct out o = {buf, size, 0};
        uint32_t left = r->calls;
        const char *sep = "";

        if (size)
                buf[0] = '\0';
        for (size_t g = 0; g < N_ELEMS(call_groups) && left; g++)
                if ((left & call_groups[g].mask) == call_groups[g].mask) {
                        put(&o, "%s%s", sep, call_groups[g].name);
                        left &= ~call_groups[g].mask;
                        sep = ",";
                }
        for (int c = 0; c < WB_CALL_COUNT; c++)
                if (left & WB_CALL_BIT(c)) {
                        put(&o, "%s%s", sep, call_names[c]);
                        sep = ",";
                }

        if (r->action == WB_ACT_SHORT) {
                put(&o, " short=%llu edge=%s", (unsigned long long)r->short_n,
                    r->edge_none ? "none" : "owed");
        } else if (r->err) {
                const char *name = rule_errno_name(r->err);
                if (name)
                        put(&o, " errno=%s", name);
                else
                        put(&o, " errno=%d", r->err);
        } else if (!(r->calls & WB_GROUP_CONNECT)) {
                put(&o, " errno=EAGAIN");
        } /* else: the per-family connect default, which has no single name */

        for (unsigned i = 0; i < r->n_when; i++) {
                const struct wb_when *w = &r->when[i];
                put(&o, "%s%llu", i ? "," : " when=", (unsigned long long)w->first);
                if (w->last == WB_WHEN_OPEN)
                        put(&o, "+");
                else if (w->last != w->first)
                        put(&o, "..%llu%s", (unsigned long long)w->last, w->step > 1 ? "+" : "");
                else
                        continue; /* a single number: its step means nothing */
                if (w->step > 1)
                        put(&o, "%llu", (unsigned long long)w->step);
        }
        if (r->has_prob)
                put_prob(&o, r->prob);
        if (r->max)
                put(&o, " max=%llu", (unsigned long long)r->max);
        if (r->until_poll)
                put(&o, " until=poll");
        put(&o, " per=%s", r->per_process ? "process" : "fd");
        if (r->fd >= 0)
                put(&o, " fd=%d", r->fd);
        put_words(&o, "type", r->types, type_words, type_bits, N_ELEMS(type_words));
        if (r->families)
                put_words(&o, "family", r->families, family_words, family_bits,
                          N_ELEMS(family_words));
        if (r->port >= 0)
                put(&o, " port=%d", r->port);
        if (r->calls & (WB_GROUP_OUTPUT | WB_CALL_BIT(WB_SPLICE)))
                put(&o, " inflight=%s", r->inflight_any ? "any" : "yes");
        put(&o, " blocking=%s", r->blocking_any ? "any" : "no");
        if (r->site[0])
                put(&o, " site=%s", r->site);
        if (r->site_has_offset)
                put(&o, "+0x%llx", (unsigned long long)r->site_offset);
        if (r->process[0])
                put(&o, " process=%s", r->process);
        return (int)o.len;
}
