/* SPDX-License-Identifier: MIT */
/* Tests for file-writer: a body of announced length is buffered in exactly that much memory (a
 * finished file may wait for the disk next to hundreds of others), an announced length is never
 * trusted beyond the flush threshold, the file lands whole under its name, and a disk failure at
 * any step ends the task with nothing left behind. Failures the kernel will not produce on demand
 * come from wrappers of fsync, close and openat64 (linked with --wrap). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "disk-pool.h"
#include "file-writer.h"
#include "macro.h"
#include "test-engine-util.h"
#include "test-tmp.h"

typedef struct Fixture {
        sd_event *event;
        DiskPool *pool;
        char dir[PATH_MAX];
        int dirfd;
        int result;
        bool finished;
        bool drained;
        struct rlimit saved_fsize;
} Fixture;

/* Injected failures, set by a test and cleared by teardown. */
static bool fail_file_fsync;            /* fsync() of a regular file: EIO */
static bool fail_directory_fsync;       /* fsync() of a directory: EIO */
static bool fail_named_temp_close;      /* close() of a .#asyncd.* file: EIO, as NFS reports late write errors */
static bool refuse_tmpfile;             /* openat(O_TMPFILE): EOPNOTSUPP, as on a file system without it */
static bool refuse_hard_links;          /* linkat(): EPERM, as on vfat and exfat (whose rename has RENAME_NOREPLACE) */
static unsigned noreplace_renames;      /* renameat2(RENAME_NOREPLACE) calls made */

int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __wrap_fsync(int fd) {
        struct stat st;

        if ((fail_file_fsync || fail_directory_fsync) && fstat(fd, &st) >= 0 &&
            (S_ISDIR(st.st_mode) ? fail_directory_fsync : fail_file_fsync)) {
                errno = EIO;
                return -1;
        }
        return __real_fsync(fd);
}

int __real_close(int fd);
int __wrap_close(int fd);
int __wrap_close(int fd) {
        char link[64], target[PATH_MAX];
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%i", fd);
        n = fail_named_temp_close ? readlink(link, target, sizeof(target) - 1) : -1;
        if (n > 0 && (target[n] = 0, strstr(target, "/.#asyncd."))) {
                (void) __real_close(fd);
                errno = EIO;
                return -1;
        }
        return __real_close(fd);
}

/* openat() is openat64() with _FILE_OFFSET_BITS=64. */
int __real_openat64(int dirfd, const char *path, int flags, ...);
int __wrap_openat64(int dirfd, const char *path, int flags, ...);
int __wrap_openat64(int dirfd, const char *path, int flags, ...) {
        va_list ap;
        mode_t mode;

        if (refuse_tmpfile && (flags & O_TMPFILE) == O_TMPFILE) {
                errno = EOPNOTSUPP;
                return -1;
        }
        va_start(ap, flags);
        mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
        va_end(ap);
        return __real_openat64(dirfd, path, flags, mode);
}

int __real_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags);
int __wrap_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags);
int __wrap_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags) {
        struct stat st;

        /* The kernel checks that the new name is free before it asks the file system. */
        if (refuse_hard_links && fstatat(newdirfd, newpath, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                errno = EPERM;
                return -1;
        }
        return __real_linkat(olddirfd, oldpath, newdirfd, newpath, flags);
}

int __real_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned flags);
int __wrap_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned flags);
int __wrap_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned flags) {
        if (flags & RENAME_NOREPLACE)
                noreplace_renames++;
        return __real_renameat2(olddirfd, oldpath, newdirfd, newpath, flags);
}

static void on_drained(FileWriter *w, void *userdata) {
        Fixture *f = userdata;

        f->drained = true;
}

static void on_finished(FileWriter *w, int r, void *userdata) {
        Fixture *f = userdata;

        f->result = r;
        f->finished = true;
}

