/* real.h - the real libc functions, bound once with dlsym(RTLD_NEXT).
 *
 * real_foo() calls the next definition of foo in the lookup order. It works
 * before the library's constructor ran (the first call binds the table), and
 * while dlsym itself is running (dlsym may call back into a wrapped function,
 * and another thread may be binding): while a bind is under way, or when the
 * next object has no such symbol, the call goes straight to the kernel with
 * syscall(2), which sets errno exactly as the libc function would.
 */
#ifndef WB_REAL_H
#define WB_REAL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* glibc's sockaddr argument types are a transparent union under _GNU_SOURCE. */
#if defined(__USE_GNU) && !defined(__cplusplus)
#define WB_SOCKADDR_PTR(a) ((a).__sockaddr__)
#else
#define WB_SOCKADDR_PTR(a) (a)
#endif

/* Portability: where glibc and musl declare the wrapped functions
 * differently, the library follows the C library it is built against.
 * glibc names its sockaddr argument types (a transparent union under
 * _GNU_SOURCE); musl's are plain pointers. */
#ifdef __GLIBC__
typedef int wb_mmsg_flags;          /* recvmmsg/sendmmsg flags */
typedef unsigned long wb_ioctl_req; /* ioctl's request */
typedef __off64_t wb_off64;         /* splice's offsets, sendfile64's */
#else
typedef unsigned int wb_mmsg_flags;
typedef int wb_ioctl_req;
typedef off_t wb_off64; /* musl: 64 bits everywhere */
#define __SOCKADDR_ARG struct sockaddr *restrict
#define __CONST_SOCKADDR_ARG const struct sockaddr *
#endif
/* musl spells the LFS64 names as macros for the plain functions (open64 is
 * open): the library wraps and binds the symbols by their own names. */
#undef open64
#undef openat64
#undef sendfile64
/* glibc has these since 2.34 (linux/close_range.h and linux/sockios.h are
 * not on musl-gcc's include path); the values are the kernel's ABI. */
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef SIOCOUTQ
#define SIOCOUTQ TIOCOUTQ
#endif
/* membarrier(2) commands (linux/membarrier.h is not on musl-gcc's path) */
enum {
        WB_MEMBARRIER_CMD_QUERY = 0,
        WB_MEMBARRIER_CMD_PRIVATE_EXPEDITED = 1 << 3,
        WB_MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED = 1 << 4,
};
/* Does open's flags word mean a mode argument follows? */
#define WB_OPEN_NEEDS_MODE(fl) (((fl)&O_CREAT) || ((fl)&O_TMPFILE) == O_TMPFILE)

/* Fallbacks for the waits, which have no one-to-one system call everywhere. */
struct wb_sigset_arg {
        const sigset_t *set;
        size_t size;
};
static inline long wb_sys_ppoll_ms(struct pollfd *fds, nfds_t n, int timeout)
{
        struct timespec ts = {timeout / 1000, (timeout % 1000) * 1000000L};
        return syscall(SYS_ppoll, fds, n, timeout < 0 ? NULL : &ts, NULL, _NSIG / 8);
}
static inline long wb_sys_pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
                                  const sigset_t *ss)
{
        struct wb_sigset_arg arg = {ss, _NSIG / 8};
        struct timespec copy, *tp = NULL;
        if (ts) {
                copy = *ts;
                tp = &copy;
        }
        return syscall(SYS_pselect6, n, r, w, e, tp, ss ? &arg : NULL);
}
static inline long wb_sys_select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
        struct timespec ts;
        if (tv) {
                ts.tv_sec = tv->tv_sec;
                ts.tv_nsec = tv->tv_usec * 1000L;
        }
        return wb_sys_pselect(n, r, w, e, tv ? &ts : NULL, NULL);
}

/* X(return type, name, (parameters), (arguments), fallback expression).
 * Every function the library calls on the program's behalf. The first
 * eight, the plain reads and writes, share one cache line of the table. */
