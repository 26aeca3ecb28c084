/* preload.c - see preload.h. */
#include "preload.h"

#include "config.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void set_variable(const char *name, const char *value)
{
        if (setenv(name, value, 1))
                fatal("cannot set %s: %s", name, strerror(errno));
}

/* Freed: a sanitizer runtime that COMMAND's LD_PRELOAD puts in us too would
 * count a leak as a failure. */
void set_variable_owned(const char *name, char *value)
{
        set_variable(name, value);
        free(value);
}

void find_library(char *out, size_t size)
{
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

        exe[n > 0 ? n : 0] = '\0';
        if (strrchr(exe, '/')) {
                *strrchr(exe, '/') = '\0';
                snprintf(out, size, "%s/libwouldblock.so", exe);
                if (access(out, R_OK) == 0)
                        return;
        }
#ifdef WB_LIBDIR
        snprintf(out, size, "%s/libwouldblock.so", WB_LIBDIR);
        if (access(out, R_OK) == 0)
                return;
        fatal("cannot find libwouldblock.so in %s or in %s", exe, WB_LIBDIR);
#else
        fatal("cannot find libwouldblock.so in %s", exe);
#endif
}

/* A sanitizer runtime refuses to run unless it is the first library loaded. */
static int is_sanitizer_runtime(const char *entry, size_t len)
{
        static const char *const prefixes[] = {"libasan", "libhwasan", "libtsan",     "libubsan",
                                               "liblsan", "libmsan",   "libclang_rt."};
        const char *base = entry;

        for (const char *c = entry; c < entry + len; c++)
                if (*c == '/')
                        base = c + 1;
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
                size_t plen = strlen(prefixes[i]);
                if ((size_t)(entry + len - base) >= plen && memcmp(base, prefixes[i], plen) == 0)
                        return 1;
        }
        return 0;
}

char *preload_with(const char *old, const char *lib)
{
        size_t keep = 0; /* bytes of old that stay in front of lib */

        if (!old)
                old = "";
        for (;;) {
                size_t start = keep + strspn(old + keep, ": ");
                size_t len = strcspn(old + start, ": ");
                if (!len || !is_sanitizer_runtime(old + start, len))
                        break;
                keep = start + len;
        }
        const char *rest = old + keep + strspn(old + keep, ": ");
        return format("%.*s%s%s%s%s", (int)keep, old, keep ? ":" : "", lib, *rest ? ":" : "", rest);
}

void preload_library(void)
{
        char lib[PATH_MAX];

        find_library(lib, sizeof lib);
        if (strpbrk(lib, ": "))
                fatal("cannot preload %s: LD_PRELOAD cannot hold a path with ':' or ' '", lib);
        set_variable_owned("LD_PRELOAD", preload_with(getenv("LD_PRELOAD"), lib));
}

void check_configuration(const char *config)
{
        struct wb_rule rules[WB_MAX_RULES];
        struct wb_settings s;
        struct wb_config cfg;
        struct wb_diag d;
        unsigned n;

        if (config_settings(&s, &d))
                fatal("%s", d.msg);
        if (config)
                s.config = config; /* named in messages as the user wrote it */
        if (config_resolve(&s, &cfg, rules, &n, &d))
                fatal("%s", d.msg);
        config_free(&cfg);
}
