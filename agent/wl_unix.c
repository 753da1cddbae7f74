/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "wl_unix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "wl_proc.h"
#include "wl_sha256cache.h"

#define DELETED_SUFFIX " (deleted)"

/* Adds "<key>:<value>" under type "unix". */
static int add_unix(SelectorSet *set, const char *key, const char *value) {
        _cleanup_free_ char *v = NULL;

        if (asprintf(&v, "%s:%s", key, value) < 0)
                return -ENOMEM;
        return selector_set_add(set, "unix", v);
}

static int add_unix_number(SelectorSet *set, const char *key, unsigned long n) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%lu", n);
        return add_unix(set, key, buf);
}

/* For text we don't control (names, paths): a value the selector rules reject (non-ASCII,
 * too long...) is left out, which can only make fewer entries match. */
static int add_unix_text(SelectorSet *set, const char *key, const char *value) {
        int r = add_unix(set, key, value);

        if (r == -EINVAL) {
                log_debug("unix:%s value is not a valid selector value, skipping", key);
                return 0;
        }
        return r;
}

static int add_group(
        WlNames *names, SelectorSet *set, const char *id_key, const char *name_key, gid_t gid) {
        _cleanup_free_ char *name = NULL;
        int r;

        r = add_unix_number(set, id_key, gid);
        if (r < 0)
                return r;
        r = wl_names_group(names, gid, &name);
        if (r < 0 || !name)
                return r;
        return add_unix_text(set, name_key, name);
}

int wl_unix_add_ids(WlNames *names, SelectorSet *set, uid_t uid, gid_t gid) {
        _cleanup_free_ char *name = NULL;
        int r;

        r = add_unix_number(set, "uid", uid);
        if (r < 0)
                return r;
        r = wl_names_user(names, uid, &name);
        if (r < 0)
                return r;
        if (name) {
                r = add_unix_text(set, "user", name);
                if (r < 0)
                        return r;
        }
        return add_group(names, set, "gid", "group", gid);
}

int wl_unix_add_groups(WlNames *names, SelectorSet *set, int piddir) {
        _cleanup_free_ char *status = NULL;
        gid_t gids[ATTESTOR_GROUPS_MAX];
        size_t size, n;
        int r;

        r = wl_proc_read_at(piddir, "status", WL_PROC_STATUS_MAX, &status, &size);
        if (r == -EFBIG)
                return log_debug_errno(-E2BIG, "status file too big (too many groups?)");
        if (r < 0)
                return log_debug_errno(r, "Failed to read status: %m");
        r = wl_proc_parse_groups(status, size, gids, ELEMENTSOF(gids), &n);
        if (r == -E2BIG)
                return log_debug_errno(r, "More than %d supplementary groups", ATTESTOR_GROUPS_MAX);
        if (r < 0)
                return log_debug_errno(r, "Unparsable Groups: line in status");
        for (size_t i = 0; i < n; i++) {
                r = add_group(names, set, "supplementary_gid", "supplementary_group", gids[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Reads the exe link. *ret is NULL when there is no usable path: no access, kernel thread
 * or zombie, deleted or replaced binary, a path that isn't absolute. */
static int exe_path(int piddir, char **ret) {
        char target[PATH_MAX + 1];
        size_t sl = strlen(DELETED_SUFFIX);
        ssize_t k;

        *ret = NULL;
        k = readlinkat(piddir, "exe", target, sizeof(target));
        if (k < 0) {
                int r = -errno;

                if (r != -ENOENT && r != -EACCES && r != -EPERM)
                        return r;
                log_debug_errno(r, "Can't read exe link (%m), no unix:path");
                return 0;
        }
        if ((size_t) k >= sizeof(target)) {
                log_debug("exe link too long, no unix:path");
                return 0;
        }
        target[k] = 0;
        if ((size_t) k >= sl && streq(target + k - sl, DELETED_SUFFIX)) {
                log_debug("Executable was deleted, no unix:path");
                return 0;
        }
        if (target[0] != '/') {
                log_debug("exe link is not an absolute path, no unix:path");
                return 0;
        }
        *ret = strdup(target);
        return *ret ? 0 : -ENOMEM;
}

static int add_sha256(Attestor *a, SelectorSet *set, int fd) {
        char hex[WL_SHA256_HEX_SIZE];
        int r;

        r = attestor_hash_file(a, fd, hex);
        if (r == -EFBIG || r == -EAGAIN) {
                log_debug_errno(r, "Executable too big or changing (%m), no unix:sha256");
                return 0;
        }
        if (r < 0)
                return log_debug_errno(r, "Failed to hash executable: %m");
        return add_unix(set, "sha256", hex);
}

int wl_unix_open_exe(int piddir, int *ret_fd, char **ret_path, struct stat *ret_st) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        *ret_fd = -EBADF;
        *ret_path = NULL;
        /* The process's executable itself, not its path (which may name another file by
         * now); opened before the link is read, so an exec in between shows up as a
         * different file when the caller compares. */
        fd = openat(piddir, "exe", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                if (r != -EACCES && r != -EPERM && r != -ENOENT)
                        return r;
                log_debug_errno(r, "Can't open executable (%m), no unix:path or unix:sha256");
                return 0;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_nlink == 0 || !S_ISREG(st.st_mode))
                log_debug("Executable unlinked or not a file, no unix:path");
        else {
                r = exe_path(piddir, &path);
                if (r < 0)
                        return r;
        }
        *ret_fd = TAKE_FD(fd);
        *ret_path = TAKE_PTR(path);
        *ret_st = st;
        return 0;
}

int wl_unix_add_exe(Attestor *a, SelectorSet *set, int exe_fd, const char *path) {
        int r;

        if (exe_fd < 0 || !path)
                return 0;
        r = add_unix_text(set, "path", path);
        if (r < 0)
                return r;
        return add_sha256(a, set, exe_fd);
}
