/* SPDX-License-Identifier: MIT */
/* manager: the daemon's state — bus connection, engine, the jobs it serves — and its life cycle
 * (ready, idle exit, clean shutdown). */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "bus-job.h"
#include "log.h"
#include "manager.h"

static const char *plural(unsigned n, const char *one, const char *many) {
        return n == 1 ? one : many;
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        unsigned n_jobs = 0, kept;

        LIST_FOREACH(&m->jobs, it, tmp)
                n_jobs++;
        kept = n_jobs - m->n_running;
        if (n_jobs == 0)
                (void) sd_notify(false, "STATUS=Ready, no jobs.");
        else
                (void) sd_notifyf(false, "STATUS=%u running %s, %u finished %s kept, %u %s on the wire",
                                  m->n_running, plural(m->n_running, "job", "jobs"), kept,
                                  plural(kept, "job", "jobs"), m->engine->active,
                                  plural(m->engine->active, "transfer", "transfers"));
        /* While jobs run the transfer count changes all the time: refresh once a second. */
        if (m->n_running > 0) {
                (void) sd_event_source_set_time_relative(s, USEC_PER_SEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        return 0;
}

static int on_name_released(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;

        /* Calls that reached us before the release are already queued on our connection and get
         * served; new callers activate a fresh instance. Exit once nothing is left to do. */
        m->name_released = true;
        log_info("Bus name released after being idle, exiting.");
        manager_jobs_changed(m);
        return 0;
}

static int on_idle_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        if (!list_is_empty(&m->jobs) || m->releasing_name)
                return 0;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Idle, exiting.");
        r = sd_bus_release_name_async(m->bus, NULL, BUS_NAME, on_name_released, m);
        if (r < 0) {
                log_warning_errno(r, "Failed to release the bus name, exiting anyway: %m");
                return sd_event_exit(m->event, 0);
        }
        /* A SubmitJob the bus routed to us before our ReleaseName would start a job that nobody
         * can reach through the name, in a process about to exit: refused, a retry reaches the
         * next instance. */
        m->releasing_name = true;
        return 0;
}

static void rearm_idle_timer(Manager *m) {
        if (m->config.exit_idle_usec > 0 && list_is_empty(&m->jobs) && !m->stopping && !m->releasing_name) {
                (void) sd_event_source_set_time_relative(m->idle_timer, m->config.exit_idle_usec);
                (void) sd_event_source_set_enabled(m->idle_timer, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_source_set_enabled(m->idle_timer, SD_EVENT_OFF);
}

/* Sees every incoming message: a daemon that is being talked to is not idle. */
static int on_bus_message(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;

        if (sd_bus_message_is_method_call(message, NULL, NULL) > 0)
                rearm_idle_timer(m);
        return 0;
}

static bool all_quiet(Manager *m) {
        return m->n_running == 0 && disk_pool_pending(m->engine->pool) == 0;
}

void manager_jobs_changed(Manager *m) {
        if (m->stopping || m->name_released) {
                if (all_quiet(m) && (m->stopping || list_is_empty(&m->jobs))) {
                        (void) sd_bus_flush(m->bus);
                        (void) sd_event_exit(m->event, m->exit_code);
                }
                return;
        }

        (void) on_status_timer(m->status_timer, 0, m);
        rearm_idle_timer(m);
}

void manager_begin_shutdown(Manager *m, const char *why) {
        if (m->stopping)
                return;
        log_info("%s: cancelling %u running jobs and exiting.", why, m->n_running);
        m->stopping = true;
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down.");

        LIST_FOREACH(&m->jobs, it, tmp) {
                BusJob *bj = container_of(it, BusJob, link);

                if (!job_is_finished(bj->job))
                        job_cancel(bj->job);
        }
        manager_jobs_changed(m);
}

/* The first position whose job's id is not below id. The bus looks up every job of a
 * GetManagedObjects reply by its path: a walk of the list for each made that quadratic. */
static size_t job_position(Manager *m, uint64_t id) {
        size_t lo = 0, hi = m->n_by_id;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (m->by_id[mid]->id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

BusJob *manager_find_job(Manager *m, uint64_t id) {
        size_t i = job_position(m, id);

        return i < m->n_by_id && m->by_id[i]->id == id ? m->by_id[i] : NULL;
}

int manager_reserve_job(Manager *m) {
        size_t n;
        BusJob **a;

        if (m->n_by_id < m->size_by_id)
                return 0;
        n = MAX(m->size_by_id * 2, (size_t) 64);
        a = reallocarray(m->by_id, n, sizeof(BusJob *));
        if (!a)
                return -ENOMEM;
        m->by_id = a;
        m->size_by_id = n;
        return 0;
}

void manager_add_job(Manager *m, BusJob *bj) {
        assert(m->n_by_id < m->size_by_id);
        assert(m->n_by_id == 0 || m->by_id[m->n_by_id - 1]->id < bj->id);
        m->by_id[m->n_by_id++] = bj;
        list_append(&m->jobs, &bj->link);
}

void manager_remove_job(Manager *m, BusJob *bj) {
        size_t i = job_position(m, bj->id);

        if (i < m->n_by_id && m->by_id[i] == bj) {
                memmove(m->by_id + i, m->by_id + i + 1, (m->n_by_id - i - 1) * sizeof(BusJob *));
                m->n_by_id--;
        }
        list_unlink(&bj->link);
}

unsigned manager_count_running_jobs_of(Manager *m, uid_t owner) {
        unsigned n = 0;

        LIST_FOREACH(&m->jobs, it, tmp) {
                BusJob *bj = container_of(it, BusJob, link);

                if (bj->owner == owner && !job_is_finished(bj->job))
                        n++;
        }
        return n;
}

static int on_disconnected(sd_bus_message *message, void *userdata, sd_bus_error *ret_error) {
        Manager *m = userdata;

        /* A failure: Restart=on-failure brings the service back once the bus is. */
        m->exit_code = EXIT_FAILURE;
        manager_begin_shutdown(m, "Bus connection lost");
        return 0;
}

int manager_new(Manager **ret, sd_event *event, sd_bus *bus, bool system_bus, const ManagerConfig *config) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(event);
        m->bus = sd_bus_ref(bus);
        m->system_bus = system_bus;
        m->config = *config;
        list_init(&m->jobs);
        list_init(&m->finished);

        r = engine_new(&m->engine, event, &config->engine);
        if (r < 0)
                return r;

        r = sd_event_add_time(event, &m->idle_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_idle_timer, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(m->idle_timer, SD_EVENT_OFF);
        r = sd_event_add_time(event, &m->status_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_status_timer, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(m->status_timer, SD_EVENT_OFF);

        *ret = TAKE_PTR(m);
        return 0;
}

static BusJob *first_running_job(Manager *m) {
        LIST_FOREACH(&m->jobs, it, tmp) {
                BusJob *bj = container_of(it, BusJob, link);

                if (!job_is_finished(bj->job))
                        return bj;
        }
        return NULL;
}

/* Jobs still running here means the loop ended abnormally: stop their transfers first. Running
 * the loop may free other (finished) jobs, through their expiry: no pointer into the job list is
 * kept across it. A running job is never freed there. */
static void cancel_running_jobs(Manager *m) {
        BusJob *bj;

        m->stopping = true;     /* and take no new ones meanwhile */
        while ((bj = first_running_job(m))) {
                job_cancel(bj->job);
                while (!job_is_finished(bj->job))
                        if (sd_event_run(m->event, UINT64_MAX) <= 0)
                                return;
        }
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        cancel_running_jobs(m);
        /* Every job goes: no need to keep the index in order one removal at a time (quadratic). */
        m->n_by_id = 0;
        LIST_FOREACH(&m->jobs, it, tmp)
                bus_job_free(container_of(it, BusJob, link));
        free(m->by_id);
        sd_event_source_disable_unref(m->idle_timer);
        sd_event_source_disable_unref(m->status_timer);
        engine_free(m->engine);
        sd_bus_unref(m->bus);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int manager_start(Manager *m) {
        int r;

        r = manager_add_bus_objects(m);
        if (r < 0)
                return r;

        r = sd_bus_match_signal(m->bus, NULL, "org.freedesktop.DBus.Local", "/org/freedesktop/DBus/Local",
                                "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch for bus disconnection: %m");

        r = sd_bus_add_filter(m->bus, NULL, on_bus_message, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the bus filter: %m");

        r = sd_bus_request_name(m->bus, BUS_NAME, 0);
        if (r == -EEXIST)
                return log_error_errno(r, "Failed to acquire bus name %s: another process owns it (is asyncd already "
                                       "running on this bus?)", BUS_NAME);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire bus name %s: %m", BUS_NAME);

        (void) sd_notify(false, "READY=1\nSTATUS=Ready, no jobs.");
        /* A bus given by --bus-address= gets a session bus's rules: say so, not which bus it is. */
        if (m->system_bus)
                log_info("asyncd ready on the system bus as %s.", BUS_NAME);
        else
                log_info("asyncd ready as %s, with a session bus's rules (no access checks).", BUS_NAME);
        manager_jobs_changed(m);
        return 0;
}
