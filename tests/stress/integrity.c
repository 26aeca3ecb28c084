/* integrity.c - many megabytes through one fd pair under EAGAIN and short
 * counts: not one byte lost, doubled or reordered.
 *
 *   integrity socketpair|pipe poll|select [MIB]      (default 64 MiB)
 *
 * One thread, one event loop: the write end is written while the wait says
 * it is writable, the read end read while it says readable, one call per
 * report. The data is pseudo-random, written in pieces of varying size and
 * read into buffers of varying size, and each call alternates between the
 * plain, vectored and (on sockets) message spellings, so short= is
 * exercised across iovec boundaries. Both sides keep an FNV-1a checksum of
 * the bytes the kernel took or gave; at the end of the stream (the writer
 * closes its end) sums and counts must be equal.
 *
 * Prints bytes, checksum, calls, eagain and short (results smaller than
 * asked; run.py takes the injected counts from the report).
 */
#include "stress.h"

#include <sys/select.h>
#include <sys/uio.h>

#define BLOCK (256 * 1024) /* data generated ahead of the writer */
#define MAX_IO (64 * 1024)

enum spelling { PLAIN, VECTOR, MESSAGE, SPELLINGS };

struct side {
        int fd;
        unsigned calls;
        long n_calls, eagain, shorts;
        uint64_t bytes, sum;
        uint64_t rng;
};

/* Split len bytes at buf into up to three iovecs of uneven sizes. */
static int split(uint8_t *buf, size_t len, struct iovec iov[3], uint64_t *rng)
{
        size_t a = len > 2 ? rng_next(rng) % len : len, b = (len - a) / 2;
        iov[0] = (struct iovec){buf, a};
        iov[1] = (struct iovec){buf + a, b};
        iov[2] = (struct iovec){buf + a + b, len - a - b};
        return 3;
}

static ssize_t do_io(struct side *s, bool sock, bool output, uint8_t *buf, size_t len)
{
        enum spelling sp = (enum spelling)(s->calls++ % (sock ? SPELLINGS : MESSAGE));
        struct iovec iov[3];
        struct msghdr m = {0};

        switch (sp) {
        case PLAIN:
                if (sock)
                        return output ? send(s->fd, buf, len, MSG_NOSIGNAL)
                                      : recv(s->fd, buf, len, 0);
                return output ? write(s->fd, buf, len) : read(s->fd, buf, len);
        case VECTOR:
                split(buf, len, iov, &s->rng);
                return output ? writev(s->fd, iov, 3) : readv(s->fd, iov, 3);
        default:
                m.msg_iov = iov;
                m.msg_iovlen = (size_t)split(buf, len, iov, &s->rng);
                return output ? sendmsg(s->fd, &m, MSG_NOSIGNAL) : recvmsg(s->fd, &m, 0);
        }
}

/* One call's result: count it; true when the stream carries on. */
static bool account(struct side *s, ssize_t n, size_t asked, const uint8_t *buf)
{
        s->n_calls++;
        if (n < 0) {
                if (errno != EAGAIN)
                        die("fd %d: %s", s->fd, strerror(errno));
                s->eagain++;
                return true;
        }
        if ((size_t)n < asked)
                s->shorts++;
        s->sum = fnv1a(s->sum, buf, (size_t)n);
        s->bytes += (uint64_t)n;
        return n > 0;
}

/* Wait for the writer's and/or the reader's fd; sets what is ready. */
static void wait_both(bool use_select, int wfd, int rfd, bool *can_write, bool *can_read)
{
        int r;
        if (use_select) {
                fd_set rs, ws;
                FD_ZERO(&rs);
                FD_ZERO(&ws);
                FD_SET(rfd, &rs);
                if (wfd >= 0)
                        FD_SET(wfd, &ws);
                r = select((wfd > rfd ? wfd : rfd) + 1, &rs, &ws, NULL, NULL);
                CHECK_SYS(r > 0);
                *can_read = FD_ISSET(rfd, &rs);
                *can_write = wfd >= 0 && FD_ISSET(wfd, &ws);
        } else {
                struct pollfd p[2] = {{rfd, POLLIN, 0}, {wfd, POLLOUT, 0}};
                r = poll(p, wfd >= 0 ? 2 : 1, -1);
                CHECK_SYS(r > 0);
                *can_read = p[0].revents != 0;
                *can_write = wfd >= 0 && p[1].revents != 0;
        }
}

int main(int argc, char **argv)
{
        if (argc < 3)
                die("usage: integrity socketpair|pipe poll|select [MIB]");
        bool sock = strcmp(argv[1], "socketpair") == 0, use_select = strcmp(argv[2], "select") == 0;
        uint64_t total = (uint64_t)arg_long(argc, argv, 3, 64) << 20;
        static uint8_t block[BLOCK], in[MAX_IO];
        uint64_t gen_rng = 0x243f6a8885a308d3ull;
        size_t block_off = BLOCK; /* first byte of block not yet written */
        struct side w = {.sum = FNV_OFFSET, .rng = 1}, r = {.sum = FNV_OFFSET, .rng = 2};
        int fds[2];

        if (sock)
                nb_socketpair(fds);
        else
                nb_pipe(fds);
        r.fd = fds[sock ? 1 : 0];
        w.fd = fds[1 - (sock ? 1 : 0)];

        for (;;) {
                bool can_write, can_read;
                wait_both(use_select, w.fd, r.fd, &can_write, &can_read);
                if (can_write) {
                        size_t len;
                        ssize_t n;
                        if (block_off == BLOCK) {
                                for (size_t i = 0; i < BLOCK; i += 8) {
                                        uint64_t x = rng_next(&gen_rng);
                                        memcpy(block + i, &x, 8);
                                }
                                block_off = 0;
                        }
                        len = 1 + rng_next(&w.rng) % MAX_IO;
                        if (len > BLOCK - block_off)
                                len = BLOCK - block_off;
                        if (len > total - w.bytes)
                                len = (size_t)(total - w.bytes);
                        n = do_io(&w, sock, true, block + block_off, len);
                        CHECK(account(&w, n, len, block + block_off));
                        if (n > 0)
                                block_off += (size_t)n;
                        if (w.bytes == total) {
                                CHECK_SYS(close(w.fd) == 0); /* the reader sees the end */
                                w.fd = -1;
                        }
                }
                if (can_read) {
                        size_t len = 1 + rng_next(&r.rng) % MAX_IO;
                        if (!account(&r, do_io(&r, sock, false, in, len), len, in))
                                break;
                }
        }
        printf("bytes=%llu\nwritten=%llu\nchecksum=%016llx\nwriter_checksum=%016llx\n"
               "calls=%ld\neagain=%ld\nshort=%ld\n",
               (unsigned long long)r.bytes, (unsigned long long)w.bytes, (unsigned long long)r.sum,
               (unsigned long long)w.sum, w.n_calls + r.n_calls, w.eagain + r.eagain,
               w.shorts + r.shorts);
        if (r.bytes != total || w.bytes != total)
                die("%llu bytes written, %llu read, %llu meant", (unsigned long long)w.bytes,
                    (unsigned long long)r.bytes, (unsigned long long)total);
        if (r.sum != w.sum)
                die("checksums differ: the bytes read are not the bytes written");
        return 0;
}
