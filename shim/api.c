/* api.c - start-up from the environment, fork handling, and the public C
 * API of wouldblock.h. */
#include "wouldblock.h"

#include "boot.h"
#include "config.h"
#include "engine.h"
#include "fdstate.h"
#include "fmt.h"
#include "real.h"
#include "record.h"
#include "report.h"
#include "site.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WB_EXPORT __attribute__((visibility("default")))

static struct wb_settings settings WB_BOOT;
/* loaded at start-up, or on first use_scenario: the embedded library in
 * place, or a file's, parsed into config_file */
static const struct wb_config *config WB_BOOT;
static struct wb_config config_file;
static bool api_paused WB_BOOT;
/* per thread: two threads' failures must not garble each other's message */
static __thread char last_error[sizeof(((struct wb_diag *)0)->msg)];
/* The API's calls are serialized (not the wrapped calls: those never lock);
 * the rule buffer lives here rather than as 54 KB on a caller's stack. */
static pthread_mutex_t api_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wb_rule api_rules[WB_MAX_RULES];

static _Noreturn void die(const char *msg)
{
        /* before main: nothing of the program has run, nothing to flush */
        dprintf(2, "wouldblock: %s\n", msg);
        /* not _exit: ours would write a report for a process that never ran */
        for (;;)
                syscall(SYS_exit_group, 125);
}

