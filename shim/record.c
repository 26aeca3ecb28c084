/* record.c - recording mode (see record.h).
 *
 * Points live in an open-addressing table keyed by a 64-bit hash of what
 * the point's rule would filter on; a slot is claimed with one
 * compare-and-swap, so two threads (or a signal handler and the code it
 * interrupted) never wait for each other. Two different points with the
 * same 64-bit hash would be merged: with a few thousand points the odds
 * are below 1e-12.
 *
 * A call to a peer on a stable port counts in two points: the one with
 * port=P, and the one without port= (which the rule without port= would
 * count too). The second is listed only once a call without a stable port
 * reached it, so a site that only ever talks to port P has one point.
 */
#include "record.h"

#include "config.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS 16384 /* points per process; more are not recorded */
#define PROBES 64

struct slot {
        _Atomic uint64_t key; /* 0: free */
        _Atomic uint32_t id;  /* 0: not listed yet */
        _Atomic uint64_t hits, blocking;
};

static struct slot *slots; /* SLOTS of them, mmap'd at init and in a forked child */
static _Atomic uint32_t next_id;
static int rec_fd = -1;
static char rec_path[PATH_MAX]; /* absolute, %p unexpanded */
static char process_name[WB_NAME_MAX];
static unsigned ephemeral_lo = 32768, ephemeral_hi = 60999; /* Linux's defaults */
static pid_t owner;
static _Atomic bool finished;

/* ---- a line, built on the stack ---- */

struct line {
        size_t len;
        char buf[512];
};

static void put(struct line *l, const char *s)
{
        size_t n = strlen(s);
        if (n > sizeof l->buf - 1 - l->len)
                n = sizeof l->buf - 1 - l->len;
        memcpy(l->buf + l->len, s, n);
        l->len += n;
}

static void put_num(struct line *l, uint64_t v, unsigned base)
{
        char d[24];
        int i = sizeof d - 1;
        d[i] = '\0';
        do
                d[--i] = "0123456789abcdef"[v % base];
        while (v /= base);
        put(l, d + i);
}

static void emit(struct line *l)
{
        int saved = errno;
        l->buf[l->len++] = '\n';
        if (rec_fd >= 0)
                real_write(rec_fd, l->buf, l->len); /* O_APPEND: one line, whole */
        errno = saved;
}

/* ---- start ---- */

static int open_file(void)
{
        char path[PATH_MAX], pid[24];

        snprintf(pid, sizeof pid, "%d", (int)getpid());
        config_expand_pid(rec_path, pid, strlen(pid), path, sizeof path);
        return wb_sys_open_append(path);
}

static void begin(void)
{
        struct line l = {0};

        slots = mmap(NULL, SLOTS * sizeof *slots, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (slots == MAP_FAILED)
                slots = NULL;
        atomic_store(&next_id, 0);
        atomic_store(&finished, false);
        owner = getpid();
        put(&l, "process ");
        put_num(&l, (uint64_t)owner, 10);
        put(&l, " ");
        put(&l, process_name);
        emit(&l);
}

static void read_ephemeral_range(void)
{
        char buf[64] = {0};
        unsigned lo, hi;
        int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/sys/net/ipv4/ip_local_port_range",
                              O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        if (real_read(fd, buf, sizeof buf - 1) > 0 && sscanf(buf, "%u %u", &lo, &hi) == 2 &&
            lo <= hi) {
                ephemeral_lo = lo;
                ephemeral_hi = hi;
        }
        real_close(fd);
}

/* Can name stand as process=NAME in a rule (and as one field of a line)? */
static bool rule_word(const char *name)
{
        size_t n = strlen(name);
        return n > 0 && n < sizeof process_name && !strpbrk(name, "/#; \t\r\n\v\f");
}

int record_init(const char *path, const char *argv0, const char *exe, struct wb_diag *d)
{
        if (!path)
                return 0;
        if (config_absolute_path(path, rec_path, sizeof rec_path, d, "WOULDBLOCK_RECORD"))
                return -1;
        if (rule_word(argv0) || rule_word(exe))
                snprintf(process_name, sizeof process_name, "%s", rule_word(argv0) ? argv0 : exe);
        read_ephemeral_range();
        rec_fd = open_file();
        if (rec_fd < 0) {
                snprintf(d->msg, sizeof d->msg, "WOULDBLOCK_RECORD:1: cannot open %s: %s", path,
                         strerror(errno));
                return -1;
        }
        begin();
        return 0;
}

bool record_active(void)
{
        return rec_fd >= 0;
}

void record_restart(void)
{
        if (rec_fd < 0)
                return;
        if (slots)
                munmap(slots, SLOTS * sizeof *slots);
        if (strstr(rec_path, "%p")) {
                real_close(rec_fd);
                rec_fd = open_file();
                if (rec_fd < 0)
                        return;
        }
        begin();
}

/* ---- points ---- */

struct point {
        enum wb_call call;
        const struct wb_site *at;
        unsigned type, family, port; /* port: 0 when not in the filters */
};

static uint64_t mix(uint64_t h, uint64_t v)
{
        h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
        h *= 0xbf58476d1ce4e5b9ull;
        return h ^ (h >> 31);
}

static uint64_t point_key(const struct point *p)
{
        uint64_t h = mix(mix(mix(1, p->call), p->type), (uint64_t)p->family << 16 | p->port);
        for (const char *c = p->at->module; *c; c++)
                h = mix(h, (unsigned char)*c);
        h = mix(h, p->at->offset);
        return h ? h : 1;
}

static struct slot *find(uint64_t key)
{
        if (!slots)
                return NULL;
        for (unsigned i = 0; i < PROBES; i++) {
                struct slot *s = &slots[(key + i) & (SLOTS - 1)];
                uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);
                if (k == 0 && atomic_compare_exchange_strong_explicit(
                                  &s->key, &k, key, memory_order_acq_rel, memory_order_acquire))
                        return s;
                if (k == key)
                        return s;
        }
        return NULL; /* full around here: not recorded */
}

