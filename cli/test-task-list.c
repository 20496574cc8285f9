/* SPDX-License-Identifier: MIT */
/* Tests for task-list: URLs from arguments and from "URL [FILENAME]" lines, and task names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "task-list.h"

static void test_add_line(void **state) {
        _cleanup_(task_list_done) TaskList l = {};

        assert_int_equal(task_list_add_line(&l, ""), 0);
        assert_int_equal(task_list_add_line(&l, "   \t\n"), 0);
        assert_int_equal(task_list_add_line(&l, "# a comment\n"), 0);
        assert_int_equal(task_list_add_line(&l, "  # indented comment"), 0);
        assert_int_equal(l.n, 0);

        assert_int_equal(task_list_add_line(&l, "http://h/flags/br/br.gif\n"), 1);
        assert_int_equal(task_list_add_line(&l, "  http://h/a.gif   Côte d'Ivoire.gif  \n"), 1);
        assert_int_equal(task_list_add_line(&l, "http://h/b.gif\tb-copy.gif"), 1);
        assert_int_equal(l.n, 3);

        assert_string_equal(l.tasks[0].url, "http://h/flags/br/br.gif");
        assert_null(l.tasks[0].filename);
        assert_string_equal(l.tasks[1].url, "http://h/a.gif");
        assert_string_equal(l.tasks[1].filename, "Côte d'Ivoire.gif");
        assert_string_equal(l.tasks[2].filename, "b-copy.gif");
}

static void test_read(void **state) {
        static const char input[] =
                "# flags\n"
                "http://h/flags/ad/ad.gif\n"
                "\n"
                "http://h/flags/ae/ae.gif emirates.gif\n"
                "http://h/flags/af/af.gif";     /* no final newline */
        _cleanup_(task_list_done) TaskList l = {};
        unsigned line = 0;
        FILE *f;

        f = fmemopen((void *) input, strlen(input), "r");
        assert_non_null(f);
        assert_int_equal(task_list_read(&l, f, &line), 0);
        fclose(f);

        assert_int_equal(l.n, 3);
        assert_string_equal(l.tasks[2].url, "http://h/flags/af/af.gif");
        assert_string_equal(l.tasks[1].filename, "emirates.gif");
}

static void test_read_nul(void **state) {
        static const char input[] = "http://h/a.gif\nhttp://h/\0b.gif\n";
        _cleanup_(task_list_done) TaskList l = {};
        unsigned line = 0;
        FILE *f;

        f = fmemopen((void *) input, sizeof(input) - 1, "r");
        assert_non_null(f);
        assert_int_equal(task_list_read(&l, f, &line), -EBADMSG);
        assert_int_equal(line, 2);
        fclose(f);
}

static void test_many(void **state) {
        _cleanup_(task_list_done) TaskList l = {};
        char url[64];

        for (unsigned i = 0; i < 1000; i++) {
                snprintf(url, sizeof(url), "http://h/%u.gif", i);
                assert_int_equal(task_list_add(&l, url, NULL), 0);
        }
        assert_int_equal(l.n, 1000);
        assert_string_equal(l.tasks[999].url, "http://h/999.gif");
        assert_int_equal(task_list_add(&l, "", NULL), -EINVAL);
}

static void check_map(const TaskList *l, const char *message, const char *expected) {
        _cleanup_free_ char *s = task_list_map_message(l, message);

        assert_non_null(s);
        assert_string_equal(s, expected);
}

static void check_origin(const TaskList *l, size_t i, const char *expected) {
        _cleanup_free_ char *s = task_list_origin(l, i);

        assert_non_null(s);
        assert_string_equal(s, expected);
}

