/* report.c - log lines and the JSON report (see report.h). */
#include "report.h"

#include "counter.h"
#include "fdstate.h"
#include "real.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOG_NONE (-1)

static int log_fd = LOG_NONE;
static char log_path[PATH_MAX];    /* absolute, with %p unexpanded; "" for stderr */
static char report_path[PATH_MAX]; /* absolute, with %p unexpanded; "" for none */
static char scenario_list[1024];
static uint64_t spin_limit = 1000;

struct wb_counter wb_calls_seen[WB_CALL_COUNT];
#define calls_seen wb_calls_seen
static struct wb_counter calls_injected[WB_CALL_COUNT];
/* the longest spin: length << 32 | fd << 8 | call */
static _Atomic uint64_t spin_max;
static _Atomic bool spin_warned, report_done;
static pid_t owner; /* the process these counters belong to */

/* ---- a formatter that is safe in signal handlers ---- */

struct fmt {
        int fd; /* flushed there when full (-1: never flushed, truncated) */
        size_t len;
        char buf[1024];
};

static void fmt_flush(struct fmt *f)
{
        size_t off = 0;
        while (off < f->len && f->fd >= 0) {
                ssize_t n = real_write(f->fd, f->buf + off, f->len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                off += (size_t)n;
        }
        f->len = 0;
}

static void fmt_mem(struct fmt *f, const char *s, size_t n)
{
        while (n) {
                size_t room = sizeof f->buf - f->len, k = n < room ? n : room;
                memcpy(f->buf + f->len, s, k);
                f->len += k;
                s += k;
                n -= k;
                if (f->len == sizeof f->buf) {
                        if (f->fd < 0)
                                return;
                        fmt_flush(f);
                }
        }
}

static void fmt_str(struct fmt *f, const char *s)
{
        fmt_mem(f, s, strlen(s));
}

static void fmt_u64(struct fmt *f, uint64_t v)
{
        char d[24];
        int i = sizeof d;
        do
                d[--i] = (char)('0' + v % 10);
        while (v /= 10);
        fmt_mem(f, d + i, sizeof d - (size_t)i);
}

static void fmt_i64(struct fmt *f, int64_t v)
{
        if (v < 0) {
                fmt_str(f, "-");
                fmt_u64(f, (uint64_t)0 - (uint64_t)v);
        } else {
                fmt_u64(f, (uint64_t)v);
        }
}

static void fmt_errno(struct fmt *f, int err)
{
        const char *name = rule_errno_name(err);
        if (name)
                fmt_str(f, name);
        else
                fmt_i64(f, err);
}

/* Length of the valid UTF-8 sequence at s (0 if invalid). */
static size_t utf8_len(const unsigned char *s, size_t left)
{
        size_t n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
        if (s[0] >= 0xf8 || n > left)
                return 0;
        for (size_t i = 1; i < n; i++)
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        return n;
}

/* A JSON string: escapes quotes, backslashes, controls and bytes that are not
 * UTF-8 (as \u00XX), so any program name gives valid JSON. */
static void fmt_json(struct fmt *f, const char *str)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *s = (const unsigned char *)str;
        size_t left = strlen(str);

        fmt_str(f, "\"");
        while (left) {
                size_t n = 1;
                if (*s == '"' || *s == '\\') {
                        char e[2] = {'\\', (char)*s};
                        fmt_mem(f, e, 2);
                } else if (*s >= 0x20 && *s < 0x7f) {
                        fmt_mem(f, (const char *)s, 1);
                } else if (*s >= 0x80 && (n = utf8_len(s, left)) > 0) {
                        fmt_mem(f, (const char *)s, n);
                } else {
                        char e[6] = {'\\', 'u', '0', '0', hex[*s >> 4], hex[*s & 15]};
                        fmt_mem(f, e, 6);
                        n = 1;
                }
                s += n;
                left -= n;
        }
        fmt_str(f, "\"");
}

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
        int fd;

        if (!log_path[0])
                return 2;
        expand_path(log_path, path, sizeof path);
        fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                          0644);
        if (fd < 0)
                return -1;
        /* Out of the way of programs that assume the low numbers are theirs. */
        int high = (int)wb_sys_fcntl(fd, F_DUPFD_CLOEXEC, 512);
        if (high >= 0) {
                real_close(fd);
                fd = high;
        }
        return fd;
}

int report_init(const struct wb_settings *s, struct wb_diag *d)
{
        owner = getpid();
        spin_limit = s->spin_limit;
        report_set_scenarios(s->scenarios ? s->scenarios : "");
        if (s->report && config_absolute_path(s->report, report_path, sizeof report_path, d,
                                              "WOULDBLOCK_REPORT"))
                return -1;
        if (!s->log)
                return 0;
        if (strcmp(s->log, "stderr") != 0 &&
            config_absolute_path(s->log, log_path, sizeof log_path, d, "WOULDBLOCK_LOG"))
                return -1;
        log_fd = open_log();
        if (log_fd < 0) {
                snprintf(d->msg, sizeof d->msg, "WOULDBLOCK_LOG:1: cannot open %s: %s", s->log,
                         strerror(errno));
                return -1;
        }
        return 0;
}

void report_set_scenarios(const char *list)
{
        snprintf(scenario_list, sizeof scenario_list, "%s", list);
}

void report_restart(void)
{
        for (int c = 0; c < WB_CALL_COUNT; c++) {
                counter_reset(&calls_seen[c]);
                counter_reset(&calls_injected[c]);
        }
        atomic_store(&spin_max, 0);
        atomic_store(&spin_warned, false);
        atomic_store(&report_done, false);
        owner = getpid();
        fd_state_reset_spin();
        if (log_fd >= 0 && log_path[0] && strstr(log_path, "%p")) {
                real_close(log_fd);
                log_fd = open_log();
        }
}

