/* SPDX-License-Identifier: MIT */
/* verb-submit: "asyncctl submit" and "asyncctl watch" — submit a job (or attach to one) and show
 * its results as they complete, until it finishes or Ctrl-C. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "asyncctl.h"
#include "job-watch.h"
#include "log.h"
#include "macro.h"
#include "reporter.h"
#include "task-list.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose);

typedef struct Wait {
        sd_bus *bus;
        sd_event *event;
        JobWatch *watch;
        Reporter reporter;
        bool cancel_on_interrupt;       /* submit: Ctrl-C cancels; watch: Ctrl-C detaches */
        unsigned n_interrupts;
        bool cancelling;                /* Cancel was requested */
        bool output_lost;               /* stdout failed: reported, and handled like SIGTERM on EPIPE */
        bool accepted;                  /* SubmitJob answered with a job */
        bool submit_in_flight;          /* a SubmitJob call awaits its reply */
        bool cancel_and_leave;          /* second Ctrl-C before the reply: cancel the job once known */
        int dir_fd;                     /* borrowed, for SubmitJob and its retries */
        unsigned submit_attempts;
        sd_bus_error submit_error;
        int refused;                    /* exit status when a later chunk of tasks was refused */
        sd_event_source *sigint, *sigterm;
} Wait;

static void wait_done(Wait *w) {
        reporter_done(&w->reporter);
        w->sigint = sd_event_source_disable_unref(w->sigint);
        w->sigterm = sd_event_source_disable_unref(w->sigterm);
        job_watch_free(w->watch);
        sd_bus_error_free(&w->submit_error);
        if (w->bus)
                (void) sd_bus_detach_event(w->bus);
        sd_event_unref(w->event);
        sd_bus_flush_close_unref(w->bus);
}

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;

        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static void notice(Wait *w, const char *fmt, ...) _printf_(2, 3);
static void notice(Wait *w, const char *fmt, ...) {
        va_list ap;

        if (arg_quiet)
                return;
        reporter_clear(&w->reporter);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        fflush(stderr);
}

/* SIGINT, SIGTERM, or a closed stdout (quiet: whoever closed it wants no more output). */
static int interrupt(Wait *w, bool quiet) {
        int r;

        w->n_interrupts++;

        if (!w->cancel_on_interrupt) {
                if (!quiet)
                        notice(w, "Detached from job %" PRIu64 ", which keeps running.", w->watch->id);
                return sd_event_exit(w->event, 0);
        }

        if (w->n_interrupts > 1) {
                /* Leaving now would leave the job the daemon is about to create running unseen:
                 * wait for its id, cancel it, then leave. A third Ctrl-C leaves at once. */
                if (w->submit_in_flight && w->n_interrupts == 2) {
                        if (!quiet)
                                notice(w, "Waiting for the daemon to accept the job, to cancel it… "
                                       "(press Ctrl-C again to leave it running)");
                        w->cancel_and_leave = true;
                        return 0;
                }
                if (w->accepted && !quiet)
                        notice(w, "Not waiting for job %" PRIu64 " any longer.", w->watch->id);
                return sd_event_exit(w->event, 0);
        }

        /* Before the reply there is no job to cancel yet: the reply handler cancels it. */
        if (!w->accepted)
                return 0;

        if (!quiet)
                notice(w, "Cancelling job %" PRIu64 "… (press Ctrl-C again to stop waiting)", w->watch->id);
        w->cancelling = true;
        r = job_watch_cancel(w->watch);
        if (r < 0)
                log_error_errno(r, "cannot cancel job %" PRIu64 ": %m", w->watch->id);
        return 0;
}

static int on_interrupt(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return interrupt(userdata, /* quiet= */ false);
}

/* The JobWatch callback: the reporter shows the result; if that fails on stdout, it is said once,
 * and a reader that went away (EPIPE, as in "asyncctl submit -v … | head -1") counts as SIGTERM:
 * submit cancels the job rather than leave it running unseen, watch detaches. */
