/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* One daemon per data directory: an exclusive flock(2) on <dir>/<name>.
 *
 * The lock file is a regular file (created 0600, opened O_NOFOLLOW) that holds the
 * holder's pid as decimal text, so that a second process can say who holds it. The lock
 * lasts while the returned fd is open (it is O_CLOEXEC: a child does not inherit it)
 * and ends by itself when the holder dies; the file is never unlinked (unlinking a lock
 * file lets two processes hold "the" lock on two different inodes).
 *
 *   _cleanup_close_ int fd = -EBADF;
 *   pid_t holder = 0;
 *   r = lockfile_acquire("/var/lib/warden/server", "server.lock", &fd, &holder);
 *   if (r == -EBUSY)
 *           return log_error_errno(r, "... in use by pid %d", (int) holder);
 *
 * flock locks belong to the open file description: a second lockfile_acquire() on the
 * same file fails with -EBUSY even inside the same process. */

#include <sys/types.h>

/* Takes the lock without waiting. Returns 0 with *ret_fd (the caller closes it, or calls
 * lockfile_release()); or
 *   -EBUSY     another open file description holds the lock: *ret_holder (optional) is
 *              the pid it recorded, 0 when it recorded none (yet);
 *   -ENOENT    dir does not exist;
 *   -ELOOP     <dir>/<name> is a symbolic link;
 *   -EINVAL    bad arguments (name must be a plain file name), or <dir>/<name> is not
 *              a regular file (-EISDIR for a directory);
 *   -EACCES, -EROFS, ... from open(2), flock(2) or writing the pid.
 * *ret_fd is written only on success, *ret_holder only on -EBUSY. */
int lockfile_acquire(const char *dir, const char *name, int *ret_fd, pid_t *ret_holder);

/* Clears the recorded pid and closes fd (which drops the lock). Accepts a negative fd.
 * Always returns -EBADF, for `fd = lockfile_release(fd);`. */
int lockfile_release(int fd);
