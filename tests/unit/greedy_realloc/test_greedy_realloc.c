/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "greedy_realloc.h"
#include "testlib.h"

/* Appends grow at least twofold, from GREEDY_REALLOC_MIN, and keep what was there. */
static void test_grow(void **state) {
        _cleanup_free_ int *v = NULL;
        size_t allocated = 0, growths = 0;

        assert_ok(GREEDY_REALLOC(v, allocated, 0));
        assert_null(v);
        assert_int_equal(allocated, 0);
        assert_ok(GREEDY_REALLOC(v, allocated, 1));
        assert_non_null(v);
        assert_int_equal(allocated, GREEDY_REALLOC_MIN);
        for (int i = 0; i < 1000; i++) {
                size_t before = allocated;

                assert_ok(GREEDY_REALLOC(v, allocated, (size_t) i + 1));
                if (allocated != before) {
                        assert_true(allocated >= 2 * before);
                        growths++;
                }
                v[i] = i;
        }
        assert_int_equal(allocated, 1024);
        assert_int_equal(growths, 7); /* 8 -> 16 -> ... -> 1024 */
        for (int i = 0; i < 1000; i++)
                assert_int_equal(v[i], i);
}

/* A need beyond double the allocation is met exactly; one that fits changes nothing. */
static void test_need(void **state) {
        _cleanup_free_ char *s = NULL;
        size_t allocated = 0;
        char *before;

        assert_ok(GREEDY_REALLOC(s, allocated, 4097));
        assert_int_equal(allocated, 4097);
        memset(s, 'x', allocated);
        assert_ok(GREEDY_REALLOC(s, allocated, 4098));
        assert_int_equal(allocated, 8194);
        before = s;
        assert_ok(GREEDY_REALLOC(s, allocated, 8194));
        assert_ok(GREEDY_REALLOC(s, allocated, 1));
        assert_ptr_equal(s, before);
        assert_int_equal(allocated, 8194);
        assert_int_equal(s[4096], 'x');
}

/* Sizes that overflow: -ENOMEM, the array untouched. */
static void test_overflow(void **state) {
        _cleanup_free_ uint64_t *v = NULL;
        size_t allocated = 0;
        uint64_t *before;

        assert_ok(GREEDY_REALLOC(v, allocated, 3));
        v[2] = 42;
        before = v;
        assert_errno(GREEDY_REALLOC(v, allocated, SIZE_MAX / sizeof(uint64_t) + 1), ENOMEM);
        assert_errno(GREEDY_REALLOC(v, allocated, SIZE_MAX), ENOMEM);
        assert_ptr_equal(v, before);
        assert_int_equal(allocated, GREEDY_REALLOC_MIN);
        assert_int_equal(v[2], 42);
        assert_errno(greedy_realloc((void **) &v, &allocated, 1, 0), EINVAL);
        assert_errno(greedy_realloc(NULL, &allocated, 1, 1), EINVAL);
}

/* GREEDY_REALLOC0 zeroes every added element, also across several growths. */
static void test_zero(void **state) {
        _cleanup_free_ void **t = NULL;
        size_t allocated = 0;

        assert_ok(GREEDY_REALLOC0(t, allocated, 5));
        for (size_t i = 0; i < allocated; i++)
                assert_null(t[i]);
        t[0] = &allocated;
        t[allocated - 1] = &allocated;
        assert_ok(GREEDY_REALLOC0(t, allocated, 100));
        assert_int_equal(allocated, 100);
        assert_ptr_equal(t[0], &allocated);
        assert_ptr_equal(t[GREEDY_REALLOC_MIN - 1], &allocated);
        for (size_t i = GREEDY_REALLOC_MIN; i < allocated; i++)
                assert_null(t[i]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_grow),
                cmocka_unit_test(test_need),
                cmocka_unit_test(test_overflow),
                cmocka_unit_test(test_zero),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