#define WB_REAL_FUNCS(X)                                                                           \
        X(ssize_t, read, (int fd, void *buf, size_t n), (fd, buf, n),                              \
          syscall(SYS_read, fd, buf, n))                                                           \
        X(ssize_t, readv, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt),              \
          syscall(SYS_readv, fd, iov, cnt))                                                        \
        X(ssize_t, recv, (int fd, void *buf, size_t n, int fl), (fd, buf, n, fl),                  \
          syscall(SYS_recvfrom, fd, buf, n, fl, NULL, NULL))                                       \
        X(ssize_t, recvfrom,                                                                       \
          (int fd, void *buf, size_t n, int fl, __SOCKADDR_ARG sa, socklen_t *salen),              \
          (fd, buf, n, fl, sa, salen),                                                             \
          syscall(SYS_recvfrom, fd, buf, n, fl, WB_SOCKADDR_PTR(sa), salen))                       \
        X(ssize_t, write, (int fd, const void *buf, size_t n), (fd, buf, n),                       \
          syscall(SYS_write, fd, buf, n))                                                          \
        X(ssize_t, writev, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt),             \
          syscall(SYS_writev, fd, iov, cnt))                                                       \
        X(ssize_t, send, (int fd, const void *buf, size_t n, int fl), (fd, buf, n, fl),            \
          syscall(SYS_sendto, fd, buf, n, fl, NULL, 0))                                            \
        X(ssize_t, sendto,                                                                         \
          (int fd, const void *buf, size_t n, int fl, __CONST_SOCKADDR_ARG sa, socklen_t salen),   \
          (fd, buf, n, fl, sa, salen),                                                             \
          syscall(SYS_sendto, fd, buf, n, fl, WB_SOCKADDR_PTR(sa), salen))                         \
        X(ssize_t, recvmsg, (int fd, struct msghdr *m, int fl), (fd, m, fl),                       \
          syscall(SYS_recvmsg, fd, m, fl))                                                         \
        X(int, recvmmsg,                                                                           \
          (int fd, struct mmsghdr *v, unsigned int n, wb_mmsg_flags fl, struct timespec *t),       \
          (fd, v, n, fl, t), syscall(SYS_recvmmsg, fd, v, n, fl, t))                               \
        X(ssize_t, sendmsg, (int fd, const struct msghdr *m, int fl), (fd, m, fl),                 \
          syscall(SYS_sendmsg, fd, m, fl))                                                         \
        X(int, sendmmsg, (int fd, struct mmsghdr *v, unsigned int n, wb_mmsg_flags fl),            \
          (fd, v, n, fl), syscall(SYS_sendmmsg, fd, v, n, fl))                                     \
        X(ssize_t, sendfile, (int out, int in, off_t *off, size_t n), (out, in, off, n),           \
          syscall(SYS_sendfile, out, in, off, n))                                                  \
        X(ssize_t, sendfile64, (int out, int in, wb_off64 *off, size_t n), (out, in, off, n),      \
          syscall(SYS_sendfile, out, in, off, n))                                                  \
        X(ssize_t, splice,                                                                         \
          (int in, wb_off64 *offin, int out, wb_off64 *offout, size_t n, unsigned int fl),         \
          (in, offin, out, offout, n, fl), syscall(SYS_splice, in, offin, out, offout, n, fl))     \
        X(ssize_t, tee, (int in, int out, size_t n, unsigned int fl), (in, out, n, fl),            \
          syscall(SYS_tee, in, out, n, fl))                                                        \
        X(int, accept, (int fd, __SOCKADDR_ARG sa, socklen_t *salen), (fd, sa, salen),             \
          syscall(SYS_accept, fd, WB_SOCKADDR_PTR(sa), salen))                                     \
        X(int, accept4, (int fd, __SOCKADDR_ARG sa, socklen_t *salen, int fl),                     \
          (fd, sa, salen, fl), syscall(SYS_accept4, fd, WB_SOCKADDR_PTR(sa), salen, fl))           \
        X(int, connect, (int fd, __CONST_SOCKADDR_ARG sa, socklen_t salen), (fd, sa, salen),       \
          syscall(SYS_connect, fd, WB_SOCKADDR_PTR(sa), salen))                                    \
        X(ssize_t, __read_chk, (int fd, void *buf, size_t n, size_t buflen), (fd, buf, n, buflen), \
          syscall(SYS_read, fd, buf, n))                                                           \
        X(ssize_t, __recv_chk, (int fd, void *buf, size_t n, size_t buflen, int fl),               \
          (fd, buf, n, buflen, fl), syscall(SYS_recvfrom, fd, buf, n, fl, NULL, NULL))             \
        X(ssize_t, __recvfrom_chk,                                                                 \
          (int fd, void *buf, size_t n, size_t buflen, int fl, __SOCKADDR_ARG sa,                  \
           socklen_t *salen),                                                                      \
          (fd, buf, n, buflen, fl, sa, salen),                                                     \
          syscall(SYS_recvfrom, fd, buf, n, fl, WB_SOCKADDR_PTR(sa), salen))                       \
        X(int, poll, (struct pollfd * fds, nfds_t n, int timeout), (fds, n, timeout),              \
          wb_sys_ppoll_ms(fds, n, timeout))                                                        \
        X(int, __poll_chk, (struct pollfd * fds, nfds_t n, int timeout, size_t fdslen),            \
          (fds, n, timeout, fdslen), wb_sys_ppoll_ms(fds, n, timeout))                             \
        X(int, ppoll,                                                                              \
          (struct pollfd * fds, nfds_t n, const struct timespec *t, const sigset_t *ss),           \
          (fds, n, t, ss), syscall(SYS_ppoll, fds, n, t, ss, _NSIG / 8))                           \
        X(int, __ppoll_chk,                                                                        \
          (struct pollfd * fds, nfds_t n, const struct timespec *t, const sigset_t *ss,            \
           size_t fdslen),                                                                         \
          (fds, n, t, ss, fdslen), syscall(SYS_ppoll, fds, n, t, ss, _NSIG / 8))                   \
        X(int, select, (int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv),               \
          (n, r, w, e, tv), wb_sys_select(n, r, w, e, tv))                                         \
        X(int, pselect,                                                                            \
          (int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t, const sigset_t *ss),  \
          (n, r, w, e, t, ss), wb_sys_pselect(n, r, w, e, t, ss))                                  \
        X(int, epoll_ctl, (int epfd, int op, int fd, struct epoll_event *ev), (epfd, op, fd, ev),  \
          syscall(SYS_epoll_ctl, epfd, op, fd, ev))                                                \
        X(int, epoll_wait, (int epfd, struct epoll_event *ev, int max, int timeout),               \
          (epfd, ev, max, timeout), syscall(SYS_epoll_pwait, epfd, ev, max, timeout, NULL, 0))     \
        X(int, epoll_pwait,                                                                        \
          (int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *ss),            \
          (epfd, ev, max, timeout, ss),                                                            \
          syscall(SYS_epoll_pwait, epfd, ev, max, timeout, ss, _NSIG / 8))                         \
        X(int, epoll_pwait2,                                                                       \
          (int epfd, struct epoll_event *ev, int max, const struct timespec *t,                    \
           const sigset_t *ss),                                                                    \
          (epfd, ev, max, t, ss), syscall(SYS_epoll_pwait2, epfd, ev, max, t, ss, _NSIG / 8))      \
        X(int, socket, (int d, int t, int p), (d, t, p), syscall(SYS_socket, d, t, p))             \
        X(int, socketpair, (int d, int t, int p, int sv[2]), (d, t, p, sv),                        \
          syscall(SYS_socketpair, d, t, p, sv))                                                    \
        X(int, pipe, (int p[2]), (p), syscall(SYS_pipe2, p, 0))                                    \
        X(int, pipe2, (int p[2], int fl), (p, fl), syscall(SYS_pipe2, p, fl))                      \
        X(int, dup, (int fd), (fd), syscall(SYS_dup, fd))                                          \
        X(int, __open_2, (const char *path, int fl), (path, fl),                                   \
          syscall(SYS_openat, AT_FDCWD, path, fl))                                                 \
        X(int, __open64_2, (const char *path, int fl), (path, fl),                                 \
          syscall(SYS_openat, AT_FDCWD, path, fl))                                                 \
        X(int, __openat_2, (int dir, const char *path, int fl), (dir, path, fl),                   \
          syscall(SYS_openat, dir, path, fl))                                                      \
        X(int, __openat64_2, (int dir, const char *path, int fl), (dir, path, fl),                 \
          syscall(SYS_openat, dir, path, fl))                                                      \
        X(int, fclose, (FILE * f), (f), (errno = ENOSYS, -1))                                      \
        X(int, pclose, (FILE * f), (f), (errno = ENOSYS, -1))                                      \
        X(int, closedir, (DIR * d), (d), (errno = ENOSYS, -1))                                     \
        X(FILE *, freopen, (const char *path, const char *mode, FILE *f), (path, mode, f),         \
          (errno = ENOSYS, NULL))                                                                  \
        X(int, posix_spawn,                                                                        \
          (pid_t * pid, const char *path, const posix_spawn_file_actions_t *fa,                    \
           const posix_spawnattr_t *attr, char *const argv[], char *const envp[]),                 \
          (pid, path, fa, attr, argv, envp), ENOSYS)                                               \
        X(int, posix_spawnp,                                                                       \
          (pid_t * pid, const char *file, const posix_spawn_file_actions_t *fa,                    \
           const posix_spawnattr_t *attr, char *const argv[], char *const envp[]),                 \
          (pid, file, fa, attr, argv, envp), ENOSYS)                                               \
        X(int, close, (int fd), (fd), syscall(SYS_close, fd))                                      \
        X(int, dup2, (int fd, int fd2), (fd, fd2), syscall(SYS_dup2, fd, fd2))                     \
        X(int, dup3, (int fd, int fd2, int fl), (fd, fd2, fl), syscall(SYS_dup3, fd, fd2, fl))     \
        X(int, close_range, (unsigned int lo, unsigned int hi, int fl), (lo, hi, fl),              \
          syscall(SYS_close_range, lo, hi, fl))

