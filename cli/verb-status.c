/* SPDX-License-Identifier: MIT */
/* verb-status: the query verbs "status", "results" and "cancel" — one call each, one answer. */
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "asyncctl.h"
#include "log.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

#define RESULTS_PER_CALL 512U

static uint64_t now_realtime_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static void job_infos_free(JobInfo *infos, size_t n) {
        for (size_t i = 0; i < n; i++)
                job_info_done(infos + i);
        free(infos);
}

static int job_failed(uint64_t id, const char *what, const sd_bus_error *e, int r) {
        return log_error_errno(r, "cannot %s job %" PRIu64 ": %s", what, id, bus_error_text(e, r));
}

static int print_json(json_object *o) {
        int r = json_print(o, arg_json, stdout);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return output_failed(r, NULL);
        return EXIT_ALL_OK;
}

static int list_jobs(sd_bus *bus) {
        static const char *const headers[] = {
                "ID", "NAME", "STATE", "DONE/TOTAL", "OK", "NOTFOUND", "ERRORS", "CANCELLED", "AGE",
        };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *array = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        JobInfo *jobs = NULL;
        uint64_t now = now_realtime_usec();
        size_t n = 0;
        int r;

        r = bus_list_jobs(bus, &jobs, &n, &error);
        if (r < 0)
                return log_error_errno(r, "cannot list the jobs: %s", bus_error_text(&error, r));

        table = table_new(ELEMENTSOF(headers), headers);
        array = json_object_new_array();
        if (!table || !array) {
                r = log_oom();
                goto finish;
        }
        for (size_t c = 0; c < ELEMENTSOF(headers); c++)
                if (c != 1 && c != 2)
                        table_align_right(table, c);

        for (size_t i = 0; i < n; i++) {
                JobInfo *j = jobs + i;
                char id[32], done[32], ok[16], nf[16], err[16], cancelled[16], age[32] = "";

                /* ListJobs() has no timestamps; a job removed meanwhile just shows no age. */
                (void) sd_bus_get_property_trivial(bus, ASYNCD_BUS_NAME, j->path, ASYNCD_JOB_INTERFACE,
                                                   "CreatedUSec", NULL, 't', &j->created_usec);

                if (arg_json != JSON_OFF) {
                        json_object *o = job_info_to_json(j, /* details= */ false);
                        if (!o || json_object_array_add(array, o) < 0) {
                                json_object_put(o);
                                r = log_oom();
                                goto finish;
                        }
                        continue;
                }

                (void) snprintf(id, sizeof(id), "%" PRIu64, j->id);
                (void) snprintf(done, sizeof(done), "%" PRIu32 "/%" PRIu32, job_counts_done(&j->counts), j->counts.total);
                (void) snprintf(ok, sizeof(ok), "%" PRIu32, j->counts.ok);
                (void) snprintf(nf, sizeof(nf), "%" PRIu32, j->counts.not_found);
                (void) snprintf(err, sizeof(err), "%" PRIu32, j->counts.error);
                (void) snprintf(cancelled, sizeof(cancelled), "%" PRIu32, j->counts.cancelled);
                if (j->created_usec > 0)
                        format_age(now > j->created_usec ? now - j->created_usec : 0, age, sizeof(age));

                r = table_add_row(table, (const char *const[]) { id, j->name, j->state, done, ok, nf, err, cancelled, age });
                if (r < 0) {
                        r = log_oom();
                        goto finish;
                }
        }

        if (arg_json != JSON_OFF) {
                r = print_json(array);
                goto finish;
        }

        if (n > 0) {
                r = table_print(table, stdout, arg_legend);
                if (r < 0) {
                        r = r == -ENOMEM ? log_oom() : output_failed(r, NULL);
                        goto finish;
                }
        }
        if (arg_legend) {
                if (n > 0)
                        printf("\n%zu job%s listed.\n", n, n == 1 ? "" : "s");
                else
                        printf("No jobs.\n");
        }
        r = EXIT_ALL_OK;

finish:
        job_infos_free(jobs, n);
        return r;
}

