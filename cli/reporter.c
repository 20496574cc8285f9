/* SPDX-License-Identifier: MIT */
/* reporter: shows a job's results while they arrive (progress bar, spinner or -v lines) and the
 * final report (the seed's summary, or one JSON document). */
#include <errno.h>
#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "progress.h"
#include "reporter.h"

#define TICK_USEC (100 * USEC_PER_MSEC)

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static unsigned terminal_columns(void) {
        struct winsize ws = {};
        const char *e;

        if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) >= 0 && ws.ws_col > 0)
                return ws.ws_col;
        e = getenv("COLUMNS");
        if (e && atoi(e) > 0)
                return (unsigned) atoi(e);
        return 80;
}

int reporter_init(Reporter *rep, const TaskList *tasks, bool verbose, bool quiet, JsonMode json) {
        const char *codeset = nl_langinfo(CODESET);

        *rep = (Reporter) {
                .tasks = tasks,
                .json = json,
                .quiet = quiet,
                .verbose = verbose && !quiet && json == JSON_OFF,
                .colour = colour_enabled(STDOUT_FILENO),
                .unicode = codeset && strcmp(codeset, "UTF-8") == 0,
                .start_usec = now_usec(CLOCK_MONOTONIC),
        };

        /* Like the seed, -v replaces the bar; like tqdm, the bar goes to stderr, and only to a
         * terminal that can take "\r" and an erase-line sequence. */
        rep->progress = !rep->verbose && !quiet && json == JSON_OFF && isatty(STDERR_FILENO) &&
                !(getenv("TERM") && strcmp(getenv("TERM"), "dumb") == 0);

        if (json != JSON_OFF) {
                rep->results = json_object_new_array();
                if (!rep->results)
                        return -ENOMEM;
        }
        return 0;
}

void reporter_done(Reporter *rep) {
        rep->ticker = sd_event_source_disable_unref(rep->ticker);
        json_object_put(rep->results);
        rep->results = NULL;
}

static const Task *task_of(const Reporter *rep, const JobResult *res) {
        if (!rep->tasks || res->index >= rep->tasks->n)
                return NULL;
        return rep->tasks->tasks + res->index;
}

void reporter_on_result(JobWatch *w, const JobResult *res, void *userdata) {
        Reporter *rep = userdata;
        const Task *t = task_of(rep, res);

        if (rep->results) {
                json_object *o = result_to_json(res, t ? t->url : NULL);
                if (!o || json_object_array_add(rep->results, o) < 0) {
                        json_object_put(o);
                        log_oom();
                }
                return;
        }

        if (rep->verbose) {
                _cleanup_free_ char *name = NULL, *line = NULL;

                if (t) {
                        name = task_display_name(t);
                        if (!name) {
                                log_oom();
                                return;
                        }
                }
                line = output_result_line(res, name, t ? t->url : NULL, rep->colour);
                if (!line) {
                        log_oom();
                        return;
                }
                if (rep->output_error < 0)
                        return;
                errno = 0;
                if (puts(line) < 0 || fflush(stdout) != 0)
                        rep->output_error = errno > 0 ? -errno : -EIO;
        }
}

static void draw(Reporter *rep) {
        _cleanup_free_ char *line = NULL;
        const JobWatch *w = rep->watch;
        ProgressState s = {
                .done = w ? job_counts_done(&w->counts) : 0,
                .total = w && w->info.counts.total > 0 ? w->info.counts.total : rep->tasks ? (unsigned) rep->tasks->n : 0,
                .elapsed_usec = now_usec(CLOCK_MONOTONIC) - rep->start_usec,
                .bytes = w ? w->info.bytes : 0,
                .frame = rep->frame,
        };

        line = progress_render(&s, terminal_columns() - 1, rep->unicode);
        if (!line)
                return;

        fprintf(stderr, "\r%s\x1b[K", line);
        fflush(stderr);
        rep->bar_shown = true;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Reporter *rep = userdata;

        int r;

        rep->frame++;
        draw(rep);
        r = sd_event_source_set_time_relative(s, TICK_USEC);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

int reporter_start(Reporter *rep, sd_event *event) {
        int r;

        if (!rep->progress || rep->ticker)
                return 0;

        draw(rep);
        r = sd_event_add_time_relative(event, &rep->ticker, CLOCK_MONOTONIC, TICK_USEC, 0, on_tick, rep);
        return r < 0 ? r : 0;
}

void reporter_clear(Reporter *rep) {
        if (!rep->bar_shown)
                return;
        fputs("\r\x1b[K", stderr);
        fflush(stderr);
        rep->bar_shown = false;
}

void reporter_stop(Reporter *rep) {
        if (!rep->progress)
                return;
        rep->ticker = sd_event_source_disable_unref(rep->ticker);
        if (rep->watch && job_counts_done(&rep->watch->counts) > 0) {
                draw(rep);
                fputc('\n', stderr);
                fflush(stderr);
                rep->bar_shown = false;
        } else
                reporter_clear(rep);
}

static int finish_json(Reporter *rep, const JobWatch *w, uint64_t elapsed_usec) {
        json_object *o;
        int r;

        o = json_object_new_object();
        if (!o)
                return log_oom();

        if (json_object_object_add(o, "id", json_object_new_uint64(w->id)) < 0 ||
            json_object_object_add(o, "path", json_object_new_string(w->path ?: "")) < 0 ||
            json_object_object_add(o, "name", json_object_new_string(w->info.name ?: "")) < 0 ||
            json_object_object_add(o, "state", json_object_new_string(w->final_state ?: w->info.state ?: "")) < 0 ||
            json_object_object_add(o, "total", json_object_new_uint64(
                                           w->info.counts.total ?: (rep->tasks ? rep->tasks->n : 0))) < 0 ||
            json_object_object_add(o, "ok", json_object_new_uint64(w->counts.ok)) < 0 ||
            json_object_object_add(o, "not_found", json_object_new_uint64(w->counts.not_found)) < 0 ||
            json_object_object_add(o, "error", json_object_new_uint64(w->counts.error)) < 0 ||
            json_object_object_add(o, "cancelled", json_object_new_uint64(w->counts.cancelled)) < 0 ||
            json_object_object_add(o, "bytes_downloaded", json_object_new_uint64(w->info.bytes)) < 0 ||
            json_object_object_add(o, "elapsed_usec", json_object_new_uint64(elapsed_usec)) < 0 ||
            json_object_object_add(o, "results", json_object_get(rep->results)) < 0) {
                json_object_put(o);
                return log_oom();
        }

        r = json_print(o, rep->json, stdout);
        json_object_put(o);
        return r;
}

int reporter_finish(Reporter *rep, const JobWatch *w, uint64_t elapsed_usec) {
        reporter_stop(rep);

        if (rep->output_error < 0)
                return rep->output_error;

        if (rep->json != JSON_OFF)
                return finish_json(rep, w, elapsed_usec);
        if (rep->quiet)
                return 0;
        return output_summary(stdout, &w->counts, elapsed_usec);
}
