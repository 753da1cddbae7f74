/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

/* How often a lock file replaced between our open and our flock (by a holder that
 * unlinked it, lockfile_release_unlink()) is opened again before giving up. */
#define LOCKFILE_ATTEMPTS 8

#define LOCKFILE_OFLAGS (O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK)

/* Opens (or creates) the lock file: read-write when possible, read-only on a read-only
 * file or file system (flock works on any fd; the pid is then not written). -EAGAIN when
 * another process created it between our two opens. */
static int open_lockfile(int dfd, const char *name, bool *ret_created, bool *ret_writable) {
        int fd;

        fd = openat(dfd, name, O_RDWR | LOCKFILE_OFLAGS);
        if (fd >= 0) {
                *ret_created = false;
                *ret_writable = true;
                return fd;
        }
        if (errno == ENOENT) {
                fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | LOCKFILE_OFLAGS, 0600);
                if (fd >= 0) {
                        *ret_created = *ret_writable = true;
                        return fd;
                }
                return errno == EEXIST ? -EAGAIN : -errno;
        }
        if (errno != EROFS && errno != EACCES && errno != EPERM && errno != ETXTBSY)
                return -errno;
        fd = openat(dfd, name, O_RDONLY | LOCKFILE_OFLAGS);
        if (fd < 0)
                return -errno;
        *ret_created = *ret_writable = false;
        return fd;
}

/* The pid the holder wrote into the file; 0 when there is none (yet). */
static pid_t read_holder(int fd) {
        char buf[32];
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        char *end;
        long v;

        if (n <= 0)
                return 0;
        buf[n] = '\0';
        errno = 0;
        v = strtol(buf, &end, 10);
        if (errno != 0 || end == buf || (*end != '\n' && *end != '\0') || v <= 0 || v > 0x7fffffff)
                return 0;
        return (pid_t) v;
}

/* "<pid>\n" over the old content, then cut to length: a reader never sees an empty file
 * once a pid was written. Failures are not fatal: the lock holds without the pid. */
static void write_pid(int fd) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());

        if (pwrite(fd, buf, (size_t) n, 0) != n || ftruncate(fd, n) < 0)
                log_debug("lockfile: cannot write our pid into the lock file: %m");
}

/* One attempt: open, lock, and check that the locked inode is still the one named. */
static int lock_once(int dfd, const char *name, int *ret_fd, pid_t *ret_holder) {
        _cleanup_close_ int fd = -EBADF;
        bool created = false, writable = false;
        struct stat st, now;

        fd = open_lockfile(dfd, name, &created, &writable);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK)
                        return -errno;
                if (ret_holder)
                        *ret_holder = read_holder(fd);
                return -EBUSY;
        }
        /* The holder before us may have unlinked the file after we opened it. */
        if (fstatat(dfd, name, &now, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? -EAGAIN : -errno;
        if (now.st_dev != st.st_dev || now.st_ino != st.st_ino)
                return -EAGAIN;
        if (writable)
                write_pid(fd);
        *ret_fd = TAKE_FD(fd);
        return created ? 1 : 0;
}

int lockfile_acquire(const char *dir, const char *name, int *ret_fd, pid_t *ret_holder) {
        _cleanup_close_ int dfd = -EBADF;
        int r = -EAGAIN;

        if (!dir || !name || !ret_fd || !*name || strchr(name, '/') || streq(name, ".") ||
            streq(name, ".."))
                return -EINVAL;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        for (unsigned i = 0; i < LOCKFILE_ATTEMPTS && r == -EAGAIN; i++)
                r = lock_once(dfd, name, ret_fd, ret_holder);
        if (r != -EAGAIN)
                return r;
        /* Replaced under us every time: somebody keeps taking it. */
        if (ret_holder)
                *ret_holder = 0;
        return -EBUSY;
}

int lockfile_release(int fd) {
        if (fd < 0)
                return -EBADF;
        /* Still holding the lock here: nobody else writes the file meanwhile. */
        if (ftruncate(fd, 0) < 0)
                log_debug_errno(-errno, "lockfile: cannot clear the recorded pid, ignoring: %m");
        (void) close(fd);
        return -EBADF;
}

int lockfile_release_unlink(const char *dir, const char *name, int fd) {
        _cleanup_free_ char *path = NULL;
        int r = 0;

        if (fd < 0)
                return -EBADF;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                r = -ENOMEM;
        else if (unlink(path) < 0)
                r = -errno;
        (void) close(fd);
        return r;
}
