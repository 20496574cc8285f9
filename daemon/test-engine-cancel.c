/* SPDX-License-Identifier: MIT */
/* Cancelling jobs mid-way: every task gets exactly one result, slots are released, and no partial
 * or temporary file is left — for new files and for files that replace others (overwrite), both
 * unnamed (O_TMPFILE) while they download. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "test-engine-util.h"

static void test_cancel_mid_job(void **state) {
        const char *base = test_env("ASYNCD_TEST_FAULT_DELAY_URL");
        char **codes = NULL;
        size_t n = test_flag_codes(&codes);
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TestRun t;
        Job *j;

        test_run_init(&t, 0);
        o.concurrency = 10;
        j = test_job_start(&t, test_tasks_from_codes(base, (const char *const *) codes, n), n, &o);
        while (j->n_results < 15)
                assert_true(sd_event_run(t.event, 10 * USEC_PER_SEC) > 0);
        assert_int_equal(j->active, 10);
        job_cancel(j);
        test_run_until_finished(&t, 1);

        test_assert_results_complete(j);
        printf("cancelled after 15 results: %u ok, %u cancelled, %u active slots, engine active %u\n",
               j->counts[TASK_OK], j->counts[TASK_CANCELLED], j->active, t.engine->active);
        assert_int_equal(j->state, JOB_CANCELLED);
        assert_true(j->counts[TASK_OK] >= 15);
        assert_int_equal(j->counts[TASK_OK] + j->counts[TASK_CANCELLED], n);
        assert_int_equal(j->active, 0);
        assert_int_equal(t.engine->active, 0);
        /* Only complete files, exactly one per ok result. */
        assert_int_equal(test_count_files(&t, false), j->counts[TASK_OK]);
        for (uint32_t s = 0; s < j->n_results; s++) {
                const TaskResult *r = &j->results[s];
                char fixture[512];

                if (r->status != TASK_OK)
                        continue;
                snprintf(fixture, sizeof(fixture), "%s/flags/%s/%s.gif", test_env("ASYNCD_FIXTURES"),
                         codes[r->index], codes[r->index]);
                assert_true(test_file_equals(fixture, t.dirfd, j->tasks[r->index].filename));
        }

        job_free(j);
        test_run_done(&t);
        test_flag_codes_free(codes);
}

/* Large bodies trickling in: the files exist, unnamed, when the job is cancelled. */
static void cancel_while_writing(bool overwrite) {
        const char *base = test_env("ASYNCD_TEST_FAULT_PLAIN_URL");
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TaskSpec *tasks = calloc(3, sizeof(TaskSpec));
        TestRun t;
        Job *j;

        for (int i = 0; i < 3; i++) {
                assert_true(asprintf(&tasks[i].url, "%s/trickle/1/piece/1024/bytes/%d", base, 10000000 + i) > 0);
                tasks[i].filename = strdup("");
        }
        test_run_init(&t, 0);
        o.overwrite = overwrite;
        j = test_job_start(&t, tasks, 3, &o);

        /* 1 KiB per ms: after 2 s each transfer has ~2 MiB, past the first disk write (256 KiB). */
        for (uint64_t start = 0, now = 0; !start || now - start < 2 * USEC_PER_SEC;) {
                assert_true(sd_event_run(t.event, 100 * USEC_PER_MSEC) >= 0);
                assert_true(sd_event_now(t.event, CLOCK_MONOTONIC, &now) >= 0);
                if (!start)
                        start = now;
        }
        assert_int_equal(j->n_results, 0);
        /* Being written (else "none left" below proves nothing), and without a name. */
        assert_int_equal(test_count_unnamed_files(t.dir), 3);
        assert_int_equal(test_count_files(&t, false), 0);

        job_cancel(j);
        test_run_until_finished(&t, 1);
        test_assert_results_complete(j);
        assert_int_equal(j->counts[TASK_CANCELLED], 3);
        assert_int_equal(test_count_files(&t, false), 0);
        job_free(j);
        test_run_done(&t);
}

static void test_cancel_new_files(void **state) {
        cancel_while_writing(false);
}

