/* SPDX-License-Identifier: MIT */
/* task-list: the (URL, file name) pairs of one job, from arguments or from "URL [NAME]" lines,
 * and where each came from, so that a complaint about task N can name the line. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fname-util.h"
#include "macro.h"
#include "task-list.h"
#include "utf8-util.h"

void task_list_done(TaskList *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->tasks[i].url);
                free(l->tasks[i].filename);
        }
        free(l->tasks);
        free(l->lines);
        *l = (TaskList) {};
}

int task_list_add(TaskList *l, const char *url, const char *filename) {
        _cleanup_free_ char *u = NULL, *f = NULL;

        if (!url || !*url)
                return -EINVAL;

        if (l->n >= l->allocated) {
                size_t n = MAX(l->allocated * 2, (size_t) 16);
                Task *t;
                uint32_t *lines;

                /* Each array is kept when the other fails: only "allocated" must not grow then. */
                t = reallocarray(l->tasks, n, sizeof(Task));
                if (!t)
                        return -ENOMEM;
                l->tasks = t;
                lines = reallocarray(l->lines, n, sizeof(uint32_t));
                if (!lines)
                        return -ENOMEM;
                l->lines = lines;
                l->allocated = n;
        }

        u = strdup(url);
        if (!u)
                return -ENOMEM;
        if (filename) {
                f = strdup(filename);
                if (!f)
                        return -ENOMEM;
        }

        l->lines[l->n] = 0;
        l->tasks[l->n++] = (Task) { .url = TAKE_PTR(u), .filename = TAKE_PTR(f) };
        return 0;
}

int task_list_add_line(TaskList *l, const char *line) {
        _cleanup_free_ char *url = NULL;
        const char *p = line, *e, *name;
        size_t n;
        int r;

        while (isspace((unsigned char) *p))
                p++;
        if (*p == 0 || *p == '#')
                return 0;

        e = p;
        while (*e && !isspace((unsigned char) *e))
                e++;
        url = strndup(p, e - p);
        if (!url)
                return -ENOMEM;

        while (isspace((unsigned char) *e))
                e++;
        name = e;
        n = strlen(name);
        while (n > 0 && isspace((unsigned char) name[n - 1]))
                n--;

        if (n > 0) {
                _cleanup_free_ char *f = strndup(name, n);
                if (!f)
                        return -ENOMEM;
                r = task_list_add(l, url, f);
        } else
                r = task_list_add(l, url, NULL);
        if (r < 0)
                return r;

        return 1;
}

int task_list_read(TaskList *l, FILE *f, unsigned *ret_line) {
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        unsigned n = 0;
        int r;

        for (;;) {
                ssize_t k;

                errno = 0;
                k = getline(&line, &size, f);
                if (k < 0) {
                        if (ferror(f))
                                return errno > 0 ? -errno : -EIO;
                        break;
                }
                n++;

                if ((size_t) k != strlen(line)) {
                        if (ret_line)
                                *ret_line = n;
                        return -EBADMSG;        /* a NUL byte in the line */
                }

                r = task_list_add_line(l, line);
                if (r < 0) {
                        if (ret_line)
                                *ret_line = n;
                        return r;
                }
                if (r > 0)
                        l->lines[l->n - 1] = n;
        }

        return 0;
}

const char *task_invalid_reason(const Task *t) {
        if (!utf8_is_valid(t->url))
                return "URL is not valid UTF-8";
        if (t->filename)
                return filename_invalid_reason(t->filename);
        return NULL;
}

char *task_list_origin(const TaskList *l, size_t i) {
        char *s;
        int r;

        if (i < l->n && l->lines && l->lines[i] > 0)
                r = asprintf(&s, "%s:%u", l->input_name ?: "input", (unsigned) l->lines[i]);
        else
                r = asprintf(&s, "URL argument %zu", i + 1);
        return r < 0 ? NULL : s;
}

/* "task N" at s with N a task of l: its index and the end of the number. */
static bool parse_task_ref(const TaskList *l, const char *s, size_t *ret_index, const char **ret_end) {
        unsigned long long v;
        char *end;

        if (strncmp(s, "task ", 5) != 0 || !isdigit((unsigned char) s[5]))
                return false;
        errno = 0;
        v = strtoull(s + 5, &end, 10);
        if (errno != 0 || v >= l->n)
                return false;
        *ret_index = (size_t) v;
        *ret_end = end;
        return true;
}

char *task_list_map_message(const TaskList *l, const char *message) {
        _cleanup_free_ char *head = NULL, *tail = NULL;
        const char *body = message, *body_end, *end, *p;
        size_t i;
        char *s;

        /* "task N: reason": the task the daemon refused. */
        if (parse_task_ref(l, message, &i, &end) && *end == ':') {
                head = task_list_origin(l, i);
                if (!head)
                        return NULL;
                body = end;
        }

        /* "... is already used by task M" (a duplicate file name): the last reference, at the end,
         * so that a file name that happens to contain "by task 3" is left alone. */
        body_end = body + strlen(body);
        for (p = strstr(body, " by task "); p; p = strstr(p + 1, " by task "))
                if (parse_task_ref(l, p + 4, &i, &end) && *end == 0) {
                        tail = task_list_origin(l, i);
                        if (!tail)
                                return NULL;
                        body_end = p + 4;
                        break;
                }

        if (asprintf(&s, "%s%.*s%s", head ?: "", (int) (body_end - body), body, tail ?: "") < 0)
                return NULL;
        return s;
}

char *task_display_name(const Task *t) {
        const char *reason;
        char *name = NULL;

        if (t->filename)
                return strdup(t->filename);
        if (filename_from_url(t->url, &name, &reason) >= 0)
                return name;
        return strdup(t->url);
}
