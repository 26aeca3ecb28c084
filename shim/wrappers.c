/* wrappers.c - the interposed public symbols, one short function each.
 *
 * Each wrapper: a call no active rule names goes straight to the real
 * function (one branch); otherwise the engine decides, and the wrapper fails
 * the call without touching the fd, calls it with a smaller length, or passes
 * it through. Nothing here locks or allocates: programs call write(2) from
 * signal handlers.
 */
#include "engine.h"
#include "fdstate.h"
#include "readiness.h"
#include "real.h"
#include "report.h"

#include <dirent.h>
#include <errno.h>
#include <spawn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define WB_EXPORT __attribute__((visibility("default")))
/* The public functions of the data calls, side by side, and the armed
 * halves and what they run after the real call, side by side with the
 * engine's hot path: sections that shim/hot.ld places (each page of code
 * touched between two system calls costs a TLB miss here, status.h). */
#define WB_HOT __attribute__((hot, section(".text.wb.public")))
#define WB_ARMED __attribute__((noinline, section(".text.wb.armed")))
/* read, write, recv and send: public function, armed half and finish on one
 * page (the engine's hot path starts a page of its own) */
#define WB_HOT_FIRST __attribute__((hot, section(".text.wb.first")))
#define WB_ARMED_FIRST __attribute__((noinline, section(".text.wb.first.armed")))
#define WB_INJECTED __attribute__((noinline, section(".text.wb.injected")))
#define IOV_CUT_MAX 64 /* iovecs kept when cutting a vectored call short */

static inline bool armed(enum wb_call call)
{
        return atomic_load_explicit(&wb_engine_armed, memory_order_relaxed) & WB_CALL_BIT(call);
}

/* Did a shortened call really get cut? Only then is it an injection: one
 * that met EAGAIN, end of file or less data than the limit changed nothing.
 * (The mmsg calls: see mmsg_cut.) */
static bool cut_took(const struct wb_callinfo *c, const struct wb_decision *d, long ret)
{
        if (c->call == WB_RECVMMSG || c->call == WB_SENDMMSG)
                return ret >= 1 && d->mmsg_cut_;
        return ret >= 0 && (size_t)ret == d->limit;
}

/* After the real call of an armed wrapper that was cut short: commit the
 * injection, owe the edge, count and log it. errno is the real call's and
 * stays so. */
static __attribute__((noinline, cold)) long finish_cut(const struct wb_callinfo *c,
                                                       const struct wb_decision *d, long ret)
{
        int saved = errno;

        engine_commit(d);
        /* the owed event is in the direction the call moved bytes on its fd
         * (a splice counted on its fd_out writes it) */
        readiness_short(c->fd, engine_call_writes(c), d->edge_owed);
        if (engine_call_reads(c))
                readiness_after_read(c->fd);
        report_call(c->call, true);
        report_injection(c, d, ret);
        fd_state_spin_end(c->fd); /* it moved bytes */
        errno = saved;
        return ret;
}

/* An injected failure: nothing reaches the kernel. After the armed halves
 * (shim/hot.ld): out of the page of a counted call that passes; a call
 * that fails here makes no system call, so no TLB miss either. */
static WB_INJECTED long fail(const struct wb_callinfo *c, const struct wb_decision *d)
{
        report_call(c->call, true);
        if (report_logging())
                report_injection(c, d, -1);
        if (d->err == EAGAIN) {
                report_would_block(c->fd, c->call);
                /* an edge-triggered waiter must hear of this fd again */
                if (c->call != WB_CONNECT)
                        readiness_injected(c->fd, engine_call_writes(c));
        }
        errno = d->err;
        return -1;
}

/* A passed-through call is counted, and its result ends or extends the fd's
 * spin (a would-block result). errno stays the real call's. The common case
 * (a success, counted in a known row: p, found before the system call) is
 * inline; the rest, a failure or a thread's first count, is passed_slow's,
 * out of line. */
static __attribute__((noinline)) long passed_slow(enum wb_call call, int fd, long ret)
{
        int saved = errno;
        report_seen(call);
        if (ret >= 0)
                fd_state_spin_end(fd);
        else if (saved == EAGAIN)
                report_would_block(fd, call);
        errno = saved;
        return ret;
}

static inline long passed(struct report_pass p, enum wb_call call, int fd, long ret)
{
        if (__builtin_expect(ret < 0 || !report_pass_count(p, call), 0)) /* touches no errno */
                return passed_slow(call, fd, ret);
        fd_state_spin_end_in(p.st, fd);
        return ret;
}

