/* SPDX-License-Identifier: MIT */
/* Engine against the fault-injecting server: every kind of failure is classified as the server
 * caused it, the semaphore and the global cap hold, the loop runs while the disk pool is slow,
 * sockets are watched whatever curl does with them (refused, reused numbers, idle connections the
 * server closes), and nothing is ever written through a planted symlink. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "test-engine-util.h"

typedef struct Case {
        const char *path;
        const char *filename;
        TaskStatus status;
        long http_code;
        const char *error_part;         /* substring of the error text */
        const char *error_exact;        /* or all of it */
} Case;

static const TaskResult *result_of(Job *j, uint32_t index) {
        for (uint32_t s = 0; s < j->n_results; s++)
                if (j->results[s].index == index)
                        return &j->results[s];
        fail_msg("no result for task %u", index);
        abort();
}

static void run_cases(const Case *cases, size_t n, const JobOptions *o) {
        const char *base = test_env("ASYNCD_TEST_FAULT_PLAIN_URL");
        TaskSpec *tasks = calloc(n, sizeof(TaskSpec));
        TestRun t;
        Job *j;
        size_t ok = 0;

        for (size_t i = 0; i < n; i++) {
                if (strncmp(cases[i].path, "http", 4) == 0)
                        tasks[i].url = strdup(cases[i].path);
                else
                        assert_true(asprintf(&tasks[i].url, "%s%s", base, cases[i].path) > 0);
                tasks[i].filename = strdup(cases[i].filename);
        }
        test_run_init(&t, 0);
        j = test_job_start(&t, tasks, n, o);
        test_run_until_finished(&t, 1);
        test_assert_results_complete(j);

        for (size_t i = 0; i < n; i++) {
                const TaskResult *r = result_of(j, (uint32_t) i);

                printf("%-45s -> %-9s %3u %s\n", cases[i].path, task_status_to_string(r->status), r->http_code,
                       r->error ?: "");
                assert_int_equal(r->status, cases[i].status);
                assert_int_equal(r->http_code, cases[i].http_code);
                if (cases[i].error_part) {
                        assert_non_null(r->error);
                        assert_non_null(strstr(r->error, cases[i].error_part));
                }
                if (cases[i].error_exact)
                        assert_string_equal(r->error, cases[i].error_exact);
                if (r->status == TASK_OK)
                        ok++;
                else
                        assert_int_equal(faccessat(t.dirfd, cases[i].filename, F_OK, AT_SYMLINK_NOFOLLOW), -1);
        }
        assert_int_equal(test_count_files(&t, false), ok);
        assert_int_equal(test_count_files(&t, true), 0);
        job_free(j);
        test_run_done(&t);
}

/* Starts the job on t and runs it to its end; the time it took. */
static Job *run_job_timed(TestRun *t, TaskSpec *tasks, size_t n, const JobOptions *o, uint64_t *ret_usec) {
        uint64_t start, end;
        Job *j;

        assert_true(sd_event_now(t->event, CLOCK_MONOTONIC, &start) >= 0);
        j = test_job_start(t, tasks, n, o);
        test_run_until_finished(t, 1);
        assert_true(sd_event_now(t->event, CLOCK_MONOTONIC, &end) >= 0);
        *ret_usec = end - start;
        return j;
}

/* A TCP socket bound to a free port of 127.0.0.1, not listening yet. */
static int loopback_socket(struct sockaddr_in *ret_addr) {
        struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(addr);
        int fd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &addr, &len), 0);
        *ret_addr = addr;
        return fd;
}

static void test_path_faults(void **state) {
        static const Case cases[] = {
                { "/flags/br/br.gif", "br.gif", TASK_OK, 200, NULL },
                { "/flags/xx/xx.gif", "xx.gif", TASK_NOT_FOUND, 404, NULL },
                { "/reset/flags/br/br.gif", "reset.gif", TASK_ERROR, 0, "reset" },
                { "/truncate/500/flags/br/br.gif", "truncated.gif", TASK_ERROR, 200, "bytes remaining" },
                { "/redirect/3/flags/br/br.gif", "redirected.gif", TASK_OK, 200, NULL },
                { "/redirect-file/flags/br/br.gif", "to-file.gif", TASK_ERROR, 302, "file" },
                { "/redirect-loop/flags/br/br.gif", "loop.gif", TASK_ERROR, 302, "redirects" },
                { "/status/503/flags/br/br.gif", "s503.gif", TASK_ERROR, 503, "HTTP 503 Service Unavailable" },
                { "/status/418/flags/br/br.gif", "s418.gif", TASK_ERROR, 418, "HTTP 418" },
                { "/status/500/flags/br/br.gif", "s500.gif", TASK_ERROR, 500, "HTTP 500 Internal Server Error" },
                { "/status/204/flags/br/br.gif", "empty.gif", TASK_OK, 204, NULL },
                { "/trickle/2/flags/br/br.gif", "trickled.gif", TASK_OK, 200, NULL },
                { "/bytes/20000000", "big.bin", TASK_OK, 200, NULL },
                { "/chunked/3000000", "chunked.bin", TASK_OK, 200, NULL },
                /* Two lengths: where the body ends is unknown (curl 7.88 takes the last one). */
                { "/extra-length/10/bytes/1000", "two-lengths.bin", TASK_ERROR, 200,
                  "conflicting Content-Length headers (1000 and 10)" },
                { "/extra-length/1000/bytes/1000", "same-length-twice.bin", TASK_OK, 200, NULL },
                { "/extra-length/10/chunked/1000", "chunked-and-length.bin", TASK_OK, 200, NULL },
                /* "HTTP/x: y" in a header block is a header to curl, not a new status line. */
                { "/header/485454502f783a2079/extra-length/10/bytes/1000", "status-like-header.bin", TASK_ERROR,
                  200, "conflicting Content-Length headers (1000 and 10)" },
                /* curl reads "+10" as 10 (strtol). */
                { "/header/436f6e74656e742d4c656e6774683a202b3130/bytes/1000", "plus-length.bin", TASK_ERROR,
                  200, "conflicting Content-Length headers (1000 and 10)" },
                /* libcurl's limit for a header line is 100 KiB; it calls a longer one "Out of memory". */
                { "/long-header/100000/flags/br/br.gif", "long-header.gif", TASK_OK, 200, NULL },
                { "/long-header/110000/flags/br/br.gif", "too-long-header.gif", TASK_ERROR, 200,
                  "header line longer than libcurl's limit of 100 KiB" },
                { "http://127.0.0.1:1/refused.gif", "refused.gif", TASK_ERROR, 0, "Connection refused" },
        };
        JobOptions o = JOB_OPTIONS_DEFAULT;

        o.concurrency = 4;
        run_cases(cases, ELEMENTSOF(cases), &o);
}