static void format_timestamp(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (!localtime_r(&t, &tm) || strftime(buf, size, "%a %Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                (void) snprintf(buf, size, "%" PRIu64, usec);
}

static void print_job_details(const JobInfo *j) {
        char when[64], age[32], bytes[32];
        struct passwd *pw = getpwuid(j->owner);
        uint64_t now = now_realtime_usec();

        if (j->name && *j->name)
                printf("Job %" PRIu64 " \"%s\"\n", j->id, j->name);
        else
                printf("Job %" PRIu64 "\n", j->id);

        printf("       Path: %s\n", j->path);
        printf("      State: %s\n", j->state ?: "-");
        printf("      Tasks: %" PRIu32 "/%" PRIu32 " done: %" PRIu32 " ok, %" PRIu32 " not found, %" PRIu32
               " error%s, %" PRIu32 " cancelled\n",
               job_counts_done(&j->counts), j->counts.total, j->counts.ok, j->counts.not_found,
               j->counts.error, j->counts.error == 1 ? "" : "s", j->counts.cancelled);
        format_bytes(j->bytes, bytes, sizeof(bytes));
        printf(" Downloaded: %s\n", bytes);
        printf("Concurrency: %" PRIu32 "\n", j->concurrency);
        if (pw)
                printf("      Owner: %" PRIu32 " (%s)\n", j->owner, pw->pw_name);
        else
                printf("      Owner: %" PRIu32 "\n", j->owner);
        if (j->created_usec > 0) {
                format_timestamp(j->created_usec, when, sizeof(when));
                format_age(now > j->created_usec ? now - j->created_usec : 0, age, sizeof(age));
                printf("    Created: %s (%s ago)\n", when, age);
        }
        if (j->finished_usec > 0) {
                format_timestamp(j->finished_usec, when, sizeof(when));
                printf("   Finished: %s (after %.2fs)\n", when,
                       j->finished_usec > j->created_usec ?
                       (double) (j->finished_usec - j->created_usec) / USEC_PER_SEC : 0.0);
        }
}

static int show_jobs(sd_bus *bus, const uint64_t *ids, size_t n) {
        _cleanup_(json_object_putp) json_object *array = NULL;
        int r, ret = EXIT_ALL_OK;

        array = json_object_new_array();
        if (!array)
                return log_oom();

        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_free_ char *path = NULL;
                JobInfo j = {};

                r = bus_get_job(bus, ids[i], &path, NULL, &error);
                if (r >= 0)
                        r = bus_get_job_info(bus, path, &j, &error);
                if (r < 0) {
                        ret = job_failed(ids[i], "show", &error, r);
                        continue;
                }

                if (arg_json != JSON_OFF) {
                        json_object *o = job_info_to_json(&j, /* details= */ true);
                        if (!o || json_object_array_add(array, o) < 0) {
                                json_object_put(o);
                                job_info_done(&j);
                                return log_oom();
                        }
                } else {
                        if (i > 0)
                                putchar('\n');
                        print_job_details(&j);
                }
                job_info_done(&j);
        }

        if (arg_json != JSON_OFF) {
                r = print_json(array);
                if (r < 0)
                        return r;
        }
        return ret;
}

int verb_status(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_free_ uint64_t *ids = NULL;
        int r;

        /* A bad id is a usage error, whether or not the bus is there. */
        r = parse_job_ids(argv, (size_t) argc, &ids);
        if (r < 0)
                return r;

        r = connect_bus(&bus);
        if (r < 0)
                return r;

        if (argc == 0)
                return list_jobs(bus);
        return show_jobs(bus, ids, (size_t) argc);
}

/* CancelJob() of a job that has finished succeeds and changes nothing (it is idempotent on
 * purpose), so the job's State is read first: "cancelled" must not claim what did not happen. */
static int cancel_one(sd_bus *bus, uint64_t id, json_object *array) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *path = NULL, *state = NULL;
        bool running;
        json_object *o;
        int r, ret = EXIT_ALL_OK;

        r = bus_get_job(bus, id, &path, NULL, &error);
        if (r >= 0)
                r = sd_bus_get_property_string(bus, ASYNCD_BUS_NAME, path, ASYNCD_JOB_INTERFACE, "State",
                                               &error, &state);
        running = r >= 0 && strcmp(state, "running") == 0;
        if (running)
                r = bus_cancel_job(bus, id, &error);
        if (r < 0)
                ret = job_failed(id, "cancel", &error, r);
        else if (!running && !arg_quiet)
                log_info("job %" PRIu64 " has already finished (%s): nothing to cancel", id, state);

        o = json_object_new_object();
        if (!o ||
            json_object_object_add(o, "id", json_object_new_uint64(id)) < 0 ||
            json_object_object_add(o, "cancelled", json_object_new_boolean(r >= 0 && running)) < 0 ||
            (state && json_object_object_add(o, "state", json_object_new_string(state)) < 0) ||
            (r < 0 && json_object_object_add(o, "error", json_object_new_string(bus_error_text(&error, r))) < 0) ||
            json_object_array_add(array, o) < 0) {
                json_object_put(o);
                return log_oom();
        }
        return ret;
}

