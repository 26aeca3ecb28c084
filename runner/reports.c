/* reports.c - see reports.h. */
#include "reports.h"

#include "config.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include("status.h")
#include "status.h"
int convert_status(const char *status_path, const char *report_path)
{
        return status_to_report(status_path, report_path);
}
#else
int convert_status(const char *status_path, const char *report_path)
{
        (void)status_path;
        (void)report_path;
        errno = ENOSYS;
        return -1;
}
#endif

/* Integers arrive as doubles (JSON_DECODE_INT_AS_REAL: a u64 seed beyond
 * jansson's long long still parses); a count is exact below 2^53. */
#define EXACT_LIMIT 9007199254740992.0

static bool get_u64(json_t *v, uint64_t *out)
{
        double d;

        if (!json_is_number(v))
                return false;
        d = json_number_value(v);
        if (d < 0 || d >= EXACT_LIMIT || d != (double)(uint64_t)d)
                return false;
        *out = (uint64_t)d;
        return true;
}

/* A UTF-8 string into out, cut between characters to fit. */
static bool get_string(json_t *v, char *out, size_t size)
{
        const char *s;
        size_t len;

        if (!json_is_string(v))
                return false;
        s = json_string_value(v);
        len = json_string_length(v);
        if (len >= size) {
                len = size - 1;
                while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
                        len--; /* s[len] starts the character that does not fit */
        }
        memcpy(out, s, len);
        out[len] = '\0';
        return !memchr(s, '\0', json_string_length(v));
}

static const char *read_rules(json_t *rules, struct report *r)
{
        size_t i;
        json_t *rule;

        if (!json_is_array(rules))
                return "rules is not a list";
        if (json_array_size(rules) > WB_MAX_RULES)
                return "too many rules";
        json_array_foreach(rules, i, rule)
        {
                struct report_rule *rr = &r->rules[r->n_rules++];
                json_t *v;
                if (!json_is_object(rule))
                        return "a rule is not an object";
                if (((v = json_object_get(rule, "text")) &&
                     !get_string(v, rr->text, sizeof rr->text)) ||
                    ((v = json_object_get(rule, "scenario")) &&
                     !get_string(v, rr->scenario, sizeof rr->scenario)) ||
                    ((v = json_object_get(rule, "line")) && !get_u64(v, &rr->line)) ||
                    ((v = json_object_get(rule, "counted")) && !get_u64(v, &rr->counted)) ||
                    ((v = json_object_get(rule, "injected")) && !get_u64(v, &rr->injected)))
                        return "a rule has a bad member";
        }
        return NULL;
}

static const char *read_calls(json_t *calls, struct report *r)
{
        const char *name;
        json_t *call;

        if (!json_is_object(calls))
                return "calls is not an object";
        json_object_foreach(calls, name, call)
        {
                int c = rule_call_by_name(name, strlen(name));
                json_t *v;
                if (c < 0)
                        continue; /* a call this runner does not know of */
                if (!json_is_object(call))
                        return "a call is not an object";
                if (((v = json_object_get(call, "seen")) && !get_u64(v, &r->seen[c])) ||
                    ((v = json_object_get(call, "injected")) && !get_u64(v, &r->injected[c])))
                        return "a call has a bad count";
        }
        return NULL;
}

static const char *read_spin(json_t *spin, struct report *r)
{
        json_t *v;

        if (!json_is_object(spin))
                return "spin is not an object";
        if (((v = json_object_get(spin, "length")) && !get_u64(v, &r->spin_length)) ||
            ((v = json_object_get(spin, "fd")) && !json_is_null(v) && !get_u64(v, &r->spin_fd)) ||
            ((v = json_object_get(spin, "call")) && !json_is_null(v) &&
             !get_string(v, r->spin_call, sizeof r->spin_call)))
                return "spin has a bad member";
        return NULL;
}

