/* SPDX-License-Identifier: Apache-2.0 */
/* An exclusive flock(2) on a file in a daemon's data directory, naming its holder. */
#define _GNU_SOURCE

#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "parse.h"

/* How long a loser waits for the winner to write its pid (it does so right after
 * flock() returns): 20 tries, 5 ms apart. */
#define HOLDER_READ_TRIES 20
#define HOLDER_READ_DELAY_NS (5 * 1000 * 1000)

/* The pid recorded in the file; 0 when there is none (yet) or it does not parse. */
static pid_t read_holder(int fd) {
        for (int i = 0; i < HOLDER_READ_TRIES; i++) {
                const struct timespec delay = {0, HOLDER_READ_DELAY_NS};
                char buf[32];
                ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
                uint32_t pid;

                if (n > 0) {
                        buf[n] = '\0';
                        buf[strcspn(buf, "\n")] = '\0';
                        if (parse_uint32(buf, &pid) >= 0 && pid > 0 && pid <= INT32_MAX)
                                return (pid_t) pid;
                }
                (void) nanosleep(&delay, NULL);
        }
        return 0;
}

static int write_pid(int fd) {
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());

        if (ftruncate(fd, 0) < 0)
                return -errno;
        if (pwrite(fd, buf, (size_t) len, 0) != len)
                return errno > 0 ? -errno : -EIO;
        return 0;
}

int lockfile_acquire(const char *dir, const char *name, int *ret_fd, pid_t *ret_holder) {
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        struct stat st;
        int r;

        if (!dir || !*dir || !name || !*name || strchr(name, '/') || !ret_fd)
                return -EINVAL;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        fd = openat(dfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
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
        r = write_pid(fd);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int lockfile_release(int fd) {
        if (fd < 0)
                return -EBADF;
        /* Still holding the lock here: nobody else writes the file meanwhile. */
        if (ftruncate(fd, 0) < 0)
                log_debug_errno(-errno, "Failed to clear the lock file's pid, ignoring: %m");
        (void) close(fd);
        return -EBADF;
}
