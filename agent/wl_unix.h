/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The unix:* selectors of the workload attestor (attest_wl.h). piddir is an open
 * /proc/<pid> directory; callers re-check that the process is still the same one after these
 * reads. */

#include <sys/stat.h>
#include <sys/types.h>

#include "attest_wl.h"
#include "selector.h"
#include "wl_names.h"

/* unix:uid, unix:gid, and unix:user / unix:group when the ids have names. */
int wl_unix_add_ids(WlNames *names, SelectorSet *set, uid_t uid, gid_t gid);

/* unix:supplementary_gid and unix:supplementary_group from the status file's Groups: line.
 * -E2BIG past ATTESTOR_GROUPS_MAX groups. */
int wl_unix_add_groups(WlNames *names, SelectorSet *set, int piddir);

/* Opens the process's executable: *ret_fd and its stat, and its path (the exe link).
 * *ret_fd stays -EBADF when it can't be opened (no access, a kernel thread or zombie);
 * *ret_path stays NULL when there is no usable path: a deleted or replaced binary, a
 * path that isn't absolute. */
int wl_unix_open_exe(int piddir, int *ret_fd, char **ret_path, struct stat *ret_st);

/* unix:path and unix:sha256 of the executable open at exe_fd (hashed through a, so the
 * cache and size limit apply); nothing without a usable path. A path that is not a valid
 * selector value is left out (the hash is still added). */
int wl_unix_add_exe(Attestor *a, SelectorSet *set, int exe_fd, const char *path);
