/* SPDX-License-Identifier: MIT */
/* url-util: which URLs a task may fetch, by libcurl's own URL parser (the daemon's side only). */
#pragma once

#include <stdbool.h>
#include <string.h>

#include "utf8-util.h"

/* Far above what servers take by default (8 KiB for nginx and Apache), far below what would make
 * libcurl fail to build the request (1 MiB). */
#define URL_MAX_BYTES (64 * 1024)

/* Error messages quote at most this much of a URL: the arguments for "%.*s%s". */
#define URL_QUOTE_MAX 256
#define URL_QUOTE_LENGTH(url)                                                           \
        (int) utf8_prefix_length((url), strlen(url), URL_QUOTE_MAX), (url),             \
        strlen(url) > URL_QUOTE_MAX ? "..." : ""

/* Checks that url parses and is http or https, written scheme://host (libcurl also reads one or
 * three slashes, which the file name derivation would split differently). Returns 0, or -EINVAL with a
 * reason in *ret_reason (allocated, the caller frees it). */
int url_check_http(const char *url, char **ret_reason);

/* True for the common, unambiguous shape scheme://host[:port][/path] with only RFC 3986
 * characters, which libcurl always accepts and reads as written (no numeric host other than a
 * dotted quad, no leading zero in the port, no "." or ".." segment): the fast path of
 * url_check_http(). */
bool url_is_plain_http(const char *url);