void report_call_injected(enum wb_call call)
{
        counter_add(&calls_seen[call], 1);
        counter_add(&calls_injected[call], 1);
}

uint64_t report_injected(int call)
{
        uint64_t sum = 0;
        for (int c = 0; c < WB_CALL_COUNT; c++)
                if (call < 0 || call == c)
                        sum += counter_sum(&calls_injected[c]);
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
        f->fd = log_fd;
        fmt_flush(f);
        errno = saved;
}

void report_injection(const struct wb_callinfo *c, const struct wb_decision *d, long ret)
{
        if (log_fd < 0)
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

void report_would_block(int fd, enum wb_call call)
{
        uint32_t run = fd_state_spin_bump(fd);
        uint64_t cur = atomic_load_explicit(&spin_max, memory_order_relaxed);
        uint64_t mine = (uint64_t)run << 32 | (uint64_t)(fd & 0xffffff) << 8 | (unsigned)call;

        while ((cur >> 32) < run &&
               !atomic_compare_exchange_weak_explicit(&spin_max, &cur, mine, memory_order_relaxed,
                                                      memory_order_relaxed))
                ;
        if (run > spin_limit && spin_limit && !atomic_exchange(&spin_warned, true)) {
                struct fmt f = {.fd = -1};
                if (log_fd < 0)
                        return;
                log_prefix(&f);
                fmt_str(&f, "warning: ");
                fmt_u64(&f, run);
                fmt_str(&f, " would-block results from ");
                fmt_str(&f, rule_call_name(call));
                fmt_str(&f, " on fd ");
                fmt_i64(&f, fd);
                fmt_str(&f,
                        " with no wait for it in between: a busy loop? (WOULDBLOCK_SPIN_LIMIT=");
                fmt_u64(&f, spin_limit);
                fmt_str(&f, ")");
                log_line(&f);
        }
}

/* ---- the JSON report ---- */

static void json_scenarios(struct fmt *f)
{
        const char *p = scenario_list;
        bool first = true;

        fmt_str(f, "[");
        while (*p) {
                const char *comma = strchr(p, ',');
                size_t n = comma ? (size_t)(comma - p) : strlen(p);
                char name[WB_NAME_MAX];
                while (n && (*p == ' ' || *p == '\t'))
                        p++, n--;
                while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                        n--;
                if (n && n < sizeof name) {
                        memcpy(name, p, n);
                        name[n] = '\0';
                        fmt_str(f, first ? "" : ", ");
                        fmt_json(f, name);
                        first = false;
                }
                if (!comma)
                        break;
                p = comma + 1;
        }
        fmt_str(f, "]");
}

void report_write(void)
{
        char path[PATH_MAX];
        struct fmt f;
        int fd, saved = errno;
        uint64_t spin;

        /* a vfork child runs in our memory: it must leave our report alone */
        if (!report_path[0] || getpid() != owner || atomic_exchange(&report_done, true))
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
                return;
        }
        f.fd = fd;
        f.len = 0;
        fmt_str(&f, "{\"pid\": ");
        fmt_u64(&f, (uint64_t)getpid());
        fmt_str(&f, ", \"program\": ");
        fmt_json(&f, program_invocation_name ? program_invocation_name : "");
        fmt_str(&f, ", \"scenarios\": ");
        json_scenarios(&f);
        fmt_str(&f, ", \"seed\": ");
        fmt_u64(&f, engine_seed());
        fmt_str(&f, ",\n \"rules\": [");
        engine_hold(); /* another thread may swap the rules meanwhile */
        for (unsigned i = 0; i < engine_rule_count(); i++) {
                uint64_t counted, injected;
                const struct wb_rule *r = engine_rule(i, &counted, &injected);
                if (!r)
                        break;
                fmt_str(&f, i ? ",\n   " : "\n   ");
                fmt_str(&f, "{\"text\": ");
                fmt_json(&f, r->text);
                fmt_str(&f, ", \"scenario\": ");
                fmt_json(&f, r->scenario);
                fmt_str(&f, ", \"line\": ");
                fmt_u64(&f, r->line);
                fmt_str(&f, ", \"counted\": ");
                fmt_u64(&f, counted);
                fmt_str(&f, ", \"injected\": ");
                fmt_u64(&f, injected);
                fmt_str(&f, "}");
        }
        engine_release();
        fmt_str(&f, "],\n \"calls\": {");
        for (int c = 0; c < WB_CALL_COUNT; c++) {
                fmt_str(&f, c ? ",\n   " : "\n   ");
                fmt_json(&f, rule_call_name((enum wb_call)c));
                fmt_str(&f, ": {\"seen\": ");
                fmt_u64(&f, counter_sum(&calls_seen[c]));
                fmt_str(&f, ", \"injected\": ");
                fmt_u64(&f, counter_sum(&calls_injected[c]));
                fmt_str(&f, "}");
        }
        spin = atomic_load(&spin_max);
        fmt_str(&f, "},\n \"spin\": {\"length\": ");
        fmt_u64(&f, spin >> 32);
        fmt_str(&f, ", \"fd\": ");
        if (spin >> 32)
                fmt_u64(&f, (spin >> 8) & 0xffffff);
        else
                fmt_str(&f, "null");
        fmt_str(&f, ", \"call\": ");
        if (spin >> 32)
                fmt_json(&f, rule_call_name((enum wb_call)(spin & 0xff)));
        else
                fmt_str(&f, "null");
        fmt_str(&f, "}}\n");
        fmt_flush(&f);
        real_close(fd);
        errno = saved;
}
