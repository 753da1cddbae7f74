/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mkdir.h"
#include "testlib.h"

static mode_t mode_of(const char *path) {
        struct stat st;

        assert_int_equal(stat(path, &st), 0);
        return st.st_mode & 07777;
}

static void test_mkdir(void **state) {
        char *dir = test_tmpdir(), p[512], f[512];
        mode_t old = umask(0);
        (void) state;

        snprintf(p, sizeof(p), "%s/a/b/c", dir);
        assert_ok(mkdir_p(p, 0700));
        assert_int_equal(mode_of(p), 0700);
        snprintf(f, sizeof(f), "%s/a/b", dir);
        assert_int_equal(mode_of(f), 0755);
        assert_ok(mkdir_p(p, 0755)); /* exists: mode left alone */
        assert_int_equal(mode_of(p), 0700);

        snprintf(p, sizeof(p), "%s/s/t/api.sock", dir);
        assert_ok(mkdir_parents(p));
        snprintf(f, sizeof(f), "%s/s/t", dir);
        assert_int_equal(mode_of(f), 0755);
        assert_int_equal(access(p, F_OK), -1);

        snprintf(f, sizeof(f), "%s/file", dir);
        fclose(fopen(f, "w"));
        assert_errno(mkdir_p(f, 0700), ENOTDIR);
        snprintf(p, sizeof(p), "%s/file/sub", dir);
        assert_errno(mkdir_p(p, 0700), ENOTDIR);
        umask(old);
        test_rmdir_free(dir);
}

/* What the *_created variants report, and rmdir_up_to() taking exactly that back. */
static void test_created(void **state) {
        char *dir = test_tmpdir(), p[512], f[512], *created = NULL;
        (void) state;

        snprintf(p, sizeof(p), "%s/x/y/z", dir);
        assert_ok(mkdir_p_created(p, 0700, &created));
        snprintf(f, sizeof(f), "%s/x", dir);
        assert_string_equal(created, f);
        assert_int_equal(mode_of(p), 0700);
        free(created);
        assert_ok(mkdir_p_created(p, 0700, &created)); /* all there: nothing made */
        assert_null(created);
        strcat(p, "//"); /* trailing slashes as a user may give them */
        assert_ok(rmdir_up_to(p, f));
        assert_int_equal(access(f, F_OK), -1);
        assert_int_equal(access(dir, F_OK), 0); /* above top: kept */

        snprintf(f, sizeof(f), "%s/x", dir);
        assert_ok(mkdir_p(f, 0755));
        snprintf(p, sizeof(p), "%s/x/s/t/api.sock", dir);
        assert_ok(mkdir_parents_created(p, &created));
        snprintf(f, sizeof(f), "%s/x/s", dir);
        assert_string_equal(created, f);
        snprintf(p, sizeof(p), "%s/x/s/t", dir);
        free(created);

        /* Not empty: kept, and so is everything above. */
        snprintf(f, sizeof(f), "%s/x/s/t/keep", dir);
        fclose(fopen(f, "w"));
        snprintf(f, sizeof(f), "%s/x/s", dir);
        assert_errno(rmdir_up_to(p, f), ENOTEMPTY);
        assert_int_equal(access(p, F_OK), 0);
        snprintf(f, sizeof(f), "%s/other", dir);
        assert_errno(rmdir_up_to(p, f), EINVAL); /* not below top */
        assert_errno(mkdir_p_created("", 0700, &created), ENOENT);
        test_rmdir_free(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mkdir),
                cmocka_unit_test(test_created),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
