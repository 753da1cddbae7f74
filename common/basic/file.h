/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Durable file writes: what the agent's node identity, the server's CA state, key and
 * certificate files and the CLI's output files are written with. */

#include <stddef.h>
#include <sys/types.h>

/* Writes data to path atomically, with exactly mode (no umask): a temp file in the same
 * directory (".<name>.tmp-XXXXXX", O_CLOEXEC), write, fsync, rename over path, fsync of
 * the directory. Until the rename, path keeps its old content and a failure removes the
 * temp file. 0 or -errno (-EINVAL for an empty path or NULL data with len > 0); an error
 * of the directory fsync comes after path was replaced. */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* fsync(2) of a directory (after a rename or create in it). 0 or -errno. */
int file_fsync_directory(const char *dir);
