/* SPDX-License-Identifier: MIT */
/* alloc-fail: allocation failures on demand, for unit tests of out-of-memory paths.
 *
 * A test linked with -Wl,--wrap=FUNC says DEFINE_FAILING_ALLOCATOR(FUNC, (params), (args)) once;
 * setting fail_FUNC_in = k makes the k-th call of FUNC from then on fail with ENOMEM (and disarms
 * it again); 0 leaves every call to the real FUNC. */
#pragma once

#include <errno.h>
#include <stddef.h>

#define DEFINE_FAILING_ALLOCATOR(func, params, args)                            \
        void *__real_##func params;                                             \
        void *__wrap_##func params;                                             \
        static unsigned fail_##func##_in;                                       \
        void *__wrap_##func params {                                            \
                if (fail_##func##_in > 0 && --fail_##func##_in == 0) {          \
                        errno = ENOMEM;                                         \
                        return NULL;                                            \
                }                                                               \
                return __real_##func args;                                      \
        }