const char *read_report(const char *text, size_t len, struct report *r)
{
        static char message[JSON_ERROR_TEXT_LENGTH + 32];
        json_error_t e;
        json_t *root, *v;
        const char *error = NULL;

        memset(r, 0, sizeof *r);
        r->complete = true;
        root = json_loadb(text, len, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &e);
        if (!root) {
                snprintf(message, sizeof message, "%s (column %d)", e.text, e.column);
                return message;
        }
        if (!json_is_object(root))
                error = "not an object";
        else if (!json_object_get(root, "pid") || !json_object_get(root, "rules") ||
                 !json_object_get(root, "calls") || !json_object_get(root, "spin"))
                error = "pid, rules, calls or spin missing";
        else if (!get_u64(json_object_get(root, "pid"), &r->pid))
                error = "pid is not an unsigned integer";
        else if ((v = json_object_get(root, "program")) &&
                 !get_string(v, r->program, sizeof r->program))
                error = "program is not a string";
        else if ((v = json_object_get(root, "complete")) && !json_is_boolean(v))
                error = "complete is not true or false";
        else
                error = read_rules(json_object_get(root, "rules"), r);
        if (!error)
                error = read_calls(json_object_get(root, "calls"), r);
        if (!error)
                error = read_spin(json_object_get(root, "spin"), r);
        if (!error && (v = json_object_get(root, "complete")))
                r->complete = json_is_true(v);
        json_decref(root);
        return error;
}

void add_report(struct totals *t, const struct report *r)
{
        t->processes++;
        t->incomplete += !r->complete;
        for (int c = 0; c < WB_CALL_COUNT; c++) {
                t->seen[c] += r->seen[c];
                t->injected[c] += r->injected[c];
        }
        for (unsigned i = 0; i < r->n_rules; i++) {
                const struct report_rule *rr = &r->rules[i];
                unsigned k = 0;
                while (k < t->n_rules &&
                       (t->rules[k].line != rr->line || strcmp(t->rules[k].text, rr->text) ||
                        strcmp(t->rules[k].scenario, rr->scenario)))
                        k++;
                if (k == t->n_rules) {
                        t->rules = xrealloc(t->rules, k + 1, sizeof *t->rules);
                        t->rules[t->n_rules++] = *rr;
                } else {
                        t->rules[k].counted += rr->counted;
                        t->rules[k].injected += rr->injected;
                }
        }
        if (r->spin_length > t->spin_length) {
                t->spin_length = r->spin_length;
                t->spin_fd = r->spin_fd;
                t->spin_pid = r->pid;
                snprintf(t->spin_call, sizeof t->spin_call, "%s", r->spin_call);
                snprintf(t->spin_program, sizeof t->spin_program, "%s", r->program);
        }
}

uint64_t total_injected(const struct totals *t)
{
        uint64_t sum = 0;
        for (int c = 0; c < WB_CALL_COUNT; c++)
                sum += t->injected[c];
        return sum;
}

void free_totals(struct totals *t)
{
        free(t->rules);
        t->rules = NULL;
}

const char *describe_signal(int sig, char *buf, size_t size)
{
        /* the signals a program raises on itself when it goes wrong */
        static const int crashes[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP};
        const char *name = sigabbrev_np(sig);

        for (size_t i = 0; i < sizeof crashes / sizeof crashes[0]; i++)
                if (sig == crashes[i]) {
                        snprintf(buf, size, "crashed (signal %d, SIG%s)", sig, name ? name : "?");
                        return buf;
                }
        snprintf(buf, size, "killed by signal %d (SIG%s)", sig, name ? name : "?");
        return buf;
}

/* "was killed by ..." (a static buffer) */
static const char *format_was(const char *how)
{
        static char buf[80];
        snprintf(buf, sizeof buf, "was %s", how);
        return buf;
}

