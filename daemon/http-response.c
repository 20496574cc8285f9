/* SPDX-License-Identifier: MIT */
/* http-response: the header lines of the responses a transfer receives, read without curl. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http-response.h"
#include "utf8-util.h"

/* "HTTP/1.1 503 Service Unavailable\r\n": keep the phrase of the latest status line, none if it
 * has none. curl reads the code after the version's space and any more white space
 * ("HTTP/1.1  503 Busy"), and takes lines of any length ("HTTP/2 503\n"). */
static void keep_reason(HttpResponse *h, const char *data, size_t n) {
        const char *p, *end = data + n;

        h->reason[0] = 0;
        p = memchr(data, ' ', n);
        if (!p)
                return;
        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        for (unsigned i = 0; i < 3 && p < end && *p >= '0' && *p <= '9'; i++)
                p++;
        while (p < end && *p == ' ')
                p++;
        while (end > p && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
                end--;
        /* A reason phrase has no control characters but tabs (RFC 9112 4): one ends it here, so that
         * no terminal escape of the server's reaches a client that prints the error. The C1 ones
         * (U+0080..U+009F, in UTF-8 C2 80..C2 9F) too: U+009B is an escape on some terminals. */
        for (const char *c = p; c < end; c++)
                if ((*c >= 0 && *c < ' ' && *c != '\t') || *c == 0x7f ||
                    ((unsigned char) c[0] == 0xc2 && c + 1 < end && (unsigned char) c[1] >= 0x80 &&
                     (unsigned char) c[1] <= 0x9f)) {
                        end = c;
                        break;
                }
        snprintf(h->reason, sizeof(h->reason), "%.*s", (int) utf8_prefix_length(p, end - p, sizeof(h->reason) - 1), p);
}

/* "Content-Length: 100", also as a list ("100, 100") and repeated: every value must be the same.
 * Others are left to curl ("Invalid Content-Length"). */
static void note_length(HttpResponse *h, const char *p, const char *end) {
        while (p < end) {
                uint64_t v = 0;
                const char *digits;

                while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                        p++;
                /* curl reads the value with strtol(), which takes a plus sign: "+10" is 10 to it. */
                if (p < end && *p == '+')
                        p++;
                for (digits = p; p < end && *p >= '0' && *p <= '9'; p++) {
                        if (v > (UINT64_MAX - 9) / 10)
                                return;
                        v = v * 10 + (uint64_t) (*p - '0');
                }
                if (p == digits)
                        return;
                if (!h->have_length) {
                        h->have_length = true;
                        h->length = h->other_length = v;
                } else if (v != h->length)
                        h->other_length = v;
        }
}

int http_response_header(HttpResponse *h, const char *data, size_t n) {
        bool blank = n <= 2 && (n == 0 || data[0] == '\r' || data[0] == '\n');
        bool first = !h->in_header;

        /* Only a block's first line is a status line: in a block, curl reads "HTTP/x: y" as a
         * header, so it must not reset what the block said (a second Content-Length, a Location). */
        h->in_header = !blank;
        if (first && n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
                h->headers_done = h->location = h->transfer_encoding = h->have_length = false;
                keep_reason(h, data, n);
        } else if (n >= 9 && strncasecmp(data, "Location:", 9) == 0)
                h->location = true;
        else if (n >= 18 && strncasecmp(data, "Transfer-Encoding:", 18) == 0)
                h->transfer_encoding = true;
        else if (n >= 15 && strncasecmp(data, "Content-Length:", 15) == 0)
                note_length(h, data + 15, data + n);
        else if (blank) {
                h->headers_done = true;         /* the blank line after a header (or trailer) block */
                /* Where the body ends is unknown (RFC 9112 6.3: an unrecoverable error); curl 7.88
                 * would take the last length and save a cut or padded file as complete. */
                if (h->have_length && h->other_length != h->length && !h->transfer_encoding)
                        return -EBADMSG;
        }
        return 0;
}
