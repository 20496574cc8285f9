/* SPDX-License-Identifier: MIT */
/* engine: the download engine shared by all jobs — curl glue, disk pool and the global scheduler
 * that hands transfer slots to jobs round-robin under one global cap. */
#pragma once

#include <systemd/sd-event.h>

#include "curl-glue.h"
#include "disk-pool.h"
#include "list.h"

typedef struct Job Job;

/* New transfers wait while this many finished ones still have their files on the disk pool:
 * their bodies sit in memory until written, so a slow disk must slow the network down. */
#define ENGINE_COMMIT_BACKLOG_MAX 128U

typedef struct EngineConfig {
        unsigned max_transfers;         /* global cap on transfers on the wire, all jobs */
        unsigned disk_threads;
} EngineConfig;

#define ENGINE_CONFIG_DEFAULT ((EngineConfig) { .max_transfers = 1000, .disk_threads = 4 })

typedef struct Engine {
        sd_event *event;
        CurlGlue *glue;
        DiskPool *pool;
        sd_event_source *schedule;      /* one-shot: start waiting tasks outside any callback */
        ListLink runnable;              /* jobs with waiting tasks and a free slot of their own */
        unsigned max_transfers;
        unsigned active;                /* transfers on the wire */
        unsigned committing;            /* off the wire, file still being written on the pool */
        unsigned n_jobs;
} Engine;

int engine_new(Engine **ret, sd_event *event, const EngineConfig *config);
/* All jobs must have been freed. */
Engine *engine_free(Engine *e);

/* A job got a free slot or new tasks: make sure the scheduler runs soon. */
void engine_wake_scheduler(Engine *e);

static inline void engine_freep(Engine **e) {
        engine_free(*e);
}