/* After the real call of an armed wrapper: a cut that took is an injection;
 * anything else (no cut asked, or one that met EAGAIN, end of file or less
 * data than the limit) is counted as a passed-through call, where p (found
 * before the system call, as in the passed-through path) says. */
static WB_ARMED_FIRST long finish(const struct wb_callinfo *c, const struct wb_decision *d,
                                  struct report_pass p, long ret)
{
        if (d && cut_took(c, d, ret))
                return finish_cut(c, d, ret);
        if (engine_call_reads(c))
                readiness_after_read(c->fd); /* keeps errno */
        return passed(p, c->call, c->fd, ret);
}

/* Each wrapper is two functions. The public one passes the call straight
 * through when no active rule names it: one branch and a small frame, the
 * common case. NAME_armed, out of line, asks the engine, then fails the call
 * without touching the fd, or makes it with WB_CUT(len) bytes (`cut_`: the
 * engine asked for a short transfer of d_.limit bytes), or passes it. LEN
 * and DEST (the destination address and its length) are evaluated only there: they may read the
 * program's structures, which a passed-through call must not touch (a NULL msghdr gets EFAULT). */
#define WB_WRAP(RET, NAME, PARAMS, ARGS, CALL, FD, LEN, FLAGS, DEST, PASS, REAL)                   \
        static WB_WRAP_ARMED RET NAME##_armed WB_SITE_PARAM PARAMS                                 \
        {                                                                                          \
                struct wb_callinfo c_ = {(CALL), (FD), (LEN), (FLAGS), DEST, site_, false};        \
                struct wb_decision d_;                                                             \
                enum wb_verdict v_ = engine_decide(&c_, &d_);                                      \
                if (v_ == WB_FAIL)                                                                 \
                        return (RET)fail(&c_, &d_);                                                \
                const bool cut_ = v_ == WB_SHORT;                                                  \
                const struct report_pass p_ = report_pass_begin();                                 \
                return (RET)finish(&c_, cut_ ? &d_ : NULL, p_, (REAL));                            \
        }                                                                                          \
        WB_EXPORT WB_WRAP_PUBLIC RET NAME PARAMS                                                   \
        {                                                                                          \
                if (__builtin_expect(!armed(CALL), 1)) {                                           \
                        const struct report_pass p_ = report_pass_begin();                         \
                        return (RET)passed(p_, (CALL), (FD), (PASS));                              \
                }                                                                                  \
                return NAME##_armed WB_SITE_ARG ARGS;                                              \
        }
/* WB_WRAP_PUBLIC and WB_WRAP_ARMED, the sections of the functions WB_WRAP
 * defines, are set where it is used: read, write, recv and send first, in
 * their own sections, then the other calls. */
/* The armed path gets the program's return address first: site= (SPEC §3)
 * names the place of the call into the exported function. */
#define WB_SITE_PARAM(...) (const void *site_, __VA_ARGS__)
#define WB_SITE_ARG(...) (__builtin_return_address(0), __VA_ARGS__)
#define WB_DEST(sa, len) (sa), (len), false
#define WB_NO_DEST NULL, 0, false
/* the same, for message calls: does the message carry or ask for control data? */
#define WB_DEST_CTL(sa, len, ctl) (sa), (len), (ctl)
#define WB_NO_DEST_CTL(ctl) NULL, 0, (ctl)
#define WB_CONTROL(m) ((m) && (m)->msg_controllen > 0)
#define WB_CUT(len) (cut_ && d_.limit < (len) ? d_.limit : (len))

/* ---- plain buffers ---- */

/* read, write, recv and send first: the pairs a program uses most, and
 * their armed halves, sit side by side in the code (shim/hot.ld). */
#define WB_WRAP_PUBLIC WB_HOT_FIRST
#define WB_WRAP_ARMED WB_ARMED_FIRST
WB_WRAP(ssize_t, read, (int fd, void *buf, size_t len), (fd, buf, len), WB_READ, fd, len, 0,
        WB_NO_DEST, real_read(fd, buf, len), real_read(fd, buf, WB_CUT(len)))
WB_WRAP(ssize_t, write, (int fd, const void *buf, size_t len), (fd, buf, len), WB_WRITE, fd, len, 0,
        WB_NO_DEST, real_write(fd, buf, len), real_write(fd, buf, WB_CUT(len)))
