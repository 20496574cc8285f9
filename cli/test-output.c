/* SPDX-License-Identifier: MIT */
/* Tests for output and job-result: formats, -v lines, the seed's summary, tables, JSON, exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc-fail.h"
#include "job-result.h"
#include "macro.h"
#include "output.h"

DEFINE_FAILING_ALLOCATOR(strdup, (const char *s), (s))

/* Runs f into a memory stream and returns what it wrote. */
#define CAPTURE(buf, stmt)                                              \
        do {                                                            \
                size_t _size_ = 0;                                      \
                FILE *f = open_memstream(&(buf), &_size_);              \
                assert_non_null(f);                                     \
                stmt;                                                   \
                fclose(f);                                              \
        } while (0)

static void test_format_bytes(void **state) {
        char buf[32];

        format_bytes(0, buf, sizeof(buf));
        assert_string_equal(buf, "0B");
        format_bytes(1023, buf, sizeof(buf));
        assert_string_equal(buf, "1023B");
        format_bytes(1024, buf, sizeof(buf));
        assert_string_equal(buf, "1.0K");
        format_bytes(1258291, buf, sizeof(buf));
        assert_string_equal(buf, "1.2M");
        format_bytes(UINT64_C(5) << 30, buf, sizeof(buf));
        assert_string_equal(buf, "5.0G");
}

static void test_format_age(void **state) {
        char buf[32];

        format_age(0, buf, sizeof(buf));
        assert_string_equal(buf, "0s");
        format_age(59 * USEC_PER_SEC + 999999, buf, sizeof(buf));
        assert_string_equal(buf, "59s");
        format_age(184 * USEC_PER_SEC, buf, sizeof(buf));
        assert_string_equal(buf, "3min 4s");
        format_age(7500 * USEC_PER_SEC, buf, sizeof(buf));
        assert_string_equal(buf, "2h 5min");
        format_age((3 * 86400 + 4 * 3600 + 59) * USEC_PER_SEC, buf, sizeof(buf));
        assert_string_equal(buf, "3d 4h");
}

static void check_line(const JobResult *r, const char *name, const char *url, const char *expected) {
        _cleanup_free_ char *line = output_result_line(r, name, url, false);

        assert_non_null(line);
        assert_string_equal(line, expected);
}

static void test_result_line(void **state) {
        JobResult ok = { .seq = 0, .index = 2, .status = "ok", .http_code = 200, .bytes = 1234,
                         .filename = "br.gif", .error = "" };
        JobResult nf = { .seq = 1, .index = 3, .status = "not_found", .http_code = 404, .filename = "",
                         .error = "HTTP 404 Not Found" };
        JobResult err = { .seq = 2, .index = 4, .status = "error", .http_code = 503, .filename = "",
                          .error = "HTTP 503 Service Unavailable" };
        JobResult bare = { .seq = 3, .index = 5, .status = "error", .http_code = 418, .filename = "", .error = "" };
        JobResult cancelled = { .seq = 4, .index = 6, .status = "cancelled", .filename = "", .error = "Cancelled" };
        _cleanup_free_ char *coloured = NULL;

        check_line(&ok, "br.gif", "http://h/flags/br/br.gif", "br.gif ok");
        check_line(&ok, NULL, NULL, "br.gif ok");
        check_line(&nf, "xx.gif", "http://h/flags/xx/xx.gif", "xx.gif not found");
        check_line(&nf, NULL, NULL, "task #3 not found");
        check_line(&err, "yy.gif", "http://h/flags/yy/yy.gif",
                   "*** Error for http://h/flags/yy/yy.gif: HTTP 503 Service Unavailable");
        check_line(&err, NULL, NULL, "*** Error for task #4: HTTP 503 Service Unavailable");
        check_line(&bare, NULL, "http://h/t", "*** Error for http://h/t: HTTP 418");
        check_line(&cancelled, "zz.gif", "http://h/zz.gif", "zz.gif cancelled");

        coloured = output_result_line(&ok, "br.gif", NULL, true);
        assert_string_equal(coloured, "br.gif \x1b[0;32mok\x1b[0m");
}

static void test_summary(void **state) {
        JobCounts all_ok = { .total = 20, .ok = 20 };
        JobCounts mixed = { .total = 100, .ok = 52, .error = 47, .not_found = 1 };
        JobCounts one = { .total = 2, .error = 1, .cancelled = 1 };
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        CAPTURE(a, output_summary(f, &all_ok, 1234567));
        assert_string_equal(a, "--------------------\n20 downloaded.\nElapsed time: 1.23s\n");

        CAPTURE(b, output_summary(f, &mixed, 3310000));
        assert_string_equal(b, "--------------------\n52 downloaded.\n1 not found.\n47 errors.\nElapsed time: 3.31s\n");

        CAPTURE(c, output_summary(f, &one, 0));
        assert_string_equal(c, "--------------------\n0 downloaded.\n1 error.\n1 cancelled.\nElapsed time: 0.00s\n");
}

