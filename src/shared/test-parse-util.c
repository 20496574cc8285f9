/* SPDX-License-Identifier: MIT */
/* Tests for parse-util: ids, counts, time spans and sizes as asyncctl's options accept them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "macro.h"
#include "parse-util.h"

static void test_parse_uint(void **state) {
        uint64_t v;
        uint32_t u;

        assert_int_equal(parse_uint64("0", &v), 0);
        assert_true(v == 0);
        assert_int_equal(parse_uint64("18446744073709551615", &v), 0);
        assert_true(v == UINT64_MAX);
        assert_int_equal(parse_uint64("18446744073709551616", &v), -ERANGE);
        assert_int_equal(parse_uint64("", &v), -EINVAL);
        assert_int_equal(parse_uint64("-1", &v), -EINVAL);
        assert_int_equal(parse_uint64(" 1", &v), -EINVAL);
        assert_int_equal(parse_uint64("1 ", &v), -EINVAL);
        assert_int_equal(parse_uint64("0x10", &v), -EINVAL);
        assert_int_equal(parse_uint64("+5", &v), -EINVAL);
        assert_int_equal(parse_uint64("99999999999999999999h", &v), -EINVAL);     /* not a number at all */

        assert_int_equal(parse_uint32("4294967295", &u), 0);
        assert_true(u == UINT32_MAX);
        assert_int_equal(parse_uint32("4294967296", &u), -ERANGE);
}

static void test_parse_job_id(void **state) {
        uint64_t id;

        assert_int_equal(parse_job_id("7", &id), 0);
        assert_true(id == 7);
        assert_int_equal(parse_job_id("0", &id), -EINVAL);
        assert_int_equal(parse_job_id("seven", &id), -EINVAL);
        assert_int_equal(parse_job_id(NULL, &id), -EINVAL);
}

static void check_timespan(const char *s, uint64_t expected) {
        uint64_t v = 12345;

        assert_int_equal(parse_timespan(s, &v), 0);
        assert_true(v == expected);
}

static void test_parse_timespan(void **state) {
        uint64_t v;

        check_timespan("0", 0);
        check_timespan("3", 3 * USEC_PER_SEC);
        check_timespan("3.1", 3100 * USEC_PER_MSEC);
        check_timespan(".5", 500 * USEC_PER_MSEC);
        check_timespan("500ms", 500 * USEC_PER_MSEC);
        check_timespan("1.5s", 1500 * USEC_PER_MSEC);
        check_timespan("2min", 120 * USEC_PER_SEC);
        check_timespan("2 min", 120 * USEC_PER_SEC);
        check_timespan("1h", 3600 * USEC_PER_SEC);
        check_timespan("250us", 250);

        assert_int_equal(parse_timespan("", &v), -EINVAL);
        assert_int_equal(parse_timespan("s", &v), -EINVAL);
        assert_int_equal(parse_timespan("-1", &v), -EINVAL);
        assert_int_equal(parse_timespan("1e3", &v), -EINVAL);
        assert_int_equal(parse_timespan("inf", &v), -EINVAL);
        assert_int_equal(parse_timespan("3 parsecs", &v), -EINVAL);
        assert_int_equal(parse_timespan("99999999999999999999h", &v), -ERANGE);
        assert_int_equal(parse_timespan("99999999999999999999x", &v), -EINVAL);

        /* Exact where a double is not (2^53 + 1), and up to the last microsecond that fits. */
        check_timespan("9007199254740993us", UINT64_C(9007199254740993));
        check_timespan("18446744073709551615us", UINT64_MAX);
        check_timespan("18446744073709.551615", UINT64_MAX);
        check_timespan("4299999972.729466", UINT64_C(4299999972729466));
        check_timespan("0.0000004", 0);
        check_timespan("0.0000005", 1);
        check_timespan("0.49999999999999999us", 0);
        assert_int_equal(parse_timespan("18446744073709.551616", &v), -ERANGE);
        assert_int_equal(parse_timespan("18446744073710", &v), -ERANGE);
}

static void check_size(const char *s, uint64_t expected) {
        uint64_t v = 12345;

        assert_int_equal(parse_size(s, &v), 0);
        assert_true(v == expected);
}

static void test_parse_size(void **state) {
        uint64_t v;

        check_size("0", 0);
        check_size("1048576", 1048576);
        check_size("512K", 512 * 1024);
        check_size("512KiB", 512 * 1024);
        check_size("512KB", 512 * 1024);
        check_size("1.5M", 1536 * 1024);
        check_size("2G", UINT64_C(2) << 30);
        check_size("1T", UINT64_C(1) << 40);
        check_size("100B", 100);

        assert_int_equal(parse_size("", &v), -EINVAL);
        assert_int_equal(parse_size("1.5", &v), -EINVAL);
        assert_int_equal(parse_size("5X", &v), -EINVAL);
        assert_int_equal(parse_size("5iB", &v), -EINVAL);
        assert_int_equal(parse_size("-5K", &v), -EINVAL);
        assert_int_equal(parse_size("20E", &v), -ERANGE);

        check_size("9007199254740993", UINT64_C(9007199254740993));
        check_size("18446744073709551615", UINT64_MAX);
        check_size("15.5E", UINT64_C(31) << 59);
        check_size("1.1E", UINT64_C(1268213655067531674));      /* exact, not a double's nearest */
        check_size("15.99999999999999999E", UINT64_C(18446744073709551604));
        assert_int_equal(parse_size("18446744073709551616", &v), -ERANGE);
        assert_int_equal(parse_size("16E", &v), -ERANGE);
        assert_int_equal(parse_size("1Ki", &v), -EINVAL);        /* B or iB, not i alone */
        assert_int_equal(parse_size("1.00000000000000001", &v), -EINVAL);     /* still a fraction of a byte */
        check_size("1.000K", 1024);
        check_size("1.0", 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_uint),
                cmocka_unit_test(test_parse_job_id),
                cmocka_unit_test(test_parse_timespan),
                cmocka_unit_test(test_parse_size),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