static void on_result(JobWatch *jw, const JobResult *res, void *userdata) {
        Wait *w = userdata;

        reporter_on_result(jw, res, &w->reporter);
        if (w->reporter.output_error >= 0 || w->output_lost)
                return;

        w->output_lost = true;
        (void) output_failed(w->reporter.output_error, NULL);
        if (w->reporter.output_error == -EPIPE)
                (void) interrupt(w, /* quiet= */ true);
}

static int wait_setup(Wait *w, bool cancel_on_interrupt, const TaskList *tasks) {
        sigset_t mask;
        int r;

        w->cancel_on_interrupt = cancel_on_interrupt;

        r = sd_event_default(&w->event);
        if (r < 0)
                return log_error_errno(r, "cannot allocate an event loop: %m");

        r = sd_bus_attach_event(w->bus, w->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "cannot attach the bus to the event loop: %m");
        /* A lost bus ends the loop instead of leaving it waiting forever. */
        (void) sd_bus_set_exit_on_disconnect(w->bus, true);

        /* sd-event needs the signals blocked. Ctrl-C during SubmitJob is then handled once the
         * reply is in, so that the job is cancelled rather than left behind. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "cannot block signals: %m");

        r = sd_event_add_signal(w->event, &w->sigint, SIGINT, on_interrupt, w);
        if (r >= 0)
                r = sd_event_add_signal(w->event, &w->sigterm, SIGTERM, on_interrupt, w);
        if (r < 0)
                return log_error_errno(r, "cannot watch for signals: %m");

        r = reporter_init(&w->reporter, tasks, arg_verbose, arg_quiet, arg_json);
        if (r < 0)
                return log_oom();

        r = job_watch_new(w->bus, w->event, on_result, w, &w->watch);
        if (r < 0)
                return log_oom();
        w->reporter.watch = w->watch;

        r = job_watch_subscribe(w->watch);
        if (r < 0)
                return log_error_errno(r, "cannot subscribe to the signals of asyncd: %m");

        return 0;
}

/* The exit code once the loop is over, printing the final report when there is one. */
static int wait_finish(Wait *w, int loop_result, uint64_t elapsed_usec) {
        bool interrupted = w->n_interrupts > 0;
        int r;

        if (w->watch->error < 0) {
                reporter_stop(&w->reporter);
                return w->watch->error;         /* logged where it happened */
        }

        if (!w->watch->finished) {
                reporter_stop(&w->reporter);
                if (interrupted)
                        return EXIT_INTERRUPTED;
                return log_error_errno(loop_result < 0 ? loop_result : ECONNRESET,
                                       "lost the connection to the bus while waiting for job %" PRIu64 ": %m",
                                       w->watch->id);
        }

        r = reporter_finish(&w->reporter, w->watch, elapsed_usec);
        if (r == -ENOMEM)
                return r;
        if (r >= 0)
                r = check_output(NULL);         /* a pipe's buffer is written only now */
        if (r < 0)
                (void) output_failed(r, NULL);

        /* A reader that closed the pipe before the summary (submit without -v, "| true") left as
         * with -v: exit 130, not a write error. */
        if (interrupted || r == -EPIPE)
                return EXIT_INTERRUPTED;
        if (r < 0)
                return r;
        return job_exit_status(w->watch->final_state, &w->watch->counts);
}

/* Reads the tasks, command-line URLs first, and checks what the D-Bus call itself would reject
 * (invalid UTF-8), so that the message can say where the bad task came from. */
static int read_tasks(int argc, char **argv, TaskList *tasks) {
        _cleanup_(fclosep) FILE *f = NULL;
        unsigned line = 0;
        int r;

        for (int i = 0; i < argc; i++) {
                r = task_list_add(tasks, argv[i], NULL);
                if (r == -EINVAL)
                        return log_error_errno(r, "URL argument %d is empty", i + 1);
                if (r < 0)
                        return log_oom();
        }

        if (arg_input) {
                bool use_stdin = strcmp(arg_input, "-") == 0;

                tasks->input_name = use_stdin ? "<stdin>" : arg_input;
                if (!use_stdin) {
                        f = fopen(arg_input, "re");
                        if (!f)
                                return log_error_errno(errno, "cannot open %s: %m", arg_input);
                }
                r = task_list_read(tasks, use_stdin ? stdin : f, &line);
                if (r == -EBADMSG)
                        return log_error_errno(r, "%s:%u: line contains a NUL byte", tasks->input_name, line);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0)
                        return log_error_errno(r, "cannot read %s: %m", tasks->input_name);
        }

        if (tasks->n == 0)
                return log_error_errno(EINVAL, "no URLs to download (give them as arguments or with -i FILE)");

        for (size_t i = 0; i < tasks->n; i++) {
                const char *reason = task_invalid_reason(tasks->tasks + i);
                _cleanup_free_ char *origin = NULL;

                if (reason) {
                        origin = task_list_origin(tasks, i);
                        if (!origin)
                                return log_oom();
                        return log_error_errno(EINVAL, "%s: %s", origin, reason);
                }
        }
        return 0;
}

