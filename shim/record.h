/* record.h - recording mode (WOULDBLOCK_RECORD): the would-block points a
 * run reaches, for `wouldblock explore` and `minimize`.
 *
 * A point is a call (recv, write, ...), the place it is made from (site=)
 * and a stable description of its fd (type, family, peer port when that is
 * not ephemeral), in one process. The file gets, as things happen:
 *
 *   process PID NAME          first, once per process
 *   point ID CALL FILTERS     at a point's first call
 *   inject ID K ACTION        at each injection (K: the point's hit number)
 *   hits ID N BLOCKING_N      at exit, for every point
 *
 * FILTERS select exactly the point's calls, so that the rule
 * `CALL FILTERS per=process when=K ACTION` injects at the K-th hit again.
 * Everything on the call path is lock-free and async-signal-safe: lines
 * go out with one write(2) each, on an O_APPEND file.
 */
#ifndef WB_RECORD_H
#define WB_RECORD_H

#include "engine.h"
#include "fdstate.h"
#include "site.h"

#include <stdbool.h>
#include <stdint.h>

/* A point's number and the call's hit number in it (0: not a hit, a call
 * on a blocking fd). id 0: no point (not recording, or the table is full). */
struct wb_rec {
        uint32_t id;
        uint64_t k;
};

/* Open the file (path: as given, %p not yet expanded; NULL: not
 * recording) and write the process line. The process is named by argv0's
 * basename, or the executable's when that one cannot be a process= value.
 * 0 / -1 with diag. */
int record_init(const char *path, const char *argv0, const char *exe, struct wb_diag *diag);

/* Is recording on? Then every call is armed. */
bool record_active(void);

/* One call on an fd of a default type (socket, pipe, tty), from place at;
 * hit: it could have returned EAGAIN (non-blocking fd or MSG_DONTWAIT). */
void record_call(const struct wb_callinfo *c, const struct wb_fdfacts *f, bool hit,
                 const struct wb_site *at, struct wb_rec *out);

/* An injection was made on the call recorded as rec. */
void record_injection(const struct wb_rec *rec, const struct wb_decision *d);

/* The hits lines: at exit and _exit, once, in the process that recorded. */
void record_finish(void);

/* In a forked child: its own points from 1, its own file when the path
 * has %p, its own process line. */
void record_restart(void);

#endif
