/* config.c - scenario files and the WOULDBLOCK_* variables (see config.h). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool is_blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r';
}

static bool is_name_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.';
}

static int fail(struct wb_diag *d, const char *file, unsigned line, unsigned col, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

static int fail(struct wb_diag *d, const char *file, unsigned line, unsigned col, const char *fmt,
                ...)
{
        char msg[400];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(d->msg, sizeof d->msg, "%s:%u:%u: %s", file, line, col, msg);
        return -1;
}

/* The rules of cfg: its own array, or the embedded ones when cfg is the
 * parsed library itself (config_open), whose bytes hold no pointer. */
static const struct wb_rule *rules_of(const struct wb_config *cfg)
{
        if (!cfg->rules && &wb_embedded_parsed && cfg == &wb_embedded_parsed.cfg)
                return &wb_embedded_rules[0].rule;
        return cfg->rules;
}

const struct wb_scenario *config_find(const struct wb_config *cfg, const char *name, size_t len)
{
        for (unsigned i = 0; i < cfg->n_scenarios; i++)
                if (strlen(cfg->scenarios[i].name) == len &&
                    memcmp(cfg->scenarios[i].name, name, len) == 0)
                        return &cfg->scenarios[i];
        return NULL;
}

/* One line, comment already cut off, [s, end). */
static int parse_line(struct wb_config *cfg, const char *name, unsigned line_no, const char *line,
                      const char *s, const char *end, unsigned *cap, struct wb_diag *d)
{
        struct wb_scenario *sc = cfg->n_scenarios ? &cfg->scenarios[cfg->n_scenarios - 1] : NULL;
        unsigned col = (unsigned)(s - line) + 1;

        if (*s == '[') {
                const char *n = s + 1, *close = memchr(s, ']', (size_t)(end - s));
                if (!close)
                        return fail(d, name, line_no, col, "missing ']' after scenario name");
                for (const char *t = close + 1; t < end; t++)
                        if (!is_blank(*t))
                                return fail(d, name, line_no, (unsigned)(t - line) + 1,
                                            "unexpected text after ']'");
                if (n == close)
                        return fail(d, name, line_no, col + 1, "empty scenario name");
                for (const char *t = n; t < close; t++)
                        if (!is_name_char(*t))
                                return fail(d, name, line_no, (unsigned)(t - line) + 1,
                                            "scenario names use letters, digits, '-', '_' and '.'");
                if ((size_t)(close - n) >= WB_NAME_MAX)
                        return fail(d, name, line_no, col + 1,
                                    "scenario name longer than %d characters", WB_NAME_MAX - 1);
                const struct wb_scenario *dup = config_find(cfg, n, (size_t)(close - n));
                if (dup)
                        return fail(d, name, line_no, col + 1,
                                    "scenario '%.*s' already defined at line %u", (int)(close - n),
                                    n, dup->line);
                if (cfg->n_scenarios == WB_MAX_SCENARIOS)
                        return fail(d, name, line_no, col, "too many scenarios (at most %d)",
                                    WB_MAX_SCENARIOS);
                sc = &cfg->scenarios[cfg->n_scenarios++];
                memset(sc, 0, sizeof *sc);
                memcpy(sc->name, n, (size_t)(close - n));
                sc->line = line_no;
                sc->first_rule = cfg->n_rules;
                return 0;
        }

        /* description = text */
        static const char desc[] = "description";
        if ((size_t)(end - s) >= sizeof desc - 1 && memcmp(s, desc, sizeof desc - 1) == 0) {
                const char *t = s + sizeof desc - 1;
                while (t < end && is_blank(*t))
                        t++;
                if (t < end && *t == '=') {
                        if (!sc)
                                return fail(d, name, line_no, col,
                                            "description outside a [scenario]");
                        if (sc->description[0])
                                return fail(d, name, line_no, col, "duplicate description for [%s]",
                                            sc->name);
                        for (t++; t < end && is_blank(*t); t++)
                                ;
                        if (t == end)
                                return fail(d, name, line_no, (unsigned)(t - line) + 1,
                                            "empty description");
                        snprintf(sc->description, sizeof sc->description, "%.*s", (int)(end - t),
                                 t);
                        return 0;
                }
        }

        if (!sc)
                return fail(d, name, line_no, col,
                            "rule outside a scenario (start one with [name])");
        if (cfg->n_rules == *cap) {
                unsigned ncap = *cap ? *cap * 2 : 32;
                struct wb_rule *nr = realloc(cfg->rules, ncap * sizeof *nr);
                if (!nr)
                        return fail(d, name, line_no, col, "out of memory");
                cfg->rules = nr;
                *cap = ncap;
        }
        char where[600];
        snprintf(where, sizeof where, "%s:%u:", name, line_no);
        struct wb_rule *r = &cfg->rules[cfg->n_rules];
        if (rule_parse(s, (size_t)(end - s), where, col, r, d))
                return -1;
        snprintf(r->scenario, sizeof r->scenario, "%s", sc->name);
        r->line = line_no;
        cfg->n_rules++;
        sc->n_rules++;
        return 0;
}

