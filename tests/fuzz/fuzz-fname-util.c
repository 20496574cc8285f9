/* SPDX-License-Identifier: MIT */
/* fuzz-fname-util: filename_from_url() and filename_invalid_reason() against an independent
 * reference, and the derived name against the path libcurl will actually request.
 *
 * Invariants:
 *   F1  a derived name is a safe single path component: non-empty, not "." or "..", no '/', no NUL,
 *       at most 255 bytes, valid UTF-8 (no surrogates, noncharacters, overlongs), no C0/C1
 *       control or DEL
 *   F2  filename_invalid_reason() agrees with the reference checker (for the input bytes as a name)
 *   F3  for a URL the daemon accepts (url_check_http() == 0), a derived name is the percent-decoded
 *       last non-empty segment of the path libcurl parses (CURLUPART_PATH), i.e. of what is fetched */
#include <curl/curl.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fname-util.h"
#include "url-util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return 0;
}

/* Reference: true when s[0..n) is a file name the daemon may create. Written from the
 * specification, not from fname-util.c. */
static bool ref_name_ok(const unsigned char *s, size_t n) {
        if (n == 0 || n > 255)
                return false;
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < n;) {
                uint32_t c;
                size_t len;

                if (s[i] < 0x80)
                        c = s[i], len = 1;
                else if ((s[i] & 0xe0) == 0xc0)
                        c = s[i] & 0x1f, len = 2;
                else if ((s[i] & 0xf0) == 0xe0)
                        c = s[i] & 0x0f, len = 3;
                else if ((s[i] & 0xf8) == 0xf0)
                        c = s[i] & 0x07, len = 4;
                else
                        return false;
                if (i + len > n)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        c = c << 6 | (s[i + k] & 0x3f);
                }
                if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000))
                        return false;                           /* overlong */
                if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                        return false;
                if ((c >= 0xfdd0 && c <= 0xfdef) || (c & 0xffff) == 0xfffe || (c & 0xffff) == 0xffff)
                        return false;                           /* noncharacters: D-Bus refuses them */
                if (c == '/' || c < 0x20 || (c >= 0x7f && c <= 0x9f))
                        return false;
                i += len;
        }
        return true;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c |= 0x20;
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The percent-decoded last non-empty segment of curl's path for url, or NULL. */
static char *curl_last_segment(const char *url) {
        CURLU *u = curl_url();
        char *path = NULL, *res = NULL;

        if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK && path) {
                size_t end = strlen(path), start;
                size_t k = 0;

                while (end > 0 && path[end - 1] == '/')
                        end--;
                start = end;
                while (start > 0 && path[start - 1] != '/')
                        start--;
                res = malloc(end - start + 1);
                for (size_t i = start; i < end; i++) {
                        if (path[i] == '%' && i + 2 < end && hexval(path[i + 1]) >= 0 && hexval(path[i + 2]) >= 0) {
                                res[k++] = (char) (hexval(path[i + 1]) << 4 | hexval(path[i + 2]));
                                i += 2;
                        } else
                                res[k++] = path[i];
                }
                res[k] = 0;
        }
        curl_free(path);
        curl_url_cleanup(u);
        return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *reason = NULL;
        char *s, *name = NULL, *check_reason = NULL;
        int r;

        if (memchr(data, 0, size))
                return -1;
        s = strndup((const char *) data, size);

        /* F2: the input as a file name */
        CHECK(filename_is_valid(s) == ref_name_ok((const unsigned char *) s, size),
              "F2 filename_is_valid(\"%s\") = %d, reference %d", s, filename_is_valid(s),
              ref_name_ok((const unsigned char *) s, size));

        /* F1: the input as a URL */
        r = filename_from_url(s, &name, &reason);
        if (r == 0) {
                CHECK(name, "F1 no name");
                CHECK(ref_name_ok((const unsigned char *) name, strlen(name)), "F1 unsafe name \"%s\" from \"%s\"",
                      name, s);
                if (url_check_http(s, &check_reason) == 0) {
                        char *seg = curl_last_segment(s);

                        CHECK(seg && strcmp(seg, name) == 0,
                              "F3 name \"%s\" derived from \"%s\", but curl fetches a path ending in \"%s\"", name, s,
                              seg ? seg : "(none)");
                        free(seg);
                }
        } else
                CHECK(r == -EINVAL && reason && !name, "F1 failure without reason");

        free(check_reason);
        free(name);
        free(s);
        return 0;
}
