/* fmt.h - a formatter that is safe in signal handlers: text built in a
 * buffer (on the caller's stack) and written with write(2) when full or
 * flushed. The log lines, the JSON report and its conversion from a status
 * file use it; it makes system calls directly, so in the library its
 * writes never pass through the library's own wrappers, and the runner
 * links it as it is.
 */
#ifndef WB_FMT_H
#define WB_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct fmt {
        int fd; /* flushed there when full (-1: never flushed, truncated) */
        size_t len;
        char buf[1024];
};

void fmt_flush(struct fmt *f);
void fmt_mem(struct fmt *f, const char *s, size_t n);
void fmt_str(struct fmt *f, const char *s);
void fmt_u64(struct fmt *f, uint64_t v);
void fmt_i64(struct fmt *f, int64_t v);
void fmt_errno(struct fmt *f, int err);        /* its name, or its number */
void fmt_json(struct fmt *f, const char *str); /* a JSON string, always valid UTF-8 */

/* snprintf(dst, size, "%.*s", (int)n, src) without the formatter: the code
 * that runs at start-up (parsing rules, naming the program) calls no printf,
 * whose code is pages of libc that nothing else there touches, a page fault
 * each (some 20 us in a VM). Inline: the parser's build tool links no fmt.o. */
static inline void fmt_copy(char *dst, size_t size, const char *src, size_t n)
{
        if (!size)
                return;
        n = strnlen(src, n < size - 1 ? n : size - 1);
        memcpy(dst, src, n);
        dst[n] = '\0';
}

#endif
