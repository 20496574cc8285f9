/* SPDX-License-Identifier: MIT */
/* Tests for progress: tqdm's interval and rate formats, the bar's charsets, whole lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "output.h"
#include "progress.h"

static void check_interval(uint64_t sec, const char *expected) {
        char buf[32];

        progress_format_interval(sec * USEC_PER_SEC + 999999, buf, sizeof(buf));   /* truncates */
        assert_string_equal(buf, expected);
}

static void test_interval(void **state) {
        check_interval(0, "00:00");
        check_interval(3, "00:03");
        check_interval(65, "01:05");
        check_interval(3599, "59:59");
        check_interval(3600, "1:00:00");
        check_interval(36005, "10:00:05");
}

static void check_rate(double r, const char *expected) {
        char buf[32];

        progress_format_rate(r, buf, sizeof(buf));
        assert_string_equal(buf, expected);
}

static void test_rate(void **state) {
        check_rate(30.48, "30.48it/s");         /* the seed's sample bar */
        check_rate(9.8, " 9.80it/s");           /* tqdm pads to five columns */
        check_rate(1, " 1.00it/s");
        check_rate(0.5, " 2.00s/it");
        check_rate(0, "?it/s");
        check_rate(-1, "?it/s");
}

static void check_bar(double fraction, unsigned width, bool unicode, const char *expected) {
        _cleanup_free_ char *bar = progress_render_bar(fraction, width, unicode);

        assert_non_null(bar);
        assert_string_equal(bar, expected);
        assert_int_equal(utf8_width(bar), width);
}

static void test_bar(void **state) {
        check_bar(0, 5, false, "     ");
        check_bar(1, 5, false, "#####");
        check_bar(0.5, 10, false, "#####     ");
        check_bar(0.65, 10, false, "######5   ");
        check_bar(0.65, 10, true, "██████▌   ");
        check_bar(0.99, 4, true, "███▉");
        check_bar(1, 3, true, "███");
        check_bar(1.5, 3, true, "███");         /* clamped */
        check_bar(-1, 3, true, "   ");
        check_bar(0.5, 0, true, "");
}

static void test_parts(void **state) {
        ProgressState s = { .done = 13, .total = 20, .elapsed_usec = 1326531 };
        _cleanup_free_ char *l = NULL, *r = NULL;

        assert_int_equal(progress_render_parts(&s, &l, &r), 0);
        assert_string_equal(l, " 65%|");
        assert_string_equal(r, "| 13/20 [00:01<00:00,  9.80it/s]");

        free(l);
        free(r);
        s = (ProgressState) { .done = 100, .total = 100, .elapsed_usec = 3281000, .bytes = 1258291 };
        assert_int_equal(progress_render_parts(&s, &l, &r), 0);
        assert_string_equal(l, "100%|");
        assert_string_equal(r, "| 100/100 [00:03<00:00, 30.48it/s, 1.2M]");
}

static void test_render(void **state) {
        ProgressState s = { .done = 13, .total = 20, .elapsed_usec = 1326531 };
        _cleanup_free_ char *line = NULL, *narrow = NULL, *spin = NULL, *spin_ascii = NULL, *tiny = NULL;

        line = progress_render(&s, 60, true);
        assert_non_null(line);
        assert_int_equal(utf8_width(line), 60);
        assert_true(strncmp(line, " 65%|█", strlen(" 65%|█")) == 0);
        assert_non_null(strstr(line, "| 13/20 [00:01<00:00,  9.80it/s]"));

        /* Too narrow for a bar: the counters alone. */
        narrow = progress_render(&s, 30, true);
        assert_string_equal(narrow, "13/20 [00:01<00:00,  9.80it/s]");

        /* Nothing done yet: the spinner. */
        s = (ProgressState) { .done = 0, .total = 20, .elapsed_usec = 2 * USEC_PER_SEC, .frame = 1 };
        spin = progress_render(&s, 80, true);
        assert_string_equal(spin, "⠙ Waiting for the first result… 0/20 [00:02]");
        spin_ascii = progress_render(&s, 80, false);
        assert_string_equal(spin_ascii, "/ Waiting for the first result... 0/20 [00:02]");
        tiny = progress_render(&s, 10, false);
        assert_string_equal(tiny, "/ 0/20");
}

static void test_render_room_for_one_cell(void **state) {
        ProgressState s = { .done = 13, .total = 20, .elapsed_usec = 1326531 };
        _cleanup_free_ char *l = NULL, *r = NULL, *exact = NULL, *one = NULL;
        unsigned used;

        assert_int_equal(progress_render_parts(&s, &l, &r), 0);
        used = utf8_width(l) + utf8_width(r);

        /* Room for the counters and their bars but not one cell between them: no empty "||" bar. */
        exact = progress_render(&s, used, false);
        assert_string_equal(exact, "13/20 [00:01<00:00,  9.80it/s]");

        /* One column more: a bar of one cell. */
        one = progress_render(&s, used + 1, false);
        assert_string_equal(one, " 65%|6| 13/20 [00:01<00:00,  9.80it/s]");
}

static void test_spinner(void **state) {
        assert_string_equal(progress_spinner(0, false), "|");
        assert_string_equal(progress_spinner(4, false), "|");
        assert_string_equal(progress_spinner(3, false), "\\");
        assert_string_equal(progress_spinner(0, true), "⠋");
        assert_string_equal(progress_spinner(1, true), "⠙");
        assert_string_equal(progress_spinner(10, true), "⠋");        /* ten frames, then again */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_interval),
                cmocka_unit_test(test_rate),
                cmocka_unit_test(test_bar),
                cmocka_unit_test(test_parts),
                cmocka_unit_test(test_render),
                cmocka_unit_test(test_render_room_for_one_cell),
                cmocka_unit_test(test_spinner),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