int config_parse(const char *name, const char *text, size_t len, struct wb_config *cfg,
                 struct wb_diag *d)
{
        const char *p = text, *end = text + len;
        unsigned line_no = 0, cap = 0;

        memset(cfg, 0, sizeof *cfg);
        snprintf(cfg->path, sizeof cfg->path, "%s", name);
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                const char *line_end = nl ? nl : end;
                const char *hash = memchr(p, '#', (size_t)(line_end - p));
                const char *s = p, *e = hash ? hash : line_end;

                line_no++;
                if (memchr(p, '\0', (size_t)(line_end - p))) {
                        fail(d, name, line_no, 1, "NUL byte in a text file");
                        config_free(cfg);
                        return -1;
                }
                while (s < e && is_blank(*s))
                        s++;
                while (e > s && is_blank(e[-1]))
                        e--;
                if (s < e && parse_line(cfg, name, line_no, p, s, e, &cap, d)) {
                        config_free(cfg);
                        return -1;
                }
                p = line_end + 1;
        }
        return 0;
}

int config_load(const char *path, struct wb_config *cfg, struct wb_diag *d)
{
        FILE *f;
        char *buf = NULL;
        size_t len = 0, cap = 0, n;
        int r;

        if (!path && &wb_embedded_parsed) {
                /* parsed at build time: copy what is used of it, no more
                 * (the scenario table is large and mostly empty) */
                const struct wb_config *e = &wb_embedded_parsed.cfg;
                memcpy(cfg->path, e->path, sizeof cfg->path);
                memcpy(cfg->scenarios, e->scenarios, e->n_scenarios * sizeof e->scenarios[0]);
                cfg->n_scenarios = e->n_scenarios;
                cfg->rules = (struct wb_rule *)&wb_embedded_rules[0].rule;
                cfg->n_rules = e->n_rules;
                cfg->rules_embedded = true;
                return 0;
        }
        if (!path)
                return config_parse(WB_EMBEDDED_NAME, wb_embedded_conf, wb_embedded_conf_size, cfg,
                                    d);
        memset(cfg, 0, sizeof *cfg);
        f = fopen(path, "re");
        if (!f) {
                /* no line to point at: the file itself is the problem */
                snprintf(d->msg, sizeof d->msg, "%s: cannot open: %s", path, strerror(errno));
                return -1;
        }
        do {
                if (len == cap) {
                        char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                snprintf(d->msg, sizeof d->msg, "%s: out of memory", path);
                                return -1;
                        }
                        buf = nb;
                }
                n = fread(buf + len, 1, cap - len, f);
                len += n;
        } while (n > 0);
        if (ferror(f)) {
                int e = errno;
                free(buf);
                fclose(f);
                snprintf(d->msg, sizeof d->msg, "%s: cannot read: %s", path, strerror(e));
                return -1;
        }
        fclose(f);
        r = config_parse(path, buf ? buf : "", len, cfg, d);
        free(buf);
        return r;
}

void config_free(struct wb_config *cfg)
{
        if (!cfg->rules_embedded)
                free(cfg->rules);
        cfg->rules_embedded = false;
        cfg->rules = NULL;
        cfg->n_rules = 0;
        cfg->n_scenarios = 0;
}

