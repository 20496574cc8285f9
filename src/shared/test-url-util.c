/* SPDX-License-Identifier: MIT */
/* Tests for url-util: which URLs a task may fetch; the fast path never accepts what curl refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "url-util.h"
#include "macro.h"

static void check_url(const char *url, const char *reason_part) {
        _cleanup_free_ char *reason = NULL;
        int r = url_check_http(url, &reason);

        if (!reason_part) {
                assert_int_equal(r, 0);
                assert_null(reason);
        } else {
                assert_int_equal(r, -EINVAL);
                assert_non_null(reason);
                assert_non_null(strstr(reason, reason_part));
        }
}

static void test_url_check(void **state) {
        check_url("http://127.0.0.1:1/x", NULL);
        check_url("HTTPS://example.org/x", NULL);
        check_url("file:///etc/passwd", "unsupported URL scheme \"file\"");
        check_url("ftp://h/x", "unsupported URL scheme \"ftp\"");
        check_url("gopher://h/x", "unsupported URL scheme");
        /* Schemes this libcurl does not know at all: the same message, naming the scheme. */
        check_url("foo://h/x", "unsupported URL scheme \"foo\"");
        check_url("data:text/plain,hi", "unsupported URL scheme \"data\"");
        check_url("not a url", "invalid URL");
        check_url("", "invalid URL");
        check_url("http://", "invalid URL");
        check_url("http://127.0.0.1:0/x", "has port 0");
        check_url("http://127.0.0.1:00/x", "has port 0");
        check_url("http://127.0.0.1:080/x", NULL);
        check_url("http://127.1/x", NULL);
        check_url("http://h/a/../b.gif", NULL);
        /* curl takes one or three slashes too; the file name would come from the host or the query. */
        check_url("http:///x", "does not start with \"http://\" and a host");
        check_url("http:/h/a?x://y/evil", "does not start with");
        check_url("HTTPS:///h/x", "does not start with \"https://\" and a host");
}

static void test_url_length(void **state) {
        _cleanup_free_ char *url = malloc(URL_MAX_BYTES + 2), *reason = NULL;
        size_t prefix = strlen("http://h/");

        assert_non_null(url);
        memcpy(url, "http://h/", prefix);
        memset(url + prefix, 'a', URL_MAX_BYTES - prefix);
        url[URL_MAX_BYTES] = 0;
        check_url(url, NULL);
        url[URL_MAX_BYTES] = 'a';
        url[URL_MAX_BYTES + 1] = 0;
        check_url(url, "URL is longer than 65536 bytes");

        /* A long URL curl refuses is quoted in part, and not cut inside a character. */
        memcpy(url, "http://[bad/", 12);
        for (size_t i = 12; i + 2 < 2000; i += 2)
                memcpy(url + i, "\xc3\xa9", 2);
        url[2000] = 0;
        assert_int_equal(url_check_http(url, &reason), -EINVAL);
        assert_non_null(strstr(reason, "...\": "));
        assert_true(strlen(reason) < URL_QUOTE_MAX + 64);
        assert_true(utf8_is_valid(reason));
}

/* Whatever the fast path accepts, libcurl's parser must accept too, and read the same host, port
 * and path from it: the file name is derived from the URL as written, the request from curl's
 * reading of it. */
