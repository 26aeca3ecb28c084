/* wbprobe.c - a small program the end-to-end tests run under the preload.
 *
 * Each subcommand makes a few I/O calls and prints what it saw, one
 * "key value" line each, on stdout; tests/e2e/run.py decides whether that is
 * right for the rules it set. The program judges nothing itself, so the same
 * run without the library shows what the kernel alone does, and a check that
 * cannot tell the two apart shows up as a test that does not fail.
 *
 * Setup and draining use raw system calls (syscall(2)), which the library
 * never sees: only the calls under test are counted by the rules. Output goes
 * through stdio, whose writes glibc makes internally, also unseen.
 *
 * The same source is built twice: plain, and with -D_FORTIFY_SOURCE=2, where
 * glibc routes read/recv/recvfrom into buffers of known size through
 * __read_chk/__recv_chk/__recvfrom_chk (do_input keeps its buffer local and
 * its length opaque so that it does).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/un.h>
#include <unistd.h>

#define MSG "the quick brown fox!" /* 20 bytes, what input and output carry */
#define MSG_LEN (sizeof MSG - 1)
#define BUF_MAX 65536
#define WAIT_MS 5000 /* hang guard for every poll */

static int usage(void)
{
        fprintf(stderr, "usage: wbprobe SUBCOMMAND ARGS (see tests/e2e/run.py)\n");
        return 2;
}

static _Noreturn void die(const char *what)
{
        fprintf(stderr, "wbprobe: %s: %s\n", what, strerror(errno));
        fflush(stdout);
        exit(3);
}

static void put(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(const char *key, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        printf("%s ", key);
        vprintf(fmt, ap);
        putchar('\n');
        va_end(ap);
}

static const char *errname(int err)
{
#ifdef __GLIBC__
        const char *name = strerrorname_np(err);
#else /* musl has no strerrorname_np: the errnos these calls give */
        static const struct {
                int err;
                const char *name;
        } names[] = {
            {EAGAIN, "EAGAIN"},
            {EINPROGRESS, "EINPROGRESS"},
            {EALREADY, "EALREADY"},
            {EISCONN, "EISCONN"},
            {ECONNREFUSED, "ECONNREFUSED"},
            {EFAULT, "EFAULT"},
            {EBADF, "EBADF"},
            {ENOTSOCK, "ENOTSOCK"},
            {ENOTCONN, "ENOTCONN"},
            {EPIPE, "EPIPE"},
            {EINVAL, "EINVAL"},
            {EINTR, "EINTR"},
            {ECONNRESET, "ECONNRESET"},
            {EMSGSIZE, "EMSGSIZE"},
            {EOPNOTSUPP, "EOPNOTSUPP"},
            {ESPIPE, "ESPIPE"},
            {EDESTADDRREQ, "EDESTADDRREQ"},
            {ENOENT, "ENOENT"},
        };
        const char *name = NULL;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                if (names[i].err == err)
                        name = names[i].name;
#endif
        return name ? name : "E?";
}

/* close_range(2) through libc, which the library wraps; musl 1.2.3 has no
 * close_range function: exit 5, which the driver takes for a skip. */
static int libc_close_range(unsigned lo, unsigned hi)
{
#ifdef __GLIBC__
        return close_range(lo, hi, 0);
#else
        (void)lo;
        (void)hi;
        fprintf(stderr, "wbprobe: this C library has no close_range function\n");
        exit(5);
#endif
}

/* "KEY RET" on success, "KEY -1 ENAME" on failure */
static void outcome(const char *key, long ret, int err)
{
        if (ret < 0)
                put(key, "%ld %s", ret, errname(err));
        else
                put(key, "%ld", ret);
}

/* the outcome of EXPR, errno taken right after it */
#define TRY(key, expr)                                                                             \
        do {                                                                                       \
                errno = 0;                                                                         \
                long r_ = (long)(expr);                                                            \
                outcome(key, r_, errno);                                                           \
        } while (0)

/* bytes as text, non-printables as \xNN */
static void put_bytes(const char *key, const char *buf, long n)
{
        printf("%s ", key);
        for (long i = 0; i < n; i++) {
                unsigned char c = (unsigned char)buf[i];
                if (c >= 0x21 && c < 0x7f && c != '\\')
                        putchar(c);
                else
                        printf("\\x%02x", c);
        }
        putchar('\n');
}

/* ---- unseen setup: raw system calls ---- */

static long raw_write(int fd, const void *buf, size_t n)
{
        return syscall(SYS_write, fd, buf, n);
}

static long raw_read(int fd, void *buf, size_t n)
{
        return syscall(SYS_read, fd, buf, n);
}

static void set_nonblocking(int fd, bool on)
{
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) < 0)
                die("fcntl");
}

static void fill(int fd, const char *data, size_t n)
{
        if (raw_write(fd, data, n) != (long)n)
                die("prefill");
}

static int unread_bytes(int fd)
{
        int n = -1;
        if (ioctl(fd, FIONREAD, &n) < 0)
                return -1;
        return n;
}

static bool wait_for(int fd, short events)
{
        struct pollfd p = {fd, events, 0};
        return poll(&p, 1, WAIT_MS) == 1;
}

static socklen_t loopback(int family, unsigned port, struct sockaddr_storage *ss)
{
        memset(ss, 0, sizeof *ss);
        if (family == AF_INET6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
                a->sin6_family = AF_INET6;
                a->sin6_addr = in6addr_loopback;
                a->sin6_port = htons((uint16_t)port);
                return sizeof *a;
        }
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons((uint16_t)port);
        return sizeof *a;
}

