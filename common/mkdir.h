/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sys/types.h>

/* Creates the missing parent directories of path with mode 0755 (path itself is left
 * alone: it may be a socket or file to come). 0 or -errno. */
int mkdir_parents(const char *path);

/* mkdir -p: missing parents 0755, path itself with mode. An existing path must be a
 * directory (its mode is left as it is): -ENOTDIR otherwise. 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
