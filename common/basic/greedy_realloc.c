/* SPDX-License-Identifier: Apache-2.0 */
#include "greedy_realloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int greedy_realloc(void **p, size_t *allocated, size_t need, size_t size) {
        size_t max, a;
        void *q;

        if (!p || !allocated || size == 0)
                return -EINVAL;
        if (need <= *allocated)
                return 0;
        max = SIZE_MAX / size;
        if (need > max)
                return -ENOMEM;
        a = *allocated <= max / 2 ? *allocated * 2 : need;
        if (a < need)
                a = need;
        if (a < GREEDY_REALLOC_MIN && GREEDY_REALLOC_MIN <= max)
                a = GREEDY_REALLOC_MIN;
        q = realloc(*p, a * size);
        if (!q)
                return -ENOMEM;
        *p = q;
        *allocated = a;
        return 0;
}

int greedy_realloc0(void **p, size_t *allocated, size_t need, size_t size) {
        size_t before;
        int r;

        if (!allocated)
                return -EINVAL;
        before = *allocated;
        r = greedy_realloc(p, allocated, need, size);
        if (r < 0)
                return r;
        if (*allocated > before)
                memset((char *) *p + before * size, 0, (*allocated - before) * size);
        return 0;
}