WB_WRAP(ssize_t, recv, (int fd, void *buf, size_t len, int fl), (fd, buf, len, fl), WB_RECV, fd,
        len, fl, WB_NO_DEST, real_recv(fd, buf, len, fl), real_recv(fd, buf, WB_CUT(len), fl))
WB_WRAP(ssize_t, send, (int fd, const void *buf, size_t len, int fl), (fd, buf, len, fl), WB_SEND,
        fd, len, fl, WB_NO_DEST, real_send(fd, buf, len, fl), real_send(fd, buf, WB_CUT(len), fl))
#undef WB_WRAP_PUBLIC
#undef WB_WRAP_ARMED
#define WB_WRAP_PUBLIC WB_HOT
#define WB_WRAP_ARMED WB_ARMED
WB_WRAP(ssize_t, __read_chk, (int fd, void *buf, size_t len, size_t buflen), (fd, buf, len, buflen),
        WB_READ, fd, len, 0, WB_NO_DEST, real___read_chk(fd, buf, len, buflen),
        real___read_chk(fd, buf, WB_CUT(len), buflen))
WB_WRAP(ssize_t, __recv_chk, (int fd, void *buf, size_t len, size_t buflen, int fl),
        (fd, buf, len, buflen, fl), WB_RECV, fd, len, fl, WB_NO_DEST,
        real___recv_chk(fd, buf, len, buflen, fl),
        real___recv_chk(fd, buf, WB_CUT(len), buflen, fl))
WB_WRAP(ssize_t, recvfrom,
        (int fd, void *buf, size_t len, int fl, __SOCKADDR_ARG sa, socklen_t *salen),
        (fd, buf, len, fl, sa, salen), WB_RECVFROM, fd, len, fl, WB_NO_DEST,
        real_recvfrom(fd, buf, len, fl, sa, salen),
        real_recvfrom(fd, buf, WB_CUT(len), fl, sa, salen))
WB_WRAP(ssize_t, __recvfrom_chk,
        (int fd, void *buf, size_t len, size_t buflen, int fl, __SOCKADDR_ARG sa, socklen_t *salen),
        (fd, buf, len, buflen, fl, sa, salen), WB_RECVFROM, fd, len, fl, WB_NO_DEST,
        real___recvfrom_chk(fd, buf, len, buflen, fl, sa, salen),
        real___recvfrom_chk(fd, buf, WB_CUT(len), buflen, fl, sa, salen))
WB_WRAP(ssize_t, sendto,
        (int fd, const void *buf, size_t len, int fl, __CONST_SOCKADDR_ARG sa, socklen_t salen),
        (fd, buf, len, fl, sa, salen), WB_SENDTO, fd, len, fl, WB_DEST(WB_SOCKADDR_PTR(sa), salen),
        real_sendto(fd, buf, len, fl, sa, salen), real_sendto(fd, buf, WB_CUT(len), fl, sa, salen))

/* ---- vectors and messages ---- */

static size_t iov_total(const struct iovec *iov, long cnt)
{
        size_t sum = 0;
        for (long i = 0; iov && i < cnt; i++)
                sum += iov[i].iov_len;
        return sum;
}

/* Copy the first iovecs of iov into cut, holding at most limit bytes in all
 * (the last one trimmed). Returns how many. */
static int iov_cut(const struct iovec *iov, long cnt, size_t limit, struct iovec *cut)
{
        int n = 0;
        for (long i = 0; i < cnt && limit && n < IOV_CUT_MAX; i++) {
                cut[n] = iov[i];
                if (cut[n].iov_len > limit)
                        cut[n].iov_len = limit;
                limit -= cut[n++].iov_len;
        }
        return n;
}

/* readv/writev with their buffers cut to limit bytes */
static ssize_t iov_call_cut(int fd, const struct iovec *iov, int cnt, size_t limit, bool output)
{
        struct iovec cut[IOV_CUT_MAX];
        int n = iov_cut(iov, cnt, limit, cut);
        return output ? real_writev(fd, cut, n) : real_readv(fd, cut, n);
}

WB_WRAP(ssize_t, readv, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt), WB_READV, fd,
        iov_total(iov, cnt), 0, WB_NO_DEST, real_readv(fd, iov, cnt),
        cut_ ? iov_call_cut(fd, iov, cnt, d_.limit, false) : real_readv(fd, iov, cnt))
