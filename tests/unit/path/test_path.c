/* SPDX-License-Identifier: Apache-2.0 */
/* path_canonicalize(): relative paths, "//", "." and "..", trailing slashes, missing tails,
 * symlinked prefixes; path_is_below() on the same forms. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path.h"
#include "testlib.h"

static void check(const char *in, const char *want) {
        char *got = NULL;

        assert_ok(path_canonicalize(in, &got));
        assert_string_equal(got, want);
        free(got);
}

static void test_canonicalize(void **state) {
        char *dir = test_tmpdir(), *real = realpath(dir, NULL), a[512], b[512], cwd[512];
        (void) state;

        check("/", "/");
        check("//", "/");
        check("/..", "/");
        check("/nonexistent-warden-test//x/./y/../z/", "/nonexistent-warden-test/x/z");
        snprintf(a, sizeof(a), "%s/data", dir);
        assert_int_equal(mkdir(a, 0700), 0);
        snprintf(b, sizeof(b), "%s/data/missing/sock", real);
        snprintf(a, sizeof(a), "%s/./data//missing/sock", dir);
        check(a, b);

        /* A symlink in the existing part is followed; the missing tail is kept. */
        snprintf(a, sizeof(a), "%s/link", dir);
        assert_int_equal(symlink("data", a), 0);
        snprintf(a, sizeof(a), "%s/link/agent/api.sock", dir);
        snprintf(b, sizeof(b), "%s/data/agent/api.sock", real);
        check(a, b);

        /* Relative: against the working directory. */
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(dir), 0);
        snprintf(b, sizeof(b), "%s/data/x", real);
        check("data/x", b);
        check("./link/../data/x/", b);
        assert_int_equal(chdir(cwd), 0);

        assert_errno(path_canonicalize("", &(char *){NULL}), EINVAL);
        free(real);
        test_rmdir_free(dir);
}

static void test_below(void **state) {
        char *dir = test_tmpdir(), a[512], b[512];
        (void) state;

        assert_true(path_is_below("/var/lib/warden/agent/api.sock", "/var/lib/warden/agent"));
        assert_true(path_is_below("/var/lib/warden/agent/", "/var/lib/warden/agent"));
        assert_true(path_is_below("/var/lib/warden/agent/x/../y.sock", "/var/lib/warden/agent/"));
        assert_true(path_is_below("/anything", "/"));
        assert_false(path_is_below("/var/lib/warden/agent2/api.sock", "/var/lib/warden/agent"));
        assert_false(path_is_below("/run/warden/agent.sock", "/var/lib/warden/agent"));
        assert_false(path_is_below("/var/lib/warden/agent/../api.sock", "/var/lib/warden/agent"));
        assert_false(path_is_below("/var/lib", "/var/lib/warden/agent"));
        assert_false(path_is_below("", "/var"));

        /* Through a symlink to the data directory. */
        snprintf(a, sizeof(a), "%s/data", dir);
        assert_int_equal(mkdir(a, 0700), 0);
        snprintf(b, sizeof(b), "%s/alias", dir);
        assert_int_equal(symlink(a, b), 0);
        snprintf(b, sizeof(b), "%s/alias/agent/api.sock", dir);
        assert_true(path_is_below(b, a));
        test_rmdir_free(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_canonicalize),
                cmocka_unit_test(test_below),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