static int submit_failed(const sd_bus_error *e, int r, const TaskList *tasks) {
        _cleanup_free_ char *text = NULL;

        if (bus_error_is_unreachable(e))
                return log_error_errno(r, "cannot submit the job: %s", bus_error_text(e, r));

        /* The daemon names a bad task by its index in the job, which the user never saw: say
         * which argument or input line it is. */
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_INVALID_ARGS) && e->message) {
                text = task_list_map_message(tasks, e->message);
                if (!text)
                        return log_oom();
        }

        log_error_errno(r, "the daemon refused the job: %s", text ?: bus_error_text(e, r));
        return EXIT_REFUSED;
}

/* The rest of a large job after SubmitJob; if the daemon refuses a chunk, the job is cancelled so
 * that nothing half-submitted keeps running. */
static int add_remaining_tasks(sd_bus *bus, uint64_t id, const char *path, const TaskList *tasks) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = bus_add_remaining_tasks(bus, path, tasks, &error);
        if (r >= 0)
                return 0;
        (void) sd_bus_call_method(bus, ASYNCD_BUS_NAME, path, ASYNCD_JOB_INTERFACE, "Cancel", NULL, NULL, NULL);
        log_error("job %" PRIu64 " cancelled: its remaining tasks could not be added.", id);
        return submit_failed(&error, r, tasks);
}

/* A daemon on its way out (idle, or stopping) refuses new jobs; the next instance, started by D-Bus
 * activation once the name is free, takes them. */
#define SUBMIT_ATTEMPTS 50U
#define SUBMIT_RETRY_USEC (100 * USEC_PER_MSEC)

static bool submit_retryable(const sd_bus_error *e, unsigned attempts) {
        return sd_bus_error_has_name(e, ASYNCD_ERROR_SHUTTING_DOWN) && attempts < SUBMIT_ATTEMPTS;
}

static int new_submit(sd_bus *bus, int dir_fd, const TaskList *tasks, sd_bus_message **ret) {
        int r = bus_message_new_submit(bus, tasks, dir_fd, &arg_submit, ret);
        if (r < 0)
                return log_error_errno(r, "cannot build the SubmitJob call: %m");
        return 0;
}

static int submit_no_wait(sd_bus *bus, int dir_fd, const TaskList *tasks) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        char note[128];
        uint64_t id;
        int r;

        for (unsigned attempts = 1;; attempts++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                r = new_submit(bus, dir_fd, tasks, &m);
                if (r < 0)
                        return r;
                r = sd_bus_call(bus, m, 0, &error, &reply);
                if (r >= 0)
                        break;
                if (!submit_retryable(&error, attempts))
                        return submit_failed(&error, r, tasks);
                sd_bus_error_free(&error);
                (void) usleep(SUBMIT_RETRY_USEC);
        }

        r = sd_bus_message_read(reply, "to", &id, &path);
        if (r < 0)
                return log_error_errno(r, "cannot parse the reply of SubmitJob: %m");

        r = add_remaining_tasks(bus, id, path, tasks);
        if (r != 0)
                return r;

        if (arg_json != JSON_OFF) {
                json_object *o = json_object_new_object();

                if (!o ||
                    json_object_object_add(o, "id", json_object_new_uint64(id)) < 0 ||
                    json_object_object_add(o, "path", json_object_new_string(path)) < 0) {
                        json_object_put(o);
                        return log_oom();
                }
                r = json_print(o, arg_json, stdout);
                json_object_put(o);
                if (r == -ENOMEM)
                        return log_oom();
        } else
                printf("%" PRIu64 "\n", id);

        /* The id is all the caller gets: if it is lost, the job runs unseen, so say which. */
        (void) snprintf(note, sizeof(note), "job %" PRIu64 " was submitted and keeps running "
                        "(cancel it with \"asyncctl cancel %" PRIu64 "\")", id, id);
        r = check_output(note);
        return r < 0 ? r : EXIT_ALL_OK;
}

