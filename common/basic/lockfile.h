/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A daemon's exclusive hold on its data directory: flock(2) on a lock file in it.
 *
 * The lock belongs to the open file description, so it lasts as long as the returned fd
 * is open (O_CLOEXEC: a child does not inherit it) and ends when the process dies, however
 * it dies; nothing stale is left to clean up. The holder writes its pid into the file so
 * that a second process can name it. The file itself stays (unlinking a lock file races
 * with the next process opening it), except through lockfile_release_unlink(). */

#include <sys/types.h>

/* Takes the lock on dir/name without waiting: the file is created 0600 if missing
 * (O_NOFOLLOW, no symlink), locked with LOCK_EX | LOCK_NB, and our pid written into it
 * ("<pid>\n"; skipped without an error when the file or file system is read-only).
 * Returns 1 with *ret_fd when this call created the file, 0 with *ret_fd when it
 * existed; -EBUSY when another open file description holds the lock, with *ret_holder
 * set to the pid written in the file (0 when it has none yet); -EINVAL for a name that is
 * empty or contains '/', or when dir/name is not a regular file (-EISDIR for a
 * directory); other -errno from open/flock (-ENOENT: no such dir, -ELOOP: the name is a
 * symlink, ...). ret_holder may be NULL. flock locks belong to the open file description:
 * a second lockfile_acquire() of the same file fails with -EBUSY even in the same process.
 *
 *   _cleanup_close_ int fd = -EBADF;
 *   pid_t holder = 0;
 *   r = lockfile_acquire("/var/lib/warden/server", "server.lock", &fd, &holder);
 *   if (r == -EBUSY)
 *           return log_error_errno(r, "... in use by pid %d", (int) holder);
 */
int lockfile_acquire(const char *dir, const char *name, int *ret_fd, pid_t *ret_holder);

/* Clears the recorded pid and closes fd (which drops the lock); the file stays. Accepts
 * a negative fd. Always returns -EBADF, for `fd = lockfile_release(fd);`. */
int lockfile_release(int fd);

/* Unlinks dir/name while still holding the lock on fd, then closes fd. For a start that
 * failed and leaves nothing behind. Returns -EBADF for fd < 0, else 0 or the unlink error
 * (fd is closed either way). */
int lockfile_release_unlink(const char *dir, const char *name, int fd);
