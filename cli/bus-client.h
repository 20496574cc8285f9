/* SPDX-License-Identifier: MIT */
/* bus-client: connecting to asyncd and calling its io.asyncd1 API (the D-Bus contract, version 1). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "job-result.h"
#include "task-list.h"

#define ASYNCD_BUS_NAME "io.asyncd1"
#define ASYNCD_MANAGER_PATH "/io/asyncd1"
#define ASYNCD_MANAGER_INTERFACE "io.asyncd1.Manager"
#define ASYNCD_JOB_INTERFACE "io.asyncd1.Job"
#define ASYNCD_JOB_PATH_PREFIX "/io/asyncd1/job"
#define ASYNCD_RESULT_SIGNATURE "(uusutss)"
#define ASYNCD_ERROR_SHUTTING_DOWN "io.asyncd1.Error.ShuttingDown"

typedef enum BusTransport {
        BUS_TRANSPORT_SYSTEM,
        BUS_TRANSPORT_USER,
        BUS_TRANSPORT_ADDRESS,
} BusTransport;

/* "system bus", "user bus", "bus" (for an explicit address): for messages. */
const char *bus_transport_to_string(BusTransport t);

/* Connects as a bus client. address is only used with BUS_TRANSPORT_ADDRESS. */
int bus_connect(BusTransport transport, const char *address, sd_bus **ret);

/* Option keys of SubmitJob(); only the ones set are sent. */
typedef struct SubmitOptions {
        bool set_concurrency;
        uint32_t concurrency;
        const char *name;               /* NULL: not set */
        bool set_timeout;
        uint64_t timeout_usec;
        bool set_connect_timeout;
        uint64_t connect_timeout_usec;
        bool set_stall_timeout;
        uint64_t stall_timeout_usec;
        bool set_max_bytes;
        uint64_t max_bytes;
        int overwrite;                  /* -1: not set */
        int fsync;                      /* -1: not set */
} SubmitOptions;

#define SUBMIT_OPTIONS_NULL ((SubmitOptions) { .overwrite = -1, .fsync = -1 })

/* Tasks per message: a large job goes as SubmitJob with the first chunk and flag 0x1, then
 * Job.AddTasks for the rest, so no message comes near the bus's size limit (32 MiB on a system bus,
 * which disconnects a client that sends more): a chunk ends at this many tasks or bytes of text. */
#define SUBMIT_CHUNK_TASKS 50000U
#define SUBMIT_CHUNK_BYTES (16U * 1024U * 1024U)

/* Builds Manager.SubmitJob(a(ss) tasks, h directory, a{sv} options, t flags) with the first chunk of
 * the tasks; flag 0x1 (more follow) when there are more. */
int bus_message_new_submit(sd_bus *bus, const TaskList *tasks, int dir_fd, const SubmitOptions *o,
                           sd_bus_message **ret);

/* Sends the tasks that did not fit in SubmitJob with Job.AddTasks; a no-op for small jobs. */
int bus_add_remaining_tasks(sd_bus *bus, const char *path, const TaskList *tasks, sd_bus_error *error);

/* Reads an a(uusutss) array at the current position of m, calling cb for each result. */
typedef int (*bus_result_cb_t)(const JobResult *r, void *userdata);
int bus_read_results(sd_bus_message *m, bus_result_cb_t cb, void *userdata);

/* Manager.GetJob(id): the job's path, and the unique name of the daemon that answered. */
int bus_get_job(sd_bus *bus, uint64_t id, char **ret_path, char **ret_daemon, sd_bus_error *error);
int bus_cancel_job(sd_bus *bus, uint64_t id, sd_bus_error *error);
int bus_list_jobs(sd_bus *bus, JobInfo **ret, size_t *ret_n, sd_bus_error *error);
/* Properties.GetAll(io.asyncd1.Job) into ret (which the caller frees with job_info_done()). */
int bus_get_job_info(sd_bus *bus, const char *path, JobInfo *ret, sd_bus_error *error);
/* Applies the a{sv} of a PropertiesChanged signal (m positioned at it) to j. */
int bus_read_changed_properties(sd_bus_message *m, JobInfo *j);
/* Job.GetResults(cursor, max); the reply is left positioned at the results array. */
/* Fills l with the job's tasks through Job.GetTasks. A daemon without that method (API version 1
 * as first published) leaves l empty and returns 0. */
int bus_get_tasks(sd_bus *bus, const char *path, TaskList *l);

int bus_get_results(sd_bus *bus, const char *path, uint32_t cursor, uint32_t max,
                    sd_bus_message **ret_reply, sd_bus_error *error);

/* Whether the error means the daemon could not be reached (as opposed to a refusal). */
bool bus_error_is_unreachable(const sd_bus_error *e);
/* The error's message, or strerror(r) when there is none. */
const char *bus_error_text(const sd_bus_error *e, int r);
