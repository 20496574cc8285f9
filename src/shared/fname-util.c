/* SPDX-License-Identifier: MIT */
/* fname-util: what a task may name its file (pure string checks, no libcurl: asyncctl uses it). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fname-util.h"
#include "macro.h"
#include "string-util.h"
#include "utf8-util.h"

const char *filename_invalid_reason(const char *s) {
        size_t n;

        if (!s || !*s)
                return "file name is empty";
        if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return "file name may not be \".\" or \"..\"";
        n = strlen(s);
        if (n > FILENAME_MAX_BYTES)
                return "file name is longer than 255 bytes";
        for (size_t at = 0; at < n;) {
                uint32_t c = (unsigned char) s[at];
                size_t k = c < 0x80 ? 1 : utf8_char(s + at, n - at, &c);   /* a million names per job */

                if (k == 0)
                        return "file name is not valid UTF-8";
                if (c == '/')
                        return "file name contains \"/\"";
                if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
                        return "file name contains a control character";
                at += k;
        }
        return NULL;
}

int filename_from_url(const char *url, char **ret, const char **ret_reason) {
        const char *path_start, *end, *seg;
        _cleanup_free_ char *name = NULL;
        const char *reason;
        size_t k = 0;

        /* Only the path counts: skip "scheme://authority" (which ends at "/", "?" or "#"), stop at
         * query or fragment. */
        path_start = strstr(url, "://");
        if (path_start)
                path_start += 3 + strcspn(path_start + 3, "/?#");
        if (!path_start || *path_start != '/') {
                *ret_reason = "URL has no path to derive a file name from";
                return -EINVAL;
        }
        end = path_start + strcspn(path_start, "?#");
        while (end > path_start && end[-1] == '/')
                end--;
        seg = end;
        while (seg > path_start && seg[-1] != '/')
                seg--;
        if (seg == end) {
                *ret_reason = "URL has no path segment to derive a file name from";
                return -EINVAL;
        }

        name = malloc(end - seg + 1);
        if (!name)
                return -ENOMEM;
        for (const char *p = seg; p < end; p++) {
                int hi, lo;

                if (*p == '%' && end - p > 2 && (hi = unhexchar(p[1])) >= 0 && (lo = unhexchar(p[2])) >= 0) {
                        name[k++] = (char) (hi << 4 | lo);
                        p += 2;
                } else
                        name[k++] = *p;
        }
        name[k] = 0;

        if (strlen(name) != k) {
                *ret_reason = "file name derived from URL contains a NUL byte";
                return -EINVAL;
        }
        reason = filename_invalid_reason(name);
        if (reason) {
                *ret_reason = reason;
                return -EINVAL;
        }
        *ret = TAKE_PTR(name);
        return 0;
}