/* An error response is classified by its status however its body ends (cut short, reset, endless):
 * the body is no file, and curl --fail would not even read it. A body that has not ended after
 * 64 KiB is not waited for: 5 ms per 4 KiB piece of 100 MB would take 122 s, the timeout is 60. */
static void test_error_response_bodies(void **state) {
        static const Case cases[] = {
                { "/truncate/100/as-status/404/bytes/1000", "cut-404.bin", TASK_NOT_FOUND, 404, NULL },
                { "/reset-after/10/as-status/404/bytes/1000", "reset-404.bin", TASK_NOT_FOUND, 404, NULL },
                { "/truncate/100/as-status/503/bytes/1000", "cut-503.bin", TASK_ERROR, 503, "HTTP 503 Service Unavailable" },
                { "/reset-after/0/as-status/500/bytes/1000", "reset-500.bin", TASK_ERROR, 500, "HTTP 500 Internal Server Error" },
                { "/trickle/5/piece/4096/as-status/404/bytes/100000000", "endless-404.bin", TASK_NOT_FOUND, 404, NULL },
                { "/trickle/5/piece/4096/as-status/502/chunked/100000000", "endless-502.bin", TASK_ERROR, 502, "HTTP 502 Bad Gateway" },
                /* The redirect's own body failed: it was not followed, curl's reason stands. */
                { "/reset-after/0/redirect/1/flags/br/br.gif", "reset-302.gif", TASK_ERROR, 302, "reset" },
                /* A 2xx body that ends early is still an error, with no file. */
                { "/reset-after/0/bytes/1000", "reset-200.bin", TASK_ERROR, 200, "reset" },
                { "/as-status/404/flags/br/br.gif", "big-404.gif", TASK_NOT_FOUND, 404, NULL },
        };
        JobOptions o = JOB_OPTIONS_DEFAULT;

        o.timeout_usec = 60 * USEC_PER_SEC;
        run_cases(cases, ELEMENTSOF(cases), &o);
}

/* The server's reason phrase ends at a control character: no terminal escape reaches the client. */
static void test_reason_control_characters(void **state) {
        static const Case cases[] = {
                { "/reason/4261641b5b33316d526564/status/503/a", "escape.bin", TASK_ERROR, 503, NULL, "HTTP 503 Bad" },
                { "/reason/0772696e67/status/502/b", "bell.bin", TASK_ERROR, 502, NULL, "HTTP 502 Bad Gateway" },
                { "/reason/54616209546162/status/500/c", "tab.bin", TASK_ERROR, 500, NULL, "HTTP 500 Tab\tTab" },
                { "/reason/4331c29b33316d/status/504/d", "csi.bin", TASK_ERROR, 504, NULL, "HTTP 504 C1" },
                { "/reason/c3a9c2a06f6b/status/501/e", "latin.bin", TASK_ERROR, 501, NULL,
                  "HTTP 501 \xc3\xa9\xc2\xa0ok" },
                /* "HTTP/1.1  503 Busy": curl reads the status code after more than one space. */
                { "/status-line/485454502f312e3120203530332042757379/status/503/f", "two-spaces.bin", TASK_ERROR, 503,
                  NULL, "HTTP 503 Busy" },
        };
        JobOptions o = JOB_OPTIONS_DEFAULT;

        run_cases(cases, ELEMENTSOF(cases), &o);
}

