/* SPDX-License-Identifier: MIT */
/* utf8-util: D-Bus strings must be valid UTF-8; checks for names, cleaning for text from servers. */
#include <stdlib.h>
#include <string.h>

#include "utf8-util.h"

static bool is_continuation(unsigned char c) {
        return (c & 0xc0) == 0x80;
}

/* sd-bus refuses surrogates and noncharacters too, not only malformed sequences. */
static bool codepoint_is_valid(uint32_t c) {
        return c > 0 && c < 0x110000 &&
               (c & 0xfffff800) != 0xd800 &&
               !(c >= 0xfdd0 && c <= 0xfdef) &&
               (c & 0xfffe) != 0xfffe;
}

size_t utf8_char(const char *s, size_t left, uint32_t *ret_codepoint) {
        const unsigned char *p = (const unsigned char *) s;
        uint32_t c, min;
        size_t len;

        if (left == 0)
                return 0;
        if (p[0] < 0x80) {
                c = p[0], len = 1, min = 0;
        } else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
                c = p[0] & 0x1f, len = 2, min = 0x80;
        } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
                c = p[0] & 0x0f, len = 3, min = 0x800;
        } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
                c = p[0] & 0x07, len = 4, min = 0x10000;
        } else
                return 0;
        if (len > left)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if (!is_continuation(p[i]))
                        return 0;
                c = c << 6 | (p[i] & 0x3f);
        }
        if (c < min || !codepoint_is_valid(c))
                return 0;
        if (ret_codepoint)
                *ret_codepoint = c;
        return len;
}

bool utf8_is_valid(const char *s) {
        size_t left = strlen(s);

        while (left > 0) {
                size_t k = utf8_char(s, left, NULL);

                if (k == 0)
                        return false;
                s += k;
                left -= k;
        }
        return true;
}

size_t utf8_prefix_length(const char *s, size_t n, size_t max) {
        size_t at = 0;

        while (at < n) {
                size_t k = utf8_char(s + at, n - at, NULL) ?: 1;

                if (at + k > max)
                        break;
                at += k;
        }
        return at;
}

char *utf8_sanitize(const char *s, size_t n) {
        char *copy, *q;

        /* Every byte may turn into three. */
        copy = malloc(n * 3 + 1);
        if (!copy)
                return NULL;
        q = copy;
        for (size_t at = 0; at < n;) {
                size_t k = utf8_char(s + at, n - at, NULL);

                if (k > 0) {
                        memcpy(q, s + at, k);
                        q += k;
                        at += k;
                } else {
                        q = stpcpy(q, UTF8_REPLACEMENT_CHARACTER);
                        at++;
                }
        }
        *q = 0;
        return copy;
}