static const char *base_name(const char *path)
{
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

static void apply_pause(void)
{
        engine_pause(api_paused || settings.disabled);
}

static void after_fork_in_child(void)
{
        /* a thread of the parent may have held it; it is not here */
        pthread_mutex_init(&api_lock, NULL);
        site_after_fork();
        record_restart();
        report_restart(); /* first: the child's own status, where the rules' counts go */
        engine_restart_counts();
}

static void write_report_at_exit(void)
{
        record_finish();
        report_write();
}

static int api_fail(const struct wb_diag *d)
{
        snprintf(last_error, sizeof last_error, "%s", d->msg);
        return -1;
}

/* argv[0]'s and the executable's basenames, for process=, site= and
 * recording. Learned when a rule set (or the recording) first needs them,
 * not at start: most processes never do, and reading /proc/self/exe is a
 * system call and a page of libc's code. */
static bool names_known WB_BOOT;
static char exe_base[NAME_MAX + 1] WB_BOOT; /* for the recording */

static void learn_names(void)
{
        char exe[PATH_MAX]; /* on the stack: a static one is a page of its own */
        ssize_t n;

        if (names_known)
                return;
        n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        site_set_exe(exe);
        engine_set_process_names(base_name(program_invocation_name), base_name(exe));
        fmt_copy(exe_base, sizeof exe_base, base_name(exe), strlen(base_name(exe)));
        names_known = true;
}

/* Does the set name a process, or look up the places of calls (site.h)? */
static void prepare(const struct wb_rule *rules, unsigned n)
{
        bool names = record_active(), sites = names;

        for (unsigned i = 0; i < n; i++) {
                names |= rules[i].process[0] || rules[i].site[0];
                sites |= rules[i].site[0] != 0;
        }
        if (names)
                learn_names();
        if (sites)
                site_need();
}

/* install without clearing wouldblock_last_error (start-up: nothing has
 * set it, and the thread's copy is on a page nothing else touches) */
static int install_rules(const struct wb_rule *rules, unsigned n, const char *scenarios)
{
        struct wb_diag d;

        prepare(rules, n);
        /* anything but api_rules is a config's own, kept for good (config,
         * config_file): the set reads them in place */
        if (engine_install(rules, n, settings.seed, rules != api_rules)) {
                snprintf(d.msg, sizeof d.msg, "cannot map the rule tables: %s", strerror(errno));
                return api_fail(&d);
        }
        report_set_scenarios(scenarios);
        return 0;
}

static int install(const struct wb_rule *rules, unsigned n, const char *scenarios)
{
        if (install_rules(rules, n, scenarios))
                return -1;
        last_error[0] = '\0';
        return 0;
}

static void before_fork(void)
{
        fd_state_child_started();
}

__attribute__((constructor)) static void wouldblock_init(void)
{
        const struct wb_rule *rules;
        struct wb_diag d;
        unsigned n_rules;
        int saved = errno;

        real_bind();
        if (config_settings(&settings, &d) || report_init(&settings, &d))
                die(d.msg);
        if (settings.record) {
                learn_names();
                if (record_init(settings.record, base_name(program_invocation_name), exe_base, &d))
                        die(d.msg);
        }
        /* api_rules: static, 54 KB is much for a stack */
        if (config_resolve_shared(&settings, &config_file, &config, api_rules, &rules, &n_rules,
                                  &d))
                die(d.msg);
        if (install_rules(rules, n_rules, settings.scenarios ? settings.scenarios : ""))
                die(last_error);
        apply_pause();
        pthread_atfork(before_fork, NULL, after_fork_in_child);
        atexit(write_report_at_exit);
        errno = saved;
}

/* _exit skips atexit: write the report here too (forked children and
 * os._exit end this way). A vfork child shares our memory and must not
 * touch it; report_write tells by the pid. */
WB_EXPORT _Noreturn void _exit(int status)
{
        record_finish();
        report_write();
        for (;;)
                syscall(SYS_exit_group, status);
}
WB_EXPORT _Noreturn void _Exit(int status)
{
        _exit(status);
}

/* ---- the C API ---- */

WB_EXPORT int wouldblock_set_rules(const char *text)
{
        struct wb_diag d;
        unsigned n = 0;
        int r;

        pthread_mutex_lock(&api_lock);
        if (text && rule_parse_list(text, "api", api_rules, &n, WB_MAX_RULES, &d))
                r = api_fail(&d);
        else
                r = install(api_rules, n, "");
        pthread_mutex_unlock(&api_lock);
        return r;
}

WB_EXPORT int wouldblock_use_scenario(const char *name)
{
        struct wb_diag d;
        unsigned n = 0;
        int r = -1;

        if (!name) {
                snprintf(d.msg, sizeof d.msg, "wouldblock_use_scenario: no name");
                return api_fail(&d);
        }
        pthread_mutex_lock(&api_lock);
        if (!config && config_open(settings.config, &config_file, &config, &d))
                goto fail;
        if (config_add_scenario(config, name, strlen(name), "wouldblock_use_scenario:", 1,
                                api_rules, &n, WB_MAX_RULES, &d))
                goto fail;
        r = install(api_rules, n, name);
        pthread_mutex_unlock(&api_lock);
        return r;
fail:
        pthread_mutex_unlock(&api_lock);
        return api_fail(&d);
}

WB_EXPORT void wouldblock_pause(void)
{
        pthread_mutex_lock(&api_lock);
        api_paused = true;
        apply_pause();
        pthread_mutex_unlock(&api_lock);
}

WB_EXPORT void wouldblock_resume(void)
{
        pthread_mutex_lock(&api_lock);
        api_paused = false;
        apply_pause();
        pthread_mutex_unlock(&api_lock);
}

/* No lock: the setting is the calling thread's own, and a signal handler
 * may pause the thread it interrupted around its own writes. */
WB_EXPORT int wouldblock_pause_thread(int pause)
{
        return engine_pause_thread(pause != 0);
}

WB_EXPORT unsigned long wouldblock_injected(const char *call)
{
        static const struct {
                const char *name;
                uint32_t mask;
        } groups[] = {{"all", WB_GROUP_ALL},
                      {"input", WB_GROUP_INPUT},
                      {"output", WB_GROUP_OUTPUT},
                      {"accept", WB_GROUP_ACCEPT}};
        uint32_t mask = 0;
        unsigned long sum = 0;
        int c;

        if (!call)
                return (unsigned long)report_injected(-1);
        for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
                if (strcmp(call, groups[g].name) == 0)
                        mask = groups[g].mask;
        if (!mask && (c = rule_call_by_name(call, strlen(call))) >= 0)
                mask = WB_CALL_BIT(c);
        for (c = 0; c < WB_CALL_COUNT; c++)
                if (mask & WB_CALL_BIT(c))
                        sum += (unsigned long)report_injected(c);
        return sum;
}

/* The seed is the ruleset's; restarting the counts with it makes what
 * follows a function of the seed and of the calls from now on only, not of
 * how many calls came before: a test that sets a seed first reproduces
 * alone, after other tests, or in another worker. */
WB_EXPORT int wouldblock_set_seed(unsigned long long seed)
{
        struct wb_diag d;
        int r = 0;

        pthread_mutex_lock(&api_lock);
        settings.seed = seed;
        if (engine_reseed(seed)) {
                snprintf(d.msg, sizeof d.msg, "cannot map the rule tables: %s", strerror(errno));
                r = api_fail(&d);
        } else
                last_error[0] = '\0';
        pthread_mutex_unlock(&api_lock);
        return r;
}

WB_EXPORT const char *wouldblock_last_error(void)
{
        return last_error;
}
