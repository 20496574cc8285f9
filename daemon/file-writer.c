/* SPDX-License-Identifier: MIT */
/* file-writer: one download's file, buffered in memory and written through the disk pool into an
 * unnamed (or, where the file system has none, temporary) file inside the destination directory,
 * then linked into place.
 *
 * At most one operation per writer is on the pool at a time, so operations apply in order. While
 * one runs, the worker owns fd, tmpname and the "writing" buffer; the loop only fills "filling".
 * A small body never costs more than one pool round trip: create, write, link and close happen
 * in the single operation that commit() submits. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <assert.h>

#include "file-writer.h"
#include "macro.h"

#define FLUSH_THRESHOLD (256U * 1024U)
#define HIGH_WATER (4U * 1024U * 1024U)
/* Each write() ends on a multiple of this file offset. ext4 (Linux 6.18, large folios) sizes its
 * page-cache folios to the write: handing it the whole backlog (up to HIGH_WATER) at once, a
 * 256 MiB download to disk took 0.44-0.59 s instead of 0.15-0.29 s (bench/README.md). */
#define WRITE_CHUNK (256U * 1024U)

typedef struct Buffer {
        char *data;
        size_t size, allocated;
} Buffer;

typedef enum OpKind {
        OP_WRITE,       /* create if needed, write "writing" */
        OP_FINISH,      /* create if needed, write "writing", fsync, link into place, close */
        OP_DISCARD,     /* close and remove whatever exists */
} OpKind;

typedef enum Goal {
        GOAL_NONE,
        GOAL_COMMIT,
        GOAL_ABORT,
} Goal;

struct FileWriter {
        DiskOp op;
        OpKind op_kind;
        bool busy;
        Goal goal;
        bool want_drain;
        int error;                      /* sticky: first failure */
        char error_message[384];        /* a 255-byte file name with the longest text around it */

        DiskPool *pool;
        int dirfd;
        char *filename;
        FileWriterFlags flags;
        const FileWriterCallbacks *callbacks;
        void *userdata;

        /* Owned by the worker while busy. */
        int fd;
        char *tmpname;                  /* NULL for an unnamed O_TMPFILE */
        bool replaced;                  /* the rename put the file over an existing one */
        uint64_t written;
        Buffer writing;

        Buffer filling;
        uint64_t size;
        uint64_t expected;              /* announced body length, 0 if unknown */
};

/* what is a format with one %s for the file name, e.g. "cannot write %s". */
static int fail(FileWriter *w, int r, const char *what) {
        char prefix[sizeof(w->error_message) - 64];

        if (r == -EEXIST && !(w->flags & FILE_WRITER_OVERWRITE))
                snprintf(w->error_message, sizeof(w->error_message), "%s already exists", w->filename);
        else if (r == -EEXIST)
                snprintf(w->error_message, sizeof(w->error_message),
                         "%s exists and is not a regular file, not replacing it", w->filename);
        else {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                snprintf(prefix, sizeof(prefix), what, w->filename);
#pragma GCC diagnostic pop
                snprintf(w->error_message, sizeof(w->error_message), "%s: %.60s", prefix, strerror(-r));
        }
        return r;
}

#define TEMP_NAME_ATTEMPTS 16U

/* A fresh hidden name for w->tmpname; the caller creates it and tries again on EEXIST. */
static int pick_temp_name(FileWriter *w, unsigned attempt) {
        uint64_t rnd;

        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                rnd = ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) w ^ attempt;
        free(w->tmpname);
        if (asprintf(&w->tmpname, ".#asyncd.%016llx", (unsigned long long) rnd) < 0) {
                w->tmpname = NULL;
                return -ENOMEM;
        }
        return 0;
}