static void test_table(void **state) {
        static const char *const headers[] = { "ID", "NAME", "DONE" };
        Table *t = table_new(3, headers);
        _cleanup_free_ char *with = NULL, *without = NULL;

        assert_non_null(t);
        table_align_right(t, 0);
        table_align_right(t, 2);
        assert_int_equal(table_add_row(t, (const char *const[]) { "7", "flags", "20/20" }), 0);
        assert_int_equal(table_add_row(t, (const char *const[]) { "12", "", "3/194" }), 0);
        assert_int_equal(table_add_row(t, (const char *const[]) { "13", "Côte", "0/1" }), 0);
        assert_int_equal(table_n_rows(t), 3);

        CAPTURE(with, table_print(t, f, true));
        assert_string_equal(with,
                            "ID NAME   DONE\n"
                            " 7 flags 20/20\n"
                            "12 -     3/194\n"
                            "13 Côte    0/1\n");
        CAPTURE(without, table_print(t, f, false));
        assert_string_equal(without,
                            " 7 flags 20/20\n"
                            "12 -     3/194\n"
                            "13 Côte    0/1\n");
        table_free(t);
}

/* A cell that cannot be copied fails the row and leaves the table as it was; for the header,
 * table_new() returns NULL, and frees nothing twice. */
static void test_table_oom(void **state) {
        static const char *const headers[] = { "ID", "NAME", "DONE" };
        _cleanup_free_ char *out = NULL;
        Table *t;

        for (unsigned k = 1; k <= 3; k++) {
                fail_strdup_in = k;
                assert_null(table_new(3, headers));
                assert_int_equal(fail_strdup_in, 0);
        }

        t = table_new(3, headers);
        assert_non_null(t);
        assert_int_equal(table_add_row(t, (const char *const[]) { "7", "flags", "20/20" }), 0);
        fail_strdup_in = 2;
        assert_int_equal(table_add_row(t, (const char *const[]) { "8", "lost", "0/1" }), -ENOMEM);
        assert_int_equal(table_n_rows(t), 1);
        assert_int_equal(table_add_row(t, (const char *const[]) { "12", "", "3/194" }), 0);
        CAPTURE(out, table_print(t, f, true));
        assert_string_equal(out,
                            "ID NAME  DONE\n"
                            "7  flags 20/20\n"
                            "12 -     3/194\n");
        table_free(t);
}

static void test_json(void **state) {
        JobResult r = { .seq = 4, .index = 9, .status = "ok", .http_code = 200, .bytes = 4096,
                        .filename = "br.gif", .error = "" };
        JobInfo info = { .id = 7, .path = (char *) "/io/asyncd1/job/7", .name = (char *) "flags",
                         .state = (char *) "done", .counts = { .total = 3, .ok = 2, .error = 1 },
                         .created_usec = 1700000000000000 };
        json_object *o, *v;

        o = result_to_json(&r, "http://h/flags/br/br.gif");
        assert_non_null(o);
        assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                            "{\"seq\":4,\"index\":9,\"url\":\"http://h/flags/br/br.gif\",\"status\":\"ok\","
                            "\"http_code\":200,\"bytes\":4096,\"filename\":\"br.gif\",\"error\":\"\"}");
        json_object_put(o);

        o = job_info_to_json(&info, false);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "done", &v));
        assert_int_equal(json_object_get_uint64(v), 3);
        assert_false(json_object_object_get_ex(o, "owner", &v));
        json_object_put(o);

        o = job_info_to_json(&info, true);
        assert_true(json_object_object_get_ex(o, "owner", &v));
        assert_true(json_object_object_get_ex(o, "created_usec", &v));
        assert_true(json_object_get_uint64(v) == 1700000000000000);
        json_object_put(o);

        assert_int_equal(json_mode_from_string("short"), JSON_SHORT);
        assert_int_equal(json_mode_from_string("pretty"), JSON_PRETTY);
        assert_int_equal(json_mode_from_string("ugly"), _JSON_MODE_INVALID);
}

static void test_counts_and_exit(void **state) {
        JobCounts c = {};

        job_counts_add(&c, "ok");
        job_counts_add(&c, "ok");
        assert_int_equal(job_exit_status("done", &c), EXIT_ALL_OK);
        job_counts_add(&c, "not_found");
        assert_int_equal(job_exit_status("done", &c), EXIT_INCOMPLETE);
        job_counts_add(&c, "something-new");    /* unknown: an error */
        assert_int_equal(c.error, 1);
        assert_int_equal(job_counts_done(&c), 4);
        job_counts_add(&c, "cancelled");
        assert_int_equal(job_exit_status("cancelled", &c), EXIT_CANCELLED);

        assert_int_equal(job_exit_status("done", &(JobCounts) { .ok = 1, .cancelled = 1 }), EXIT_CANCELLED);
        assert_int_equal(result_status_from_string("not_found"), RESULT_NOT_FOUND);
        assert_string_equal(result_status_to_string(RESULT_CANCELLED), "cancelled");
        assert_null(result_status_to_string(_RESULT_STATUS_INVALID));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format_bytes),
                cmocka_unit_test(test_format_age),
                cmocka_unit_test(test_result_line),
                cmocka_unit_test(test_summary),
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_table_oom),
                cmocka_unit_test(test_json),
                cmocka_unit_test(test_counts_and_exit),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
