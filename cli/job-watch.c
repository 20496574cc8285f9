/* SPDX-License-Identifier: MIT */
/* job-watch: follows one job on the bus and delivers each of its results exactly once, in seq
 * order, from Completed signals and GetResults() replay, until the job has finished.
 *
 * The matches are installed before the job exists and cover every job object; once the job is
 * known they are narrowed to its path and daemon (the bus queues every signal a match covers
 * for us, and charges what we do not read to the daemon: a stopped asyncctl would hold the
 * signals of every job). Signals are filtered by path and sender here too. Results are de-duplicated by seq, and a gap in the seqs (a
 * signal we did not get) is filled with GetResults(), so each result is delivered exactly once
 * whatever the interleaving of signals and replies. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bus-client.h"
#include "job-watch.h"
#include "log.h"
#include "macro.h"

#define RESULTS_PER_CALL 512U
/* How long to wait for Finished after PropertiesChanged reported a final State. */
#define FINISH_GRACE_USEC (2 * USEC_PER_SEC)


static int job_watch_fetch(JobWatch *w, uint32_t until);

int job_watch_new(sd_bus *bus, sd_event *event, job_watch_result_cb_t cb, void *userdata, JobWatch **ret) {
        JobWatch *w;

        w = calloc(1, sizeof(JobWatch));
        if (!w)
                return -ENOMEM;

        w->bus = sd_bus_ref(bus);
        w->event = sd_event_ref(event);
        w->on_result = cb;
        w->userdata = userdata;

        *ret = w;
        return 0;
}

JobWatch *job_watch_free(JobWatch *w) {
        if (!w)
                return NULL;

        sd_bus_slot_unref(w->slot_job);
        sd_bus_slot_unref(w->slot_properties);
        sd_bus_slot_unref(w->slot_owner);
        sd_event_source_disable_unref(w->finish_timer);
        for (size_t i = 0; i < w->n_queue; i++)
                sd_bus_message_unref(w->queue[i]);
        free(w->queue);
        free(w->path);
        free(w->daemon);
        free(w->final_state);
        job_info_done(&w->info);
        sd_bus_unref(w->bus);
        sd_event_unref(w->event);
        free(w);
        return NULL;
}

static void job_watch_fail(JobWatch *w, int error) {
        if (w->error == 0)
                w->error = error < 0 ? error : -EIO;
        (void) sd_event_exit(w->event, 0);
}

static bool state_is_final(const char *state) {
        return state && *state && strcmp(state, "running") != 0;
}

/* n_results: how many results the job ended with, UINT32_MAX when not known. */
static int job_watch_finish(JobWatch *w, const char *state, uint32_t n_results) {
        int r;

        if (w->finished)
                return 0;

        /* Everything the daemon has must be delivered before the summary: Finished comes after the
         * last Completed, but a lost signal or a late subscription is made up for here. */
        if (job_counts_done(&w->counts) < n_results) {
                r = job_watch_fetch(w, UINT32_MAX);
                if (r < 0)
                        return r;
        }

        w->final_state = strdup(state);
        if (!w->final_state)
                return -ENOMEM;
        w->finished = true;
        w->finish_timer = sd_event_source_disable_unref(w->finish_timer);

        return sd_event_exit(w->event, 0);
}

static void deliver(JobWatch *w, const JobResult *r) {
        job_counts_add(&w->counts, r->status);
        w->next_seq = r->seq + 1;
        if (w->on_result)
                w->on_result(w, r, w->userdata);
}

static int process_result(const JobResult *res, void *userdata) {
        JobWatch *w = userdata;
        int r;

        if (res->seq < w->next_seq) {
                log_debug("Job %" PRIu64 ": result %" PRIu32 " already shown, dropped.", w->id, res->seq);
                return 0;               /* replay and signal overlap */
        }

        if (res->seq > w->next_seq && !w->fetching) {
                log_debug("Job %" PRIu64 ": result %" PRIu32 " signalled while %" PRIu32 " is next, fetching the gap.",
                          w->id, res->seq, w->next_seq);
                /* A gap: results we did not get a signal for. Fetch them first, to keep seq order. */
                r = job_watch_fetch(w, res->seq);
                if (r < 0)
                        return r;
                if (res->seq < w->next_seq)
                        return 0;
        }

        if (res->seq > w->next_seq)
                log_debug("Job %" PRIu64 ": results %" PRIu32 "…%" PRIu32 " are missing from the daemon's replay.",
                          w->id, w->next_seq, res->seq - 1);

        deliver(w, res);
        return 0;
}

