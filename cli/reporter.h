/* SPDX-License-Identifier: MIT */
/* reporter: shows a job's results while they arrive (progress bar, spinner or -v lines) and the
 * final report (the seed's summary, or one JSON document). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "job-watch.h"
#include "output.h"
#include "task-list.h"

typedef struct Reporter {
        const TaskList *tasks;          /* the submitted tasks, NULL when watching a job */
        const JobWatch *watch;
        bool verbose;                   /* a line per result */
        bool progress;                  /* the bar on stderr */
        bool quiet;
        bool colour;                    /* ANSI colour on stdout */
        bool unicode;
        JsonMode json;
        json_object *results;           /* JSON mode: every result, in seq order */
        uint64_t start_usec;            /* CLOCK_MONOTONIC origin of the elapsed time */
        unsigned frame;
        bool bar_shown;
        int output_error;               /* < 0: writing to stdout failed; nothing more is written */
        sd_event_source *ticker;
} Reporter;

/* Decides what to show from the options and whether stdout/stderr are terminals. */
int reporter_init(Reporter *rep, const TaskList *tasks, bool verbose, bool quiet, JsonMode json);
void reporter_done(Reporter *rep);

/* The JobWatch result callback (userdata is the Reporter). A failed write to stdout is left in
 * output_error for the caller to act on. */
void reporter_on_result(JobWatch *w, const JobResult *res, void *userdata);

/* Starts redrawing the bar ten times a second (only when the bar is on). */
int reporter_start(Reporter *rep, sd_event *event);

/* Erases the bar so that a message can be written to stderr; the next tick redraws it. */
void reporter_clear(Reporter *rep);
/* Draws the bar a last time and ends its line, like tqdm's leave=True. */
void reporter_stop(Reporter *rep);

/* Prints the summary (or the JSON document) of a finished or interrupted job. */
int reporter_finish(Reporter *rep, const JobWatch *w, uint64_t elapsed_usec);