void print_summary(const struct totals *t, const char *command, int wait_status)
{
        char how[64];

        if (WIFSIGNALED(wait_status))
                fprintf(stderr, "wouldblock: %s %s%s\n", command,
                        strncmp(describe_signal(WTERMSIG(wait_status), how, sizeof how), "killed",
                                6) == 0
                            ? format_was(how)
                            : how,
                        t->processes ? ""
                                     : " before any process wrote a report: its counts are lost");
        else if (!t->processes)
                fprintf(stderr,
                        "wouldblock: no process of %s wrote a report: was "
                        "libwouldblock.so loaded? (see LIMITS in wouldblock(1))\n",
                        command);
        if (!t->processes)
                return;
        fprintf(stderr, "wouldblock: summary of %u process%s: %llu injected", t->processes,
                t->processes == 1 ? "" : "es", (unsigned long long)total_injected(t));
        if (t->incomplete)
                fprintf(stderr,
                        " (%u ended without writing its report: killed, crashed or exec'd; counts "
                        "up to then)",
                        t->incomplete);
        fputc('\n', stderr);
        fprintf(stderr, "  %9s %9s  %s\n", "seen", "injected", "call");
        for (int c = 0; c < WB_CALL_COUNT; c++)
                if (t->seen[c])
                        fprintf(stderr, "  %9llu %9llu  %s\n", (unsigned long long)t->seen[c],
                                (unsigned long long)t->injected[c],
                                rule_call_name((enum wb_call)c));
        fprintf(stderr, "  %9s %9s  %s\n", "counted", "injected", "rule");
        for (unsigned i = 0; i < t->n_rules; i++)
                fprintf(stderr, "  %9llu %9llu  %s:%llu: %s\n",
                        (unsigned long long)t->rules[i].counted,
                        (unsigned long long)t->rules[i].injected, t->rules[i].scenario,
                        (unsigned long long)t->rules[i].line, t->rules[i].text);
        if (t->spin_length)
                fprintf(stderr, "  longest spin: %llu (%s on fd %llu, pid %llu %s)\n",
                        (unsigned long long)t->spin_length, t->spin_call,
                        (unsigned long long)t->spin_fd, (unsigned long long)t->spin_pid,
                        t->spin_program);
        else
                fprintf(stderr, "  longest spin: 0\n");
}

char *expand_pid(const char *pattern, const char *pid, int pid_len)
{
        size_t len = config_expand_pid(pattern, pid, (size_t)pid_len, NULL, 0);
        char *out = xcalloc(len + 1, 1);

        config_expand_pid(pattern, pid, (size_t)pid_len, out, len + 1);
        return out;
}

/* A report where the user's --report (or WOULDBLOCK_REPORT) asked for it. */
static void copy_report(const char *pattern, const char *pid, int pid_len, const char *text,
                        size_t len)
{
        char *path = expand_pid(pattern, pid, pid_len);
        FILE *f = fopen(path, "we");

        if (!f || fwrite(text, 1, len, f) != len || fclose(f)) {
                fprintf(stderr, "wouldblock: cannot write report %s: %s\n", path, strerror(errno));
                if (f)
                        fclose(f);
        }
        free(path);
}

static bool ends_with(const char *s, const char *tail)
{
        size_t n = strlen(s), m = strlen(tail);
        return n >= m && strcmp(s + n - m, tail) == 0;
}

/* Each PID.json.status without its PID.json: the process was killed. */
static void convert_leftovers(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;

        if (!d)
                fatal("cannot read %s: %s", dir, strerror(errno));
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.' || !ends_with(e->d_name, ".json.status"))
                        continue;
                char *status = format("%s/%s", dir, e->d_name);
                char *report = format("%.*s", (int)(strlen(status) - strlen(".status")), status);
                if (access(report, F_OK) && convert_status(status, report) && errno != ENOSYS)
                        note("cannot turn %s into a report: %s", status, strerror(errno));
                free(status);
                free(report);
        }
        closedir(d);
}

void collect_reports(const char *dir, const char *user_pattern, pid_t command_pid, struct totals *t)
{
        static struct report report; /* large, and one at a time */
        DIR *d;
        struct dirent *e;

        convert_leftovers(dir);
        if (!(d = opendir(dir)))
                fatal("cannot read %s: %s", dir, strerror(errno));
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                char *path = format("%s/%s", dir, e->d_name);
                if (!ends_with(e->d_name, ".json")) {
                        unlink(path); /* a status file, converted or not */
                        free(path);
                        continue;
                }
                int pid_len = (int)strcspn(e->d_name, ".");
                size_t len;
                char *text = read_whole_file(path, &len);
                if (!text) {
                        note("cannot read report %s: %s", path, strerror(errno));
                } else {
                        const char *error = read_report(text, len, &report);
                        if (error)
                                note("report of pid %.*s not counted: %s", pid_len, e->d_name,
                                     error);
                        else
                                add_report(t, &report);
                        if (user_pattern && (strstr(user_pattern, "%p") ||
                                             strtol(e->d_name, NULL, 10) == command_pid))
                                copy_report(user_pattern, e->d_name, pid_len, text, len);
                        free(text);
                }
                unlink(path);
                free(path);
        }
        closedir(d);
}
