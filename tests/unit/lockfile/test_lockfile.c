/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lockfile.h"
#include "testlib.h"

static void test_acquire_release(void **state) {
        char *dir = test_tmpdir(), path[512], *text;
        int fd = -EBADF, fd2 = -EBADF;
        pid_t holder = -1;
        struct stat st;
        (void) state;

        assert_ok(lockfile_acquire(dir, "x.lock", &fd, &holder));
        assert_true(fd >= 0);
        assert_int_equal(holder, -1); /* untouched on success */
        snprintf(path, sizeof(path), "%s/x.lock", dir);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        text = test_read_file(path, NULL);
        assert_non_null(text);
        assert_int_equal(atoi(text), getpid());
        free(text);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

        /* Another open file description, even in this process: busy, names us. */
        assert_errno(lockfile_acquire(dir, "x.lock", &fd2, &holder), EBUSY);
        assert_int_equal(fd2, -EBADF);
        assert_int_equal(holder, getpid());

        /* Another name in the same dir is another lock. */
        assert_ok(lockfile_acquire(dir, "y.lock", &fd2, NULL));
        fd2 = lockfile_release(fd2);
        assert_int_equal(fd2, -EBADF);

        fd = lockfile_release(fd);
        text = test_read_file(path, NULL);
        assert_non_null(text);
        assert_string_equal(text, ""); /* the pid is cleared on release */
        free(text);
        assert_ok(lockfile_acquire(dir, "x.lock", &fd, NULL));
        fd = lockfile_release(fd);
        test_rmdir_free(dir);
}

static void test_other_process(void **state) {
        char *dir = test_tmpdir();
        int p[2], fd = -EBADF, status;
        pid_t child, holder = 0;
        char c;
        (void) state;

        assert_int_equal(pipe(p), 0);
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                int cfd = -EBADF;
                if (lockfile_acquire(dir, "d.lock", &cfd, NULL) < 0)
                        _exit(1);
                if (write(p[1], "x", 1) != 1)
                        _exit(1);
                pause(); /* until killed: the kernel drops the lock */
                _exit(0);
        }
        assert_int_equal(read(p[0], &c, 1), 1);
        assert_errno(lockfile_acquire(dir, "d.lock", &fd, &holder), EBUSY);
        assert_int_equal(holder, child);
        kill(child, SIGKILL);
        assert_int_equal(waitpid(child, &status, 0), child);
        /* The dead holder's pid is still written; the lock itself is free. */
        assert_ok(lockfile_acquire(dir, "d.lock", &fd, &holder));
        fd = lockfile_release(fd);
        close(p[0]);
        close(p[1]);
        test_rmdir_free(dir);
}

static void test_errors(void **state) {
        char *dir = test_tmpdir(), path[512], target[512];
        int fd = -EBADF;
        (void) state;

        snprintf(path, sizeof(path), "%s/missing", dir);
        assert_errno(lockfile_acquire(path, "a.lock", &fd, NULL), ENOENT);
        assert_errno(lockfile_acquire(dir, "a/b", &fd, NULL), EINVAL);
        assert_errno(lockfile_acquire(dir, "", &fd, NULL), EINVAL);
        assert_errno(lockfile_acquire(NULL, "a", &fd, NULL), EINVAL);
        assert_errno(lockfile_acquire(dir, "a", NULL, NULL), EINVAL);

        snprintf(target, sizeof(target), "%s/target", dir);
        snprintf(path, sizeof(path), "%s/link.lock", dir);
        assert_int_equal(symlink(target, path), 0);
        assert_errno(lockfile_acquire(dir, "link.lock", &fd, NULL), ELOOP);
        assert_int_equal(access(target, F_OK), -1); /* nothing created through the link */

        snprintf(path, sizeof(path), "%s/sub.lock", dir);
        assert_int_equal(mkdir(path, 0700), 0);
        assert_errno(lockfile_acquire(dir, "sub.lock", &fd, NULL), EISDIR);
        snprintf(path, sizeof(path), "%s/fifo.lock", dir);
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_errno(lockfile_acquire(dir, "fifo.lock", &fd, NULL), EINVAL);
        assert_int_equal(fd, -EBADF);
        assert_int_equal(lockfile_release(-1), -EBADF);
        test_rmdir_free(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_acquire_release),
                cmocka_unit_test(test_other_process),
                cmocka_unit_test(test_errors),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
