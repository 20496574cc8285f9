/* SPDX-License-Identifier: MIT */
/* fuzz-parse-util: parse_uint64/uint32/job_id, parse_timespan and parse_size against a reference
 * written from parse-util.h with exact (integer) arithmetic.
 *
 * Invariants:
 *   P1  parse_uint64/uint32/job_id: accepted <=> decimal digits only, in range; the value is exact
 *   P2  parse_timespan/parse_size accept exactly the documented grammar: a number ("2", "2.5", ".5"),
 *       then (after optional spaces) a known unit; sizes: "", "B", or K/M/G/T/P/E followed by
 *       nothing, "B" or "iB"; a size without a prefix may not have a fraction of a byte
 *   P3  when the exact value N * unit / 10^f is an integer <= UINT64_MAX, it is returned exactly;
 *       with at most 19 fraction digits, it is rounded half up exactly (or -ERANGE beyond 2^64);
 *       otherwise the result is within 1 (or 2^-50 relative) of the exact value, or -ERANGE
 *       only when the exact value does exceed UINT64_MAX (within that tolerance) */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "parse-util.h"

typedef unsigned __int128 u128;

/* Reference number: digits, optional '.' digits, at least one digit. exact is false when it has
 * too many significant digits for the u128 arithmetic below. */
typedef struct Num {
        u128 n;         /* all digits as an integer */
        unsigned frac;  /* digits after the point */
        bool exact;
        unsigned sig;   /* significant digits */
        const char *unit;
} Num;

static bool ref_number(const char *s, Num *ret) {
        Num x = { .exact = true };
        unsigned digits = 0, sig = 0;
        bool point = false;

        for (;; s++) {
                if (*s >= '0' && *s <= '9') {
                        digits++;
                        if (point)
                                x.frac++;
                        if (x.n > 0 || *s != '0')
                                sig++;
                        if (sig > 19 || x.frac > 38)
                                x.exact = false;
                        else
                                x.n = x.n * 10 + (unsigned) (*s - '0');
                } else if (*s == '.' && !point)
                        point = true;
                else
                        break;
        }
        if (digits == 0)
                return false;
        while (*s == ' ')
                s++;
        x.unit = s;
        x.sig = sig;
        *ret = x;
        return true;
}

static u128 pow10_128(unsigned k) {
        u128 p = 1;
        while (k--)
                p *= 10;
        return p;
}

/* Compares the parser's result r/v with the exact value x.n * factor / 10^frac. */
static void check_value(const char *what, const char *s, int r, uint64_t v, const Num *x, uint64_t factor) {
        u128 num, den, q, rem;
        long double exact;

        if (!x->exact) {
                CHECK(r == 0 || r == -ERANGE, "P2 %s(\"%s\") = %d, a well-formed number", what, s, r);
                return;
        }
        num = x->n * factor;
        den = pow10_128(x->frac);
        q = num / den;
        rem = num % den;
        exact = (long double) num / (long double) den;

        if (rem == 0 && q <= UINT64_MAX) {
                CHECK(r == 0 && v == (uint64_t) q, "P3 %s(\"%s\") = %d, %llu; exact value %llu", what, s, r,
                      (unsigned long long) v, (unsigned long long) q);
                return;
        }
        if (q > UINT64_MAX) {
                CHECK(r == -ERANGE, "P3 %s(\"%s\") = %d, %llu; exact value exceeds 2^64", what, s, r,
                      (unsigned long long) v);
                return;
        }
        if (x->frac <= 19) {
                /* The parser keeps 19 fraction digits: with no more than that, exactly rounded half up. */
                u128 rounded = (num + den / 2) / den;

                if (rounded > UINT64_MAX)
                        CHECK(r == -ERANGE, "P3 %s(\"%s\") = %d, %llu; rounded value exceeds 2^64", what, s, r,
                              (unsigned long long) v);
                else
                        CHECK(r == 0 && v == (uint64_t) rounded, "P3 %s(\"%s\") = %d, %llu; rounded half up %llu",
                              what, s, r, (unsigned long long) v, (unsigned long long) rounded);
                return;
        }
        if (r == -ERANGE) {
                CHECK(exact > 18446744073709551615.0L * (1 - 1e-15L), "P3 %s(\"%s\") = -ERANGE, exact value %Lf", what,
                      s, exact);
                return;
        }
        CHECK(r == 0, "P2 %s(\"%s\") = %d", what, s, r);
        {
                long double d = (long double) v - exact;
                if (d < 0)
                        d = -d;
                CHECK(d <= 1.0L || d <= exact / 1125899906842624.0L, "P3 %s(\"%s\") = %llu, exact %Lf", what, s,
                      (unsigned long long) v, exact);
        }
}

