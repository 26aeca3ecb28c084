/* loader.c - dlopen and dlclose, seen so that the site table (site.c)
 * follows the set of loaded objects.
 *
 * The loader looks at dlopen's return address: it decides which object's
 * RUNPATH is searched for a bare name and what $ORIGIN means. A dlopen
 * whose name depends on that (no '/', or a '$') is therefore passed on by
 * a tail call, which leaves the program's return address in place; its
 * objects join the table at the next refresh. Every other dlopen is made
 * here and followed by a refresh. Both run in the program's ordinary
 * context (dlopen is not async-signal-safe), never on a wrapped call's path.
 */
#include "site.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#define WB_EXPORT __attribute__((visibility("default")))

static void *(*_Atomic next_dlopen)(const char *, int);
static int (*_Atomic next_dlclose)(void *);

static void bind(void)
{
        atomic_store(&next_dlopen, (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen"));
        atomic_store(&next_dlclose, (int (*)(void *))dlsym(RTLD_NEXT, "dlclose"));
}

static void refresh_keeping_errno(void)
{
        int saved = errno;
        site_refresh();
        errno = saved;
}

WB_EXPORT void *dlopen(const char *file, int mode)
{
        void *(*real)(const char *, int) = atomic_load(&next_dlopen);
        void *h;

        if (!real) {
                bind();
                real = atomic_load(&next_dlopen);
        }
        if (file && (!strchr(file, '/') || strchr(file, '$')))
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
