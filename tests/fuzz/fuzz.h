/* SPDX-License-Identifier: MIT */
/* What the fuzz harnesses share: the entry points and the check that aborts on a broken invariant
 * (each at its own line, so libFuzzer tells them apart). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                \
        do {                                                            \
                if (!(cond)) {                                          \
                        fprintf(stderr, "INVARIANT: " __VA_ARGS__);     \
                        fputc('\n', stderr);                            \
                        abort();                                        \
                }                                                       \
        } while (0)
