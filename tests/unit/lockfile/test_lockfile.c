/* SPDX-License-Identifier: Apache-2.0 */
/* lockfile_acquire(): created 0600 with our pid, a second open file description (this
 * process or another) is refused with the holder's pid, the lock ends with the fd or the
 * process, a read-only lock file still locks, bad names, symlinks and FIFOs are refused,
 * and a lock file its holder unlinked is made anew by the next one; lockfile_release()
 * clears the pid and unlocks. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lockfile.h"
#include "testlib.h"

static char *path_of(const char *dir, const char *name) {
        char *p;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

static void put_file(const char *path, const char *data) {
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fputs(data, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

/* chattr +i / -i; false when the file system or our capabilities do not allow it. */
static bool set_immutable(const char *path, bool on) {
        int fd = open(path, O_RDONLY | O_CLOEXEC), flags = 0;
        bool ok;

        assert_true(fd >= 0);
        ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
        flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
        ok = ok && ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
        close(fd);
        return ok;
}

static void test_acquire(void **state) {
        char *dir = test_tmpdir(), *p = path_of(dir, "x.lock"), *data, want[32];
        int fd = -1, fd2 = -1;
        pid_t holder = -1;
        struct stat st;
        (void) state;

        assert_int_equal(lockfile_acquire(dir, "x.lock", &fd, &holder), 1); /* created */
        assert_true(fd >= 0);
        assert_int_equal(holder, -1); /* set only on -EBUSY */
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        data = test_read_file(p, NULL);
        snprintf(want, sizeof(want), "%d\n", (int) getpid());
        assert_string_equal(data, want);
        free(data);

        /* flock belongs to the open file description: a second one conflicts. */
        assert_errno(lockfile_acquire(dir, "x.lock", &fd2, &holder), EBUSY);
        assert_int_equal(fd2, -1);
        assert_int_equal(holder, getpid());
        assert_errno(lockfile_acquire(dir, "x.lock", &fd2, NULL), EBUSY);

        /* Released with the fd; the file stays and is reused (0: not created). */
        close(fd);
        assert_int_equal(lockfile_acquire(dir, "x.lock", &fd, &holder), 0);
        assert_ok(lockfile_release_unlink(dir, "x.lock", fd));
        assert_int_equal(access(p, F_OK), -1);
        assert_int_equal(lockfile_acquire(dir, "x.lock", &fd, &holder), 1);
        assert_ok(lockfile_release_unlink(dir, "x.lock", fd));
        assert_errno(lockfile_release_unlink(dir, "x.lock", -1), EBADF);
        free(p);
        test_rmdir_free(dir);
}

/* A child takes the lock and waits; we see its pid; when it dies the lock is free. */
static void test_other_process(void **state) {
        char *dir = test_tmpdir();
        int sync_pipe[2], fd = -1;
        pid_t child, holder = 0;
        char c;
        (void) state;

        assert_int_equal(pipe(sync_pipe), 0);
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                int cfd = -1;

                if (lockfile_acquire(dir, "agent.lock", &cfd, NULL) < 0)
                        _exit(1);
                if (write(sync_pipe[1], "x", 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        close(sync_pipe[1]);
        assert_int_equal(read(sync_pipe[0], &c, 1), 1);
        close(sync_pipe[0]);
        assert_errno(lockfile_acquire(dir, "agent.lock", &fd, &holder), EBUSY);
        assert_int_equal(holder, child);
        kill(child, SIGKILL);
        assert_int_equal(waitpid(child, NULL, 0), child);
        /* Died without cleaning up: nothing stale, the lock is free. */
        assert_int_equal(lockfile_acquire(dir, "agent.lock", &fd, &holder), 0);
        close(fd);
        test_rmdir_free(dir);
}

static void test_refused(void **state) {
        char *dir = test_tmpdir(), *p = path_of(dir, "l"), *missing = path_of(dir, "nope");
        int fd = -1;
        (void) state;

        assert_errno(lockfile_acquire(dir, "", &fd, NULL), EINVAL);
        assert_errno(lockfile_acquire(dir, "a/b", &fd, NULL), EINVAL);
        assert_errno(lockfile_acquire(dir, "..", &fd, NULL), EINVAL);
        assert_errno(lockfile_acquire(missing, "l", &fd, NULL), ENOENT);
        assert_int_equal(symlink("/etc/passwd", p), 0);
        assert_errno(lockfile_acquire(dir, "l", &fd, NULL), ELOOP);
        assert_int_equal(unlink(p), 0);
        assert_int_equal(mkfifo(p, 0600), 0);
        assert_errno(lockfile_acquire(dir, "l", &fd, NULL), EINVAL);
        assert_int_equal(fd, -1);
        free(p);
        free(missing);
        test_rmdir_free(dir);
}

/* An empty lock file held by someone who could not write a pid: holder 0. A lock file
 * we cannot open for writing (immutable: read-only for root too) still locks. */
static void test_holder_unknown(void **state) {
        char *dir = test_tmpdir(), *p = path_of(dir, "e.lock");
        int fd = -1, fd2 = -1, hold;
        pid_t holder = -1;
        (void) state;

        hold = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        assert_true(hold >= 0);
        assert_int_equal(flock(hold, LOCK_EX), 0);
        assert_errno(lockfile_acquire(dir, "e.lock", &fd, &holder), EBUSY);
        assert_int_equal(holder, 0);
        close(hold);

        put_file(p, "garbage\n");
        hold = open(p, O_RDONLY | O_CLOEXEC);
        assert_int_equal(flock(hold, LOCK_EX), 0);
        assert_errno(lockfile_acquire(dir, "e.lock", &fd, &holder), EBUSY);
        assert_int_equal(holder, 0);
        close(hold);

        if (set_immutable(p, true)) {
                char *data;

                assert_int_equal(open(p, O_RDWR | O_CLOEXEC), -1);
                assert_int_equal(lockfile_acquire(dir, "e.lock", &fd, NULL), 0);
                assert_errno(lockfile_acquire(dir, "e.lock", &fd2, NULL), EBUSY);
                close(fd);
                data = test_read_file(p, NULL);
                assert_string_equal(data, "garbage\n"); /* not written */
                free(data);
                assert_true(set_immutable(p, false));
        } else
                print_message("chattr +i not possible here, read-only lock file case skipped\n");
        free(p);
        test_rmdir_free(dir);
}

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

static void test_release_other_process(void **state) {
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
                cmocka_unit_test(test_acquire),
                cmocka_unit_test(test_other_process),
                cmocka_unit_test(test_refused),
                cmocka_unit_test(test_holder_unknown),
                cmocka_unit_test(test_acquire_release),
                cmocka_unit_test(test_release_other_process),
                cmocka_unit_test(test_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
