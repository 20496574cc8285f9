/* SPDX-License-Identifier: MIT */
/* string-util: locale-independent character helpers for URL and file-name checks. */
#pragma once

/* The value of a hexadecimal digit, or -1. */
static inline int unhexchar(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}
