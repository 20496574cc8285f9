/* SPDX-License-Identifier: MIT */
/* disk-pool: a few worker threads that run blocking file operations off the event loop. */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "list.h"

typedef struct DiskPool DiskPool;
typedef struct DiskOp DiskOp;

/* run() executes on a worker thread and must touch nothing but the op's own data; done() is
 * called back on the event loop thread afterwards. */
struct DiskOp {
        ListLink link;
        int (*run)(DiskOp *op);
        void (*done)(DiskOp *op, int result);
        int result;
};

/* How many nice levels the workers sit below the thread that creates the pool (at most 19). */
#define DISK_POOL_NICE_DELTA 10

int disk_pool_new(DiskPool **ret, sd_event *event, unsigned n_threads);
/* Waits for queued operations to finish (their done callbacks run, and so do those of the operations
 * these callbacks submit), then joins the workers. */
DiskPool *disk_pool_free(DiskPool *p);

void disk_pool_submit(DiskPool *p, DiskOp *op);
/* Operations queued or running, i.e. whose done callback has not run yet. */
unsigned disk_pool_pending(DiskPool *p);

/* For tests: each operation sleeps this long before it runs, to prove the loop does not wait. */
void disk_pool_set_delay(DiskPool *p, uint64_t usec);

static inline void disk_pool_freep(DiskPool **p) {
        disk_pool_free(*p);
}
