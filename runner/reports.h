/* reports.h - the library's JSON reports (SPEC §5), read with jansson: one
 * per process, summed over a command's tree of processes; the status files
 * that killed processes leave behind, turned into reports. */
#ifndef WB_RUNNER_REPORTS_H
#define WB_RUNNER_REPORTS_H

#include "rules.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct report_rule {
        char scenario[WB_NAME_MAX];
        uint64_t line;
        char text[WB_TEXT_MAX];
        uint64_t counted, injected;
};

struct report {
        uint64_t pid;
        char program[256];
        bool complete; /* false: made from a killed process's status file */
        struct report_rule rules[WB_MAX_RULES];
        unsigned n_rules;
        uint64_t seen[WB_CALL_COUNT], injected[WB_CALL_COUNT];
        uint64_t spin_length, spin_fd;
        char spin_call[WB_NAME_MAX];
};

/* One report as report.c writes it: NULL, or what is wrong with it. */
const char *read_report(const char *text, size_t len, struct report *r);

/* What every report says, summed. */
struct totals {
        unsigned processes, incomplete;
        uint64_t seen[WB_CALL_COUNT], injected[WB_CALL_COUNT];
        struct report_rule *rules; /* one per (scenario, line, text) */
        unsigned n_rules;
        uint64_t spin_length, spin_fd, spin_pid;
        char spin_call[WB_NAME_MAX], spin_program[256];
};

void add_report(struct totals *t, const struct report *r);
uint64_t total_injected(const struct totals *t);
void free_totals(struct totals *t);

/* Read, sum and delete the reports in dir (named PID.json by the library:
 * WOULDBLOCK_REPORT=dir/%p.json), first turning each status file left
 * without its report (a killed process) into one. Each report also goes to
 * user_pattern, if given: with %p, every process's; without, command_pid's.
 * dir itself stays. */
void collect_reports(const char *dir, const char *user_pattern, pid_t command_pid,
                     struct totals *t);

/* The summary of --summary, on stderr. wait_status: the command's. */
void print_summary(const struct totals *t, const char *command, int wait_status);

/* "killed by signal 9 (SIGKILL)" or "crashed (signal 11, SIGSEGV)": how a
 * process that ended on a signal ended. */
const char *describe_signal(int sig, char *buf, size_t size);

/* pattern with every %p replaced by pid (pid_len digits): the library's own
 * expansion. */
char *expand_pid(const char *pattern, const char *pid, int pid_len);

/* status_to_report() of shim/status.h (interfaces.md §3), or -1 with ENOSYS
 * in a build whose library does not keep status files. */
int convert_status(const char *status_path, const char *report_path);

#endif