static unsigned local_port(int fd)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
                die("getsockname");
        return ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A listening socket on the loopback, any port; exits 4 ("no such family
 * here": the driver skips) when the family cannot be used. */
static int listener(int family, int type)
{
        struct sockaddr_storage ss;
        socklen_t len = loopback(family, 0, &ss);
        int fd = socket(family, type, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0) {
                fprintf(stderr, "wbprobe: loopback of family %d: %s\n", family, strerror(errno));
                exit(4);
        }
        if (type == SOCK_STREAM && listen(fd, 16) < 0)
                die("listen");
        return fd;
}

static int family_of(const char *name)
{
        if (strcmp(name, "inet6") == 0 || strcmp(name, "tcp6") == 0)
                return AF_INET6;
        if (strcmp(name, "unix") == 0)
                return AF_UNIX;
        return AF_INET;
}

/* A connected pair of blocking fds: [0] reads, [1] writes (both ways for
 * sockets). KIND: pipe, unix, dgram, seqpacket, tcp, tcp6, udp. */
static void make_pair(const char *kind, int fds[2])
{
        if (strcmp(kind, "pipe") == 0) {
                if (pipe(fds) < 0)
                        die("pipe");
        } else if (strcmp(kind, "unix") == 0 || strcmp(kind, "dgram") == 0 ||
                   strcmp(kind, "seqpacket") == 0) {
                int type = kind[0] == 'u'   ? SOCK_STREAM
                           : kind[0] == 'd' ? SOCK_DGRAM
                                            : SOCK_SEQPACKET;
                if (socketpair(AF_UNIX, type, 0, fds) < 0)
                        die("socketpair");
        } else if (strcmp(kind, "tcp") == 0 || strcmp(kind, "tcp6") == 0) {
                int family = family_of(kind), lst = listener(family, SOCK_STREAM);
                struct sockaddr_storage ss;
                socklen_t len = loopback(family, local_port(lst), &ss);
                fds[1] = socket(family, SOCK_STREAM, 0);
                if (fds[1] < 0 || syscall(SYS_connect, fds[1], &ss, len) < 0)
                        die("connect (setup)");
                fds[0] = (int)syscall(SYS_accept4, lst, NULL, NULL, 0);
                if (fds[0] < 0)
                        die("accept (setup)");
                close(lst);
        } else if (strcmp(kind, "udp") == 0) {
                struct sockaddr_storage ss;
                socklen_t len;
                fds[0] = listener(AF_INET, SOCK_DGRAM);
                fds[1] = listener(AF_INET, SOCK_DGRAM);
                len = loopback(AF_INET, local_port(fds[1]), &ss);
                if (syscall(SYS_connect, fds[0], &ss, len) < 0)
                        die("connect udp");
                len = loopback(AF_INET, local_port(fds[0]), &ss);
                if (syscall(SYS_connect, fds[1], &ss, len) < 0)
                        die("connect udp");
        } else {
                fprintf(stderr, "wbprobe: unknown kind %s\n", kind);
                exit(2);
        }
}

/* Everything readable on fd until it has none or EOF: the kernel's view of
 * what arrived, taken without the library seeing it. */
static long drain(int fd, char *buf, size_t cap)
{
        long got = 0, n;
        set_nonblocking(fd, true);
        while ((size_t)got < cap && (n = raw_read(fd, buf + got, cap - (size_t)got)) > 0)
                got += n;
        return got;
}

/* ---- the calls under test ---- */

/* The length of a buffer, hidden from the compiler so that the fortified
 * build cannot prove the call safe and calls the _chk variant. */
static size_t opaque(size_t n)
{
        volatile size_t v = n;
        return v;
}

/* One input call into a local buffer of known size, copied to out. */
__attribute__((noinline)) static long do_input(const char *call, int fd, size_t len, int flags,
                                               char *out)
{
        char buf[BUF_MAX];
        long r;

        len = opaque(len < sizeof buf ? len : sizeof buf);
        if (strcmp(call, "read") == 0) {
                r = read(fd, buf, len);
        } else if (strcmp(call, "recv") == 0) {
                r = recv(fd, buf, len, flags);
        } else if (strcmp(call, "recvfrom") == 0) {
                struct sockaddr_storage ss;
                socklen_t sl = sizeof ss;
                r = recvfrom(fd, buf, len, flags, (struct sockaddr *)&ss, &sl);
        } else if (strcmp(call, "readv") == 0 || strcmp(call, "recvmsg") == 0 ||
                   strcmp(call, "recvmmsg") == 0) {
                struct iovec iov[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};
                struct mmsghdr mm = {.msg_hdr = {.msg_iov = iov, .msg_iovlen = 2}};
                if (call[4] == 'v')
                        r = readv(fd, iov, 2);
                else if (call[4] == 'm' && call[5] == 's')
                        r = recvmsg(fd, &mm.msg_hdr, flags);
                else if ((r = recvmmsg(fd, &mm, 1, flags, NULL)) == 1)
                        r = mm.msg_len;
        } else {
                fprintf(stderr, "wbprobe: unknown input call %s\n", call);
                exit(2);
        }
        int saved = errno;
        if (r > 0)
                memcpy(out, buf, (size_t)r);
        errno = saved;
        return r;
}

/* One output call of data[0..len). */
__attribute__((noinline)) static long do_output(const char *call, int fd, const char *data,
                                                size_t len, int flags)
{
        struct iovec iov[2] = {{(void *)data, len / 2}, {(void *)(data + len / 2), len - len / 2}};
        struct mmsghdr mm = {.msg_hdr = {.msg_iov = iov, .msg_iovlen = 2}};
        long r;

        if (strcmp(call, "write") == 0)
                return write(fd, data, len);
        if (strcmp(call, "send") == 0)
                return send(fd, data, len, flags);
        if (strcmp(call, "sendto") == 0)
                return sendto(fd, data, len, flags, NULL, 0);
        if (strcmp(call, "writev") == 0)
                return writev(fd, iov, 2);
        if (strcmp(call, "sendmsg") == 0)
                return sendmsg(fd, &mm.msg_hdr, flags);
        if (strcmp(call, "sendmmsg") == 0) {
                if ((r = sendmmsg(fd, &mm, 1, flags)) == 1)
                        r = mm.msg_len;
                return r;
        }
        fprintf(stderr, "wbprobe: unknown output call %s\n", call);
        exit(2);
}

static bool is_socket_call(const char *call)
{
        return strncmp(call, "recv", 4) == 0 || strncmp(call, "send", 4) == 0;
}

/* MODE: nb (the fd in O_NONBLOCK mode), block (a blocking fd), dontwait (a
 * blocking socket, the calls pass MSG_DONTWAIT). Returns the call's flags. */
static int apply_mode(const char *mode, const char *call, int fd)
{
        if (strcmp(mode, "nb") == 0) {
                set_nonblocking(fd, true);
                return 0;
        }
        if (strcmp(mode, "block") == 0)
                return 0;
        if (strcmp(mode, "dontwait") == 0 && is_socket_call(call))
                return MSG_DONTWAIT;
        fprintf(stderr, "wbprobe: mode %s does not fit %s\n", mode, call);
        exit(2);
}

/* input CALL KIND [MODE]: MSG waits on the fd; two calls. Under "CALL
 * when=1" the first fails with nothing consumed and the second gets it all. */
static int cmd_input(int argc, char **argv)
{
        char buf[BUF_MAX];
        int fds[2], flags;
        long r;

        if (argc < 4)
                return usage();
        make_pair(argv[3], fds);
        flags = apply_mode(argc > 4 ? argv[4] : "nb", argv[2], fds[0]);
        fill(fds[1], MSG, MSG_LEN);
        put("pid", "%d", (int)getpid());
        put("fd", "%d", fds[0]);
        put("len", "%d", 64);
        errno = 0;
        r = do_input(argv[2], fds[0], 64, flags, buf);
        outcome("call1", r, errno);
        if (r > 0)
                put_bytes("data1", buf, r);
        put("unread1", "%d", unread_bytes(fds[0]));
        /* a blocking fd with nothing left would hang the second call */
        if (flags == 0 && strcmp(argc > 4 ? argv[4] : "nb", "block") == 0 &&
            unread_bytes(fds[0]) <= 0) {
                put("call2", "skipped");
                return 0;
        }
        errno = 0;
        r = do_input(argv[2], fds[0], 64, flags, buf);
        outcome("call2", r, errno);
        if (r > 0)
                put_bytes("data2", buf, r);
        return 0;
}

/* output CALL KIND PREFILL [MODE]: PREFILL bytes "P" already in flight,
 * then three calls of MSG; finally what the reader has, in order. */
static int cmd_output(int argc, char **argv)
{
        static char got[BUF_MAX];
        char pre[64];
        int fds[2], flags, prefill;
        const char *mode = argc > 5 ? argv[5] : "nb";

        if (argc < 5)
                return usage();
        make_pair(argv[3], fds);
        prefill = atoi(argv[4]);
        if (prefill < 0 || prefill > (int)sizeof pre)
                return usage();
        memset(pre, 'P', sizeof pre);
        flags = apply_mode(mode, argv[2], fds[1]);
        if (prefill)
                fill(fds[1], pre, (size_t)prefill);
        put("pid", "%d", (int)getpid());
        put("fd", "%d", fds[1]);
        put("len", "%zu", MSG_LEN);
        for (int i = 1; i <= 3; i++) {
                char key[16];
                errno = 0;
                long r = do_output(argv[2], fds[1], MSG, MSG_LEN, flags);
                snprintf(key, sizeof key, "call%d", i);
                outcome(key, r, errno);
                snprintf(key, sizeof key, "unread%d", i);
                put(key, "%d", unread_bytes(fds[0]));
        }
        /* the peer sees all of it: close and read to EOF (stream) or drain */
        if (strcmp(argv[3], "tcp") == 0 || strcmp(argv[3], "tcp6") == 0) {
                long got_n = 0, n;
                shutdown(fds[1], SHUT_WR);
                while (wait_for(fds[0], POLLIN) &&
                       (n = raw_read(fds[0], got + got_n, sizeof got - (size_t)got_n)) > 0)
                        got_n += n;
                put_bytes("data", got, got_n);
        } else {
                put_bytes("data", got, drain(fds[0], got, sizeof got));
        }
        return 0;
}

/* ---- short counts across buffers ---- */

#define SEG_MAX 16
static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* three buffers of seg bytes, '.' where nothing was written */
static void put_segments(const char *key, const char *buf, size_t seg)
{
        printf("%s ", key);
        for (size_t s = 0; s < 3; s++) {
                if (s)
                        putchar('|');
                fwrite(buf + s * seg, 1, seg, stdout);
        }
        putchar('\n');
}

/* shortr CALL KIND SEG: NBYTES of the alphabet wait; one call into three
 * buffers of SEG bytes (one buffer of 3*SEG for the plain calls). */
static int cmd_short_read(int argc, char **argv)
{
        char buf[3 * SEG_MAX], rest[256];
        int fds[2];
        size_t seg, total;
        long r;

        if (argc < 6)
                return usage();
        seg = (size_t)atoi(argv[4]);
        total = (size_t)atoi(argv[5]);
        if (seg < 1 || seg > SEG_MAX || total < 1 || total >= sizeof alphabet)
                return usage();
        make_pair(argv[3], fds);
        set_nonblocking(fds[0], true);
        fill(fds[1], alphabet, total);
        memset(buf, '.', sizeof buf);
        struct iovec iov[3] = {{buf, seg}, {buf + seg, seg}, {buf + 2 * seg, seg}};
        struct mmsghdr mm = {.msg_hdr = {.msg_iov = iov, .msg_iovlen = 3}};
        const char *call = argv[2];
        errno = 0;
        if (strcmp(call, "read") == 0)
                r = read(fds[0], buf, 3 * seg);
        else if (strcmp(call, "recv") == 0)
                r = recv(fds[0], buf, 3 * seg, 0);
        else if (strcmp(call, "recvfrom") == 0)
                r = recvfrom(fds[0], buf, 3 * seg, 0, NULL, NULL);
        else if (strcmp(call, "readv") == 0)
                r = readv(fds[0], iov, 3);
        else if (strcmp(call, "recvmsg") == 0)
                r = recvmsg(fds[0], &mm.msg_hdr, 0);
        else if (strcmp(call, "recvmmsg") == 0) {
                r = recvmmsg(fds[0], &mm, 1, 0, NULL);
                put("msgs", "%ld", r);
                if (r == 1)
                        r = mm.msg_len;
        } else
                return usage();
        outcome("ret", r, errno);
        put_segments("bufs", buf, seg);
        put_bytes("rest", rest, drain(fds[0], rest, sizeof rest));
        return 0;
}

/* shortw CALL KIND SEG: one call of three buffers of SEG alphabet bytes
 * (one buffer of 3*SEG for the plain calls); what the reader got. */
static int cmd_short_write(int argc, char **argv)
{
        char got[256];
        int fds[2];
        size_t seg;
        long r;

        if (argc < 5)
                return usage();
        seg = (size_t)atoi(argv[4]);
        if (seg < 1 || seg > SEG_MAX)
                return usage();
        make_pair(argv[3], fds);
        set_nonblocking(fds[1], true);
        struct iovec iov[3] = {{(void *)alphabet, seg},
                               {(void *)(alphabet + seg), seg},
                               {(void *)(alphabet + 2 * seg), seg}};
        struct mmsghdr mm = {.msg_hdr = {.msg_iov = iov, .msg_iovlen = 3}};
        const char *call = argv[2];
        errno = 0;
        if (strcmp(call, "write") == 0)
                r = write(fds[1], alphabet, 3 * seg);
        else if (strcmp(call, "send") == 0)
                r = send(fds[1], alphabet, 3 * seg, 0);
        else if (strcmp(call, "sendto") == 0)
                r = sendto(fds[1], alphabet, 3 * seg, 0, NULL, 0);
        else if (strcmp(call, "writev") == 0)
                r = writev(fds[1], iov, 3);
        else if (strcmp(call, "sendmsg") == 0)
                r = sendmsg(fds[1], &mm.msg_hdr, 0);
        else if (strcmp(call, "sendmmsg") == 0) {
                r = sendmmsg(fds[1], &mm, 1, 0);
                put("msgs", "%ld", r);
                if (r == 1)
                        r = mm.msg_len;
        } else
                return usage();
        outcome("ret", r, errno);
        put_bytes("got", got, drain(fds[0], got, sizeof got));
        return 0;
}

/* ---- a long transfer in one process ---- */

static uint32_t lcg = 12345;
static uint32_t next_rand(void)
{
        lcg = lcg * 1103515245u + 12345u;
        return lcg >> 8;
}

static unsigned char pattern(uint64_t i)
{
        return (unsigned char)(i * 7 + i / 251 + (i >> 16));
}

/* Sizes that cross buffers of all shapes: 1, a few, many. */
static size_t some_len(void)
{
        static const size_t sizes[] = {1, 2, 3, 5, 7, 64, 100, 1000, 4096, 10000, 65536};
        return sizes[next_rand() % (sizeof sizes / sizeof sizes[0])];
}

/* Split n bytes at p into 1..4 iovecs of uneven sizes. */
static int split(char *p, size_t n, struct iovec *iov)
{
        int cnt = 1 + (int)(next_rand() % 4);
        size_t left = n;
        for (int i = 0; i < cnt; i++) {
                size_t k = i == cnt - 1 ? left : (left ? next_rand() % (left + 1) : 0);
                iov[i].iov_base = p;
                iov[i].iov_len = k;
                p += k;
                left -= k;
        }
        return cnt;
}

static const char *const stream_in[] = {"read", "recv", "recvfrom", "readv", "recvmsg", "recvmmsg"};
static const char *const stream_out[] = {"write",  "send",    "sendto",
                                         "writev", "sendmsg", "sendmmsg"};

static long stream_call(const char *call, int fd, char *p, size_t n)
{
        struct iovec iov[4];
        struct mmsghdr mm = {.msg_hdr = {.msg_iov = iov}};
        long r;

        if (strcmp(call, "read") == 0)
                return read(fd, p, n);
        if (strcmp(call, "recv") == 0)
                return recv(fd, p, n, 0);
        if (strcmp(call, "recvfrom") == 0)
                return recvfrom(fd, p, n, 0, NULL, NULL);
        if (strcmp(call, "write") == 0)
                return write(fd, p, n);
        if (strcmp(call, "send") == 0)
                return send(fd, p, n, MSG_NOSIGNAL);
        if (strcmp(call, "sendto") == 0)
                return sendto(fd, p, n, MSG_NOSIGNAL, NULL, 0);
        mm.msg_hdr.msg_iovlen = (size_t)split(p, n, iov);
        if (strcmp(call, "readv") == 0)
                return readv(fd, iov, (int)mm.msg_hdr.msg_iovlen);
        if (strcmp(call, "writev") == 0)
                return writev(fd, iov, (int)mm.msg_hdr.msg_iovlen);
        if (strcmp(call, "recvmsg") == 0)
                return recvmsg(fd, &mm.msg_hdr, 0);
        if (strcmp(call, "sendmsg") == 0)
                return sendmsg(fd, &mm.msg_hdr, MSG_NOSIGNAL);
        if (strcmp(call, "recvmmsg") == 0)
                r = recvmmsg(fd, &mm, 1, 0, NULL);
        else
                r = sendmmsg(fd, &mm, 1, MSG_NOSIGNAL);
        return r == 1 ? (long)mm.msg_len : r;
}

/* stream KIND TOTAL: TOTAL bytes of a pattern from one end to the other
 * through a poll loop, with every input and output call in turn and
 * buffers of every shape; reports whether every byte arrived once, in
 * order. */
static int cmd_stream(int argc, char **argv)
{
        static char out[BUF_MAX], in[BUF_MAX];
        uint64_t total, sent = 0, received = 0, loops = 0, bad_at = UINT64_MAX;
        unsigned long eagain_r = 0, eagain_w = 0, short_w = 0, calls_r = 0, calls_w = 0;
        bool pipe_kind;
        int fds[2];

        if (argc < 4)
                return usage();
        pipe_kind = strcmp(argv[2], "pipe") == 0;
        total = strtoull(argv[3], NULL, 10);
        make_pair(argv[2], fds);
        set_nonblocking(fds[0], true);
        set_nonblocking(fds[1], true);
        while (received < total) {
                struct pollfd p[2] = {{fds[1], sent < total ? POLLOUT : 0, 0}, {fds[0], POLLIN, 0}};
                if (++loops > 10000000 || poll(p, 2, WAIT_MS) <= 0) {
                        put("stalled", "%llu", (unsigned long long)loops);
                        break;
                }
                if (p[1].revents & (POLLIN | POLLHUP)) {
                        size_t n = some_len();
                        const char *call = pipe_kind ? (next_rand() % 2 ? "read" : "readv")
                                                     : stream_in[next_rand() % 6];
                        long r = stream_call(call, fds[0], in, n);
                        calls_r++;
                        if (r < 0 && errno == EAGAIN) {
                                eagain_r++;
                        } else if (r <= 0) {
                                put("read_error", "%s %ld %s", call, r, errname(errno));
                                break;
                        } else {
                                for (long i = 0; i < r && bad_at == UINT64_MAX; i++)
                                        if ((unsigned char)in[i] != pattern(received + (uint64_t)i))
                                                bad_at = received + (uint64_t)i;
                                received += (uint64_t)r;
                        }
                }
                if (p[0].revents & POLLOUT) {
                        size_t n = some_len();
                        const char *call = pipe_kind ? (next_rand() % 2 ? "write" : "writev")
                                                     : stream_out[next_rand() % 6];
                        if (n > total - sent)
                                n = (size_t)(total - sent);
                        for (size_t i = 0; i < n; i++)
                                out[i] = (char)pattern(sent + i);
                        long r = stream_call(call, fds[1], out, n);
                        calls_w++;
                        if (r < 0 && errno == EAGAIN) {
                                eagain_w++;
                        } else if (r <= 0) {
                                put("write_error", "%s %ld %s", call, r, errname(errno));
                                break;
                        } else {
                                short_w += (size_t)r < n;
                                sent += (uint64_t)r;
                        }
                }
        }
        put("sent", "%llu", (unsigned long long)sent);
        put("received", "%llu", (unsigned long long)received);
        put("bad_at", "%lld", bad_at == UINT64_MAX ? -1ll : (long long)bad_at);
        put("calls_r", "%lu", calls_r);
        put("calls_w", "%lu", calls_w);
        put("eagain_r", "%lu", eagain_r);
        put("eagain_w", "%lu", eagain_w);
        put("short_w", "%lu", short_w);
        return 0;
}

/* ---- errno of failing calls ---- */

/* errnos: calls that fail for real, one line each; and a success that
 * must leave errno alone. Compared against the same run without the
 * library. */
static int cmd_errnos(int argc, char **argv)
{
        (void)argc; /* takes no arguments */
        (void)argv;
        char buf[64];
        int sp[2], pp[2], dg[2];
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        struct mmsghdr mm = {.msg_hdr = m};

        signal(SIGPIPE, SIG_IGN);
        make_pair("unix", sp);
        make_pair("pipe", pp);
        make_pair("dgram", dg);
        set_nonblocking(sp[0], true);
        set_nonblocking(pp[0], true);
        set_nonblocking(dg[0], true);

        TRY("read_badfd", read(-1, buf, sizeof buf));
        TRY("read_closedfd", read(999, buf, sizeof buf));
        TRY("write_closedfd", write(999, buf, 1));
        TRY("recv_empty", recv(sp[0], buf, sizeof buf, 0));
        TRY("read_empty_socket", read(sp[0], buf, sizeof buf));
        TRY("read_empty_pipe", read(pp[0], buf, sizeof buf));
        TRY("readv_empty_pipe", readv(pp[0], &iov, 1));
        TRY("recvfrom_empty_dgram", recvfrom(dg[0], buf, sizeof buf, 0, NULL, NULL));
        TRY("recvmsg_empty", recvmsg(sp[0], &m, 0));
        TRY("recvmmsg_empty", recvmmsg(sp[0], &mm, 1, 0, NULL));
        TRY("recv_on_pipe", recv(pp[0], buf, sizeof buf, 0));
        TRY("send_on_pipe", send(pp[1], "x", 1, 0));
        TRY("readv_badcount", readv(pp[0], &iov, (int)opaque((size_t)-1)));
        TRY("write_readend", write(pp[0], "x", 1));
        TRY("accept_notlistening", accept(sp[0], NULL, NULL));
        TRY("accept4_badflags", accept4(sp[0], NULL, NULL, -1));
        TRY("accept_notsock", accept(pp[0], NULL, NULL));
        {
                struct sockaddr_un un = {.sun_family = AF_UNIX};
                int u = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
                snprintf(un.sun_path, sizeof un.sun_path, "/nonexistent/wbprobe.sock");
                TRY("connect_unix_missing", connect(u, (struct sockaddr *)&un, sizeof un));
                TRY("connect_badlen", connect(u, (struct sockaddr *)&un, 1));
                close(u);
        }
        /* a success must not touch errno */
        fill(sp[1], MSG, MSG_LEN);
        errno = 4242;
        long r = recv(sp[0], buf, sizeof buf, 0);
        put("recv_ok", "%ld errno=%d", r, errno);
        fill(pp[1], MSG, MSG_LEN);
        errno = 4242;
        r = read(pp[0], buf, sizeof buf);
        put("read_ok", "%ld errno=%d", r, errno);
        errno = 4242;
        r = write(sp[1], "x", 1);
        put("write_ok", "%ld errno=%d", r, errno);
        /* peers gone */
        close(pp[0]);
        TRY("write_epipe", write(pp[1], "x", 1));
        close(sp[0]);
        TRY("send_epipe", send(sp[1], "x", 1, MSG_NOSIGNAL));
        TRY("sendmsg_epipe", sendmsg(sp[1], &m, MSG_NOSIGNAL));
        TRY("sendmmsg_epipe", sendmmsg(sp[1], &mm, 1, MSG_NOSIGNAL));
        TRY("writev_epipe", writev(sp[1], &iov, 1));
        return 0;
}

/* A pointer the compiler cannot see through (so it lets us pass NULL). */
static void *opaque_ptr(uintptr_t v)
{
        volatile uintptr_t x = v;
        return (void *)x;
}

/* efault: pointers the kernel refuses; it answers EFAULT and so must we. */
static int cmd_efault(int argc, char **argv)
{
        int sp[2];
        const char *which = argc > 2 ? argv[2] : "all";

        make_pair("unix", sp);
        set_nonblocking(sp[0], true);
        set_nonblocking(sp[1], true);
        fill(sp[1], MSG, MSG_LEN);
#define EFAULT_CASE(key, expr)                                                                     \
        if (strcmp(which, "all") == 0 || strcmp(which, key) == 0) {                                \
                fflush(stdout);                                                                    \
                TRY(key, expr);                                                                    \
        }
        EFAULT_CASE("read_badbuf", read(sp[0], opaque_ptr(8), 16));
        EFAULT_CASE("readv_nulliov", readv(sp[0], opaque_ptr(0), 1));
        EFAULT_CASE("recvmsg_nullmsg", recvmsg(sp[0], opaque_ptr(0), 0));
        EFAULT_CASE("sendmsg_nullmsg", sendmsg(sp[1], opaque_ptr(0), 0));
        EFAULT_CASE("recvmmsg_nullvec", recvmmsg(sp[0], opaque_ptr(0), 1, 0, NULL));
        EFAULT_CASE("sendmmsg_nullvec", sendmmsg(sp[1], opaque_ptr(0), 1, 0));
        EFAULT_CASE("writev_nulliov", writev(sp[1], opaque_ptr(0), 1));
#undef EFAULT_CASE
        return 0;
}

/* ---- connect and accept ---- */

static void report_connected(int client, int lst)
{
        char buf[64];
        int err = -1;
        socklen_t len = sizeof err;
        struct pollfd p = {client, POLLOUT, 0};

        int ready = poll(&p, 1, WAIT_MS);

        put("poll", "%d revents=%s%s%s", ready, p.revents & POLLOUT ? "OUT" : "",
            p.revents & POLLERR ? "ERR" : "", p.revents & POLLHUP ? "HUP" : "");
        if (getsockopt(client, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                die("getsockopt");
        put("so_error", "%s", err ? errname(err) : "0");
        if (lst < 0)
                return;
        /* the connection really exists: the listener has it, data flows */
        int srv = wait_for(lst, POLLIN) ? (int)syscall(SYS_accept4, lst, NULL, NULL, 0) : -1;
        put("accepted", "%d", srv >= 0);
        errno = 0;
        long r = syscall(SYS_sendto, client, "ping", 4, MSG_NOSIGNAL, NULL, 0);
        outcome("send", r, errno);
        r = srv >= 0 && wait_for(srv, POLLIN) ? raw_read(srv, buf, sizeof buf) : -1;
        put_bytes("peer_got", buf, r > 0 ? r : 0);
}

/* connect FAMILY: a non-blocking connect to a listener on the loopback. */
static int cmd_connect(int argc, char **argv)
{
        struct sockaddr_storage ss;
        int family, lst, client;
        socklen_t len;

        if (argc < 3)
                return usage();
        family = family_of(argv[2]);
        lst = listener(family, SOCK_STREAM);
        len = loopback(family, local_port(lst), &ss);
        client = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (client < 0)
                die("socket");
        put("pid", "%d", (int)getpid());
        put("fd", "%d", client);
        TRY("connect", connect(client, (struct sockaddr *)&ss, len));
        report_connected(client, lst);
        return 0;
}

/* refused FAMILY: a non-blocking connect to a port where nobody listens
 * (held by a bound socket that does not listen, so no one else takes it). */
static int cmd_refused(int argc, char **argv)
{
        struct sockaddr_storage ss;
        int family, holder, client;
        socklen_t len;

        if (argc < 3)
                return usage();
        family = family_of(argv[2]);
        holder = socket(family, SOCK_STREAM, 0);
        len = loopback(family, 0, &ss);
        if (holder < 0 || bind(holder, (struct sockaddr *)&ss, len) < 0) {
                fprintf(stderr, "wbprobe: loopback of family %d: %s\n", family, strerror(errno));
                return 4;
        }
        len = loopback(family, local_port(holder), &ss);
        client = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (client < 0)
                die("socket");
        put("pid", "%d", (int)getpid());
        put("fd", "%d", client);
        TRY("connect", connect(client, (struct sockaddr *)&ss, len));
        report_connected(client, -1);
        TRY("send", syscall(SYS_sendto, client, "ping", 4, MSG_NOSIGNAL, NULL, 0));
        return 0;
}

/* connect-unix: a non-blocking AF_UNIX connect, whether the listener got
 * anything, and a retry. */
static int cmd_connect_unix(int argc, char **argv)
{
        (void)argc; /* takes no arguments */
        (void)argv;
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        socklen_t len;
        int lst, client;

        /* abstract namespace: nothing on disk to clean up */
        snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "wbprobe-%d", (int)getpid());
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(un.sun_path + 1));
        lst = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (lst < 0 || bind(lst, (struct sockaddr *)&un, len) < 0 || listen(lst, 4) < 0)
                die("unix listener");
        client = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (client < 0)
                die("socket");
        put("pid", "%d", (int)getpid());
        put("fd", "%d", client);
        TRY("connect1", connect(client, (struct sockaddr *)&un, len));
        TRY("pending1", syscall(SYS_accept4, lst, NULL, NULL, SOCK_NONBLOCK));
        TRY("connect2", connect(client, (struct sockaddr *)&un, len));
        errno = 0;
        int srv = (int)syscall(SYS_accept4, lst, NULL, NULL, 0);
        outcome("pending2", srv >= 0 ? 0 : -1, errno);
        if (srv >= 0) {
                char buf[16];
                long r = syscall(SYS_sendto, client, "ping", 4, MSG_NOSIGNAL, NULL, 0);
                outcome("send", r, errno);
                r = wait_for(srv, POLLIN) ? raw_read(srv, buf, sizeof buf) : -1;
                put_bytes("peer_got", buf, r > 0 ? r : 0);
        }
        return 0;
}

/* accept CALL FAMILY: a client is waiting on a non-blocking listener; three
 * accepts (the third has nothing to take). */
static int cmd_accept(int argc, char **argv)
{
        struct sockaddr_storage ss;
        int lst, client, family;
        socklen_t len;
        bool four;

        if (argc < 4)
                return usage();
        four = strcmp(argv[2], "accept4") == 0;
        family = family_of(argv[3]);
        lst = listener(family, SOCK_STREAM);
        set_nonblocking(lst, true);
        len = loopback(family, local_port(lst), &ss);
        client = socket(family, SOCK_STREAM, 0);
        if (client < 0 || syscall(SYS_connect, client, &ss, len) < 0)
                die("connect (setup)");
        fill(client, "hi", 2);
        put("pid", "%d", (int)getpid());
        put("fd", "%d", lst);
        for (int i = 1; i <= 3; i++) {
                char key[16], buf[16];
                errno = 0;
                int fd = four ? accept4(lst, NULL, NULL, SOCK_CLOEXEC) : accept(lst, NULL, NULL);
                snprintf(key, sizeof key, "accept%d", i);
                outcome(key, fd < 0 ? -1 : 0, errno);
                if (fd >= 0) {
                        long r = wait_for(fd, POLLIN) ? raw_read(fd, buf, sizeof buf) : -1;
                        snprintf(key, sizeof key, "got%d", i);
                        put_bytes(key, buf, r > 0 ? r : 0);
                }
        }
        return 0;
}

/* ---- counting scopes ---- */

/* reuse HOW: recv twice on a socket, end or replace its fd number HOW
 * (close, fclose, closerange, dup2, dup3, none), recv twice on what the
 * number is now. */
static int cmd_reuse(int argc, char **argv)
{
        char buf[64];
        int a[2], b[2], fd;
        const char *how;

        if (argc < 3)
                return usage();
        how = argv[2];
        make_pair("unix", a);
        fd = a[0];
        set_nonblocking(fd, true);
        fill(a[1], MSG, MSG_LEN);
        put("fd", "%d", fd);
        TRY("r1", do_input("recv", fd, 64, 0, buf));
        TRY("r2", do_input("recv", fd, 64, 0, buf));
        if (strcmp(how, "close") == 0 || strcmp(how, "fclose") == 0 ||
            strcmp(how, "closerange") == 0) {
                if (how[0] == 'f') {
                        FILE *f = fdopen(fd, "r"); /* fclose closes inside libc */
                        if (!f || fclose(f) != 0)
                                die("fclose");
                } else if (how[5] == 'r') {
                        if (libc_close_range((unsigned)fd, (unsigned)fd) < 0)
                                die("close_range");
                } else {
                        close(fd);
                }
                close(a[1]);
                make_pair("unix", b);
                put("same_number", "%d", b[0] == fd);
                set_nonblocking(b[0], true);
                fill(b[1], MSG, MSG_LEN);
        } else if (strcmp(how, "dup2") == 0 || strcmp(how, "dup3") == 0) {
                make_pair("unix", b);
                set_nonblocking(b[0], true);
                fill(b[1], MSG, MSG_LEN);
                if ((how[3] == '2' ? dup2(b[0], fd) : dup3(b[0], fd, 0)) != fd)
                        die("dup");
                put("same_number", "1");
        } else if (strcmp(how, "none") == 0) {
                fill(a[1], MSG, MSG_LEN);
                put("same_number", "1");
        } else {
                return usage();
        }
        TRY("r3", do_input("recv", fd, 64, 0, buf));
        TRY("r4", do_input("recv", fd, 64, 0, buf));
        return 0;
}

/* file [after-fclose]: a regular file opened O_NONBLOCK, read twice.
 * after-fclose: its number was a socket's, seen by the library (one recv),
 * then closed by fclose, inside libc where no wrapper sees it. */
static int cmd_file(int argc, char **argv)
{
        (void)argc; /* takes no arguments */
        (void)argv;
        char path[] = "/tmp/wbprobe-XXXXXX", buf[64];
        int fd = mkstemp(path);

        if (fd < 0)
                die("mkstemp");
        fill(fd, MSG, MSG_LEN);
        close(fd);
        fd = open(path, O_RDONLY | O_NONBLOCK);
        unlink(path);
        if (fd < 0)
                die("open");
        put("pid", "%d", (int)getpid());
        put("fd", "%d", fd);
        TRY("read1", read(fd, buf, sizeof buf));
        TRY("read2", read(fd, buf, sizeof buf));
        return 0;
}

/* stale HOW: a socket's number, known to the library (one recv), is
 * closed by fclose inside libc and taken again by a file that libc opens
 * itself (HOW: fopen, then O_NONBLOCK set) or by an eventfd (HOW: eventfd):
 * neither close nor open went through a wrapper. One read on the new file. */
static int cmd_stale(int argc, char **argv)
{
        char path[] = "/tmp/wbprobe-XXXXXX", buf[64];
        int sp[2], fd, tmp;
        FILE *f, *file = NULL;

        if (argc < 3)
                return usage();
        tmp = mkstemp(path);
        if (tmp < 0)
                die("mkstemp");
        fill(tmp, MSG, MSG_LEN);
        close(tmp);
        make_pair("unix", sp);
        set_nonblocking(sp[0], true);
        TRY("socket_recv", recv(sp[0], buf, sizeof buf, 0));
        if (!(f = fdopen(sp[0], "r")) || fclose(f) != 0)
                die("fclose");
        if (strcmp(argv[2], "fopen") == 0) {
                if (!(file = fopen(path, "r")))
                        die("fopen");
                fd = fileno(file);
                set_nonblocking(fd, true);
        } else if (strcmp(argv[2], "eventfd") == 0) {
                fd = (int)syscall(SYS_eventfd2, 1, O_NONBLOCK);
                if (fd < 0)
                        die("eventfd");
        } else {
                return usage();
        }
        unlink(path);
        put("same_number", "%d", fd == sp[0]);
        put("fd", "%d", fd);
        TRY("read1", read(fd, buf, file ? sizeof buf : 8));
        return 0;
}

/* shared-flag: a pipe's read end is non-blocking and the library has seen
 * a read on it; a child process clears O_NONBLOCK (the flag belongs to the
 * open file, which the child shares). The parent's next read is blocking,
 * so it is not to be counted. */
static int cmd_shared_flag(int argc, char **argv)
{
        (void)argc; /* takes no arguments */
        (void)argv;
        char buf[64];
        int fds[2];
        pid_t child;

        make_pair("pipe", fds);
        set_nonblocking(fds[0], true);
        TRY("read_nonblocking", read(fds[0], buf, sizeof buf));
        child = fork();
        if (child < 0)
                die("fork");
        if (child == 0) {
                set_nonblocking(fds[0], false);
                _exit(0);
        }
        if (waitpid(child, NULL, 0) != child)
                die("waitpid");
        fill(fds[1], MSG, MSG_LEN);
        put("nonblocking_now", "%d", (fcntl(fds[0], F_GETFL) & O_NONBLOCK) != 0);
        TRY("read_blocking", read(fds[0], buf, sizeof buf));
        return 0;
}

/* spin LIMIT: retry recv without ever waiting until it gives the data (at
 * most LIMIT tries), then once more after a poll. */
static int cmd_spin(int argc, char **argv)
{
        char buf[64];
        int fds[2];
        long r = -1, tries = 0, limit;

        if (argc < 3)
                return usage();
        limit = atol(argv[2]);
        make_pair("unix", fds);
        set_nonblocking(fds[0], true);
        fill(fds[1], MSG, MSG_LEN);
        put("pid", "%d", (int)getpid());
        put("fd", "%d", fds[0]);
        while (tries < limit) {
                tries++;
                if ((r = recv(fds[0], buf, sizeof buf, 0)) >= 0 || errno != EAGAIN)
                        break;
        }
        put("tries", "%ld", tries);
        outcome("last", r, errno);
        return 0;
}

/* ---- zero-copy: sendfile, splice, tee ---- */

/* A regular file of n bytes of the alphabet, read from the start. */
static int alphabet_file(size_t n)
{
        static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        char tmpl[] = "/tmp/wbprobe-XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd < 0)
                die("mkstemp");
        unlink(tmpl);
        for (size_t i = 0; i < n; i++)
                if (raw_write(fd, &abc[i % (sizeof abc - 1)], 1) != 1)
                        die("write file");
        if (lseek(fd, 0, SEEK_SET) != 0)
                die("lseek");
        return fd;
}

/* sendfile KIND OFFSET N: one sendfile of N bytes of a file to KIND (nb),
 * from the file's position (OFFSET "pos") or from *offset = 0 ("ptr"); the
 * file position and *offset after it; then the rest sent, polling on
 * EAGAIN, and what the reader got. */
static int cmd_sendfile(int argc, char **argv)
{
        int fds[2], file;
        off_t off = 0, *offp;
        size_t n, sent = 0;
        char got[BUF_MAX];
        long r, total;

        if (argc < 5)
                return usage();
        n = (size_t)atol(argv[4]);
        if (n > sizeof got)
                return usage();
        make_pair(argv[2], fds);
        set_nonblocking(fds[1], true);
        file = alphabet_file(n);
        offp = strcmp(argv[3], "ptr") == 0 ? &off : NULL;
        errno = 0;
        r = sendfile(fds[1], file, offp, n);
        outcome("first", r, errno);
        put("pos", "%ld", (long)lseek(file, 0, SEEK_CUR));
        put("off", "%ld", (long)off);
        if (r > 0)
                sent = (size_t)r;
        for (int calls = 0; sent < n && calls < 100000; calls++) {
                if (!offp && lseek(file, (off_t)sent, SEEK_SET) < 0)
                        die("lseek");
                r = sendfile(fds[1], file, offp, n - sent);
                if (r > 0)
                        sent += (size_t)r;
                else if (r < 0 && errno == EAGAIN)
                        wait_for(fds[1], POLLOUT);
                else
                        break;
        }
        put("sent", "%zu", sent);
        total = 0;
        while ((size_t)total < sent && wait_for(fds[0], POLLIN)) {
                r = raw_read(fds[0], got + total, sizeof got - (size_t)total);
                if (r <= 0)
                        break;
                total += r;
        }
        put_bytes("data", got, total);
        return 0;
}

/* splice DIR MODE and tee MODE: MSG into the source, then three calls
 * (the source refilled after each that moved bytes), then what reached the
 * destination. DIR: sock2pipe, pipe2sock, pipe2pipe, tee (unix stream
 * sockets, every fd blocking). MODE: flag (SPLICE_F_NONBLOCK), none (no
 * flag), nbsock (no flag, O_NONBLOCK on the socket or the pipe written),
 * nbpipe (no flag, O_NONBLOCK on the pipe read). */
static int cmd_splice(int argc, char **argv)
{
        int a[2], b[2], in, out, fill_fd, drain_fd;
        unsigned flags = 0;
        const char *dir, *mode;
        bool tee_call;
        char buf[BUF_MAX];
        long r;

        if (argc < 4)
                return usage();
        dir = argv[2];
        mode = argv[3];
        tee_call = strcmp(dir, "tee") == 0;
        if (pipe(a) < 0)
                die("pipe");
        if (strcmp(dir, "sock2pipe") == 0 || strcmp(dir, "pipe2sock") == 0)
                make_pair("unix", b);
        else if (pipe(b) < 0)
                die("pipe");
        if (strcmp(dir, "sock2pipe") == 0) { /* b[1] -> b[0] => a[1] -> a[0] */
                fill_fd = b[1], in = b[0], out = a[1], drain_fd = a[0];
        } else if (strcmp(dir, "pipe2sock") == 0) { /* a[1] -> a[0] => b[1] -> b[0] */
                fill_fd = a[1], in = a[0], out = b[1], drain_fd = b[0];
        } else { /* pipe a => pipe b */
                fill_fd = a[1], in = a[0], out = b[1], drain_fd = b[0];
        }
        if (strcmp(mode, "flag") == 0)
                flags = SPLICE_F_NONBLOCK;
        else if (strcmp(mode, "nbsock") == 0)
                set_nonblocking(strcmp(dir, "sock2pipe") == 0 ? in : out, true);
        else if (strcmp(mode, "nbpipe") == 0)
                set_nonblocking(strcmp(dir, "sock2pipe") == 0 ? out : in, true);
        else if (strcmp(mode, "none") != 0)
                return usage();
        put("in", "%d", in);
        put("out", "%d", out);
        fill(fill_fd, MSG, MSG_LEN);
        for (int i = 1; i <= 3; i++) {
                char key[16];
                snprintf(key, sizeof key, "call%d", i);
                errno = 0;
                r = tee_call ? tee(in, out, MSG_LEN, flags)
                             : splice(in, NULL, out, NULL, MSG_LEN, flags);
                outcome(key, r, errno);
                if (r > 0 && !tee_call)
                        fill(fill_fd, MSG, MSG_LEN);
        }
        put_bytes("data", buf, drain(drain_fd, buf, sizeof buf));
        return 0;
}

/* ---- faithful injections (SPEC 4): what Linux can produce ---- */

static char big[65536]; /* alphabet bytes, what these transfers carry */

static void fill_big(void)
{
        for (size_t i = 0; i < sizeof big; i++)
                big[i] = alphabet[i % (sizeof alphabet - 1)];
}

/* n bytes from the writer's end, all of them, unseen */
static void fill_n(int fd, size_t n)
{
        for (size_t done = 0; done < n;) {
                long r = raw_write(fd, big, n - done < sizeof big ? n - done : sizeof big);
                if (r <= 0)
                        die("fill");
                done += (size_t)r;
        }
}

/* the writer's end says it has no more to send */
static void hang_up(const char *kind, int fds[2])
{
        if (strcmp(kind, "pipe") == 0) {
                close(fds[1]);
                fds[1] = -1;
        } else if (shutdown(fds[1], SHUT_WR) < 0) {
                die("shutdown");
        }
}

/* once KIND CALL AVAIL ASK [OPTION...]: AVAIL bytes wait on the reading end
 * (non-blocking), one input CALL of ASK bytes. OPTIONs: block (the fd stays
 * blocking), peek, waitall, oob (the recv flags), dontwait, lowat=N
 * (SO_RCVLOWAT), hup (the writer hangs up first). Prints ret and unread. */
static int cmd_once(int argc, char **argv)
{
        static char buf[BUF_MAX];
        int fds[2], flags = 0;
        bool nb = true, hup = false;
        size_t avail, ask;

        if (argc < 6)
                return usage();
        fill_big();
        make_pair(argv[2], fds);
        avail = (size_t)atol(argv[4]);
        ask = (size_t)atol(argv[5]);
        for (int i = 6; i < argc; i++) {
                if (strcmp(argv[i], "block") == 0)
                        nb = false;
                else if (strcmp(argv[i], "peek") == 0)
                        flags |= MSG_PEEK;
                else if (strcmp(argv[i], "waitall") == 0)
                        flags |= MSG_WAITALL;
                else if (strcmp(argv[i], "oob") == 0)
                        flags |= MSG_OOB;
                else if (strcmp(argv[i], "dontwait") == 0)
                        flags |= MSG_DONTWAIT;
                else if (strcmp(argv[i], "hup") == 0)
                        hup = true;
                else if (strncmp(argv[i], "lowat=", 6) == 0) {
                        int v = atoi(argv[i] + 6);
                        if (setsockopt(fds[0], SOL_SOCKET, SO_RCVLOWAT, &v, sizeof v) < 0)
                                die("SO_RCVLOWAT");
                } else
                        return usage();
        }
        if (nb)
                set_nonblocking(fds[0], true);
        if (flags & MSG_OOB) {
                /* the last byte sent urgent: recv(MSG_OOB) takes it */
                fill_n(fds[1], avail - 1);
                if (syscall(SYS_sendto, fds[1], "!", 1, MSG_OOB, NULL, 0) != 1)
                        die("send MSG_OOB");
                wait_for(fds[0], POLLPRI);
        } else {
                fill_n(fds[1], avail);
        }
        if (hup)
                hang_up(argv[2], fds);
        put("pid", "%d", (int)getpid());
        put("fd", "%d", fds[0]);
        errno = 0;
        long r = do_input(argv[3], fds[0], ask, flags, buf);
        outcome("ret", r, errno);
        put("unread", "%d", unread_bytes(fds[0]));
        return 0;
}

/* oncew KIND CALL LEN [oob]: one output CALL of LEN bytes on the writing
 * end (non-blocking; oob: MSG_OOB, the last byte sent urgent); prints ret,
 * what the reader has, and where the urgent mark is. */
static int cmd_once_write(int argc, char **argv)
{
        int fds[2], flags = MSG_NOSIGNAL;
        size_t len;

        if (argc < 5)
                return usage();
        fill_big();
        make_pair(argv[2], fds);
        len = (size_t)atol(argv[4]);
        if (len > sizeof big)
                return usage();
        set_nonblocking(fds[1], true);
        if (argc > 5 && strcmp(argv[5], "oob") == 0)
                flags |= MSG_OOB;
        put("pid", "%d", (int)getpid());
        put("fd", "%d", fds[1]);
        errno = 0;
        long r = do_output(argv[3], fds[1], big, len, flags);
        outcome("ret", r, errno);
        put("unread", "%d", unread_bytes(fds[0]));
        if (flags & MSG_OOB) {
                char urgent = 0;
                wait_for(fds[0], POLLPRI);
                TRY("urgent_at", syscall(SYS_recvfrom, fds[0], &urgent, 1, MSG_OOB, NULL, NULL) == 1
                                     ? strchr(alphabet, urgent) - alphabet
                                     : -1);
        }
        return 0;
}

/* scm [LEN]: a non-blocking unix stream socketpair; a sendmsg of LEN bytes
 * (32, as nginx's master tells its workers) carrying a descriptor
 * (SCM_RIGHTS), then a recvmsg of 8 KiB with room for it. */
static int cmd_scm(int argc, char **argv)
{
        static char data[8192], got[8192];
        size_t len = argc > 2 ? (size_t)atol(argv[2]) : 32;
        union {
                struct cmsghdr h;
                char space[CMSG_SPACE(sizeof(int))];
        } out, in;
        struct iovec iov = {data, len < sizeof data ? len : sizeof data}, riov = {got, sizeof got};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = out.space,
                           .msg_controllen = sizeof out.space};
        struct msghdr rm = {.msg_iov = &riov,
                            .msg_iovlen = 1,
                            .msg_control = in.space,
                            .msg_controllen = sizeof in.space};
        int sp[2], passed = 1; /* stdout */

        memset(data, 'D', sizeof data);
        memset(&out, 0, sizeof out);
        memset(&in, 0, sizeof in);
        out.h.cmsg_level = SOL_SOCKET;
        out.h.cmsg_type = SCM_RIGHTS;
        out.h.cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(&out.h), &passed, sizeof passed);
        make_pair("unix", sp);
        set_nonblocking(sp[0], true);
        set_nonblocking(sp[1], true);
        put("pid", "%d", (int)getpid());
        TRY("sent", sendmsg(sp[1], &m, 0));
        TRY("received", recvmsg(sp[0], &rm, 0));
        struct cmsghdr *c = CMSG_FIRSTHDR(&rm);
        put("fds", "%d", c && c->cmsg_type == SCM_RIGHTS ? 1 : 0);
        return 0;
}

