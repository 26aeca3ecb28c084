/* faithful.h - what Linux can produce for this call on this fd now (SPEC §4).
 *
 * A firing rule is only an injection when its result is one the kernel
 * could have given at that moment: programs that are right on every Linux
 * kernel must not be accused. The engine asks here, after a rule fired and
 * before it becomes an injection; "no" means the call passes unchanged (it
 * was counted, nothing was injected). Each answer is a few cheap facts (the
 * call's flags, the fd's type) and, only for a short transfer about to be
 * made, at most two system calls on the fd (poll, FIONREAD or getsockopt).
 */
#ifndef WB_FAITHFUL_H
#define WB_FAITHFUL_H

#include "engine.h"
#include "fdstate.h"

#include <stddef.h>

/* The limit a short transfer of at most want bytes gets for call c on an fd
 * with facts f, raised where Linux would have given more (local IPC), or 0
 * when no cut is faithful here. *nonblocking is the fd's O_NONBLOCK (-1:
 * not asked yet; asked and stored here when needed). */
size_t faithful_short_limit(const struct wb_callinfo *c, const struct wb_fdfacts *f, size_t want,
                            int *nonblocking);

/* May a connect on an fd with facts f fail or be reported in progress? */
bool faithful_connect(const struct wb_fdfacts *f);

#endif
