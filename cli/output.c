/* SPDX-License-Identifier: MIT */
/* output: human output (tables, per-task lines, the seed's summary) and JSON output (json-c). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "output.h"

#define ANSI_GREEN "\x1b[0;32m"
#define ANSI_YELLOW "\x1b[0;33m"
#define ANSI_RED "\x1b[0;1;31m"
#define ANSI_NORMAL "\x1b[0m"

JsonMode json_mode_from_string(const char *s) {
        if (!s)
                return _JSON_MODE_INVALID;
        if (strcmp(s, "short") == 0)
                return JSON_SHORT;
        if (strcmp(s, "pretty") == 0)
                return JSON_PRETTY;
        if (strcmp(s, "off") == 0)
                return JSON_OFF;
        return _JSON_MODE_INVALID;
}

int json_print(json_object *o, JsonMode mode, FILE *f) {
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE;
        const char *s;

        flags |= mode == JSON_PRETTY ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN;
        s = json_object_to_json_string_ext(o, flags);
        if (!s)
                return -ENOMEM;

        fputs(s, f);
        fputc('\n', f);
        return fflush(f) == 0 ? 0 : -errno;
}

void format_bytes(uint64_t n, char *buf, size_t size) {
        static const char suffixes[] = "KMGTPE";
        double v = (double) n;
        size_t i = 0;

        if (n < 1024) {
                (void) snprintf(buf, size, "%" PRIu64 "B", n);
                return;
        }

        v /= 1024;
        while (v >= 1024 && i + 1 < strlen(suffixes)) {
                v /= 1024;
                i++;
        }
        (void) snprintf(buf, size, "%.1f%c", v, suffixes[i]);
}

void format_age(uint64_t usec, char *buf, size_t size) {
        uint64_t s = usec / USEC_PER_SEC;

        if (s < 60)
                (void) snprintf(buf, size, "%" PRIu64 "s", s);
        else if (s < 3600)
                (void) snprintf(buf, size, "%" PRIu64 "min %" PRIu64 "s", s / 60, s % 60);
        else if (s < 86400)
                (void) snprintf(buf, size, "%" PRIu64 "h %" PRIu64 "min", s / 3600, s % 3600 / 60);
        else
                (void) snprintf(buf, size, "%" PRIu64 "d %" PRIu64 "h", s / 86400, s % 86400 / 3600);
}

bool colour_enabled(int fd) {
        const char *term = getenv("TERM");

        if (getenv("NO_COLOR"))
                return false;
        if (!term || strcmp(term, "dumb") == 0)
                return false;
        return isatty(fd);
}

char *output_result_line(const JobResult *r, const char *name, const char *url, bool colour) {
        _cleanup_free_ char *who = NULL, *cause = NULL;
        const char *on = "", *off = colour ? ANSI_NORMAL : "";
        char *line = NULL;
        int k;

        if (name)
                who = strdup(name);
        else if (asprintf(&who, "task #%" PRIu32, r->index) < 0)
                who = NULL;
        if (!who)
                return NULL;

        switch (result_status_from_string(r->status)) {

        case RESULT_OK:
                if (colour)
                        on = ANSI_GREEN;
                k = asprintf(&line, "%s %sok%s", r->filename && *r->filename ? r->filename : who, on, off);
                break;

        case RESULT_NOT_FOUND:
                if (colour)
                        on = ANSI_YELLOW;
                k = asprintf(&line, "%s %snot found%s", who, on, off);
                break;

        case RESULT_CANCELLED:
                if (colour)
                        on = ANSI_YELLOW;
                k = asprintf(&line, "%s %scancelled%s", who, on, off);
                break;

        default:
                if (colour)
                        on = ANSI_RED;
                if (r->error && *r->error)
                        cause = strdup(r->error);
                else if (r->http_code > 0) {
                        if (asprintf(&cause, "HTTP %" PRIu32, r->http_code) < 0)
                                cause = NULL;
                } else
                        cause = strdup(r->status && *r->status ? r->status : "unknown error");
                if (!cause)
                        return NULL;
                k = asprintf(&line, "%s***%s Error for %s: %s", on, off, url ?: who, cause);
                break;
        }

        return k < 0 ? NULL : line;
}

static void print_count(FILE *f, uint32_t n, const char *one, const char *many) {
        fprintf(f, "%" PRIu32 " %s.\n", n, n == 1 ? one : many);
}

int output_summary(FILE *f, const JobCounts *c, uint64_t elapsed_usec) {
        fputs("--------------------\n", f);
        print_count(f, c->ok, "downloaded", "downloaded");
        if (c->not_found > 0)
                print_count(f, c->not_found, "not found", "not found");
        if (c->error > 0)
                print_count(f, c->error, "error", "errors");
        if (c->cancelled > 0)
                print_count(f, c->cancelled, "cancelled", "cancelled");
        fprintf(f, "Elapsed time: %.2fs\n", (double) elapsed_usec / USEC_PER_SEC);

        return fflush(f) == 0 ? 0 : -errno;
}

json_object *result_to_json(const JobResult *r, const char *url) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;

        if (json_object_object_add(o, "seq", json_object_new_uint64(r->seq)) < 0 ||
            json_object_object_add(o, "index", json_object_new_uint64(r->index)) < 0 ||
            (url && json_object_object_add(o, "url", json_object_new_string(url)) < 0) ||
            json_object_object_add(o, "status", json_object_new_string(r->status ?: "")) < 0 ||
            json_object_object_add(o, "http_code", json_object_new_uint64(r->http_code)) < 0 ||
            json_object_object_add(o, "bytes", json_object_new_uint64(r->bytes)) < 0 ||
            json_object_object_add(o, "filename", json_object_new_string(r->filename ?: "")) < 0 ||
            json_object_object_add(o, "error", json_object_new_string(r->error ?: "")) < 0) {
                json_object_put(o);
                return NULL;
        }

        return o;
}

struct Table {
        size_t n_columns;
        char **cells;           /* n_columns * (n_rows + 1), the header first */
        size_t n_rows;
        bool *right;
};

