/* SPDX-License-Identifier: MIT */
/* job: a list of (URL, file name) tasks fetched into one directory under the job's own semaphore,
 * with every task's result recorded in completion order. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "job.h"
#include "log.h"
#include "transfer.h"
#include "utf8-util.h"

static const char *const task_status_table[_TASK_STATUS_MAX] = {
        [TASK_OK] = "ok",
        [TASK_NOT_FOUND] = "not_found",
        [TASK_ERROR] = "error",
        [TASK_CANCELLED] = "cancelled",
};

static const char *const job_state_table[_JOB_STATE_MAX] = {
        [JOB_RUNNING] = "running",
        [JOB_DONE] = "done",
        [JOB_CANCELLED] = "cancelled",
};

const char *task_status_to_string(TaskStatus s) {
        return s >= 0 && s < _TASK_STATUS_MAX ? task_status_table[s] : NULL;
}

/* Kept out of the results: a million cancelled tasks would otherwise hold a million copies. */
const char *task_result_error(const TaskResult *r) {
        if (r->error)
                return r->error;
        switch (r->status) {
        case TASK_NOT_FOUND:
                return "HTTP 404 Not Found";
        case TASK_CANCELLED:
                return "Cancelled";
        default:
                return "";
        }
}

const char *job_state_to_string(JobState s) {
        return s >= 0 && s < _JOB_STATE_MAX ? job_state_table[s] : NULL;
}

bool job_is_finished(const Job *j) {
        return j->state != JOB_RUNNING;
}

bool job_is_runnable(const Job *j) {
        return !j->cancel_requested && j->next_task < j->n_tasks &&
                j->active < (j->probing ? 1U : j->options.concurrency);
}

static void make_runnable(Job *j) {
        if (job_is_runnable(j) && !list_is_linked(&j->runnable_link)) {
                list_append(&j->engine->runnable, &j->runnable_link);
                engine_wake_scheduler(j->engine);
        }
}

/* Long enough for a TCP and TLS handshake to most servers; a host slower than that gets one
 * connection per transfer, as without the probe, rather than stalling the job. */
#define JOB_PROBE_USEC (1 * USEC_PER_SEC)

static int on_probe_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        job_end_probe(userdata);
        return 0;
}

void job_end_probe(Job *j) {
        if (!j->probing)
                return;
        j->probing = false;
        j->probe_timer = sd_event_source_disable_unref(j->probe_timer);
        make_runnable(j);
}

static void start_probe(Job *j) {
        int r;

        if (j->n_tasks < 2 || j->options.concurrency < 2 || strncasecmp(j->tasks[0].url, "https:", 6) != 0)
                return;
        r = sd_event_add_time_relative(j->engine->event, &j->probe_timer, CLOCK_MONOTONIC, JOB_PROBE_USEC, 0,
                                       on_probe_timer, j);
        if (r < 0)
                return (void) log_debug_errno(r, "No probe timer, starting every transfer at once: %m");
        j->probing = true;
}

int job_new(Job **ret, Engine *e, TaskSpec *tasks, size_t n_tasks, int dirfd, const JobOptions *options,
            const JobCallbacks *callbacks, void *userdata) {
        Job *j;

        if (n_tasks == 0 || n_tasks > UINT32_MAX || dirfd < 0 ||
            options->concurrency < 1 || options->concurrency > JOB_CONCURRENCY_MAX)
                return -EINVAL;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->results = calloc(n_tasks, sizeof(TaskResult));
        if (!j->results) {
                free(j);
                return -ENOMEM;
        }
        j->engine = e;
        list_init(&j->transfers);
        j->tasks = tasks;
        j->n_tasks = (uint32_t) n_tasks;
        j->dirfd = dirfd;
        j->options = *options;
        j->callbacks = callbacks;
        j->userdata = userdata;
        e->n_jobs++;

        start_probe(j);
        make_runnable(j);
        *ret = j;
        return 0;
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;

        /* Transfers point at the job; the owner must wait for on_finished. */
        assert(list_is_empty(&j->transfers));
        list_unlink(&j->runnable_link);
        sd_event_source_disable_unref(j->probe_timer);
        free(j->name_index);
        for (uint32_t i = 0; i < j->n_results; i++)
                free(j->results[i].error);
        free(j->results);
        task_specs_free(j->tasks, j->n_tasks);
        safe_close(j->dirfd);
        j->engine->n_jobs--;
        free(j);
        return NULL;
}

void job_start_next(Job *j) {
        uint32_t index = j->next_task++;
        int r;

        j->active++;
        j->engine->active++;
        r = transfer_start(j, index);
        if (r < 0) {
                job_release_slot(j);
                log_full_errno(LOG_WARNING, r, "Failed to start task %u: %m", index);
                job_record_result(j, index, TASK_ERROR, 0, 0, strerror(-r));
        }
}

void job_release_slot(Job *j) {
        j->active--;
        j->engine->active--;
        engine_transfer_ended(j->engine);
        make_runnable(j);
        /* A slot of the global cap may be what another job was waiting for. */
        if (!list_is_empty(&j->engine->runnable))
                engine_wake_scheduler(j->engine);
}

