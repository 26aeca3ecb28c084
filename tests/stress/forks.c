/* forks.c - each process counts on its own: fork from threads, vfork,
 * posix_spawn, exec chains. Run under "recv when=1": the first recv on
 * every fd is injected, so a process's rule shows injected == the number of
 * fds it called recv on, and counted == its recv calls.
 *
 *   forks recv K [exit|_exit]   make exactly K recv calls on a fresh
 *                               non-blocking socketpair, end as told
 *   forks fork-threaded K       threads busy in recv/send while the main
 *                               thread forks a child that ends with exit(),
 *                               one that ends with _exit(); both do `recv K`
 *   forks spawn K               vfork+exec, posix_spawn, and a vfork child
 *                               that _exits without exec, between recv calls
 *                               of our own (vfork_shared=1: that child really
 *                               ran in our memory)
 *   forks exec-self K           some recv calls, then exec `forks recv K`
 *   forks shared-flags          children clear and set O_NONBLOCK on an fd
 *                               the parent shares (run under "recv")
 *
 * Prints what run.py compares with the reports: pid, recv_calls and
 * recv_fds of this process, and the pids of its children by kind.
 */
#include "stress.h"

#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define BUSY_THREADS 3

extern char **environ;

/* we exec ourselves through /proc/self/exe, under the name we were given */
static const char *self_path = "/proc/self/exe", *self_name;

/* recv calls made by this process, and on how many fds */
static _Atomic long recv_calls, recv_fds;

/* Make exactly k recv calls on a new socketpair that holds k bytes. The
 * first is injected (when=1); every later one finds a byte. */
static void recv_k(long k)
{
        int sv[2];
        uint8_t b = 0;
        long got = 0;

        nb_socketpair(sv);
        for (long i = 0; i < k; i++)
                CHECK_SYS(send(sv[0], &b, 1, 0) == 1);
        atomic_fetch_add(&recv_fds, 1);
        for (long i = 0; i < k; i++) {
                ssize_t n = recv(sv[1], &b, 1, 0);
                atomic_fetch_add(&recv_calls, 1);
                if (n == 1)
                        got++;
                else
                        CHECK_SYS(n < 0 && errno == EAGAIN);
        }
        CHECK(k == 0 || got >= k - 1);
        close(sv[0]);
        close(sv[1]);
}

static void print_self(void)
{
        printf("pid=%ld\nrecv_calls=%ld\nrecv_fds=%ld\n", (long)getpid(), atomic_load(&recv_calls),
               atomic_load(&recv_fds));
}

