/* SPDX-License-Identifier: MIT */
/* job-result: one task's result as the daemon reports it, per-status counts, and exit codes. */
#pragma once

#include <errno.h>
#include <stdint.h>

/* asyncctl's documented exit codes. */
enum {
        EXIT_ALL_OK = 0,        /* every task ok (or the verb succeeded) */
        EXIT_ERROR = 1,         /* usage or connection error, or another failure */
        EXIT_REFUSED = 2,       /* the daemon refused the job */
        EXIT_INCOMPLETE = 3,    /* the job finished with not-found or failed tasks */
        EXIT_CANCELLED = 4,     /* the job was cancelled */
        EXIT_INTERRUPTED = 130, /* interrupted by SIGINT/SIGTERM */
};

typedef enum ResultStatus {
        RESULT_OK,
        RESULT_NOT_FOUND,
        RESULT_ERROR,
        RESULT_CANCELLED,
        _RESULT_STATUS_MAX,
        _RESULT_STATUS_INVALID = -EINVAL,
} ResultStatus;

const char *result_status_to_string(ResultStatus s);
ResultStatus result_status_from_string(const char *s);

/* (seq, index, status, http_code, bytes, filename, error): strings borrowed from the message. */
typedef struct JobResult {
        uint32_t seq;
        uint32_t index;
        const char *status;
        uint32_t http_code;
        uint64_t bytes;
        const char *filename;
        const char *error;
} JobResult;

typedef struct JobCounts {
        uint32_t total;
        uint32_t ok;
        uint32_t not_found;
        uint32_t error;
        uint32_t cancelled;
} JobCounts;

/* Counts one result; a status this client does not know counts as an error. */
void job_counts_add(JobCounts *c, const char *status);
uint32_t job_counts_done(const JobCounts *c);

/* The exit code for a job that ended in state with counts c: 0, EXIT_INCOMPLETE or EXIT_CANCELLED. */
int job_exit_status(const char *state, const JobCounts *c);

/* What the daemon says about one job: ListJobs() fills the first part, GetAll() all of it. */
typedef struct JobInfo {
        uint64_t id;
        char *path;
        char *name;
        char *state;
        JobCounts counts;
        uint32_t owner;
        uint64_t bytes;
        uint32_t concurrency;
        uint64_t created_usec;          /* CLOCK_REALTIME, 0 if not known */
        uint64_t finished_usec;         /* CLOCK_REALTIME, 0 while running or not known */
} JobInfo;

void job_info_done(JobInfo *i);