int config_add_scenario(const struct wb_config *cfg, const char *name, size_t len,
                        const char *where, unsigned col, struct wb_rule *rules, unsigned *n,
                        unsigned max, struct wb_diag *d)
{
        const struct wb_scenario *sc = config_find(cfg, name, len);

        if (!sc) {
                char list[600] = "";
                size_t used = 0;
                for (unsigned i = 0; i < cfg->n_scenarios && used < sizeof list; i++)
                        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                                                 i ? ", " : "", cfg->scenarios[i].name);
                snprintf(d->msg, sizeof d->msg, "%s%u: unknown scenario '%.*s' (%s has: %s)", where,
                         col, (int)len, name, cfg->path, cfg->n_scenarios ? list : "none");
                return -1;
        }
        if (*n + sc->n_rules > max) {
                snprintf(d->msg, sizeof d->msg, "%s%u: too many rules (at most %u)", where, col,
                         max);
                return -1;
        }
        if (sc->n_rules) /* a file with no rule at all has no array to copy from */
                memcpy(&rules[*n], &rules_of(cfg)[sc->first_rule], sc->n_rules * sizeof *rules);
        *n += sc->n_rules;
        return 0;
}

size_t config_expand_pid(const char *pattern, const char *pid, size_t pid_len, char *out,
                         size_t size)
{
        size_t n = 0;

        for (const char *p = pattern; *p; p++) {
                const char *piece = p;
                size_t len = 1;
                if (p[0] == '%' && p[1] == 'p') {
                        piece = pid;
                        len = pid_len;
                        p++;
                }
                for (size_t i = 0; i < len; i++, n++)
                        if (n + 1 < size)
                                out[n] = piece[i];
        }
        if (size)
                out[n < size ? n : size - 1] = '\0';
        return n;
}

int config_absolute_path(const char *path, char *out, size_t size, struct wb_diag *d,
                         const char *var)
{
        size_t n;
        if (path[0] == '/') {
                n = strlen(path);
                if (n >= size)
                        goto long_path;
                memcpy(out, path, n + 1);
                return 0;
        }
        if (!getcwd(out, size))
                goto long_path;
        n = strlen(out);
        if (n + 1 + strlen(path) >= size)
                goto long_path;
        out[n] = '/';
        memcpy(out + n + 1, path, strlen(path) + 1);
        return 0;
long_path:
        snprintf(d->msg, sizeof d->msg, "%s:1: path too long: %s", var, path);
        return -1;
}

/* An unsigned decimal variable; def when unset. */
static int env_u64(const char *var, uint64_t def, uint64_t *out, struct wb_diag *d)
{
        const char *v = getenv(var);
        uint64_t x = 0;

        *out = def;
        if (!v || !*v)
                return 0; /* empty counts as unset, as for the other variables */
        for (const char *c = v; *c; c++) {
                if (*c < '0' || *c > '9' || x > (UINT64_MAX - (uint64_t)(*c - '0')) / 10)
                        goto bad;
                x = x * 10 + (uint64_t)(*c - '0');
        }
        *out = x;
        return 0;
bad:
        snprintf(d->msg, sizeof d->msg, "%s:1: '%s' is not an unsigned integer", var, v);
        return -1;
}

int config_settings(struct wb_settings *s, struct wb_diag *d)
{
        const char *dis;

        memset(s, 0, sizeof *s);
        s->config = getenv("WOULDBLOCK_CONFIG");
        s->scenarios = getenv("WOULDBLOCK_SCENARIO");
        s->rules = getenv("WOULDBLOCK_RULES");
        s->log = getenv("WOULDBLOCK_LOG");
        s->report = getenv("WOULDBLOCK_REPORT");
        s->record = getenv("WOULDBLOCK_RECORD");
        if (s->config && !*s->config)
                s->config = NULL;
        if (s->scenarios && !*s->scenarios)
                s->scenarios = NULL;
        if (s->log && !*s->log)
                s->log = NULL;
        if (s->report && !*s->report)
                s->report = NULL;
        dis = getenv("WOULDBLOCK_DISABLE");
        if (dis && *dis && strcmp(dis, "0") != 0) {
                if (strcmp(dis, "1") != 0) {
                        snprintf(d->msg, sizeof d->msg,
                                 "WOULDBLOCK_DISABLE:1: expected 1 or 0, got '%s'", dis);
                        return -1;
                }
                s->disabled = true;
        }
        if (env_u64("WOULDBLOCK_SEED", 1, &s->seed, d) ||
            env_u64("WOULDBLOCK_SPIN_LIMIT", 1000, &s->spin_limit, d))
                return -1;
        return 0;
}

