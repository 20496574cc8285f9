/* SPDX-License-Identifier: MIT */
/* test-tmp: a fresh directory for a unit test under $TMPDIR (else /tmp), where run-tests.sh looks
 * for what a test left behind, and its removal. */
#pragma once

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* buf: PATH_MAX bytes. Returns buf, or NULL (errno set) when the directory cannot be made. */
static inline char *test_mkdtemp(char *buf, const char *prefix) {
        const char *tmp = getenv("TMPDIR");

        if (snprintf(buf, PATH_MAX, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix) >= PATH_MAX)
                return NULL;
        return mkdtemp(buf);
}

static inline int test_remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        return remove(path);
}

/* rm -rf dir, without a shell (the path may be long or hold quotes). 0 or -1 (errno set). */
static inline int test_rm_rf(const char *dir) {
        return nftw(dir, test_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
