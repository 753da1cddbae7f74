/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* uid -> user name and gid -> group name for the unix:user, unix:group and
 * unix:supplementary_group selectors, cached: getpwuid_r()/getgrgid_r() re-read
 * /etc/passwd and /etc/group on every call, which cost more than the rest of an
 * attestation. The cache is emptied when either file changes (device, inode, size,
 * mtime or ctime), and at least every WL_NAMES_TTL_SEC for NSS sources that are not
 * files. Locked inside: any thread. */

#include <sys/types.h>

#include "cleanup.h"

#define WL_NAMES_TTL_SEC 60
#define WL_NAMES_MAX 4096 /* entries per kind; beyond, the cache starts over */

typedef struct WlNames WlNames;

/* passwd/group: the files watched ("/etc/passwd", "/etc/group"; tests pass others). */
int wl_names_new(const char *passwd, const char *group, WlNames **ret);
WlNames *wl_names_free(WlNames *n);
DEFINE_TRIVIAL_CLEANUP_FUNC(WlNames *, wl_names_free)

/* *ret = a malloc'd copy of the name, or NULL when the id has none. Returns 0,
 * -ENOMEM, or the NSS error. */
int wl_names_user(WlNames *n, uid_t uid, char **ret);
int wl_names_group(WlNames *n, gid_t gid, char **ret);

/* Lookups answered from the cache, and lookups that asked NSS. */
void wl_names_stats(WlNames *n, unsigned long *ret_hits, unsigned long *ret_misses);
