/* SPDX-License-Identifier: MIT */
/* bus-client: connecting to asyncd and calling its io.asyncd1 API (the D-Bus contract, version 1). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-client.h"
#include "macro.h"


const char *bus_transport_to_string(BusTransport t) {
        switch (t) {
        case BUS_TRANSPORT_SYSTEM:
                return "system bus";
        case BUS_TRANSPORT_USER:
                return "user bus";
        default:
                return "bus";
        }
}

int bus_connect(BusTransport transport, const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        switch (transport) {

        case BUS_TRANSPORT_SYSTEM:
                r = sd_bus_open_system(&bus);
                break;

        case BUS_TRANSPORT_USER:
                r = sd_bus_open_user(&bus);
                break;

        case BUS_TRANSPORT_ADDRESS:
                r = sd_bus_new(&bus);
                if (r < 0)
                        return r;
                r = sd_bus_set_address(bus, address);
                if (r < 0)
                        return r;
                r = sd_bus_set_bus_client(bus, true);
                if (r < 0)
                        return r;
                r = sd_bus_negotiate_fds(bus, true);
                if (r < 0)
                        return r;
                r = sd_bus_start(bus);
                break;

        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;

        /* Fail here rather than at the first call, with the reason (no socket, refused, auth…). */
        r = sd_bus_get_unique_name(bus, &(const char *) { NULL });
        if (r < 0)
                return r;

        *ret = TAKE_PTR(bus);
        return 0;
}

static int append_options(sd_bus_message *m, const SubmitOptions *o) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;

        if (o->set_concurrency) {
                r = sd_bus_message_append(m, "{sv}", "concurrency", "u", o->concurrency);
                if (r < 0)
                        return r;
        }
        if (o->name) {
                r = sd_bus_message_append(m, "{sv}", "name", "s", o->name);
                if (r < 0)
                        return r;
        }
        if (o->set_timeout) {
                r = sd_bus_message_append(m, "{sv}", "timeout_usec", "t", o->timeout_usec);
                if (r < 0)
                        return r;
        }
        if (o->set_connect_timeout) {
                r = sd_bus_message_append(m, "{sv}", "connect_timeout_usec", "t", o->connect_timeout_usec);
                if (r < 0)
                        return r;
        }
        if (o->set_stall_timeout) {
                r = sd_bus_message_append(m, "{sv}", "stall_timeout_usec", "t", o->stall_timeout_usec);
                if (r < 0)
                        return r;
        }
        if (o->set_max_bytes) {
                r = sd_bus_message_append(m, "{sv}", "max_bytes", "t", o->max_bytes);
                if (r < 0)
                        return r;
        }
        if (o->overwrite >= 0) {
                r = sd_bus_message_append(m, "{sv}", "overwrite", "b", o->overwrite);
                if (r < 0)
                        return r;
        }
        if (o->fsync >= 0) {
                r = sd_bus_message_append(m, "{sv}", "fsync", "b", o->fsync);
                if (r < 0)
                        return r;
        }

        return sd_bus_message_close_container(m);
}

/* $ASYNCCTL_SUBMIT_CHUNK overrides the chunk size, so tests can exercise AddTasks cheaply. */
static size_t submit_chunk(void) {
        const char *e = getenv("ASYNCCTL_SUBMIT_CHUNK");
        unsigned long v = e ? strtoul(e, NULL, 10) : 0;

        return v > 0 ? v : SUBMIT_CHUNK_TASKS;
}

/* Where the chunk that starts at task from ends: after SUBMIT_CHUNK_TASKS tasks, or earlier once
 * their strings reach SUBMIT_CHUNK_BYTES (long URLs: 30,000 presigned ones are over 32 MiB). */
static size_t chunk_end(const TaskList *tasks, size_t from) {
        size_t to = from, bytes = 0, max = submit_chunk();

        while (to < tasks->n && to - from < max) {
                const Task *t = &tasks->tasks[to];

                bytes += strlen(t->url) + strlen(t->filename ?: "") + 16;
                if (to > from && bytes > SUBMIT_CHUNK_BYTES)
                        break;
                to++;
        }
        return to;
}

