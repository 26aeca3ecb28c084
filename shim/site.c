/* site.c - the loaded objects' address ranges (see site.h).
 *
 * Built only once a rule set needs it (site_need): start-up without site=
 * or recording makes no mapping, no readlink and touches none of its pages.
 *
 * Two copies of the table and a sequence count, as the kernel's "latch":
 * readers use copy[seq & 1] and retry if seq moved meanwhile; the refresh
 * moves readers to the other copy before writing one, so a reader never
 * waits, not even a signal handler that interrupted a refresh on its own
 * thread.
 */
#include "site.h"

#include "boot.h"
#include "fmt.h"

#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_RANGES 4096    /* PT_LOAD segments of all objects */
#define NAMES_BYTES 131072 /* their basenames, back to back */

struct range {
        uintptr_t lo, hi; /* [lo, hi) */
        uintptr_t base;   /* the object's load base (dlpi_addr) */
        uint32_t name;    /* offset into names */
        bool main;
};

struct table {
        unsigned n, names_len, objects;
        struct range r[MAX_RANGES];
        char names[NAMES_BYTES];
};

static _Atomic(struct table *) copies WB_BOOT; /* two of them; NULL before the first refresh */
_Atomic unsigned wb_site_seq WB_BOOT;          /* site.h */
#define seq wb_site_seq
static pthread_mutex_t refresh_lock WB_BOOT = PTHREAD_MUTEX_INITIALIZER;
static char exe_name[WB_SITE_MAX] WB_BOOT;

static const char *base_name(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

static unsigned add_name(struct table *t, const char *name)
{
        size_t len = strnlen(name, WB_SITE_MAX - 1);
        unsigned at = t->names_len;

        if (at + len + 1 > NAMES_BYTES)
                return 0; /* full: the first name, an empty one, stands in */
        memcpy(t->names + at, name, len);
        t->names[at + len] = '\0';
        t->names_len += (unsigned)len + 1;
        return at;
}

static int add_object(struct dl_phdr_info *info, size_t size, void *arg)
{
        struct table *t = arg;
        bool main = t->objects++ == 0; /* the loader lists the executable first */
        const char *name = main ? exe_name : base_name(info->dlpi_name ? info->dlpi_name : "");
        unsigned at;

        (void)size;
        if (!name[0])
                return 0;
        at = add_name(t, name);
        for (int i = 0; i < info->dlpi_phnum && t->n < MAX_RANGES; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_LOAD || ph->p_memsz == 0)
                        continue;
                t->r[t->n++] = (struct range){info->dlpi_addr + ph->p_vaddr,
                                              info->dlpi_addr + ph->p_vaddr + ph->p_memsz,
                                              info->dlpi_addr, at, main};
        }
        return 0;
}

static void build(struct table *t)
{
        t->n = t->objects = 0;
        t->names[0] = '\0';
        t->names_len = 1; /* offset 0: the empty name */
        dl_iterate_phdr(add_object, t);
        /* sorted by start, for the binary search (a few hundred at most) */
        for (unsigned i = 1; i < t->n; i++) {
                struct range x = t->r[i];
                unsigned j = i;
                for (; j > 0 && t->r[j - 1].lo > x.lo; j--)
                        t->r[j] = t->r[j - 1];
                t->r[j] = x;
        }
}

static void copy_table(struct table *to, const struct table *from)
{
        to->n = from->n;
        to->names_len = from->names_len;
        memcpy(to->r, from->r, from->n * sizeof from->r[0]);
        memcpy(to->names, from->names, from->names_len);
}

/* Build the table if there is none yet (first), rebuild the one there is
 * (again). */
static void refresh(bool first, bool again)
{
        struct table *t;

        pthread_mutex_lock(&refresh_lock);
        t = atomic_load_explicit(&copies, memory_order_acquire);
        if (t ? !again : !first) {
                pthread_mutex_unlock(&refresh_lock);
                return;
        }
        if (!t) {
                if (!exe_name[0]) {
                        char exe[4096];
                        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
                        exe[n > 0 ? n : 0] = '\0';
                        site_set_exe(exe);
                }
                t = mmap(NULL, 2 * sizeof *t, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
                if (t == MAP_FAILED) {
                        pthread_mutex_unlock(&refresh_lock);
                        return; /* every place stays unknown */
                }
                build(&t[0]);
                copy_table(&t[1], &t[0]);
                atomic_store_explicit(&copies, t, memory_order_release);
                /* the epoch moves as with any refresh: an answer worked out
                 * while there was no table (every place unknown) is stale */
                atomic_fetch_add_explicit(&seq, 2, memory_order_seq_cst);
        } else {
                /* readers to copy 1 while copy 0 is rebuilt, then back */
                unsigned s = atomic_load_explicit(&seq, memory_order_relaxed);
                atomic_store_explicit(&seq, s + 1, memory_order_seq_cst);
                atomic_thread_fence(memory_order_seq_cst);
                build(&t[s & 1]);
                atomic_store_explicit(&seq, s + 2, memory_order_seq_cst);
                atomic_thread_fence(memory_order_seq_cst);
                copy_table(&t[(s + 1) & 1], &t[s & 1]);
        }
        pthread_mutex_unlock(&refresh_lock);
}

void site_set_exe(const char *path)
{
        const char *name = base_name(path);
        fmt_copy(exe_name, sizeof exe_name, name, strlen(name));
}

void site_refresh(void)
{
        refresh(true, true);
}

void site_need(void)
{
        if (!atomic_load_explicit(&copies, memory_order_acquire))
                refresh(true, false);
}

void site_follow(void)
{
        refresh(false, true);
}

void site_after_fork(void)
{
        pthread_mutex_init(&refresh_lock, NULL);
}

static void unknown(struct wb_site *out)
{
        memcpy(out->module, WB_SITE_UNKNOWN, sizeof WB_SITE_UNKNOWN);
        out->offset = 0;
        out->main = false;
}

/* One look at one copy; it may be overwritten meanwhile (the caller then
 * retries), so every index is bounded before use. */
static void lookup_in(const struct table *t, uintptr_t a, struct wb_site *out)
{
        unsigned lo = 0, hi = t->n < MAX_RANGES ? t->n : MAX_RANGES;

        while (lo < hi) {
                unsigned mid = lo + (hi - lo) / 2;
                if (t->r[mid].lo <= a)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo == 0 || a >= t->r[lo - 1].hi) {
                unknown(out);
                return;
        }
        const struct range *r = &t->r[lo - 1];
        unsigned name = r->name < NAMES_BYTES ? r->name : 0;
        size_t len = strnlen(t->names + name, NAMES_BYTES - name);
        if (len >= sizeof out->module)
                len = sizeof out->module - 1;
        memcpy(out->module, t->names + name, len);
        out->module[len] = '\0';
        out->offset = a - r->base;
        out->main = r->main;
}

void site_lookup(const void *addr, struct wb_site *out)
{
        struct table *t = atomic_load_explicit(&copies, memory_order_acquire);
        unsigned s;

        if (!t) {
                unknown(out);
                return;
        }
        do {
                s = atomic_load_explicit(&seq, memory_order_acquire);
                lookup_in(&t[s & 1], (uintptr_t)addr, out);
                atomic_thread_fence(memory_order_acquire);
        } while (atomic_load_explicit(&seq, memory_order_relaxed) != s);
        if (!out->module[0])
                unknown(out);
}