static void test_limits(void **state) {
        static const Case cases[] = {
                { "/bytes/4096", "fits.bin", TASK_OK, 200, NULL },
                { "/bytes/5000", "too-big.bin", TASK_ERROR, 200, "larger than the limit of 4096 bytes" },
                { "/chunked/5000", "too-big-chunked.bin", TASK_ERROR, 200, "larger than the limit of 4096 bytes" },
                { "/delay/3000/flags/br/br.gif", "slow.gif", TASK_ERROR, 0, "timed out" },
                /* A redirect whose body keeps coming (80 KiB in 20 pieces over 0.2 s): libcurl reads
                 * and drops it before it follows the Location (a small file). Bounded like an error
                 * page's, by 64 KiB when max_bytes is less. */
                { "/as-status/302/header/4c6f636174696f6e3a202f62797465732f313030/trickle/10/piece/4096/bytes/81920",
                  "long-redirect.bin", TASK_ERROR, 302, "redirect body larger than 65536 bytes" },
                /* The limit is the file's: short redirect bodies pass, and a long error page is what
                 * its status says. */
                { "/redirect/2/bytes/100", "redirected.bin", TASK_OK, 200, NULL },
                { "/as-status/404/bytes/10000", "long-404.bin", TASK_NOT_FOUND, 404, NULL },
        };
        JobOptions o = JOB_OPTIONS_DEFAULT;

        o.max_bytes = 4096;
        o.timeout_usec = 500 * USEC_PER_MSEC;
        run_cases(cases, ELEMENTSOF(cases), &o);
}

/* A body whose Content-Length is over max_bytes is refused at its first piece, not read up to the
 * limit: here the limit would take 8 s to reach (100 bytes every 200 ms). */
static void test_limit_by_content_length(void **state) {
        const char *base = test_env("ASYNCD_TEST_FAULT_PLAIN_URL");
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TaskSpec *tasks = calloc(1, sizeof(TaskSpec));
        uint64_t usec;
        TestRun t;
        Job *j;

        assert_true(asprintf(&tasks[0].url, "%s/trickle/200/piece/100/bytes/5000", base) > 0);
        tasks[0].filename = strdup("announced.bin");
        o.max_bytes = 4096;
        test_run_init(&t, 0);
        j = run_job_timed(&t, tasks, 1, &o, &usec);
        printf("Content-Length 5000, limit 4096: %s \"%s\" after %.2f s\n", task_status_to_string(j->results[0].status),
               j->results[0].error ?: "", (double) usec / USEC_PER_SEC);
        assert_int_equal(j->results[0].status, TASK_ERROR);
        assert_int_equal(j->results[0].http_code, 200);
        assert_string_equal(j->results[0].error, "body larger than the limit of 4096 bytes");
        assert_true(usec < 2 * USEC_PER_SEC);
        assert_int_equal(test_count_files(&t, false), 0);
        job_free(j);
        test_run_done(&t);
}

/* A server that goes silent ends the task after the stall timeout (curl's speed is an average over
 * its last few seconds, hence the 4 s silence); one that keeps sending, however slowly, does not. */
static void test_stall_timeout(void **state) {
        static const Case cases[] = {
                { "/delay/4000/flags/br/br.gif", "silent.gif", TASK_ERROR, 0, "too slow" },
                { "/trickle/700/piece/256/bytes/1024", "slow.bin", TASK_OK, 200, NULL },
        };
        JobOptions o = JOB_OPTIONS_DEFAULT;

        o.stall_timeout_usec = USEC_PER_SEC;
        run_cases(cases, ELEMENTSOF(cases), &o);
}

static void test_big_file_content(void **state) {
        const char *base = test_env("ASYNCD_TEST_FAULT_PLAIN_URL");
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TaskSpec *tasks = calloc(1, sizeof(TaskSpec));
        unsigned char buf[65536];
        uint64_t off = 0;
        ssize_t n;
        TestRun t;
        Job *j;
        int fd;

        assert_true(asprintf(&tasks[0].url, "%s/bytes/%u", base, 30000000U) > 0);
        tasks[0].filename = strdup("");
        test_run_init(&t, 0);
        /* A slow pool forces the write path to pause curl and resume it. */
        disk_pool_set_delay(t.engine->pool, 20 * USEC_PER_MSEC);
        j = test_job_start(&t, tasks, 1, &o);
        test_run_until_finished(&t, 1);
        assert_int_equal(j->results[0].status, TASK_OK);
        assert_int_equal(j->results[0].bytes, 30000000U);

        fd = openat(t.dirfd, "30000000", O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
                for (ssize_t i = 0; i < n; i++)
                        assert_int_equal(buf[i], (unsigned char) (((off + i) * 31 + 7) % 256));
                off += n;
        }
        assert_int_equal(off, 30000000U);
        close(fd);
        job_free(j);
        test_run_done(&t);
}

