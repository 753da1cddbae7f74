/* SPDX-License-Identifier: Apache-2.0 */
/* The thread queue (agent/taskq.c): order, push_front, close, and a worker thread. */
#define _GNU_SOURCE

#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "taskq.h"
#include "testlib.h"

static void append(void *p) {
        char *s = p;
        static char out[16];

        strncat(out, s, sizeof(out) - strlen(out) - 1);
        if (streq(s, "!"))
                assert_string_equal(out, "bac!");
}

static int destroyed;
static void destroy(void *p) {
        destroyed++;
}

static void *worker(void *p) {
        taskq_run(p);
        return NULL;
}

static int ran;
static void count(void *p) {
        __atomic_add_fetch(&ran, 1, __ATOMIC_SEQ_CST);
}

static void test_taskq(void **state) {
        TaskQueue *q = NULL;
        pthread_t t;

        assert_ok(taskq_new(true, &q));
        assert_true(taskq_fd(q) >= 0);
        assert_ok(taskq_push(q, append, destroy, "a"));
        assert_ok(taskq_push(q, append, destroy, "c"));
        assert_ok(taskq_push_front(q, append, destroy, "b"));
        assert_ok(taskq_push(q, append, destroy, "!"));
        assert_int_equal(taskq_dispatch(q), 4);
        assert_int_equal(taskq_dispatch(q), 0);
        assert_ok(taskq_push(q, append, destroy, "x"));
        assert_ok(taskq_push(q, append, destroy, "y"));
        taskq_close(q);
        assert_int_equal(destroyed, 2);
        assert_errno(taskq_push(q, append, destroy, "z"), ESHUTDOWN);
        taskq_free(q);

        /* a worker thread runs everything pushed, then stops on close */
        assert_ok(taskq_new(false, &q));
        assert_errno(taskq_fd(q), EBADF);
        assert_ok(taskq_thread_create(&t, worker, q));
        for (int i = 0; i < 100; i++)
                assert_ok(taskq_push(q, count, NULL, NULL));
        for (int i = 0; i < 500 && __atomic_load_n(&ran, __ATOMIC_SEQ_CST) < 100; i++)
                usleep(2000);
        assert_int_equal(__atomic_load_n(&ran, __ATOMIC_SEQ_CST), 100);
        taskq_close(q);
        assert_int_equal(pthread_join(t, NULL), 0);
        taskq_free(q);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_taskq),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
