/* SPDX-License-Identifier: MIT */
/* Engine against nginx serving the real flags: every flag saved byte-identical at several
 * concurrencies, unknown codes reported not_found without a file; with the fsync option each file
 * and its directory synced once, and nothing synced without it (fsync is wrapped to count). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "test-engine-util.h"

static const char *const unknown_codes[] = { "xx", "qq", "zz" };

/* fsync() calls on the disk threads, by the kind of file. */
static atomic_uint files_synced, directories_synced;

int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __wrap_fsync(int fd) {
        struct stat st;

        if (fstat(fd, &st) >= 0)
                atomic_fetch_add(S_ISDIR(st.st_mode) ? &directories_synced : &files_synced, 1);
        return __real_fsync(fd);
}

static void run_flags(unsigned concurrency, bool fsync) {
        const char *base = test_env("ASYNCD_TEST_NGINX_URL");
        char **codes = NULL;
        size_t n = test_flag_codes(&codes), total = n + ELEMENTSOF(unknown_codes);
        const char **all = calloc(total, sizeof(char *));
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TestRun t;
        Job *j;

        assert_int_equal(n, 194);
        for (size_t i = 0; i < n; i++)
                all[i] = codes[i];
        for (size_t i = 0; i < ELEMENTSOF(unknown_codes); i++)
                all[n + i] = unknown_codes[i];

        test_run_init(&t, 0);
        atomic_store(&files_synced, 0);
        atomic_store(&directories_synced, 0);
        o.concurrency = concurrency;
        o.fsync = fsync;
        j = test_job_start(&t, test_tasks_from_codes(base, all, total), total, &o);
        test_run_until_finished(&t, 1);

        test_assert_results_complete(j);
        assert_int_equal(j->state, JOB_DONE);
        assert_int_equal(j->counts[TASK_OK], 194);
        assert_int_equal(j->counts[TASK_NOT_FOUND], ELEMENTSOF(unknown_codes));
        assert_int_equal(j->counts[TASK_ERROR], 0);

        for (uint32_t s = 0; s < j->n_results; s++) {
                const TaskResult *r = &j->results[s];
                const char *name = j->tasks[r->index].filename;

                if (r->index < n) {
                        char fixture[512];

                        assert_int_equal(r->status, TASK_OK);
                        assert_int_equal(r->http_code, 200);
                        assert_null(r->error);
                        snprintf(fixture, sizeof(fixture), "%s/flags/%s/%s", test_env("ASYNCD_FIXTURES"),
                                 codes[r->index], name);
                        assert_true(test_file_equals(fixture, t.dirfd, name));
                } else {
                        assert_int_equal(r->status, TASK_NOT_FOUND);
                        assert_int_equal(r->http_code, 404);
                        assert_int_equal(r->bytes, 0);
                        assert_int_equal(faccessat(t.dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW), -1);
                }
        }
        /* Exactly the 194 flags, no temporary file. */
        assert_int_equal(test_count_files(&t, false), 194);
        assert_int_equal(test_count_files(&t, true), 0);
        assert_int_equal(atomic_load(&files_synced), fsync ? 194 : 0);
        assert_int_equal(atomic_load(&directories_synced), fsync ? 194 : 0);
        printf("concurrency %u: %u ok, %u not found, %llu bytes\n", concurrency, j->counts[TASK_OK],
               j->counts[TASK_NOT_FOUND], (unsigned long long) j->bytes_downloaded);

        job_free(j);
        test_run_done(&t);
        test_flag_codes_free(codes);
        free(all);
}

static void test_flags_concurrency_5(void **state) {
        run_flags(5, false);
}

static void test_flags_concurrency_20(void **state) {
        run_flags(20, false);
}

static void test_flags_concurrency_100(void **state) {
        run_flags(100, false);
}

static void test_flags_fsync(void **state) {
        run_flags(20, true);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_flags_concurrency_5),
                cmocka_unit_test(test_flags_concurrency_20),
                cmocka_unit_test(test_flags_concurrency_100),
                cmocka_unit_test(test_flags_fsync),
        };

        if (!test_env("ASYNCD_TEST_NGINX_URL") || !test_env("ASYNCD_FIXTURES")) {
                fprintf(stderr, "ASYNCD_TEST_NGINX_URL and ASYNCD_FIXTURES must be set (run through with-servers.py)\n");
                return 1;
        }
        return cmocka_run_group_tests(tests, NULL, NULL);
}