static int open_named_temp(FileWriter *w) {
        for (unsigned attempt = 0; attempt < TEMP_NAME_ATTEMPTS; attempt++) {
                int fd, r;

                r = pick_temp_name(w, attempt);
                if (r < 0)
                        return r;
                fd = openat(w->dirfd, w->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
                if (fd >= 0) {
                        w->fd = fd;
                        return 0;
                }
                if (errno != EEXIST) {
                        w->tmpname = (free(w->tmpname), NULL);
                        return negative_errno();
                }
        }
        w->tmpname = (free(w->tmpname), NULL);
        return -EEXIST;
}

static int open_file(FileWriter *w) {
        if (w->fd >= 0)
                return 0;

        /* An unnamed file vanishes by itself if we die, even by SIGKILL, and can be linked in with
         * no-clobber semantics for free. Replacing a file gives it a name only at the end. */
        int fd = openat(w->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
        if (fd >= 0) {
                w->fd = fd;
                return 0;
        }
        /* Filesystems without O_TMPFILE say so in a few ways; fall back to a name. */
        if (!IN_SET(errno, EOPNOTSUPP, EISDIR, EINVAL))
                return negative_errno();
        return open_named_temp(w);
}

static int write_buffer(FileWriter *w) {
        const char *p = w->writing.data;
        size_t left = w->writing.size;

        while (left > 0) {
                size_t chunk = WRITE_CHUNK - (size_t) (w->written % WRITE_CHUNK);
                ssize_t n = write(w->fd, p, MIN(left, chunk));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                left -= (size_t) n;
                w->written += (uint64_t) n;
        }
        w->writing.size = 0;
        return 0;
}

static atomic_bool empty_path_refused;

/* Gives the open unnamed file the name, which must not exist. */
static int link_unnamed(FileWriter *w, const char *name) {
        /* linkat(AT_EMPTY_PATH) is the cheap way, but needs CAP_DAC_READ_SEARCH before Linux 6.10
         * (ENOENT without it); the /proc link walks a path but needs nothing. Remember which
         * works, the answer does not change while we run. */
        bool tried_empty_path = !atomic_load_explicit(&empty_path_refused, memory_order_relaxed);
        char path[64];

        if (tried_empty_path) {
                if (linkat(w->fd, "", w->dirfd, name, AT_EMPTY_PATH) >= 0)
                        return 0;
                if (errno != ENOENT)
                        return negative_errno();
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%i", w->fd);
        if (linkat(AT_FDCWD, path, w->dirfd, name, AT_SYMLINK_FOLLOW) < 0)
                return negative_errno();
        if (tried_empty_path)
                atomic_store_explicit(&empty_path_refused, true, memory_order_relaxed);
        return 0;
}

/* A complete unnamed file that is to replace another needs a name to rename: it gets a hidden
 * one only now, so that while it downloads a crash leaves nothing behind. */
static int name_unnamed(FileWriter *w) {
        int r = -EEXIST;

        for (unsigned attempt = 0; attempt < TEMP_NAME_ATTEMPTS && r == -EEXIST; attempt++) {
                r = pick_temp_name(w, attempt);
                if (r < 0)
                        return r;
                r = link_unnamed(w, w->tmpname);
        }
        if (r < 0)
                w->tmpname = (free(w->tmpname), NULL);
        return r;
}

/* Gives the complete named temporary file its final name, which must not exist. A hard link does
 * that atomically; file systems without hard links (FAT and exFAT, which have no unnamed files
 * either) say EPERM, and get a rename that refuses to replace a file (RENAME_NOREPLACE). Where even
 * that is missing (a FUSE file system without rename2, as fusefat and exfat-fuse: EINVAL) the name
 * is checked first: a file created under it in the instant between would be replaced. */
static int move_named_into_place(FileWriter *w) {
        struct stat st;

        if (linkat(w->dirfd, w->tmpname, w->dirfd, w->filename, 0) >= 0) {
                (void) unlinkat(w->dirfd, w->tmpname, 0);
                return 0;
        }
        if (!IN_SET(errno, EPERM, EOPNOTSUPP, ENOSYS))
                return negative_errno();

        if (renameat2(w->dirfd, w->tmpname, w->dirfd, w->filename, RENAME_NOREPLACE) >= 0)
                return 0;
        if (!IN_SET(errno, EINVAL, EOPNOTSUPP, ENOSYS))
                return negative_errno();

        if (fstatat(w->dirfd, w->filename, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return -EEXIST;
        if (errno != ENOENT)
                return negative_errno();
        if (renameat(w->dirfd, w->tmpname, w->dirfd, w->filename) < 0)
                return negative_errno();
        return 0;
}

static int link_into_place(FileWriter *w) {
        int r;

        if (!w->tmpname && !(w->flags & FILE_WRITER_OVERWRITE))
                return link_unnamed(w, w->filename);

        if (w->flags & FILE_WRITER_OVERWRITE) {
                struct stat st;

                /* rename() would not follow a planted symlink either, but refuse to replace
                 * anything that is not a plain file rather than surprise the user. */
                if (fstatat(w->dirfd, w->filename, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                        if (!S_ISREG(st.st_mode))
                                return -EEXIST;
                        w->replaced = true;
                }
                if (!w->tmpname) {
                        r = name_unnamed(w);
                        if (r < 0)
                                return r;
                }
                if (renameat(w->dirfd, w->tmpname, w->dirfd, w->filename) < 0)
                        return negative_errno();
        } else {
                r = move_named_into_place(w);
                if (r < 0)
                        return r;
        }
        w->tmpname = (free(w->tmpname), NULL);
        return 0;
}

static int discard(FileWriter *w) {
        w->fd = safe_close(w->fd);
        if (w->tmpname) {
                (void) unlinkat(w->dirfd, w->tmpname, 0);
                w->tmpname = (free(w->tmpname), NULL);
        }
        return 0;
}

/* The directory could not be synced after the file was linked in: a failed task leaves nothing
 * behind, so take the name back, if it still is ours. A replaced file cannot be brought back. */
static void unlink_after_failure(FileWriter *w, const struct stat *linked) {
        struct stat st;

        if (w->replaced)
                return;
        if (fstatat(w->dirfd, w->filename, &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
            st.st_dev == linked->st_dev && st.st_ino == linked->st_ino)
                (void) unlinkat(w->dirfd, w->filename, 0);
}

/* fsync (if asked), link into place, fsync the directory (if asked), close. */
static int complete_file(FileWriter *w) {
        bool sync = w->flags & FILE_WRITER_FSYNC;
        struct stat linked = {};
        int r;

        if (sync && (fsync(w->fd) < 0 || fstat(w->fd, &linked) < 0))
                return fail(w, negative_errno(), "cannot fsync %s");
        /* A named file is closed before it appears: close() is where NFS reports the write errors
         * it could not report before. (An unnamed file needs its descriptor to be linked, and the
         * file systems that have them report errors at write().) */
        if (w->tmpname) {
                r = close(w->fd);
                w->fd = -EBADF;
                if (r < 0 && errno != EINTR)
                        return fail(w, negative_errno(), "cannot write %s");
        }
        r = link_into_place(w);
        if (r < 0)
                return fail(w, r, "cannot link %s into place");
        if (sync && fsync(w->dirfd) < 0) {
                r = negative_errno();
                unlink_after_failure(w, &linked);
                return fail(w, r, "cannot fsync the directory of %s");
        }
        w->fd = safe_close(w->fd);
        return 0;
}

/* Runs on a worker thread. */
static int writer_run(DiskOp *op) {
        FileWriter *w = container_of(op, FileWriter, op);
        int r;

        if (w->op_kind == OP_DISCARD)
                return discard(w);

        r = open_file(w);
        if (r < 0)
                return fail(w, r, "cannot create a temporary file for %s");
        r = write_buffer(w);
        if (r < 0)
                return fail(w, r, "cannot write %s");
        if (w->op_kind == OP_WRITE)
                return 0;
        return complete_file(w);
}

static void swap_buffers(FileWriter *w) {
        Buffer t = w->writing;

        w->writing = w->filling;
        w->filling = t;
        w->filling.size = 0;
}

static void submit(FileWriter *w, OpKind kind) {
        w->op_kind = kind;
        w->busy = true;
        disk_pool_submit(w->pool, &w->op);
}

static void finish(FileWriter *w, int r) {
        w->goal = GOAL_NONE;
        w->callbacks->on_finished(w, r, w->userdata);
}

static void kick(FileWriter *w) {
        if (w->busy)
                return;

        if (w->error < 0 || w->goal == GOAL_ABORT) {
                if (w->fd >= 0 || w->tmpname)
                        submit(w, OP_DISCARD);
                else if (w->goal != GOAL_NONE)
                        finish(w, w->goal == GOAL_ABORT ? 0 : w->error);
                return;
        }
        if (w->goal == GOAL_COMMIT) {
                swap_buffers(w);
                /* No more data comes: the spare buffer would only wait for the disk with us. */
                w->filling.data = (free(w->filling.data), NULL);
                w->filling.allocated = 0;
                submit(w, OP_FINISH);
                return;
        }
        if (w->filling.size >= FLUSH_THRESHOLD) {
                swap_buffers(w);
                submit(w, OP_WRITE);
        }
}

static void writer_done(DiskOp *op, int result) {
        FileWriter *w = container_of(op, FileWriter, op);
        OpKind kind = w->op_kind;

        w->busy = false;
        if (result < 0 && w->error == 0)
                w->error = result;

        if (kind == OP_FINISH && result >= 0) {
                finish(w, 1);
                return;
        }
        if (kind == OP_DISCARD && w->goal != GOAL_NONE) {
                finish(w, w->goal == GOAL_ABORT ? 0 : w->error);
                return;
        }

        if (w->want_drain && (w->error < 0 || !file_writer_is_full(w))) {
                w->want_drain = false;
                w->callbacks->on_drained(w, w->userdata);
        }
        kick(w);
}

int file_writer_new(FileWriter **ret, DiskPool *pool, int dirfd, const char *filename,
                    FileWriterFlags flags, const FileWriterCallbacks *callbacks, void *userdata) {
        FileWriter *w;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->filename = strdup(filename);
        if (!w->filename) {
                free(w);
                return -ENOMEM;
        }
        w->op.run = writer_run;
        w->op.done = writer_done;
        w->pool = pool;
        w->dirfd = dirfd;
        w->fd = -EBADF;
        w->flags = flags;
        w->callbacks = callbacks;
        w->userdata = userdata;
        *ret = w;
        return 0;
}

FileWriter *file_writer_free(FileWriter *w) {
        if (!w)
                return NULL;
        /* Freeing with an operation in flight would be a use-after-free on the worker. */
        assert(!w->busy);
        safe_close(w->fd);
        free(w->tmpname);
        free(w->filename);
        free(w->writing.data);
        free(w->filling.data);
        free(w);
        return NULL;
}

/* A body of announced length up to FLUSH_THRESHOLD gets a buffer of exactly its size: a finished
 * download may wait in memory for the disk pool a while, next to hundreds of others. */
static size_t grown_allocation(const FileWriter *w, const Buffer *b, size_t needed) {
        size_t least = w->expected > 0 ? (size_t) MIN(w->expected, (uint64_t) FLUSH_THRESHOLD) : 16384U;

        return MAX(MAX(b->allocated * 2, needed), least);
}

void file_writer_expect(FileWriter *w, uint64_t size) {
        w->expected = size;
}

int file_writer_write(FileWriter *w, const void *data, size_t size) {
        Buffer *b = &w->filling;

        if (w->error < 0)
                return w->error;
        if (b->size + size > b->allocated) {
                size_t n = grown_allocation(w, b, b->size + size);
                char *p;

                p = realloc(b->data, n);
                if (!p)
                        return -ENOMEM;
                b->data = p;
                b->allocated = n;
        }
        memcpy(b->data + b->size, data, size);
        b->size += size;
        w->size += size;
        kick(w);
        return 0;
}

bool file_writer_is_full(FileWriter *w) {
        /* After a failure nothing drains the buffer any more: the next write reports the error. */
        if (w->error < 0 || w->filling.size < HIGH_WATER)
                return false;
        w->want_drain = true;
        return true;
}

void file_writer_commit(FileWriter *w) {
        w->goal = GOAL_COMMIT;
        kick(w);
}

void file_writer_abort(FileWriter *w) {
        w->goal = GOAL_ABORT;
        kick(w);
}

uint64_t file_writer_size(FileWriter *w) {
        return w->size;
}

size_t file_writer_memory(FileWriter *w) {
        return sizeof(*w) + strlen(w->filename) + 1 + w->filling.allocated + w->writing.allocated;
}

const char *file_writer_error_message(FileWriter *w) {
        return w->error_message[0] ? w->error_message : strerror(-w->error);
}
