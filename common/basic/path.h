/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* File system path comparisons for configuration checks. */

#include <stdbool.h>

/* path made absolute (against the working directory) and normalized: no empty, "." or ".."
 * components, no trailing slash. The longest prefix that exists is resolved with
 * realpath(3), so symlinks there are followed; the rest is kept as written. The path need
 * not exist. *ret is malloc'd. -EINVAL for an empty path, -ENOMEM, or getcwd/realpath
 * errors other than a missing component. */
int path_canonicalize(const char *path, char **ret);

/* true when path is dir or lies below it, comparing canonicalized forms (false when
 * either cannot be canonicalized). */
bool path_is_below(const char *path, const char *dir);
