/* SPDX-License-Identifier: MIT */
/* fname-util: what a task may name its file, and which URLs a task may fetch. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fname-util.h"
#include "macro.h"

const char *filename_invalid_reason(const char *s) {
        size_t n;

        if (!s || !*s)
                return "file name is empty";
        if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return "file name may not be \".\" or \"..\"";
        n = strlen(s);
        if (n > FILENAME_MAX_BYTES)
                return "file name is longer than 255 bytes";
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '/')
                        return "file name contains \"/\"";
                if (*p < 0x20 || *p == 0x7f)
                        return "file name contains a control character";
        }
        return NULL;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int filename_from_url(const char *url, char **ret, const char **ret_reason) {
        const char *path_start, *end, *seg;
        _cleanup_free_ char *name = NULL;
        const char *reason;
        size_t k = 0;

        /* Only the path counts: skip "scheme://authority", stop at query or fragment. */
        path_start = strstr(url, "://");
        path_start = path_start ? strchr(path_start + 3, '/') : NULL;
        if (!path_start) {
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

                if (*p == '%' && end - p > 2 && (hi = unhex(p[1])) >= 0 && (lo = unhex(p[2])) >= 0) {
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

int url_check_http(const char *url, char **ret_reason) {
        CURLU *u;
        CURLUcode uc;
        char *scheme = NULL, *host = NULL;
        int r = 0;

        *ret_reason = NULL;
        u = curl_url();
        if (!u)
                return -ENOMEM;

        uc = curl_url_set(u, CURLUPART_URL, url, 0);
        if (uc != CURLUE_OK) {
                if (asprintf(ret_reason, "invalid URL \"%s\": %s", url, curl_url_strerror(uc)) < 0)
                        *ret_reason = NULL;
                r = -EINVAL;
                goto finish;
        }
        if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || !scheme ||
            (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)) {
                if (asprintf(ret_reason, "unsupported URL scheme \"%s\"", scheme ? scheme : "") < 0)
                        *ret_reason = NULL;
                r = -EINVAL;
                goto finish;
        }
        if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
                if (asprintf(ret_reason, "URL \"%s\" has no host", url) < 0)
                        *ret_reason = NULL;
                r = -EINVAL;
        }
finish:
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
        if (r < 0 && !*ret_reason)
                return -ENOMEM;
        return r;
}
