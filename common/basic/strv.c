/* SPDX-License-Identifier: Apache-2.0 */
#include "strv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

void strv_free(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

void strv_clear(char ***v, size_t *n) {
        strv_free(*v, *n);
        *v = NULL;
        *n = 0;
}

int strv_copy(char *const *src, size_t n, char ***ret) {
        char **v = NULL;

        if (n > 0) {
                v = calloc(n, sizeof(char *));
                if (!v)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                v[i] = strdup(src[i]);
                if (!v[i]) {
                        strv_free(v, i);
                        return -ENOMEM;
                }
        }
        *ret = v;
        return 0;
}

int strv_push(char ***v, size_t *n, const char *s) {
        _cleanup_free_ char *c = NULL;
        char **nv;

        if (!s)
                return -EINVAL;
        c = strdup(s);
        if (!c)
                return -ENOMEM;
        nv = reallocarray(*v, *n + 1, sizeof(char *));
        if (!nv)
                return -ENOMEM;
        nv[*n] = TAKE_PTR(c);
        *v = nv;
        (*n)++;
        return 0;
}

bool strv_equal(char *const *a, size_t na, char *const *b, size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}
