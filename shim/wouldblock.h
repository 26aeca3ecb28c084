/* wouldblock.h - control libwouldblock from inside a test (SPEC §7).
 *
 * Link with -lwouldblock or run under LD_PRELOAD=libwouldblock.so. Rules use
 * the scenario language of wouldblock.conf(5), ';'-separated.
 */
#ifndef WOULDBLOCK_H
#define WOULDBLOCK_H

#ifdef __cplusplus
extern "C" {
#endif

/* Replace the active rules (NULL or "": none). 0, or -1 with the reason in
 * wouldblock_last_error(); the active rules are unchanged on error. */
int wouldblock_set_rules(const char *rules);

/* Replace the active rules with a scenario of the loaded config
 * (WOULDBLOCK_CONFIG, or the built-in library). 0 or -1. */
int wouldblock_use_scenario(const char *name);

/* Stop injecting, keep counting; and start again. */
void wouldblock_pause(void);
void wouldblock_resume(void);

/* The calling thread alone: 1 stops injecting into its calls (they are
 * still counted), 0 lets the rules decide them again; the process-wide
 * pause above applies as well. Returns the thread's previous setting. A
 * thread starts unpaused; a child forked by a paused thread starts paused.
 * For a helper thread a test must leave alone (a harness's channel, a
 * logger), and safe in a signal handler. Beyond SPEC §7. */
int wouldblock_pause_thread(int pause);

/* Injections so far in this process: by one call ("recv"), a group
 * ("input", "output", "accept", "all"), or all calls (NULL). */
unsigned long wouldblock_injected(const char *call);

/* Seed prob= decisions from now on (WOULDBLOCK_SEED is the first seed). The
 * active rules start counting again, as if just installed: call numbers,
 * the order of fds, max= budgets; injection totals stay. So the faults from
 * here on depend only on the seed and on the calls made from here on.
 * 0, or -1 (no memory for the new tables; the old ones stay). */
int wouldblock_set_seed(unsigned long long seed);

/* The message of the last failed call above, "" if none. */
const char *wouldblock_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
