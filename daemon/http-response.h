/* SPDX-License-Identifier: MIT */
/* http-response: what a transfer reads from the header lines of the responses it receives, as
 * curl hands them to its header callback (one line each, its line end included): the reason
 * phrase of the status line, whether there is a Location, a Transfer-Encoding, and the
 * Content-Length values. Pure (no curl, no I/O), so that it can be fuzzed
 * (tests/fuzz/fuzz-http-response.c): these are bytes from any server. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HttpResponse {
        bool in_header;                 /* past a block's first line, before the blank line ending it */
        bool headers_done;              /* the header block of the latest response is complete */
        bool location;                  /* ... and it has a Location (curl follows a 3xx with one) */
        bool transfer_encoding;         /* ... a Transfer-Encoding, which overrides Content-Length */
        bool have_length;               /* ... a Content-Length, the first one being length */
        uint64_t length;
        uint64_t other_length;          /* a different Content-Length of the same response, or length */
        char reason[64];                /* reason phrase of the last status line */
} HttpResponse;

/* Reads one header line (n bytes, not NUL-terminated; zero-initialize h before the first).
 * 0, or -EBADMSG when it is the blank line that ends a header block with two different
 * Content-Lengths and no Transfer-Encoding (RFC 9112 6.3: where the body ends is unknown);
 * length and other_length are those two. */
int http_response_header(HttpResponse *h, const char *data, size_t n);
