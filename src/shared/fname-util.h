/* SPDX-License-Identifier: MIT */
/* fname-util: what a task may name its file (pure string checks, no libcurl: asyncctl uses it). */
#pragma once

#include <stdbool.h>

#define FILENAME_MAX_BYTES 255

/* Returns NULL when s is a valid single path component, else a static reason it is not. */
const char *filename_invalid_reason(const char *s);

static inline bool filename_is_valid(const char *s) {
        return !filename_invalid_reason(s);
}

/* Derives the file name from the last non-empty path segment of url, percent-decoded.
 * Returns 0, or -EINVAL with *ret_reason set to a static explanation. */
int filename_from_url(const char *url, char **ret, const char **ret_reason);
