/* SPDX-License-Identifier: MIT */
/* A driver for the fuzz harnesses without libFuzzer: runs LLVMFuzzerTestOneInput() once per file
 * of each directory (in sorted order) or file named on the command line, so the regression
 * corpora run in every build. A broken invariant aborts; running no input at all fails too. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Harnesses without setup have no LLVMFuzzerInitialize(). */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path) {
        FILE *f = fopen(path, "re");
        uint8_t *data = NULL;
        long size;

        if (!f || fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0)
                goto fail;
        /* A copy of exactly size bytes, so ASan sees any read past the input. */
        data = malloc(size > 0 ? (size_t) size : 1);
        if (!data || fread(data, 1, (size_t) size, f) != (size_t) size)
                goto fail;
        fclose(f);
        LLVMFuzzerTestOneInput(data, (size_t) size);
        free(data);
        return 0;
fail:
        fprintf(stderr, "%s: could not be read\n", path);
        free(data);
        if (f)
                fclose(f);
        return -1;
}

static int visible(const struct dirent *d) {
        return d->d_name[0] != '.';
}

/* Runs path, or every file in it if it is a directory; the number run, or -1. */
static int run_path(const char *path) {
        struct dirent **names;
        struct stat st;
        int n, ran = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %m\n", path);
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return run_file(path) < 0 ? -1 : 1;

        n = scandir(path, &names, visible, alphasort);
        if (n < 0) {
                fprintf(stderr, "%s: %m\n", path);
                return -1;
        }
        for (int i = 0; i < n; i++) {
                char *p;

                if (ran >= 0) {
                        if (asprintf(&p, "%s/%s", path, names[i]->d_name) < 0)
                                abort();
                        ran = run_file(p) < 0 ? -1 : ran + 1;
                        free(p);
                }
                free(names[i]);
        }
        free(names);
        return ran;
}

int main(int argc, char *argv[]) {
        int total = 0;

        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);

        for (int i = 1; i < argc; i++) {
                int n = run_path(argv[i]);

                if (n < 0)
                        return EXIT_FAILURE;
                total += n;
        }
        printf("%s: %d inputs run\n", argv[0], total);
        return total > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