static const FileWriterCallbacks callbacks = {
        .on_drained = on_drained,
        .on_finished = on_finished,
};

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &f->saved_fsize), 0);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(disk_pool_new(&f->pool, f->event, 1), 0);
        assert_non_null(test_mkdtemp(f->dir, "asyncd-writer"));
        f->dirfd = open(f->dir, O_DIRECTORY | O_CLOEXEC);
        assert_true(f->dirfd >= 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        fail_file_fsync = fail_directory_fsync = fail_named_temp_close = refuse_tmpfile = refuse_hard_links = false;
        noreplace_renames = 0;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &f->saved_fsize), 0);
        assert_ptr_not_equal(signal(SIGXFSZ, SIG_DFL), SIG_ERR);
        disk_pool_free(f->pool);
        sd_event_unref(f->event);
        safe_close(f->dirfd);
        assert_int_equal(test_rm_rf(f->dir), 0);
        free(f);
        return 0;
}

static char pattern(size_t i) {
        return (char) ((i * 131 + 17) % 251);
}

/* Writes size bytes in chunks, checking after each that the buffers stay under max_memory. */
static void write_body(FileWriter *w, size_t size, size_t chunk, size_t max_memory) {
        char *buf = malloc(chunk);

        assert_non_null(buf);
        for (size_t off = 0; off < size; off += chunk) {
                size_t n = MIN(chunk, size - off);

                for (size_t i = 0; i < n; i++)
                        buf[i] = pattern(off + i);
                assert_int_equal(file_writer_write(w, buf, n), 0);
                assert_true(file_writer_memory(w) <= max_memory);
        }
        free(buf);
}

static FileWriter *new_writer_flags(Fixture *f, const char *name, FileWriterFlags flags) {
        FileWriter *w = NULL;

        assert_int_equal(file_writer_new(&w, f->pool, f->dirfd, name, flags, &callbacks, f), 0);
        return w;
}

/* A writer for name and the memory it holds before any data. */
static FileWriter *new_writer(Fixture *f, const char *name, size_t *ret_empty) {
        FileWriter *w = new_writer_flags(f, name, 0);

        *ret_empty = file_writer_memory(w);
        return w;
}

static void run_until(Fixture *f, const bool *flag) {
        for (unsigned i = 0; i < 1000 && !*flag; i++)
                assert_true(sd_event_run(f->event, 10 * 1000) >= 0);
        assert_true(*flag);
}

/* Commits (or aborts) and runs the loop until the writer is finished; returns its result. */
static int run_to_end(Fixture *f, FileWriter *w, bool commit) {
        f->finished = false;
        if (commit)
                file_writer_commit(w);
        else
                file_writer_abort(w);
        run_until(f, &f->finished);
        return f->result;
}

/* The names in the directory, sorted and joined by "/", e.g. "a.bin/b.bin". */
static char *listing(Fixture *f) {
        static char buf[4096];
        struct dirent **names;
        int n = scandir(f->dir, &names, NULL, alphasort);

        assert_true(n >= 0);
        buf[0] = 0;
        for (int i = 0; i < n; i++) {
                if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0)
                        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", buf[0] ? "/" : "", names[i]->d_name);
                free(names[i]);
        }
        free(names);
        return buf;
}

static void check_file(Fixture *f, const char *name, size_t size) {
        struct stat st;
        char *buf;
        int fd;

        fd = openat(f->dirfd, name, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_size, size);
        buf = malloc(size);
        assert_non_null(buf);
        assert_int_equal(read(fd, buf, size), (ssize_t) size);
        for (size_t i = 0; i < size; i++)
                assert_int_equal(buf[i], pattern(i));
        free(buf);
        close(fd);
}

static void commit_and_check(Fixture *f, FileWriter *w, const char *name, size_t size) {
        assert_int_equal(run_to_end(f, w, true), 1);
        check_file(f, name, size);
}

/* Saves a file of size bytes under name. */
static void save_file(Fixture *f, const char *name, FileWriterFlags flags, size_t size) {
        FileWriter *w = new_writer_flags(f, name, flags);

        write_body(w, size, size, SIZE_MAX);
        commit_and_check(f, w, name, size);
        file_writer_free(w);
}

