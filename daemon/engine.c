/* SPDX-License-Identifier: MIT */
/* engine: the download engine shared by all jobs — curl glue, disk pool and the global scheduler
 * that hands transfer slots to jobs round-robin under one global cap.
 *
 * Fairness: a job is on the runnable ring while it has waiting tasks and a free slot under its
 * own semaphore. Each free global slot goes to the job at the head, which then moves to the tail,
 * so concurrent jobs share the global cap evenly whatever their sizes. */
#include <errno.h>
#include <stdlib.h>

#include "engine.h"
#include "job.h"
#include "log.h"
#include "transfer.h"

static void on_curl_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        transfer_on_curl_done(easy, result);
}

static int on_schedule(sd_event_source *s, void *userdata) {
        Engine *e = userdata;

        while (e->active < e->max_transfers && e->committing_bytes < e->commit_backlog_bytes) {
                ListLink *l = list_first(&e->runnable);
                Job *j;

                if (!l)
                        break;
                j = container_of(l, Job, runnable_link);
                list_unlink(l);
                job_start_next(j);
                if (job_is_runnable(j) && !list_is_linked(&j->runnable_link))
                        list_append(&e->runnable, &j->runnable_link);
        }
        return 0;
}

/* Slots freed by finished transfers are refilled right away, so that curl hands the connection the
 * last transfer used straight to the next one (see curl-glue's drive()). */
static void on_curl_batch(CurlGlue *g, void *userdata) {
        Engine *e = userdata;
        int enabled = SD_EVENT_OFF;

        (void) sd_event_source_get_enabled(e->schedule, &enabled);
        if (enabled == SD_EVENT_OFF)
                return;
        (void) sd_event_source_set_enabled(e->schedule, SD_EVENT_OFF);
        (void) on_schedule(e->schedule, e);
}

void engine_wake_scheduler(Engine *e) {
        (void) sd_event_source_set_enabled(e->schedule, SD_EVENT_ONESHOT);
}

/* Kept connections make the next job to the same servers start at once, but an idle daemon
 * should not hold hundreds of sockets (half of them, after a while, closed by their servers). */
static int on_close_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Engine *e = userdata;
        int r;

        if (e->active > 0)
                return 0;       /* armed again when the last of those ends */
        r = curl_glue_close_connections(e->glue);
        if (r < 0)
                log_debug_errno(r, "Failed to close idle connections: %m");
        else
                log_debug("No transfer for %" PRIu64 " s: idle connections closed.",
                          e->keep_connections_usec / USEC_PER_SEC);
        return 0;
}

void engine_transfer_ended(Engine *e) {
        if (e->active > 0 || e->keep_connections_usec == 0)
                return;
        (void) sd_event_source_set_time_relative(e->close_idle, e->keep_connections_usec);
        (void) sd_event_source_set_enabled(e->close_idle, SD_EVENT_ONESHOT);
}

int engine_new(Engine **ret, sd_event *event, const EngineConfig *config) {
        _cleanup_(engine_freep) Engine *e = NULL;
        int r;

        if (config->max_transfers == 0 || config->disk_threads == 0 || config->commit_backlog_bytes == 0)
                return -EINVAL;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->event = sd_event_ref(event);
        e->max_transfers = config->max_transfers;
        e->commit_backlog_bytes = config->commit_backlog_bytes;
        e->keep_connections_usec = config->keep_connections_usec;
        list_init(&e->runnable);

        r = curl_glue_new(&e->glue, event, on_curl_done, e);
        if (r < 0)
                return r;
        curl_glue_set_batch_callback(e->glue, on_curl_batch);
        r = curl_glue_set_max_connections(e->glue, e->max_transfers);
        if (r < 0)
                return r;
        r = disk_pool_new(&e->pool, event, config->disk_threads);
        if (r < 0)
                return r;

        r = sd_event_add_defer(event, &e->schedule, on_schedule, e);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(e->schedule, SD_EVENT_OFF);
        (void) sd_event_source_set_description(e->schedule, "engine-schedule");

        r = sd_event_add_time(event, &e->close_idle, CLOCK_MONOTONIC, UINT64_MAX, USEC_PER_SEC, on_close_idle, e);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(e->close_idle, SD_EVENT_OFF);
        (void) sd_event_source_set_description(e->close_idle, "engine-close-idle-connections");

        *ret = TAKE_PTR(e);
        return 0;
}

Engine *engine_free(Engine *e) {
        if (!e)
                return NULL;

        sd_event_source_disable_unref(e->schedule);
        sd_event_source_disable_unref(e->close_idle);
        disk_pool_free(e->pool);
        curl_glue_free(e->glue);
        sd_event_unref(e->event);
        free(e);
        return NULL;
}
