/* SPDX-License-Identifier: MIT */
/* create-cost: what it costs the file system to make one small file appear, three ways:
 *
 *   plain   open(O_CREAT|O_EXCL) + write + close          (curl, wget2: visible while written)
 *   tmpfile open(O_TMPFILE) + write + linkat + close       (asyncd: appears whole or not at all)
 *   rename  open(".#tmp", O_CREAT|O_EXCL) + write + renameat2(NOREPLACE) + close
 *
 * N files of SIZE bytes into one directory, spread over THREADS threads (asyncd's disk workers
 * all create in the job's one directory). Prints wall and CPU seconds and µs of CPU per file.
 * Used by bench/README.md to separate the file system's share of the disk runs from asyncd's. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef enum Mode { MODE_PLAIN, MODE_TMPFILE, MODE_RENAME } Mode;

static int dirfd_g;
static Mode mode_g;
static unsigned n_g, threads_g;
static size_t size_g;

static double seconds(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *name) {
        fprintf(stderr, "create-cost: %s %s: %s\n", what, name, strerror(errno));
        exit(1);
}

static void make_one(unsigned i, const char *buf) {
        char name[32], tmp[48];
        int fd;

        snprintf(name, sizeof(name), "f%07u.gif", i);
        switch (mode_g) {
        case MODE_PLAIN:
                fd = openat(dirfd_g, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                break;
        case MODE_TMPFILE:
                fd = openat(dirfd_g, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
                break;
        default:
                snprintf(tmp, sizeof(tmp), ".#tmp.%s", name);
                fd = openat(dirfd_g, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                break;
        }
        if (fd < 0)
                die("cannot create", name);
        if (write(fd, buf, size_g) != (ssize_t) size_g)
                die("cannot write", name);
        if (mode_g == MODE_TMPFILE && linkat(fd, "", dirfd_g, name, AT_EMPTY_PATH) < 0)
                die("cannot link", name);
        if (mode_g == MODE_RENAME && syscall(SYS_renameat2, dirfd_g, tmp, dirfd_g, name, RENAME_NOREPLACE) < 0)
                die("cannot rename", tmp);
        close(fd);
}

static void *worker(void *arg) {
        unsigned first = (unsigned) (uintptr_t) arg;
        char *buf = malloc(size_g);

        if (!buf)
                die("out of memory", "");
        memset(buf, 'x', size_g);
        for (unsigned i = first; i < n_g; i += threads_g)
                make_one(i, buf);
        free(buf);
        return NULL;
}

int main(int argc, char **argv) {
        static const char *const modes[] = { "plain", "tmpfile", "rename" };
        pthread_t threads[64];
        double wall, cpu;

        if (argc != 6) {
                fprintf(stderr, "usage: create-cost EMPTY-DIR plain|tmpfile|rename N SIZE THREADS\n");
                return 2;
        }
        for (mode_g = 0; mode_g < 3 && strcmp(argv[2], modes[mode_g]) != 0; mode_g++)
                ;
        n_g = (unsigned) strtoul(argv[3], NULL, 10);
        size_g = strtoul(argv[4], NULL, 10);
        threads_g = (unsigned) strtoul(argv[5], NULL, 10);
        if (mode_g == 3 || n_g == 0 || size_g == 0 || threads_g == 0 || threads_g > 64) {
                fprintf(stderr, "create-cost: bad arguments\n");
                return 2;
        }
        dirfd_g = open(argv[1], O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (dirfd_g < 0)
                die("cannot open", argv[1]);

        wall = seconds(CLOCK_MONOTONIC);
        cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
        for (unsigned t = 0; t < threads_g; t++)
                if (pthread_create(&threads[t], NULL, worker, (void *) (uintptr_t) t) != 0)
                        die("cannot start a thread", "");
        for (unsigned t = 0; t < threads_g; t++)
                pthread_join(threads[t], NULL);
        wall = seconds(CLOCK_MONOTONIC) - wall;
        cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu;
        printf("%s files=%u size=%zu threads=%u wall=%.3f cpu=%.3f us_per_file=%.1f\n",
               modes[mode_g], n_g, size_g, threads_g, wall, cpu, cpu * 1e6 / n_g);
        return 0;
}
