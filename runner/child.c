/* child.c - see child.h. */
#include "child.h"

#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int exec_failure(const char *command, int err)
{
        if (err == ENOENT && !strchr(command, '/'))
                fprintf(stderr, "wouldblock: %s: command not found\n", command);
        else
                fprintf(stderr, "wouldblock: %s: %s\n", command, strerror(err));
        return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}

static volatile sig_atomic_t child_pid;

static void forward_signal(int sig)
{
        if (child_pid > 0)
                kill(child_pid, sig);
}

int run_foreground(char **command, pid_t *pid, int *status)
{
        struct sigaction ignore = {.sa_handler = SIG_IGN}, forward = {.sa_handler = forward_signal};
        int tell[2], err = 0;

        if (pipe2(tell, O_CLOEXEC))
                fatal("cannot make a pipe: %s", strerror(errno));
        fflush(NULL);
        *pid = fork();
        if (*pid < 0)
                fatal("cannot fork: %s", strerror(errno));
        if (*pid == 0) {
                execvp(command[0], command);
                err = errno;
                ssize_t n = write(tell[1], &err, sizeof err);
                (void)n;
                _exit(EXIT_NOT_FOUND);
        }
        close(tell[1]);
        child_pid = *pid;
        /* a ^C at the terminal reaches COMMAND too: we stay to tell its status;
         * a kill meant for us is passed on */
        sigaction(SIGINT, &ignore, NULL);
        sigaction(SIGQUIT, &ignore, NULL);
        sigaction(SIGTERM, &forward, NULL);
        sigaction(SIGHUP, &forward, NULL);
        while (read(tell[0], &err, sizeof err) < 0 && errno == EINTR)
                ;
        close(tell[0]);
        while (waitpid(*pid, status, 0) < 0)
                if (errno != EINTR)
                        fatal("cannot wait for %s: %s", command[0], strerror(errno));
        return err;
}

pid_t spawn_experiment(char **command, const char *const *env, const char *out_path,
                       const char *err_path)
{
        pid_t pid;

        fflush(NULL);
        pid = fork();
        if (pid < 0)
                fatal("cannot fork: %s", strerror(errno));
        if (pid > 0) {
                setpgid(pid, pid); /* both sides: no race with a kill */
                return pid;
        }
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
                _exit(EXIT_CANNOT_EXEC);
        for (; env[0]; env += 2)
                if (env[1] ? setenv(env[0], env[1], 1) : unsetenv(env[0]))
                        _exit(EXIT_CANNOT_EXEC);
        execvp(command[0], command);
        _exit(exec_failure(command[0], errno));
}

void kill_group(pid_t pgid)
{
        if (pgid > 0)
                kill(-pgid, SIGKILL);
}

/* Table of the syscalls a hung program is likely to sit in, by the
 * numbers of the machine we are built for. */
const char *syscall_name(long nr)
{
        static const struct {
                long nr;
                const char *name;
        } table[] = {
#define SC(name) {SYS_##name, #name}
            SC(read),          SC(write),           SC(readv),   SC(writev),    SC(recvfrom),
            SC(sendto),        SC(recvmsg),         SC(sendmsg), SC(recvmmsg),  SC(sendmmsg),
            SC(accept4),       SC(connect),         SC(ppoll),   SC(pselect6),  SC(epoll_pwait),
            SC(wait4),         SC(waitid),          SC(futex),   SC(nanosleep), SC(clock_nanosleep),
            SC(rt_sigsuspend), SC(rt_sigtimedwait), SC(openat),  SC(flock),
#ifdef SYS_poll
            SC(poll),
#endif
#ifdef SYS_select
            SC(select),
#endif
#ifdef SYS_epoll_wait
            SC(epoll_wait),
#endif
#ifdef SYS_epoll_pwait2
            SC(epoll_pwait2),
#endif
#ifdef SYS_accept
            SC(accept),
#endif
#ifdef SYS_pause
            SC(pause),
#endif
#undef SC
        };
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
                if (table[i].nr == nr)
                        return table[i].name;
        return NULL;
}

