/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Counted string arrays (char **v with a separate size_t n), as used by entries
 * (dns_names, federates_with, scopes) and their copies on the agent. */

#include <stdbool.h>
#include <stddef.h>

/* Frees the n strings and the array. v may be NULL. */
void strv_free(char **v, size_t n);

/* Frees and resets *v and *n to NULL / 0. */
void strv_clear(char ***v, size_t *n);

/* Deep copy of n strings (none may be NULL) into *ret; *ret is NULL when n is 0.
 * Returns 0 or -ENOMEM (nothing allocated). */
int strv_copy(char *const *src, size_t n, char ***ret);

/* Appends a copy of s. -EINVAL for NULL, -ENOMEM (then *v and *n are unchanged). */
int strv_push(char ***v, size_t *n, const char *s);

/* Element-wise equality, order included. */
bool strv_equal(char *const *a, size_t na, char *const *b, size_t nb);
