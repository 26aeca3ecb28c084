/* site.h - where a call comes from: the loaded object (its basename) and
 * the offset from its load base of a return address (SPEC §3 site=).
 *
 * A table of the loaded objects' address ranges is built when the first
 * rule set that looks places up is installed (a site= rule, or recording)
 * and from then on rebuilt when the set of objects changes (after dlopen
 * and dlclose, see loader.c). Until then every place is unknown, and no
 * rule asks. Building it takes the loader's lock (dl_iterate_phdr), so it
 * never happens on a wrapped call's path; looking an address up does not
 * lock, allocate or make a system call, and is safe in a signal handler.
 */
#ifndef WB_SITE_H
#define WB_SITE_H

#include "rules.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct wb_site {
        char module[WB_SITE_MAX]; /* basename, or WB_SITE_UNKNOWN */
        uint64_t offset;          /* from the object's load base; 0 when unknown */
        bool main;                /* the executable */
};

/* Build, or rebuild, the table from the loader's list of objects. None
 * of these is async-signal-safe: installs and the dlopen/dlclose wrappers
 * call them. */
void site_refresh(void);
/* Build the table unless it is built: before a rule set that looks places
 * up is published. */
void site_need(void);
/* Rebuild the table if it is built (after dlopen, dlclose). */
void site_follow(void);
/* The executable's path (/proc/self/exe), which the library reads once at
 * start; without it the first build reads the link itself. */
void site_set_exe(const char *path);

/* Where addr lies. An address in no object of the table (code generated
 * at run time, or an object loaded since the last refresh without dlopen,
 * such as glibc's own NSS modules) is WB_SITE_UNKNOWN. */
void site_lookup(const void *addr, struct wb_site *out);

/* Changes whenever the table does (a refresh moves it twice): an answer
 * worked out from a lookup holds while the epoch read before that lookup
 * is still the current one. */
extern _Atomic unsigned wb_site_seq;
static inline unsigned site_epoch(void)
{
        return atomic_load_explicit(&wb_site_seq, memory_order_acquire);
}

/* In a forked child: the table is the parent's (same objects), only the
 * refresh lock is reset. */
void site_after_fork(void);

#endif
