/* SPDX-License-Identifier: MIT */
/* job-watch: follows one job on the bus and delivers each of its results exactly once, in seq
 * order, from Completed signals and GetResults() replay, until the job has finished. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "job-result.h"

typedef struct JobWatch JobWatch;

/* Called once per result, in seq order. The strings in r are only valid during the call. */
typedef void (*job_watch_result_cb_t)(JobWatch *w, const JobResult *r, void *userdata);

struct JobWatch {
        sd_bus *bus;
        sd_event *event;
        sd_bus_slot *slot_job;
        sd_bus_slot *slot_properties;
        sd_bus_slot *slot_owner;
        sd_event_source *finish_timer;

        /* Signals that arrived before the job's path was known (during SubmitJob). */
        sd_bus_message **queue;
        size_t n_queue;

        uint64_t id;
        char *path;             /* NULL until attached */
        char *daemon;           /* unique bus name of the daemon that owns the job */

        uint32_t next_seq;      /* results 0 … next_seq-1 have been delivered */
        JobCounts counts;       /* of the delivered results */
        JobInfo info;           /* last known properties: State, Total, BytesDownloaded, … */
        char *final_state;      /* from Finished (or the final State), NULL before */
        bool finished;
        bool fetching;
        int error;              /* < 0: following the job failed (daemon gone, job removed…) */

        job_watch_result_cb_t on_result;
        void *userdata;
};

int job_watch_new(sd_bus *bus, sd_event *event, job_watch_result_cb_t cb, void *userdata, JobWatch **ret);
JobWatch *job_watch_free(JobWatch *w);
static inline void job_watch_freep(JobWatch **w) {
        if (*w)
                job_watch_free(*w);
}

/* Installs the signal matches. Call it before the job exists (before SubmitJob), so that no
 * signal of the job can be missed; signals are queued until job_watch_attach(). */
int job_watch_subscribe(JobWatch *w);

/* Tells the watch which job to follow: replays the queued signals, reads the job's properties,
 * then catches up with GetResults() from the first result not delivered yet. When the job has
 * already finished this delivers every result and finishes at once. */
int job_watch_attach(JobWatch *w, uint64_t id, const char *path, const char *daemon);

/* Requests Job.Cancel() asynchronously; the job's final results arrive as usual. */
int job_watch_cancel(JobWatch *w);
