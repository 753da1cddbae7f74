/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sys/types.h>

/* Creates the missing parent directories of path with mode 0755 (path itself is left
 * alone: it may be a socket or file to come). 0 or -errno. */
int mkdir_parents(const char *path);

/* mkdir -p: missing parents 0755, path itself with mode. An existing path must be a
 * directory (its mode is left as it is): -ENOTDIR otherwise. 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/* mkdir_parents() and mkdir_p() that say what they made, so that a start that fails can
 * remove it again: *ret_created is the topmost directory this call created (malloc'd), or
 * NULL when every one existed. Every directory below it on the way to path was created by
 * this call too. */
int mkdir_parents_created(const char *path, char **ret_created);
int mkdir_p_created(const char *path, mode_t mode, char **ret_created);

/* Undoes the above: removes dir, then its parents up to and including top, each only if it
 * is empty (rmdir(2)); stops at the first that is not. dir must be top or below it.
 * Returns 0, -ENOTEMPTY/-EBUSY when something stayed, or another -errno. */
int rmdir_up_to(const char *dir, const char *top);