WB_WRAP(ssize_t, writev, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt), WB_WRITEV, fd,
        iov_total(iov, cnt), 0, WB_NO_DEST, real_writev(fd, iov, cnt),
        cut_ ? iov_call_cut(fd, iov, cnt, d_.limit, true) : real_writev(fd, iov, cnt))

static size_t msg_total(const struct msghdr *m)
{
        return m ? iov_total(m->msg_iov, (long)m->msg_iovlen) : 0;
}

/* A copy of *m whose buffers hold at most limit bytes. */
static struct msghdr *msg_cut(const struct msghdr *m, size_t limit, struct msghdr *copy,
                              struct iovec *cut)
{
        *copy = *m;
        copy->msg_iov = cut;
        copy->msg_iovlen = (size_t)iov_cut(m->msg_iov, (long)m->msg_iovlen, limit, cut);
        return copy;
}

/* What the kernel writes back into a received msghdr, copied to the caller's. */
static void msg_give_back(struct msghdr *to, const struct msghdr *from)
{
        to->msg_namelen = from->msg_namelen;
        to->msg_controllen = from->msg_controllen;
        to->msg_flags = from->msg_flags;
}

static ssize_t recvmsg_cut(int fd, struct msghdr *m, int fl, size_t limit)
{
        struct msghdr copy;
        struct iovec cut[IOV_CUT_MAX];
        ssize_t r = real_recvmsg(fd, msg_cut(m, limit, &copy, cut), fl);
        int saved = errno;
        msg_give_back(m, &copy);
        errno = saved;
        return r;
}

static ssize_t sendmsg_cut(int fd, const struct msghdr *m, int fl, size_t limit)
{
        struct msghdr copy;
        struct iovec cut[IOV_CUT_MAX];
        return real_sendmsg(fd, msg_cut(m, limit, &copy, cut), fl);
}

WB_WRAP(ssize_t, recvmsg, (int fd, struct msghdr *m, int fl), (fd, m, fl), WB_RECVMSG, fd,
        msg_total(m), fl, WB_NO_DEST_CTL(WB_CONTROL(m)), real_recvmsg(fd, m, fl),
        cut_ &&m ? recvmsg_cut(fd, m, fl, d_.limit) : real_recvmsg(fd, m, fl))
WB_WRAP(ssize_t, sendmsg, (int fd, const struct msghdr *m, int fl), (fd, m, fl), WB_SENDMSG, fd,
        msg_total(m), fl,
        WB_DEST_CTL(m ? (const struct sockaddr *)m->msg_name : NULL, m ? m->msg_namelen : 0,
                    WB_CONTROL(m)),
        real_sendmsg(fd, m, fl),
        cut_ &&m ? sendmsg_cut(fd, m, fl, d_.limit) : real_sendmsg(fd, m, fl))

/* short= on the mmsg calls: one message only, and on a stream socket its
 * buffers cut to limit bytes (a datagram is never cut: its tail would be
 * lost). The kernel's answers are copied back into the caller's vector. */
static int mmsg_cut(int fd, struct mmsghdr *v, unsigned n, int fl, struct timespec *t,
                    struct wb_decision *d, bool receive)
{
        struct mmsghdr one = v[0];
        struct iovec cut[IOV_CUT_MAX];
        bool stream = d->sotype == 0 || d->sotype == SOCK_STREAM;
        int r, saved;

        if (stream)
                msg_cut(&v[0].msg_hdr, d->limit, &one.msg_hdr, cut);
        r = receive ? real_recvmmsg(fd, &one, 1, fl, t) : real_sendmmsg(fd, &one, 1, fl);
        saved = errno;
        if (receive)
                msg_give_back(&v[0].msg_hdr, &one.msg_hdr);
        v[0].msg_len = one.msg_len;
        /* cut: fewer messages than asked, or a stream message held to the limit */
        d->mmsg_cut_ = r >= 1 && (n > 1 || (stream && one.msg_len == d->limit));
        errno = saved;
        return r;
}

WB_WRAP(int, recvmmsg,
        (int fd, struct mmsghdr *v, unsigned int n, wb_mmsg_flags fl, struct timespec *t),
        (fd, v, n, fl, t), WB_RECVMMSG, fd, n, fl,
        WB_NO_DEST_CTL(n &&v &&WB_CONTROL(&v[0].msg_hdr)), real_recvmmsg(fd, v, n, fl, t),
        cut_ &&v ? mmsg_cut(fd, v, n, fl, t, &d_, true) : real_recvmmsg(fd, v, n, fl, t))
