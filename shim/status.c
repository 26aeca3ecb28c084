/* status.c - counts that survive the process (see status.h). */
#include "status.h"

#include "boot.h"
#include "fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static char file_path[PATH_MAX]; /* the status file of this process, "" for none */
/* Its header (the program's name, the scenarios, the banks' headers: all
 * that start-up writes of it without a report) at the start of .bss, on the
 * page the dynamic loader writes anyway (boot.h): defined after file_path,
 * which the compiler then puts after it. */
static struct wb_status initial;
struct wb_status *wb_status = &initial;
static bool keep_rules WB_BOOT; /* status_keep_rules */

/* The first shard that may hold counts (they go up to WB_SHARD_COUNT). A
 * process that never had a second thread counts in the only thread's shard,
 * the last (counter.h): in its own status the threads' shards are zero, and
 * each of their pages read or written would cost a page fault. Another
 * process's status (the runner's status_to_report): all of them. */
static unsigned first_shard(const struct wb_status *st)
{
        return st == wb_status && counter_single_threaded() ? WB_SHARD_SINGLE : 0;
}

/* Copy the status old into st, a fresh mapping (all zero). In a process
 * that never had a second thread only the only thread's shard has counts
 * (first_shard): the threads' shards are neither read nor written, 50 pages
 * of the new mapping that would each cost a page fault (about 11 us where
 * the benchmark runs) in every process that writes a report. */
static void copy_counts(struct wb_status *st, const struct wb_status *old)
{
        if (first_shard(old) != WB_SHARD_SINGLE) {
                memcpy(st, old, sizeof *st);
                return;
        }
        memcpy(st, old, offsetof(struct wb_status, rules));
        for (int b = 0; b < 2; b++)
                memcpy(st->rules[b], old->rules[b], old->banks[b].n * sizeof old->rules[b][0]);
}

int status_open(const char *path)
{
        struct wb_status *old = wb_status, *st;
        int fd = -1;

        if (path) {
                if (strlen(path) >= sizeof file_path) {
                        errno = ENAMETOOLONG;
                        return -1;
                }
                /* raw system calls: no wrapper of the library sees its own files */
                fd = (int)syscall(SYS_openat, AT_FDCWD, path,
                                  O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0)
                        return -1;
                if (syscall(SYS_ftruncate, fd, (long)sizeof *st) != 0) {
                        int saved = errno;
                        syscall(SYS_close, fd);
                        syscall(SYS_unlinkat, AT_FDCWD, path, 0);
                        errno = saved;
                        return -1;
                }
        }
        st = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE,
                  path ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS, fd, 0);
        if (fd >= 0)
                syscall(SYS_close, fd);
        if (st == MAP_FAILED) {
                if (path)
                        syscall(SYS_unlinkat, AT_FDCWD, path, 0);
                return -1;
        }
        copy_counts(st, old);
        st->size = sizeof *st;
        st->pid = (uint64_t)getpid();
        /* the magic last: a file cut short by a kill before this is refused */
        memcpy(st->magic, WB_STATUS_MAGIC, sizeof st->magic);
        wb_status = st;
        if (old != &initial) /* see status.h: not unmapped */
                mmap(old, sizeof *old, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        snprintf(file_path, sizeof file_path, "%s", path ? path : "");
        return 0;
}

void status_keep_rules(bool keep)
{
        keep_rules = keep;
}

struct wb_status_bank *status_bank_prepare(const struct wb_rule *rules, unsigned n, uint64_t seed)
{
        /* the bank in use, while no set has used it (the first install: its
         * header shares the status's first page with the program's name) */
        unsigned cur = atomic_load(&wb_status->bank) & 1;
        struct wb_status_bank *b = &wb_status->banks[wb_status->banks[cur].used ? cur ^ 1 : cur];
        struct wb_status_rule *kept = wb_status->rules[status_bank_index(b)];

        b->n = n < WB_MAX_RULES ? n : WB_MAX_RULES;
        b->seed = seed;
        for (unsigned i = 0; i < b->n; i++) {
                if (keep_rules) {
                        memcpy(kept[i].text, rules[i].text, sizeof kept[i].text);
                        memcpy(kept[i].scenario, rules[i].scenario, sizeof kept[i].scenario);
                        kept[i].line = rules[i].line;
                }
                /* a bank never used is zero: start-up touches no shard's page */
                if (b->used) {
                        WB_STATUS_ZERO(wb_status, counted[status_bank_index(b)][i]);
                        WB_STATUS_ZERO(wb_status, injected[status_bank_index(b)][i]);
                }
        }
        return b;
}

unsigned status_bank_index(const struct wb_status_bank *b)
{
        return b == &wb_status->banks[1];
}

/* One counter (at offset in a shard) of shard s. */
static _Atomic uint64_t *shard_counter(const struct wb_status *st, unsigned s, size_t offset)
{
        return (_Atomic uint64_t *)((char *)status_shard((struct wb_status *)st, s) + offset);
}

uint64_t status_sum(const struct wb_status *st, size_t offset)
{
        uint64_t sum = 0;
        for (unsigned s = first_shard(st); s < WB_SHARD_COUNT; s++)
                sum += atomic_load_explicit(shard_counter(st, s, offset), memory_order_relaxed);
        return sum;
}

void status_zero(struct wb_status *st, size_t offset)
{
        for (unsigned s = first_shard(st); s < WB_SHARD_COUNT; s++)
                atomic_store_explicit(shard_counter(st, s, offset), 0, memory_order_relaxed);
}