/* ERROR mode: the server's own log says what it did to each request; the results must agree. */
static void test_error_server(void **state) {
        const char *base = test_env("ASYNCD_TEST_FAULT_ERROR_URL"), *log = test_env("ASYNCD_TEST_FAULT_ERROR_LOG");
        JobOptions o = JOB_OPTIONS_DEFAULT;
        char **codes = NULL, line[4096];
        size_t n = test_flag_codes(&codes);
        unsigned errors = 0, delayed = 0, matched = 0;
        TestRun t;
        FILE *f;
        Job *j;

        test_run_init(&t, 0);
        o.concurrency = 20;
        j = test_job_start(&t, test_tasks_from_codes(base, (const char *const *) codes, n), n, &o);
        test_run_until_finished(&t, 1);
        test_assert_results_complete(j);
        usleep(200 * 1000); /* the server writes its log line just after the last byte */

        f = fopen(log, "re");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f)) {
                json_object *o_line = json_tokener_parse(line), *v;
                const char *path, *action;
                long status;

                assert_non_null(o_line);
                assert_true(json_object_object_get_ex(o_line, "path", &v));
                path = json_object_get_string(v);
                assert_true(json_object_object_get_ex(o_line, "action", &v));
                action = json_object_get_string(v);
                assert_true(json_object_object_get_ex(o_line, "status", &v));
                status = json_object_get_int(v);

                for (uint32_t i = 0; i < j->n_tasks; i++) {
                        const TaskResult *r;

                        if (!strstr(j->tasks[i].url, path) || strlen(strstr(j->tasks[i].url, path)) != strlen(path))
                                continue;
                        r = result_of(j, i);
                        if (strcmp(action, "error") == 0) {
                                char expect[32];

                                snprintf(expect, sizeof(expect), "HTTP %ld ", status);
                                assert_int_equal(r->status, TASK_ERROR);
                                assert_int_equal(r->http_code, status);
                                assert_non_null(strstr(r->error, expect));
                                errors++;
                        } else {
                                assert_int_equal(r->status, TASK_OK);
                                delayed += strcmp(action, "delay") == 0;
                        }
                        matched++;
                }
                json_object_put(o_line);
        }
        fclose(f);
        printf("ERROR server: %u requests matched, %u errors, %u delayed; results: %u ok, %u errors\n", matched,
               errors, delayed, j->counts[TASK_OK], j->counts[TASK_ERROR]);
        assert_int_equal(matched, n);
        assert_int_equal(errors, j->counts[TASK_ERROR]);
        assert_true(errors > 0 && delayed > 0);
        job_free(j);
        test_run_done(&t);
        test_flag_codes_free(codes);
}

static void reset_stats(const char *base) {
        char url[256];

        snprintf(url, sizeof(url), "%s/_stats/reset", base);
        free(test_http_get(url));
}

static long max_concurrent(const char *base) {
        char url[256], *json;
        long v;

        snprintf(url, sizeof(url), "%s/_stats", base);
        json = test_http_get(url);
        v = test_json_int(json, "max_concurrent");
        free(json);
        return v;
}

static void test_semaphore(void **state) {
        const char *base = test_env("ASYNCD_TEST_FAULT_DELAY_URL");
        char **codes = NULL;
        size_t n = test_flag_codes(&codes);
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TestRun t;
        Job *j;

        n = 24;
        for (unsigned concurrency = 1; concurrency <= 8; concurrency *= 2) {
                test_run_init(&t, 0);
                reset_stats(base);
                o.concurrency = concurrency;
                j = test_job_start(&t, test_tasks_from_codes(base, (const char *const *) codes, n), n, &o);
                test_run_until_finished(&t, 1);
                assert_int_equal(j->counts[TASK_OK], n);
                printf("concurrency %u: server saw at most %ld concurrent requests\n", concurrency, max_concurrent(base));
                assert_int_equal(max_concurrent(base), concurrency);
                job_free(j);
                test_run_done(&t);
        }
        test_flag_codes_free(codes);
}

typedef struct Order {
        Job *jobs[2];
        char first_job[64];
        unsigned n;
} Order;

static void test_global_cap_fair(void **state) {
        const char *base = test_env("ASYNCD_TEST_FAULT_DELAY_URL");
        char **codes = NULL;
        (void) test_flag_codes(&codes);
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TestRun t;
        Job *a, *b;

        test_run_init(&t, 3);
        reset_stats(base);
        o.concurrency = 5;
        a = test_job_start(&t, test_tasks_from_codes(base, (const char *const *) codes, 12), 12, &o);
        b = test_job_start(&t, test_tasks_from_codes(base, (const char *const *) codes + 12, 12), 12, &o);
        /* Both jobs must be making progress while the other still runs. */
        while (a->n_results + b->n_results < 8)
                assert_true(sd_event_run(t.event, 10 * USEC_PER_SEC) > 0);
        printf("after 8 results: job a %u, job b %u\n", a->n_results, b->n_results);
        assert_true(a->n_results >= 2 && b->n_results >= 2);
        test_run_until_finished(&t, 2);
        assert_int_equal(a->counts[TASK_OK] + b->counts[TASK_OK], 24);
        assert_int_equal(max_concurrent(base), 3);
        job_free(a);
        job_free(b);
        test_run_done(&t);
        test_flag_codes_free(codes);
}

typedef struct Ticker {
        uint64_t last, max_gap;
        unsigned ticks;
} Ticker;

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Ticker *k = userdata;
        uint64_t now;

        assert_true(sd_event_now(sd_event_source_get_event(s), CLOCK_MONOTONIC, &now) >= 0);
        if (k->last > 0 && now - k->last > k->max_gap)
                k->max_gap = now - k->last;
        k->last = now;
        k->ticks++;
        assert_int_equal(sd_event_source_set_time_relative(s, 10 * USEC_PER_MSEC), 0);
        return 0;
}