int verb_cancel(int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(json_object_putp) json_object *array = NULL;
        _cleanup_free_ uint64_t *ids = NULL;
        int r, ret = EXIT_ALL_OK;

        r = parse_job_ids(argv, (size_t) argc, &ids);
        if (r < 0)
                return r;

        r = connect_bus(&bus);
        if (r < 0)
                return r;

        array = json_object_new_array();
        if (!array)
                return log_oom();

        for (int i = 0; i < argc; i++) {
                r = cancel_one(bus, ids[i], array);
                if (r == -ENOMEM)
                        return r;
                if (r != EXIT_ALL_OK)
                        ret = r;
        }

        if (arg_json != JSON_OFF) {
                r = print_json(array);
                if (r < 0)
                        return r;
        }
        return ret;
}

typedef struct ResultsContext {
        Table *table;
        json_object *array;
        const TaskList *tasks;          /* from Job.GetTasks; empty with an older daemon */
        size_t n;
} ResultsContext;

static int add_result(const JobResult *res, void *userdata) {
        ResultsContext *c = userdata;
        char seq[16], index[16], http[16], bytes[32];

        c->n++;

        if (c->array) {
                json_object *o = result_to_json(res, res->index < c->tasks->n ? c->tasks->tasks[res->index].url : NULL);
                if (!o || json_object_array_add(c->array, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
                return 0;
        }

        (void) snprintf(seq, sizeof(seq), "%" PRIu32, res->seq);
        (void) snprintf(index, sizeof(index), "%" PRIu32, res->index);
        (void) snprintf(http, sizeof(http), "%" PRIu32, res->http_code);
        format_bytes(res->bytes, bytes, sizeof(bytes));

        return table_add_row(c->table, (const char *const[]) {
                seq, index, res->status, res->http_code > 0 ? http : NULL,
                res->bytes > 0 || strcmp(res->status, "ok") == 0 ? bytes : NULL, res->filename, res->error,
        });
}

int verb_results(int argc, char **argv) {
        static const char *const headers[] = { "SEQ", "INDEX", "STATUS", "HTTP", "BYTES", "FILE", "ERROR" };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *array = NULL;
        _cleanup_(table_freep) Table *table = NULL;
        _cleanup_free_ uint64_t *ids = NULL;
        _cleanup_free_ char *path = NULL;
        _cleanup_(task_list_done) TaskList tasks = {};
        ResultsContext c = { .tasks = &tasks };
        uint32_t cursor = 0;
        int r;

        r = parse_job_ids(argv, 1, &ids);
        if (r < 0)
                return r;

        r = connect_bus(&bus);
        if (r < 0)
                return r;

        r = bus_get_job(bus, ids[0], &path, NULL, &error);
        if (r < 0)
                return job_failed(ids[0], "find", &error, r);

        r = bus_get_tasks(bus, path, &tasks);
        if (r < 0)
                log_debug_errno(r, "cannot list the tasks of job %" PRIu64 ": %m", ids[0]);

        table = table_new(ELEMENTSOF(headers), headers);
        if (!table)
                return log_oom();
        for (size_t i = 0; i < 5; i++)
                if (i != 2)
                        table_align_right(table, i);
        if (arg_json != JSON_OFF) {
                array = json_object_new_array();
                if (!array)
                        return log_oom();
        }
        c.table = table;
        c.array = array;

        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                size_t before = c.n;

                r = bus_get_results(bus, path, cursor, RESULTS_PER_CALL, &reply, &error);
                if (r < 0)
                        return job_failed(ids[0], "read the results of", &error, r);

                r = bus_read_results(reply, add_result, &c);
                if (r < 0)
                        return log_error_errno(r, "cannot parse the results of job %" PRIu64 ": %m", ids[0]);

                r = sd_bus_message_read(reply, "u", &cursor);
                if (r < 0)
                        return log_error_errno(r, "cannot parse the results of job %" PRIu64 ": %m", ids[0]);

                if (c.n == before)
                        break;
        }

        if (array)
                return print_json(array);

        if (c.n > 0) {
                r = table_print(table, stdout, arg_legend);
                if (r < 0)
                        return r == -ENOMEM ? log_oom() : output_failed(r, NULL);
        }
        if (arg_legend) {
                if (c.n > 0)
                        printf("\n%zu result%s.\n", c.n, c.n == 1 ? "" : "s");
                else
                        printf("No results yet.\n");
        }
        return EXIT_ALL_OK;
}