uint64_t status_spin(const struct wb_status *st)
{
        uint64_t best = 0;
        for (unsigned s = first_shard(st); s < WB_SHARD_COUNT; s++) {
                uint64_t v = atomic_load_explicit(
                    shard_counter(st, s, offsetof(struct wb_status_shard, spin)),
                    memory_order_relaxed);
                if (v >> 32 > best >> 32)
                        best = v;
        }
        return best;
}

void status_bank_publish(struct wb_status_bank *b)
{
        b->used = 1;
        atomic_store(&wb_status->bank, b == &wb_status->banks[1]);
}

void status_remove(void)
{
        if (file_path[0])
                syscall(SYS_unlinkat, AT_FDCWD, file_path, 0);
        file_path[0] = '\0';
}

/* a string field of the structure, terminated whatever the file held */
static void fmt_field(struct fmt *f, const char *field, size_t size)
{
        char copy[1024];
        size_t n = strnlen(field, size < sizeof copy ? size : sizeof copy - 1);
        if (n >= sizeof copy)
                n = sizeof copy - 1;
        memcpy(copy, field, n);
        copy[n] = '\0';
        fmt_json(f, copy);
}

static void json_scenarios(struct fmt *f, const char *list, size_t size)
{
        const char *p = list, *end = list + strnlen(list, size);
        bool first = true;

        fmt_str(f, "[");
        while (p < end) {
                const char *comma = memchr(p, ',', (size_t)(end - p));
                size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
                while (n && (*p == ' ' || *p == '\t'))
                        p++, n--;
                while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                        n--;
                if (n && n < WB_NAME_MAX) {
                        fmt_str(f, first ? "" : ", ");
                        fmt_field(f, p, n);
                        first = false;
                }
                if (!comma)
                        break;
                p = comma + 1;
        }
        fmt_str(f, "]");
}

void status_write_report(const struct wb_status *st, int fd, bool complete)
{
        struct fmt f = {.fd = fd, .len = 0};
        unsigned bank = atomic_load(&st->bank) & 1;
        const struct wb_status_bank *b = &st->banks[bank];
        uint32_t n = b->n < WB_MAX_RULES ? b->n : WB_MAX_RULES;
        uint64_t spin = status_spin(st);

        fmt_str(&f, "{\"pid\": ");
        fmt_u64(&f, st->pid);
        fmt_str(&f, ", \"program\": ");
        fmt_field(&f, st->program, sizeof st->program);
        fmt_str(&f, ", \"scenarios\": ");
        json_scenarios(&f, st->scenarios, sizeof st->scenarios);
        fmt_str(&f, ", \"seed\": ");
        fmt_u64(&f, b->seed);
        fmt_str(&f, ", \"complete\": ");
        fmt_str(&f, complete ? "true" : "false");
        fmt_str(&f, ",\n \"rules\": [");
        for (uint32_t i = 0; i < n; i++) {
                const struct wb_status_rule *r = &st->rules[bank][i];
                fmt_str(&f, i ? ",\n   " : "\n   ");
                fmt_str(&f, "{\"text\": ");
                fmt_field(&f, r->text, sizeof r->text);
                fmt_str(&f, ", \"scenario\": ");
                fmt_field(&f, r->scenario, sizeof r->scenario);
                fmt_str(&f, ", \"line\": ");
                fmt_u64(&f, r->line);
                fmt_str(&f, ", \"counted\": ");
                fmt_u64(&f, WB_STATUS_SUM(st, counted[bank][i]));
                fmt_str(&f, ", \"injected\": ");
                fmt_u64(&f, WB_STATUS_SUM(st, injected[bank][i]));
                fmt_str(&f, "}");
        }
        fmt_str(&f, "],\n \"calls\": {");
        for (int c = 0; c < WB_CALL_COUNT; c++) {
                fmt_str(&f, c ? ",\n   " : "\n   ");
                fmt_json(&f, rule_call_name((enum wb_call)c));
                fmt_str(&f, ": {\"seen\": ");
                fmt_u64(&f, WB_STATUS_SUM(st, calls_seen[c]));
                fmt_str(&f, ", \"injected\": ");
                fmt_u64(&f, WB_STATUS_SUM(st, calls_injected[c]));
                fmt_str(&f, "}");
        }
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
}

int status_to_report(const char *status_path, const char *report_path)
{
        struct wb_status *st;
        struct stat sb;
        int fd, out, saved;

        fd = open(status_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        if (fstat(fd, &sb) != 0 || (size_t)sb.st_size != sizeof *st) {
                saved = errno;
                close(fd);
                errno = sb.st_size != sizeof *st ? EINVAL : saved;
                return -1;
        }
        /* writable, privately: an atomic load may be a write on some machines */
        st = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        saved = errno;
        close(fd);
        if (st == MAP_FAILED) {
                errno = saved;
                return -1;
        }
        if (memcmp(st->magic, WB_STATUS_MAGIC, sizeof st->magic) != 0 || st->size != sizeof *st) {
                munmap(st, sizeof *st);
                errno = EINVAL; /* not a status file of this version */
                return -1;
        }
        out = open(report_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out < 0) {
                saved = errno;
                munmap(st, sizeof *st);
                errno = saved;
                return -1;
        }
        status_write_report(st, out, false);
        munmap(st, sizeof *st);
        if (close(out) != 0)
                return -1;
        return 0;
}
