/* SPDX-License-Identifier: MIT */
/* job: a list of (URL, file name) tasks fetched into one directory under the job's own semaphore,
 * with every task's result recorded in completion order. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "engine.h"
#include "list.h"
#include "macro.h"

typedef enum TaskStatus {
        TASK_OK,
        TASK_NOT_FOUND,
        TASK_ERROR,
        TASK_CANCELLED,
        _TASK_STATUS_MAX,
} TaskStatus;

typedef enum JobState {
        JOB_RUNNING,
        JOB_DONE,
        JOB_CANCELLED,
        _JOB_STATE_MAX,
} JobState;

const char *task_status_to_string(TaskStatus s);
const char *job_state_to_string(JobState s);

typedef struct TaskSpec {
        char *url;
        char *filename;         /* "" until derived by task_specs_prepare() */
} TaskSpec;

typedef struct JobOptions {
        unsigned concurrency;                   /* 1..1000 */
        uint64_t timeout_usec;                  /* whole transfer, 0 = none */
        uint64_t connect_timeout_usec;
        uint64_t stall_timeout_usec;            /* < 1 byte/s on average this long: error; 0 = none */
        uint64_t max_bytes;                     /* 0 = no limit */
        bool overwrite;
        bool fsync;
} JobOptions;

#define JOB_CONCURRENCY_MAX 1000U
/* A job's name is in every ListJobs and GetManagedObjects reply and in its InterfacesAdded: a label
 * of any length would let a few jobs make those over the bus's message limit (32 MiB by default),
 * and the bus would disconnect the daemon. */
#define JOB_NAME_MAX_BYTES 255U
#define JOB_OPTIONS_DEFAULT \
        ((JobOptions) { .concurrency = 5, .connect_timeout_usec = 30 * USEC_PER_SEC,                  \
                        .stall_timeout_usec = 300 * USEC_PER_SEC })

typedef struct TaskResult {
        uint64_t bytes;
        char *error;            /* NULL for none */
        uint32_t index;
        uint16_t http_code;
        uint8_t status;         /* TaskStatus */
} TaskResult;

/* The result's reason as clients see it: its own, or what its status means ("" only for ok). */
const char *task_result_error(const TaskResult *r);

typedef struct JobCallbacks {
        /* A task finished; results[seq] holds it. */
        void (*on_result)(Job *j, uint32_t seq, void *userdata);
        /* Every task has its result. Called once, after the last on_result. */
        void (*on_finished)(Job *j, void *userdata);
} JobCallbacks;

struct Job {
        Engine *engine;
        ListLink runnable_link;         /* on engine->runnable */
        ListLink transfers;             /* Transfer.link: started and not yet reported */

        TaskSpec *tasks;
        uint32_t n_tasks;
        uint32_t next_task;             /* tasks start in submission order */
        int dirfd;
        JobOptions options;

        TaskResult *results;            /* in completion order; n_results filled */
        uint32_t n_results;
        uint32_t counts[_TASK_STATUS_MAX];
        uint64_t bytes_downloaded;
        unsigned active;                /* this job's transfers on the wire */
        /* An https job starts with one transfer, so that the others find its connection and share
         * it if it speaks HTTP/2, instead of each opening (and handshaking) one of their own. */
        bool probing;
        sd_event_source *probe_timer;   /* stop waiting for that first connection after a while */

        JobState state;
        bool cancel_requested;
        bool open;                      /* more tasks may be appended (job_add_tasks) */
        uint32_t *name_index;           /* while open: hash set of task indices by file name */
        uint32_t name_index_size;       /* a power of two, 0 when there is none */

        const JobCallbacks *callbacks;
        void *userdata;
};

/* Validates the tasks and derives empty file names from the URLs. On failure returns -EINVAL
 * with the offending task's index and a reason (allocated). Indices, returned and in reasons,
 * count from first_index: where the tasks start in their job (AddTasks). */
int task_specs_prepare(TaskSpec *tasks, size_t n, size_t first_index, size_t *ret_index, char **ret_reason);
void task_specs_free(TaskSpec *tasks, size_t n);

/* Takes ownership of tasks (prepared) and dirfd on success; starts downloading right away.
 * Callbacks must not free the job; free it after on_finished, outside the callback. */
int job_new(Job **ret, Engine *e, TaskSpec *tasks, size_t n_tasks, int dirfd, const JobOptions *options,
            const JobCallbacks *callbacks, void *userdata);
Job *job_free(Job *j);

/* Keeps the job open for job_add_tasks(): it does not finish while open. Call right after job_new. */
int job_keep_open(Job *j);
/* Appends prepared tasks to an open job, checking their file names against every earlier task;
 * takes ownership of the tasks array (not needed on failure). more=false closes the job.
 * -EINVAL with *ret_index (index in the job) and *ret_reason on a duplicate; -ESTALE if the job
 * is not open. */
int job_add_tasks(Job *j, TaskSpec *tasks, size_t n, bool more, size_t *ret_index, char **ret_reason);

void job_cancel(Job *j);
bool job_is_finished(const Job *j);
/* Whether the scheduler may start another task of this job now. */
bool job_is_runnable(const Job *j);
/* Scheduler entry: start the next waiting task. */
void job_start_next(Job *j);

/* Internal to the engine: a task is off the wire, or has its final result. */
void job_release_slot(Job *j);
/* The probing transfer has its connection (or has ended): the rest of the semaphore opens. */
void job_end_probe(Job *j);
void job_record_result(Job *j, uint32_t index, TaskStatus status, long http_code, uint64_t bytes, const char *error);

static inline void job_freep(Job **j) {
        job_free(*j);
}