static int append_tasks(sd_bus_message *m, const TaskList *tasks, size_t from, size_t to) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "(ss)");
        if (r < 0)
                return r;
        for (size_t i = from; i < to; i++) {
                r = sd_bus_message_append(m, "(ss)", tasks->tasks[i].url, tasks->tasks[i].filename ?: "");
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

int bus_message_new_submit(sd_bus *bus, const TaskList *tasks, int dir_fd, const SubmitOptions *o,
                           sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, ASYNCD_BUS_NAME, ASYNCD_MANAGER_PATH,
                                           ASYNCD_MANAGER_INTERFACE, "SubmitJob");
        if (r < 0)
                return r;

        size_t first = chunk_end(tasks, 0);
        r = append_tasks(m, tasks, 0, first);
        if (r < 0)
                return r;

        /* sd-bus duplicates the fd into the message; ours stays open. */
        r = sd_bus_message_append(m, "h", dir_fd);
        if (r < 0)
                return r;

        r = append_options(m, o);
        if (r < 0)
                return r;

        r = sd_bus_message_append(m, "t", first < tasks->n ? UINT64_C(1) : UINT64_C(0));
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

int bus_add_remaining_tasks(sd_bus *bus, const char *path, const TaskList *tasks, sd_bus_error *error) {
        int r;

        for (size_t from = chunk_end(tasks, 0), to; from < tasks->n; from = to) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                to = chunk_end(tasks, from);
                r = sd_bus_message_new_method_call(bus, &m, ASYNCD_BUS_NAME, path, ASYNCD_JOB_INTERFACE, "AddTasks");
                if (r < 0)
                        return r;
                r = append_tasks(m, tasks, from, to);
                if (r >= 0)
                        r = sd_bus_message_append(m, "t", to < tasks->n ? UINT64_C(1) : UINT64_C(0));
                if (r >= 0)
                        r = sd_bus_call(bus, m, 0, error, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

int bus_read_results(sd_bus_message *m, bus_result_cb_t cb, void *userdata) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', ASYNCD_RESULT_SIGNATURE);
        if (r < 0)
                return r;

        for (;;) {
                JobResult res = {};

                r = sd_bus_message_read(m, ASYNCD_RESULT_SIGNATURE, &res.seq, &res.index, &res.status,
                                        &res.http_code, &res.bytes, &res.filename, &res.error);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                r = cb(&res, userdata);
                if (r < 0)
                        return r;
        }

        return sd_bus_message_exit_container(m);
}

int bus_get_job(sd_bus *bus, uint64_t id, char **ret_path, char **ret_daemon, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *p = NULL, *d = NULL;
        const char *path, *sender;
        int r;

        r = sd_bus_call_method(bus, ASYNCD_BUS_NAME, ASYNCD_MANAGER_PATH, ASYNCD_MANAGER_INTERFACE,
                               "GetJob", error, &reply, "t", id);
        if (r < 0)
                return r;

        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;

        p = strdup(path);
        sender = sd_bus_message_get_sender(reply);
        d = strdup(sender ?: "");
        if (!p || !d)
                return -ENOMEM;

        *ret_path = TAKE_PTR(p);
        if (ret_daemon)
                *ret_daemon = TAKE_PTR(d);
        return 0;
}

int bus_cancel_job(sd_bus *bus, uint64_t id, sd_bus_error *error) {
        return sd_bus_call_method(bus, ASYNCD_BUS_NAME, ASYNCD_MANAGER_PATH, ASYNCD_MANAGER_INTERFACE,
                                  "CancelJob", error, NULL, "t", id);
}

static void job_infos_free(JobInfo *infos, size_t n) {
        for (size_t i = 0; i < n; i++)
                job_info_done(infos + i);
        free(infos);
}

int bus_list_jobs(sd_bus *bus, JobInfo **ret, size_t *ret_n, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        JobInfo *infos = NULL;
        size_t n = 0;
        int r;

        r = sd_bus_call_method(bus, ASYNCD_BUS_NAME, ASYNCD_MANAGER_PATH, ASYNCD_MANAGER_INTERFACE,
                               "ListJobs", error, &reply, NULL);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "(tossuuuuu)");
        if (r < 0)
                return r;

        for (;;) {
                const char *path, *name, *state;
                JobInfo j = {};
                JobInfo *a;

                r = sd_bus_message_read(reply, "(tossuuuuu)", &j.id, &path, &name, &state, &j.counts.total,
                                        &j.counts.ok, &j.counts.not_found, &j.counts.error, &j.counts.cancelled);
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;

                a = reallocarray(infos, n + 1, sizeof(JobInfo));
                if (!a) {
                        r = -ENOMEM;
                        goto fail;
                }
                infos = a;

                j.path = strdup(path);
                j.name = strdup(name);
                j.state = strdup(state);
                infos[n++] = j;
                if (!j.path || !j.name || !j.state) {
                        r = -ENOMEM;
                        goto fail;
                }
        }

        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                goto fail;

        *ret = infos;
        *ret_n = n;
        return 0;

fail:
        job_infos_free(infos, n);
        return r;
}

static int read_property(sd_bus_message *m, const char *key, JobInfo *j) {
        static const struct {
                const char *name;
                char type;
                size_t offset;
        } table[] = {
                { "Id",              't', offsetof(JobInfo, id) },
                { "Name",            's', offsetof(JobInfo, name) },
                { "Owner",           'u', offsetof(JobInfo, owner) },
                { "State",           's', offsetof(JobInfo, state) },
                { "Total",           'u', offsetof(JobInfo, counts.total) },
                { "Ok",              'u', offsetof(JobInfo, counts.ok) },
                { "NotFound",        'u', offsetof(JobInfo, counts.not_found) },
                { "Error",           'u', offsetof(JobInfo, counts.error) },
                { "Cancelled",       'u', offsetof(JobInfo, counts.cancelled) },
                { "BytesDownloaded", 't', offsetof(JobInfo, bytes) },
                { "Concurrency",     'u', offsetof(JobInfo, concurrency) },
                { "CreatedUSec",     't', offsetof(JobInfo, created_usec) },
                { "FinishedUSec",    't', offsetof(JobInfo, finished_usec) },
        };
        char sig[2] = {};
        int r;

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                void *p = (uint8_t *) j + table[i].offset;

                if (strcmp(key, table[i].name) != 0)
                        continue;

                sig[0] = table[i].type;
                r = sd_bus_message_enter_container(m, 'v', sig);
                if (r < 0)
                        return r;

                if (table[i].type == 's') {
                        const char *s;
                        char *copy;

                        r = sd_bus_message_read_basic(m, 's', &s);
                        if (r < 0)
                                return r;
                        copy = strdup(s);
                        if (!copy)
                                return -ENOMEM;
                        free(*(char **) p);
                        *(char **) p = copy;
                } else {
                        r = sd_bus_message_read_basic(m, table[i].type, p);
                        if (r < 0)
                                return r;
                }

                return sd_bus_message_exit_container(m);
        }

        /* A property this client does not know (a later version of the API): skip it. */
        return sd_bus_message_skip(m, "v");
}