WB_WRAP(int, sendmmsg, (int fd, struct mmsghdr *v, unsigned int n, wb_mmsg_flags fl),
        (fd, v, n, fl), WB_SENDMMSG, fd, n, fl,
        WB_DEST_CTL(n &&v ? (const struct sockaddr *)v[0].msg_hdr.msg_name : NULL,
                    n &&v ? v[0].msg_hdr.msg_namelen : 0, n &&v &&WB_CONTROL(&v[0].msg_hdr)),
        real_sendmmsg(fd, v, n, fl),
        cut_ &&v ? mmsg_cut(fd, v, n, fl, NULL, &d_, false) : real_sendmmsg(fd, v, n, fl))

/* ---- zero-copy ---- */

/* sendfile is output on out_fd. Cut short, it is the real call with a
 * smaller count: the kernel moves the file offset (or *off) by the bytes it
 * sent, as after any sendfile that sent fewer than asked. */
WB_WRAP(ssize_t, sendfile, (int out, int in, off_t *off, size_t len), (out, in, off, len),
        WB_SENDFILE, out, len, 0, WB_NO_DEST, real_sendfile(out, in, off, len),
        real_sendfile(out, in, off, WB_CUT(len)))
WB_WRAP(ssize_t, sendfile64, (int out, int in, wb_off64 *off, size_t len), (out, in, off, len),
        WB_SENDFILE, out, len, 0, WB_NO_DEST, real_sendfile64(out, in, off, len),
        real_sendfile64(out, in, off, WB_CUT(len)))

/* splice and tee join two fds, one at least a pipe, and rules count them on
 * one (README, "splice and tee"): the socket or tty side, where type=,
 * family= and port= mean something and which the program waits on; else
 * (pipes, regular files) fd_in if it is a pipe, else fd_out: a regular file
 * never waits. Counted on fd_out, the call writes to its fd (SPEC §4's
 * in-flight rule). Each fd's O_NONBLOCK makes the kernel's wait on it
 * non-blocking, as SPLICE_F_NONBLOCK makes both: the engine asks the
 * counted fd's flag itself, the rest arrives as MSG_DONTWAIT. */
static int splice_counted_fd(int in, int out)
{
        struct wb_fdfacts fin, fout;
        const unsigned waits = WB_TYPE_SOCKET | WB_TYPE_TTY;

        fd_state_get(in, &fin);
        fd_state_get(out, &fout);
        if ((fin.type & waits) || (!(fout.type & waits) && fin.type == WB_TYPE_PIPE))
                return in;
        return out;
}

static struct wb_callinfo splice_info(const void *site, enum wb_call call, int in, int out,
                                      size_t len, unsigned fl)
{
        int fd = splice_counted_fd(in, out), other = fd == in ? out : in;
        bool nonblocking = (fl & SPLICE_F_NONBLOCK) ||
                           (other != fd && fd_state_nonblocking(other, fd_state_gen(other)));
        /* by name: no destination, and every field not named is zero */
        struct wb_callinfo c = {.call = call,
                                .fd = fd,
                                .len = len,
                                .flags = nonblocking ? MSG_DONTWAIT : 0,
                                .site = site,
                                .writes_fd = fd == out && fd != in};
        return c;
}

/* Not armed: counted, and its would-block result extends the counted fd's
 * spin (both fds' spins end on success). errno stays the real call's. */
static long splice_passed(enum wb_call call, int in, int out, long ret)
{
        int saved = errno, fd;

        if (ret >= 0) {
                fd_state_spin_end(in);
                return passed(report_pass_begin(), call, out, ret);
        }
        fd = saved == EAGAIN ? splice_counted_fd(in, out) : in;
        errno = saved;
        return passed_slow(call, fd, ret);
}

static __attribute__((noinline)) long splice_armed(const void *site, enum wb_call call, int in,
                                                   wb_off64 *offin, int out, wb_off64 *offout,
                                                   size_t len, unsigned fl)
{
        struct wb_callinfo c = splice_info(site, call, in, out, len, fl);
        struct wb_decision d;
        enum wb_verdict v = engine_decide(&c, &d);
        size_t n = len;
        long r;

        if (v == WB_FAIL)
                return fail(&c, &d);
        if (v == WB_SHORT && d.limit < len)
                n = d.limit;
        const struct report_pass p = report_pass_begin();
        r = call == WB_TEE ? real_tee(in, out, n, fl) : real_splice(in, offin, out, offout, n, fl);
        return finish(&c, v == WB_SHORT ? &d : NULL, p, r);
}

