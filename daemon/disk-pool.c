/* SPDX-License-Identifier: MIT */
/* disk-pool: a few worker threads that run blocking file operations off the event loop.
 *
 * Operations go into a mutex-protected queue; workers run them and move them to a completion
 * queue, then poke an eventfd. The loop side drains the completion queue from that eventfd's io
 * source and calls each operation's done() callback, so all bookkeeping stays single-threaded.
 * Submissions collect in a loop-private outbox that the io source's prepare callback hands over
 * in one go before the loop polls: one lock round and at most one wake-up per worker per loop
 * iteration, instead of one per operation (a cross-CPU wake-up is dear, in a VM dearer still).
 *
 * Workers run DISK_POOL_NICE_DELTA nice levels below the loop thread: the loop is the daemon's
 * critical path, and when both want the CPU a file operation can wait (its backlog is bounded:
 * curl pauses, the scheduler stops starting transfers) while a waiting loop stalls every
 * transfer. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "disk-pool.h"
#include "log.h"
#include "macro.h"

struct DiskPool {
        sd_event_source *wakeup;
        int eventfd;

        pthread_mutex_t lock;
        pthread_cond_t cond;
        ListLink queued;        /* guarded by lock */
        ListLink completed;     /* guarded by lock */
        bool stopping;          /* guarded by lock */
        unsigned n_idle;        /* guarded by lock: workers waiting for work */

        pthread_t *threads;
        unsigned n_threads;
        unsigned pending;       /* loop thread only */
        ListLink outbox;        /* loop thread only: submitted, not yet queued */
        unsigned n_outbox;      /* loop thread only */
        _Atomic uint64_t delay_usec;
};

/* setpriority() on a thread id changes that thread only: the loop thread keeps its own. */
static void lower_own_priority(void) {
        pid_t tid = gettid();
        int nice_now;

        errno = 0;
        nice_now = getpriority(PRIO_PROCESS, (id_t) tid);
        if (errno != 0)
                return;
        if (setpriority(PRIO_PROCESS, (id_t) tid, MIN(nice_now + DISK_POOL_NICE_DELTA, 19)) < 0)
                log_debug_errno(negative_errno(), "Failed to lower the priority of a disk worker: %m");
}