static bool curl_agrees(const char *url) {
        const char *authority = strstr(url, "://") + 3, *port_start, *path_start;
        size_t host_len, path_len;
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
        bool ok;

        assert_non_null(u);
        path_start = authority + strcspn(authority, "/");
        port_start = memchr(authority, ':', (size_t) (path_start - authority));
        host_len = (size_t) ((port_start ?: path_start) - authority);
        path_len = strcspn(path_start, "?#");
        ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host &&
             curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK &&
             (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
             strlen(host) == host_len && strncmp(host, authority, host_len) == 0 &&
             (path_len == 0 ? strcmp(path, "/") == 0 : strlen(path) == path_len && strncmp(path, path_start, path_len) == 0);
        if (ok && port_start) {
                ok = curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port &&
                     strlen(port) == (size_t) (path_start - port_start - 1) &&
                     strncmp(port, port_start + 1, strlen(port)) == 0;
        }
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_free(path);
        curl_url_cleanup(u);
        return ok;
}

static void test_plain_fast_path(void **state) {
        static const struct {
                const char *url;
                bool plain;
        } cases[] = {
                { "http://127.0.0.1:8080/small/f00001/f00001.gif", true },
                { "https://example.org", true },
                { "http://h/", true },
                { "http://h:65535/a%20b?x=1&y=2#frag", true },
                { "http://a-b.c.d/~user/p;q=1,2/(x)*'!$+=@:", true },
                { "http://h:0/", false },
                { "http://h:65536/", false },
                { "http://h:123456/", false },
                { "http://h:/", false },
                { "http://:80/", false },
                { "http:///x", false },
                { "http://user@h/", false },
                { "http://[::1]/", false },
                { "http://h/a b", false },
                { "http://h/a%2", false },
                { "http://h/a%zz", false },
                { "http://h/\\x", false },
                { "http://h/a\tb", false },
                { "http://h/[x]", false },
                { "http://h/\"", false },
                { "http://h/é", false },
                { "HTTP://h/", false },
                { "ftp://h/", false },
                { "http:/h/", false },
                { "http://h?x", false },
                /* What curl would rewrite goes the slow path: numeric hosts other than a dotted
                 * quad, ports with leading zeros, "." and ".." segments. */
                { "http://127.0.0.1/", true },
                { "http://255.255.255.255/", true },
                { "http://127.1/", false },
                { "http://1/", false },
                { "http://2130706433/", false },
                { "http://010.0.0.1/", false },
                { "http://0x7f.0.0.1/", false },
                { "http://256.0.0.1/", false },
                { "http://1password.example/", false },
                { "http://h:080/", false },
                { "http://h/a/../b", false },
                { "http://h/./x", false },
                { "http://h/x/..", false },
                { "http://h/x/.?y", false },
                { "http://h/..x/.y/x..", true },
                { "http://h/x?/../y", true },
                { "http://h/x#/./y", true },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                bool plain = url_is_plain_http(cases[i].url);

                if (plain != cases[i].plain)
                        fail_msg("url_is_plain_http(\"%s\") = %i", cases[i].url, plain);
                if (plain && !curl_agrees(cases[i].url))
                        fail_msg("fast path accepts \"%s\", curl does not or reads it differently", cases[i].url);
        }
}

/* Random URLs over an alphabet of the characters that matter: the implication must hold. */
static void test_plain_fast_path_random(void **state) {
        static const char alphabet[] = "aZ09-._~:/?#[]@!$&'()*+,;=% \"<>\\^`{|}\x01\x7f\xc3..//";
        static const char *prefixes[] = { "http://", "https://", "http://h", "http://h:80", "http://h:", "http://1", "http://h/" };
        unsigned seed = 1, n_plain = 0;
        char url[64];

        for (unsigned i = 0; i < 50000; i++) {
                const char *prefix = prefixes[i % ELEMENTSOF(prefixes)];
                size_t len = strlen(prefix), extra;

                seed = seed * 1103515245 + 12345;
                extra = (seed >> 16) % 12;
                memcpy(url, prefix, len);
                for (size_t k = 0; k < extra; k++) {
                        seed = seed * 1103515245 + 12345;
                        url[len++] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
                }
                url[len] = 0;
                if (!url_is_plain_http(url))
                        continue;
                n_plain++;
                if (!curl_agrees(url))
                        fail_msg("fast path accepts \"%s\", curl does not or reads it differently", url);
        }
        assert_true(n_plain > 1000); /* the test saw the fast path, not only refusals */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_url_check),
                cmocka_unit_test(test_url_length),
                cmocka_unit_test(test_plain_fast_path),
                cmocka_unit_test(test_plain_fast_path_random),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
