/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

/* Directory part of path ("." when there is none), malloc'd. */
static char *dir_of(const char *path) {
        const char *slash = strrchr(path, '/');

        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t) (slash - path));
}

static int write_all(int fd, const void *data, size_t len) {
        const uint8_t *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int file_fsync_directory(const char *dir) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return log_debug_errno(-errno, "Failed to open directory %s: %m", dir);
        if (fsync(fd) < 0)
                return log_debug_errno(-errno, "Failed to fsync directory %s: %m", dir);
        return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        _cleanup_free_ char *dir = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *slash;
        int r;

        if (!path || !*path || (!data && len > 0))
                return -EINVAL;
        slash = strrchr(path, '/');
        dir = dir_of(path);
        if (!dir || asprintf(&tmp, "%.*s.%s.tmp-XXXXXX", slash ? (int) (slash - path + 1) : 0, path,
                             slash ? slash + 1 : path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC); /* O_EXCL: never through a planted symlink */
        if (fd < 0)
                return log_debug_errno(-errno, "Failed to create %s: %m", tmp);
        /* mkostemp() made it 0600; make the mode exact. */
        r = fchmod(fd, mode & 07777) < 0 ? -errno : 0;
        if (r >= 0)
                r = write_all(fd, data, len);
        if (r >= 0 && (fsync(fd) < 0 || close(TAKE_FD(fd)) < 0))
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return log_debug_errno(r, "Failed to write %s: %m", path);
        }
        return file_fsync_directory(dir);
}
