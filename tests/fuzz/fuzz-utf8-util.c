/* SPDX-License-Identifier: MIT */
/* fuzz-utf8-util: utf8_char(), utf8_is_valid(), utf8_prefix_length() and utf8_sanitize() against
 * a reference decoder and against each other.
 *
 * Invariants:
 *   T1  utf8_char() agrees with the reference decoder (length and code point) at every offset
 *   T2  utf8_is_valid(s) <=> the reference decodes all of s
 *   T3  utf8_prefix_length(s, n, max) <= min(n, max), is a sum of whole steps (never splits a
 *       valid character) and is maximal (the next step would exceed max)
 *   T4  utf8_sanitize(s, n) is valid UTF-8, equals s when s is valid, and has exactly one U+FFFD
 *       per byte that is not part of a character */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "utf8-util.h"

/* Reference, from RFC 3629 table 3-7 plus D-Bus' exclusions (NUL, noncharacters). */
static size_t ref_char(const unsigned char *s, size_t left, uint32_t *ret) {
        static const struct {
                unsigned char lo0, hi0, lo1, hi1;
                size_t len;
        } t[] = {
                { 0x01, 0x7f, 0, 0, 1 },
                { 0xc2, 0xdf, 0x80, 0xbf, 2 },
                { 0xe0, 0xe0, 0xa0, 0xbf, 3 },
                { 0xe1, 0xec, 0x80, 0xbf, 3 },
                { 0xed, 0xed, 0x80, 0x9f, 3 },
                { 0xee, 0xef, 0x80, 0xbf, 3 },
                { 0xf0, 0xf0, 0x90, 0xbf, 4 },
                { 0xf1, 0xf3, 0x80, 0xbf, 4 },
                { 0xf4, 0xf4, 0x80, 0x8f, 4 },
        };

        if (left == 0)
                return 0;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                uint32_t c;

                if (s[0] < t[i].lo0 || s[0] > t[i].hi0)
                        continue;
                if (t[i].len > left)
                        return 0;
                if (t[i].len > 1 && (s[1] < t[i].lo1 || s[1] > t[i].hi1))
                        return 0;
                for (size_t k = 2; k < t[i].len; k++)
                        if (s[k] < 0x80 || s[k] > 0xbf)
                                return 0;
                c = t[i].len == 1 ? s[0] : s[0] & (0xff >> (t[i].len + 1));
                for (size_t k = 1; k < t[i].len; k++)
                        c = c << 6 | (s[k] & 0x3f);
                if ((c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) == 0xfffe)
                        return 0;
                *ret = c;
                return t[i].len;
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *s = (const char *) data;
        size_t max, at, n_bad = 0, n_good_bytes = 0;
        bool ref_valid = true;
        char *copy, *san;

        if (size < 2)
                return 0;
        max = data[0] | (size_t) data[1] << 8;  /* the first two bytes choose max */
        s += 2, size -= 2;

        /* T1 at every offset */
        for (size_t i = 0; i < size; i++) {
                uint32_t c1 = UINT32_MAX, c2 = UINT32_MAX;
                size_t k1 = utf8_char(s + i, size - i, &c1), k2 = ref_char((const unsigned char *) s + i, size - i, &c2);

                CHECK(k1 == k2 && (k1 == 0 || c1 == c2), "T1 utf8_char at %zu: %zu U+%04X, reference %zu U+%04X", i, k1,
                      (unsigned) c1, k2, (unsigned) c2);
        }
        for (at = 0; at < size;) {
                uint32_t c;
                size_t k = ref_char((const unsigned char *) s + at, size - at, &c);

                if (k == 0) {
                        ref_valid = false;
                        n_bad++;
                        at++;
                } else {
                        n_good_bytes += k;
                        at += k;
                }
        }

        /* T2 (as a C string: only without NUL) */
        copy = strndup(s, size);
        if (!memchr(s, 0, size))
                CHECK(utf8_is_valid(copy) == ref_valid, "T2 utf8_is_valid = %d, reference %d", !ref_valid, ref_valid);

        /* T3 */
        {
                size_t p = utf8_prefix_length(s, size, max), a = 0;

                CHECK(p <= size && p <= max, "T3 prefix %zu > n %zu or max %zu", p, size, max);
                while (a < p) {
                        size_t k = utf8_char(s + a, size - a, NULL);
                        a += k ? k : 1;
                }
                CHECK(a == p, "T3 prefix %zu splits a character", p);
                if (p < size) {
                        size_t k = utf8_char(s + p, size - p, NULL);
                        CHECK(p + (k ? k : 1) > max, "T3 prefix %zu not maximal (max %zu)", p, max);
                }
        }

        /* T4 */
        san = utf8_sanitize(s, size);
        CHECK(san, "T4 NULL");
        CHECK(utf8_is_valid(san), "T4 sanitized copy is not valid UTF-8");
        CHECK(strlen(san) == n_good_bytes + 3 * n_bad, "T4 length %zu, expected %zu", strlen(san),
              n_good_bytes + 3 * n_bad);
        if (ref_valid)
                CHECK(memcmp(san, s, size) == 0, "T4 valid input changed");

        free(san);
        free(copy);
        return 0;
}
