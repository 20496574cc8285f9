/* SPDX-License-Identifier: MIT */
/* Tests for file-writer: a body of announced length is buffered in exactly that much memory (a
 * finished file may wait for the disk next to hundreds of others), an announced length is never
 * trusted beyond the flush threshold, and the file lands whole under its name. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "disk-pool.h"
#include "file-writer.h"
#include "macro.h"

typedef struct Fixture {
        sd_event *event;
        DiskPool *pool;
        char dir[64];
        int dirfd;
        int result;
        bool finished;
} Fixture;

static void on_drained(FileWriter *w, void *userdata) {
}

static void on_finished(FileWriter *w, int r, void *userdata) {
        Fixture *f = userdata;

        f->result = r;
        f->finished = true;
        (void) sd_event_exit(f->event, 0);
}

static const FileWriterCallbacks callbacks = {
        .on_drained = on_drained,
        .on_finished = on_finished,
};

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(disk_pool_new(&f->pool, f->event, 1), 0);
        strcpy(f->dir, "/tmp/asyncd-writer-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->dirfd = open(f->dir, O_DIRECTORY | O_CLOEXEC);
        assert_true(f->dirfd >= 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        char cmd[128];

        disk_pool_free(f->pool);
        sd_event_unref(f->event);
        safe_close(f->dirfd);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        assert_int_equal(system(cmd), 0);
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

/* A writer for name and the memory it holds before any data. */
static FileWriter *new_writer(Fixture *f, const char *name, size_t *ret_empty) {
        FileWriter *w = NULL;

        assert_int_equal(file_writer_new(&w, f->pool, f->dirfd, name, 0, &callbacks, f), 0);
        *ret_empty = file_writer_memory(w);
        return w;
}

static void commit_and_check(Fixture *f, FileWriter *w, const char *name, size_t size) {
        struct stat st;
        char *buf;
        int fd;

        f->finished = false;
        file_writer_commit(w);
        assert_true(sd_event_loop(f->event) >= 0);
        assert_true(f->finished);
        assert_int_equal(f->result, 1);

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
        file_writer_abort(w);
        assert_true(sd_event_loop(f->event) >= 0);
        assert_int_equal(f->result, 0);
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_announced_length_sizes_buffer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_announced_length_not_trusted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_length, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
