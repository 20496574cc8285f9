/* SPDX-License-Identifier: MIT */
/* fuzz-url-util: differential fuzzing of url_is_plain_http() (the fast path) against libcurl's URL API,
 * and of url_check_http() as a whole against a fast-path-free reimplementation of it.
 *
 * Invariants (each failure aborts at its own line, so libFuzzer -fork keeps them apart):
 *   U1  fast path accepts  =>  curl_url_set() accepts, scheme http/https, host non-empty, port != 0
 *   U2  url_check_http() == 0  <=>  the curl-only check accepts (the fast path changes speed, not verdicts),
 *       for URLs spelled "scheme://" + host (the only ones the fast path takes)
 *   U3  url_check_http() < 0 => a reason; == 0 => none; reason valid UTF-8 when the URL is
 *   U4  fast path accepts  =>  curl's parts equal the literal parts of the string: scheme, host,
 *       port, path, query, fragment */
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "url-util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return 0;
}

typedef struct Parts {
        char *scheme, *host, *port, *path, *query, *fragment;
} Parts;

static void parts_free(Parts *p) {
        curl_free(p->scheme);
        curl_free(p->host);
        curl_free(p->port);
        curl_free(p->path);
        curl_free(p->query);
        curl_free(p->fragment);
}

/* url_check_http() without its fast path: 0 or -1. Fills parts when curl parses the URL. */
static int curl_check(const char *url, Parts *p) {
        CURLU *u = curl_url();
        int r = -1;

        if (!u)
                abort();
        if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
                curl_url_get(u, CURLUPART_SCHEME, &p->scheme, 0);
                curl_url_get(u, CURLUPART_HOST, &p->host, 0);
                curl_url_get(u, CURLUPART_PORT, &p->port, 0);
                curl_url_get(u, CURLUPART_PATH, &p->path, 0);
                curl_url_get(u, CURLUPART_QUERY, &p->query, 0);
                curl_url_get(u, CURLUPART_FRAGMENT, &p->fragment, 0);
                if (p->scheme && (strcasecmp(p->scheme, "http") == 0 || strcasecmp(p->scheme, "https") == 0) &&
                    p->host && *p->host && !(p->port && p->port[strspn(p->port, "0")] == 0))
                        r = 0;
        }
        curl_url_cleanup(u);
        return r;
}

static bool streq_n(const char *a, const char *b, size_t n) {
        return a && strlen(a) == n && memcmp(a, b, n) == 0;
}

/* The fast path accepted url: compare its literal parts with curl's. */
static void compare_parts(const char *url, const Parts *p) {
        const char *s = url + strcspn(url, ":") + 3;
        size_t n;

        CHECK(p->scheme && strncmp(url, p->scheme, strlen(p->scheme)) == 0, "U4 scheme differs: \"%s\" -> %s", url,
              p->scheme);

        n = strcspn(s, ":/");
        CHECK(streq_n(p->host, s, n), "U4 host differs: \"%s\" literal \"%.*s\" curl \"%s\"", url, (int) n, s,
              p->host);
        s += n;

        if (*s == ':') {
                n = strcspn(s + 1, "/");
                CHECK(streq_n(p->port, s + 1, n), "U4 port differs: \"%s\" literal \"%.*s\" curl \"%s\"", url,
                      (int) n, s + 1, p->port ? p->port : "(none)");
                s += 1 + n;
        } else
                CHECK(!p->port, "U4 curl has a port the URL has not: \"%s\" -> %s", url, p->port);

        /* Path up to '?' or '#'; curl gives "/" for none. */
        n = strcspn(s, "?#");
        CHECK(n == 0 ? streq_n(p->path, "/", 1) : streq_n(p->path, s, n),
              "U4 path differs: \"%s\" literal \"%.*s\" curl \"%s\"", url, (int) n, s, p->path);
        s += n;

        if (*s == '?') {
                n = strcspn(s + 1, "#");
                CHECK(streq_n(p->query, s + 1, n) || (n == 0 && !p->query), "U4 query differs: \"%s\" -> %s", url,
                      p->query ? p->query : "(none)");
                s += 1 + n;
        } else
                CHECK(!p->query, "U4 curl has a query the URL has not: \"%s\"", url);

        if (*s == '#')
                CHECK(streq_n(p->fragment, s + 1, strlen(s + 1)) || (!s[1] && !p->fragment),
                      "U4 fragment differs: \"%s\" -> %s", url, p->fragment ? p->fragment : "(none)");
        else
                CHECK(!p->fragment, "U4 curl has a fragment the URL has not: \"%s\"", url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *url, *reason = NULL;
        Parts p = {};
        bool fast;
        int slow, r;
        size_t k;

        if (memchr(data, 0, size))
                return -1;              /* D-Bus strings and C strings end at NUL */
        url = strndup((const char *) data, size);
        if (!url)
                abort();

        fast = url_is_plain_http(url);
        slow = curl_check(url, &p);
        r = url_check_http(url, &reason);

        CHECK(!fast || slow == 0, "U1 fast path accepts \"%s\", curl's check does not", url);
        /* Only for "scheme://host" spellings: url_check_http() may refuse the others on purpose. */
        k = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
        if (size <= URL_MAX_BYTES && strncmp(url + k, "://", 3) == 0 && url[k + 3] != '/')
                CHECK((r == 0) == (slow == 0), "U2 url_check_http(\"%s\") = %d, curl-only check %d", url, r, slow);
        if (r < 0) {
                CHECK(reason, "U3 no reason for \"%s\"", url);
                CHECK(!utf8_is_valid(url) || utf8_is_valid(reason), "U3 reason not valid UTF-8");
                CHECK(strlen(reason) < URL_QUOTE_MAX * 2 + 128, "U3 reason too long: %zu", strlen(reason));
        } else
                CHECK(!reason, "U3 reason on success");

        if (fast)
                compare_parts(url, &p);

        parts_free(&p);
        free(reason);
        free(url);
        return 0;
}
