/* mylib.c - see mylib.h. */
#include "mylib.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void line_reader_init(struct line_reader *r)
{
        r->len = 0;
}

/* Move the first buffered line to out, if there is one. */
static int take_line(struct line_reader *r, char *out, size_t cap)
{
        char *nl = memchr(r->buf, '\n', r->len);
        if (!nl)
                return 0;
        size_t line = (size_t)(nl - r->buf), n = line < cap - 1 ? line : cap - 1;
        memcpy(out, r->buf, n);
        out[n] = '\0';
        r->len -= line + 1;
        memmove(r->buf, nl + 1, r->len);
        return 1;
}

enum line_status line_read(struct line_reader *r, int fd, char *out, size_t cap)
{
        if (cap == 0) {
                errno = EINVAL;
                return LINE_ERROR;
        }
        for (;;) {
                if (take_line(r, out, cap))
                        return LINE_READY;
                if (r->len == sizeof r->buf)
                        return LINE_TOO_LONG;
                ssize_t n = read(fd, r->buf + r->len, sizeof r->buf - r->len);
                if (n > 0) {
                        r->len += (size_t)n; /* maybe part of a line: look, read on */
                        continue;
                }
                if (n == 0) {
                        if (r->len == 0)
                                return LINE_EOF;
                        errno = EPROTO;
                        return LINE_ERROR;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return LINE_AGAIN; /* what we have stays buffered */
                return LINE_ERROR;
        }
}
