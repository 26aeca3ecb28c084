/* report.c - log lines and the JSON report (see report.h). */
#include "report.h"

#include "boot.h"
#include "counter.h"
#include "fdstate.h"
#include "fmt.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOG_NONE (-1)

int wb_log_fd = LOG_NONE;          /* report.h */
static char log_path[PATH_MAX];    /* absolute, with %p unexpanded; "" for stderr */
static char report_path[PATH_MAX]; /* absolute, with %p unexpanded; "" for none */
static bool reporting WB_BOOT;     /* report_path is set (read without touching its page) */
uint64_t wb_spin_limit = 1000;     /* report.h */
/* the counts (calls, spin, the rules') are in the status, wb_status */
_Atomic bool wb_spin_warned; /* report.h */
static _Atomic bool report_done;
static pid_t owner WB_BOOT; /* the process these counters belong to */

/* path with %p replaced by the pid */
static void expand_path(const char *pattern, char *out, size_t size)
{
        struct fmt pid = {.fd = -1};
        fmt_u64(&pid, (uint64_t)getpid());
        config_expand_pid(pattern, pid.buf, pid.len, out, size);
}

static int open_log(void)
{
        char path[PATH_MAX];

        if (!log_path[0])
                return 2;
        expand_path(log_path, path, sizeof path);
        return wb_sys_open_append(path);
}

/* The counts go to R.status from now on (R: the report path of this pid);
 * fresh: a private mapping instead (a forked child sharing its parent's R). */
static void open_status(bool fresh)
{
        char path[PATH_MAX + sizeof WB_STATUS_SUFFIX];
        struct fmt e = {.fd = 2};

        expand_path(report_path, path, PATH_MAX);
        strcat(path, WB_STATUS_SUFFIX);
        if (status_open(fresh ? NULL : path) == 0)
                return;
        /* the counts stay in memory: the report at exit still has them */
        fmt_str(&e, "wouldblock: cannot keep counts in ");
        fmt_str(&e, fresh ? "memory" : path);
        fmt_str(&e, ": ");
        fmt_str(&e, strerror(errno));
        fmt_str(&e, "\n");
        fmt_flush(&e);
}

int report_init(const struct wb_settings *s, struct wb_diag *d)
{
        wb_spin_limit = s->spin_limit;
        const char *program = program_invocation_name ? program_invocation_name : "";

        fmt_copy(wb_status->program, sizeof wb_status->program, program, strlen(program));
        report_set_scenarios(s->scenarios ? s->scenarios : "");
        if (s->report) {
                owner = getpid(); /* only the report needs it */
                if (config_absolute_path(s->report, report_path, sizeof report_path, d,
                                         "WOULDBLOCK_REPORT"))
                        return -1;
                reporting = true;
                status_keep_rules(true);
                open_status(false);
        }
        if (!s->log)
                return 0;
        if (strcmp(s->log, "stderr") != 0 &&
            config_absolute_path(s->log, log_path, sizeof log_path, d, "WOULDBLOCK_LOG"))
                return -1;
        wb_log_fd = open_log();
        if (wb_log_fd < 0) {
                snprintf(d->msg, sizeof d->msg, "WOULDBLOCK_LOG:1: cannot open %s: %s", s->log,
                         strerror(errno));
                return -1;
        }
        return 0;
}

void report_set_scenarios(const char *list)
{
        fmt_copy(wb_status->scenarios, sizeof wb_status->scenarios, list, strlen(list));
}

void report_restart(void)
{
        if (reporting)
                open_status(!strstr(report_path, "%p"));
        for (int c = 0; c < WB_CALL_COUNT; c++) {
                WB_STATUS_ZERO(wb_status, calls_seen[c]);
                WB_STATUS_ZERO(wb_status, calls_injected[c]);
        }
        WB_STATUS_ZERO(wb_status, spin);
        atomic_store(&wb_spin_warned, false);
        atomic_store(&report_done, false);
        owner = getpid();
        fd_state_reset_spin();
        if (wb_log_fd >= 0 && log_path[0] && strstr(log_path, "%p")) {
                real_close(wb_log_fd);
                wb_log_fd = open_log();
        }
}

