/* SPDX-License-Identifier: MIT */
/* Tests for job: tasks added to an open job are checked against every earlier name, also after an
 * allocation failed. No transfer runs: the loop is never dispatched. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alloc-fail.h"
#include "job.h"

DEFINE_FAILING_ALLOCATOR(calloc, (size_t n, size_t size), (n, size))

static unsigned n_finished;

static void on_result(Job *j, uint32_t seq, void *userdata) {
}

static void on_finished(Job *j, void *userdata) {
        n_finished++;
}

static const JobCallbacks callbacks = {
        .on_result = on_result,
        .on_finished = on_finished,
};

/* n prepared tasks named <prefix><i>. */
static TaskSpec *tasks_named(const char *prefix, size_t n) {
        TaskSpec *t = calloc(n, sizeof(TaskSpec));

        assert_non_null(t);
        for (size_t i = 0; i < n; i++) {
                assert_true(asprintf(&t[i].url, "http://127.0.0.1:9/%s%zu", prefix, i) > 0);
                assert_true(asprintf(&t[i].filename, "%s%zu", prefix, i) > 0);
        }
        return t;
}

static int add(Job *j, const char *prefix, size_t n, bool more, int fail_calloc, char **ret_reason) {
        TaskSpec *t = tasks_named(prefix, n);
        size_t bad = SIZE_MAX;
        int r;

        fail_calloc_in = fail_calloc;
        r = job_add_tasks(j, t, n, more, &bad, ret_reason);
        assert_int_equal(fail_calloc_in, 0);
        if (r < 0)
                task_specs_free(t, n);          /* still the caller's */
        return r;
}

/* The name set of an open job is rebuilt when it grows, and after a duplicate: when that allocation
 * fails, AddTasks fails, and the next AddTasks must still find every earlier name, not a set that is
 * gone. */
static void test_add_tasks_after_failed_allocation(void **state) {
        EngineConfig config = ENGINE_CONFIG_DEFAULT;
        JobOptions options = JOB_OPTIONS_DEFAULT;
        sd_event *event = NULL;
        Engine *e = NULL;
        char *reason = NULL;
        Job *j = NULL;
        int dirfd;

        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(engine_new(&e, event, &config), 0);
        dirfd = open("/", O_DIRECTORY | O_CLOEXEC);
        assert_true(dirfd >= 0);

        assert_int_equal(job_new(&j, e, tasks_named("a", 1), 1, dirfd, &options, &callbacks, NULL), 0);
        assert_int_equal(job_keep_open(j), 0);

        /* 601 names need a larger set (1024 slots hold 512): its allocation fails. */
        assert_int_equal(add(j, "b", 600, true, 1, &reason), -ENOMEM);
        assert_int_equal(j->n_tasks, 1);
        assert_int_equal(add(j, "c", 1, true, 0, &reason), 0);
        assert_int_equal(add(j, "a", 1, true, 0, &reason), -EINVAL);    /* "a0" is task 0's */
        assert_non_null(strstr(reason, "\"a0\" is already used by task 0"));
        free(reason);
        reason = NULL;

        /* A duplicate: the set is rebuilt without the refused chunk, and that allocation fails. */
        assert_int_equal(add(j, "c", 1, true, 1, &reason), -EINVAL);
        free(reason);
        reason = NULL;
        assert_int_equal(add(j, "a", 1, true, 0, &reason), -EINVAL);
        free(reason);
        reason = NULL;
        assert_int_equal(add(j, "d", 3, false, 0, &reason), 0);
        assert_int_equal(j->n_tasks, 5);
        assert_false(j->open);

        job_cancel(j);
        assert_int_equal(n_finished, 1);
        assert_int_equal(j->counts[TASK_CANCELLED], 5);
        job_free(j);
        engine_free(e);
        sd_event_unref(event);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_add_tasks_after_failed_allocation),
        };

        curl_global_init(CURL_GLOBAL_DEFAULT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
