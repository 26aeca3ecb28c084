/* recording.h - what WOULDBLOCK_RECORD wrote (interfaces.md §2): the points
 * a run reached, their hits, and the injections it made.
 *
 *   process PID NAME
 *   point ID CALL FILTERS
 *   inject ID K ACTION
 *   hits ID N BLOCKING_N
 *
 * A point is named by "CALL FILTERS" (FILTERS ends with process=NAME), the
 * same in every process and every run of a deterministic program; IDs are
 * per process. Hits of one point in several processes are merged by
 * maximum: `when=K per=process` fires in each process that reaches hit K. */
#ifndef WB_RUNNER_RECORDING_H
#define WB_RUNNER_RECORDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rec_point {
        char *key;           /* "CALL FILTERS": the rule text that selects it */
        char *call;          /* CALL */
        char *filters;       /* FILTERS */
        uint64_t hits;       /* most hits in one process (0: killed before exit) */
        uint64_t blocking;   /* calls on blocking fds (not hits) */
        uint64_t max_inject; /* the largest K injected at it */
};

struct rec_inject {
        unsigned point; /* index into points */
        uint64_t k;
        char *action;
};

struct recording {
        struct rec_point *points;
        unsigned n_points;
        struct rec_inject *injects;
        unsigned n_injects;
        unsigned processes;
        unsigned bad_lines; /* lines it could not read (a line cut by a kill) */
};

/* Add one file's text (one or more processes) to rec. */
void recording_parse(struct recording *rec, const char *text, size_t len);
/* Add every file in dir whose name starts with prefix. */
void recording_read_dir(struct recording *rec, const char *dir, const char *prefix);
/* Points sorted by key (a deterministic order; injections follow). */
void recording_sort(struct recording *rec);
int recording_find(const struct recording *rec, const char *key); /* -1: absent */
void recording_free(struct recording *rec);

/* The value of KEY= in a point's FILTERS, into out ("" if absent). */
void filter_value(const char *filters, const char *key, char *out, size_t size);

#endif