struct member {
        pid_t pid;
        char name[64];
        unsigned long long cpu; /* utime + stime, ticks */
        char state;
};

/* The processes of group pgid (at most max), from /proc. */
static size_t group_members(pid_t pgid, struct member *m, size_t max)
{
        DIR *d = opendir("/proc");
        struct dirent *e;
        size_t n = 0;

        if (!d)
                return 0;
        while (n < max && (e = readdir(d))) {
                if (!isdigit((unsigned char)e->d_name[0]))
                        continue;
                char path[64], buf[1024];
                snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
                FILE *f = fopen(path, "re");
                if (!f)
                        continue;
                size_t len = fread(buf, 1, sizeof buf - 1, f);
                fclose(f);
                buf[len] = '\0';
                char *open = strchr(buf, '('), *close = strrchr(buf, ')');
                if (!open || !close)
                        continue;
                char state;
                int ppid, pgrp;
                unsigned long long utime, stime;
                if (sscanf(close + 2, "%c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &state,
                           &ppid, &pgrp, &utime, &stime) != 5 ||
                    pgrp != pgid)
                        continue;
                m[n].pid = (pid_t)atoi(e->d_name);
                snprintf(m[n].name, sizeof m[n].name, "%.*s", (int)(close - open - 1), open + 1);
                m[n].cpu = utime + stime;
                m[n].state = state;
                n++;
        }
        closedir(d);
        return n;
}

/* The syscall a stopped process sits in, "" when it is running. */
static void current_syscall(pid_t pid, char *out, size_t size)
{
        char path[64], buf[256] = "";
        long nr;

        snprintf(path, sizeof path, "/proc/%d/syscall", (int)pid);
        FILE *f = fopen(path, "re");
        out[0] = '\0';
        if (!f)
                return;
        if (fgets(buf, sizeof buf, f) && sscanf(buf, "%ld", &nr) == 1) {
                const char *name = syscall_name(nr);
                if (name)
                        snprintf(out, size, "%s", name);
                else
                        snprintf(out, size, "syscall %ld", nr);
        }
        fclose(f);
}

void describe_hang(pid_t pgid, char *out, size_t size)
{
        enum { MAX = 64 };
        struct member before[MAX], after[MAX];
        size_t nb = group_members(pgid, before, MAX), na;
        struct timespec pause = {0, 200 * 1000 * 1000};
        char blocked[64] = "", waiting_name[64] = "", call[64];

        nanosleep(&pause, NULL);
        na = group_members(pgid, after, MAX);
        /* spinning: runnable now, or it used CPU time meanwhile (a loaded
         * machine gives a spinner only a share of a CPU, a blocked process
         * next to none) */
        for (size_t i = 0; i < na; i++) {
                bool used = false;
                for (size_t j = 0; j < nb; j++)
                        if (after[i].pid == before[j].pid && after[i].cpu >= before[j].cpu + 2)
                                used = true;
                current_syscall(after[i].pid, call, sizeof call);
                if (used || after[i].state == 'R' || !call[0]) {
                        snprintf(out, size, "spinning on the CPU (%s)", after[i].name);
                        return;
                }
        }
        /* else the first that waits for something other than its children */
        for (size_t i = 0; i < na; i++) {
                current_syscall(after[i].pid, call, sizeof call);
                if (strcmp(call, "wait4") && strcmp(call, "waitid")) {
                        snprintf(out, size, "blocked in %s (%s)", call, after[i].name);
                        return;
                }
                if (!blocked[0]) {
                        snprintf(blocked, sizeof blocked, "%s", call);
                        snprintf(waiting_name, sizeof waiting_name, "%s", after[i].name);
                }
        }
        if (blocked[0])
                snprintf(out, size, "blocked in %s (%s)", blocked, waiting_name);
        else
                snprintf(out, size, "no process left to look at");
}