static const char *revents_str(unsigned ev)
{
        static char s[64];
        snprintf(s, sizeof s, "%s%s%s%s%s", ev & POLLIN ? "IN" : "", ev & POLLOUT ? "OUT" : "",
                 ev & POLLRDHUP ? "RDHUP" : "", ev & POLLHUP ? "HUP" : "",
                 ev & POLLERR ? "ERR" : "");
        return s[0] ? s : "none";
}

/* et KIND in|out|spliceout: the fd registered edge-triggered (EPOLLIN for
 * in, the read end; EPOLLOUT for out and spliceout, the write end),
 * non-blocking; a first wait takes the registration's edge; one transfer (a
 * read of 64 KiB with 20000 bytes waiting, a write of 20000 bytes, or a
 * splice of 20000 bytes from a pipe into it); then one more wait (300 ms):
 * is the fd reported again? Linux reports it when that transfer was short
 * (it took all there was, or filled the buffer) only by a new edge; the
 * library owes it after an injected short one (edge=owed). */
static int cmd_et(int argc, char **argv)
{
        static char buf[BUF_MAX];
        struct epoll_event ev, got[4];
        int fds[2], ep, fd;
        bool in;
        long r;

        if (argc < 4)
                return usage();
        fill_big();
        in = strcmp(argv[3], "in") == 0;
        const bool splice_out = strcmp(argv[3], "spliceout") == 0;
        int from[2];
        if (splice_out) {
                if (pipe(from) < 0)
                        die("pipe");
                fill_n(from[1], 20000);
        }
        make_pair(argv[2], fds);
        fd = in ? fds[0] : fds[1];
        set_nonblocking(fd, true);
        if (in)
                fill_n(fds[1], 20000);
        ep = epoll_create1(EPOLL_CLOEXEC);
        ev.events = (in ? EPOLLIN : EPOLLOUT) | EPOLLET;
        ev.data.u64 = 0x1234;
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                die("epoll");
        put("pid", "%d", (int)getpid());
        put("fd", "%d", fd);
        put("wait1", "%d", epoll_wait(ep, got, 4, WAIT_MS));
        errno = 0;
        r = in           ? read(fd, buf, sizeof buf)
            : splice_out ? splice(from[0], NULL, fd, NULL, 20000, SPLICE_F_NONBLOCK)
                         : write(fd, big, 20000);
        outcome("transfer", r, errno);
        int n = epoll_wait(ep, got, 4, 300);
        put("wait2", "%d", n);
        if (n == 1)
                put("event2", "%s data=%llx", revents_str(got[0].events),
                    (unsigned long long)got[0].data.u64);
        return 0;
}

