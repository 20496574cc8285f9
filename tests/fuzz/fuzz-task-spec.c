/* SPDX-License-Identifier: MIT */
/* fuzz-task-spec: the daemon's check of a submitted a(ss) task list, task_specs_prepare().
 *
 * Input: one task per '\n'-separated line, "URL" or "URL\tNAME"; the tasks are what a D-Bus
 * client can send (both strings valid UTF-8 — sd-bus refuses anything else), so inputs that are
 * not are skipped. At most 64 tasks.
 *
 * Invariants:
 *   S1  success => every file name is safe (see fuzz-fname-util's reference) and passes
 *       filename_is_valid(), names are pairwise distinct, every URL passes url_check_http(), and
 *       a derived name equals filename_from_url(url)
 *   S2  -EINVAL => a reason, valid UTF-8 (it becomes a D-Bus error message), and the index is the
 *       first task that is invalid on its own, or else a task whose name an earlier task uses
 *   S3  success <=> no task is invalid on its own and no two names are equal */
#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fname-util.h"
#include "job.h"
#include "url-util.h"
#include "utf8-util.h"

#define MAX_TASKS 64

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return 0;
}

/* Whether task t is acceptable on its own; its final name in *ret_name (allocated) if so. */
static bool task_ok(const TaskSpec *t, char **ret_name) {
        char *reason = NULL, *name = NULL;
        const char *r2;
        bool ok;

        ok = url_check_http(t->url, &reason) == 0;
        free(reason);
        if (!ok)
                return false;
        if (t->filename[0] == 0) {
                if (filename_from_url(t->url, &name, &r2) < 0)
                        return false;
        } else {
                if (!filename_is_valid(t->filename))
                        return false;
                name = strdup(t->filename);
        }
        *ret_name = name;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        TaskSpec *tasks, *copy;
        char *names[MAX_TASKS] = {}, *buf, *reason = NULL;
        size_t n = 0, first_index, bad = SIZE_MAX, first_bad = SIZE_MAX;
        bool any_dup = false;
        int r;

        if (size < 1 || memchr(data, 0, size))
                return -1;
        first_index = data[0] & 1 ? 1000 : 0;
        buf = strndup((const char *) data + 1, size - 1);
        tasks = calloc(MAX_TASKS, sizeof(TaskSpec));
        copy = calloc(MAX_TASKS, sizeof(TaskSpec));
        for (char *line = buf, *next; line && n < MAX_TASKS; line = next) {
                char *tab;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                tab = strchr(line, '\t');
                if (tab)
                        *tab++ = 0;
                if (!utf8_is_valid(line) || (tab && !utf8_is_valid(tab)))
                        goto skip;
                tasks[n].url = strdup(line);
                tasks[n].filename = strdup(tab ?: "");
                copy[n].url = tasks[n].url;
                copy[n].filename = strdup(tasks[n].filename);
                n++;
        }
        if (n == 0)
                goto skip;

        /* Reference verdict. */
        for (size_t i = 0; i < n; i++)
                if (!task_ok(copy + i, names + i)) {
                        first_bad = i;
                        break;
                }
        if (first_bad == SIZE_MAX)
                for (size_t i = 0; i < n; i++)
                        for (size_t k = 0; k < i; k++)
                                if (strcmp(names[i], names[k]) == 0)
                                        any_dup = true;

        r = task_specs_prepare(tasks, n, first_index, &bad, &reason);
        CHECK(r == 0 || r == -EINVAL, "S2 r=%d", r);
        CHECK((r == 0) == (first_bad == SIZE_MAX && !any_dup), "S3 r=%d, reference: first bad %zu, duplicate %d", r,
              first_bad, any_dup);
        if (r == 0) {
                CHECK(!reason, "S1 reason on success");
                for (size_t i = 0; i < n; i++) {
                        CHECK(filename_is_valid(tasks[i].filename), "S1 invalid name \"%s\"", tasks[i].filename);
                        CHECK(strcmp(tasks[i].filename, names[i]) == 0, "S1 name \"%s\", expected \"%s\"",
                              tasks[i].filename, names[i]);
                }
        } else {
                CHECK(reason && utf8_is_valid(reason), "S2 reason missing or not valid UTF-8");
                CHECK(bad >= first_index && bad < first_index + n, "S2 index %zu out of range", bad);
                if (first_bad != SIZE_MAX)
                        CHECK(bad == first_index + first_bad, "S2 index %zu, expected %zu", bad, first_index + first_bad);
                else {
                        bool earlier = false;
                        for (size_t k = 0; k < bad - first_index; k++)
                                earlier |= strcmp(names[k], names[bad - first_index]) == 0;
                        CHECK(earlier, "S2 task %zu named as a duplicate of nothing earlier", bad);
                }
        }

        free(reason);
skip:
        for (size_t i = 0; i < n; i++) {
                free(names[i]);
                free(copy[i].filename);
        }
        task_specs_free(tasks, n);
        free(copy);
        free(buf);
        return 0;
}
