/* SPDX-License-Identifier: MIT */
/* bus-manager: the io.asyncd1.Manager interface — SubmitJob and its argument checks, CancelJob, job
 * lookup and listing — and the registration of every object the daemon serves. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bus-job.h"
#include "config.h"
#include "log.h"
#include "manager.h"

static int read_option_value(sd_bus_message *message, const char *key, const char *type, void *value,
                             sd_bus_error *error) {
        const char *contents;
        int r;

        r = sd_bus_message_peek_type(message, NULL, &contents);
        if (r < 0)
                return r;
        if (strcmp(contents, type) != 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "options: \"%s\" must be of type \"%s\", not \"%s\"", key, type, contents);
        return sd_bus_message_read(message, "v", type, value);
}

static int read_options(sd_bus_message *message, JobOptions *o, const char **ret_name, sd_bus_error *error) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(message, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(message, 'e', "sv")) > 0) {
                int b;

                r = sd_bus_message_read(message, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, "concurrency") == 0) {
                        r = read_option_value(message, key, "u", &o->concurrency, error);
                        if (r >= 0 && (o->concurrency < 1 || o->concurrency > JOB_CONCURRENCY_MAX))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "options: \"concurrency\" must be 1..%u, not %u",
                                                         JOB_CONCURRENCY_MAX, o->concurrency);
                } else if (strcmp(key, "name") == 0) {
                        r = read_option_value(message, key, "s", ret_name, error);
                        if (r >= 0 && strlen(*ret_name) > JOB_NAME_MAX_BYTES)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "options: \"name\" must be at most %u bytes, not %zu",
                                                         JOB_NAME_MAX_BYTES, strlen(*ret_name));
                } else if (strcmp(key, "timeout_usec") == 0)
                        r = read_option_value(message, key, "t", &o->timeout_usec, error);
                else if (strcmp(key, "connect_timeout_usec") == 0)
                        r = read_option_value(message, key, "t", &o->connect_timeout_usec, error);
                else if (strcmp(key, "stall_timeout_usec") == 0)
                        r = read_option_value(message, key, "t", &o->stall_timeout_usec, error);
                else if (strcmp(key, "max_bytes") == 0)
                        r = read_option_value(message, key, "t", &o->max_bytes, error);
                else if (strcmp(key, "overwrite") == 0) {
                        r = read_option_value(message, key, "b", &b, error);
                        o->overwrite = b;
                } else if (strcmp(key, "fsync") == 0) {
                        r = read_option_value(message, key, "b", &b, error);
                        o->fsync = b;
                } else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "options: unknown key \"%s\"", key);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(message);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(message);
}

static int check_directory(int fd, bool need_fsync, int *ret, sd_bus_error *error) {
        struct stat st;
        int copy, flags;

        if (fstat(fd, &st) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "directory: cannot stat descriptor: %s",
                                         strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "directory: file descriptor does not refer to a directory");
        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return -errno;
        if (need_fsync && (flags & O_PATH)) {
                /* fsync() of an O_PATH descriptor fails (EBADF): every task would fail after its file
                 * was linked in. The same directory, opened through the descriptor itself. */
                copy = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (copy < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "directory: cannot open the O_PATH descriptor for fsync: %s",
                                                 strerror(errno));
        } else {
                copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (copy < 0)
                        return -errno;
        }
        *ret = copy;
        return 0;
}

static int sender_uid(sd_bus_message *message, uid_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        int r;

        r = sd_bus_query_sender_creds(message, SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        return sd_bus_creds_get_euid(creds, ret);
}

static int method_submit_job(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        JobOptions options = JOB_OPTIONS_DEFAULT;
        _cleanup_close_ int dirfd = -EBADF;
        TaskSpec *tasks = NULL;
        _cleanup_free_ char *reason = NULL, *name = NULL;
        const char *name_arg = "";
        size_t n_tasks = 0, bad;
        uint64_t flags;
        BusJob *bj;
        uid_t uid;
        int fd, r;

        if (m->stopping || m->releasing_name)
                return sd_bus_error_set(error, ERROR_SHUTTING_DOWN, m->stopping ? "asyncd is shutting down" :
                                        "asyncd is exiting after being idle; call again to start a new instance");

        r = sender_uid(message, &uid);
        if (r < 0)
                return r;
        if (m->system_bus && uid != 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "only root may submit jobs on the system bus (caller uid %u)", (unsigned) uid);

        r = bus_read_tasks(message, m->config.max_tasks_per_job, m->config.max_tasks_per_job, &tasks, &n_tasks,
                           error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(message, "h", &fd);
        if (r == -EBADMSG)
                /* sd-bus's own "Bad message" would not say which argument. */
                r = sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                     "directory: the handle does not refer to a file descriptor passed with the call");
        if (r >= 0)
                r = read_options(message, &options, &name_arg, error);
        if (r >= 0 && !(name = strdup(name_arg)))
                r = -ENOMEM;
        if (r >= 0)
                r = sd_bus_message_read(message, "t", &flags);
        if (r < 0)
                goto fail;

        if (flags & ~(uint64_t) SUBMIT_JOB_MORE_TASKS) {
                r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "flags: unknown bits 0x%" PRIx64,
                                      flags & ~(uint64_t) SUBMIT_JOB_MORE_TASKS);
                goto fail;
        }
        if (n_tasks == 0) {
                r = sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "tasks: at least one task is required");
                goto fail;
        }
        r = task_specs_prepare(tasks, n_tasks, 0, &bad, &reason);
        if (r == -EINVAL) {
                r = sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "task %zu: %s", bad, reason);
                goto fail;
        }
        if (r < 0)
                goto fail;
        r = check_directory(fd, options.fsync, &dirfd, error);
        if (r < 0)
                goto fail;
        if (manager_count_running_jobs_of(m, uid) >= m->config.max_jobs_per_owner) {
                r = sd_bus_error_setf(error, ERROR_LIMIT_EXCEEDED,
                                      "uid %u already has %u running jobs, the limit", (unsigned) uid,
                                      m->config.max_jobs_per_owner);
                goto fail;
        }

        r = bus_job_new(&bj, m, tasks, n_tasks, dirfd, &options, name, uid, flags & SUBMIT_JOB_MORE_TASKS);
        if (r < 0)
                goto fail;
        TAKE_FD(dirfd);
        if (flags & SUBMIT_JOB_MORE_TASKS)
                bus_job_track_feeder(bj, message);
        return sd_bus_reply_method_return(message, "to", bj->id, bj->path);

