/* loader.c - dlopen and dlclose, seen so that the site table (site.c)
 * follows the set of loaded objects.
 *
 * The loader looks at dlopen's return address: a bare name is searched
 * along the calling object's RPATH/RUNPATH, and $ORIGIN means the caller's
 * directory. A dlopen that depends on that (a '$', or a bare name called
 * from an object that has an RPATH or RUNPATH) is passed on by a tail
 * call, which leaves the program's return address in place; its objects
 * join the table at the next refresh. Every other dlopen is made here and
 * followed by a refresh (once the table is built at all, see site.h):
 * the loader searches the same places for it from this library, which has
 * neither. Both run in the program's ordinary
 * context (dlopen is not async-signal-safe), never on a wrapped call's path.
 */
#include "boot.h"
#include "site.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#define WB_EXPORT __attribute__((visibility("default")))

typedef void *(*dlopen_fn)(const char *, int);
typedef int (*dlclose_fn)(void *);
static _Atomic(dlopen_fn) next_dlopen WB_BOOT;
static _Atomic(dlclose_fn) next_dlclose WB_BOOT;

static void bind(void)
{
        atomic_store(&next_dlopen, (dlopen_fn)dlsym(RTLD_NEXT, "dlopen"));
        atomic_store(&next_dlclose, (dlclose_fn)dlsym(RTLD_NEXT, "dlclose"));
}

static void refresh_keeping_errno(void)
{
        int saved = errno;
        site_follow();
        errno = saved;
}

/* Does the loader find file the same whether dlopen is called from caller
 * or from here? */
static bool caller_independent(const char *file, const void *caller)
{
        if (!file || strchr(file, '$'))
                return !file;
        if (strchr(file, '/'))
                return true;
#ifdef __GLIBC__
        Dl_info info;
        struct link_map *map = NULL;

        if (!dladdr1(caller, &info, (void **)&map, RTLD_DL_LINKMAP) || !map || !map->l_ld)
                return false;
        for (const ElfW(Dyn) *d = map->l_ld; d->d_tag != DT_NULL; d++)
                if (d->d_tag == DT_RPATH || d->d_tag == DT_RUNPATH)
                        return false;
#else
        (void)caller; /* musl's dlopen searches the same places whoever calls it */
#endif
        return true;
}

WB_EXPORT void *dlopen(const char *file, int mode)
{
        void *(*real)(const char *, int) = atomic_load(&next_dlopen);
        void *h;

        if (!real) {
                bind();
                real = atomic_load(&next_dlopen);
        }
        if (!caller_independent(file, __builtin_return_address(0)))
                return real(file, mode); /* a tail call: the loader sees our caller */
        h = real(file, mode);
        if (h)
                refresh_keeping_errno();
        return h;
}

WB_EXPORT int dlclose(void *handle)
{
        int (*real)(void *) = atomic_load(&next_dlclose);
        int r;

        if (!real) {
                bind();
                real = atomic_load(&next_dlclose);
        }
        r = real(handle);
        refresh_keeping_errno();
        return r;
}
