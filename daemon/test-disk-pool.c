/* SPDX-License-Identifier: MIT */
/* Tests for disk-pool: operations run on the workers, their done() on the loop thread, and the
 * workers sit DISK_POOL_NICE_DELTA nice levels below the loop. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cmocka.h>

#include "disk-pool.h"
#include "macro.h"

#define N_OPS 64

typedef struct ProbeOp {
        DiskOp op;
        pid_t run_tid;
        int run_nice;
        pid_t done_tid;
        unsigned *n_done;
        sd_event *event;
} ProbeOp;

static int probe_run(DiskOp *op) {
        ProbeOp *p = container_of(op, ProbeOp, op);

        p->run_tid = gettid();
        errno = 0;
        p->run_nice = getpriority(PRIO_PROCESS, (id_t) p->run_tid);
        return errno == 0 ? 7 : -errno;
}

static void probe_done(DiskOp *op, int result) {
        ProbeOp *p = container_of(op, ProbeOp, op);

        assert_int_equal(result, 7);
        p->done_tid = gettid();
        if (++*p->n_done == N_OPS)
                (void) sd_event_exit(p->event, 0);
}

static int current_nice(void) {
        int n;

        errno = 0;
        n = getpriority(PRIO_PROCESS, (id_t) gettid());
        assert_int_equal(errno, 0);
        return n;
}

static void run_probes(int loop_nice) {
        sd_event *event = NULL;
        DiskPool *pool = NULL;
        ProbeOp ops[N_OPS] = {};
        unsigned n_done = 0;

        if (loop_nice != current_nice())
                assert_int_equal(setpriority(PRIO_PROCESS, (id_t) gettid(), loop_nice), 0);
        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(disk_pool_new(&pool, event, 3), 0);
        for (size_t i = 0; i < N_OPS; i++) {
                ops[i] = (ProbeOp) { .op = { .run = probe_run, .done = probe_done },
                                     .n_done = &n_done, .event = event };
                disk_pool_submit(pool, &ops[i].op);
        }
        assert_int_equal(sd_event_loop(event), 0);
        assert_int_equal(n_done, N_OPS);
        for (size_t i = 0; i < N_OPS; i++) {
                assert_int_not_equal(ops[i].run_tid, gettid());
                assert_int_equal(ops[i].done_tid, gettid());
                assert_int_equal(ops[i].run_nice, MIN(loop_nice + DISK_POOL_NICE_DELTA, 19));
        }
        /* The loop thread itself is left where it was. */
        assert_int_equal(current_nice(), loop_nice);
        disk_pool_free(pool);
        sd_event_unref(event);
}

static void test_workers_below_loop(void **state) {
        run_probes(current_nice());
}

static void test_loop_near_nice_19(void **state) {
        /* Ten levels below 15 is past 19, the lowest priority: the workers end at 19 (whether
         * asyncd or the kernel caps it), and still run. Raising the nice value needs no privilege. */
        run_probes(MAX(current_nice(), 15));
}

/* An operation whose done callback submits the next one, as a writer's does (its next write, or
 * the discard after a failed one). */
typedef struct ChainOp {
        DiskOp op;
        DiskPool *pool;
        struct ChainOp *next;
        pid_t run_tid;
        bool done;
} ChainOp;

static int chain_run(DiskOp *op) {
        ChainOp *c = container_of(op, ChainOp, op);

        c->run_tid = gettid();
        return 0;
}

static void chain_done(DiskOp *op, int result) {
        ChainOp *c = container_of(op, ChainOp, op);

        assert_int_equal(result, 0);
        c->done = true;
        if (c->next)
                disk_pool_submit(c->pool, &c->next->op);
}

static void test_free_waits_for_chained_ops(void **state) {
        sd_event *event = NULL;
        DiskPool *pool = NULL;
        ChainOp ops[4] = {};

        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(disk_pool_new(&pool, event, 2), 0);
        for (size_t i = 0; i < ELEMENTSOF(ops); i++)
                ops[i] = (ChainOp) { .op = { .run = chain_run, .done = chain_done }, .pool = pool,
                                     .next = i + 1 < ELEMENTSOF(ops) ? &ops[i + 1] : NULL };
        /* The loop never runs: the first operation is still in the outbox when the pool is freed,
         * and each of the others is submitted only by its predecessor's done callback. */
        disk_pool_submit(pool, &ops[0].op);
        disk_pool_free(pool);
        for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                assert_true(ops[i].done);
                assert_int_not_equal(ops[i].run_tid, 0);
                assert_int_not_equal(ops[i].run_tid, gettid());
        }
        sd_event_unref(event);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_workers_below_loop),
                cmocka_unit_test(test_loop_near_nice_19),
                cmocka_unit_test(test_free_waits_for_chained_ops),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