/* A body of size bytes for name fails at commit with message (unless NULL). */
static void expect_commit_failure(Fixture *f, const char *name, FileWriterFlags flags, size_t size,
                                  const char *message) {
        FileWriter *w = new_writer_flags(f, name, flags);

        write_body(w, size, size, SIZE_MAX);
        assert_true(run_to_end(f, w, true) < 0);
        if (message)
                assert_string_equal(file_writer_error_message(w), message);
        file_writer_free(w);
}

static void test_announced_length_sizes_buffer(void **state) {
        Fixture *f = *state;
        FileWriter *w;
        size_t empty;

        w = new_writer(f, "small.gif", &empty);
        file_writer_expect(w, 5000);
        /* As curl hands it over: a first chunk, then the rest. */
        write_body(w, 5000, 3000, empty + 5000);
        assert_int_equal(file_writer_memory(w), empty + 5000);
        commit_and_check(f, w, "small.gif", 5000);
        file_writer_free(w);
}

static void test_announced_length_not_trusted(void **state) {
        Fixture *f = *state;
        FileWriter *w;
        size_t empty;

        /* A server may announce gigabytes: a body that big goes to the disk in pieces of the flush
         * threshold (256 KiB), and no more is set aside for it up front. */
        w = new_writer(f, "big.bin", &empty);
        file_writer_expect(w, UINT64_C(4) << 30);
        write_body(w, 200 * 1024, 16384, empty + 256 * 1024);
        assert_int_equal(run_to_end(f, w, false), 0);
        file_writer_free(w);
}

static void test_unknown_length(void **state) {
        Fixture *f = *state;
        FileWriter *w;
        size_t empty;

        w = new_writer(f, "chunked.bin", &empty);
        write_body(w, 100000, 1000, empty + 2 * 100000);
        commit_and_check(f, w, "chunked.bin", 100000);
        file_writer_free(w);
}

/* The disk fails while the caller waits for the writer to drain (curl paused): on_drained must
 * come, and the next write must report the failure, not ask to wait again for ever. */
static void test_disk_error_while_full(void **state) {
        Fixture *f = *state;
        struct rlimit small = { .rlim_cur = 64 * 1024, .rlim_max = f->saved_fsize.rlim_max };
        FileWriter *w;
        size_t written = 0;
        char chunk[16384] = {};

        assert_ptr_not_equal(signal(SIGXFSZ, SIG_IGN), SIG_ERR);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);

        w = new_writer_flags(f, "big.bin", 0);
        /* The first 256 KiB go to the pool, which only starts them when the loop runs. */
        while (!file_writer_is_full(w)) {
                assert_int_equal(file_writer_write(w, chunk, sizeof(chunk)), 0);
                written += sizeof(chunk);
                assert_true(written < 16 * 1024 * 1024);
        }
        run_until(f, &f->drained);
        assert_false(file_writer_is_full(w));
        assert_int_equal(file_writer_write(w, chunk, sizeof(chunk)), -EFBIG);
        assert_int_equal(run_to_end(f, w, false), 0);
        assert_string_equal(file_writer_error_message(w), "cannot write big.bin: File too large");
        file_writer_free(w);
        assert_string_equal(listing(f), "");
}

/* With fsync, a file or a directory that cannot be synced fails the task, and a failed task leaves
 * no file. */
static void test_fsync_failures(void **state) {
        Fixture *f = *state;

        fail_file_fsync = true;
        expect_commit_failure(f, "a.bin", FILE_WRITER_FSYNC, 5000, "cannot fsync a.bin: Input/output error");
        assert_string_equal(listing(f), "");
        fail_file_fsync = false;

        fail_directory_fsync = true;
        expect_commit_failure(f, "a.bin", FILE_WRITER_FSYNC, 5000,
                              "cannot fsync the directory of a.bin: Input/output error");
        assert_string_equal(listing(f), "");

        /* Replacing a file: the old one is gone once the new one is renamed over it, so the new
         * one stays (io.asyncd1(5) says so), with the error. */
        save_file(f, "b.bin", 0, 100);
        expect_commit_failure(f, "b.bin", FILE_WRITER_FSYNC | FILE_WRITER_OVERWRITE, 7000, NULL);
        assert_string_equal(listing(f), "b.bin");
        check_file(f, "b.bin", 7000);

        /* With overwrite but no file to replace, nothing was lost: the new file goes again. */
        expect_commit_failure(f, "c.bin", FILE_WRITER_FSYNC | FILE_WRITER_OVERWRITE, 7000,
                              "cannot fsync the directory of c.bin: Input/output error");
        assert_string_equal(listing(f), "b.bin");
}

