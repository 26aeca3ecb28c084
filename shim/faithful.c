/* faithful.c - what Linux can produce for this call on this fd now (see
 * faithful.h). The rules, one function each, and why:
 *
 * - A datagram (or a SOCK_SEQPACKET record) is never cut: its tail would be
 *   lost. The mmsg calls are shortened by whole messages instead.
 * - A message that carries or asks for control data (SCM_RIGHTS,
 *   credentials) is never cut: Linux does not split them, and nginx passes
 *   descriptors to its workers in 32-byte messages it expects whole.
 * - MSG_PEEK is never cut: a peek sees every queued byte, and a program
 *   that peeks for a header and waits for more would spin on a ready fd.
 * - MSG_OOB is never cut: the urgent byte is the last one sent; cutting a
 *   send moves the mark, and an urgent read is one byte anyway.
 * - MSG_WAITALL on a blocking call is never cut: it returns less only on a
 *   signal, an error or the end of the stream.
 * - A write of at most PIPE_BUF bytes to a pipe or an AF_UNIX stream socket
 *   is never cut: POSIX makes it all or nothing on a pipe (libuv's signal
 *   pipe asserts on it), and Linux queues it as one piece on a unix socket.
 * - A read on a pipe or an AF_UNIX stream socket returns at least
 *   min(asked, available, PIPE_BUF): there Linux returns everything queued
 *   up to the size asked, so a cut can only look like "the writer had not
 *   written the rest yet", and one small write arrives together.
 * - A read on a stream whose sending side has hung up (end of stream
 *   queued: POLLRDHUP/POLLHUP) is never cut: everything there will ever be
 *   is there, and libuv rightly takes "short read, then hang-up" for the
 *   end.
 * - A read on a TCP socket with SO_RCVLOWAT above 1 is never cut: poll
 *   would not report the bytes left behind, below the mark, until more came.
 * - Otherwise TCP (and a tty) is cut anywhere: a real network delivers
 *   bytes in pieces of any size.
 * - connect is injected on connection-oriented sockets only: a UDP or unix
 *   datagram connect completes at once, never "in progress".
 */
#include "faithful.h"

#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static bool is_mmsg(enum wb_call call)
{
        return call == WB_RECVMMSG || call == WB_SENDMMSG;
}

static bool is_local_stream(const struct wb_fdfacts *f)
{
        return f->type == WB_TYPE_PIPE || (f->type == WB_TYPE_SOCKET &&
                                           f->family == WB_FAMILY_UNIX && f->sotype == SOCK_STREAM);
}

static bool is_tcp(const struct wb_fdfacts *f)
{
        return f->type == WB_TYPE_SOCKET && (f->family & (WB_FAMILY_INET | WB_FAMILY_INET6)) &&
               f->sotype == SOCK_STREAM;
}

/* The sending side is gone: the end of the stream is queued behind the data. */
static bool hung_up(int fd)
{
        struct pollfd p = {fd, POLLIN | POLLRDHUP, 0};
        int saved = errno;
        long r = wb_sys_ppoll_ms(&p, 1, 0);
        errno = saved;
        return r == 1 && (p.revents & (POLLHUP | POLLRDHUP));
}

/* Bytes queued for reading (FIONREAD, SIOCINQ on a socket); -1 unknown. */
static long readable(int fd)
{
        int n = -1, saved = errno;
        long r = wb_sys_ioctl(fd, FIONREAD, &n);
        errno = saved;
        return r == 0 ? n : -1;
}

static int rcvlowat(int fd)
{
        int v = 1, saved = errno;
        socklen_t len = sizeof v;
        if (getsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, &len) != 0)
                v = 1;
        errno = saved;
        return v;
}

static bool blocking_call(const struct wb_callinfo *c, const struct wb_fdfacts *f, int *nonblocking)
{
        if (c->flags & MSG_DONTWAIT)
                return false;
        if (*nonblocking < 0)
                *nonblocking = fd_state_nonblocking(c->fd, f->gen);
        return !*nonblocking;
}

static size_t input_limit(const struct wb_callinfo *c, const struct wb_fdfacts *f, size_t want,
                          int *nonblocking)
{
        if (c->flags & (MSG_PEEK | MSG_OOB))
                return 0;
        if ((c->flags & MSG_WAITALL) && blocking_call(c, f, nonblocking))
                return 0;
        if (hung_up(c->fd))
                return 0;
        if (is_local_stream(f)) {
                long avail = readable(c->fd);
                size_t whole = avail < 0 ? 0 : (size_t)avail < c->len ? (size_t)avail : c->len;
                size_t floor = whole < PIPE_BUF ? whole : PIPE_BUF;
                if (floor > want)
                        want = floor;
                return want < whole ? want : 0; /* all of it: nothing cut */
        }
        if (is_tcp(f) && rcvlowat(c->fd) > 1)
                return 0;
        return want;
}

static size_t output_limit(const struct wb_callinfo *c, const struct wb_fdfacts *f, size_t want)
{
        if (c->flags & MSG_OOB)
                return 0;
        if (is_local_stream(f) && c->len <= PIPE_BUF)
                return 0;
        return want;
}

size_t faithful_short_limit(const struct wb_callinfo *c, const struct wb_fdfacts *f, size_t want,
                            int *nonblocking)
{
        bool stream = f->type != WB_TYPE_SOCKET || f->sotype == SOCK_STREAM;
        bool input = WB_CALL_BIT(c->call) & WB_GROUP_INPUT;

        if (c->control)
                return 0;
        if (!(WB_CALL_BIT(c->call) & (WB_GROUP_INPUT | WB_GROUP_OUTPUT)))
                return !stream || c->len <= want ? 0 : want; /* splice, tee: their own rules */
        if (is_mmsg(c->call)) {
                /* len counts messages: fewer of them is always possible, but
                 * a unix stream message is not split (see output_limit) */
                if (c->len <= 1 && !stream)
                        return 0;
                if (stream && is_local_stream(f))
                        return 0;
                return input && (c->flags & (MSG_PEEK | MSG_OOB)) ? 0 : want;
        }
        if (!stream || c->len <= want)
                return 0;
        return input ? input_limit(c, f, want, nonblocking) : output_limit(c, f, want);
}

bool faithful_connect(const struct wb_fdfacts *f)
{
        return f->type == WB_TYPE_SOCKET && f->sotype != SOCK_DGRAM;
}
