/* mylib.h - the small library under test in the C API example: read
 * newline-terminated messages from a non-blocking fd.
 *
 * A read may return fewer bytes than a message, several messages, or fail
 * with EAGAIN when nothing is there yet; line_read keeps what it has across
 * calls, so the caller just calls it again once the fd is readable.
 */
#ifndef MYLIB_H
#define MYLIB_H

#include <stddef.h>

#define LINE_MAX_LEN 256

struct line_reader {
        size_t len; /* bytes buffered, possibly several lines */
        char buf[LINE_MAX_LEN];
};

enum line_status {
        LINE_READY,    /* a whole line was copied out */
        LINE_AGAIN,    /* not yet: wait for the fd to be readable, call again */
        LINE_EOF,      /* the peer closed between lines */
        LINE_ERROR,    /* errno says why (EPROTO: EOF inside a line) */
        LINE_TOO_LONG, /* no newline within LINE_MAX_LEN bytes */
};

void line_reader_init(struct line_reader *r);

/* The next line from fd, without its '\n', NUL-terminated into out (cap
 * bytes, longer lines are cut). Reads only as much as it needs to find
 * one line; bytes after it stay buffered for the next call. */
enum line_status line_read(struct line_reader *r, int fd, char *out, size_t cap);

#endif
