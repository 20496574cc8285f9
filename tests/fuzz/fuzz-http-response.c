/* SPDX-License-Identifier: MIT */
/* fuzz-http-response: http_response_header(), what a transfer reads from the header lines of a
 * server's responses (daemon/http-response.c), against a model of how libcurl 7.88 reads them.
 *
 * Input: the bytes a server sends before the body, cut into lines after each '\n' as curl hands
 * them to the header callback (a last piece without one is fed too). A header block is a status
 * line (its first line), header lines, and the blank line that ends it; 1xx responses, redirects
 * and trailers make several.
 *
 * Invariants (each failure aborts at its own line):
 *   R1  no read outside the line, whatever the bytes (ASan)
 *   R2  the reason phrase is NUL-terminated in its buffer; it holds no C0 control character but
 *       tab, no DEL and no C1 control (U+0080..U+009F as UTF-8, C2 80..C2 9F); cleaned with
 *       utf8_sanitize() as job_record_result() does, it is valid UTF-8 and still holds none of
 *       them (no terminal escape of the server's reaches a client that prints it)
 *   R3  only a block's first line changes the reason; when that line is a status line curl reads
 *       ("HTTP/d.d", spaces, three digits; or "HTTP/2" or "HTTP/3", a space, three digits), the
 *       reason is a prefix of what follows the status code and the spaces after it
 *   R4  -EBADMSG only at a blank line, and only with two different lengths and no Transfer-Encoding
 *   R5  a block (begun by "HTTP/") that ends without -EBADMSG and has no Transfer-Encoding: every
 *       Content-Length value curl reads from its lines (curlx_strtoofft(): blanks skipped, then
 *       strtol(), a '-' or other white space refused, an overflow ignored) equals length, so the
 *       file is never saved as complete at a length the check did not see */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "http-response.h"
#include "utf8-util.h"

#define MAX_VALUES 64

static bool is_control(uint32_t c) {
        return (c < 0x20 && c != '\t') || (c >= 0x7f && c <= 0x9f);
}

static void check_reason(const HttpResponse *h) {
        const char *r = h->reason;
        size_t len = strnlen(r, sizeof(h->reason));
        char *clean;

        CHECK(len < sizeof(h->reason), "reason not NUL-terminated");
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) r[i];

                CHECK(!(c < 0x20 && c != '\t') && c != 0x7f, "reason holds control byte 0x%02x", c);
                CHECK(!(c == 0xc2 && i + 1 < len && (unsigned char) r[i + 1] >= 0x80 &&
                        (unsigned char) r[i + 1] <= 0x9f), "reason holds a C1 control in UTF-8");
        }
        clean = utf8_sanitize(r, len);
        if (!clean)
                abort();
        CHECK(utf8_is_valid(clean), "cleaned reason not valid UTF-8");
        for (size_t at = 0, left = strlen(clean); left > 0;) {
                uint32_t c;
                size_t k = utf8_char(clean + at, left, &c);

                CHECK(k > 0, "cleaned reason not valid UTF-8");
                CHECK(!is_control(c), "cleaned reason holds control U+%04X", (unsigned) c);
                at += k;
                left -= k;
        }
        free(clean);
}

/* Where the reason of a status line curl reads begins (after the code and its spaces), or NULL. */
static const char *reason_start(const char *s, size_t n) {
        const char *p = s + 5, *end = s + n;

        if (n >= 10 && isdigit((unsigned char) s[5]) && s[6] == '.' && isdigit((unsigned char) s[7]) && s[8] == ' ') {
                p = s + 8;
                while (p < end && *p == ' ')
                        p++;
        } else if (n >= 11 && (s[5] == '2' || s[5] == '3') && s[6] == ' ')
                p = s + 7;
        else
                return NULL;
        if (end - p < 3 || !isdigit((unsigned char) p[0]) || !isdigit((unsigned char) p[1]) ||
            !isdigit((unsigned char) p[2]) || (end - p > 3 && isdigit((unsigned char) p[3])))
                return NULL;
        p += 3;
        while (p < end && *p == ' ')
                p++;
        return p;
}

/* A Content-Length line as curl 7.88 reads it: true and the value if it takes one. */
static bool curl_length(const char *s, size_t n, uint64_t *ret) {
        char buf[4200], *e;
        const char *p;
        long v;

        if (n < 15 || strncasecmp(s, "Content-Length:", 15) != 0 || n - 15 >= sizeof(buf))
                return false;
        memcpy(buf, s + 15, n - 15);    /* curl's copy of the line ends at its first NUL */
        buf[n - 15] = 0;
        p = buf;
        while (*p == ' ' || *p == '\t')
                p++;
        if (*p == '-' || isspace((unsigned char) *p))
                return false;           /* "Invalid Content-Length": the transfer fails */
        errno = 0;
        v = strtol(p, &e, 10);
        if (errno == ERANGE || e == p)
                return false;           /* overflow: curl ignores it; nothing: the transfer fails */
        *ret = (uint64_t) v;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        HttpResponse h = {};
        const char *s = (const char *) data, *end = s + size;
        uint64_t values[MAX_VALUES];
        size_t n_values = 0;
        bool first = true, block_http = false, block_te = false;

        while (s < end) {
                const char *nl = memchr(s, '\n', end - s);
                size_t n = nl ? (size_t) (nl - s) + 1 : (size_t) (end - s);
                /* A copy of exactly the line, so that ASan sees any read beyond it. */
                char *line = malloc(n ? n : 1);
                char before[sizeof(h.reason)];
                bool blank = n <= 2 && (n == 0 || s[0] == '\r' || s[0] == '\n');
                uint64_t v;
                int r;

                if (!line)
                        abort();
                memcpy(line, s, n);
                memcpy(before, h.reason, sizeof(before));

                if (first) {
                        block_http = n >= 5 && memcmp(line, "HTTP/", 5) == 0;
                        block_te = false;
                        n_values = 0;
                } else if (!blank) {
                        if (n >= 18 && strncasecmp(line, "Transfer-Encoding:", 18) == 0)
                                block_te = true;
                        if (curl_length(line, n, &v) && n_values < MAX_VALUES)
                                values[n_values++] = v;
                }

                r = http_response_header(&h, line, n);

                CHECK(r == 0 || r == -EBADMSG, "unexpected return %d", r);
                check_reason(&h);
                if (!first)
                        CHECK(memcmp(before, h.reason, sizeof(before)) == 0,
                              "reason changed by a line that is not a block's first");
                else if (block_http) {
                        const char *after = reason_start(line, n);

                        if (after)
                                CHECK(strlen(h.reason) <= (size_t) (line + n - after) &&
                                      strncmp(h.reason, after, strlen(h.reason)) == 0,
                                      "reason \"%s\" is not what follows the status code", h.reason);
                }
                if (r == -EBADMSG)
                        CHECK(blank && h.have_length && h.length != h.other_length && !h.transfer_encoding,
                              "-EBADMSG without two different lengths at a blank line");
                if (blank && !first && block_http && !block_te && r == 0)
                        for (size_t i = 0; i < n_values; i++)
                                CHECK(h.have_length && h.length == values[i],
                                      "curl reads Content-Length %llu, the check saw %s%llu",
                                      (unsigned long long) values[i], h.have_length ? "" : "none, ",
                                      (unsigned long long) h.length);

                first = blank;
                free(line);
                s += n;
        }
        return 0;
}
