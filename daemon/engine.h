/* SPDX-License-Identifier: MIT */
/* engine: the download engine shared by all jobs — curl glue, disk pool and the global scheduler
 * that hands transfer slots to jobs round-robin under one global cap. */
#pragma once

#include <systemd/sd-event.h>

#include "curl-glue.h"
#include "disk-pool.h"
#include "list.h"

typedef struct Job Job;

/* New transfers wait while finished ones still hold this much memory for files on the disk pool:
 * their bodies sit in memory until written, so a slow disk must slow the network down. Counted in
 * bytes, not files, so that a backlog of small files is deep enough to keep the network busy while
 * the disk threads catch up, and one of big files still fits. */
#define ENGINE_COMMIT_BACKLOG_BYTES_DEFAULT (2U * 1024U * 1024U)

typedef struct EngineConfig {
        unsigned max_transfers;         /* global cap on transfers on the wire, all jobs */
        unsigned disk_threads;
        size_t commit_backlog_bytes;
        uint64_t keep_connections_usec; /* idle connections close this long after the last transfer; 0 = never */
} EngineConfig;

#define ENGINE_CONFIG_DEFAULT ((EngineConfig) { .max_transfers = 1000, .disk_threads = 4,   \
                                                .commit_backlog_bytes = ENGINE_COMMIT_BACKLOG_BYTES_DEFAULT, \
                                                .keep_connections_usec = 60 * USEC_PER_SEC })

typedef struct Engine {
        sd_event *event;
        CurlGlue *glue;
        DiskPool *pool;
        sd_event_source *schedule;      /* one-shot: start waiting tasks outside any callback */
        sd_event_source *close_idle;    /* closes curl's idle connections once nothing ran for a while */
        uint64_t keep_connections_usec;
        ListLink runnable;              /* jobs with waiting tasks and a free slot of their own */
        unsigned max_transfers;
        unsigned active;                /* transfers on the wire */
        size_t commit_backlog_bytes;
        size_t committing_bytes;        /* held by transfers off the wire whose file is still on the pool */
        unsigned n_jobs;
} Engine;

int engine_new(Engine **ret, sd_event *event, const EngineConfig *config);
/* All jobs must have been freed. */
Engine *engine_free(Engine *e);

/* A job got a free slot or new tasks: make sure the scheduler runs soon. */
void engine_wake_scheduler(Engine *e);
/* A transfer left the wire (e->active already counts it out). */
void engine_transfer_ended(Engine *e);

static inline void engine_freep(Engine **e) {
        engine_free(*e);
}
