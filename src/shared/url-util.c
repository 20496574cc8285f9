/* SPDX-License-Identifier: MIT */
/* url-util: which URLs a task may fetch, by libcurl's own URL parser (the daemon's side only). */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "string-util.h"
#include "url-util.h"

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool url_is_plain_http(const char *url) {
        const char *p;
        unsigned long port = 0;
        size_t n;

        if (strncmp(url, "http://", 7) == 0)
                p = url + 7;
        else if (strncmp(url, "https://", 8) == 0)
                p = url + 8;
        else
                return false;

        /* Host: letters, digits, '-' and '.', nothing curl could read as user info or IPv6. */
        for (n = 0; is_alnum(p[n]) || p[n] == '-' || p[n] == '.'; n++)
                ;
        if (n == 0)
                return false;
        p += n;

        if (*p == ':') {
                for (n = 1; p[n] >= '0' && p[n] <= '9' && n <= 5; n++)
                        port = port * 10 + (unsigned long) (p[n] - '0');
                if (n == 1 || n > 6 || port == 0 || port > 65535)
                        return false;
                p += n;
        }
        if (*p == 0)
                return true;
        if (*p != '/')
                return false;

        /* Path, query, fragment: RFC 3986 characters only, well-formed percent escapes. */
        for (; *p; p++) {
                if (*p == '%') {
                        if (unhexchar(p[1]) < 0 || unhexchar(p[2]) < 0)
                                return false;
                        p += 2;
                } else if (!is_alnum(*p) && !strchr("-._~:/?#@!$&'()*+,;=", *p))
                        return false;
        }
        return true;
}

int url_check_http(const char *url, char **ret_reason) {
        CURLU *u;
        CURLUcode uc;
        char *scheme = NULL, *host = NULL, *port = NULL;
        int r = 0;

        *ret_reason = NULL;
        if (strlen(url) > URL_MAX_BYTES)
                return asprintf(ret_reason, "URL is longer than %d bytes", URL_MAX_BYTES) < 0 ? -ENOMEM : -EINVAL;
        /* Parsing costs about a microsecond per URL and a job may have a million. */
        if (url_is_plain_http(url))
                return 0;

        u = curl_url();
        if (!u)
                return -ENOMEM;

        uc = curl_url_set(u, CURLUPART_URL, url, 0);
        if (uc != CURLUE_OK) {
                if (asprintf(ret_reason, "invalid URL \"%.*s%s\": %s", URL_QUOTE_LENGTH(url), curl_url_strerror(uc)) < 0)
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
                if (asprintf(ret_reason, "URL \"%.*s%s\" has no host", URL_QUOTE_LENGTH(url)) < 0)
                        *ret_reason = NULL;
                r = -EINVAL;
                goto finish;
        }
        /* curl's parser takes port 0, which no server listens on. */
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port && port[strspn(port, "0")] == 0) {
                if (asprintf(ret_reason, "URL \"%.*s%s\" has port 0", URL_QUOTE_LENGTH(url)) < 0)
                        *ret_reason = NULL;
                r = -EINVAL;
        }
finish:
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_url_cleanup(u);
        if (r < 0 && !*ret_reason)
                return -ENOMEM;
        return r;
}
