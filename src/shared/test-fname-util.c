/* SPDX-License-Identifier: MIT */
/* Tests for fname-util: file-name validation, derivation from URLs, URL scheme checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fname-util.h"
#include "macro.h"

static void test_filename_valid(void **state) {
        char long_name[300];

        assert_true(filename_is_valid("br.gif"));
        assert_true(filename_is_valid("Côte_d'Ivoire.gif"));
        assert_true(filename_is_valid(".hidden"));
        assert_false(filename_is_valid(""));
        assert_false(filename_is_valid("."));
        assert_false(filename_is_valid(".."));
        assert_false(filename_is_valid("a/b"));
        assert_false(filename_is_valid("../x"));
        assert_false(filename_is_valid("a\nb"));
        assert_false(filename_is_valid("a\x7f"));
        assert_false(filename_is_valid("a\xc2\x85" "b"));                 /* U+0085, a C1 control */
        assert_string_equal(filename_invalid_reason("a\xff" "b"), "file name is not valid UTF-8");
        assert_true(filename_is_valid("\xc2\xa0"));                     /* U+00A0 is not a control */
        memset(long_name, 'a', sizeof(long_name));
        long_name[255] = 0;
        assert_true(filename_is_valid(long_name));
        long_name[255] = 'a';
        long_name[256] = 0;
        assert_string_equal(filename_invalid_reason(long_name), "file name is longer than 255 bytes");
}

static void check_derived(const char *url, const char *expected) {
        _cleanup_free_ char *name = NULL;
        const char *reason = NULL;
        int r = filename_from_url(url, &name, &reason);

        if (expected) {
                assert_int_equal(r, 0);
                assert_string_equal(name, expected);
        } else {
                assert_int_equal(r, -EINVAL);
                assert_non_null(reason);
                assert_null(name);
        }
}

static void test_filename_from_url(void **state) {
        check_derived("http://127.0.0.1:8000/flags/br/br.gif", "br.gif");
        check_derived("http://h/flags/br/", "br");
        check_derived("http://h/a/b%20c.gif?x=1/2#frag", "b c.gif");
        check_derived("http://h/a/%41%62", "Ab");
        check_derived("http://h/a/100%", "100%");
        check_derived("http://h/a/%zz", "%zz");
        check_derived("http://h/", NULL);
        check_derived("http://h", NULL);
        check_derived("http://h?x/evil", NULL);        /* a query is not a path */
        check_derived("http://h#/evil", NULL);
        check_derived("http://h:80?a=/b/c", NULL);
        check_derived("http://h/a/x%ffy", NULL);       /* not UTF-8 after decoding */
        check_derived("http://h/a/%c3%a9t%c3%a9", "\xc3\xa9t\xc3\xa9");
        check_derived("http://h/a/%2e%2e", NULL);      /* ".." after decoding */
        check_derived("http://h/a/x%2fy", NULL);       /* "/" after decoding */
        check_derived("http://h/a/x%00y", NULL);       /* NUL after decoding */
        check_derived("http://h/a/x%0ay", NULL);       /* control character */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_filename_valid),
                cmocka_unit_test(test_filename_from_url),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
