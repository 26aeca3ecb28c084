/* trial.c - see trial.h. */
#include "trial.h"

#include "child.h"
#include "reports.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct slot {
        struct trial *t;
        pid_t pid;
        double started;
        char *dir;
};

static double now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void start(struct trial_pool *pool, struct slot *s, struct trial *t, unsigned number)
{
        s->t = t;
        s->dir = format("%s/t%u", pool->dir, number);
        if (mkdir(s->dir, 0700))
                fatal("cannot make %s: %s", s->dir, strerror(errno));
        char *record = format("%s/rec.%%p", s->dir), *report = format("%s/%%p.json", s->dir);
        char *out = format("%s/stdout", s->dir), *err = format("%s/stderr", s->dir);
        const char *env[] = {"WOULDBLOCK_RULES",
                             t->rules,
                             "WOULDBLOCK_SCENARIO",
                             t->scenarios,
                             "WOULDBLOCK_SEED",
                             t->seed,
                             "WOULDBLOCK_RECORD",
                             record,
                             "WOULDBLOCK_REPORT",
                             report,
                             "WOULDBLOCK_LOG",
                             NULL,
                             "WOULDBLOCK_DISABLE",
                             NULL,
                             NULL};
        s->started = now();
        s->pid = spawn_experiment(pool->command, env, out, err);
        free(record);
        free(report);
        free(out);
        free(err);
}

static void last_line(const char *path, char *out, size_t size)
{
        size_t len;
        char *text = read_whole_file(path, &len);

        out[0] = '\0';
        if (!text)
                return;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
                len--;
        size_t start = len;
        while (start > 0 && text[start - 1] != '\n')
                start--;
        snprintf(out, size, "%.*s", (int)(len - start), text + start);
        free(text);
}

static void finish(struct trial_pool *pool, struct slot *s, int status)
{
        struct trial *t = s->t;
        struct totals totals = {0};

        kill_group(s->pid); /* whatever it left running */
        t->wait_status = status;
        t->seconds = now() - s->started;
        char *err = format("%s/stderr", s->dir);
        last_line(err, t->last_err, sizeof t->last_err);
        free(err);
        recording_read_dir(&t->rec, s->dir, "rec.");
        collect_reports(s->dir, NULL, s->pid, &totals);
        t->spin = totals.spin_length;
        free_totals(&totals);
        remove_dir(s->dir);
        free(s->dir);
        s->t = NULL;
        if (pool->done)
                pool->done(t, pool->arg);
}

void run_trials(struct trial_pool *pool, struct trial **trials, unsigned n)
{
        struct slot *slots = xcalloc(pool->jobs, sizeof *slots);
        unsigned next = 0, running = 0;
        static unsigned serial;
        sigset_t chld, old;

        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, &old);
        while (next < n || running) {
                for (unsigned i = 0; i < pool->jobs && next < n; i++)
                        if (!slots[i].t) {
                                start(pool, &slots[i], trials[next++], serial++);
                                running++;
                        }
                /* reap, and kill what passed its deadline */
                double soonest = 1e300;
                for (unsigned i = 0; i < pool->jobs; i++) {
                        struct slot *s = &slots[i];
                        int status;
                        if (!s->t)
                                continue;
                        pid_t r = waitpid(s->pid, &status, WNOHANG);
                        if (r == s->pid) {
                                finish(pool, s, status);
                                running--;
                                continue;
                        }
                        double deadline = s->started + pool->timeout;
                        if (now() >= deadline) {
                                s->t->hung = true;
                                describe_hang(s->pid, s->t->hang, sizeof s->t->hang);
                                kill_group(s->pid);
                                while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
                                        ;
                                finish(pool, s, status);
                                running--;
                                continue;
                        }
                        if (deadline < soonest)
                                soonest = deadline;
                }
                if (running && (next >= n || running == pool->jobs)) {
                        double wait = soonest - now();
                        if (wait < 0.001)
                                wait = 0.001;
                        if (wait > 1)
                                wait = 1;
                        struct timespec ts = {(time_t)wait,
                                              (long)((wait - (double)(time_t)wait) * 1e9)};
                        sigtimedwait(&chld, NULL, &ts);
                }
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        free(slots);
}

bool trial_passed(const struct trial *t)
{
        return !t->hung && WIFEXITED(t->wait_status) && WEXITSTATUS(t->wait_status) == 0;
}

void trial_failure(const struct trial *t, char *out, size_t size)
{
        char how[64];

        if (t->hung)
                snprintf(out, size, "hang: %s", t->hang);
        else if (WIFSIGNALED(t->wait_status))
                snprintf(out, size, "%s",
                         describe_signal(WTERMSIG(t->wait_status), how, sizeof how));
        else if (WEXITSTATUS(t->wait_status))
                snprintf(out, size, "exit status %d", WEXITSTATUS(t->wait_status));
        else
                out[0] = '\0';
}

bool same_failure(const struct trial *a, const struct trial *b)
{
        if (a->hung || b->hung)
                return a->hung && b->hung;
        return a->wait_status == b->wait_status && !trial_passed(a);
}

void trial_free(struct trial *t)
{
        free(t->rules);
        t->rules = NULL;
        recording_free(&t->rec);
}
