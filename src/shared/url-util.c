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

/* 1 to 3 decimal digits, no leading zero, at most 255; four of them joined by dots. */
static bool is_canonical_ipv4(const char *s, size_t n) {
        size_t at = 0;

        for (unsigned part = 0; part < 4; part++) {
                unsigned v = 0, digits = 0;

                if (part > 0) {
                        if (at >= n || s[at] != '.')
                                return false;
                        at++;
                }
                while (at < n && s[at] >= '0' && s[at] <= '9' && digits < 4)
                        v = v * 10 + (unsigned) (s[at++] - '0'), digits++;
                if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && s[at - digits] == '0'))
                        return false;
        }
        return at == n;
}

/* Whether path[0..n) has a "." or ".." segment. */
static bool has_dot_segment(const char *path, size_t n) {
        for (size_t i = 0; i + 1 < n; i++)
                if (path[i] == '/' && path[i + 1] == '.') {
                        size_t k = i + 2;

                        if (k < n && path[k] == '.')
                                k++;
                        if (k == n || path[k] == '/')
                                return true;
                }
        return false;
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
        /* curl rewrites numeric hosts ("127.1", "0x7f.0.0.1", "2130706433", "010.0.0.1") to the
         * dotted quad: only that form itself stays here. */
        if (p[0] >= '0' && p[0] <= '9' && !is_canonical_ipv4(p, n))
                return false;
        p += n;

        if (*p == ':') {
                /* curl drops leading zeros ("080" is port "80"). */
                if (p[1] == '0')
                        return false;
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

        /* curl removes "." and ".." segments from the path (not from query or fragment). */
        if (has_dot_segment(p, strcspn(p, "?#")))
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

/* The length of the scheme that url starts with, as RFC 3986 writes one (a letter, then letters,
 * digits, "+", "-" and "."; libcurl takes at most 40 characters) and a ":" after it; 0 if none. */
static size_t scheme_length(const char *url) {
        size_t n = 0;

        if (!((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
                return 0;
        while (n < 40 && (is_alnum(url[n]) || url[n] == '+' || url[n] == '-' || url[n] == '.'))
                n++;
        return url[n] == ':' ? n : 0;
}

int url_check_http(const char *url, char **ret_reason) {
        CURLU *u;
        CURLUcode uc;
        char *scheme = NULL, *host = NULL, *port = NULL;
        size_t n;
        int r = 0;

        *ret_reason = NULL;
        if (strlen(url) > URL_MAX_BYTES)
                return asprintf(ret_reason, "URL is longer than %d bytes", URL_MAX_BYTES) < 0 ? -ENOMEM : -EINVAL;
        /* Parsing costs about a microsecond per URL and a job may have a million. */
        if (url_is_plain_http(url))
                return 0;
        /* One message for every other scheme, whether this libcurl knows it ("file:") or not
         * ("foo:", "data:"), as the contract's example has it; and no parsing for it. */
        n = scheme_length(url);
        if (n > 0 && !(n == 4 && strncasecmp(url, "http", 4) == 0) && !(n == 5 && strncasecmp(url, "https", 5) == 0))
                return asprintf(ret_reason, "unsupported URL scheme \"%.*s\"", (int) n, url) < 0 ? -ENOMEM : -EINVAL;

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
        /* The scheme as written was checked above: only running out of memory fails here. */
        if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || !scheme) {
                r = -ENOMEM;
                goto finish;
        }
        /* curl also takes one or three slashes after the scheme ("http:/h/x", "http:///h"), which
         * filename_from_url() and asyncctl, reading "scheme://authority/path" without libcurl, would
         * split differently: the file would be named after the host or the query. */
        if (strncmp(url + strlen(scheme), "://", 3) != 0 || url[strlen(scheme) + 3] == '/') {
                if (asprintf(ret_reason, "URL \"%.*s%s\" does not start with \"%s://\" and a host", URL_QUOTE_LENGTH(url),
                             scheme) < 0)
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
