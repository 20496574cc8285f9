/* SPDX-License-Identifier: MIT */
/* bus-job: one job as a D-Bus object — properties, Cancel/GetResults, GetTasks and AddTasks (the
 * extensions), and the Completed, Finished and PropertiesChanged signals, batched and coalesced.
 *
 * Results are kept in the engine's Job in completion order; n_signalled marks how far Completed
 * signals have gone. A short timer batches results that finish close together into one signal;
 * on_finished flushes the rest, so Finished always comes after the last Completed. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus-job.h"
#include "log.h"

#define COMPLETED_BATCH_USEC (5 * USEC_PER_MSEC)
#define COMPLETED_BATCH_MAX 4096U
#define PROPERTIES_INTERVAL_USEC (100 * USEC_PER_MSEC)
#define GET_RESULTS_MAX 65536U

static uint64_t now_realtime(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* A page of GetResults/GetTasks ends early once it holds this much: a message over the bus's limit
 * (32 MiB by default on a system bus) makes dbus-daemon disconnect its sender, the whole daemon. */
#define REPLY_BYTES_MAX (8U * 1024U * 1024U)

/* What an item takes besides the bytes of its two variable strings, at most. A result (uusutss): up
 * to 7 bytes of padding to its 8-byte boundary, seq and index (8), the status string (length word,
 * at most 9 bytes and the NUL: 14, padded to 16), http_code (4, and 4 of padding before bytes),
 * bytes (8), and two strings' length words and NULs (10) with up to 3 bytes of padding between:
 * 60. (48 let 27,000 results of 320 bytes make a page of 8.05 MiB.) A task (ss) takes at most 20. */
#define RESULT_ITEM_FIXED 60U
#define TASK_ITEM_FIXED 48U

/* Whether an item of the given strings still fits a page that holds *bytes (the first always does),
 * counting it in if so. */
static bool page_takes(size_t *bytes, size_t budget, size_t fixed, const char *a, const char *b) {
        size_t item = strlen(a) + strlen(b) + fixed;

        if (*bytes > 0 && item > budget - MIN(*bytes, budget))
                return false;
        *bytes += item;
        return true;
}

/* Appends results [from, *to), ending early past budget bytes; *to is where it ended. */
static int append_results(BusJob *bj, sd_bus_message *m, uint32_t from, uint32_t *to, size_t budget) {
        Job *j = bj->job;
        size_t bytes = 0;
        int r;

        r = sd_bus_message_open_container(m, 'a', "(uusutss)");
        if (r < 0)
                return r;
        for (uint32_t seq = from; seq < *to; seq++) {
                const TaskResult *res = &j->results[seq];
                const char *filename = res->status == TASK_OK ? j->tasks[res->index].filename : "";
                const char *reason = task_result_error(res);

                if (!page_takes(&bytes, budget, RESULT_ITEM_FIXED, filename, reason)) {
                        *to = seq;
                        break;
                }
                r = sd_bus_message_append(m, "(uusutss)", seq, res->index, task_status_to_string(res->status),
                                          (uint32_t) res->http_code, res->bytes, filename, reason);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static void flush_completed(BusJob *bj) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        uint32_t to = bj->job->n_results;
        int r;

        (void) sd_event_source_set_enabled(bj->flush_timer, SD_EVENT_OFF);
        if (bj->n_signalled >= to)
                return;

        /* At most COMPLETED_BATCH_MAX results of bounded size: no byte budget needed. */
        r = sd_bus_message_new_signal(bj->manager->bus, &m, bj->path, JOB_INTERFACE, "Completed");
        if (r >= 0)
                r = append_results(bj, m, bj->n_signalled, &to, SIZE_MAX);
        if (r >= 0)
                r = sd_bus_send(bj->manager->bus, m, NULL);
        if (r < 0)
                log_warning_errno(r, "job %" PRIu64 ": failed to emit Completed: %m", bj->id);
        /* Clients that missed a signal catch up with GetResults; never resend. */
        bj->n_signalled = to;
}

static void emit_properties_changed(BusJob *bj) {
        int r;

        (void) sd_event_source_set_enabled(bj->props_timer, SD_EVENT_OFF);
        r = sd_bus_emit_properties_changed(bj->manager->bus, bj->path, JOB_INTERFACE, "State", "Total", "Ok",
                                           "NotFound", "Error", "Cancelled", "BytesDownloaded", "FinishedUSec", NULL);
        if (r < 0)
                log_debug_errno(r, "job %" PRIu64 ": failed to emit PropertiesChanged: %m", bj->id);
}

static int on_flush_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        flush_completed(userdata);
        return 0;
}

