/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "path.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"

/* Absolute and lexically normal (see path_canonicalize()), without touching the disk
 * beyond getcwd() for a relative path. */
static int path_normalize(const char *path, char **ret) {
        _cleanup_free_ char *cwd = NULL, *in = NULL, *out = NULL;
        size_t len = 0;

        if (!path || !*path)
                return -EINVAL;
        if (path[0] != '/') {
                cwd = getcwd(NULL, 0);
                if (!cwd)
                        return -errno;
        }
        if (asprintf(&in, "%s/%s", strempty(cwd), path) < 0)
                return -ENOMEM;
        out = malloc(strlen(in) + 2);
        if (!out)
                return -ENOMEM;
        for (char *save = NULL, *c = strtok_r(in, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                if (streq(c, "."))
                        continue;
                if (streq(c, "..")) {
                        while (len > 0 && out[len - 1] != '/')
                                len--;
                        if (len > 0)
                                len--; /* the slash */
                        continue;
                }
                out[len++] = '/';
                memcpy(out + len, c, strlen(c));
                len += strlen(c);
        }
        if (len == 0)
                out[len++] = '/';
        out[len] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

int path_canonicalize(const char *path, char **ret) {
        _cleanup_free_ char *p = NULL;
        int r;

        r = path_normalize(path, &p);
        if (r < 0)
                return r;
        /* Cut components off the end until the rest exists, resolve it, put them back. */
        for (size_t cut = strlen(p);;) {
                _cleanup_free_ char *head = strndup(p, cut), *real = NULL;
                char *res;

                if (!head)
                        return -ENOMEM;
                real = realpath(cut > 0 ? head : "/", NULL);
                if (real) {
                        if (asprintf(&res, "%s%s", streq(real, "/") && p[cut] ? "" : real,
                                     p + cut) < 0)
                                return -ENOMEM;
                        *ret = res;
                        return 0;
                }
                if (errno != ENOENT && errno != ENOTDIR)
                        return -errno;
                while (cut > 0 && p[cut - 1] != '/')
                        cut--;
                if (cut > 0)
                        cut--;
        }
}

bool path_is_below(const char *path, const char *dir) {
        _cleanup_free_ char *p = NULL, *d = NULL;
        size_t n;

        if (path_canonicalize(path, &p) < 0 || path_canonicalize(dir, &d) < 0)
                return false;
        if (streq(d, "/"))
                return true;
        n = strlen(d);
        return strncmp(p, d, n) == 0 && (p[n] == '\0' || p[n] == '/');
}