static void test_loop_runs_while_pool_is_slow(void **state) {
        const char *base = test_env("ASYNCD_TEST_NGINX_URL");
        char **codes = NULL;
        (void) test_flag_codes(&codes);
        JobOptions o = JOB_OPTIONS_DEFAULT;
        Ticker k = {};
        sd_event_source *tick;
        uint64_t took;
        TestRun t;
        Job *j;

        test_run_init(&t, 0);
        disk_pool_set_delay(t.engine->pool, 250 * USEC_PER_MSEC);
        assert_int_equal(sd_event_add_time_relative(t.event, &tick, CLOCK_MONOTONIC, 10 * USEC_PER_MSEC, 1, on_tick, &k), 0);
        assert_int_equal(sd_event_source_set_enabled(tick, SD_EVENT_ON), 0);
        o.concurrency = 20;
        j = run_job_timed(&t, test_tasks_from_codes(base, (const char *const *) codes, 40), 40, &o, &took);
        printf("40 files with 250 ms per disk operation on 4 threads: %.2f s, %u ticks, max gap %.1f ms\n",
               (double) took / USEC_PER_SEC, k.ticks, (double) k.max_gap / USEC_PER_MSEC);
        assert_int_equal(j->counts[TASK_OK], 40);
        /* 40 operations of 250 ms on 4 threads take >= 2.5 s; the 10 ms ticker never stalled. */
        assert_true(took >= 2400 * USEC_PER_MSEC);
        /* A loop waiting on the pool would show gaps of 250 ms; allow for a loaded machine. */
        assert_true(k.max_gap < 200 * USEC_PER_MSEC);
        sd_event_source_disable_unref(tick);
        job_free(j);
        test_run_done(&t);
        test_flag_codes_free(codes);
}

static void test_refused_connections(void **state) {
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TaskSpec *tasks = calloc(1000, sizeof(TaskSpec));
        struct sockaddr_in addr;
        uint64_t took;
        TestRun t;
        Job *j;
        int fd;

        /* A port that is bound but not listening refuses every connection, and stays ours. */
        fd = loopback_socket(&addr);
        for (size_t i = 0; i < 1000; i++) {
                assert_true(asprintf(&tasks[i].url, "http://127.0.0.1:%u/f%zu.gif", ntohs(addr.sin_port), i) > 0);
                tasks[i].filename = strdup("");
        }

        /* Each refused socket closes in the iteration in which the next transfer's socket opens and
         * usually gets its number: that one must be watched, not found by curl's timers later. */
        o.concurrency = 100;
        test_run_init(&t, 0);
        j = run_job_timed(&t, tasks, 1000, &o, &took);
        printf("1000 refused connections, 100 at a time: %.3f s; %s\n", (double) took / USEC_PER_SEC,
               result_of(j, 0)->error);
        assert_int_equal(j->counts[TASK_ERROR], 1000);
        assert_non_null(strstr(result_of(j, 999)->error, "refused"));
        assert_int_equal(test_count_files(&t, false), 0);
        /* Ten rounds of 100; unwatched sockets cost ~190 ms a round (1.8 s for the job). */
        assert_true(took < 1000 * USEC_PER_MSEC);
        job_free(j);
        test_run_done(&t);
        close(fd);
}

/* A listener whose accept queue is full drops further SYNs: the connection never completes, and
 * the task's connect timeout, not its overall one (none here), must end it. */
static void test_connect_timeout(void **state) {
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TaskSpec *tasks = calloc(1, sizeof(TaskSpec));
        struct sockaddr_in addr;
        int fd, fillers[4];
        uint64_t took;
        TestRun t;
        Job *j;

        fd = loopback_socket(&addr);
        assert_int_equal(listen(fd, 0), 0);
        /* Never accepted: they fill the queue (a backlog of 0 still holds one). */
        for (size_t i = 0; i < ELEMENTSOF(fillers); i++) {
                fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                assert_true(fillers[i] >= 0);
                (void) connect(fillers[i], (struct sockaddr *) &addr, sizeof(addr));
        }
        assert_true(asprintf(&tasks[0].url, "http://127.0.0.1:%u/slow.gif", ntohs(addr.sin_port)) > 0);
        tasks[0].filename = strdup("");

        o.connect_timeout_usec = 300 * USEC_PER_MSEC;
        o.timeout_usec = 0;
        test_run_init(&t, 0);
        j = run_job_timed(&t, tasks, 1, &o, &took);
        printf("connect timeout 300 ms: %.3f s; %s\n", (double) took / USEC_PER_SEC, result_of(j, 0)->error);
        assert_int_equal(j->counts[TASK_ERROR], 1);
        /* "Failed to connect … after 300 ms: Timeout was reached", or, when the timer fires
         * first (valgrind), "Connection timeout after 300 ms". */
        assert_non_null(strstr(result_of(j, 0)->error, "imeout"));
        assert_true(took >= 250 * USEC_PER_MSEC && took < 2 * USEC_PER_SEC);
        job_free(j);
        test_run_done(&t);
        for (size_t i = 0; i < ELEMENTSOF(fillers); i++)
                close(fillers[i]);
        close(fd);
}

