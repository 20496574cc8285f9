/* SPDX-License-Identifier: MIT */
/* test-engine-util: runs engine jobs to completion for the engine tests and inspects what they left. */
#pragma once

#include <limits.h>

#include <stdbool.h>
#include <stddef.h>

#include "job.h"

typedef struct TestRun {
        sd_event *event;
        Engine *engine;
        char dir[PATH_MAX];             /* fresh destination directory */
        int dirfd;
        unsigned finished_jobs;
        size_t max_committing_bytes;    /* for tests that sample the engine */
} TestRun;

/* Environment from tests/servers/with-servers.py; NULL when the variable is unset. */
const char *test_env(const char *name);

void test_run_init(TestRun *t, unsigned max_transfers);
void test_run_init_config(TestRun *t, const EngineConfig *c);
void test_run_done(TestRun *t);

/* Builds a task list from printf-style URL patterns: url_fmt is formatted with each code. */
TaskSpec *test_tasks_from_codes(const char *base, const char *const *codes, size_t n);
/* The 194 country codes of tests/fixtures/flags/country_codes.txt, lower-case. */
size_t test_flag_codes(char ***ret);
void test_flag_codes_free(char **codes);

/* Starts a job; the caller runs the loop with test_run_until_finished(). */
Job *test_job_start(TestRun *t, TaskSpec *tasks, size_t n, const JobOptions *o);
void test_run_until_finished(TestRun *t, unsigned n_jobs);
/* Each index has exactly one result and seq order is dense. */
void test_assert_results_complete(Job *j);

/* Files in t->dir, excluding "." and ".."; temporary names start with ".#". */
size_t test_count_files(TestRun *t, bool temporary_only);
/* Files in dir this process has open but that have no name there (O_TMPFILE, being written). */
size_t test_count_unnamed_files(const char *dir);
bool test_file_equals(const char *path_a, int dirfd_b, const char *name_b);
/* GET url into a malloc'd string (blocking; for server stats). */
char *test_http_get(const char *url);
long test_json_int(const char *json, const char *key);
