/* SPDX-License-Identifier: MIT */
/* Tests for task-spec: a job's task list is checked whole, and the first bad task is named. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "alloc-fail.h"
#include "job.h"

DEFINE_FAILING_ALLOCATOR(malloc, (size_t size), (size))

static TaskSpec *make(const char *const *pairs, size_t n) {
        TaskSpec *t = calloc(n, sizeof(TaskSpec));

        for (size_t i = 0; i < n; i++) {
                t[i].url = strdup(pairs[2 * i]);
                t[i].filename = strdup(pairs[2 * i + 1]);
        }
        return t;
}

static void check_from(size_t first_index, const char *const *pairs, size_t n, size_t bad_index,
                       const char *reason_part) {
        TaskSpec *t = make(pairs, n);
        char *reason = NULL;
        size_t bad = SIZE_MAX;
        int r = task_specs_prepare(t, n, first_index, &bad, &reason);

        if (!reason_part)
                assert_int_equal(r, 0);
        else {
                assert_int_equal(r, -EINVAL);
                assert_int_equal(bad, bad_index);
                assert_non_null(strstr(reason, reason_part));
        }
        free(reason);
        task_specs_free(t, n);
}

static void check(const char *const *pairs, size_t n, size_t bad_index, const char *reason_part) {
        check_from(0, pairs, n, bad_index, reason_part);
}

static void test_valid_and_derived(void **state) {
        static const char *const ok[] = {
                "http://h/flags/br/br.gif", "",
                "https://h/flags/de/de.gif", "germany.gif",
                "http://h/a%20b", "",
        };
        TaskSpec *t = make(ok, 3);
        char *reason = NULL;
        size_t bad;

        assert_int_equal(task_specs_prepare(t, 3, 0, &bad, &reason), 0);
        assert_string_equal(t[0].filename, "br.gif");
        assert_string_equal(t[1].filename, "germany.gif");
        assert_string_equal(t[2].filename, "a b");
        task_specs_free(t, 3);
}

static void test_bad_tasks(void **state) {
        static const char *const scheme[] = { "http://h/a", "", "file:///etc/passwd", "x" };
        static const char *const slash[] = { "http://h/a", "", "http://h/b", "../evil" };
        static const char *const dots[] = { "http://h/a", ".." };
        static const char *const dup[] = { "http://h/x/a.gif", "", "http://h/y/b.gif", "", "http://other/a.gif", "" };
        static const char *const dup_explicit[] = { "http://h/a", "same", "http://h/b", "same" };
        static const char *const no_name[] = { "http://h/", "" };
        static const char *const bad_url[] = { "http://h/a", "", "http://h/b", "", "not a url", "x" };

        check(scheme, 2, 1, "unsupported URL scheme \"file\"");
        check(slash, 2, 1, "contains \"/\"");
        check(dots, 1, 0, "may not be");
        check(dup, 3, 2, "\"a.gif\" is already used by task 0");
        check(dup_explicit, 2, 1, "already used by task 0");
        check(no_name, 1, 0, "cannot derive a file name");
        check(bad_url, 3, 2, "invalid URL");
        /* A chunk added to a job: both tasks a message names count from the chunk's start. */
        check_from(1000, dup, 3, 1002, "\"a.gif\" is already used by task 1000");
        check_from(1000, scheme, 2, 1001, "unsupported URL scheme");
}

/* Out of memory while deriving a file name is -ENOMEM, with no reason and no index, like any other
 * allocation that fails; not -EINVAL with a reason made of whatever the stack held. */
static void test_out_of_memory(void **state) {
        static const char *const pairs[] = {
                "http://h/flags/br/br.gif", "",
                "http://h/flags/de/de.gif", "germany.gif",
                "https://h/a%20b", "",
        };
        /* The mallocs: the two derived names, then the order of the duplicate check. */
        for (unsigned k = 1; k <= 3; k++) {
                TaskSpec *t = make(pairs, 3);
                char *reason = NULL;
                size_t bad = SIZE_MAX;

                fail_malloc_in = k;
                assert_int_equal(task_specs_prepare(t, 3, 0, &bad, &reason), -ENOMEM);
                assert_int_equal(fail_malloc_in, 0);
                assert_null(reason);
                assert_int_equal(bad, SIZE_MAX);
                task_specs_free(t, 3);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_and_derived),
                cmocka_unit_test(test_bad_tasks),
                cmocka_unit_test(test_out_of_memory),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
