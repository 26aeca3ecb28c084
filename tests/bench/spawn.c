/* spawn.c - start-up time of a command: fork, exec, wait, RUNS times.
 *
 *   spawn RUNS [VAR=VALUE ...] -- COMMAND [ARG...]
 *
 * The VAR=VALUE assignments are made in the child only, between fork and
 * exec, so this timer itself never runs under the preload it measures.
 * Prints "runs=N median_ns=M min_ns=M samples=a,b,c... cpu_samples=a,b,c..."
 * (every sample, so run.py can pool several batches): wall-clock time from
 * fork to the end of wait, and the child's CPU time (user + system, from
 * wait4), which leaves out the time other programs held the CPU. A child
 * that does not exit 0 (e.g. 125, a configuration error) is a broken
 * measurement: exit status 2.
 *
 * The timer and its children stay on the CPU it started on: on a shared
 * 2-core VM a child woken on the other CPU was seen to wait for a timer tick
 * (4 ms) half of the time, which would drown the milliseconds measured.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* putenv, execvp, sched_getcpu, wait4 */
#endif
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "timing.h"

static int by_value(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
        long runs = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
        int sep = 2;
        uint64_t *samples, *sorted, *cpu;

        while (sep < argc && strcmp(argv[sep], "--") != 0)
                sep++;
        if (runs <= 0 || sep + 1 >= argc) {
                fprintf(stderr, "usage: spawn RUNS [VAR=VALUE ...] -- COMMAND [ARG...]\n");
                return 1;
        }
        pin_here();
        samples = calloc((size_t)runs, sizeof *samples);
        sorted = calloc((size_t)runs, sizeof *sorted);
        cpu = calloc((size_t)runs, sizeof *cpu);
        if (!samples || !sorted || !cpu)
                return 1;

        for (long i = 0; i < runs; i++) {
                int status;
                struct rusage ru;
                uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
                pid_t pid = fork();

                if (pid < 0) {
                        perror("spawn: fork");
                        return 1;
                }
                if (pid == 0) {
                        for (int a = 2; a < sep; a++)
                                if (putenv(argv[a]) != 0)
                                        _exit(127);
                        execvp(argv[sep + 1], argv + sep + 1);
                        _exit(127);
                }
                while (wait4(pid, &status, 0, &ru) < 0)
                        if (errno != EINTR) {
                                perror("spawn: wait4");
                                return 1;
                        }
                samples[i] = clock_ns(CLOCK_MONOTONIC) - t0;
                cpu[i] = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
                         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        fprintf(stderr, "spawn: broken measurement: %s exited with status %d\n",
                                argv[sep + 1], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
                        return 2;
                }
        }

        memcpy(sorted, samples, (size_t)runs * sizeof *samples);
        qsort(sorted, (size_t)runs, sizeof *sorted, by_value);
        printf("runs=%ld median_ns=%llu min_ns=%llu samples=", runs,
               (unsigned long long)sorted[runs / 2], (unsigned long long)sorted[0]);
        for (long i = 0; i < runs; i++)
                printf("%s%llu", i ? "," : "", (unsigned long long)samples[i]);
        printf(" cpu_samples=");
        for (long i = 0; i < runs; i++)
                printf("%s%llu", i ? "," : "", (unsigned long long)cpu[i]);
        printf("\n");
        return 0;
}
