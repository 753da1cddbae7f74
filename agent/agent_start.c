/* SPDX-License-Identifier: Apache-2.0 */
/* What a start of the agent creates on disk, and taking it back when the start fails:
 * the data directory (and missing parents), its lock file, the Workload API socket's
 * directory. A start that fails (a second agent on the same data dir, a busy socket or
 * health port, a refused join token, a wrong trust bundle) leaves the file system as it
 * found it; directories that are not empty (a node SVID from an earlier run) stay. */
#define _GNU_SOURCE

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_internal.h"
#include "lockfile.h"
#include "log.h"
#include "mkdir.h"

int agent_take_data_dir(Agent *a) {
        const char *dir = a->cfg.data_dir;
        pid_t holder = 0;
        int r;

        r = mkdir_p_created(dir, 0700, &a->created_data_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to create data directory %s: %m", dir);
        r = lockfile_acquire(dir, AGENT_LOCK_FILE, &a->lock_fd, &holder);
        if (r == -EBUSY && holder > 0)
                return log_error_errno(r,
                                       "Data directory %s is in use by another agent (pid %d): "
                                       "stop it, or give this one its own -dataDir",
                                       dir, (int) holder);
        if (r == -EBUSY)
                return log_error_errno(r,
                                       "Data directory %s is in use by another agent (pid "
                                       "unknown, see %s/" AGENT_LOCK_FILE
                                       "): stop it, or give this one its own -dataDir",
                                       dir, dir);
        if (r < 0)
                return log_error_errno(
                        r, "Failed to lock data directory %s (%s/" AGENT_LOCK_FILE "): %m", dir,
                        dir);
        a->lock_created = r > 0;
        return 0;
}

int agent_make_socket_dir(Agent *a) {
        int r;

        r = mkdir_parents_created(a->cfg.socket_path, &a->created_socket_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to create the directory of %s: %m",
                                       a->cfg.socket_path);
        return 0;
}

/* rmdir of dir and its parents up to top, when this start created top. */
static void undo_dirs(const char *dir, const char *top) {
        int r;

        if (!top)
                return;
        r = rmdir_up_to(dir, top);
        if (r < 0 && r != -ENOTEMPTY && r != -EEXIST)
                log_debug_errno(r, "Cannot remove %s again, ignoring: %m", dir);
}

void agent_release_start(Agent *a, bool undo) {
        _cleanup_free_ char *sock = NULL;

        if (undo && a->lock_fd >= 0 && a->lock_created)
                (void) lockfile_release_unlink(a->cfg.data_dir, AGENT_LOCK_FILE, a->lock_fd);
        else
                closep(&a->lock_fd);
        a->lock_fd = -EBADF;
        if (undo) {
                undo_dirs(a->cfg.data_dir, a->created_data_dir);
                sock = a->created_socket_dir ? strdup(a->cfg.socket_path) : NULL;
                if (sock)
                        undo_dirs(dirname(sock), a->created_socket_dir);
        }
        free(a->created_data_dir);
        free(a->created_socket_dir);
        a->created_data_dir = a->created_socket_dir = NULL;
}