/* hup KIND poll|epoll|epollet [TOTAL ASK]: TOTAL bytes (100) wait on the
 * read end (non-blocking); read ASK (64); the writer hangs up; then wait
 * (poll, or epoll level- or edge-triggered, for input and read hang-up) and
 * read ASK, until the end of the stream. Prints each wait's events and each
 * read's count. epollet reads as nginx does: on until a read returns less
 * than asked (drained, on Linux), and prints the sum. */
static int cmd_hup(int argc, char **argv)
{
        static char buf[BUF_MAX];
        char key[16];
        int fds[2], ep = -1;
        bool use_epoll, et;
        size_t total = argc > 5 ? (size_t)atol(argv[4]) : 100;
        size_t ask = argc > 5 ? (size_t)atol(argv[5]) : 64;

        if (argc < 4 || ask > sizeof buf)
                return usage();
        fill_big();
        use_epoll = strncmp(argv[3], "epoll", 5) == 0;
        et = strcmp(argv[3], "epollet") == 0;
        make_pair(argv[2], fds);
        set_nonblocking(fds[0], true);
        fill_n(fds[1], total);
        if (use_epoll) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (et ? EPOLLET : 0),
                                         .data.u64 = 7};
                ep = epoll_create1(EPOLL_CLOEXEC);
                if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev) < 0)
                        die("epoll");
        }
        put("pid", "%d", (int)getpid());
        put("fd", "%d", fds[0]);
        TRY("read1", read(fds[0], buf, ask));
        hang_up(argv[2], fds);
        for (int i = 2; i < 10; i++) {
                unsigned revents = 0;
                if (use_epoll) {
                        struct epoll_event got;
                        if (epoll_wait(ep, &got, 1, WAIT_MS) == 1)
                                revents = got.events;
                } else {
                        struct pollfd p = {fds[0], POLLIN | POLLRDHUP, 0};
                        if (poll(&p, 1, WAIT_MS) == 1)
                                revents = (unsigned short)p.revents;
                }
                snprintf(key, sizeof key, "wait%d", i);
                put(key, "%s", revents_str(revents));
                snprintf(key, sizeof key, "read%d", i);
                errno = 0;
                long r = read(fds[0], buf, ask), sum = r;
                while (et && r == (long)ask) {
                        r = read(fds[0], buf, ask);
                        if (r > 0)
                                sum += r;
                }
                outcome(key, sum >= 0 ? sum : r, errno);
                if (r == 0)
                        break;
        }
        return 0;
}

