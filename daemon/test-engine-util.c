/* SPDX-License-Identifier: MIT */
/* test-engine-util: runs engine jobs to completion for the engine tests and inspects what they left. */
#include <curl/curl.h>
#include <dirent.h>
#include <json-c/json.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "test-engine-util.h"
#include "test-tmp.h"

const char *test_env(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

static void on_result(Job *j, uint32_t seq, void *userdata) {
        assert_true(seq < j->n_results);
}

static void on_finished(Job *j, void *userdata) {
        TestRun *t = userdata;
        t->finished_jobs++;
}

static const JobCallbacks callbacks = {
        .on_result = on_result,
        .on_finished = on_finished,
};

void test_run_init_config(TestRun *t, const EngineConfig *c) {
        *t = (TestRun) { .dirfd = -EBADF };
        assert_int_equal(sd_event_new(&t->event), 0);
        assert_int_equal(engine_new(&t->engine, t->event, c), 0);
        assert_non_null(test_mkdtemp(t->dir, "asyncd-test"));
        t->dirfd = open(t->dir, O_DIRECTORY | O_CLOEXEC);
        assert_true(t->dirfd >= 0);
}

void test_run_init(TestRun *t, unsigned max_transfers) {
        EngineConfig c = ENGINE_CONFIG_DEFAULT;

        if (max_transfers > 0)
                c.max_transfers = max_transfers;
        test_run_init_config(t, &c);
}

void test_run_done(TestRun *t) {
        engine_free(t->engine);
        sd_event_unref(t->event);
        safe_close(t->dirfd);
        assert_int_equal(test_rm_rf(t->dir), 0);
}

TaskSpec *test_tasks_from_codes(const char *base, const char *const *codes, size_t n) {
        TaskSpec *tasks = calloc(n, sizeof(TaskSpec));

        assert_non_null(tasks);
        for (size_t i = 0; i < n; i++) {
                assert_true(asprintf(&tasks[i].url, "%s/flags/%s/%s.gif", base, codes[i], codes[i]) > 0);
                tasks[i].filename = strdup("");
        }
        return tasks;
}

size_t test_flag_codes(char ***ret) {
        char path[512], line[64];
        char **codes = calloc(256, sizeof(char *));
        size_t n = 0;
        FILE *f;

        snprintf(path, sizeof(path), "%s/flags/country_codes.txt", test_env("ASYNCD_FIXTURES"));
        f = fopen(path, "re");
        assert_non_null(f);
        while (n < 255 && fscanf(f, "%63s", line) == 1) {
                for (char *p = line; *p; p++)
                        *p = (char) (*p | 0x20);
                codes[n++] = strdup(line);
        }
        fclose(f);
        *ret = codes;
        return n;
}

void test_flag_codes_free(char **codes) {
        /* The array has room to spare and ends at the first NULL. */
        for (char **c = codes; c && *c; c++)
                free(*c);
        free(codes);
}

Job *test_job_start(TestRun *t, TaskSpec *tasks, size_t n, const JobOptions *o) {
        size_t bad;
        char *reason = NULL;
        Job *j = NULL;
        int fd;

        assert_int_equal(task_specs_prepare(tasks, n, 0, &bad, &reason), 0);
        fd = fcntl(t->dirfd, F_DUPFD_CLOEXEC, 3);
        assert_true(fd >= 0);
        assert_int_equal(job_new(&j, t->engine, tasks, n, fd, o, &callbacks, t), 0);
        return j;
}

void test_run_until_finished(TestRun *t, unsigned n_jobs) {
        while (t->finished_jobs < n_jobs)
                assert_true(sd_event_run(t->event, 30 * USEC_PER_SEC) > 0);
        /* Let the pool and curl settle so nothing is left queued. */
        while (disk_pool_pending(t->engine->pool) > 0)
                assert_true(sd_event_run(t->event, 5 * USEC_PER_SEC) >= 0);
}

void test_assert_results_complete(Job *j) {
        uint8_t *seen = calloc(j->n_tasks, 1);
        uint32_t total = 0;

        assert_int_equal(j->n_results, j->n_tasks);
        for (uint32_t s = 0; s < j->n_results; s++) {
                assert_true(j->results[s].index < j->n_tasks);
                assert_int_equal(seen[j->results[s].index], 0);
                seen[j->results[s].index] = 1;
        }
        for (int s = 0; s < _TASK_STATUS_MAX; s++)
                total += j->counts[s];
        assert_int_equal(total, j->n_tasks);
        free(seen);
}

size_t test_count_files(TestRun *t, bool temporary_only) {
        DIR *d = opendir(t->dir);
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (temporary_only && strncmp(de->d_name, ".#", 2) != 0)
                        continue;
                n++;
        }
        closedir(d);
        return n;
}

size_t test_count_unnamed_files(const char *dir) {
        char prefix[PATH_MAX], link[sizeof("/proc/self/fd/") + 256], target[PATH_MAX];
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        size_t n = 0;

        assert_non_null(d);
        snprintf(prefix, sizeof(prefix), "%s/", dir);
        while ((de = readdir(d))) {
                ssize_t len;

                snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
                len = readlink(link, target, sizeof(target) - 1);
                if (len <= 0)
                        continue;
                target[len] = 0;
                /* An unnamed file reads "DIR/#INODE (deleted)". */
                if (strncmp(target, prefix, strlen(prefix)) == 0 && strstr(target, " (deleted)"))
                        n++;
        }
        closedir(d);
        return n;
}

static char *read_all(int fd, size_t *size) {
        struct stat st;
        char *buf;

        assert_int_equal(fstat(fd, &st), 0);
        buf = malloc(st.st_size + 1);
        assert_non_null(buf);
        assert_int_equal(pread(fd, buf, st.st_size, 0), st.st_size);
        *size = st.st_size;
        return buf;
}

bool test_file_equals(const char *path_a, int dirfd_b, const char *name_b) {
        int a = open(path_a, O_RDONLY | O_CLOEXEC), b = openat(dirfd_b, name_b, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        size_t sa = 0, sb = 0;
        char *da, *db;
        bool eq;

        if (a < 0 || b < 0) {
                safe_close(a);
                safe_close(b);
                return false;
        }
        da = read_all(a, &sa);
        db = read_all(b, &sb);
        eq = sa == sb && memcmp(da, db, sa) == 0;
        free(da);
        free(db);
        close(a);
        close(b);
        return eq;
}

static size_t append(char *data, size_t size, size_t nmemb, void *userdata) {
        char **buf = userdata;
        size_t old = *buf ? strlen(*buf) : 0, n = size * nmemb;

        *buf = realloc(*buf, old + n + 1);
        memcpy(*buf + old, data, n);
        (*buf)[old + n] = 0;
        return n;
}

char *test_http_get(const char *url) {
        CURL *c = curl_easy_init();
        char *buf = NULL;

        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        curl_easy_cleanup(c);
        assert_non_null(buf);
        return buf;
}

long test_json_int(const char *json, const char *key) {
        json_object *o = json_tokener_parse(json), *v = NULL;
        long r;

        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, key, &v));
        r = (long) json_object_get_int64(v);
        json_object_put(o);
        return r;
}
