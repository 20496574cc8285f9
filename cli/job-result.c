/* SPDX-License-Identifier: MIT */
/* job-result: one task's result as the daemon reports it, per-status counts, and exit codes. */
#include <stdlib.h>
#include <string.h>

#include "job-result.h"
#include "macro.h"

static const char *const result_status_table[_RESULT_STATUS_MAX] = {
        [RESULT_OK] = "ok",
        [RESULT_NOT_FOUND] = "not_found",
        [RESULT_ERROR] = "error",
        [RESULT_CANCELLED] = "cancelled",
};

const char *result_status_to_string(ResultStatus s) {
        if (s < 0 || s >= _RESULT_STATUS_MAX)
                return NULL;
        return result_status_table[s];
}

ResultStatus result_status_from_string(const char *s) {
        if (!s)
                return _RESULT_STATUS_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(result_status_table); i++)
                if (strcmp(s, result_status_table[i]) == 0)
                        return (ResultStatus) i;
        return _RESULT_STATUS_INVALID;
}

void job_counts_add(JobCounts *c, const char *status) {
        switch (result_status_from_string(status)) {
        case RESULT_OK:
                c->ok++;
                break;
        case RESULT_NOT_FOUND:
                c->not_found++;
                break;
        case RESULT_CANCELLED:
                c->cancelled++;
                break;
        default:
                c->error++;
                break;
        }
}

uint32_t job_counts_done(const JobCounts *c) {
        return c->ok + c->not_found + c->error + c->cancelled;
}

int job_exit_status(const char *state, const JobCounts *c) {
        if (state && strcmp(state, "cancelled") == 0)
                return EXIT_CANCELLED;
        if (c->not_found > 0 || c->error > 0)
                return EXIT_INCOMPLETE;
        if (c->cancelled > 0)
                return EXIT_CANCELLED;
        return EXIT_ALL_OK;
}

void job_info_done(JobInfo *i) {
        free(i->path);
        free(i->name);
        free(i->state);
        *i = (JobInfo) {};
}