WB_EXPORT ssize_t splice(int in, wb_off64 *offin, int out, wb_off64 *offout, size_t len,
                         unsigned int fl)
{
        if (__builtin_expect(!armed(WB_SPLICE), 1))
                return splice_passed(WB_SPLICE, in, out,
                                     real_splice(in, offin, out, offout, len, fl));
        return splice_armed(__builtin_return_address(0), WB_SPLICE, in, offin, out, offout, len,
                            fl);
}
WB_EXPORT ssize_t tee(int in, int out, size_t len, unsigned int fl)
{
        if (__builtin_expect(!armed(WB_TEE), 1))
                return splice_passed(WB_TEE, in, out, real_tee(in, out, len, fl));
        return splice_armed(__builtin_return_address(0), WB_TEE, in, NULL, out, NULL, len, fl);
}

/* ---- new fds ---- */

/* A new file opened here: whatever was known of its number belongs to a
 * closed file. */
static int created(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                fd_state_created(fd);
                errno = saved;
        }
        return fd;
}

/* fd's number now names another file, or none: forget what was known
 * (errno is the real call's and stays so). */
static void renumbered(int fd)
{
        int saved = errno;
        fd_state_forget(fd);
        errno = saved;
}

/* A new number for an open file that may be another process's too. */
static int duplicated(int fd)
{
        if (fd >= 0)
                renumbered(fd);
        return fd;
}

/* ---- accept and connect ---- */

WB_WRAP(int, accept, (int fd, __SOCKADDR_ARG sa, socklen_t *salen), (fd, sa, salen), WB_ACCEPT, fd,
        0, 0, WB_NO_DEST, created(real_accept(fd, sa, salen)), created(real_accept(fd, sa, salen)))
WB_WRAP(int, accept4, (int fd, __SOCKADDR_ARG sa, socklen_t *salen, int fl), (fd, sa, salen, fl),
        WB_ACCEPT4, fd, 0, 0, WB_NO_DEST, created(real_accept4(fd, sa, salen, fl)),
        created(real_accept4(fd, sa, salen, fl)))

WB_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG sa, socklen_t salen)
{
        const struct sockaddr *addr = WB_SOCKADDR_PTR(sa);
        struct wb_callinfo c = {
            WB_CONNECT, fd, 0, 0, addr, salen, false, __builtin_return_address(0), false};
        struct wb_decision d;
        int r, saved;
        /* only a socket's first connect: a later one gets the kernel's own
         * answer (EALREADY, EISCONN, 0), as hiredis, which calls twice, expects */
        bool first = fd_state_first_connect(fd);

        if (first && armed(WB_CONNECT) && engine_decide(&c, &d) == WB_FAIL) {
                if (d.err != EINPROGRESS || !(d.family & (WB_FAMILY_INET | WB_FAMILY_INET6)))
                        return (int)fail(&c, &d); /* nothing is connected */
                /* EINPROGRESS: really start the connection, so that polling
                 * for writability and SO_ERROR behave as after a real one. A
                 * real failure is the program's to see, not to be hidden. */
                r = real_connect(fd, sa, salen);
                if (r == 0 || errno == EINPROGRESS) {
                        fd_state_set_port(fd, fd_state_addr_port(addr, salen));
                        return (int)fail(&c, &d);
                }
                return (int)finish(&c, NULL, report_pass_begin(), r);
        }
        r = real_connect(fd, sa, salen);
        saved = errno;
        if (r == 0 || saved == EINPROGRESS)
                fd_state_set_port(fd, fd_state_addr_port(addr, salen));
        errno = saved;
        return (int)finish(&c, NULL, report_pass_begin(), r);
}

/* ---- what starts and ends an fd number's life ---- */

static int created_pair(int r, const int fds[2])
{
        if (r == 0) {
                created(fds[0]);
                created(fds[1]);
        }
        return r;
}