static int on_props_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        emit_properties_changed(userdata);
        return 0;
}

static int on_expire_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        BusJob *bj = userdata;
        Manager *m = bj->manager;

        /* Past --keep-finished, or earlier past --max-finished-jobs (logged there). */
        log_debug("job %" PRIu64 ": removed", bj->id);
        bus_job_free(bj);
        /* glibc keeps freed heap pages; a daemon idle after a million-task job would keep its peak. */
        if (list_is_empty(&m->jobs))
                (void) malloc_trim(0);
        manager_jobs_changed(m);
        return 0;
}

static void arm(sd_event_source *s, uint64_t usec) {
        int enabled = SD_EVENT_OFF;

        if (sd_event_source_get_enabled(s, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return;
        (void) sd_event_source_set_time_relative(s, usec);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static void on_job_result(Job *j, uint32_t seq, void *userdata) {
        BusJob *bj = userdata;
        const TaskResult *res = &j->results[seq];

        if (res->status == TASK_ERROR)
                log_debug("job %" PRIu64 ": task %" PRIu32 " (%s) failed: %s", bj->id, res->index,
                          j->tasks[res->index].url, res->error ?: "");

        if (j->n_results - bj->n_signalled >= COMPLETED_BATCH_MAX)
                flush_completed(bj);
        else
                arm(bj->flush_timer, COMPLETED_BATCH_USEC);
        arm(bj->props_timer, PROPERTIES_INTERVAL_USEC);
}

/* Every job is in each ListJobs and GetManagedObjects reply: a client submitting small jobs in a
 * loop would make those larger than the bus's message limit (32 MiB by default; the bus then
 * disconnects the daemon), and slow to build, long before --keep-finished removes them. And each
 * finished task keeps its URL, name and result (~140 bytes): big jobs in a row would hold their
 * memory for --keep-finished. Past either bound the jobs that finished first go now, through their
 * timers: this may run within a walk of the job list (a shutdown cancelling every job), which must
 * not lose a job under it. The job that just finished stays, however many tasks it has. The first
 * finished is the first on m->finished: not the lowest FinishedUSec, which is wall clock time and
 * goes back when the clock is set back. */
static void unlink_finished(BusJob *bj) {
        if (!list_is_linked(&bj->finished_link))
                return;
        list_unlink(&bj->finished_link);
        bj->manager->n_finished--;
        bj->manager->n_finished_tasks -= bj->job->n_tasks;
}

static bool too_many_finished(const Manager *m) {
        return m->n_finished > m->config.max_finished_jobs ||
               (m->n_finished > 1 && m->n_finished_tasks > m->config.max_finished_tasks);
}

static void expire_oldest_finished(Manager *m) {
        while (too_many_finished(m)) {
                BusJob *oldest = container_of(list_first(&m->finished), BusJob, finished_link);

                log_debug("job %" PRIu64 ": removed early, finished jobs are kept up to %u jobs and %u tasks",
                          oldest->id, m->config.max_finished_jobs, m->config.max_finished_tasks);
                unlink_finished(oldest);
                (void) sd_event_source_set_time_relative(oldest->expire_timer, 0);
        }
}

static void on_job_finished(Job *j, void *userdata) {
        BusJob *bj = userdata;
        Manager *m = bj->manager;
        int r;

        bj->finished_usec = now_realtime();
        flush_completed(bj);
        emit_properties_changed(bj);

        r = sd_bus_emit_signal(m->bus, bj->path, JOB_INTERFACE, "Finished", "suuuu", job_state_to_string(j->state),
                               j->counts[TASK_OK], j->counts[TASK_NOT_FOUND], j->counts[TASK_ERROR],
                               j->counts[TASK_CANCELLED]);
        if (r < 0)
                log_warning_errno(r, "job %" PRIu64 ": failed to emit Finished: %m", bj->id);
        r = sd_bus_emit_signal(m->bus, MANAGER_PATH, MANAGER_INTERFACE, "JobFinished", "tos", bj->id, bj->path,
                               job_state_to_string(j->state));
        if (r < 0)
                log_warning_errno(r, "job %" PRIu64 ": failed to emit JobFinished: %m", bj->id);

        log_info("job %" PRIu64 ": %s: %u ok, %u not found, %u errors, %u cancelled, %" PRIu64 " bytes in %.2f s",
                 bj->id, job_state_to_string(j->state), j->counts[TASK_OK], j->counts[TASK_NOT_FOUND],
                 j->counts[TASK_ERROR], j->counts[TASK_CANCELLED], j->bytes_downloaded,
                 (double) (bj->finished_usec - bj->created_usec) / USEC_PER_SEC);

        m->n_running--;
        arm(bj->expire_timer, m->config.keep_finished_usec);
        list_append(&m->finished, &bj->finished_link);
        m->n_finished++;
        m->n_finished_tasks += j->n_tasks;
        expire_oldest_finished(m);
        manager_jobs_changed(m);
}

static const JobCallbacks job_callbacks = {
        .on_result = on_job_result,
        .on_finished = on_job_finished,
};

static int add_timer(BusJob *bj, sd_event_source **s, sd_event_time_handler_t handler, const char *description) {
        int r;

        /* Batching windows are a few milliseconds; sd-event's default accuracy is 250 ms. */
        r = sd_event_add_time(bj->manager->event, s, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_MSEC, handler, bj);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(*s, SD_EVENT_OFF);
        (void) sd_event_source_set_description(*s, description);
        return 0;
}

int bus_job_new(BusJob **ret, Manager *m, TaskSpec *tasks, size_t n_tasks, int dirfd, const JobOptions *options,
                const char *name, uid_t owner, bool open) {
        BusJob *bj;
        int r;

        r = manager_reserve_job(m);
        if (r < 0)
                return r;
        bj = calloc(1, sizeof(*bj));
        if (!bj)
                return -ENOMEM;
        bj->manager = m;
        bj->id = m->last_id + 1;
        bj->owner = owner;
        bj->created_usec = now_realtime();
        bj->name = strdup(name ?: "");
        if (!bj->name || asprintf(&bj->path, JOB_PATH_PREFIX "/%" PRIu64, bj->id) < 0) {
                bj->path = NULL;
                r = -ENOMEM;
                goto fail;
        }
        r = add_timer(bj, &bj->flush_timer, on_flush_timer, "job-completed-batch");
        if (r >= 0)
                r = add_timer(bj, &bj->props_timer, on_props_timer, "job-properties");
        if (r >= 0)
                r = add_timer(bj, &bj->expire_timer, on_expire_timer, "job-expire");
        if (r < 0)
                goto fail;

        r = job_new(&bj->job, m->engine, tasks, n_tasks, dirfd, options, &job_callbacks, bj);
        if (r < 0)
                goto fail;
        if (open) {
                r = job_keep_open(bj->job);
                if (r < 0) {
                        /* Not started yet (the scheduler runs later): the tasks go back to the caller. */
                        bj->job->tasks = NULL;
                        bj->job->n_tasks = 0;
                        TAKE_FD(bj->job->dirfd);
                        bj->job = job_free(bj->job);
                        goto fail;
                }
        }

        m->last_id = bj->id;
        m->n_running++;
        manager_add_job(m, bj);

        (void) sd_bus_emit_object_added(m->bus, bj->path);
        (void) sd_bus_emit_signal(m->bus, MANAGER_PATH, MANAGER_INTERFACE, "JobNew", "to", bj->id, bj->path);
        log_info("job %" PRIu64 ": submitted by uid %u: %zu tasks, concurrency %u%s%s", bj->id, (unsigned) owner,
                 n_tasks, options->concurrency, bj->name[0] ? ", name " : "", bj->name);
        manager_jobs_changed(m);
        *ret = bj;
        return 0;

fail:
        sd_event_source_disable_unref(bj->flush_timer);
        sd_event_source_disable_unref(bj->props_timer);
        sd_event_source_disable_unref(bj->expire_timer);
        free(bj->name);
        free(bj->path);
        free(bj);
        return r;
}

BusJob *bus_job_free(BusJob *bj) {
        if (!bj)
                return NULL;

        unlink_finished(bj);    /* only a job that finished is on the list, so bj->job is there */
        if (bj->job) {
                (void) sd_bus_emit_object_removed(bj->manager->bus, bj->path);
                job_free(bj->job);
        }
        manager_remove_job(bj->manager, bj);
        sd_bus_track_unref(bj->feeders);
        sd_event_source_disable_unref(bj->flush_timer);
        sd_event_source_disable_unref(bj->props_timer);
        sd_event_source_disable_unref(bj->expire_timer);
        free(bj->name);
        free(bj->path);
        free(bj);
        return NULL;
}

static int on_feeders_gone(sd_bus_track *track, void *userdata) {
        BusJob *bj = userdata;

        bj->feeders = sd_bus_track_unref(bj->feeders);
        if (bj->job->open) {
                log_warning("job %" PRIu64 ": its client left the bus before sending the last tasks: cancelling",
                            bj->id);
                job_cancel(bj->job);
        }
        return 0;
}

void bus_job_track_feeder(BusJob *bj, sd_bus_message *message) {
        int r = 0;

        if (!bj->feeders)
                r = sd_bus_track_new(bj->manager->bus, &bj->feeders, on_feeders_gone, bj);
        if (r >= 0)
                r = sd_bus_track_add_sender(bj->feeders, message);
        /* The job works either way; only a vanished client would go unnoticed. */
        if (r < 0)
                log_warning_errno(r, "job %" PRIu64 ": cannot watch %s on the bus: %m", bj->id,
                                  sd_bus_message_get_sender(message) ?: "?");
}

int bus_job_check_access(BusJob *bj, sd_bus_message *message, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        int r;

        if (!bj->manager->system_bus)
                return 0;
        r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;
        if (uid != 0 && uid != bj->owner)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "job %" PRIu64 " belongs to uid %u; only its owner or root may access it",
                                         bj->id, (unsigned) bj->owner);
        return 0;
}

int bus_job_cancel(BusJob *bj, sd_bus_message *message, sd_bus_error *error) {
        int r;

        r = bus_job_check_access(bj, message, error);
        if (r < 0)
                return r;
        if (!job_is_finished(bj->job)) {
                log_info("job %" PRIu64 ": cancel requested by %s", bj->id, sd_bus_message_get_sender(message) ?: "?");
                job_cancel(bj->job);
        }
        return sd_bus_reply_method_return(message, NULL);
}

static int method_cancel(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        return bus_job_cancel(userdata, message, error);
}

/* Reads the (cursor, max) of GetResults/GetTasks, checks access, and clamps to [cursor, to) within
 * n items and at most GET_RESULTS_MAX items (the reply may end earlier: REPLY_BYTES_MAX). */
static int read_page(sd_bus_message *message, BusJob *bj, uint32_t n, uint32_t *ret_cursor, uint32_t *ret_to,
                     sd_bus_error *error) {
        uint32_t cursor, max;
        int r;

        r = sd_bus_message_read(message, "uu", &cursor, &max);
        if (r < 0)
                return r;
        r = bus_job_check_access(bj, message, error);
        if (r < 0)
                return r;
        *ret_cursor = MIN(cursor, n);
        *ret_to = *ret_cursor + MIN(MIN(max, GET_RESULTS_MAX), n - *ret_cursor);
        return 0;
}

static int method_get_results(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusJob *bj = userdata;
        uint32_t cursor, to;
        int r;

        r = read_page(message, bj, bj->job->n_results, &cursor, &to, error);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = append_results(bj, reply, cursor, &to, REPLY_BYTES_MAX);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "u", to);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* An extension of the published API: appends tasks to a job submitted with SUBMIT_JOB_MORE_TASKS, so
 * a job can be larger than one D-Bus message may be (32 MiB on a system bus by default). */
static int method_add_tasks(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        BusJob *bj = userdata;
        Job *j = bj->job;
        _cleanup_free_ char *reason = NULL;
        TaskSpec *tasks = NULL;
        size_t n = 0, bad;
        uint64_t flags;
        int r;

        r = bus_job_check_access(bj, message, error);
        if (r < 0)
                return r;
        if (!j->open)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "job %" PRIu64 " takes no more tasks (it was submitted complete, "
                                         "its last tasks were added, or it was cancelled)", bj->id);

        r = bus_read_tasks(message, bj->manager->config.max_tasks_per_job - j->n_tasks,
                           bj->manager->config.max_tasks_per_job, &tasks, &n, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(message, "t", &flags);
        if (r < 0)
                goto fail;
        if (flags & ~ADD_TASKS_MORE) {
                r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "flags: unknown bits 0x%" PRIx64,
                                      flags & ~ADD_TASKS_MORE);
                goto fail;
        }
        /* Errors name tasks by their index in the job: the chunk starts at the current total. */
        r = task_specs_prepare(tasks, n, j->n_tasks, &bad, &reason);
        if (r >= 0)
                r = job_add_tasks(j, tasks, n, flags & ADD_TASKS_MORE, &bad, &reason);
        if (r == -EINVAL) {
                r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "task %zu: %s", bad, reason);
                goto fail;
        }
        if (r < 0)
                goto fail;

        log_debug("job %" PRIu64 ": %zu tasks added, %" PRIu32 " in all%s", bj->id, n, j->n_tasks,
                  j->open ? "" : ", complete");
        if (!j->open)
                bj->feeders = sd_bus_track_unref(bj->feeders);
        else
                bus_job_track_feeder(bj, message);
        arm(bj->props_timer, PROPERTIES_INTERVAL_USEC);
        return sd_bus_reply_method_return(message, NULL);

fail:
        task_specs_free(tasks, n);
        return r;
}