fail:
        task_specs_free(tasks, n_tasks);
        return r;
}

/* Reads the job id argument and looks the job up; NoSuchJob if there is none. */
static int read_job(sd_bus_message *message, Manager *m, BusJob **ret, sd_bus_error *error) {
        uint64_t id;
        int r;

        r = sd_bus_message_read(message, "t", &id);
        if (r < 0)
                return r;
        *ret = manager_find_job(m, id);
        if (!*ret)
                return sd_bus_error_setf(error, ERROR_NO_SUCH_JOB, "no job with id %" PRIu64, id);
        return 0;
}

static int method_cancel_job(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        BusJob *bj = NULL;
        int r;

        r = read_job(message, userdata, &bj, error);
        if (r < 0 || !bj)
                return r;
        return bus_job_cancel(bj, message, error);
}

static int method_get_job(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        BusJob *bj = NULL;
        int r;

        r = read_job(message, userdata, &bj, error);
        if (r < 0 || !bj)
                return r;
        return sd_bus_reply_method_return(message, "o", bj->path);
}

static int method_list_jobs(sd_bus_message *message, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(message, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(tossuuuuu)");
        if (r < 0)
                return r;
        LIST_FOREACH(&m->jobs, it, tmp) {
                BusJob *bj = container_of(it, BusJob, link);
                Job *j = bj->job;

                r = sd_bus_message_append(reply, "(tossuuuuu)", bj->id, bj->path, bj->name,
                                          job_state_to_string(j->state), j->n_tasks, j->counts[TASK_OK],
                                          j->counts[TASK_NOT_FOUND], j->counts[TASK_ERROR], j->counts[TASK_CANCELLED]);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

static int property_get_active_transfers(sd_bus *bus, const char *path, const char *interface, const char *property,
                                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "u", m->engine->active);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ActiveTransfers", "u", property_get_active_transfers, 0, 0),
        SD_BUS_METHOD_WITH_ARGS("SubmitJob",
                                SD_BUS_ARGS("a(ss)", tasks, "h", directory, "a{sv}", options, "t", flags),
                                SD_BUS_RESULT("t", id, "o", job),
                                method_submit_job, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelJob", SD_BUS_ARGS("t", id), SD_BUS_NO_RESULT,
                                method_cancel_job, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetJob", SD_BUS_ARGS("t", id), SD_BUS_RESULT("o", job),
                                method_get_job, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListJobs", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(tossuuuuu)", jobs),
                                method_list_jobs, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("JobNew", SD_BUS_ARGS("t", id, "o", job), 0),
        SD_BUS_SIGNAL_WITH_ARGS("JobFinished", SD_BUS_ARGS("t", id, "o", job, "s", state), 0),
        SD_BUS_VTABLE_END,
};

int manager_add_bus_objects(Manager *m) {
        int r;

        r = sd_bus_add_object_vtable(m->bus, NULL, MANAGER_PATH, MANAGER_INTERFACE, manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the manager object: %m");
        r = sd_bus_add_fallback_vtable(m->bus, NULL, JOB_PATH_PREFIX, JOB_INTERFACE, bus_job_vtable,
                                       bus_job_object_find, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the job objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, JOB_PATH_PREFIX, bus_job_node_enumerator, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the job enumerator: %m");
        r = sd_bus_add_object_manager(m->bus, NULL, MANAGER_PATH);
        if (r < 0)
                return log_error_errno(r, "Failed to register the object manager: %m");
        return 0;
}
