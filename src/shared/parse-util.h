/* SPDX-License-Identifier: MIT */
/* parse-util: strict parsers for option values of asyncctl and asyncd (ids, counts, time spans, sizes). */
#pragma once

#include <stdint.h>

/* Decimal only, no sign, no surrounding space, no overflow. 0 or -EINVAL/-ERANGE. */
int parse_uint64(const char *s, uint64_t *ret);
int parse_uint32(const char *s, uint32_t *ret);

/* A job id: a decimal number >= 1. */
int parse_job_id(const char *s, uint64_t *ret);

/* "3", "2.5", "500ms", "1.5s", "2min", "1h", "250us": a time span, in microseconds. A bare
 * number means seconds. Spaces may separate the number from its unit ("2 min"). Exact: the
 * number is read digit by digit, a fraction rounded half up to the microsecond. */
int parse_timespan(const char *s, uint64_t *ret_usec);

/* "1048576", "512K", "1.5M", "2G", "1T", optionally followed by "B" or "iB"; 1K = 1024. Spaces
 * may separate the number from its unit; a fraction of a byte is refused, others round half up. */
int parse_size(const char *s, uint64_t *ret_bytes);
