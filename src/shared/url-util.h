/* SPDX-License-Identifier: MIT */
/* url-util: which URLs a task may fetch, by libcurl's own URL parser (the daemon's side only). */
#pragma once

#include <stdbool.h>

/* Checks that url parses and is http or https with a host. Returns 0, or -EINVAL with a
 * reason in *ret_reason (allocated, the caller frees it). */
int url_check_http(const char *url, char **ret_reason);

/* True for the common, unambiguous shape scheme://host[:port][/path] with only RFC 3986
 * characters, which libcurl always accepts: the fast path of url_check_http(). */
bool url_is_plain_http(const char *url);