static void test_cancel_replacing_files(void **state) {
        cancel_while_writing(true);
}

/* A transfer paused because its file's writes fall behind (a slow disk: each pool operation takes
 * 1 s, the body comes at loopback speed) is cancelled: it ends as cancelled with the status it had
 * received, its file (created by the write that was in flight) is discarded, and it did not read
 * the rest of the body meanwhile. */
static void test_cancel_while_paused_for_the_disk(void **state) {
        const char *base = test_env("ASYNCD_TEST_FAULT_PLAIN_URL"), *log = test_env("ASYNCD_TEST_FAULT_PLAIN_LOG");
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TaskSpec *tasks = calloc(1, sizeof(TaskSpec));
        char line[4096], target[128];
        long sent = -1;
        TestRun t;
        FILE *f;
        Job *j;

        snprintf(target, sizeof(target), "/bytes/%u?paused=%ld", 256U * 1024U * 1024U, (long) getpid());
        assert_true(asprintf(&tasks[0].url, "%s%s", base, target) > 0);
        tasks[0].filename = strdup("paused.bin");
        test_run_init(&t, 0);
        disk_pool_set_delay(t.engine->pool, USEC_PER_SEC);
        j = test_job_start(&t, tasks, 1, &o);
        for (uint64_t start = 0, now = 0; !start || now - start < 500 * USEC_PER_MSEC;) {
                assert_true(sd_event_run(t.event, 100 * USEC_PER_MSEC) >= 0);
                assert_true(sd_event_now(t.event, CLOCK_MONOTONIC, &now) >= 0);
                if (!start)
                        start = now;
        }
        assert_int_equal(j->n_results, 0);
        job_cancel(j);
        test_run_until_finished(&t, 1);
        test_assert_results_complete(j);
        assert_int_equal(j->results[0].status, TASK_CANCELLED);
        assert_int_equal(j->results[0].http_code, 200);
        assert_int_equal(test_count_files(&t, false), 0);
        assert_int_equal(test_count_unnamed_files(t.dir), 0);

        /* The server's record of the request: the client left after a few MiB of 256. */
        for (int tries = 0; tries < 100 && sent < 0; tries++) {
                f = fopen(log, "re");
                assert_non_null(f);
                while (fgets(line, sizeof(line), f))
                        if (strstr(line, target) && strstr(line, "\"aborted\": true"))
                                sent = test_json_int(line, "bytes");
                fclose(f);
                if (sent < 0)
                        usleep(50 * 1000);
        }
        printf("paused transfer cancelled: the server sent %ld bytes\n", sent);
        assert_true(sent > 0 && sent < 64L * 1024 * 1024);
        job_free(j);
        test_run_done(&t);
}

static void test_cancel_before_start(void **state) {
        const char *base = test_env("ASYNCD_TEST_FAULT_DELAY_URL");
        static const char *const codes[] = { "br", "de" };
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TestRun t;
        Job *j;

        test_run_init(&t, 0);
        j = test_job_start(&t, test_tasks_from_codes(base, codes, 2), 2, &o);
        /* Nothing ran yet: the scheduler's defer source has not fired. */
        job_cancel(j);
        assert_int_equal(j->state, JOB_CANCELLED);
        assert_int_equal(j->counts[TASK_CANCELLED], 2);
        test_run_until_finished(&t, 1);
        job_free(j);
        test_run_done(&t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cancel_mid_job),
                cmocka_unit_test(test_cancel_new_files),
                cmocka_unit_test(test_cancel_replacing_files),
                cmocka_unit_test(test_cancel_while_paused_for_the_disk),
                cmocka_unit_test(test_cancel_before_start),
        };

        if (!test_env("ASYNCD_TEST_FAULT_PLAIN_URL") || !test_env("ASYNCD_TEST_FAULT_PLAIN_LOG") ||
            !test_env("ASYNCD_TEST_FAULT_DELAY_URL") ||
            !test_env("ASYNCD_FIXTURES")) {
                fprintf(stderr, "run through tests/servers/with-servers.py with PLAIN and DELAY fault servers\n");
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
