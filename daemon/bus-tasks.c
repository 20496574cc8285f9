/* SPDX-License-Identifier: MIT */
/* bus-tasks: reads a job's a(ss) task list from a message, shared by SubmitJob and AddTasks. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-job.h"

/* Reads the a(ss) array, counting as it goes so a huge job is refused before it is all copied. */
int bus_read_tasks(sd_bus_message *message, size_t limit, unsigned job_limit, TaskSpec **ret, size_t *ret_n,
                   sd_bus_error *error) {
        TaskSpec *tasks = NULL;
        size_t n = 0, allocated = 0;
        const char *url, *filename;
        int r;

        r = sd_bus_message_enter_container(message, 'a', "(ss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(message, "(ss)", &url, &filename)) > 0) {
                if (n >= limit) {
                        task_specs_free(tasks, n);
                        return sd_bus_error_setf(error, ERROR_LIMIT_EXCEEDED,
                                                 "tasks: more than the limit of %u tasks per job", job_limit);
                }
                if (n >= allocated) {
                        size_t a = MAX(allocated * 2, (size_t) 64);
                        TaskSpec *t = realloc(tasks, a * sizeof(TaskSpec));

                        if (!t) {
                                task_specs_free(tasks, n);
                                return -ENOMEM;
                        }
                        tasks = t;
                        allocated = a;
                }
                tasks[n].url = strdup(url);
                tasks[n].filename = strdup(filename);
                n++;
                if (!tasks[n - 1].url || !tasks[n - 1].filename) {
                        task_specs_free(tasks, n);
                        return -ENOMEM;
                }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(message);
        if (r < 0) {
                task_specs_free(tasks, n);
                return r;
        }
        *ret = tasks;
        *ret_n = n;
        return 0;
}