/* A one-connection HTTP server on the test's own loop: answers each request on its keep-alive
 * connection with a 5-byte body, and closes the connection when the test says so. */
typedef struct TinyServer {
        int listen_fd, conn_fd;
        sd_event_source *accept_source, *conn_source;
        unsigned connections;
        char request[4096];
        size_t n_request;
} TinyServer;

static int tiny_on_request(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        static const char response[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        TinyServer *srv = userdata;
        ssize_t k;

        k = read(fd, srv->request + srv->n_request, sizeof(srv->request) - 1 - srv->n_request);
        assert_true(k > 0);
        srv->n_request += (size_t) k;
        srv->request[srv->n_request] = 0;
        if (strstr(srv->request, "\r\n\r\n")) {
                assert_int_equal(write(fd, response, strlen(response)), (ssize_t) strlen(response));
                srv->n_request = 0;
        }
        return 0;
}

static int tiny_on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        TinyServer *srv = userdata;

        assert_int_equal(srv->conn_fd, -1);
        srv->conn_fd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        assert_true(srv->conn_fd >= 0);
        srv->connections++;
        assert_true(sd_event_add_io(sd_event_source_get_event(s), &srv->conn_source, srv->conn_fd, EPOLLIN,
                                    tiny_on_request, srv) >= 0);
        return 0;
}

static void tiny_close_connection(TinyServer *srv) {
        srv->conn_source = sd_event_source_unref(srv->conn_source);
        close(srv->conn_fd);
        srv->conn_fd = -1;
}

static uint16_t tiny_start(TinyServer *srv, sd_event *event) {
        struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(addr);

        *srv = (TinyServer) { .conn_fd = -1 };
        srv->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(srv->listen_fd >= 0);
        assert_int_equal(bind(srv->listen_fd, (struct sockaddr *) &addr, sizeof(addr)), 0);
        assert_int_equal(listen(srv->listen_fd, 8), 0);
        assert_int_equal(getsockname(srv->listen_fd, (struct sockaddr *) &addr, &len), 0);
        assert_true(sd_event_add_io(event, &srv->accept_source, srv->listen_fd, EPOLLIN, tiny_on_accept, srv) >= 0);
        return ntohs(addr.sin_port);
}

static void tiny_stop(TinyServer *srv) {
        if (srv->conn_fd >= 0)
                tiny_close_connection(srv);
        srv->accept_source = sd_event_source_unref(srv->accept_source);
        close(srv->listen_fd);
}

static uint64_t thread_cpu_usec(void) {
        struct timespec ts;

        assert_int_equal(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts), 0);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static Job *start_one(TestRun *t, uint16_t port, const char *name) {
        JobOptions o = JOB_OPTIONS_DEFAULT;
        TaskSpec *task = calloc(1, sizeof(TaskSpec));

        assert_true(asprintf(&task->url, "http://127.0.0.1:%u/%s", port, name) > 0);
        task->filename = strdup("");
        return test_job_start(t, task, 1, &o);
}

/* The glue leaves an idle connection's socket in its epoll set (no epoll_ctl per reuse). When the
 * server closes that connection the socket turns readable for good: it must leave the set, not
 * wake the loop again and again; and the next job must get a new connection. */
static void test_idle_connection_closed_by_server(void **state) {
        uint64_t cpu0, cpu1, until;
        TinyServer srv;
        uint16_t port;
        TestRun t;
        Job *j;

        test_run_init(&t, 0);
        port = tiny_start(&srv, t.event);
        j = start_one(&t, port, "a.txt");
        test_run_until_finished(&t, 1);
        assert_int_equal(j->counts[TASK_OK], 1);
        job_free(j);

        tiny_close_connection(&srv);
        cpu0 = thread_cpu_usec();
        assert_true(sd_event_now(t.event, CLOCK_MONOTONIC, &until) >= 0);
        until += 300 * USEC_PER_MSEC;
        for (uint64_t now = 0; now < until; )
                assert_true(sd_event_run(t.event, 10 * USEC_PER_MSEC) >= 0 &&
                            sd_event_now(t.event, CLOCK_MONOTONIC, &now) >= 0);
        cpu1 = thread_cpu_usec();
        printf("300 ms after the server closed the idle connection: loop thread used %.1f ms of CPU\n",
               (double) (cpu1 - cpu0) / USEC_PER_MSEC);
        /* A socket left readable in the set: the loop spins, ~300 ms. */
        assert_true(cpu1 - cpu0 < 100 * USEC_PER_MSEC);

        j = start_one(&t, port, "b.txt");
        test_run_until_finished(&t, 2);
        assert_int_equal(j->counts[TASK_OK], 1);
        assert_int_equal(srv.connections, 2);
        assert_int_equal(test_count_files(&t, false), 2);
        job_free(j);
        tiny_stop(&srv);
        test_run_done(&t);
}

#define N_HOST_NAMES 500U

/* Set by main(): this process has its own /etc/hosts that also names asyncd-test-0 …
 * asyncd-test-499 as 127.0.0.1 (a private mount namespace: root only, before any thread). */
