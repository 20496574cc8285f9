/* SPDX-License-Identifier: MIT */
/* Tests for utf8-util: what D-Bus accepts as a string, and cleaning text that it would refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "utf8-util.h"

static void test_valid(void **state) {
        assert_true(utf8_is_valid(""));
        assert_true(utf8_is_valid("plain ASCII"));
        assert_true(utf8_is_valid("C\xc3\xb4te d'Ivoire"));                 /* ô */
        assert_true(utf8_is_valid("\xe2\x82\xac"));                         /* € */
        assert_true(utf8_is_valid("\xf0\x9f\x87\xa7\xf0\x9f\x87\xb7"));     /* regional indicators */
        assert_true(utf8_is_valid("\xef\xbf\xbd"));                         /* U+FFFD */
        assert_true(utf8_is_valid("\xf4\x8f\xbf\xbd"));                     /* U+10FFFD */
}

static void test_invalid(void **state) {
        assert_false(utf8_is_valid("Bad \xff Thing"));
        assert_false(utf8_is_valid("\x80"));                    /* lone continuation byte */
        assert_false(utf8_is_valid("\xc3"));                    /* cut after the first byte */
        assert_false(utf8_is_valid("\xe2\x82"));
        assert_false(utf8_is_valid("\xc0\xaf"));                /* overlong "/" */
        assert_false(utf8_is_valid("\xe0\x80\xaf"));
        assert_false(utf8_is_valid("\xf0\x80\x80\xaf"));
        assert_false(utf8_is_valid("\xed\xa0\x80"));            /* surrogate U+D800 */
        assert_false(utf8_is_valid("\xf4\x90\x80\x80"));        /* U+110000 */
        assert_false(utf8_is_valid("\xef\xb7\x90"));            /* noncharacter U+FDD0 */
        assert_false(utf8_is_valid("\xef\xbf\xbe"));            /* noncharacter U+FFFE */
        assert_false(utf8_is_valid("\xf0\x9f\xbf\xbf"));        /* noncharacter U+1FFFF */
}

static void test_char(void **state) {
        uint32_t c = 0;

        assert_int_equal(utf8_char("\xc2\x85", 2, &c), 2);
        assert_int_equal(c, 0x85);
        assert_int_equal(utf8_char("\xe2\x82\xac", 3, &c), 3);
        assert_int_equal(c, 0x20ac);
        assert_int_equal(utf8_char("\xe2\x82\xac", 2, &c), 0);  /* may not read past left */
        assert_int_equal(utf8_char("", 1, &c), 0);              /* NUL is not a character of a string */
        assert_int_equal(utf8_char("a", 0, &c), 0);
}

static void test_prefix_length(void **state) {
        const char *s = "ab\xc3\xa9\xe2\x82\xac";             /* a b é € */

        assert_int_equal(utf8_prefix_length(s, strlen(s), 100), 7);
        assert_int_equal(utf8_prefix_length(s, strlen(s), 7), 7);
        assert_int_equal(utf8_prefix_length(s, strlen(s), 6), 4);      /* not in the middle of € */
        assert_int_equal(utf8_prefix_length(s, strlen(s), 3), 2);      /* nor of é */
        assert_int_equal(utf8_prefix_length(s, strlen(s), 0), 0);
        assert_int_equal(utf8_prefix_length("\xff\xff", 2, 1), 1);     /* a stray byte counts as one */
}

static void test_sanitize(void **state) {
        _cleanup_free_ char *a = utf8_sanitize("Bad \xff Thing", 11);
        _cleanup_free_ char *b = utf8_sanitize("caf\xc3\xa9", 5);
        _cleanup_free_ char *c = utf8_sanitize("x\xe2\x82", 3);
        _cleanup_free_ char *d = utf8_sanitize("a\0b", 3);

        assert_string_equal(a, "Bad " UTF8_REPLACEMENT_CHARACTER " Thing");
        assert_string_equal(b, "caf\xc3\xa9");
        assert_string_equal(c, "x" UTF8_REPLACEMENT_CHARACTER UTF8_REPLACEMENT_CHARACTER);
        assert_string_equal(d, "a" UTF8_REPLACEMENT_CHARACTER "b");
}

/* Whatever the bytes, the result is valid, and valid input comes back unchanged. */
static void test_sanitize_random(void **state) {
        unsigned seed = 1;

        for (int round = 0; round < 20000; round++) {
                unsigned char buf[16];
                size_t n = (size_t) (rand_r(&seed) % sizeof(buf));
                _cleanup_free_ char *clean = NULL;

                for (size_t i = 0; i < n; i++)
                        buf[i] = (unsigned char) (rand_r(&seed) % 4 == 0 ? rand_r(&seed) % 128 : 0x80 + rand_r(&seed) % 128);
                clean = utf8_sanitize((const char *) buf, n);
                assert_non_null(clean);
                assert_true(utf8_is_valid(clean));
                if (memchr(buf, 0, n) == NULL) {
                        char copy[sizeof(buf) + 1];

                        memcpy(copy, buf, n);
                        copy[n] = 0;
                        if (utf8_is_valid(copy))
                                assert_string_equal(clean, copy);
                }
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid),
                cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_char),
                cmocka_unit_test(test_prefix_length),
                cmocka_unit_test(test_sanitize),
                cmocka_unit_test(test_sanitize_random),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
