/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "wl_holder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "wl_proc.h"

#define FDINFO_MAX 4096

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir)

int wl_holder_parse_fdinfo_flags(const char *buf, size_t size, unsigned long *ret_flags) {
        static const char key[] = "flags:";
        size_t i = 0;

        while (i < size) {
                const char *line = buf + i;
                const char *nl = memchr(line, '\n', size - i);
                size_t len = nl ? (size_t) (nl - line) : size - i;

                if (len > strlen(key) && memcmp(line, key, strlen(key)) == 0) {
                        char num[32];
                        size_t j = strlen(key), k = 0;
                        char *end;

                        while (j < len && (line[j] == '\t' || line[j] == ' '))
                                j++;
                        while (j < len && k < sizeof(num) - 1 && line[j] >= '0' && line[j] <= '7')
                                num[k++] = line[j++];
                        num[k] = 0;
                        if (k == 0 || j != len)
                                return -EBADMSG;
                        errno = 0;
                        *ret_flags = strtoul(num, &end, 8);
                        return errno == 0 && *end == 0 ? 0 : -EBADMSG;
                }
                i += len + 1;
        }
        return -EBADMSG;
}

/* Whether fd `name` of the process has FD_CLOEXEC. */
static int fd_has_cloexec(int piddir, const char *name) {
        _cleanup_free_ char *info = NULL, *path = NULL;
        unsigned long flags;
        size_t size;
        int r;

        if (asprintf(&path, "fdinfo/%s", name) < 0)
                return -ENOMEM;
        r = wl_proc_read_at(piddir, path, FDINFO_MAX, &info, &size);
        if (r < 0)
                return r == -ENOENT ? 0 : r; /* closed meanwhile: not held */
        r = wl_holder_parse_fdinfo_flags(info, size, &flags);
        if (r < 0)
                return r;
        return (flags & O_CLOEXEC) != 0;
}

/* True when the name is a plain non-negative decimal (an fd), not "." or "..". */
static bool is_fd_name(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

int wl_holder_check(int piddir, uint64_t peer_ino, const char **ret_reason) {
        _cleanup_(closedirp) DIR *d = NULL;
        char want[64], link[64];
        bool held = false;
        size_t seen = 0;
        struct dirent *de;
        int fd, r;

        snprintf(want, sizeof(want), "socket:[%" PRIu64 "]", peer_ino);
        fd = openat(piddir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        while ((errno = 0, de = readdir(d))) {
                ssize_t k;

                if (!is_fd_name(de->d_name))
                        continue;
                if (++seen > WL_HOLDER_FDS_MAX) {
                        *ret_reason = "too many open files to search";
                        return 0;
                }
                k = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
                if (k < 0)
                        continue; /* closed meanwhile */
                link[k] = 0;
                if (!streq(link, want))
                        continue;
                held = true;
                r = fd_has_cloexec(piddir, de->d_name);
                if (r != 0)
                        return r; /* 1: proven; < 0: error */
        }
        if (errno != 0)
                return errno == ENOENT ? -ESRCH : -errno;
        *ret_reason =
                held ? "the connection is held without close-on-exec (exec after connect)"
                     : "the process does not hold the connection (fork or exec after connect)";
        return 0;
}