static bool have_host_names = false;

/* A minimal root (debootstrap) has no /etc/hosts to bind over: /etc gets a private writable layer
 * instead, so the file is created in this process's view only. */
static bool make_etc_writable(void) {
        char dir[] = "/tmp/asyncd-etc-XXXXXX", upper[64], work[64], options[256];
        bool ok;

        if (!mkdtemp(dir))
                return false;
        snprintf(upper, sizeof(upper), "%s/upper", dir);
        snprintf(work, sizeof(work), "%s/work", dir);
        snprintf(options, sizeof(options), "lowerdir=/etc,upperdir=%s,workdir=%s", upper, work);
        ok = mount("tmpfs", dir, "tmpfs", 0, "mode=0755") >= 0 && mkdir(upper, 0755) >= 0 &&
             mkdir(work, 0755) >= 0 && mount("overlay", "/etc", "overlay", 0, options) >= 0;
        /* The overlay holds its layers itself: the mount point on the real /tmp can go. */
        (void) umount2(dir, MNT_DETACH);
        (void) rmdir(dir);
        return ok;
}

static bool write_host_names(FILE *f, FILE *in) {
        char line[1024];

        if (in)
                while (fgets(line, sizeof(line), in))
                        fputs(line, f);
        for (unsigned i = 0; i < N_HOST_NAMES; i++)
                fprintf(f, "127.0.0.1 asyncd-test-%u\n", i);
        return fclose(f) == 0;
}

static bool give_process_host_names(void) {
        char path[] = "/tmp/asyncd-hosts-XXXXXX";
        FILE *f, *in;
        bool ok;
        int fd;

        if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
                return false;
        in = fopen("/etc/hosts", "re");
        if (!in) {
                if (errno != ENOENT || !make_etc_writable())
                        return false;
                /* Not through a dangling symlink, which would lead out of the private layer. */
                fd = open("/etc/hosts", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                f = fd >= 0 ? fdopen(fd, "w") : NULL;
                if (!f) {
                        if (fd >= 0)
                                close(fd);
                        return false;
                }
                return write_host_names(f, NULL);
        }
        fd = mkstemp(path);
        f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
                if (fd >= 0) {
                        close(fd);
                        unlink(path);
                }
                fclose(in);
                return false;
        }
        ok = write_host_names(f, in) && mount(path, "/etc/hosts", "none", MS_BIND, NULL) >= 0;
        fclose(in);
        unlink(path);
        return ok;
}

static void test_many_host_names(void **state) {
        const char *port = strrchr(test_env("ASYNCD_TEST_NGINX_URL"), ':');
        JobOptions o = JOB_OPTIONS_DEFAULT;
        char **codes = NULL;
        size_t n, n_tasks = 3 * N_HOST_NAMES;
        TaskSpec *tasks;
        uint64_t took;
        TestRun t;
        Job *j;

        /* Before any allocation: skip() returns through longjmp, and ASan/valgrind count what
         * is still allocated then as leaks. */
        if (!have_host_names) {
                /* As root it must work: a skip would let a green run hide that it did not. */
                if (geteuid() == 0)
                        fail_msg("could not give the process a private /etc/hosts");
                printf("no private /etc/hosts (needs root): skipped\n");
                skip();
        }
        n = test_flag_codes(&codes);
        tasks = calloc(n_tasks, sizeof(TaskSpec));
        assert_non_null(tasks);
        /* Every new host name is looked up on a resolver thread, which wakes the loop through a
         * socket pair of its own. When a lookup ends its socket pair closes (not through us) and
         * the connection's socket often gets its number in the same iteration, already waiting
         * for the response: it must be watched although the number's events did not change. */
        for (size_t i = 0; i < n_tasks; i++) {
                const char *cc = codes[i % n];

                assert_true(asprintf(&tasks[i].url, "http://asyncd-test-%zu%s/flags/%s/%s.gif",
                                     i % N_HOST_NAMES, port, cc, cc) > 0);
                assert_true(asprintf(&tasks[i].filename, "%zu-%s.gif", i, cc) > 0);
        }
        o.concurrency = 2;
        test_run_init(&t, 0);
        j = run_job_timed(&t, tasks, n_tasks, &o, &took);
        printf("%zu files from %u host names, 2 at a time: %.3f s\n", n_tasks, N_HOST_NAMES,
               (double) took / USEC_PER_SEC);
        assert_int_equal(j->counts[TASK_OK], n_tasks);
        /* 0.3-0.7 s (4 s under valgrind); with the connection socket unwatched until curl's
         * timers look at it, 15 s. */
        assert_true(took < 8 * USEC_PER_SEC);
        job_free(j);
        test_run_done(&t);
        test_flag_codes_free(codes);
}

static int on_iteration(sd_event_source *s, void *userdata) {
        TestRun *t = userdata;

        t->max_committing_bytes = MAX(t->max_committing_bytes, t->engine->committing_bytes);
        return 0;
}

