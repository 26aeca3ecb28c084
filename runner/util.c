/* util.c - see util.h. */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *usage_text = "";

void set_usage(const char *text)
{
        usage_text = text;
}

static void say(const char *fmt, va_list ap)
{
        fputs("wouldblock: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
}

void fatal(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        say(fmt, ap);
        va_end(ap);
        exit(EXIT_CONFIG);
}

void usage_error(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        say(fmt, ap);
        va_end(ap);
        fputs(usage_text, stderr);
        exit(EXIT_USAGE);
}

void note(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        say(fmt, ap);
        va_end(ap);
}

char *format(const char *fmt, ...)
{
        va_list ap;
        char *s;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                fatal("out of memory");
        return s;
}

char *append(char *list, const char *sep, const char *item)
{
        char *joined = list ? format("%s%s%s", list, sep, item) : format("%s", item);
        free(list);
        return joined;
}

void *xcalloc(size_t n, size_t size)
{
        void *p = calloc(n ? n : 1, size ? size : 1);
        if (!p)
                fatal("out of memory");
        return p;
}

void *xrealloc(void *p, size_t n, size_t size)
{
        void *q = reallocarray(p, n ? n : 1, size ? size : 1);
        if (!q)
                fatal("out of memory");
        return q;
}

char *xstrdup(const char *s)
{
        return format("%s", s);
}

char *absolute_path(const char *option, const char *path)
{
        char cwd[PATH_MAX];

        if (!*path)
                usage_error("%s: empty path", option);
        if (path[0] == '/')
                return format("%s", path);
        if (!getcwd(cwd, sizeof cwd))
                fatal("cannot get the working directory: %s", strerror(errno));
        return format("%s/%s", cwd, path);
}

char *read_whole_file(const char *path, size_t *len)
{
        FILE *f = fopen(path, "re");
        char *text = NULL;
        size_t cap = 0, n;
        int err;

        *len = 0;
        if (!f)
                return NULL;
        do {
                if (*len + 1 >= cap)
                        text = xrealloc(text, cap = cap ? cap * 2 : 4096, 1);
                n = fread(text + *len, 1, cap - *len - 1, f);
                *len += n;
        } while (n > 0);
        text[*len] = '\0';
        err = ferror(f) ? errno : 0;
        fclose(f);
        if (err) {
                free(text);
                errno = err;
                return NULL;
        }
        return text;
}

char *make_private_dir(void)
{
        const char *tmp = getenv("TMPDIR");
        char *tmp_dir = tmp && *tmp ? absolute_path("TMPDIR", tmp) : format("/tmp");
        char *dir = format("%s/wouldblock.XXXXXX", tmp_dir);

        free(tmp_dir);
        if (!mkdtemp(dir))
                fatal("cannot make a directory %s: %s", dir, strerror(errno));
        return dir;
}

void remove_dir(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;

        if (d) {
                while ((e = readdir(d)))
                        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                                char *path = format("%s/%s", dir, e->d_name);
                                unlink(path);
                                free(path);
                        }
                closedir(d);
        }
        if (rmdir(dir))
                note("cannot remove %s: %s", dir, strerror(errno));
}

int finish_output(void)
{
        if (fflush(stdout) || ferror(stdout)) {
                fprintf(stderr, "wouldblock: cannot write the output: %s\n", strerror(errno));
                return EXIT_CONFIG;
        }
        return 0;
}

char *shell_quote(const char *s)
{
        static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789_-+=/.,:@%";
        char *out, *o;

        if (*s && s[strspn(s, safe)] == '\0')
                return xstrdup(s);
        o = out = xcalloc(strlen(s) * 4 + 3, 1);
        *o++ = '\'';
        for (; *s; s++) {
                if (*s == '\'') {
                        memcpy(o, "'\\''", 4);
                        o += 4;
                } else {
                        *o++ = *s;
                }
        }
        *o++ = '\'';
        return out;
}

char *shell_join(char *const *argv)
{
        char *line = NULL;

        for (; *argv; argv++) {
                char *word = shell_quote(*argv);
                line = append(line, " ", word);
                free(word);
        }
        return line ? line : xstrdup("");
}