/* Variadic functions: V(return type, name, (their prototype), (the
 * trampoline's parameters), (arguments), fallback). The optional argument is
 * always passed on, as glibc's own wrappers read it. */
#define WB_REAL_VARIADIC(V)                                                                        \
        V(int, open, (const char *, int, ...), (const char *path, int fl, mode_t mode),            \
          (path, fl, mode), syscall(SYS_openat, AT_FDCWD, path, fl, mode))                         \
        V(int, open64, (const char *, int, ...), (const char *path, int fl, mode_t mode),          \
          (path, fl, mode), syscall(SYS_openat, AT_FDCWD, path, fl, mode))                         \
        V(int, openat, (int, const char *, int, ...),                                              \
          (int dir, const char *path, int fl, mode_t mode), (dir, path, fl, mode),                 \
          syscall(SYS_openat, dir, path, fl, mode))                                                \
        V(int, openat64, (int, const char *, int, ...),                                            \
          (int dir, const char *path, int fl, mode_t mode), (dir, path, fl, mode),                 \
          syscall(SYS_openat, dir, path, fl, mode))                                                \
        V(int, fcntl, (int, int, ...), (int fd, int cmd, void *arg), (fd, cmd, arg),               \
          syscall(SYS_fcntl, fd, cmd, arg))                                                        \
        V(int, fcntl64, (int, int, ...), (int fd, int cmd, void *arg), (fd, cmd, arg),             \
          syscall(SYS_fcntl, fd, cmd, arg))                                                        \
        V(int, ioctl, (int, wb_ioctl_req, ...), (int fd, wb_ioctl_req req, void *arg),             \
          (fd, req, arg), syscall(SYS_ioctl, fd, req, arg))

