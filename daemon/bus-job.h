/* SPDX-License-Identifier: MIT */
/* bus-job: one job as a D-Bus object — properties, Cancel/GetResults, GetTasks and AddTasks (the
 * extensions), and the Completed, Finished and PropertiesChanged signals, batched and coalesced. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "job.h"
#include "list.h"
#include "manager.h"

struct BusJob {
        ListLink link;                  /* on manager->jobs */
        Manager *manager;
        uint64_t id;
        char *path;
        char *name;
        uid_t owner;
        uint64_t created_usec;          /* CLOCK_REALTIME */
        uint64_t finished_usec;
        Job *job;
        /* Of an open job: the connections that submitted or added tasks. When all have left, nobody
         * can send the last AddTasks, so the job could never finish. */
        sd_bus_track *feeders;

        uint32_t n_signalled;           /* results already sent in Completed signals */
        sd_event_source *flush_timer;   /* batches Completed */
        sd_event_source *props_timer;   /* coalesces PropertiesChanged */
        sd_event_source *expire_timer;  /* removes the finished job */
        ListLink finished_link;         /* Manager.finished; off it once removed early */
};

extern const sd_bus_vtable bus_job_vtable[];

/* SubmitJob flag (an extension of API version 1): more tasks follow through Job.AddTasks. */
#define SUBMIT_JOB_MORE_TASKS UINT64_C(1)
/* AddTasks flag: still more tasks follow; without it the job takes no more. */
#define ADD_TASKS_MORE UINT64_C(1)

/* Takes ownership of tasks and dirfd on success, starts the job and announces it on the bus;
 * with open, the job takes more tasks through AddTasks until one without ADD_TASKS_MORE. */
int bus_job_new(BusJob **ret, Manager *m, TaskSpec *tasks, size_t n_tasks, int dirfd, const JobOptions *options,
                const char *name, uid_t owner, bool open);

/* Remembers the sender of a call that left the job open; the job is cancelled once every such
 * sender has left the bus. */
void bus_job_track_feeder(BusJob *bj, sd_bus_message *message);

/* Reads an a(ss) array of at most limit tasks; beyond, LimitExceeded citing job_limit. */
int bus_read_tasks(sd_bus_message *message, size_t limit, unsigned job_limit, TaskSpec **ret, size_t *ret_n,
                   sd_bus_error *error);
/* Removes the object from the bus (InterfacesRemoved) and frees it. The job must be finished. */
BusJob *bus_job_free(BusJob *bj);

/* AccessDenied unless the sender owns the job or is root (system bus only). */
int bus_job_check_access(BusJob *bj, sd_bus_message *message, sd_bus_error *error);
int bus_job_cancel(BusJob *bj, sd_bus_message *message, sd_bus_error *error);

int bus_job_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                        sd_bus_error *error);
int bus_job_node_enumerator(sd_bus *bus, const char *prefix, void *userdata, char ***nodes, sd_bus_error *error);
