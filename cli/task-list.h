/* SPDX-License-Identifier: MIT */
/* task-list: the (URL, file name) pairs of one job, from arguments or from "URL [NAME]" lines,
 * and where each came from, so that a complaint about task N can name the line. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct Task {
        char *url;
        char *filename;         /* NULL: the daemon derives it from the URL */
} Task;

/* A job may have a million tasks: the origin of each is one uint32, not a string. Command-line
 * URLs come first (line 0, numbered by their index), then the lines of the one input file. */
typedef struct TaskList {
        Task *tasks;
        uint32_t *lines;        /* per task: its 1-based input line, 0 for a command-line URL */
        size_t n;
        size_t allocated;
        const char *input_name; /* the input file as messages name it; borrowed, NULL if none */
} TaskList;

void task_list_done(TaskList *l);

int task_list_add(TaskList *l, const char *url, const char *filename);

/* Parses one input line: leading/trailing white space is ignored, empty lines and lines starting
 * with '#' are skipped (returns 0), otherwise the first word is the URL and the rest of the line,
 * if any, the file name (which may contain spaces). Returns 1 when a task was added. */
int task_list_add_line(TaskList *l, const char *line);

/* Reads every line of f, recording the line number of each task. A line with a NUL byte gives
 * -EBADMSG with *ret_line set to its 1-based number; a read error gives -errno. */
int task_list_read(TaskList *l, FILE *f, unsigned *ret_line);

/* Why the daemon could not take the task as a D-Bus string pair, or NULL: the URL must be valid
 * UTF-8 and an explicit file name must pass filename_invalid_reason(). The daemon checks the
 * rest (URL syntax, scheme, derived names, duplicates). */
const char *task_invalid_reason(const Task *t);

/* Where task i came from, for messages: "f.txt:6" (input_name:line) or "URL argument 2". Allocated
 * (an input path has no useful bound); NULL when out of memory. */
char *task_list_origin(const TaskList *l, size_t i);

/* The daemon's InvalidArgs messages name tasks by their index in the job ("task 2: invalid URL
 * ...", "... is already used by task 0"). Returns a copy of message with those indices replaced by
 * task_list_origin(), or an unchanged copy when it names no task of l. NULL when out of memory. */
char *task_list_map_message(const TaskList *l, const char *message);

/* The file name the task creates (or would have created): its own name, else the one derived
 * from the URL like the daemon does, else the URL itself. Never NULL unless out of memory. */
char *task_display_name(const Task *t);
