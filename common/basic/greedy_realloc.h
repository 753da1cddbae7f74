/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Growable arrays, as systemd's GREEDY_REALLOC(): an array, the number of elements
 * allocated, and a call before each append that makes room for `need` elements:
 *
 *   Entry **v = NULL;
 *   size_t n = 0, allocated = 0;
 *
 *   r = GREEDY_REALLOC(v, allocated, n + 1);
 *   if (r < 0)
 *           return r;
 *   v[n++] = e;
 *
 * The allocation at least doubles each time it grows (appends cost amortized O(1)) and
 * never holds fewer than GREEDY_REALLOC_MIN elements. */

#include <stddef.h>

#define GREEDY_REALLOC_MIN 8

/* Grows *p, an array of *allocated elements of size bytes, to hold at least need:
 * max(need, 2 * *allocated, GREEDY_REALLOC_MIN) elements. 0 when it already fits or
 * grew; -ENOMEM when the size overflows or the allocation fails (then *p and
 * *allocated are unchanged). */
int greedy_realloc(void **p, size_t *allocated, size_t need, size_t size);

/* The same, with the added elements zeroed. */
int greedy_realloc0(void **p, size_t *allocated, size_t need, size_t size);

#define GREEDY_REALLOC(array, allocated, need)                                                     \
        greedy_realloc((void **) &(array), &(allocated), (need), sizeof((array)[0]))

#define GREEDY_REALLOC0(array, allocated, need)                                                    \
        greedy_realloc0((void **) &(array), &(allocated), (need), sizeof((array)[0]))
