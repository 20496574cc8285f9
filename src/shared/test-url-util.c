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
        check_url("not a url", "invalid URL");
        check_url("", "invalid URL");
        check_url("http://", "invalid URL");
        check_url("http://127.0.0.1:0/x", "has port 0");
        check_url("http://127.0.0.1:00/x", "has port 0");
        check_url("http://127.0.0.1:080/x", NULL);
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

/* Whatever the fast path accepts, libcurl's parser must accept too. */
static bool curl_accepts(const char *url) {
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL;
        bool ok;

        assert_non_null(u);
        ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host &&
             (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0);
        curl_free(scheme);
        curl_free(host);
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
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                bool plain = url_is_plain_http(cases[i].url);

                if (plain != cases[i].plain)
                        fail_msg("url_is_plain_http(\"%s\") = %i", cases[i].url, plain);
                if (plain && !curl_accepts(cases[i].url))
                        fail_msg("fast path accepts \"%s\", curl does not", cases[i].url);
        }
}

/* Random URLs over an alphabet of the characters that matter: the implication must hold. */
static void test_plain_fast_path_random(void **state) {
        static const char alphabet[] = "aZ09-._~:/?#[]@!$&'()*+,;=% \"<>\\^`{|}\x01\x7f\xc3";
        static const char *prefixes[] = { "http://", "https://", "http://h", "http://h:80", "http://h:" };
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
                if (!curl_accepts(url))
                        fail_msg("fast path accepts \"%s\", curl does not", url);
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