static int wait_ok(pid_t pid, const char *what)
{
        int status;
        CHECK_SYS(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("%s child %ld ended with status %#x", what, (long)pid, status);
        return 0;
}

/* ---- fork from a multi-threaded process ---- */

static _Atomic bool stop_busy;
static _Atomic long busy_calls[BUSY_THREADS];

/* A ping-pong on a socketpair of its own: in recv (or send) all the time. */
static void *busy(void *arg)
{
        _Atomic long *calls = arg;
        int sv[2];
        uint8_t b = 0;

        nb_socketpair(sv);
        atomic_fetch_add(&recv_fds, 1);
        do {
                ssize_t n;
                CHECK_SYS(send(sv[0], &b, 1, 0) == 1);
                do {
                        n = recv(sv[1], &b, 1, 0);
                        atomic_fetch_add(&recv_calls, 1);
                        atomic_fetch_add(calls, 1);
                } while (n < 0 && errno == EAGAIN);
                CHECK_SYS(n == 1);
        } while (!atomic_load(&stop_busy));
        close(sv[0]);
        close(sv[1]);
        return NULL;
}

static pid_t fork_child(long k, bool use_exit)
{
        long before[BUSY_THREADS];
        pid_t pid;

        /* fork while every thread is surely in the middle of its calls */
        for (int i = 0; i < BUSY_THREADS; i++)
                before[i] = atomic_load(&busy_calls[i]);
        for (int i = 0; i < BUSY_THREADS; i++)
                while (atomic_load(&busy_calls[i]) < before[i] + 100)
                        sched_yield();
        fflush(stdout);
        pid = fork();
        CHECK_SYS(pid >= 0);
        if (pid == 0) {
                /* the child's counters start from zero, ours are not its own */
                atomic_store(&recv_calls, 0);
                atomic_store(&recv_fds, 0);
                recv_k(k);
                if (use_exit)
                        exit(0);
                _exit(0);
        }
        return pid;
}

static int fork_threaded(long k)
{
        pthread_t tid[BUSY_THREADS];
        pid_t exit_child, underscore_child;

        for (int i = 0; i < BUSY_THREADS; i++)
                CHECK(pthread_create(&tid[i], NULL, busy, &busy_calls[i]) == 0);
        exit_child = fork_child(k, true);
        underscore_child = fork_child(k, false);
        wait_ok(exit_child, "exit()");
        wait_ok(underscore_child, "_exit()");
        atomic_store(&stop_busy, true);
        for (int i = 0; i < BUSY_THREADS; i++)
                CHECK(pthread_join(tid[i], NULL) == 0);
        recv_k(k);
        print_self();
        printf("child_exit=%ld\nchild__exit=%ld\n", (long)exit_child, (long)underscore_child);
        return 0;
}

/* ---- vfork, posix_spawn ---- */

/* Set by a vfork child: 1 after it when the child really borrowed our
 * memory (ThreadSanitizer, for one, turns vfork into fork). */
static volatile int vfork_shared;

static int spawn(long k)
{
        char count[32];
        char *child_argv[] = {(char *)self_name, "recv", count, NULL};
        pid_t vfork_exec, vfork_exit, spawned;

        snprintf(count, sizeof count, "%ld", k);
        recv_k(k); /* our counters are not zero when the children start */

        /* vfork's child runs in our memory until it execs or _exits */
        vfork_exec = vfork();
        CHECK_SYS(vfork_exec >= 0);
        if (vfork_exec == 0) {
                execve(self_path, child_argv, environ);
                _exit(127);
        }
        wait_ok(vfork_exec, "vfork+exec");
        recv_k(k);

        /* a vfork child that never execs: its _exit must not write (or mark
         * as written) the report of the process whose memory it borrowed */
        vfork_exit = vfork();
        CHECK_SYS(vfork_exit >= 0);
        if (vfork_exit == 0) {
                vfork_shared = 1; /* seen by the parent only if vfork is real */
                _exit(0);
        }
        wait_ok(vfork_exit, "vfork+_exit");

        CHECK(posix_spawn(&spawned, self_path, NULL, NULL, child_argv, environ) == 0);
        wait_ok(spawned, "posix_spawn");
        recv_k(k);
        print_self();
        printf("child_vfork_exec=%ld\nchild_vfork_exit=%ld\nchild_spawn=%ld\nvfork_shared=%d\n",
               (long)vfork_exec, (long)vfork_exit, (long)spawned, vfork_shared);
        return 0;
}

/* ---- O_NONBLOCK changed by another process ---- */

/* In a child: set or clear O_NONBLOCK on fd, which the parent shares (one
 * open file description), put a byte in data_fd for the parent's next
 * recv, then tell the parent through the pipe sync. */
static void child_flips(int fd, bool nonblocking, int data_fd, const int sync[2])
{
        pid_t pid = fork();
        uint8_t b = 0;
        CHECK_SYS(pid >= 0);
        if (pid == 0) {
                int fl = fcntl(fd, F_GETFL);
                CHECK_SYS(fcntl(fd, F_SETFL, nonblocking ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) ==
                          0);
                CHECK_SYS(send(data_fd, "x", 1, 0) == 1);
                CHECK_SYS(write(sync[1], "s", 1) == 1);
                _exit(0);
        }
        CHECK_SYS(read(sync[0], &b, 1) == 1);
        wait_ok(pid, "flipping O_NONBLOCK");
}

/* Under "recv" (every counted recv fails): a recv on an fd that a child
 * made blocking must block (here: find its byte), never fail with EAGAIN,
 * and one on an fd a child made non-blocking again is counted again. */
static int shared_flags(void)
{
        int sv[2], sync[2];
        uint8_t b;
        ssize_t n;

        nb_socketpair(sv);
        CHECK_SYS(pipe(sync) == 0); /* blocking: never counted */
        n = recv(sv[1], &b, 1, 0);  /* the library sees sv[1] non-blocking */
        CHECK_SYS(n < 0 && errno == EAGAIN);
        child_flips(sv[1], false, sv[0], sync);
        n = recv(sv[1], &b, 1, 0);
        if (n != 1)
                die("recv on an fd another process made blocking: %zd (%s): an EAGAIN a blocking "
                    "call never returns",
                    n, n < 0 ? strerror(errno) : "");
        child_flips(sv[1], true, sv[0], sync);
        n = recv(sv[1], &b, 1, 0); /* non-blocking again: counted, and so failed */
        printf("pid=%ld\nlast_recv=%zd\n", (long)getpid(), n);
        return 0;
}

int main(int argc, char **argv)
{
        const char *mode = argc > 1 ? argv[1] : "";
        long k = arg_long(argc, argv, 2, 5);

        self_name = argv[0];
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (strcmp(mode, "recv") == 0) {
                recv_k(k);
                print_self();
                if (argc > 3 && strcmp(argv[3], "_exit") == 0)
                        _exit(0);
                return 0;
        }
        if (strcmp(mode, "fork-threaded") == 0)
                return fork_threaded(k);
        if (strcmp(mode, "spawn") == 0)
                return spawn(k);
        if (strcmp(mode, "exec-self") == 0) {
                char count[32];
                char *child_argv[] = {argv[0], "recv", count, NULL};
                snprintf(count, sizeof count, "%ld", k);
                recv_k(k + 3); /* counted in this image only, which never exits */
                fflush(stdout);
                execve(self_path, child_argv, environ);
                die("exec %s: %s", self_path, strerror(errno));
        }
        if (strcmp(mode, "shared-flags") == 0)
                return shared_flags();
        die("usage: forks recv|fork-threaded|spawn|exec-self K | shared-flags");
}