/* Delivers the results with next_seq <= seq < until that the daemon has, via GetResults(). */
static int job_watch_fetch(JobWatch *w, uint32_t until) {
        int r;

        while (w->next_seq < until) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                uint32_t before = w->next_seq, next_cursor;

                r = bus_get_results(w->bus, w->path, w->next_seq, MIN(until - w->next_seq, RESULTS_PER_CALL),
                                    &reply, &error);
                if (r < 0)
                        return log_error_errno(r, "cannot read the results of job %" PRIu64 ": %s",
                                               w->id, bus_error_text(&error, r));

                w->fetching = true;
                r = bus_read_results(reply, process_result, w);
                w->fetching = false;
                if (r < 0)
                        return log_error_errno(r, "cannot parse the results of job %" PRIu64 ": %m", w->id);

                r = sd_bus_message_read(reply, "u", &next_cursor);
                if (r < 0)
                        return log_error_errno(r, "cannot parse the results of job %" PRIu64 ": %m", w->id);

                if (w->next_seq == before)
                        break;          /* nothing new: we have all there is for now */
        }

        return 0;
}

static bool message_is_ours(JobWatch *w, sd_bus_message *m) {
        const char *path = sd_bus_message_get_path(m), *sender = sd_bus_message_get_sender(m);

        if (!path || strcmp(path, w->path) != 0)
                return false;
        /* Only the daemon that owns the job speaks for it; anyone can emit a signal on a path. */
        if (w->daemon && *w->daemon && (!sender || strcmp(sender, w->daemon) != 0))
                return false;
        return true;
}

static int on_finished(JobWatch *w, sd_bus_message *m) {
        uint32_t ok, not_found, error, cancelled;
        const char *state;
        int r;

        r = sd_bus_message_read(m, "suuuu", &state, &ok, &not_found, &error, &cancelled);
        if (r < 0)
                return log_error_errno(r, "cannot parse the Finished signal of job %" PRIu64 ": %m", w->id);

        r = job_watch_finish(w, state, ok + not_found + error + cancelled);
        if (r < 0)
                return r;

        if (job_counts_done(&w->counts) != ok + not_found + error + cancelled)
                log_warning("Job %" PRIu64 " finished with %" PRIu32 " results, but %" PRIu32 " were reported.",
                            w->id, ok + not_found + error + cancelled, job_counts_done(&w->counts));
        return 0;
}

static int dispatch_job_signal(JobWatch *w, sd_bus_message *m) {
        const char *member = sd_bus_message_get_member(m);

        if (w->finished || !message_is_ours(w, m))
                return 0;

        if (strcmp(member, "Completed") == 0)
                return bus_read_results(m, process_result, w);
        if (strcmp(member, "Finished") == 0)
                return on_finished(w, m);
        return 0;
}

static int on_finish_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        JobWatch *w = userdata;
        int r;

        log_warning("asyncd did not signal the end of job %" PRIu64 ", ending with its state \"%s\".",
                    w->id, w->info.state);
        r = job_watch_finish(w, w->info.state, UINT32_MAX);
        if (r < 0)
                job_watch_fail(w, r);
        return 0;
}

static int dispatch_properties_changed(JobWatch *w, sd_bus_message *m) {
        const char *interface;
        int r;

        if (w->finished || !message_is_ours(w, m))
                return 0;

        r = sd_bus_message_read(m, "s", &interface);
        if (r < 0)
                return r;
        if (strcmp(interface, ASYNCD_JOB_INTERFACE) != 0)
                return 0;

        r = bus_read_changed_properties(m, &w->info);
        if (r < 0)
                return log_error_errno(r, "cannot parse the properties of job %" PRIu64 ": %m", w->id);

        /* Finished follows the final PropertiesChanged; should it never come, do not hang. */
        if (state_is_final(w->info.state) && !w->finish_timer) {
                r = sd_event_add_time_relative(w->event, &w->finish_timer, CLOCK_MONOTONIC,
                                               FINISH_GRACE_USEC, 0, on_finish_timer, w);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int queue_message(JobWatch *w, sd_bus_message *m) {
        sd_bus_message **q;

        q = reallocarray(w->queue, w->n_queue + 1, sizeof(sd_bus_message *));
        if (!q)
                return -ENOMEM;
        w->queue = q;
        w->queue[w->n_queue++] = sd_bus_message_ref(m);
        return 0;
}

static int dispatch(JobWatch *w, sd_bus_message *m) {
        if (strcmp(sd_bus_message_get_interface(m), ASYNCD_JOB_INTERFACE) == 0)
                return dispatch_job_signal(w, m);
        return dispatch_properties_changed(w, m);
}

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        JobWatch *w = userdata;
        int r;

        if (!w->path)
                r = queue_message(w, m);
        else
                r = dispatch(w, m);
        if (r < 0)
                job_watch_fail(w, r);
        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *name, *old_owner, *new_owner;
        JobWatch *w = userdata;
        int r;

        r = sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner);
        if (r < 0 || w->finished)
                return 0;

        if (w->daemon && *w->daemon ? strcmp(old_owner, w->daemon) == 0 : *new_owner == 0) {
                if (w->path)
                        log_error("asyncd left the bus before job %" PRIu64 " finished.", w->id);
                else
                        log_error("asyncd left the bus.");
                job_watch_fail(w, -ECONNRESET);
        }
        return 0;
}

