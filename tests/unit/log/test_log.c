/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "testlib.h"

static void test_level_from_string(void **state) {
        (void) state;
        assert_int_equal(log_level_from_string("debug"), LOG_DEBUG);
        assert_int_equal(log_level_from_string("INFO"), LOG_INFO);
        assert_int_equal(log_level_from_string("warn"), LOG_WARNING);
        assert_int_equal(log_level_from_string("error"), LOG_ERR);
        assert_errno(log_level_from_string("loud"), EINVAL);
        assert_errno(log_level_from_string(""), EINVAL);
        assert_errno(log_level_from_string(NULL), EINVAL);
        /* Names read back as the same level. */
        for (int l = LOG_ERR; l <= LOG_DEBUG; l++)
                assert_int_equal(log_level_from_string(log_level_to_string(l)), l);
        assert_string_equal(log_level_to_string(LOG_CRIT), "error");
        assert_string_equal(log_level_to_string(LOG_WARNING), "warning");
}

static void test_errno_returned_and_filtered(void **state) {
        char *dir = test_tmpdir(), path[512];
        int saved = dup(STDERR_FILENO);
        (void) state;

        snprintf(path, sizeof(path), "%s/err.log", dir);
        assert_non_null(freopen(path, "w", stderr));
        log_set_component("unit");
        log_set_max_level(LOG_INFO);
        assert_int_equal(log_error_errno(-ENOENT, "open %s: %m", "x"), -ENOENT);
        assert_int_equal(log_error_errno(EACCES, "positive in"), -EACCES);
        /* Filtered out: still returns the error. */
        assert_int_equal(log_debug_errno(-EPERM, "hidden"), -EPERM);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);

        size_t n;
        char *text = test_read_file(path, &n);
        assert_non_null(text);
        assert_non_null(strstr(text, "ERROR unit: open x: No such file or directory"));
        assert_null(strstr(text, "hidden"));
        free(text);
        test_rmdir_free(dir);
}

static void test_environment(void **state) {
        (void) state;
        setenv("WARDEN_LOG_LEVEL", "debug", 1);
        assert_ok(log_parse_environment());
        assert_int_equal(log_get_max_level(), LOG_DEBUG);
        setenv("WARDEN_LOG_LEVEL", "chatty", 1);
        assert_errno(log_parse_environment(), EINVAL);
        unsetenv("WARDEN_LOG_LEVEL");
        log_set_max_level(LOG_INFO);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_level_from_string),
                cmocka_unit_test(test_errno_returned_and_filtered),
                cmocka_unit_test(test_environment),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
