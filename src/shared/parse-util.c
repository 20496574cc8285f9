/* SPDX-License-Identifier: MIT */
/* parse-util: strict parsers for asyncctl's option values (ids, counts, time spans, sizes). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "parse-util.h"

int parse_uint64(const char *s, uint64_t *ret) {
        unsigned long long v;
        char *end;

        if (!s || *s < '0' || *s > '9')
                return -EINVAL;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno != 0 || *end != 0)
                return -EINVAL;

        *ret = (uint64_t) v;
        return 0;
}

int parse_uint32(const char *s, uint32_t *ret) {
        uint64_t v;
        int r;

        r = parse_uint64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;

        *ret = (uint32_t) v;
        return 0;
}

int parse_job_id(const char *s, uint64_t *ret) {
        uint64_t v;
        int r;

        r = parse_uint64(s, &v);
        if (r < 0)
                return r;
        if (v == 0)
                return -EINVAL;

        *ret = v;
        return 0;
}

/* A non-negative decimal number with an optional fraction ("2", "2.5", ".5"), followed by a unit
 * that the caller looks up. Exponents, signs, hex and "inf" are rejected, unlike strtod(). */
static int parse_number_unit(const char *s, double *ret_value, const char **ret_unit) {
        const char *p = s;
        size_t digits = 0;
        char *end;
        double v;

        while (*p >= '0' && *p <= '9')
                p++, digits++;
        if (*p == '.') {
                p++;
                while (*p >= '0' && *p <= '9')
                        p++, digits++;
        }
        if (digits == 0)
                return -EINVAL;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end != p || !isfinite(v))
                return -EINVAL;

        while (*p == ' ')
                p++;
        *ret_value = v;
        *ret_unit = p;
        return 0;
}

static int scale(double v, uint64_t factor, uint64_t *ret) {
        double x = v * (double) factor;

        /* 2^64 is exactly representable, UINT64_MAX is not: compare against the former. */
        if (x >= 18446744073709551616.0)
                return -ERANGE;

        /* Rounded to nearest without libm (one library less in every process that links us). */
        *ret = (uint64_t) x;
        if (x - (double) *ret >= 0.5)
                (*ret)++;
        return 0;
}

int parse_timespan(const char *s, uint64_t *ret_usec) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "",     USEC_PER_SEC },
                { "us",   1 },
                { "usec", 1 },
                { "ms",   USEC_PER_MSEC },
                { "msec", USEC_PER_MSEC },
                { "s",    USEC_PER_SEC },
                { "sec",  USEC_PER_SEC },
                { "m",    60 * USEC_PER_SEC },
                { "min",  60 * USEC_PER_SEC },
                { "h",    3600 * USEC_PER_SEC },
                { "hr",   3600 * USEC_PER_SEC },
        };
        const char *unit;
        double v;
        int r;

        if (!s)
                return -EINVAL;

        r = parse_number_unit(s, &v, &unit);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strcmp(unit, units[i].suffix) == 0)
                        return scale(v, units[i].usec, ret_usec);

        return -EINVAL;
}

int parse_size(const char *s, uint64_t *ret_bytes) {
        static const char prefixes[] = "KMGTPE";
        const char *unit, *p;
        uint64_t factor = 1;
        double v;
        int r;

        if (!s)
                return -EINVAL;

        r = parse_number_unit(s, &v, &unit);
        if (r < 0)
                return r;

        if (*unit != 0) {
                p = strchr(prefixes, *unit);
                if (p && *p) {
                        for (const char *q = prefixes; q <= p; q++)
                                factor *= 1024;
                        unit++;
                        if (*unit == 'i')
                                unit++;
                }
                if (*unit == 'B')
                        unit++;
                if (*unit != 0)
                        return -EINVAL;
        }

        /* A fraction of a byte makes no sense. */
        if (factor == 1 && v < 18446744073709551616.0 && v != (double) (uint64_t) v)
                return -EINVAL;

        return scale(v, factor, ret_bytes);
}
