/* SPDX-License-Identifier: MIT */
/* task-spec: checks a job's (URL, file name) list before anything is created, deriving the empty file
 * names from the URLs and refusing duplicate ones. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fname-util.h"
#include "url-util.h"
#include "job.h"

void task_specs_free(TaskSpec *tasks, size_t n) {
        if (!tasks)
                return;
        for (size_t i = 0; i < n; i++) {
                free(tasks[i].url);
                free(tasks[i].filename);
        }
        free(tasks);
}

static int fail(size_t index, size_t *ret_index, char **ret_reason, const char *fmt, ...) _printf_(4, 5);
static int fail(size_t index, size_t *ret_index, char **ret_reason, const char *fmt, ...) {
        va_list ap;

        *ret_index = index;
        va_start(ap, fmt);
        if (vasprintf(ret_reason, fmt, ap) < 0)
                *ret_reason = NULL;
        va_end(ap);
        return *ret_reason ? -EINVAL : -ENOMEM;
}

static const TaskSpec *sort_base;

static int compare_by_filename(const void *a, const void *b) {
        uint32_t i = *(const uint32_t *) a, k = *(const uint32_t *) b;
        int c = strcmp(sort_base[i].filename, sort_base[k].filename);

        return c != 0 ? c : (i > k) - (i < k);
}

int task_specs_prepare(TaskSpec *tasks, size_t n, size_t first_index, size_t *ret_index, char **ret_reason) {
        _cleanup_free_ uint32_t *order = NULL;

        *ret_reason = NULL;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *url_reason = NULL;
                const char *reason;

                if (url_check_http(tasks[i].url, &url_reason) < 0)
                        return url_reason ? fail(first_index + i, ret_index, ret_reason, "%s", url_reason) : -ENOMEM;

                if (!tasks[i].filename || !tasks[i].filename[0]) {
                        char *derived = NULL;
                        int r;

                        /* Out of memory it gives no reason. */
                        r = filename_from_url(tasks[i].url, &derived, &reason);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return fail(first_index + i, ret_index, ret_reason, "cannot derive a file name from \"%.*s%s\": %s",
                                            URL_QUOTE_LENGTH(tasks[i].url), reason);
                        free(tasks[i].filename);
                        tasks[i].filename = derived;
                } else if ((reason = filename_invalid_reason(tasks[i].filename)))
                        return fail(first_index + i, ret_index, ret_reason, "invalid file name \"%s\": %s", tasks[i].filename, reason);
        }

        /* Two tasks writing one file would race; find duplicates by sorting indices by name. */
        order = malloc(n * sizeof(uint32_t));
        if (!order)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                order[i] = (uint32_t) i;
        sort_base = tasks;
        qsort(order, n, sizeof(uint32_t), compare_by_filename);
        sort_base = NULL;
        for (size_t i = 1; i < n; i++)
                if (strcmp(tasks[order[i - 1]].filename, tasks[order[i]].filename) == 0)
                        return fail(first_index + order[i], ret_index, ret_reason,
                                    "file name \"%s\" is already used by task %zu", tasks[order[i]].filename,
                                    first_index + order[i - 1]);
        return 0;
}