/* The next name of the comma-separated list at *p, blanks trimmed (it may
 * be empty); false past the end. */
static bool next_name(const char **p, const char **name, size_t *len)
{
        const char *comma, *t = *p;
        size_t n;

        if (!t)
                return false;
        comma = strchr(t, ',');
        n = comma ? (size_t)(comma - t) : strlen(t);
        while (n && is_blank(*t))
                t++, n--;
        while (n && is_blank(t[n - 1]))
                n--;
        *name = t;
        *len = n;
        *p = comma ? comma + 1 : NULL;
        return true;
}

static int add_scenarios(const struct wb_config *cfg, const char *list, struct wb_rule *rules,
                         unsigned *n, struct wb_diag *d)
{
        const char *p = list, *t;
        size_t tl;

        while (next_name(&p, &t, &tl))
                if (tl && config_add_scenario(cfg, t, tl, "WOULDBLOCK_SCENARIO:",
                                              (unsigned)(t - list) + 1, rules, n, WB_MAX_RULES, d))
                        return -1;
        return 0;
}

/* Are the listed scenarios' rules one run of cfg's, in the list's order?
 * Then *rules and *n are that run. Not when a name is unknown or there
 * are too many rules: copying them says what is wrong. */
static bool one_run(const struct wb_config *cfg, const char *list, const struct wb_rule **rules,
                    unsigned *n)
{
        const char *p = list, *t;
        size_t tl;
        unsigned first = 0, count = 0;

        while (next_name(&p, &t, &tl)) {
                const struct wb_scenario *sc = tl ? config_find(cfg, t, tl) : NULL;
                if (tl && !sc)
                        return false;
                if (!sc || !sc->n_rules)
                        continue;
                if (count && sc->first_rule != first + count)
                        return false;
                if (!count)
                        first = sc->first_rule;
                count += sc->n_rules;
        }
        if (count > WB_MAX_RULES)
                return false;
        *rules = count ? rules_of(cfg) + first : *rules;
        *n = count;
        return true;
}

static int resolve(const struct wb_settings *s, struct wb_config *cfg, struct wb_rule *rules,
                   unsigned *n, struct wb_diag *d)
{
        *n = 0;
        /* empty: the header only (the scenario table is large; nothing reads
         * past n_scenarios) */
        cfg->path[0] = '\0';
        cfg->n_scenarios = cfg->n_rules = 0;
        cfg->rules = NULL;
        cfg->rules_embedded = false;
        if ((s->config || s->scenarios) && config_load(s->config, cfg, d))
                return -1;
        if (s->scenarios && add_scenarios(cfg, s->scenarios, rules, n, d))
                return -1;
        if (s->rules && rule_parse_list(s->rules, "WOULDBLOCK_RULES", rules, n, WB_MAX_RULES, d))
                return -1;
        return 0;
}

int config_resolve(const struct wb_settings *s, struct wb_config *cfg, struct wb_rule *rules,
                   unsigned *n, struct wb_diag *d)
{
        if (resolve(s, cfg, rules, n, d)) {
                config_free(cfg);
                return -1;
        }
        return 0;
}

int config_open(const char *path, struct wb_config *storage, const struct wb_config **cfg,
                struct wb_diag *d)
{
        if (!path && &wb_embedded_parsed) {
                *cfg = &wb_embedded_parsed.cfg;
                return 0;
        }
        if (config_load(path, storage, d))
                return -1;
        *cfg = storage;
        return 0;
}

int config_resolve_shared(const struct wb_settings *s, struct wb_config *storage,
                          const struct wb_config **cfg, struct wb_rule *buf,
                          const struct wb_rule **rules, unsigned *n, struct wb_diag *d)
{
        *cfg = NULL;
        *rules = buf;
        *n = 0;
        if ((s->config || s->scenarios) && config_open(s->config, storage, cfg, d))
                return -1;
        if (s->scenarios && !s->rules && one_run(*cfg, s->scenarios, rules, n))
                return 0;
        if ((s->scenarios && add_scenarios(*cfg, s->scenarios, buf, n, d)) ||
            (s->rules && rule_parse_list(s->rules, "WOULDBLOCK_RULES", buf, n, WB_MAX_RULES, d))) {
                if (*cfg == storage)
                        config_free(storage);
                *cfg = NULL;
                return -1;
        }
        return 0;
}
