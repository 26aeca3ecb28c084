/* regress_main.c - the fuzz target without libFuzzer, as a TAP suite.
 *
 *   fuzz-regress [FILE...]
 *
 * Runs LLVMFuzzerTestOneInput on each FILE, or with no argument on every
 * file of the seed corpus and of the regressions (WB_FUZZ_DIR/corpus and
 * WB_FUZZ_DIR/regressions), each in a child process so that an abort or a
 * sanitizer report fails that input alone. Prints "ok N - NAME" or
 * "not ok N - NAME" per input, with the child's messages as "# " lines.
 * The first test is the embedded scenario library (LLVMFuzzerInitialize).
 */
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef WB_FUZZ_DIR
#define WB_FUZZ_DIR "tests/fuzz"
#endif
#define CHILD_TIMEOUT 60 /* seconds: a hang guard, far above any input's time */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned test_no;
static unsigned failures;

/* The whole file in a buffer of exactly its size, as libFuzzer passes it,
 * so that a read past the input is an AddressSanitizer report. */
static uint8_t *read_file(const char *path, size_t *size)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL, *exact;
        size_t len = 0, cap = 0, n;

        if (!f)
                return NULL;
        do {
                if (len == cap) {
                        uint8_t *nb = realloc(buf, cap = cap ? cap * 2 : 4096);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return NULL;
                        }
                        buf = nb;
                }
                n = fread(buf + len, 1, cap - len, f);
                len += n;
        } while (n > 0);
        if (ferror(f)) {
                free(buf);
                fclose(f);
                return NULL;
        }
        fclose(f);
        exact = malloc(len ? len : 1);
        if (exact && len)
                memcpy(exact, buf, len);
        free(buf);
        *size = len;
        return exact;
}

/* In the child: the embedded library check, then the input (path NULL:
 * only the check). Exits 0 when every check held. */
static void child(const char *path)
{
        uint8_t *data;
        size_t size = 0;

        alarm(CHILD_TIMEOUT);
        LLVMFuzzerInitialize(NULL, NULL);
        if (path) {
                data = read_file(path, &size);
                if (!data) {
                        perror(path);
                        exit(2);
                }
                LLVMFuzzerTestOneInput(data, size);
                free(data);
        }
        exit(0); /* not _exit: LeakSanitizer checks at exit */
}

/* One TAP test: run child(path) and relay what it printed as comments. */
static void run_one(const char *path, const char *name)
{
        int fds[2];
        pid_t pid;
        int status = 0;
        FILE *out;
        char line[1024];

        fflush(stdout);
        if (pipe(fds) != 0) {
                perror("pipe");
                exit(1);
        }
        pid = fork();
        if (pid < 0) {
                perror("fork");
                exit(1);
        }
        if (pid == 0) {
                close(fds[0]);
                dup2(fds[1], STDOUT_FILENO);
                dup2(fds[1], STDERR_FILENO);
                close(fds[1]);
                child(path);
        }
        close(fds[1]);
        out = fdopen(fds[0], "r");
        bool at_line_start = true;
        while (out && fgets(line, sizeof line, out)) {
                printf("%s%s", at_line_start ? "# " : "", line);
                at_line_start = strchr(line, '\n') != NULL;
        }
        if (!at_line_start)
                putchar('\n');
        if (out)
                fclose(out);
        while (waitpid(pid, &status, 0) < 0)
                ;
        test_no++;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                printf("ok %u - %s\n", test_no, name);
                return;
        }
        failures++;
        if (WIFSIGNALED(status))
                printf("not ok %u - %s (killed by signal %d%s)\n", test_no, name, WTERMSIG(status),
                       WTERMSIG(status) == SIGALRM ? ", a hang" : "");
        else
                printf("not ok %u - %s (exit status %d)\n", test_no, name, WEXITSTATUS(status));
}

static int skip_hidden(const struct dirent *e)
{
        return e->d_name[0] != '.';
}

/* Every file of dir, in name order; a missing directory is a failure (the
 * corpus and the regressions are part of the source tree). */
static void run_dir(const char *sub)
{
        char dir[4096], path[8192], name[4096];
        struct dirent **entries;
        int n;

        snprintf(dir, sizeof dir, "%s/%s", WB_FUZZ_DIR, sub);
        n = scandir(dir, &entries, skip_hidden, alphasort);
        if (n < 0) {
                test_no++;
                failures++;
                printf("not ok %u - %s: cannot read the directory\n", test_no, dir);
                return;
        }
        for (int i = 0; i < n; i++) {
                snprintf(path, sizeof path, "%s/%s", dir, entries[i]->d_name);
                snprintf(name, sizeof name, "%s/%s", sub, entries[i]->d_name);
                run_one(path, name);
                free(entries[i]);
        }
        free(entries);
}

int main(int argc, char **argv)
{
#ifndef WB_FUZZ_SANITIZED
        printf("# built without AddressSanitizer/UBSan: only aborts and crashes are caught\n");
#endif
        run_one(NULL, "embedded scenario library round-trips");
        if (argc > 1) {
                for (int i = 1; i < argc; i++)
                        run_one(argv[i], argv[i]);
        } else {
                run_dir("corpus");
                run_dir("regressions");
        }
        printf("1..%u\n", test_no);
        return failures ? 1 : 0;
}