static const char *const type_names[] = {"socket", "pipe", "tty"};
static const char *const family_names[] = {"unix", "inet", "inet6"};

/* the name of a one-bit value from its table (bit 1 first) */
static const char *bit_name(unsigned bit, const char *const *names, unsigned n)
{
        for (unsigned i = 0; i < n; i++)
                if (bit == 1u << i)
                        return names[i];
        return NULL;
}

#define LISTING UINT32_MAX /* the id of a point being listed right now */

static void list_point(struct slot *s, const struct point *p)
{
        uint32_t zero = 0, id;
        struct line l = {0};
        const char *family = bit_name(p->family, family_names, 3);

        /* claimed first, numbered second: numbers have no gaps */
        if (!atomic_compare_exchange_strong(&s->id, &zero, LISTING))
                return; /* another thread lists it */
        id = atomic_fetch_add(&next_id, 1) + 1;
        atomic_store(&s->id, id);
        put(&l, "point ");
        put_num(&l, id, 10);
        put(&l, " ");
        put(&l, rule_call_name(p->call));
        put(&l, " site=");
        put(&l, p->at->module);
        if (strcmp(p->at->module, WB_SITE_UNKNOWN) != 0) {
                put(&l, "+0x");
                put_num(&l, p->at->offset, 16);
        }
        put(&l, " type=");
        put(&l, bit_name(p->type, type_names, 3));
        if (family) {
                put(&l, " family=");
                put(&l, family);
        }
        if (p->port) {
                put(&l, " port=");
                put_num(&l, p->port, 10);
        }
        if (process_name[0]) {
                put(&l, " process=");
                put(&l, process_name);
        }
        emit(&l);
}

/* bump the point's counters; its hit number (0 for a blocking call) */
static uint64_t count(struct slot *s, bool hit)
{
        if (!hit) {
                atomic_fetch_add_explicit(&s->blocking, 1, memory_order_relaxed);
                return 0;
        }
        return atomic_fetch_add_explicit(&s->hits, 1, memory_order_relaxed) + 1;
}

void record_call(const struct wb_callinfo *c, const struct wb_fdfacts *f, bool hit,
                 const struct wb_site *at, struct wb_rec *out)
{
        unsigned port = c->addr ? fd_state_addr_port(c->addr, c->addrlen) : f->port;
        bool stable = port && (port < ephemeral_lo || port > ephemeral_hi);
        struct point p = {c->call, at, f->type, f->family, 0};
        struct slot *any_port = find(point_key(&p)), *s = any_port;

        out->id = 0;
        out->k = 0;
        if (!any_port)
                return;
        out->k = count(any_port, hit);
        if (stable) {
                p.port = port;
                s = find(point_key(&p));
                if (!s)
                        return;
                out->k = count(s, hit);
        }
        if (!atomic_load_explicit(&s->id, memory_order_acquire))
                list_point(s, &p);
        out->id = atomic_load_explicit(&s->id, memory_order_acquire);
        if (out->id == LISTING)
                out->id = 0;
}

void record_injection(const struct wb_rec *rec, const struct wb_decision *d)
{
        const char *name;

        if (rec_fd < 0 || !rec->id)
                return; /* before the line's buffer is zeroed for nothing */
        struct line l = {0};
        put(&l, "inject ");
        put_num(&l, rec->id, 10);
        put(&l, " ");
        put_num(&l, rec->k, 10);
        if (d->verdict == WB_SHORT) {
                /* the rule's own action, so that a replay of this line cuts
                 * as this run did: the faithful limit is worked out again
                 * from it, and edge=none keeps its meaning */
                put(&l, " short=");
                put_num(&l, d->rule ? d->rule->short_n : d->limit, 10);
                if (d->rule && d->rule->edge_none)
                        put(&l, " edge=none");
        } else if ((name = rule_errno_name(d->err))) {
                put(&l, " errno=");
                put(&l, name);
        } else {
                put(&l, " errno=");
                put_num(&l, (uint64_t)d->err, 10);
        }
        emit(&l);
}

void record_finish(void)
{
        /* by point number; static: 64 KiB is much for an exiting thread's stack */
        static uint32_t by_id[SLOTS + 1];
        uint32_t n;

        /* a vfork child runs in our memory: it must leave our file alone */
        if (rec_fd < 0 || !slots || getpid() != owner || atomic_exchange(&finished, true))
                return;
        n = atomic_load(&next_id);
        memset(by_id, 0xff, sizeof by_id);
        for (uint32_t i = 0; i < SLOTS; i++) {
                uint32_t id = atomic_load(&slots[i].id);
                if (id && id != LISTING && id <= SLOTS)
                        by_id[id] = i;
        }
        for (uint32_t id = 1; id <= n && id <= SLOTS; id++) {
                struct line l = {0};
                if (by_id[id] == UINT32_MAX)
                        continue;
                struct slot *s = &slots[by_id[id]];
                put(&l, "hits ");
                put_num(&l, id, 10);
                put(&l, " ");
                put_num(&l, atomic_load(&s->hits), 10);
                put(&l, " ");
                put_num(&l, atomic_load(&s->blocking), 10);
                emit(&l);
        }
}