void report_seen_slow(enum wb_call call)
{
        int saved = errno; /* a shard's first pick may touch it */

        /* keeps the thread's row for the next count (status_own_shard) */
        WB_STATUS_BUMP(counter_shard(), calls_seen[call]);
        errno = saved;
}

uint64_t report_injected(int call)
{
        uint64_t sum = 0;
        for (int c = 0; c < WB_CALL_COUNT; c++)
                if (call < 0 || call == c)
                        sum += WB_STATUS_SUM(wb_status, calls_injected[c]);
        return sum;
}

static void log_prefix(struct fmt *f)
{
        fmt_str(f, "wouldblock[");
        fmt_u64(f, (uint64_t)getpid());
        fmt_str(f, "]: ");
}

static void log_line(struct fmt *f)
{
        int saved = errno;
        fmt_str(f, "\n");
        f->fd = wb_log_fd;
        fmt_flush(f);
        errno = saved;
}

void report_injection(const struct wb_callinfo *c, const struct wb_decision *d, long ret)
{
        if (wb_log_fd < 0)
                return; /* before the 1 KiB buffer is zeroed for nothing */
        struct fmt f = {.fd = -1};
        log_prefix(&f);
        fmt_str(&f, rule_call_name(c->call));
        fmt_str(&f, "(fd=");
        fmt_i64(&f, c->fd);
        if (c->call != WB_CONNECT && c->call != WB_ACCEPT && c->call != WB_ACCEPT4) {
                fmt_str(&f, ", ");
                fmt_u64(&f, c->len);
        }
        fmt_str(&f, ") = ");
        fmt_i64(&f, ret);
        if (ret < 0) {
                fmt_str(&f, " ");
                fmt_errno(&f, d->err);
        } else if (d->verdict == WB_SHORT) {
                fmt_str(&f, " short");
        }
        fmt_str(&f, " [");
        fmt_str(&f, d->scenario);
        fmt_str(&f, ":");
        fmt_u64(&f, d->line);
        fmt_str(&f, " call ");
        fmt_u64(&f, d->callno);
        if (d->per_process) {
                fmt_str(&f, " in process]");
        } else {
                fmt_str(&f, " on fd ");
                fmt_i64(&f, c->fd);
                fmt_str(&f, "]");
        }
        log_line(&f);
}

void report_spin_warning(int fd, enum wb_call call, uint32_t run)
{
        if (atomic_exchange(&wb_spin_warned, true))
                return;
        struct fmt f = {.fd = -1};
        if (wb_log_fd < 0)
                return;
        log_prefix(&f);
        fmt_str(&f, "warning: ");
        fmt_u64(&f, run);
        fmt_str(&f, " would-block results from ");
        fmt_str(&f, rule_call_name(call));
        fmt_str(&f, " on fd ");
        fmt_i64(&f, fd);
        fmt_str(&f, " with no wait for it in between: a busy loop? (WOULDBLOCK_SPIN_LIMIT=");
        fmt_u64(&f, wb_spin_limit);
        fmt_str(&f, ")");
        log_line(&f);
}

/* ---- the JSON report ---- */

void report_write(void)
{
        char path[PATH_MAX];
        int fd, saved = errno;

        /* a vfork child runs in our memory: it must leave our report alone */
        if (!reporting || getpid() != owner || atomic_exchange(&report_done, true))
                return;
        expand_path(report_path, path, sizeof path);
        fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                          0644);
        if (fd < 0) {
                struct fmt e = {.fd = 2};
                fmt_str(&e, "wouldblock: cannot write report ");
                fmt_str(&e, path);
                fmt_str(&e, ": ");
                fmt_str(&e, strerror(errno));
                fmt_str(&e, "\n");
                fmt_flush(&e);
                errno = saved;
                return; /* the status file stays: the runner can still convert it */
        }
        status_write_report(wb_status, fd, true);
        real_close(fd);
        status_remove();
        errno = saved;
}
