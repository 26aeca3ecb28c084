/* threads.c - many threads in wrapped calls at once, every byte checked.
 *
 *   threads [PAIRS [CALLS [WAVES]]]   (defaults: 4 pairs, 1000000 calls, 1 wave)
 *
 * Each of PAIRS non-blocking socketpairs has a writer thread and a reader
 * thread. The writer sends a known byte stream in chunks of varying size,
 * polling for POLLOUT on EAGAIN, until it has made CALLS send calls, then
 * shuts its end down. The reader receives in chunks of varying size,
 * polling for POLLIN on EAGAIN, checks every byte against the stream, and
 * goes on until it saw the end of the stream and made CALLS recv calls.
 * Under a prob= rule about half of those calls are injected: a lost, doubled
 * or reordered byte, a crash or a hang (run.py's timeout) is the library's.
 *
 * With WAVES > 1 that is done WAVES times over, one wave of threads (and
 * socketpairs) after the other: the threads of a later wave take over the
 * counter shards that those of the earlier one gave back when they ended.
 *
 * Prints the totals run.py compares with the report: send_calls,
 * recv_calls (what the report's calls.*.seen must say), send_eagain and
 * recv_eagain (at least the report's injections), bytes.
 */
#include "stress.h"

#include <pthread.h>
#include <stdatomic.h>

#define MAX_PAIRS 64
#define MAX_CHUNK 256

struct pair {
        int writer_fd, reader_fd;
        uint32_t salt;
        long calls; /* each thread makes at least this many */
        /* results */
        uint64_t bytes_sent, bytes_received;
        long send_calls, recv_calls, send_eagain, recv_eagain;
};

static void *writer(void *arg)
{
        struct pair *p = arg;
        uint8_t buf[MAX_CHUNK];
        uint64_t rng = p->salt * 2654435761u + 1, pos = 0;

        while (p->send_calls < p->calls) {
                size_t len = 1 + rng_next(&rng) % MAX_CHUNK;
                ssize_t n;
                stream_fill(buf, len, pos, p->salt);
                n = send(p->writer_fd, buf, len, MSG_NOSIGNAL);
                p->send_calls++;
                if (n > 0) {
                        pos += (uint64_t)n;
                } else if (n < 0 && errno == EAGAIN) {
                        p->send_eagain++;
                        wait_fd(p->writer_fd, POLLOUT, 60000, "writer");
                } else {
                        die("send on pair %u returned %zd: %s", p->salt, n, strerror(errno));
                }
        }
        p->bytes_sent = pos;
        CHECK_SYS(shutdown(p->writer_fd, SHUT_WR) == 0);
        return NULL;
}

static void *reader(void *arg)
{
        struct pair *p = arg;
        uint8_t buf[MAX_CHUNK];
        uint64_t rng = p->salt * 40503u + 7, pos = 0;
        bool eof = false;

        /* past the end of the stream recv keeps saying 0 (or an injected
         * EAGAIN): the reader still makes its share of wrapped calls */
        while (!eof || p->recv_calls < p->calls) {
                size_t len = 1 + rng_next(&rng) % MAX_CHUNK, bad;
                ssize_t n = recv(p->reader_fd, buf, len, 0);
                p->recv_calls++;
                if (n > 0) {
                        CHECK(!eof);
                        bad = stream_check(buf, (size_t)n, pos, p->salt);
                        if (bad < (size_t)n)
                                die("pair %u: byte %llu is wrong", p->salt,
                                    (unsigned long long)(pos + bad));
                        pos += (uint64_t)n;
                } else if (n == 0) {
                        eof = true;
                } else if (errno == EAGAIN) {
                        p->recv_eagain++;
                        wait_fd(p->reader_fd, POLLIN, 60000, "reader");
                } else {
                        die("recv on pair %u: %s", p->salt, strerror(errno));
                }
        }
        p->bytes_received = pos;
        return NULL;
}

int main(int argc, char **argv)
{
        long pairs = arg_long(argc, argv, 1, 4), calls = arg_long(argc, argv, 2, 1000000);
        long waves = arg_long(argc, argv, 3, 1);
        static struct pair pair[MAX_PAIRS];
        pthread_t tid[2 * MAX_PAIRS];
        long send_calls = 0, recv_calls = 0, send_eagain = 0, recv_eagain = 0;
        uint64_t bytes = 0;

        CHECK(pairs >= 1 && pairs <= MAX_PAIRS && waves >= 1);
        for (long w = 0; w < waves; w++) {
                for (long i = 0; i < pairs; i++) {
                        int sv[2];
                        nb_socketpair(sv);
                        pair[i] = (struct pair){.writer_fd = sv[0],
                                                .reader_fd = sv[1],
                                                .salt = (uint32_t)(w * pairs + i + 1),
                                                .calls = calls};
                }
                for (long i = 0; i < pairs; i++) {
                        CHECK(pthread_create(&tid[2 * i], NULL, writer, &pair[i]) == 0);
                        CHECK(pthread_create(&tid[2 * i + 1], NULL, reader, &pair[i]) == 0);
                }
                for (long i = 0; i < 2 * pairs; i++)
                        CHECK(pthread_join(tid[i], NULL) == 0);
                for (long i = 0; i < pairs; i++) {
                        struct pair *p = &pair[i];
                        if (p->bytes_received != p->bytes_sent)
                                die("pair %ld: %llu bytes sent, %llu received", i,
                                    (unsigned long long)p->bytes_sent,
                                    (unsigned long long)p->bytes_received);
                        CHECK(p->send_calls >= calls && p->recv_calls >= calls);
                        send_calls += p->send_calls;
                        recv_calls += p->recv_calls;
                        send_eagain += p->send_eagain;
                        recv_eagain += p->recv_eagain;
                        bytes += p->bytes_sent;
                        close(p->writer_fd);
                        close(p->reader_fd);
                }
        }
        printf("threads=%ld\nsend_calls=%ld\nrecv_calls=%ld\nsend_eagain=%ld\nrecv_eagain=%ld\n"
               "bytes=%llu\n",
               2 * pairs * waves, send_calls, recv_calls, send_eagain, recv_eagain,
               (unsigned long long)bytes);
        return 0;
}
