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
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
