/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Workload attestation: the selectors of the process at the other end of a Workload API
 * connection, derived from kernel facts only, once per connection.
 *
 * Input is what the accept loop captured at connect time: SO_PEERCRED (pid, uid, gid), a
 * pidfd that pins the process, and our end of the connection. The attestor produces
 *
 *   unix:uid:N  unix:gid:N                        SO_PEERCRED (the credentials at connect())
 *   unix:user:NAME  unix:group:NAME               their names (cached, wl_names.h); none
 *                                                 when an id has no name
 *   -- only with the proof below --
 *   unix:supplementary_gid:N                      each gid of the "Groups:" line of
 *   unix:supplementary_group:NAME                 /proc/<pid>/status (and its name, if any)
 *   unix:path:/abs/exe                            the exe link; none when the executable was
 *   unix:sha256:HEX                               deleted or replaced, can't be read (no
 *                                                 ptrace access), or the path is not a valid
 *                                                 selector value; sha256 also not when the
 *                                                 file is bigger than the configured limit
 *   systemd:id:UNIT                               sd_pid_get_unit() (cgroup); none outside units
 *   systemd:fragment_path:PATH                    the unit's FragmentPath over the system bus
 *                                                 (skipped quietly when there is no bus)
 *
 * The proof (wl_holder.h): the executable is opened and stat'ed first, then the process
 * must hold the client end of this very connection on a close-on-exec fd, then the exe
 * must still be the same file (device, inode). A process that exec'd after connecting
 * (itself, or its parent while a child kept the socket) fails it, and so does a recycled
 * pid; such a connection gets the uid/gid selectors only (*ret_bound false, the reason
 * logged at debug). The path and sha256 name a file, not the code running in it
 * (LD_PRELOAD, ptrace by the same uid): entries should pair them with a uid or user.
 *
 * Missing selectors can only make fewer registration entries match, never more.
 *
 * Pid reuse: the process is re-checked after all selectors are read. The pidfd must still
 * refer to a live (not zombie) process with the same pid, and the start time in
 * /proc/<pid>/stat must be the one read first; otherwise the result is -ESRCH and no
 * selectors are returned. Callers map -ESRCH to UNAUTHENTICATED ("caller exited").
 *
 * Thread safety: one Attestor may be used from several threads at once (the sha256 cache,
 * the name cache and the bus connection are locked inside). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cleanup.h"
#include "selector.h"

/* What the connection layer captured at accept time. The attestor borrows the fds. */
typedef struct WorkloadInfo {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        int pidfd; /* pidfd_open(pid) or SO_PEERPIDFD, taken right after accept() */
        int sock;  /* our end of the connection; -EBADF: nothing to prove, uid/gid only */
} WorkloadInfo;

#define ATTESTOR_SHA256_MAX_SIZE_DEFAULT (UINT64_C(64) * 1024 * 1024)
#define ATTESTOR_CACHE_CAPACITY_DEFAULT 256
#define ATTESTOR_CACHE_CAPACITY_MAX 65536
/* Supplementary groups beyond this many make attestation fail with -E2BIG (each group gives
 * two selectors; the set returned holds up to WARDEN_WORKLOAD_SELECTORS_MAX). */
#define ATTESTOR_GROUPS_MAX 256

typedef struct AttestorConfig {
        uint64_t sha256_max_size; /* executables bigger than this get no unix:sha256 */
        size_t cache_capacity;    /* sha256 cache entries (LRU), 1..ATTESTOR_CACHE_CAPACITY_MAX */
        bool systemd;             /* derive systemd:* selectors */
        const char *proc_root;    /* "/proc"; another directory only in tests */
        const char *passwd_path;  /* "/etc/passwd", watched by the name cache */
        const char *group_path;   /* "/etc/group" */
} AttestorConfig;

typedef struct AttestorStats {
        uint64_t attested;      /* attestations with the proof (all selectors) */
        uint64_t unbound;       /* attestations without it (uid/gid selectors only) */
        uint64_t hash_computed; /* files read and hashed */
        uint64_t cache_hits;    /* hashes served from the cache */
        uint64_t too_big;       /* files over sha256_max_size (no hash) */
} AttestorStats;

typedef struct Attestor Attestor;

/* Fills *cfg with the defaults (64 MiB, 256 entries, systemd on, "/proc", "/etc/passwd",
 * "/etc/group"). */
void attestor_config_init(AttestorConfig *cfg);

/* Creates an attestor. cfg may be NULL (defaults); it is copied. -EINVAL on a bad config. */
int attestor_new(const AttestorConfig *cfg, Attestor **ret);

/* Frees the attestor (closes its bus connection, drops the cache). Accepts NULL. */
Attestor *attestor_free(Attestor *a);

DEFINE_TRIVIAL_CLEANUP_FUNC(Attestor *, attestor_free)

/* Attests the workload described by *w. On success *ret gets a new set (cap
 * WARDEN_WORKLOAD_SELECTORS_MAX) that the caller frees with selector_set_done(); whatever *ret
 * held is overwritten, not freed (pass an empty set). *ret_bound (may be NULL) tells whether
 * the process proved it holds the connection (all selectors) or not (uid/gid only).
 * Returns -ESRCH when the process exited, became a zombie, or was replaced (pid reuse);
 * -E2BIG when it has more than ATTESTOR_GROUPS_MAX supplementary groups or produces more
 * selectors than a set may hold; -EINVAL for a bad *w (pid <= 0, pidfd < 0); -EBADMSG for
 * unparsable /proc data; other negative errnos for I/O failures. */
int attestor_attest(Attestor *a, const WorkloadInfo *w, SelectorSet *ret, bool *ret_bound);

/* Hashes the regular file open at fd (read with pread, so the offset is untouched) and writes
 * the lowercase hex SHA-256 into ret_hex. Served from the cache when (device, inode, size,
 * mtime, ctime) are unchanged. Returns -EFBIG when the file is bigger than sha256_max_size,
 * -EAGAIN when it changed while being read (not cached), -EINVAL if it isn't a regular file. */
int attestor_hash_file(Attestor *a, int fd, char ret_hex[static 65]);

/* Copies the counters. */
void attestor_get_stats(Attestor *a, AttestorStats *ret);
