/* SPDX-License-Identifier: MIT */
/* file-writer: one download's file, buffered in memory and written through the disk pool into an
 * unnamed (or, where the file system has none, temporary) file inside the destination directory,
 * then linked into place. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "disk-pool.h"

typedef struct FileWriter FileWriter;

typedef enum FileWriterFlags {
        FILE_WRITER_OVERWRITE = 1 << 0,        /* replace an existing regular file atomically */
        FILE_WRITER_FSYNC = 1 << 1,            /* fsync file and directory before reporting success */
} FileWriterFlags;

typedef struct FileWriterCallbacks {
        /* The buffer fell below the high-water mark again (or an error occurred): resume input. */
        void (*on_drained)(FileWriter *w, void *userdata);
        /* commit or abort completed: r is 1 when the file is in place, 0 when it was discarded
         * (abort), or a negative errno; file_writer_error_message() says what failed. A commit
         * that was already running when abort was asked still completes with 1. The writer may
         * be freed from inside. */
        void (*on_finished)(FileWriter *w, int r, void *userdata);
} FileWriterCallbacks;

/* dirfd is borrowed and must stay open until on_finished; filename must be a valid file name. */
int file_writer_new(FileWriter **ret, DiskPool *pool, int dirfd, const char *filename,
                    FileWriterFlags flags, const FileWriterCallbacks *callbacks, void *userdata);
FileWriter *file_writer_free(FileWriter *w);

/* The body's announced length: its buffer is sized to it instead of grown. */
void file_writer_expect(FileWriter *w, uint64_t size);
/* Copies data into the buffer. Returns 0, -ENOMEM, or the error of an earlier failed write. */
int file_writer_write(FileWriter *w, const void *data, size_t size);
/* True when the caller should stop feeding data until on_drained. */
bool file_writer_is_full(FileWriter *w);

/* Writes what is buffered, then links the file into place under its name. */
void file_writer_commit(FileWriter *w);
/* Throws the data away; leaves nothing behind in the directory. */
void file_writer_abort(FileWriter *w);

uint64_t file_writer_size(FileWriter *w);
/* Bytes of memory the writer holds now (buffers included). */
size_t file_writer_memory(FileWriter *w);
/* After on_finished with r < 0: a human-readable reason, e.g. "br.gif already exists". */
const char *file_writer_error_message(FileWriter *w);
