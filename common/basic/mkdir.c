/* SPDX-License-Identifier: Apache-2.0 */
#include "mkdir.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"

/* mkdir of every parent of path (and path itself with last_mode when with_last); the first
 * one made goes to *ret_created (may be NULL). */
static int mkdir_chain(const char *path, bool with_last, mode_t last_mode, char **ret_created) {
        _cleanup_free_ char *p = strdup(path), *created = NULL;
        size_t n;

        if (!p)
                return -ENOMEM;
        n = strlen(p);
        if (n == 0)
                return with_last ? -ENOENT : 0;
        for (char *s = p + 1;; s++) {
                bool last = *s == '\0';

                if (*s != '/' && !last)
                        continue;
                if (last && (!with_last || n == 0 || p[n - 1] == '/'))
                        break;
                *s = '\0';
                if (mkdir(p, last ? last_mode : 0755) >= 0) {
                        if (!created && ret_created && !(created = strdup(p)))
                                return -ENOMEM;
                } else if (errno != EEXIST)
                        return -errno;
                if (last)
                        break;
                *s = '/';
        }
        if (ret_created)
                *ret_created = TAKE_PTR(created);
        return 0;
}

int mkdir_parents(const char *path) {
        return mkdir_chain(path, false, 0, NULL);
}

int mkdir_parents_created(const char *path, char **ret_created) {
        return mkdir_chain(path, false, 0, ret_created);
}

int mkdir_p_created(const char *path, mode_t mode, char **ret_created) {
        _cleanup_free_ char *created = NULL;
        struct stat st;
        int r;

        r = mkdir_chain(path, true, mode, &created);
        if (r < 0)
                return r;
        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        if (ret_created)
                *ret_created = TAKE_PTR(created);
        return 0;
}

int mkdir_p(const char *path, mode_t mode) {
        return mkdir_p_created(path, mode, NULL);
}

int rmdir_up_to(const char *dir, const char *top) {
        _cleanup_free_ char *p = strdup(dir);
        size_t n = strlen(top), len;

        if (!p)
                return -ENOMEM;
        if (n == 0 || strncmp(p, top, n) != 0 || (p[n] != '\0' && p[n] != '/'))
                return -EINVAL;
        for (;;) {
                if (rmdir(p) < 0)
                        return -errno;
                len = strlen(p);
                if (len <= n)
                        return 0;
                /* Drop the last component and the slashes around it, never past top. */
                while (len > n && p[len - 1] == '/')
                        len--;
                while (len > n && p[len - 1] != '/')
                        len--;
                while (len > n && p[len - 1] == '/')
                        len--;
                p[len] = '\0';
        }
}
