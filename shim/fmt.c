/* fmt.c - the async-signal-safe formatter (see fmt.h). */
#include "fmt.h"

#include "rules.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void fmt_flush(struct fmt *f)
{
        size_t off = 0;
        while (off < f->len && f->fd >= 0) {
                ssize_t n = syscall(SYS_write, f->fd, f->buf + off, f->len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                off += (size_t)n;
        }
        f->len = 0;
}

void fmt_mem(struct fmt *f, const char *s, size_t n)
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

void fmt_str(struct fmt *f, const char *s)
{
        fmt_mem(f, s, strlen(s));
}

void fmt_u64(struct fmt *f, uint64_t v)
{
        char d[24];
        int i = sizeof d;
        do
                d[--i] = (char)('0' + v % 10);
        while (v /= 10);
        fmt_mem(f, d + i, sizeof d - (size_t)i);
}

void fmt_i64(struct fmt *f, int64_t v)
{
        if (v < 0) {
                fmt_str(f, "-");
                fmt_u64(f, (uint64_t)0 - (uint64_t)v);
        } else {
                fmt_u64(f, (uint64_t)v);
        }
}

void fmt_errno(struct fmt *f, int err)
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
void fmt_json(struct fmt *f, const char *str)
{
        const char hex[] = "0123456789abcdef";
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
