/* SPDX-License-Identifier: MIT */
/* task-list: the (URL, file name) pairs of one job, from arguments or from "URL [NAME]" lines. */
#pragma once

#include <stddef.h>
#include <stdio.h>

typedef struct Task {
        char *url;
        char *filename;         /* NULL: the daemon derives it from the URL */
} Task;

typedef struct TaskList {
        Task *tasks;
        size_t n;
        size_t allocated;
} TaskList;

void task_list_done(TaskList *l);

int task_list_add(TaskList *l, const char *url, const char *filename);

/* Parses one input line: leading/trailing white space is ignored, empty lines and lines starting
 * with '#' are skipped (returns 0), otherwise the first word is the URL and the rest of the line,
 * if any, the file name (which may contain spaces). Returns 1 when a task was added. */
int task_list_add_line(TaskList *l, const char *line);

/* Reads every line of f. On a parse error *ret_line is the 1-based line number. */
int task_list_read(TaskList *l, FILE *f, unsigned *ret_line);

/* The file name the task creates (or would have created): its own name, else the one derived
 * from the URL like the daemon does, else the URL itself. Never NULL unless out of memory. */
char *task_display_name(const Task *t);