/* connect-twice FAMILY|udp: a non-blocking connect, then a second one on the
 * same socket (hiredis does): the second gets the kernel's answer. */
static int cmd_connect_twice(int argc, char **argv)
{
        struct sockaddr_storage ss;
        int lst, client;
        bool udp;
        socklen_t len;

        if (argc < 3)
                return usage();
        udp = strcmp(argv[2], "udp") == 0;
        lst = listener(udp ? AF_INET : family_of(argv[2]), udp ? SOCK_DGRAM : SOCK_STREAM);
        len = loopback(udp ? AF_INET : family_of(argv[2]), local_port(lst), &ss);
        client = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK, 0);
        if (client < 0)
                die("socket");
        put("pid", "%d", (int)getpid());
        put("fd", "%d", client);
        TRY("connect1", connect(client, (struct sockaddr *)&ss, len));
        if (!udp)
                wait_for(client, POLLOUT);
        TRY("connect2", connect(client, (struct sockaddr *)&ss, len));
        return 0;
}

/* the subcommands, as the driver names them */
static int cmd_marker(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        return 0; /* main printed the marker already */
}

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
} commands[] = {
    {"marker", cmd_marker},
    {"input", cmd_input},
    {"output", cmd_output},
    {"shortr", cmd_short_read},
    {"shortw", cmd_short_write},
    {"stream", cmd_stream},
    {"errnos", cmd_errnos},
    {"efault", cmd_efault},
    {"connect", cmd_connect},
    {"refused", cmd_refused},
    {"connect-unix", cmd_connect_unix},
    {"accept", cmd_accept},
    {"reuse", cmd_reuse},
    {"file", cmd_file},
    {"stale", cmd_stale},
    {"shared-flag", cmd_shared_flag},
    {"spin", cmd_spin},
    {"sendfile", cmd_sendfile},
    {"splice", cmd_splice},
    {"once", cmd_once},
    {"oncew", cmd_once_write},
    {"scm", cmd_scm},
    {"et", cmd_et},
    {"hup", cmd_hup},
    {"connect-twice", cmd_connect_twice},
};

int main(int argc, char **argv)
{
        /* first thing: the tests for configuration errors assert this line
         * never appears (the library must stop the process before main) */
        puts("wbprobe: main started");
        fflush(stdout);
        if (argc < 2)
                return usage();
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].run(argc, argv);
        return usage();
}
