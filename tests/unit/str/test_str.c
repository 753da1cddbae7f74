/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "str.h"
#include "testlib.h"

static void test_dup_opt(void **state) {
        _cleanup_free_ char *s = NULL;
        char *n = (char *) "untouched";

        assert_ok(str_dup_opt("abc", &s));
        assert_string_equal(s, "abc");
        assert_ok(str_dup_opt(NULL, &n));
        assert_null(n);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_dup_opt),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
