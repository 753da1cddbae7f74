/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Parsers for /proc/<pid>/stat and /proc/<pid>/status, and a bounded reader for /proc files.
 * The parsers take (buffer, size) with no NUL needed, so they can be fuzzed directly. Part of
 * the workload attestor (attest_wl.h). The command name inside stat is chosen by the workload,
 * so it is treated as hostile. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Largest stat/status file we read. */
#define WL_PROC_STAT_MAX (8U * 1024)
#define WL_PROC_STATUS_MAX (256U * 1024)

/* From "pid (comm) S ppid ... starttime ...": the state letter (field 3) and the start time in
 * clock ticks since boot (field 22). The comm may hold spaces and ')'; the last ')' ends it.
 * Returns 0 or -EBADMSG. */
int wl_proc_parse_stat(const char *buf, size_t size, char *ret_state, uint64_t *ret_starttime);

/* Parses the "Groups:" line of a status file into gids[0..max). Returns 0 and sets *ret_n,
 * -E2BIG if there are more than max groups, -EBADMSG if the line is missing or malformed. */
int wl_proc_parse_groups(const char *buf, size_t size, gid_t *gids, size_t max, size_t *ret_n);

/* Reads the file `name` below dirfd (openat, O_RDONLY|O_CLOEXEC|O_NOFOLLOW) whole into a
 * malloc'd NUL-terminated buffer. Returns 0, -EFBIG past max bytes, or the failing call's
 * -errno (a vanished process shows up as -ESRCH or -ENOENT). */
int wl_proc_read_at(int dirfd, const char *name, size_t max, char **ret, size_t *ret_size);

/* The "Pid:" line of a pidfd's /proc/self/fdinfo/<fd>: the pid, or -1 once the process was
 * reaped. Returns 0, -ENODATA without such a line (not a pidfd, old kernel), -EBADMSG. */
int wl_proc_parse_fdinfo_pid(const char *buf, size_t size, int64_t *ret_pid);
