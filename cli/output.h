/* SPDX-License-Identifier: MIT */
/* output: human output (tables, per-task lines, the seed's summary) and JSON output (json-c). */
#pragma once

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "job-result.h"

typedef enum JsonMode {
        JSON_OFF,
        JSON_SHORT,
        JSON_PRETTY,
        _JSON_MODE_MAX,
        _JSON_MODE_INVALID = -EINVAL,
} JsonMode;

JsonMode json_mode_from_string(const char *s);

/* Prints o as one JSON document and a newline. */
int json_print(json_object *o, JsonMode mode, FILE *f);

/* Display width of a UTF-8 string in which every code point takes one column. */
size_t utf8_width(const char *s);

/* "512B", "1.2K", "3.4M", "5.0G" (powers of 1024). */
void format_bytes(uint64_t n, char *buf, size_t size);

/* A compact age with its two largest units: "12s", "3min 4s", "2h 5min", "3d 4h". */
void format_age(uint64_t usec, char *buf, size_t size);

/* Whether to use ANSI colour on the stream with this fd: a terminal, $NO_COLOR unset, $TERM not dumb. */
bool colour_enabled(int fd);

/* The -v line for one result, the seed's verbose mode:
 *   "<name> ok", "<name> not found", "*** Error for <url>: <cause>", "<name> cancelled".
 * name is the file name of an ok result, else the file name the task would have created; NULL
 * (with url NULL) when the task is not known, as for "watch": then "task #<index>" stands in. */
char *output_result_line(const JobResult *r, const char *name, const char *url, bool colour);

/* The seed's final report: dashes, "N downloaded.", "N not found.", "N errors.", "N cancelled."
 * (the last three only when not zero), "Elapsed time: X.XXs". */
int output_summary(FILE *f, const JobCounts *c, uint64_t elapsed_usec);

/* {"seq","index","status","http_code","bytes","filename","error"}, plus "url" when known. */
json_object *result_to_json(const JobResult *r, const char *url);

/* A plain text table: header line, rows, columns separated by one space and padded. */
typedef struct Table Table;

Table *table_new(size_t n_columns, const char *const *headers);
Table *table_free(Table *t);
static inline void table_freep(Table **t) {
        if (*t)
                table_free(*t);
}

/* Right-aligns the column (numbers). */
void table_align_right(Table *t, size_t column);
/* Adds a row of n_columns cells; a NULL or empty cell is shown as "-". */
int table_add_row(Table *t, const char *const *cells);
size_t table_n_rows(const Table *t);
int table_print(const Table *t, FILE *f, bool header);

/* A job as JSON: the ListJobs() fields and "created_usec"; with details every property. */
json_object *job_info_to_json(const JobInfo *i, bool details);