static void fuzz_uint(const char *s) {
        uint64_t v = 0, ref = 0;
        uint32_t v32 = 0;
        int r, ref_r = 0;
        size_t n = strlen(s);

        if (n == 0 || strspn(s, "0123456789") != n)
                ref_r = -EINVAL;
        else
                for (const char *p = s; *p; p++) {
                        if (ref > (UINT64_MAX - (uint64_t) (*p - '0')) / 10) {
                                ref_r = -ERANGE;
                                break;
                        }
                        ref = ref * 10 + (uint64_t) (*p - '0');
                }

        r = parse_uint64(s, &v);
        CHECK(r == ref_r && (r < 0 || v == ref), "P1 parse_uint64(\"%s\") = %d %llu, reference %d %llu", s, r,
              (unsigned long long) v, ref_r, (unsigned long long) ref);
        r = parse_uint32(s, &v32);
        CHECK(r == (ref_r < 0 ? ref_r : ref > UINT32_MAX ? -ERANGE : 0) && (r < 0 || v32 == ref),
              "P1 parse_uint32(\"%s\") = %d", s, r);
        r = parse_job_id(s, &v);
        CHECK(r == (ref_r < 0 ? ref_r : ref == 0 ? -EINVAL : 0) && (r < 0 || v == ref), "P1 parse_job_id(\"%s\") = %d",
              s, r);
}

static void fuzz_timespan(const char *s) {
        static const struct {
                const char *unit;
                uint64_t usec;
        } units[] = {
                { "", 1000000 }, { "us", 1 }, { "usec", 1 }, { "ms", 1000 }, { "msec", 1000 },
                { "s", 1000000 }, { "sec", 1000000 }, { "m", 60000000 }, { "min", 60000000 },
                { "h", 3600000000ULL }, { "hr", 3600000000ULL },
        };
        uint64_t v = 0;
        int r = parse_timespan(s, &v);
        Num x;

        if (!ref_number(s, &x)) {
                CHECK(r == -EINVAL, "P2 parse_timespan(\"%s\") = %d, not a number", s, r);
                return;
        }
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (strcmp(x.unit, units[i].unit) == 0) {
                        check_value("parse_timespan", s, r, v, &x, units[i].usec);
                        return;
                }
        CHECK(r == -EINVAL, "P2 parse_timespan(\"%s\") = %d, unknown unit", s, r);
}

static void fuzz_size(const char *s) {
        static const char prefixes[] = "KMGTPE";
        uint64_t v = 0, factor = 1;
        int r = parse_size(s, &v);
        const char *u, *p;
        Num x;

        if (!ref_number(s, &x)) {
                CHECK(r == -EINVAL, "P2 parse_size(\"%s\") = %d, not a number", s, r);
                return;
        }
        u = x.unit;
        if (*u && (p = strchr(prefixes, *u))) {
                for (const char *q = prefixes; q <= p; q++)
                        factor *= 1024;
                u++;
                if (strcmp(u, "") != 0 && strcmp(u, "B") != 0 && strcmp(u, "iB") != 0) {
                        CHECK(r == -EINVAL, "P2 parse_size(\"%s\") = %d, unknown unit", s, r);
                        return;
                }
        } else if (strcmp(u, "") != 0 && strcmp(u, "B") != 0) {
                CHECK(r == -EINVAL, "P2 parse_size(\"%s\") = %d, unknown unit", s, r);
                return;
        }
        if (factor == 1 && x.exact && x.n % pow10_128(x.frac) != 0) {
                CHECK(r == -EINVAL, "P2 parse_size(\"%s\") = %d %llu, a fraction of a byte", s, r, (unsigned long long) v);
                return;
        }
        if (factor == 1 && !x.exact && r == -EINVAL)
                return;         /* a fraction the reference could not judge */
        check_value("parse_size", s, r, v, &x, factor);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s;

        if (memchr(data, 0, size))
                return -1;
        s = strndup((const char *) data, size);
        fuzz_uint(s);
        fuzz_timespan(s);
        fuzz_size(s);
        free(s);
        return 0;
}
