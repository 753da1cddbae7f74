/* SPDX-License-Identifier: Apache-2.0 */
/* A daemon's `run` start-up (daemon.h): the end of option parsing and the exit status
 * of a run(). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"
#include "testlib.h"

static int run_result;

static int run_returning(int argc, char **argv) {
        return run_result;
}

static void test_daemon_main(void **state) {
        run_result = 0;
        assert_int_equal(daemon_main(1, (char *[]){"run", NULL}, "test", run_returning), 0);
        run_result = 1;
        assert_int_equal(daemon_main(1, (char *[]){"run", NULL}, "test", run_returning), 0);
        run_result = -EINVAL;
        assert_int_equal(daemon_main(1, (char *[]){"run", NULL}, "test", run_returning), 1);
}

static void test_daemon_options_parsed(void **state) {
        log_set_max_level(LOG_WARNING);
        /* -ECANCELED: the help was printed, stop with status 0. */
        assert_int_equal(daemon_options_parsed(-ECANCELED, NULL, LOG_DEBUG), 0);
        assert_errno(daemon_options_parsed(-EINVAL, "-frob: unknown flag", LOG_DEBUG), EINVAL);
        assert_errno(daemon_options_parsed(-ENOMEM, NULL, LOG_DEBUG), ENOMEM);
        assert_int_equal(log_get_max_level(), LOG_WARNING);

        assert_int_equal(daemon_options_parsed(0, NULL, LOG_DEBUG), 1);
        assert_int_equal(log_get_max_level(), LOG_DEBUG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_daemon_main),
                cmocka_unit_test(test_daemon_options_parsed),
        };

        unsetenv("WARDEN_LOG_LEVEL");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