WB_EXPORT int socket(int d, int t, int p)
{
        return created(real_socket(d, t, p));
}
WB_EXPORT int socketpair(int d, int t, int p, int sv[2])
{
        return created_pair(real_socketpair(d, t, p, sv), sv);
}
WB_EXPORT int pipe(int p[2])
{
        return created_pair(real_pipe(p), p);
}
WB_EXPORT int pipe2(int p[2], int fl)
{
        return created_pair(real_pipe2(p, fl), p);
}
WB_EXPORT int dup(int fd)
{
        return duplicated(real_dup(fd));
}

/* open's mode is there only when the flags need it, as glibc reads it */
#define WB_OPEN_MODE(fl)                                                                           \
        mode_t mode = 0;                                                                           \
        if (WB_OPEN_NEEDS_MODE(fl)) {                                                              \
                va_list ap;                                                                        \
                va_start(ap, fl);                                                                  \
                mode = va_arg(ap, mode_t);                                                         \
                va_end(ap);                                                                        \
        }

WB_EXPORT int open(const char *path, int fl, ...)
{
        WB_OPEN_MODE(fl);
        return created(real_open(path, fl, mode));
}
WB_EXPORT int open64(const char *path, int fl, ...)
{
        WB_OPEN_MODE(fl);
        return created(real_open64(path, fl, mode));
}
WB_EXPORT int openat(int dir, const char *path, int fl, ...)
{
        WB_OPEN_MODE(fl);
        return created(real_openat(dir, path, fl, mode));
}
WB_EXPORT int openat64(int dir, const char *path, int fl, ...)
{
        WB_OPEN_MODE(fl);
        return created(real_openat64(dir, path, fl, mode));
}
WB_EXPORT int __open_2(const char *path, int fl)
{
        return created(real___open_2(path, fl));
}
WB_EXPORT int __open64_2(const char *path, int fl)
{
        return created(real___open64_2(path, fl));
}
WB_EXPORT int __openat_2(int dir, const char *path, int fl)
{
        return created(real___openat_2(dir, path, fl));
}
WB_EXPORT int __openat64_2(int dir, const char *path, int fl)
{
        return created(real___openat64_2(dir, path, fl));
}

/* fcntl's third argument is read as a pointer whatever cmd is, as glibc's
 * own fcntl does: an int travels in the same register. */
static int fcntl_done(int cmd, int r)
{
        int saved = errno;
        if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
                duplicated(r);
        if (r >= 0 && cmd == F_SETFL)
                fd_state_flags_changed();
        errno = saved;
        return r;
}

#define WB_VA_POINTER(last)                                                                        \
        va_list ap;                                                                                \
        va_start(ap, last);                                                                        \
        void *arg = va_arg(ap, void *);                                                            \
        va_end(ap)

WB_EXPORT int fcntl(int fd, int cmd, ...)
{
        WB_VA_POINTER(cmd);
        return fcntl_done(cmd, real_fcntl(fd, cmd, arg));
}
WB_EXPORT int fcntl64(int fd, int cmd, ...)
{
        WB_VA_POINTER(cmd);
        return fcntl_done(cmd, real_fcntl64(fd, cmd, arg));
}
WB_EXPORT int ioctl(int fd, wb_ioctl_req req, ...)
{
        WB_VA_POINTER(req);
        int r = real_ioctl(fd, req, arg), saved = errno;
        if (r >= 0 && req == FIONBIO)
                fd_state_flags_changed();
        errno = saved;
        return r;
}

/* A child sharing our fds is about to start (fork is seen through
 * pthread_atfork). */
WB_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                          const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
        fd_state_child_started();
        return real_posix_spawn(pid, path, fa, attr, argv, envp);
}
WB_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                           const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
        fd_state_child_started();
        return real_posix_spawnp(pid, file, fa, attr, argv, envp);
}

/* ---- what ends an fd number's life ---- */

/* libc closes these fds inside, out of the wrappers' sight: without these a
 * number reused by fopen, eventfd or SCM_RIGHTS would keep the facts of the
 * file closed here (a socket's, say) and a rule meant for sockets would hit
 * a regular file. Each forgets after the real call: a thread probing in
 * between would otherwise cache the facts of the file being closed. */
WB_EXPORT int fclose(FILE *f)
{
        int fd = f ? fileno(f) : -1, r = real_fclose(f);
        renumbered(fd);
        return r;
}
WB_EXPORT int pclose(FILE *f)
{
        int fd = f ? fileno(f) : -1, r = real_pclose(f);
        renumbered(fd);
        return r;
}
WB_EXPORT int closedir(DIR *d)
{
        int fd = dirfd(d), r = real_closedir(d); /* closedir(NULL) crashes in glibc too */
        renumbered(fd);
        return r;
}
WB_EXPORT FILE *freopen(const char *path, const char *mode, FILE *f)
{
        int fd = f ? fileno(f) : -1;
        FILE *r = real_freopen(path, mode, f);
        renumbered(fd);
        if (r)
                renumbered(fileno(r));
        return r;
}