static int send_submit(Wait *w);

static int on_submit_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Wait *w = userdata;
        int r;

        if (w->n_interrupts > 0)
                return sd_event_exit(w->event, 0);
        r = send_submit(w);
        return r < 0 ? sd_event_exit(w->event, r) : 0;
}

static int on_cancel_and_leave_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Wait *w = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (e)
                log_error("cannot cancel job %" PRIu64 ": %s", w->watch->id, e->message ?: e->name);
        else
                notice(w, "Cancelled job %" PRIu64 "; not waiting for its results.", w->watch->id);
        return sd_event_exit(w->event, 0);
}

/* Ctrl-C twice before the job existed: it is cancelled (an open job takes no more tasks then),
 * and nobody waits for its results. Asynchronously, so that a third Ctrl-C still leaves at once. */
static int cancel_and_leave(Wait *w, uint64_t id, const char *path) {
        int r;

        w->watch->id = id;
        r = sd_bus_call_method_async(w->bus, NULL, ASYNCD_BUS_NAME, path, ASYNCD_JOB_INTERFACE, "Cancel",
                                     on_cancel_and_leave_reply, w, NULL);
        if (r < 0) {
                log_error_errno(r, "cannot cancel job %" PRIu64 ": %m", id);
                return sd_event_exit(w->event, 0);
        }
        return 0;
}

static int on_submit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Wait *w = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        const char *path;
        uint64_t id;
        int r;

        w->submit_in_flight = false;
        if (e && submit_retryable(e, w->submit_attempts)) {
                /* Interrupted while the daemon was on its way out: no job, nothing to cancel. */
                if (w->n_interrupts > 0)
                        return sd_event_exit(w->event, 0);
                if (sd_event_add_time_relative(w->event, NULL, CLOCK_MONOTONIC, SUBMIT_RETRY_USEC, 0,
                                               on_submit_retry, w) >= 0)
                        return 0;
        }
        if (e) {
                r = sd_bus_error_copy(&w->submit_error, e);
                return sd_event_exit(w->event, r < 0 ? r : 0);
        }

        r = sd_bus_message_read(reply, "to", &id, &path);
        if (r < 0) {
                log_error_errno(r, "cannot parse the reply of SubmitJob: %m");
                return sd_event_exit(w->event, r);
        }
        w->accepted = true;

        if (w->cancel_and_leave)
                return cancel_and_leave(w, id, path);

        if (isatty(STDERR_FILENO))
                notice(w, "Submitted job %" PRIu64 " with %zu tasks. Press Ctrl-C to cancel it.",
                       id, w->reporter.tasks->n);

        r = add_remaining_tasks(w->bus, id, path, w->reporter.tasks);
        if (r != 0) {
                w->refused = r;
                return sd_event_exit(w->event, r);
        }

        r = job_watch_attach(w->watch, id, path, sd_bus_message_get_sender(reply));
        if (r < 0) {
                w->watch->error = r;
                return sd_event_exit(w->event, r);
        }

        if (w->n_interrupts > 0 && !w->cancelling && !w->watch->finished) {
                notice(w, "Cancelling job %" PRIu64 "…", id);
                w->cancelling = true;
                r = job_watch_cancel(w->watch);
                if (r < 0)
                        log_error_errno(r, "cannot cancel job %" PRIu64 ": %m", id);
        }

        return reporter_start(&w->reporter, w->event);
}

