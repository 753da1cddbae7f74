/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"
#include "testlib.h"

static void test_push_copy_equal_clear(void **state) {
        char **v = NULL, **c = NULL;
        size_t n = 0;
        (void) state;

        assert_ok(strv_push(&v, &n, "a.example.org"));
        assert_ok(strv_push(&v, &n, "b.example.org"));
        assert_errno(strv_push(&v, &n, NULL), EINVAL);
        assert_int_equal(n, 2);
        assert_string_equal(v[1], "b.example.org");

        assert_ok(strv_copy(v, n, &c));
        assert_ptr_not_equal(c[0], v[0]);
        assert_true(strv_equal(v, n, c, n));
        assert_false(strv_equal(v, n, c, 1));
        free(c[1]);
        c[1] = strdup("other");
        assert_false(strv_equal(v, n, c, n));
        strv_free(c, n);

        strv_clear(&v, &n);
        assert_null(v);
        assert_int_equal(n, 0);
        strv_free(NULL, 3);
}

static void test_copy_empty(void **state) {
        char **c = (char **) 1;
        (void) state;

        assert_ok(strv_copy(NULL, 0, &c));
        assert_null(c);
        assert_true(strv_equal(NULL, 0, NULL, 0));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_push_copy_equal_clear),
                cmocka_unit_test(test_copy_empty),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
