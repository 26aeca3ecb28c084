/* real.c - binds the real libc functions once (see real.h). */
#include "real.h"

#include "boot.h"

#include <dlfcn.h>

struct wb_real_table wb_real WB_BOOT;
_Atomic int wb_real_state WB_BOOT;

bool real_bind(void)
{
        int expected = 0;

        if (!atomic_compare_exchange_strong_explicit(&wb_real_state, &expected, 1,
                                                     memory_order_acq_rel, memory_order_acquire))
                return expected == 2; /* bound already, or a bind is under way */

                /* dlsym may call malloc, and a malloc may call a wrapped function:
                 * such calls see state 1 and take the syscall fallback. */
#define WB_REAL_BIND(ret, name, params, args, fallback)                                            \
        *(void **)&wb_real.name = dlsym(RTLD_NEXT, #name);
        WB_REAL_FUNCS(WB_REAL_BIND)
#define WB_REAL_VBIND(ret, name, proto, params, args, fallback) WB_REAL_BIND(ret, name, , , )
        WB_REAL_VARIADIC(WB_REAL_VBIND)
#undef WB_REAL_VBIND
#undef WB_REAL_BIND
        atomic_store_explicit(&wb_real_state, 2, memory_order_release);
        return true;
}