/* A file that replaces another has no name while it downloads, so that a crash (SIGKILL) cannot
 * leave a temporary file behind; it gets one only to be renamed into place. */
static void test_overwrite_unnamed_until_complete(void **state) {
        Fixture *f = *state;
        FileWriter *w;
        bool open_in_dir = false;

        save_file(f, "c.bin", 0, 10);
        w = new_writer_flags(f, "c.bin", FILE_WRITER_OVERWRITE);
        write_body(w, 300 * 1024, 16384, SIZE_MAX);
        /* Until the pool has created the file, unnamed (the old c.bin, written in place, would
         * not count): */
        for (unsigned i = 0; i < 500 && !open_in_dir; i++) {
                assert_true(sd_event_run(f->event, 10 * 1000) >= 0);
                open_in_dir = test_count_unnamed_files(f->dir) == 1;
        }
        assert_true(open_in_dir);
        assert_string_equal(listing(f), "c.bin");
        check_file(f, "c.bin", 10);     /* the old file, untouched until the rename */
        commit_and_check(f, w, "c.bin", 300 * 1024);
        file_writer_free(w);
        assert_string_equal(listing(f), "c.bin");
}

/* Where a file system has no unnamed files, a named temporary one is closed before it appears:
 * close() is where NFS reports write errors it could not report at write(). */
static void test_named_temp_close_failure(void **state) {
        Fixture *f = *state;

        refuse_tmpfile = true;
        save_file(f, "d.bin", 0, 3000);

        fail_named_temp_close = true;
        expect_commit_failure(f, "e.bin", 0, 3000, "cannot write e.bin: Input/output error");
        assert_string_equal(listing(f), "d.bin");
}

/* No unnamed files and no hard links (vfat, exfat): the named temporary file is renamed into place,
 * never over an existing file. (dbus-filesystems does this on FAT through FUSE, where the rename
 * cannot refuse to replace and the name is checked instead; here it is the kernel's way.) */
static void test_no_hard_links(void **state) {
        Fixture *f = *state;

        refuse_tmpfile = refuse_hard_links = true;
        save_file(f, "a.bin", 0, 3000);
        save_file(f, "b.bin", FILE_WRITER_FSYNC, 300000);
        assert_int_equal(noreplace_renames, 2);
        assert_string_equal(listing(f), "a.bin/b.bin");

        expect_commit_failure(f, "a.bin", 0, 10, "a.bin already exists");
        check_file(f, "a.bin", 3000);
        save_file(f, "a.bin", FILE_WRITER_OVERWRITE, 20);
        assert_string_equal(listing(f), "a.bin/b.bin");
}

/* A file name of 255 bytes fits in the message whole. */
static void test_long_name_in_message(void **state) {
        Fixture *f = *state;
        char name[256], expected[400];
        int fd;

        memset(name, 'x', 255);
        name[255] = 0;
        fd = openat(f->dirfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        snprintf(expected, sizeof(expected), "%s already exists", name);
        expect_commit_failure(f, name, 0, 10, expected);

        fail_directory_fsync = true;
        snprintf(expected, sizeof(expected), "cannot fsync the directory of %s: Input/output error", name + 1);
        expect_commit_failure(f, name + 1, FILE_WRITER_FSYNC, 10, expected);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_announced_length_sizes_buffer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_announced_length_not_trusted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_length, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disk_error_while_full, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fsync_failures, setup, teardown),
                cmocka_unit_test_setup_teardown(test_overwrite_unnamed_until_complete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_named_temp_close_failure, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_hard_links, setup, teardown),
                cmocka_unit_test_setup_teardown(test_long_name_in_message, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
