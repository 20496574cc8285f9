/* SPDX-License-Identifier: MIT */
/* parse-util: strict parsers for option values of asyncctl and asyncd (ids, counts, time spans, sizes). */
#include <errno.h>
#include <stdbool.h>
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
        if (*end != 0)
                return -EINVAL;         /* "99999999999999999999h" is not a number, rather than one too large */
        if (errno == ERANGE)
                return -ERANGE;
        if (errno != 0)
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

/* A non-negative decimal number with an optional fraction ("2", "2.5", ".5"). Read digit by digit,
 * not by strtod(): exact beyond 2^53, a '.' whatever the locale's decimal point (asyncctl calls
 * setlocale()), and no exponents, signs, hex or "inf". */
typedef struct Number {
        uint64_t whole;
        bool too_large;                 /* the whole part does not fit: -ERANGE, once the unit is known */
        uint64_t fraction, denominator; /* the first 19 digits after the point: fraction / denominator */
        bool has_fraction;              /* any non-zero digit after the point */
} Number;

static int parse_number_unit(const char *s, Number *ret, const char **ret_unit) {
        Number n = { .denominator = 1 };
        const char *p = s;
        size_t digits = 0;

        for (; *p >= '0' && *p <= '9'; p++, digits++) {
                unsigned d = (unsigned) (*p - '0');

                if (n.whole > (UINT64_MAX - d) / 10)
                        n.too_large = true;
                else
                        n.whole = n.whole * 10 + d;
        }
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
                        if (n.denominator <= UINT64_MAX / 10) {         /* up to 10^19 */
                                n.fraction = n.fraction * 10 + (uint64_t) (*p - '0');
                                n.denominator *= 10;
                        }
                        n.has_fraction = n.has_fraction || *p != '0';
                }
        if (digits == 0)
                return -EINVAL;

        while (*p == ' ')
                p++;
        *ret = n;
        *ret_unit = p;
        return 0;
}

/* n × factor, the fraction's share rounded to nearest. */
static int scale(const Number *n, uint64_t factor, uint64_t *ret) {
        uint64_t whole, part;

        if (n->too_large || n->whole > UINT64_MAX / factor)
                return -ERANGE;
        whole = n->whole * factor;
        /* Exact, rounded half up: fraction × factor < 10^19 × 2^60 fits in 128 bits. */
        part = (uint64_t) (((unsigned __int128) n->fraction * factor + n->denominator / 2) / n->denominator);
        if (part > UINT64_MAX - whole)
                return -ERANGE;
        *ret = whole + part;
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
        Number n;
        int r;

        if (!s)
                return -EINVAL;

        r = parse_number_unit(s, &n, &unit);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strcmp(unit, units[i].suffix) == 0)
                        return scale(&n, units[i].usec, ret_usec);

        return -EINVAL;
}

int parse_size(const char *s, uint64_t *ret_bytes) {
        static const char prefixes[] = "KMGTPE";
        const char *unit, *p;
        uint64_t factor = 1;
        Number n;
        int r;

        if (!s)
                return -EINVAL;

        r = parse_number_unit(s, &n, &unit);
        if (r < 0)
                return r;

        if (*unit != 0) {
                p = strchr(prefixes, *unit);
                if (p && *p) {
                        for (const char *q = prefixes; q <= p; q++)
                                factor *= 1024;
                        unit++;
                        if (unit[0] == 'i' && unit[1] == 'B')   /* "KiB"; "Ki" is not a unit */
                                unit++;
                }
                if (*unit == 'B')
                        unit++;
                if (*unit != 0)
                        return -EINVAL;
        }

        /* A fraction of a byte makes no sense. */
        if (factor == 1 && n.has_fraction)
                return -EINVAL;

        return scale(&n, factor, ret_bytes);
}
