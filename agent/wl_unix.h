/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The unix:* selectors of the workload attestor (attest_wl.h). piddir is an open
 * /proc/<pid> directory; callers re-check that the process is still the same one after these
 * reads. */

#include <sys/types.h>

#include "attest_wl.h"
#include "selector.h"

/* unix:uid, unix:gid, and unix:user / unix:group when the ids have names. */
int wl_unix_add_ids(SelectorSet *set, uid_t uid, gid_t gid);

/* unix:supplementary_gid and unix:supplementary_group from the status file's Groups: line.
 * -E2BIG past ATTESTOR_GROUPS_MAX groups. */
int wl_unix_add_groups(SelectorSet *set, int piddir);

/* unix:path and unix:sha256 of the executable (hashed through a, so the cache and size limit
 * apply). Adds nothing when the executable is gone, unreadable, or not a valid value. */
int wl_unix_add_exe(Attestor *a, SelectorSet *set, int piddir);