static void mark_finished(Job *j) {
        j->state = j->cancel_requested ? JOB_CANCELLED : JOB_DONE;
        /* Every file operation has ended with its result: a finished job kept for queries must not
         * keep its directory busy (umount) until it expires. */
        j->dirfd = safe_close(j->dirfd);
        j->callbacks->on_finished(j, j->userdata);
}

void job_record_result(Job *j, uint32_t index, TaskStatus status, long http_code, uint64_t bytes, const char *error) {
        uint32_t seq = j->n_results;
        TaskResult *r = &j->results[seq];

        *r = (TaskResult) {
                .index = index,
                .status = status,
                .http_code = http_code > 0 && http_code < 1000 ? (uint16_t) http_code : 0,
                .bytes = bytes,
                /* Server text (reason phrases, curl's messages about redirects) need not be UTF-8,
                 * and a D-Bus string must be. */
                .error = error && *error ? utf8_sanitize(error, strlen(error)) : NULL,
        };
        j->n_results++;
        j->counts[status]++;
        j->bytes_downloaded += bytes;

        j->callbacks->on_result(j, seq, j->userdata);

        if (j->n_results == j->n_tasks && !j->open)
                mark_finished(j);
}

static void close_job(Job *j) {
        j->open = false;
        j->name_index = (free(j->name_index), NULL);
        j->name_index_size = 0;
}

/* For jobs that were open: the last result may have come before the job was closed. */
static void finish_if_complete(Job *j) {
        if (j->state == JOB_RUNNING && !j->open && j->n_results == j->n_tasks)
                mark_finished(j);
}

static uint32_t hash_name(const char *s) {
        uint32_t h = 2166136261u;               /* FNV-1a */

        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 16777619u;
        return h;
}

/* Inserts task i; returns the index of an earlier task with the same name, or UINT32_MAX. */
static uint32_t name_index_insert(Job *j, uint32_t i) {
        uint32_t mask = j->name_index_size - 1, slot = hash_name(j->tasks[i].filename) & mask;

        for (;; slot = (slot + 1) & mask) {
                uint32_t k = j->name_index[slot];

                if (k == 0) {
                        j->name_index[slot] = i + 1;
                        return UINT32_MAX;
                }
                if (strcmp(j->tasks[k - 1].filename, j->tasks[i].filename) == 0)
                        return k - 1;
        }
}

/* (Re)builds the set for the first n tasks with room for at least want names. */
static int name_index_build(Job *j, uint32_t n, uint64_t want) {
        uint64_t size = 1024;

        while (size < 2 * want)
                size *= 2;
        if (size > UINT32_MAX)
                return -E2BIG;
        free(j->name_index);
        j->name_index = calloc(size, sizeof(uint32_t));
        if (!j->name_index) {
                j->name_index_size = 0;         /* none: the next job_add_tasks() builds it again */
                return -ENOMEM;
        }
        j->name_index_size = (uint32_t) size;
        for (uint32_t i = 0; i < n; i++)
                (void) name_index_insert(j, i);
        return 0;
}

int job_keep_open(Job *j) {
        j->open = true;
        return name_index_build(j, j->n_tasks, j->n_tasks);
}

int job_add_tasks(Job *j, TaskSpec *tasks, size_t n, bool more, size_t *ret_index, char **ret_reason) {
        uint32_t old = j->n_tasks;
        TaskSpec *t;
        TaskResult *res;
        int r;

        *ret_reason = NULL;
        if (!j->open)
                return -ESTALE;
        if ((uint64_t) old + n > UINT32_MAX)
                return -E2BIG;

        t = realloc(j->tasks, (old + n) * sizeof(TaskSpec));
        if (!t)
                return -ENOMEM;
        j->tasks = t;
        res = realloc(j->results, (old + n) * sizeof(TaskResult));
        if (!res)
                return -ENOMEM;
        j->results = res;
        if (n > 0)      /* an empty last chunk only closes the job, and brings no array */
                memcpy(j->tasks + old, tasks, n * sizeof(TaskSpec));

        if (2 * ((uint64_t) old + n) > j->name_index_size) {
                r = name_index_build(j, old, (uint64_t) old + n);
                if (r < 0)
                        return r;
        }
        for (uint32_t i = old; i < old + n; i++) {
                uint32_t dup = name_index_insert(j, i);

                if (dup != UINT32_MAX) {
                        *ret_index = i;
                        if (asprintf(ret_reason, "file name \"%s\" is already used by task %u", j->tasks[i].filename,
                                     dup) < 0)
                                *ret_reason = NULL;
                        /* Forget the half-inserted chunk; the caller still owns its tasks. */
                        (void) name_index_build(j, old, old);
                        return *ret_reason ? -EINVAL : -ENOMEM;
                }
        }

        j->n_tasks = old + (uint32_t) n;
        free(tasks);
        if (!more)
                close_job(j);
        make_runnable(j);
        finish_if_complete(j);
        return 0;
}

void job_cancel(Job *j) {
        if (job_is_finished(j) || j->cancel_requested)
                return;
        j->cancel_requested = true;
        close_job(j);
        list_unlink(&j->runnable_link);

        /* Waiting tasks never started: report them first, in submission order. */
        while (j->next_task < j->n_tasks)
                job_record_result(j, j->next_task++, TASK_CANCELLED, 0, 0, NULL);

        LIST_FOREACH(&j->transfers, l, tmp)
                transfer_cancel(transfer_from_link(l));
        finish_if_complete(j);
}
