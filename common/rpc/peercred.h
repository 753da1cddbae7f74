/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Kernel peer credentials of a connected AF_UNIX socket, and pidfds that pin the
 * peer process so a recycled pid is never mistaken for the caller.
 *
 * SO_PEERCRED reports whoever called connect(), at that moment. uid and gid are
 * reliable; the pid can exit and be reused, so callers pin it with
 * peercred_get_pidfd() right after accept() and later check with
 * peercred_pidfd_alive() that the process they inspected is still that one. */

#include <stdint.h>
#include <sys/types.h>

typedef struct PeerCred {
        pid_t pid; /* 0 when the peer lives in a pid namespace we cannot see */
        uid_t uid;
        gid_t gid;
} PeerCred;

/* Reads SO_PEERCRED of a connected AF_UNIX stream socket.
 * Returns 0, or -errno (-ENOTSOCK, -ENOTCONN, ...). */
int peercred_get(int fd, PeerCred *ret);

/* Returns in *ret_pidfd a pidfd (O_CLOEXEC) for the process that connected fd.
 * Uses SO_PEERPIDFD where the kernel has it (Linux >= 6.5, race-free), otherwise
 * pidfd_open(pid) with the pid from peercred_get() (pass it as `pid`).
 * Returns 0, -ESRCH when the process is already gone or pid is 0, or -errno. */
int peercred_get_pidfd(int fd, pid_t pid, int *ret_pidfd);

/* 0 while the process behind pidfd has not exited, -ESRCH once it has,
 * other -errno on failure (-EBADF for a bad fd). */
int peercred_pidfd_alive(int pidfd);

/* 0 while the process behind pidfd runs, -ESRCH once it exited (a zombie counts as
 * exited), -EBADF for a bad fd. One poll(2), for per-call checks. */
int peercred_pidfd_running(int pidfd);

/* The pid (in our pid namespace) of the process behind pidfd, read from
 * /proc/self/fdinfo. Returns 0, -ESRCH when it has exited, or -errno. */
int peercred_pidfd_get_pid(int pidfd, pid_t *ret);

/* The inode number of the other end of the connected AF_UNIX socket fd, as the peer
 * sees it in /proc/<pid>/fd ("socket:[N]"). Asked of the kernel with sock_diag
 * (NETLINK_SOCK_DIAG, UNIX_DIAG_PEER). Returns 0, -ENOTSOCK, -ENOTCONN (no peer any
 * more), -EPROTONOSUPPORT (kernel without unix_diag), or -errno. */
int peercred_peer_inode(int fd, uint64_t *ret_ino);