WB_EXPORT int close(int fd)
{
        int r = real_close(fd);
        renumbered(fd);
        return r;
}
WB_EXPORT int dup2(int fd, int fd2)
{
        int r = real_dup2(fd, fd2);
        if (r >= 0 && fd != fd2)
                renumbered(fd2);
        return r;
}
WB_EXPORT int dup3(int fd, int fd2, int fl)
{
        int r = real_dup3(fd, fd2, fl);
        if (r >= 0)
                renumbered(fd2);
        return r;
}
WB_EXPORT int close_range(unsigned int lo, unsigned int hi, int fl)
{
        int r = real_close_range(lo, hi, fl), saved = errno;
        if (r == 0 && !(fl & CLOSE_RANGE_CLOEXEC)) /* CLOEXEC closes nothing now */
                fd_state_forget_range(lo, hi);
        errno = saved;
        return r;
}

/* ---- waits: where a program learns an fd is ready (readiness.c) ---- */

static int poll_done(struct pollfd *fds, nfds_t n, int ret)
{
        int saved = errno;
        readiness_after_poll(fds, n, ret);
        errno = saved;
        return ret;
}

WB_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
        return poll_done(fds, n, real_poll(fds, n, timeout));
}
WB_EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
        return poll_done(fds, n, real___poll_chk(fds, n, timeout, fdslen));
}
WB_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *t, const sigset_t *ss)
{
        return poll_done(fds, n, real_ppoll(fds, n, t, ss));
}
WB_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *t,
                          const sigset_t *ss, size_t fdslen)
{
        return poll_done(fds, n, real___ppoll_chk(fds, n, t, ss, fdslen));
}

static int select_done(const struct wb_select_sets *s, fd_set *r, fd_set *w, fd_set *e, int ret)
{
        int saved = errno;
        readiness_after_select(s, r, w, e, ret);
        errno = saved;
        return ret;
}

WB_EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
        struct wb_select_sets s;
        readiness_before_select(&s, n, r, w, e);
        return select_done(&s, r, w, e, real_select(n, r, w, e, tv));
}
WB_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t,
                      const sigset_t *ss)
{
        struct wb_select_sets s;
        readiness_before_select(&s, n, r, w, e);
        return select_done(&s, r, w, e, real_pselect(n, r, w, e, t, ss));
}

WB_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
        struct epoll_event kernel;
        int r;

        readiness_epoll_ctl(epfd, op, fd, ev, &kernel);
        r = real_epoll_ctl(epfd, op, fd, ev ? &kernel : NULL);
        readiness_epoll_ctl_done(epfd, op, fd, r);
        return r;
}

/* Every epoll wait: when an edge is owed on epfd the kernel is asked without
 * blocking and the owed events are added; if none of them held (the fd was
 * drained for real), wait again as the program asked. */
#define WB_EPOLL_WAIT(REAL_WITH_TIMEOUT, blocking)                                                 \
        do {                                                                                       \
                for (;;) {                                                                         \
                        bool owed_ = readiness_epoll_owed(epfd);                                   \
                        int r_ = (REAL_WITH_TIMEOUT);                                              \
                        r_ = readiness_epoll_done(epfd, ev, max, r_);                              \
                        if (r_ != 0 || !owed_ || !(blocking))                                      \
                                return r_;                                                         \
                }                                                                                  \
        } while (0)

static const struct timespec zero_timeout;

WB_EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
        WB_EPOLL_WAIT(real_epoll_wait(epfd, ev, max, owed_ ? 0 : timeout), timeout != 0);
}
WB_EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
                          const sigset_t *ss)
{
        WB_EPOLL_WAIT(real_epoll_pwait(epfd, ev, max, owed_ ? 0 : timeout, ss), timeout != 0);
}
WB_EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *t,
                           const sigset_t *ss)
{
        WB_EPOLL_WAIT(real_epoll_pwait2(epfd, ev, max, owed_ ? &zero_timeout : t, ss),
                      !t || t->tv_sec || t->tv_nsec);
}
