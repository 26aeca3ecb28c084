/* siteprobe.c - calls from known places, for the site= and recording tests
 * (tests/site/run.py).
 *
 * The same read(2) on a non-blocking pipe is made from the executable,
 * from a shared library it links (libsiteprobe.so), from one it dlopen()s
 * (libsitedl.so) and from a forked child. Each prints "WHERE RET" or
 * "WHERE -1 ENAME"; the pipe always holds data, so only an injection makes
 * a call fail. Setup uses raw system calls, unseen by the library.
 */
#include "siteprobe.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef SITEPROBE_LIB
/* the library's own call site (libsiteprobe.so and libsitedl.so). Not a
 * tail call: a jump to read would leave the caller's return address. */
static volatile long last;
long siteprobe_lib_read(int fd, char *buf, size_t n)
{
        long r = read(fd, buf, n);
        last = r;
        return r;
}

/* a dlopen from this library, which has no RPATH or RUNPATH */
void *siteprobe_lib_dlopen(const char *name)
{
        void *h = dlopen(name, RTLD_NOW);
        last = 0;
        return h;
}
#else

static int pipe_with_data(bool nonblocking)
{
        int p[2];
        if (syscall(SYS_pipe2, p, nonblocking ? O_NONBLOCK : 0) != 0 ||
            syscall(SYS_write, p[1], "0123456789", 10) != 10) {
                perror("siteprobe: pipe");
                exit(3);
        }
        return p[0];
}

static void show(const char *where, long r, int err)
{
        if (r < 0)
                printf("%s -1 %s\n", where, strerrorname_np(err));
        else
                printf("%s %ld\n", where, r);
        fflush(stdout);
}

/* noinline: one call site each, in the executable */
static __attribute__((noinline)) void exe_read(const char *where, bool nonblocking)
{
        char buf[4];
        int fd = pipe_with_data(nonblocking);
        errno = 0;
        long r = read(fd, buf, sizeof buf);
        show(where, r, errno);
}

/* a read of 0 bytes: it never takes the pipe's data */
static __attribute__((noinline)) long exe_read_quiet(int fd, char *buf)
{
        long r = read(fd, buf, 0);
        __asm__ volatile("" ::: "memory"); /* not a tail call */
        return r;
}

static __attribute__((noinline)) void child_read(void)
{
        char buf[4];
        int fd = pipe_with_data(true);
        errno = 0;
        long r = read(fd, buf, sizeof buf);
        show("child", r, errno);
}

static void lib_read(const char *where, long (*fn)(int, char *, size_t))
{
        char buf[4];
        int fd = pipe_with_data(true);
        errno = 0;
        long r = fn(fd, buf, sizeof buf);
        show(where, r, errno);
}

/* dlopen by path, or by bare name (found through the executable's
 * RUNPATH), from the executable or from libsiteprobe.so */
static int dl_reads(const char *name, int times, bool from_lib)
{
        void *h = from_lib ? siteprobe_lib_dlopen(name) : dlopen(name, RTLD_NOW);
        if (!h) {
                fprintf(stderr, "siteprobe: %s\n", dlerror());
                return 3;
        }
        long (*fn)(int, char *, size_t) =
            (long (*)(int, char *, size_t))dlsym(h, "siteprobe_lib_read");
        for (int i = 0; i < times; i++)
                lib_read("dl", fn);
        dlclose(h);
        return 0;
}

/* churn: another thread loads and unloads libsitedl.so while this one
 * reads from the executable and from libsiteprobe.so: every lookup must
 * see one of the two tables a refresh switches between, never a mix. */
static atomic_bool churning = true;
static atomic_long loads;

static void *churn_loader(void *arg)
{
        const char *path = arg;
        while (atomic_load(&churning)) {
                void *h = dlopen(path, RTLD_NOW);
                atomic_fetch_add(&loads, 1);
                if (!h || dlclose(h) != 0) {
                        fprintf(stderr, "siteprobe: churn: %s\n", dlerror());
                        exit(3);
                }
        }
        return NULL;
}

static int churn(const char *path, int times)
{
        pthread_t t;
        long failed[2] = {0, 0};
        char buf[4];
        int fd = pipe_with_data(true);

        pthread_create(&t, NULL, churn_loader, (void *)path);
        for (int i = 0; i < times; i++) {
                failed[0] += exe_read_quiet(fd, buf) < 0;
                failed[1] += siteprobe_lib_read(fd, buf, 0) < 0;
        }
        atomic_store(&churning, false);
        pthread_join(t, NULL);
        printf("churn_exe_failed %ld\nchurn_lib_failed %ld\nchurn_loads %ld\n", failed[0],
               failed[1], atomic_load(&loads));
        return 0;
}

/* siteprobe MODE [TIMES]
 *   all       TIMES reads each from the executable, libsiteprobe.so,
 *             libsitedl.so (dlopen'ed by path), then a forked child's
 *   dlbare    TIMES reads from libsitedl.so dlopen'ed by its bare name
 *   dllib     the same, dlopen'ed by libsiteprobe.so (no RUNPATH)
 *   churn     TIMES reads each from the executable and libsiteprobe.so
 *             while a thread dlopens and dlcloses libsitedl.so
 *   blocking  TIMES reads from the executable on a blocking pipe */
int main(int argc, char **argv)
{
        const char *mode = argc > 1 ? argv[1] : "all";
        int times = argc > 2 ? atoi(argv[2]) : 1;
        char path[4096];

        if (strcmp(mode, "dlbare") == 0 || strcmp(mode, "dllib") == 0)
                return dl_reads("libsitedl.so", times, strcmp(mode, "dllib") == 0);
        snprintf(path, sizeof path, "%s/libsitedl.so", SITEPROBE_DIR);
        if (strcmp(mode, "churn") == 0)
                return churn(path, times);
        if (strcmp(mode, "blocking") == 0) {
                for (int i = 0; i < times; i++)
                        exe_read("blocking", false);
                return 0;
        }
        if (strcmp(mode, "all") != 0) {
                fprintf(stderr, "usage: siteprobe all|dlbare|dllib|churn|blocking [TIMES]\n");
                return 2;
        }
        for (int i = 0; i < times; i++) {
                exe_read("exe", true);
                lib_read("lib", siteprobe_lib_read);
        }
        if (dl_reads(path, times, false))
                return 3;
        pid_t pid = fork();
        if (pid == 0) {
                for (int i = 0; i < times; i++)
                        child_read();
                exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 3;
}
#endif
