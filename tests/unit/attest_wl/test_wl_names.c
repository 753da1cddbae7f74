/* SPDX-License-Identifier: Apache-2.0 */
/* The uid/gid name cache (wl_names.c) and the fdinfo flags parser of the holder proof
 * (wl_holder.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"
#include "wl_holder.h"
#include "wl_names.h"
#include "wl_test.h"

/* A uid no system has. */
#define NO_SUCH_ID 3999999

static void touch_later(const char *path) {
        struct timespec t[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_NOW}};

        usleep(10000); /* a different mtime even on coarse clocks */
        assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

static void test_names_cache(void **state) {
        char *dir = test_tmpdir(), passwd[PATH_MAX], group[PATH_MAX];
        _cleanup_(wl_names_freep) WlNames *n = NULL;
        unsigned long hits, misses;
        struct passwd *pw = getpwuid(0);
        struct group *gr = getgrgid(0);
        char *name = NULL;

        (void) state;
        assert_non_null(dir);
        WL_PATHF(passwd, "%s/passwd", dir);
        WL_PATHF(group, "%s/group", dir);
        wl_test_write_file(passwd, "x", 1);
        wl_test_write_file(group, "x", 1);
        assert_errno(wl_names_new(NULL, group, &n), EINVAL);
        assert_ok(wl_names_new(passwd, group, &n));

        /* uid 0 twice: NSS once, then the cache. */
        assert_ok(wl_names_user(n, 0, &name));
        assert_string_equal(name, pw ? pw->pw_name : "");
        free(name);
        assert_ok(wl_names_user(n, 0, &name));
        free(name);
        wl_names_stats(n, &hits, &misses);
        assert_int_equal(hits, 1);
        assert_int_equal(misses, 1);
        /* An id without a name is remembered as such. */
        name = (char *) "x";
        assert_ok(wl_names_user(n, NO_SUCH_ID, &name));
        assert_null(name);
        assert_ok(wl_names_user(n, NO_SUCH_ID, &name));
        assert_null(name);
        /* Groups are their own table. */
        assert_ok(wl_names_group(n, 0, &name));
        assert_string_equal(name, gr ? gr->gr_name : "");
        free(name);
        wl_names_stats(n, &hits, &misses);
        assert_int_equal(hits, 2);
        assert_int_equal(misses, 3);

        /* A change to either file empties the cache. */
        touch_later(passwd);
        assert_ok(wl_names_user(n, 0, &name));
        free(name);
        touch_later(group);
        assert_ok(wl_names_group(n, 0, &name));
        free(name);
        wl_names_stats(n, &hits, &misses);
        assert_int_equal(hits, 2);
        assert_int_equal(misses, 5);
        /* So does its removal (a rewrite by rename shows as another inode too). */
        assert_int_equal(unlink(passwd), 0);
        assert_ok(wl_names_user(n, 0, &name));
        free(name);
        wl_names_stats(n, &hits, &misses);
        assert_int_equal(misses, 6);
        test_rmdir_free(dir);
}

static void test_fdinfo_flags(void **state) {
        static const struct {
                const char *text;
                int r;
                unsigned long flags;
        } cases[] = {
                {"pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1234\n", 0, 02000002},
                {"pos:\t0\nflags:\t00000002\n", 0, 02},
                {"flags:\t0\n", 0, 0},
                {"flags: 02000000", 0, 02000000}, /* no newline at the end */
                {"pos:\t0\nmnt_id:\t15\n", -EBADMSG, 0},
                {"flags:\t\n", -EBADMSG, 0},
                {"flags:\t0200x\n", -EBADMSG, 0},
                {"flags:\t08\n", -EBADMSG, 0}, /* not octal */
                {"xflags:\t02\n", -EBADMSG, 0},
                {"", -EBADMSG, 0},
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                unsigned long f = 12345;
                int r = wl_holder_parse_fdinfo_flags(cases[i].text, strlen(cases[i].text), &f);

                assert_int_equal(r, cases[i].r);
                if (r == 0)
                        assert_int_equal(f, cases[i].flags);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names_cache),
                cmocka_unit_test(test_fdinfo_flags),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
