/* SPDX-License-Identifier: MIT */
/* log: leveled logging to stderr with <N> syslog prefixes that journald understands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static int max_level = LOG_INFO;
static const char *program_name = NULL;
static bool use_syslog_prefix = false;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_prefix(const char *program, bool syslog_prefix) {
        program_name = program;
        use_syslog_prefix = syslog_prefix;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = {
                [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
                [LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcasecmp(s, names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

int log_internal(int level, int error, const char *file, int line, const char *format, ...) {
        char buf[2048];
        va_list ap;

        if (error < 0)
                error = -error;

        /* %m must see the error we were given, not whatever errno happens to be. */
        errno = error;
        va_start(ap, format);
        (void) vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        if (use_syslog_prefix)
                (void) fprintf(stderr, "<%i>%s\n", level, buf);
        else if (program_name)
                (void) fprintf(stderr, "%s: %s\n", program_name, buf);
        else
                (void) fprintf(stderr, "%s\n", buf);

        (void) file;
        (void) line;
        return -error;
}
