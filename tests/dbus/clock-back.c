/* SPDX-License-Identifier: MIT */
/* clock-back: an LD_PRELOAD shim for the D-Bus tests: while the file named by $CLOCK_BACK_FILE
 * exists, CLOCK_REALTIME reads an hour earlier, as after the wall clock was set back. */
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int clock_gettime(clockid_t id, struct timespec *ts) {
        static int (*real)(clockid_t, struct timespec *);
        const char *file = getenv("CLOCK_BACK_FILE");
        int r;

        if (!real)
                real = (int (*)(clockid_t, struct timespec *)) dlsym(RTLD_NEXT, "clock_gettime");
        r = real(id, ts);
        if (r == 0 && id == CLOCK_REALTIME && file && access(file, F_OK) == 0)
                ts->tv_sec -= 3600;
        return r;
}
