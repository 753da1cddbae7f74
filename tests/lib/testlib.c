/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "greedy_realloc.h"

char *test_tmpdir(void) {
        const char *base = getenv("TMPDIR");
        char *p;

        if (!base || !*base)
                base = "/tmp";
        if (asprintf(&p, "%s/wtest.XXXXXX", base) < 0)
                return NULL;
        if (!mkdtemp(p)) {
                free(p);
                return NULL;
        }
        return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

void test_rmdir_free(char *path) {
        if (!path)
                return;
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(path);
}

int test_read_fd(int fd, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, allocated = 0;

        for (;;) {
                ssize_t k;
                int r = GREEDY_REALLOC(buf, allocated, n + 65536);

                if (r < 0)
                        return r;
                k = read(fd, buf + n, allocated - n - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0 && errno == ECONNRESET)
                        break; /* a peer that closed early: what came is all there is */
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = n;
        return 0;
}

char *test_read_file(const char *path, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        char *buf = NULL;

        if (fd < 0 || test_read_fd(fd, &buf, ret_size) < 0)
                return NULL;
        return buf;
}

/* Copies src to dst with mode (the whole file). */
static void copy_mode(const char *src, const char *dst, mode_t mode) {
        size_t n = 0;
        char *data = test_read_file(src, &n);
        int fd;

        assert_non_null(data);
        fd = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, n), (ssize_t) n);
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(close(fd), 0);
        free(data);
}

/* When the environment variable var (LSAN_OPTIONS, TSAN_OPTIONS) names a suppressions
 * file, copies it into dir as name and points var at the copy. */
static void copy_suppressions(const char *var, const char *dir, const char *name) {
        const char *opts = getenv(var), *supp, *end;
        _cleanup_free_ char *orig = NULL, *copy = NULL, *env = NULL;

        supp = opts ? strstr(opts, "suppressions=") : NULL;
        if (!supp)
                return;
        supp += strlen("suppressions=");
        end = supp + strcspn(supp, ":");
        orig = strndup(supp, (size_t) (end - supp));
        assert_non_null(orig);
        assert_true(asprintf(&copy, "%s/%s", dir, name) > 0);
        copy_mode(orig, copy, 0644);
        assert_true(asprintf(&env, "%.*s%s%s", (int) (supp - opts), opts, copy, end) > 0);
        assert_int_equal(setenv(var, env, 1), 0);
}

char *test_copy_for_other_uid(const char *path, const char *dir) {
        _cleanup_free_ char *copy = strdup(path);
        char *dst = NULL;

        assert_non_null(copy);
        assert_int_equal(chmod(dir, 0755), 0);
        assert_true(asprintf(&dst, "%s/%s", dir, basename(copy)) > 0);
        copy_mode(path, dst, 0755);
        copy_suppressions("LSAN_OPTIONS", dir, "lsan.supp");
        copy_suppressions("TSAN_OPTIONS", dir, "tsan.supp");
        return dst;
}