int job_watch_subscribe(JobWatch *w) {
        int r;

        r = sd_bus_add_match(w->bus, &w->slot_job,
                             "type='signal',"
                             "interface='" ASYNCD_JOB_INTERFACE "',"
                             "path_namespace='" ASYNCD_JOB_PATH_PREFIX "'",
                             on_signal, w);
        if (r < 0)
                return r;

        r = sd_bus_add_match(w->bus, &w->slot_properties,
                             "type='signal',"
                             "interface='org.freedesktop.DBus.Properties',"
                             "member='PropertiesChanged',"
                             "path_namespace='" ASYNCD_JOB_PATH_PREFIX "',"
                             "arg0='" ASYNCD_JOB_INTERFACE "'",
                             on_signal, w);
        if (r < 0)
                return r;

        return sd_bus_add_match(w->bus, &w->slot_owner,
                                "type='signal',"
                                "sender='org.freedesktop.DBus',"
                                "path='/org/freedesktop/DBus',"
                                "interface='org.freedesktop.DBus',"
                                "member='NameOwnerChanged',"
                                "arg0='" ASYNCD_BUS_NAME "'",
                                on_name_owner_changed, w);
}

/* Replaces the matches on every job with matches on this one. Until the broad ones are gone a
 * signal may arrive twice: results are de-duplicated by seq, and Finished counts once. */
static int narrow_matches(JobWatch *w) {
        _cleanup_free_ char *sender = NULL, *job = NULL, *properties = NULL;
        sd_bus_slot *slot_job = NULL, *slot_properties = NULL;
        int r;

        /* asprintf() leaves its pointer undefined when it fails: reset it for the cleanup. */
        if (*w->daemon && asprintf(&sender, "sender='%s',", w->daemon) < 0)
                return (sender = NULL), -ENOMEM;
        if (asprintf(&job, "type='signal',%spath='%s',interface='" ASYNCD_JOB_INTERFACE "'",
                     sender ?: "", w->path) < 0)
                return (job = NULL), -ENOMEM;
        if (asprintf(&properties, "type='signal',%spath='%s',interface='org.freedesktop.DBus.Properties',"
                     "member='PropertiesChanged',arg0='" ASYNCD_JOB_INTERFACE "'", sender ?: "", w->path) < 0)
                return (properties = NULL), -ENOMEM;

        r = sd_bus_add_match(w->bus, &slot_job, job, on_signal, w);
        if (r < 0)
                return r;
        r = sd_bus_add_match(w->bus, &slot_properties, properties, on_signal, w);
        if (r < 0) {
                sd_bus_slot_unref(slot_job);
                return r;
        }
        sd_bus_slot_unref(w->slot_job);
        sd_bus_slot_unref(w->slot_properties);
        w->slot_job = slot_job;
        w->slot_properties = slot_properties;
        return 0;
}

int job_watch_attach(JobWatch *w, uint64_t id, const char *path, const char *daemon) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        JobInfo info = {};
        int r;

        w->id = id;
        w->path = strdup(path);
        w->daemon = strdup(daemon ?: "");
        if (!w->path || !w->daemon)
                return -ENOMEM;
        r = narrow_matches(w);
        if (r < 0)
                return log_error_errno(r, "cannot subscribe to the signals of job %" PRIu64 ": %m", id);

        if (w->n_queue > 0)
                log_debug("Job %" PRIu64 ": replaying %zu signals that arrived before the job was known.",
                          id, w->n_queue);
        for (size_t i = 0; i < w->n_queue; i++) {
                r = dispatch(w, w->queue[i]);
                if (r < 0)
                        return r;
                w->queue[i] = sd_bus_message_unref(w->queue[i]);
        }
        w->n_queue = 0;
        if (w->finished)
                return 0;

        /* Properties before results: if the job is final now, every result exists for the replay. */
        r = bus_get_job_info(w->bus, path, &info, &error);
        if (r < 0)
                return log_error_errno(r, "cannot read the properties of job %" PRIu64 ": %s",
                                       id, bus_error_text(&error, r));
        job_info_done(&w->info);
        w->info = info;

        r = job_watch_fetch(w, UINT32_MAX);
        if (r < 0)
                return r;

        if (!w->finished && state_is_final(w->info.state))
                return job_watch_finish(w, w->info.state, job_counts_done(&w->info.counts));

        return 0;
}

static int on_cancel_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(m);
        JobWatch *w = userdata;

        /* A job that finished meanwhile cannot be cancelled; Finished tells the rest. */
        if (e)
                log_debug("Cancelling job %" PRIu64 " failed: %s", w->id, e->message ?: e->name);
        return 0;
}

int job_watch_cancel(JobWatch *w) {
        if (!w->path)
                return -ENOENT;

        return sd_bus_call_method_async(w->bus, NULL, ASYNCD_BUS_NAME, w->path, ASYNCD_JOB_INTERFACE, "Cancel",
                                        on_cancel_reply, w, NULL);
}
