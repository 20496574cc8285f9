/* SPDX-License-Identifier: MIT */
/* url-util: which URLs a task may fetch, by libcurl's own URL parser (the daemon's side only). */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <strings.h>

#include "url-util.h"

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
