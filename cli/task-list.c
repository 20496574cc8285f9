/* SPDX-License-Identifier: MIT */
/* task-list: the (URL, file name) pairs of one job, from arguments or from "URL [NAME]" lines. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fname-util.h"
#include "macro.h"
#include "task-list.h"

void task_list_done(TaskList *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->tasks[i].url);
                free(l->tasks[i].filename);
        }
        free(l->tasks);
        *l = (TaskList) {};
}

int task_list_add(TaskList *l, const char *url, const char *filename) {
        _cleanup_free_ char *u = NULL, *f = NULL;

        if (!url || !*url)
                return -EINVAL;

        if (l->n >= l->allocated) {
                size_t n = MAX(l->allocated * 2, (size_t) 16);
                Task *t = reallocarray(l->tasks, n, sizeof(Task));
                if (!t)
                        return -ENOMEM;
                l->tasks = t;
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
        }

        return 0;
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