static void test_commit_backlog_bounded(void **state) {
        const char *base = test_env("ASYNCD_TEST_NGINX_URL");
        EngineConfig c = ENGINE_CONFIG_DEFAULT;
        JobOptions o = JOB_OPTIONS_DEFAULT;
        char **codes = NULL;
        size_t n = test_flag_codes(&codes), bound;
        sd_event_source *post;
        TestRun t;
        Job *j;

        /* The network outruns a disk whose every operation takes 20 ms: finished files must wait
         * in memory, but new transfers stop once 64 KiB wait; the 8 on the wire may still land. */
        c.commit_backlog_bytes = 64 * 1024;
        o.concurrency = 8;
        bound = c.commit_backlog_bytes + o.concurrency * (36332 + 4096);
        test_run_init_config(&t, &c);
        disk_pool_set_delay(t.engine->pool, 20 * USEC_PER_MSEC);
        assert_int_equal(sd_event_add_post(t.event, &post, on_iteration, &t), 0);
        j = test_job_start(&t, test_tasks_from_codes(base, (const char *const *) codes, n), n, &o);
        test_run_until_finished(&t, 1);
        printf("%zu flags, 20 ms per disk operation: at most %zu bytes waited for the disk (bound %zu)\n",
               n, t.max_committing_bytes, bound);
        assert_int_equal(j->counts[TASK_OK], n);
        assert_int_equal(t.engine->committing_bytes, 0);
        assert_true(t.max_committing_bytes >= c.commit_backlog_bytes);
        assert_true(t.max_committing_bytes <= bound);
        sd_event_source_disable_unref(post);
        job_free(j);
        test_run_done(&t);
        test_flag_codes_free(codes);
}

static void test_existing_files_and_symlinks(void **state) {
        const char *base = test_env("ASYNCD_TEST_NGINX_URL");
        static const char *const codes[] = { "br", "de", "fr" };
        char outside[] = "/tmp/asyncd-outside-XXXXXX";
        JobOptions o = JOB_OPTIONS_DEFAULT;
        struct stat st;
        TestRun t;
        Job *j;
        int fd;

        fd = mkstemp(outside);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "secret", 6), 6);
        close(fd);

        for (int overwrite = 0; overwrite <= 1; overwrite++) {
                test_run_init(&t, 0);
                /* br.gif: a symlink pointing outside; de.gif: an existing file; fr.gif: free. */
                assert_int_equal(symlinkat(outside, t.dirfd, "br.gif"), 0);
                fd = openat(t.dirfd, "de.gif", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                assert_int_equal(write(fd, "old", 3), 3);
                close(fd);

                o.overwrite = overwrite;
                j = test_job_start(&t, test_tasks_from_codes(base, codes, 3), 3, &o);
                test_run_until_finished(&t, 1);
                test_assert_results_complete(j);

                assert_int_equal(result_of(j, 0)->status, TASK_ERROR);
                printf("overwrite=%d: symlink: %s; existing file: %s\n", overwrite, result_of(j, 0)->error,
                       result_of(j, 1)->error ?: "replaced");
                assert_non_null(strstr(result_of(j, 0)->error, "br.gif"));
                assert_int_equal(fstatat(t.dirfd, "br.gif", &st, AT_SYMLINK_NOFOLLOW), 0);
                assert_true(S_ISLNK(st.st_mode));
                assert_int_equal(result_of(j, 1)->status, overwrite ? TASK_OK : TASK_ERROR);
                assert_int_equal(fstatat(t.dirfd, "de.gif", &st, 0), 0);
                assert_int_equal(st.st_size, overwrite ? (off_t) result_of(j, 1)->bytes : 3);
                assert_int_equal(result_of(j, 2)->status, TASK_OK);
                assert_int_equal(test_count_files(&t, true), 0);
                job_free(j);
                test_run_done(&t);
        }

        /* The file outside the directory was never touched. */
        assert_int_equal(stat(outside, &st), 0);
        assert_int_equal(st.st_size, 6);
        unlink(outside);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_path_faults),
                cmocka_unit_test(test_error_response_bodies),
                cmocka_unit_test(test_reason_control_characters),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_limit_by_content_length),
                cmocka_unit_test(test_stall_timeout),
                cmocka_unit_test(test_big_file_content),
                cmocka_unit_test(test_error_server),
                cmocka_unit_test(test_semaphore),
                cmocka_unit_test(test_global_cap_fair),
                cmocka_unit_test(test_loop_runs_while_pool_is_slow),
                cmocka_unit_test(test_commit_backlog_bounded),
                cmocka_unit_test(test_refused_connections),
                cmocka_unit_test(test_connect_timeout),
                cmocka_unit_test(test_idle_connection_closed_by_server),
                cmocka_unit_test(test_many_host_names),
                cmocka_unit_test(test_existing_files_and_symlinks),
        };
        static const char *const required[] = {
                "ASYNCD_TEST_NGINX_URL", "ASYNCD_TEST_FAULT_PLAIN_URL", "ASYNCD_TEST_FAULT_DELAY_URL",
                "ASYNCD_TEST_FAULT_ERROR_URL", "ASYNCD_TEST_FAULT_ERROR_LOG", "ASYNCD_FIXTURES",
        };

        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                if (!test_env(required[i])) {
                        fprintf(stderr, "%s must be set (run through tests/servers/with-servers.py)\n", required[i]);
                        return 1;
                }
        have_host_names = give_process_host_names();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
