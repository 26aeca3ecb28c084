/* real.c - binds the real libc functions once (see real.h). */
#include "real.h"

#include "boot.h"

#include <dlfcn.h>

/* An entry's first value: bind the table, then call through it; while a
 * bind is under way (this thread inside dlsym, or another thread binding),
 * or when the next object has no such function, the fallback. */
#define WB_REAL_FIRST(ret, name, params, args, fallback)                                           \
        static ret first_##name params                                                             \
        {                                                                                          \
                if (atomic_load_explicit(&wb_real_state, memory_order_acquire) == 2 ||             \
                    real_bind()) {                                                                 \
                        ret(*f_) params =                                                          \
                            atomic_load_explicit(&wb_real.name, memory_order_relaxed);             \
                        if (f_ != first_##name)                                                    \
                                return f_ args;                                                    \
                }                                                                                  \
                return (ret)(fallback);                                                            \
        }
WB_REAL_FUNCS(WB_REAL_FIRST)
#undef WB_REAL_FIRST

#define WB_REAL_INIT(ret, name, params, args, fallback) .name = first_##name,
struct wb_real_table wb_real WB_BOOT = {WB_REAL_FUNCS(WB_REAL_INIT)};
#undef WB_REAL_INIT
_Atomic int wb_real_state WB_BOOT;

bool real_bind(void)
{
        int expected = 0;

        if (!atomic_compare_exchange_strong_explicit(&wb_real_state, &expected, 1,
                                                     memory_order_acq_rel, memory_order_acquire))
                return expected == 2; /* bound already, or a bind is under way */

                /* dlsym may call malloc, and a malloc may call a wrapped function:
                 * such calls see state 1 and take the syscall fallback (or the
                 * real function, if its entry is bound already). */
#define WB_REAL_BIND(ret, name, params, args, fallback)                                            \
        {                                                                                          \
                ret(*f_) params;                                                                   \
                *(void **)&f_ = dlsym(RTLD_NEXT, #name);                                           \
                if (f_)                                                                            \
                        atomic_store_explicit(&wb_real.name, f_, memory_order_relaxed);            \
        }
        WB_REAL_FUNCS(WB_REAL_BIND)
#undef WB_REAL_BIND
#define WB_REAL_VBIND(ret, name, proto, params, args, fallback)                                    \
        *(void **)&wb_real.name = dlsym(RTLD_NEXT, #name);
        WB_REAL_VARIADIC(WB_REAL_VBIND)
#undef WB_REAL_VBIND
        atomic_store_explicit(&wb_real_state, 2, memory_order_release);
        return true;
}
