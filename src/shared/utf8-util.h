/* SPDX-License-Identifier: MIT */
/* utf8-util: D-Bus strings must be valid UTF-8; checks for names, cleaning for text from servers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTF8_REPLACEMENT_CHARACTER "\xef\xbf\xbd"

/* The length of the character at s (at most left bytes) and its code point, or 0 when the bytes
 * there are not a character D-Bus accepts: a bad or overlong sequence, a surrogate, a
 * noncharacter, or NUL. */
size_t utf8_char(const char *s, size_t left, uint32_t *ret_codepoint);

bool utf8_is_valid(const char *s);

/* How many of the first n bytes of s fit into max bytes without cutting a character in two. */
size_t utf8_prefix_length(const char *s, size_t n, size_t max);

/* A valid UTF-8 copy of the first n bytes of s: each byte that is not part of a character becomes
 * U+FFFD. NULL when out of memory. */
char *utf8_sanitize(const char *s, size_t n);
