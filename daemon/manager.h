/* SPDX-License-Identifier: MIT */
/* manager: the daemon's state — bus connection, engine, the jobs it serves — and its life cycle
 * (ready, idle exit, clean shutdown). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "engine.h"
#include "list.h"

#define BUS_NAME "io.asyncd1"
#define MANAGER_PATH "/io/asyncd1"
#define MANAGER_INTERFACE "io.asyncd1.Manager"
#define JOB_PATH_PREFIX "/io/asyncd1/job"
#define JOB_INTERFACE "io.asyncd1.Job"
#define ERROR_NO_SUCH_JOB "io.asyncd1.Error.NoSuchJob"
#define ERROR_LIMIT_EXCEEDED "io.asyncd1.Error.LimitExceeded"
#define ERROR_SHUTTING_DOWN "io.asyncd1.Error.ShuttingDown"

typedef struct BusJob BusJob;

typedef struct ManagerConfig {
        EngineConfig engine;
        uint64_t keep_finished_usec;    /* how long finished jobs stay queryable */
        unsigned max_finished_jobs;     /* how many; beyond, the oldest goes first */
        unsigned max_finished_tasks;    /* their tasks together; beyond, the oldest go, never the newest */
        uint64_t exit_idle_usec;        /* 0 = never exit on idle */
        unsigned max_jobs_per_owner;    /* running jobs per uid */
        unsigned max_tasks_per_job;
} ManagerConfig;

#define MANAGER_CONFIG_DEFAULT                                          \
        ((ManagerConfig) {                                              \
                .engine = ENGINE_CONFIG_DEFAULT,                        \
                .keep_finished_usec = 300 * USEC_PER_SEC,               \
                .max_finished_jobs = 10000,                             \
                .max_finished_tasks = 100000,                           \
                .max_jobs_per_owner = 64,                               \
                .max_tasks_per_job = 1000000,                           \
        })

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        bool system_bus;                /* enforce ownership; only root submits */
        Engine *engine;
        ManagerConfig config;

        ListLink jobs;                  /* BusJob.link, in id order */
        ListLink finished;              /* BusJob.finished_link, in the order they finished */
        unsigned n_finished;
        uint64_t n_finished_tasks;      /* the tasks of the jobs on finished */
        BusJob **by_id;                 /* the same jobs, ascending ids: found by binary search */
        size_t n_by_id, size_by_id;
        uint64_t last_id;
        unsigned n_running;

        sd_event_source *idle_timer;
        sd_event_source *status_timer;
        bool releasing_name;            /* idle: giving the name up; new jobs are refused */
        bool name_released;
        bool stopping;
        int exit_code;
} Manager;

int manager_new(Manager **ret, sd_event *event, sd_bus *bus, bool system_bus, const ManagerConfig *config);
Manager *manager_free(Manager *m);

/* Registers the objects and takes the bus name; then tells systemd we are ready. */
int manager_start(Manager *m);
/* Cancels every job and exits the loop once their results are out and no file is left half done. */
void manager_begin_shutdown(Manager *m, const char *why);

BusJob *manager_find_job(Manager *m, uint64_t id);
/* Room for one more job, so that adding it cannot fail after it was created. */
int manager_reserve_job(Manager *m);
/* Adds a job with a higher id than any before (after manager_reserve_job()); removes one. */
void manager_add_job(Manager *m, BusJob *bj);
void manager_remove_job(Manager *m, BusJob *bj);
unsigned manager_count_running_jobs_of(Manager *m, uid_t owner);

/* A job started or finished: update STATUS=, idle timer, shutdown progress. */
void manager_jobs_changed(Manager *m);

int manager_add_bus_objects(Manager *m);

static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