/* An extension of the published API: the (URL, file name) of each task by index, so a client that
 * attached later can name tasks in results (file names as derived by the daemon). */
static int method_get_tasks(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        BusJob *bj = userdata;
        uint32_t cursor, to;
        size_t bytes = 0;
        int r;

        r = read_page(message, bj, bj->job->n_tasks, &cursor, &to, error);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ss)");
        if (r < 0)
                return r;
        for (uint32_t i = cursor; i < to; i++) {
                const TaskSpec *t = &bj->job->tasks[i];

                if (!page_takes(&bytes, REPLY_BYTES_MAX, TASK_ITEM_FIXED, t->url, t->filename)) {
                        to = i;
                        break;
                }
                r = sd_bus_message_append(reply, "(ss)", t->url, t->filename);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "u", to);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

#define DEFINE_COUNTER_GETTER(fn, expr)                                                                 \
        static int fn(sd_bus *bus, const char *path, const char *interface, const char *property,      \
                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {                     \
                BusJob *bj = userdata;                                                                  \
                return sd_bus_message_append(reply, "u", (uint32_t) (expr));                            \
        }

DEFINE_COUNTER_GETTER(property_get_total, bj->job->n_tasks)
DEFINE_COUNTER_GETTER(property_get_ok, bj->job->counts[TASK_OK])
DEFINE_COUNTER_GETTER(property_get_not_found, bj->job->counts[TASK_NOT_FOUND])
DEFINE_COUNTER_GETTER(property_get_error, bj->job->counts[TASK_ERROR])
DEFINE_COUNTER_GETTER(property_get_cancelled, bj->job->counts[TASK_CANCELLED])
DEFINE_COUNTER_GETTER(property_get_concurrency, bj->job->options.concurrency)

static int property_get_state(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusJob *bj = userdata;
        return sd_bus_message_append(reply, "s", job_state_to_string(bj->job->state));
}

static int property_get_bytes(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        BusJob *bj = userdata;
        return sd_bus_message_append(reply, "t", bj->job->bytes_downloaded);
}

const sd_bus_vtable bus_job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "t", NULL, offsetof(BusJob, id), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Name", "s", NULL, offsetof(BusJob, name), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Owner", "u", NULL, offsetof(BusJob, owner), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get_state, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        /* Constant unless the job was submitted open (SUBMIT_JOB_MORE_TASKS). */
        SD_BUS_PROPERTY("Total", "u", property_get_total, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Ok", "u", property_get_ok, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("NotFound", "u", property_get_not_found, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Error", "u", property_get_error, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Cancelled", "u", property_get_cancelled, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("BytesDownloaded", "t", property_get_bytes, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Concurrency", "u", property_get_concurrency, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("CreatedUSec", "t", NULL, offsetof(BusJob, created_usec), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("FinishedUSec", "t", NULL, offsetof(BusJob, finished_usec), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD("Cancel", "", "", method_cancel, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetResults",
                                SD_BUS_ARGS("u", cursor, "u", max),
                                SD_BUS_RESULT("a(uusutss)", results, "u", next_cursor),
                                method_get_results, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AddTasks",
                                SD_BUS_ARGS("a(ss)", tasks, "t", flags),
                                SD_BUS_NO_RESULT,
                                method_add_tasks, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetTasks",
                                SD_BUS_ARGS("u", cursor, "u", max),
                                SD_BUS_RESULT("a(ss)", tasks, "u", next_cursor),
                                method_get_tasks, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Completed", SD_BUS_ARGS("a(uusutss)", results), 0),
        SD_BUS_SIGNAL_WITH_ARGS("Finished",
                                SD_BUS_ARGS("s", state, "u", ok, "u", not_found, "u", error, "u", cancelled), 0),
        SD_BUS_VTABLE_END,
};

int bus_job_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                        sd_bus_error *error) {
        Manager *m = userdata;
        const char *p;
        char *end;
        uint64_t id;
        BusJob *bj;

        if (strncmp(path, JOB_PATH_PREFIX "/", strlen(JOB_PATH_PREFIX "/")) != 0)
                return 0;
        p = path + strlen(JOB_PATH_PREFIX "/");
        if (*p < '1' || *p > '9')
                return 0;
        errno = 0;
        id = strtoull(p, &end, 10);
        if (errno != 0 || *end != 0)
                return 0;
        bj = manager_find_job(m, id);
        if (!bj)
                return 0;
        *found = bj;
        return 1;
}

int bus_job_node_enumerator(sd_bus *bus, const char *prefix, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        size_t n = 0, k = 0;
        char **l;

        LIST_FOREACH(&m->jobs, it, tmp)
                n++;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        LIST_FOREACH(&m->jobs, it, tmp) {
                l[k] = strdup(container_of(it, BusJob, link)->path);
                if (!l[k]) {
                        for (size_t i = 0; i < k; i++)
                                free(l[i]);
                        free(l);
                        return -ENOMEM;
                }
                k++;
        }
        *nodes = l;
        return 1;
}