int bus_get_job_info(sd_bus *bus, const char *path, JobInfo *ret, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        JobInfo j = {};
        int r;

        r = sd_bus_call_method(bus, ASYNCD_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll",
                               error, &reply, "s", ASYNCD_JOB_INTERFACE);
        if (r < 0)
                return r;

        j.path = strdup(path);
        if (!j.path)
                return -ENOMEM;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                goto fail;

        for (;;) {
                const char *key;

                r = sd_bus_message_enter_container(reply, 'e', "sv");
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;

                r = sd_bus_message_read_basic(reply, 's', &key);
                if (r < 0)
                        goto fail;
                r = read_property(reply, key, &j);
                if (r < 0)
                        goto fail;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        goto fail;
        }

        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                goto fail;

        *ret = j;
        return 0;

fail:
        job_info_done(&j);
        return r;
}

int bus_read_changed_properties(sd_bus_message *m, JobInfo *j) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;

        for (;;) {
                const char *key;

                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                r = sd_bus_message_read_basic(m, 's', &key);
                if (r < 0)
                        return r;
                r = read_property(m, key, j);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }

        return sd_bus_message_exit_container(m);
}

int bus_get_tasks(sd_bus *bus, const char *path, TaskList *l) {
        uint32_t cursor = 0, next;
        int r;

        for (;;) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                const char *url, *filename;

                r = sd_bus_call_method(bus, ASYNCD_BUS_NAME, path, ASYNCD_JOB_INTERFACE, "GetTasks", &error,
                                       &reply, "uu", cursor, (uint32_t) 4096);
                if (r < 0)
                        return sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_METHOD) ? 0 : r;
                r = sd_bus_message_enter_container(reply, 'a', "(ss)");
                if (r < 0)
                        return r;
                while ((r = sd_bus_message_read(reply, "(ss)", &url, &filename)) > 0) {
                        r = task_list_add(l, url, filename);
                        if (r < 0)
                                return r;
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_read(reply, "u", &next);
                if (r < 0)
                        return r;
                if (next <= cursor)
                        return 0;
                cursor = next;
        }
}

int bus_get_results(sd_bus *bus, const char *path, uint32_t cursor, uint32_t max,
                    sd_bus_message **ret_reply, sd_bus_error *error) {
        return sd_bus_call_method(bus, ASYNCD_BUS_NAME, path, ASYNCD_JOB_INTERFACE, "GetResults",
                                  error, ret_reply, "uu", cursor, max);
}

bool bus_error_is_unreachable(const sd_bus_error *e) {
        static const char *const names[] = {
                SD_BUS_ERROR_SERVICE_UNKNOWN,
                SD_BUS_ERROR_NAME_HAS_NO_OWNER,
                SD_BUS_ERROR_NO_REPLY,
                SD_BUS_ERROR_TIMEOUT,
                "org.freedesktop.DBus.Error.TimedOut",
                SD_BUS_ERROR_DISCONNECTED,
                SD_BUS_ERROR_NO_SERVER,
                SD_BUS_ERROR_UNKNOWN_METHOD,
                SD_BUS_ERROR_UNKNOWN_OBJECT,
                SD_BUS_ERROR_UNKNOWN_INTERFACE,
        };

        if (!sd_bus_error_is_set(e))
                return true;    /* a local failure, not a refusal */
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (sd_bus_error_has_name(e, names[i]))
                        return true;
        return false;
}

const char *bus_error_text(const sd_bus_error *e, int r) {
        if (sd_bus_error_is_set(e) && e->message)
                return e->message;
        return strerror(r < 0 ? -r : r);
}