/* Each entry of the table is valid from the start: until real_bind stored
 * the next object's function there, it is a function of real.c that binds
 * the table (or, while a bind is under way, makes the system call) and then
 * calls through it, so a trampoline is one load and one call. An entry the
 * next object does not have keeps that function, which then takes the
 * fallback. The variadic entries stay NULL until bound and are checked
 * (they are not on any hot path). Entries are written while other threads
 * may be calling through them: relaxed atomics, one plain load each. */
#define WB_REAL_MEMBER(ret, name, params, args, fallback) ret(*_Atomic name) params;
#define WB_REAL_VMEMBER(ret, name, proto, params, args, fallback) ret(*name) proto;
struct wb_real_table {
        WB_REAL_FUNCS(WB_REAL_MEMBER)
        WB_REAL_VARIADIC(WB_REAL_VMEMBER)
} __attribute__((aligned(64)));
#undef WB_REAL_MEMBER
#undef WB_REAL_VMEMBER

/* The table and its state are this module's interface for the inline
 * trampolines below; only real.c writes them. */
extern struct wb_real_table wb_real __attribute__((visibility("hidden")));
/* 0 unbound, 1 binding, 2 bound */
extern _Atomic int wb_real_state __attribute__((visibility("hidden")));

/* Bind every entry (idempotent, thread-safe). False while a bind is in
 * progress, i.e. when called from inside dlsym or beside another binder. */
bool real_bind(void);

#define WB_REAL_TRAMPOLINE(ret, name, params, args, fallback)                                      \
        static inline ret real_##name params                                                       \
        {                                                                                          \
                return atomic_load_explicit(&wb_real.name, memory_order_relaxed) args;             \
        }
WB_REAL_FUNCS(WB_REAL_TRAMPOLINE)
#undef WB_REAL_TRAMPOLINE
#define WB_REAL_VTRAMPOLINE(ret, name, proto, params, args, fallback)                              \
        static inline ret real_##name params                                                       \
        {                                                                                          \
                if ((__builtin_expect(                                                             \
                         atomic_load_explicit(&wb_real_state, memory_order_acquire) == 2, 1) ||    \
                     real_bind()) &&                                                               \
                    wb_real.name)                                                                  \
                        return wb_real.name args;                                                  \
                return (ret)(fallback);                                                            \
        }
WB_REAL_VARIADIC(WB_REAL_VTRAMPOLINE)
#undef WB_REAL_VTRAMPOLINE

/* Plain system calls the library makes for itself (probing fds); never
 * wrapped, so they need no binding. */
static inline long wb_sys_fcntl(int fd, int cmd, long arg)
{
        return syscall(SYS_fcntl, fd, cmd, arg);
}
static inline long wb_sys_ioctl(int fd, unsigned long req, void *arg)
{
        return syscall(SYS_ioctl, fd, req, arg);
}

/* A file of the library's own (the log, the recording): appended to, closed
 * on exec, and moved to 512 or above, out of the way of programs that
 * assume the low numbers are theirs. -1 with errno if it cannot be opened. */
static inline int wb_sys_open_append(const char *path)
{
        int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                              0644);
        if (fd < 0)
                return -1;
        int high = (int)wb_sys_fcntl(fd, F_DUPFD_CLOEXEC, 512);
        if (high >= 0) {
                real_close(fd);
                fd = high;
        }
        return fd;
}

#endif