/* Asynchronously, so that Ctrl-C works even if the daemon is slow to answer. */
static int send_submit(Wait *w) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = new_submit(w->bus, w->dir_fd, w->reporter.tasks, &m);
        if (r < 0)
                return r;
        w->submit_attempts++;
        r = sd_bus_call_async(w->bus, NULL, m, on_submit_reply, w, 0);
        if (r < 0)
                return log_error_errno(r, "cannot submit the job: %m");
        w->submit_in_flight = true;
        return 0;
}

int verb_submit(int argc, char **argv) {
        _cleanup_(task_list_done) TaskList tasks = {};
        _cleanup_(wait_done) Wait w = {};
        _cleanup_close_ int dir_fd = -EBADF;
        const char *dir = arg_directory ?: ".";
        uint64_t start;
        int r;

        r = read_tasks(argc, argv, &tasks);
        if (r < 0)
                return r;

        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return log_error_errno(errno, "cannot open directory %s: %m", dir);

        r = connect_bus(&w.bus);
        if (r < 0)
                return r;

        if (!arg_wait)
                return submit_no_wait(w.bus, dir_fd, &tasks);

        r = wait_setup(&w, /* cancel_on_interrupt= */ true, &tasks);
        if (r < 0)
                return r;

        start = now_usec(CLOCK_MONOTONIC);
        w.reporter.start_usec = start;
        w.dir_fd = dir_fd;
        r = send_submit(&w);
        if (r < 0)
                return r;

        r = sd_event_loop(w.event);

        if (sd_bus_error_is_set(&w.submit_error))
                return submit_failed(&w.submit_error, -sd_bus_error_get_errno(&w.submit_error), &tasks);
        if (w.refused != 0)
                return w.refused;
        if (!w.accepted)
                return w.n_interrupts > 0 ? EXIT_INTERRUPTED :
                        log_error_errno(r < 0 ? r : ECONNRESET, "cannot submit the job: %m");

        return wait_finish(&w, r, now_usec(CLOCK_MONOTONIC) - start);
}

static int refresh_info(Wait *w) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        JobInfo info = {};
        int r;

        r = bus_get_job_info(w->bus, w->watch->path, &info, &error);
        if (r < 0)
                return r;
        job_info_done(&w->watch->info);
        w->watch->info = info;
        return 0;
}

int verb_watch(int argc, char **argv) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(task_list_done) TaskList tasks = {};
        _cleanup_free_ char *path = NULL, *daemon = NULL;
        _cleanup_(wait_done) Wait w = {};
        _cleanup_free_ uint64_t *ids = NULL;
        uint64_t created, end;
        int r;

        r = parse_job_ids(argv, 1, &ids);
        if (r < 0)
                return r;

        r = connect_bus(&w.bus);
        if (r < 0)
                return r;

        r = wait_setup(&w, /* cancel_on_interrupt= */ false, NULL);
        if (r < 0)
                return r;

        r = bus_get_job(w.bus, ids[0], &path, &daemon, &error);
        if (r < 0)
                return log_error_errno(r, "cannot find job %" PRIu64 ": %s", ids[0], bus_error_text(&error, r));

        /* Lets the -v lines name tasks as submit does; without it they say "task #N". */
        r = bus_get_tasks(w.bus, path, &tasks);
        if (r < 0)
                log_debug_errno(r, "cannot list the tasks of job %" PRIu64 ", naming them by index: %m", ids[0]);
        else if (tasks.n > 0)
                w.reporter.tasks = &tasks;

        r = job_watch_attach(w.watch, ids[0], path, daemon);
        if (r < 0)
                return r;

        /* The bar's clock starts when the job was created, not when we attached. */
        created = w.watch->info.created_usec;
        if (created > 0 && created < now_usec(CLOCK_REALTIME))
                w.reporter.start_usec -= now_usec(CLOCK_REALTIME) - created;

        if (!w.watch->finished) {
                r = reporter_start(&w.reporter, w.event);
                if (r < 0)
                        return log_error_errno(r, "cannot start the progress display: %m");
                r = sd_event_loop(w.event);
        }

        /* The job's own elapsed time, from its timestamps once it is over. */
        if (w.watch->finished)
                (void) refresh_info(&w);
        end = w.watch->info.finished_usec ?: now_usec(CLOCK_REALTIME);
        return wait_finish(&w, r, created > 0 && end > created ? end - created : 0);
}
