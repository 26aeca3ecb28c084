/* recording.c - see recording.h. */
#include "recording.h"

#include "util.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int recording_find(const struct recording *rec, const char *key)
{
        for (unsigned i = 0; i < rec->n_points; i++)
                if (strcmp(rec->points[i].key, key) == 0)
                        return (int)i;
        return -1;
}

static unsigned add_point(struct recording *rec, const char *call, size_t call_len,
                          const char *filters, size_t filters_len)
{
        char *key = format("%.*s %.*s", (int)call_len, call, (int)filters_len, filters);
        int found = recording_find(rec, key);
        struct rec_point *p;

        if (found >= 0) {
                free(key);
                return (unsigned)found;
        }
        rec->points = xrealloc(rec->points, rec->n_points + 1, sizeof *rec->points);
        p = &rec->points[rec->n_points];
        memset(p, 0, sizeof *p);
        p->key = key;
        p->call = format("%.*s", (int)call_len, call);
        p->filters = format("%.*s", (int)filters_len, filters);
        return rec->n_points++;
}

static bool read_u64(const char **s, const char *end, uint64_t *out)
{
        const char *p = *s;
        uint64_t v = 0;

        if (p == end || *p < '0' || *p > '9')
                return false;
        while (p < end && *p >= '0' && *p <= '9') {
                if (v > (UINT64_MAX - 9) / 10)
                        return false;
                v = v * 10 + (uint64_t)(*p++ - '0');
        }
        if (p < end && *p != ' ')
                return false;
        *out = v;
        *s = p < end ? p + 1 : p;
        return true;
}

/* The per-process ID -> point index map of the process being read. */
struct id_map {
        unsigned *index;
        uint64_t size;
};

static bool map_set(struct id_map *m, uint64_t id, unsigned index)
{
        if (id == 0 || id > 1000000)
                return false;
        if (id >= m->size) {
                uint64_t old = m->size;
                m->size = id * 2;
                m->index = xrealloc(m->index, m->size, sizeof *m->index);
                for (uint64_t i = old; i < m->size; i++)
                        m->index[i] = UINT32_MAX;
        }
        m->index[id] = index;
        return true;
}

static bool map_get(const struct id_map *m, uint64_t id, unsigned *index)
{
        if (id >= m->size || m->index[id] == UINT32_MAX)
                return false;
        *index = m->index[id];
        return true;
}

/* One line, without its newline. False: not a line of the format. */
static bool parse_line(struct recording *rec, struct id_map *ids, const char *s, const char *end)
{
        size_t word = (size_t)(end - s), len;
        uint64_t id, k, n, blocking;
        unsigned index;

        for (const char *c = s; c < end; c++)
                if (*c == ' ') {
                        word = (size_t)(c - s);
                        break;
                }
#define IS(w) (word == strlen(w) && memcmp(s, w, word) == 0)
        if (IS("process")) {
                for (uint64_t i = 0; i < ids->size; i++)
                        ids->index[i] = UINT32_MAX;
                rec->processes++;
                return true;
        }
        bool point = IS("point"), inject = IS("inject"), hits = IS("hits");
#undef IS
        if ((!point && !inject && !hits) || word == (size_t)(end - s))
                return false;
        s += word + 1;
        if (!read_u64(&s, end, &id) || s >= end)
                return false;
        if (point) {
                len = strcspn(s, " ");
                if (len == 0 || s + len >= end)
                        return false; /* CALL, then FILTERS */
                return map_set(ids, id,
                               add_point(rec, s, len, s + len + 1, (size_t)(end - s - len - 1)));
        }
        if (!map_get(ids, id, &index))
                return false;
        if (hits) {
                if (!read_u64(&s, end, &n) || !read_u64(&s, end, &blocking) || s != end)
                        return false;
                struct rec_point *p = &rec->points[index];
                if (n > p->hits)
                        p->hits = n;
                if (blocking > p->blocking)
                        p->blocking = blocking;
                return true;
        }
        if (!read_u64(&s, end, &k) || k == 0 || s >= end)
                return false;
        rec->injects = xrealloc(rec->injects, rec->n_injects + 1, sizeof *rec->injects);
        rec->injects[rec->n_injects++] = (struct rec_inject){
            .point = index, .k = k, .action = format("%.*s", (int)(end - s), s)};
        if (k > rec->points[index].max_inject)
                rec->points[index].max_inject = k;
        return true;
}

void recording_parse(struct recording *rec, const char *text, size_t len)
{
        struct id_map ids = {0};
        const char *end = text + len;

        while (text < end) {
                const char *nl = memchr(text, '\n', (size_t)(end - text));
                if (!nl) { /* a last line without its newline: cut by a kill */
                        rec->bad_lines++;
                        break;
                }
                if (nl > text && !parse_line(rec, &ids, text, nl))
                        rec->bad_lines++;
                text = nl + 1;
        }
        free(ids.index);
}

void recording_read_dir(struct recording *rec, const char *dir, const char *prefix)
{
        struct dirent **names;
        int n = scandir(dir, &names, NULL, alphasort);

        for (int i = 0; i < n; i++) {
                if (strncmp(names[i]->d_name, prefix, strlen(prefix)) == 0) {
                        char *path = format("%s/%s", dir, names[i]->d_name);
                        size_t len;
                        char *text = read_whole_file(path, &len);
                        if (text)
                                recording_parse(rec, text, len);
                        free(text);
                        free(path);
                }
                free(names[i]);
        }
        if (n >= 0)
                free(names);
}

static int by_key(const void *a, const void *b)
{
        return strcmp(((const struct rec_point *)a)->key, ((const struct rec_point *)b)->key);
}

void recording_sort(struct recording *rec)
{
        if (rec->n_points == 0)
                return;
        unsigned *where = xcalloc(rec->n_points, sizeof *where);
        struct rec_point *old = xcalloc(rec->n_points, sizeof *old);

        memcpy(old, rec->points, rec->n_points * sizeof *old);
        qsort(rec->points, rec->n_points, sizeof *rec->points, by_key);
        for (unsigned i = 0; i < rec->n_points; i++)
                where[i] = (unsigned)recording_find(rec, old[i].key);
        for (unsigned i = 0; i < rec->n_injects; i++)
                rec->injects[i].point = where[rec->injects[i].point];
        free(old);
        free(where);
}

void recording_free(struct recording *rec)
{
        for (unsigned i = 0; i < rec->n_points; i++) {
                free(rec->points[i].key);
                free(rec->points[i].call);
                free(rec->points[i].filters);
        }
        for (unsigned i = 0; i < rec->n_injects; i++)
                free(rec->injects[i].action);
        free(rec->points);
        free(rec->injects);
        memset(rec, 0, sizeof *rec);
}

void filter_value(const char *filters, const char *key, char *out, size_t size)
{
        size_t klen = strlen(key);

        out[0] = '\0';
        for (const char *s = filters; *s;) {
                size_t len = strcspn(s, " ");
                if (len > klen && memcmp(s, key, klen) == 0 && s[klen] == '=') {
                        snprintf(out, size, "%.*s", (int)(len - klen - 1), s + klen + 1);
                        return;
                }
                s += len;
                s += strspn(s, " ");
        }
}