Table *table_new(size_t n_columns, const char *const *headers) {
        _cleanup_(table_freep) Table *t = NULL;

        t = calloc(1, sizeof(Table));
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->right = calloc(n_columns, sizeof(bool));
        if (!t->right)
                return NULL;
        if (table_add_row(t, headers) < 0)
                return NULL;
        t->n_rows = 0;          /* the header is row -1 */

        return TAKE_PTR(t);
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < (t->n_rows + 1) * t->n_columns && t->cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->right);
        free(t);
        return NULL;
}

void table_align_right(Table *t, size_t column) {
        if (column < t->n_columns)
                t->right[column] = true;
}

size_t table_n_rows(const Table *t) {
        return t->n_rows;
}

int table_add_row(Table *t, const char *const *cells) {
        /* The header (added by table_new() with n_rows == 0 and no cells yet) occupies slot 0. */
        size_t slot = t->cells ? t->n_rows + 1 : 0;
        char **c;

        c = reallocarray(t->cells, (slot + 1) * t->n_columns, sizeof(char *));
        if (!c)
                return -ENOMEM;
        t->cells = c;

        for (size_t i = 0; i < t->n_columns; i++) {
                const char *s = cells[i] && *cells[i] ? cells[i] : "-";

                c[slot * t->n_columns + i] = strdup(s);
                if (!c[slot * t->n_columns + i]) {
                        while (i > 0)
                                free(c[slot * t->n_columns + --i]);
                        /* table_free() frees the header's slot even when adding it failed here
                         * (table_new()): leave no freed or unset pointers in it. */
                        memset(c + slot * t->n_columns, 0, t->n_columns * sizeof(char *));
                        return -ENOMEM;
                }
        }
        if (slot > 0)
                t->n_rows++;
        return 0;
}

size_t utf8_width(const char *s) {
        size_t n = 0;

        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if ((*p & 0xC0) != 0x80)
                        n++;
        return n;
}

int table_print(const Table *t, FILE *f, bool header) {
        _cleanup_free_ size_t *width = NULL;

        width = calloc(t->n_columns, sizeof(size_t));
        if (!width)
                return -ENOMEM;

        for (size_t row = header ? 0 : 1; row <= t->n_rows; row++)
                for (size_t i = 0; i < t->n_columns; i++)
                        width[i] = MAX(width[i], utf8_width(t->cells[row * t->n_columns + i]));

        for (size_t row = header ? 0 : 1; row <= t->n_rows; row++) {
                for (size_t i = 0; i < t->n_columns; i++) {
                        const char *s = t->cells[row * t->n_columns + i];
                        size_t pad = width[i] - utf8_width(s);
                        bool last = i + 1 == t->n_columns;

                        if (i > 0)
                                fputc(' ', f);
                        if (t->right[i])
                                fprintf(f, "%*s%s", (int) pad, "", s);
                        else if (last)
                                fputs(s, f);
                        else
                                fprintf(f, "%s%*s", s, (int) pad, "");
                }
                fputc('\n', f);
        }

        return fflush(f) == 0 ? 0 : -errno;
}

static int json_add_u64(json_object *o, const char *key, uint64_t v) {
        return json_object_object_add(o, key, json_object_new_uint64(v));
}

static int json_add_str(json_object *o, const char *key, const char *v) {
        return json_object_object_add(o, key, json_object_new_string(v ?: ""));
}

json_object *job_info_to_json(const JobInfo *i, bool details) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;

        if (json_add_u64(o, "id", i->id) < 0 ||
            json_add_str(o, "path", i->path) < 0 ||
            json_add_str(o, "name", i->name) < 0 ||
            json_add_str(o, "state", i->state) < 0 ||
            json_add_u64(o, "total", i->counts.total) < 0 ||
            json_add_u64(o, "done", job_counts_done(&i->counts)) < 0 ||
            json_add_u64(o, "ok", i->counts.ok) < 0 ||
            json_add_u64(o, "not_found", i->counts.not_found) < 0 ||
            json_add_u64(o, "error", i->counts.error) < 0 ||
            json_add_u64(o, "cancelled", i->counts.cancelled) < 0 ||
            json_add_u64(o, "created_usec", i->created_usec) < 0)
                goto fail;

        if (details &&
            (json_add_u64(o, "owner", i->owner) < 0 ||
             json_add_u64(o, "bytes_downloaded", i->bytes) < 0 ||
             json_add_u64(o, "concurrency", i->concurrency) < 0 ||
             json_add_u64(o, "finished_usec", i->finished_usec) < 0))
                goto fail;

        return o;

fail:
        json_object_put(o);
        return NULL;
}