static void test_origin(void **state) {
        static const char input[] =
                "# flags\n"
                "\n"
                "http://h/a.gif\n"
                "http://h/b.gif  my b.gif\n";
        _cleanup_(task_list_done) TaskList l = { .input_name = "f.txt" };
        unsigned line = 0;
        FILE *f;

        assert_int_equal(task_list_add(&l, "http://h/x.gif", NULL), 0);
        assert_int_equal(task_list_add(&l, "http://h/y.gif", NULL), 0);
        f = fmemopen((void *) input, strlen(input), "r");
        assert_non_null(f);
        assert_int_equal(task_list_read(&l, f, &line), 0);
        fclose(f);
        assert_int_equal(l.n, 4);

        check_origin(&l, 1, "URL argument 2");
        check_origin(&l, 2, "f.txt:3");
        check_origin(&l, 3, "f.txt:4");

        check_map(&l, "task 2: invalid URL \"x\"", "f.txt:3: invalid URL \"x\"");
        check_map(&l, "task 0: unsupported URL scheme \"file\"", "URL argument 1: unsupported URL scheme \"file\"");
        check_map(&l, "task 3: file name \"a.gif\" is already used by task 2",
                  "f.txt:4: file name \"a.gif\" is already used by f.txt:3");
        /* Not a task of this list, not at the start, or not at the end: left alone. */
        check_map(&l, "task 4: nope", "task 4: nope");
        check_map(&l, "task 99999999999999999999999: nope", "task 99999999999999999999999: nope");
        check_map(&l, "flags: unknown bits 0x2", "flags: unknown bits 0x2");
        check_map(&l, "task 1: file name \"by task 0.gif\" is bad", "URL argument 2: file name \"by task 0.gif\" is bad");
}

/* An input file's path is named whole, however long (a fixed buffer cut it at 63 bytes). */
static void test_origin_long_path(void **state) {
        char name[3000];
        _cleanup_free_ char *expected = NULL;
        _cleanup_(task_list_done) TaskList l = { .input_name = name };
        unsigned line = 0;
        FILE *f;

        memset(name, 'd', sizeof(name) - 1);
        name[sizeof(name) - 1] = 0;
        f = fmemopen((void *) "http://h/a.gif\n", strlen("http://h/a.gif\n"), "r");
        assert_non_null(f);
        assert_int_equal(task_list_read(&l, f, &line), 0);
        fclose(f);
        assert_true(asprintf(&expected, "%s:1: invalid URL \"x\"", name) > 0);
        check_map(&l, "task 0: invalid URL \"x\"", expected);
}

static void test_invalid_reason(void **state) {
        Task ok = { .url = (char *) "http://h/a.gif", .filename = (char *) "Côte.gif" };
        Task bad_url = { .url = (char *) "http://h/\xff.gif" };
        Task bad_name = { .url = (char *) "http://h/a.gif", .filename = (char *) "a\xff.gif" };
        Task slash = { .url = (char *) "http://h/a.gif", .filename = (char *) "a/b.gif" };

        assert_null(task_invalid_reason(&ok));
        assert_string_equal(task_invalid_reason(&bad_url), "URL is not valid UTF-8");
        assert_string_equal(task_invalid_reason(&bad_name), "file name is not valid UTF-8");
        assert_string_equal(task_invalid_reason(&slash), "file name contains \"/\"");
}

static void check_name(const char *url, const char *filename, const char *expected) {
        Task t = { .url = (char *) url, .filename = (char *) filename };
        _cleanup_free_ char *name = task_display_name(&t);

        assert_non_null(name);
        assert_string_equal(name, expected);
}

static void test_display_name(void **state) {
        check_name("http://h/flags/br/br.gif", NULL, "br.gif");
        check_name("http://h/flags/br/br.gif", "brazil.gif", "brazil.gif");
        check_name("http://h/a%20b.gif?x=1", NULL, "a b.gif");
        check_name("http://h/dir/", NULL, "dir");
        check_name("http://h", NULL, "http://h");      /* nothing to derive: the URL itself */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_add_line),
                cmocka_unit_test(test_read),
                cmocka_unit_test(test_read_nul),
                cmocka_unit_test(test_many),
                cmocka_unit_test(test_display_name),
                cmocka_unit_test(test_origin),
                cmocka_unit_test(test_origin_long_path),
                cmocka_unit_test(test_invalid_reason),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