static void *worker(void *userdata) {
        DiskPool *p = userdata;

        lower_own_priority();
        pthread_mutex_lock(&p->lock);
        for (;;) {
                ListLink *l;
                DiskOp *op;
                uint64_t delay;

                while (list_is_empty(&p->queued) && !p->stopping) {
                        p->n_idle++;
                        pthread_cond_wait(&p->cond, &p->lock);
                        p->n_idle--;
                }
                l = list_first(&p->queued);
                if (!l)
                        break; /* stopping and nothing left */
                list_unlink(l);
                pthread_mutex_unlock(&p->lock);

                op = container_of(l, DiskOp, link);
                delay = atomic_load(&p->delay_usec);
                if (delay > 0)
                        (void) nanosleep(&(struct timespec) { .tv_sec = delay / USEC_PER_SEC,
                                                              .tv_nsec = (delay % USEC_PER_SEC) * NSEC_PER_USEC },
                                         NULL);
                op->result = op->run(op);

                pthread_mutex_lock(&p->lock);
                bool was_empty = list_is_empty(&p->completed);
                list_append(&p->completed, &op->link);
                if (was_empty) {
                        /* One wakeup per batch: the loop drains everything that is there when it
                         * runs. Poke it with the lock released: woken on this CPU it preempts this
                         * lower-priority worker, and would find the lock still held. A late poke
                         * finds an empty queue, which the loop takes in its stride. */
                        pthread_mutex_unlock(&p->lock);
                        (void) eventfd_write(p->eventfd, 1);
                        pthread_mutex_lock(&p->lock);
                }
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static void dispatch_completed(DiskPool *p) {
        ListLink batch;

        list_init(&batch);
        /* Splice the whole completion list out under the lock, run callbacks outside it. */
        pthread_mutex_lock(&p->lock);
        list_splice_tail(&batch, &p->completed);
        pthread_mutex_unlock(&p->lock);

        LIST_FOREACH(&batch, l, tmp) {
                DiskOp *op = container_of(l, DiskOp, link);

                list_unlink(l);
                p->pending--;
                op->done(op, op->result);
        }
}

static void flush_outbox(DiskPool *p) {
        unsigned n = p->n_outbox;

        if (n == 0)
                return;
        p->n_outbox = 0;
        pthread_mutex_lock(&p->lock);
        list_splice_tail(&p->queued, &p->outbox);
        /* Busy workers pick the ops up when they are done; wake only as many sleepers as needed. */
        if (n >= p->n_idle)
                pthread_cond_broadcast(&p->cond);
        else
                while (n-- > 0)
                        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
}

/* Blocks until a worker signals completed operations (the loop is not running: disk_pool_free()). */
static int wait_for_completions(DiskPool *p) {
        struct pollfd pfd = { .fd = p->eventfd, .events = POLLIN };
        eventfd_t v;

        while (poll(&pfd, 1, -1) < 0)
                if (errno != EINTR)
                        return negative_errno();
        (void) eventfd_read(p->eventfd, &v);
        return 0;
}

static int on_prepare(sd_event_source *s, void *userdata) {
        flush_outbox(userdata);
        return 0;
}

static int on_wakeup(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        DiskPool *p = userdata;
        eventfd_t v;

        (void) eventfd_read(p->eventfd, &v);
        dispatch_completed(p);
        return 0;
}

int disk_pool_new(DiskPool **ret, sd_event *event, unsigned n_threads) {
        _cleanup_(disk_pool_freep) DiskPool *p = NULL;
        sigset_t all, old;
        int r;

        if (n_threads == 0)
                return -EINVAL;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->eventfd = -EBADF;
        list_init(&p->queued);
        list_init(&p->completed);
        list_init(&p->outbox);
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);

        p->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->eventfd < 0)
                return negative_errno();
        r = sd_event_add_io(event, &p->wakeup, p->eventfd, EPOLLIN, on_wakeup, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->wakeup, "disk-pool");
        r = sd_event_source_set_prepare(p->wakeup, on_prepare);
        if (r < 0)
                return r;

        p->threads = calloc(n_threads, sizeof(pthread_t));
        if (!p->threads)
                return -ENOMEM;

        /* Workers must never take the signals the loop handles through signalfd. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        for (unsigned i = 0; i < n_threads; i++) {
                r = -pthread_create(&p->threads[i], NULL, worker, p);
                if (r < 0)
                        break;
                p->n_threads++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(p);
        return 0;
}

DiskPool *disk_pool_free(DiskPool *p) {
        if (!p)
                return NULL;

        /* Every operation ends with its done callback, which may submit the next one (a writer's
         * discard after a failed write, its next write): hand those over and wait for them too,
         * until nothing is pending. Only then stop the workers, or a submission made after they
         * stopped would never run (and would stay linked to freed memory). */
        while (p->pending > 0 && p->n_threads > 0) {
                int r;

                flush_outbox(p);
                r = wait_for_completions(p);
                if (r < 0) {
                        log_error_errno(r, "Failed to wait for disk operations, %u not finished: %m", p->pending);
                        break;
                }
                dispatch_completed(p);
        }

        flush_outbox(p);
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->n_threads; i++)
                pthread_join(p->threads[i], NULL);
        free(p->threads);

        /* Nothing is left unless waiting failed: the workers drained the queue before exiting; hand
         * back whatever completed meanwhile. */
        dispatch_completed(p);

        sd_event_source_disable_unref(p->wakeup);
        safe_close(p->eventfd);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
}

void disk_pool_submit(DiskPool *p, DiskOp *op) {
        p->pending++;
        p->n_outbox++;
        list_append(&p->outbox, &op->link);
}

unsigned disk_pool_pending(DiskPool *p) {
        return p->pending;
}

void disk_pool_set_delay(DiskPool *p, uint64_t usec) {
        atomic_store(&p->delay_usec, usec);
}
