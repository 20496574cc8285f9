/* SPDX-License-Identifier: MIT */
/* Tests for fname-util: file-name validation, derivation from URLs, URL scheme checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "url-util.h"
#include "macro.h"

static void check_url(const char *url, const char *reason_part) {
        _cleanup_free_ char *reason = NULL;
        int r = url_check_http(url, &reason);

        if (!reason_part) {
                assert_int_equal(r, 0);
                assert_null(reason);
        } else {
                assert_int_equal(r, -EINVAL);
                assert_non_null(reason);
                assert_non_null(strstr(reason, reason_part));
        }
}

static void test_url_check(void **state) {
        check_url("http://127.0.0.1:1/x", NULL);
        check_url("HTTPS://example.org/x", NULL);
        check_url("file:///etc/passwd", "unsupported URL scheme \"file\"");
        check_url("ftp://h/x", "unsupported URL scheme \"ftp\"");
        check_url("gopher://h/x", "unsupported URL scheme");
        check_url("not a url", "invalid URL");
        check_url("", "invalid URL");
        check_url("http://", "invalid URL");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_url_check),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
