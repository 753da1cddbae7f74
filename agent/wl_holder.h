/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Part of the workload attestor (attest_wl.h): proof that the process that connected is
 * the code whose executable was read, not something that exec'd after connect().
 *
 * SO_PEERCRED, the pid, the start time and a pidfd all survive execve(), so a process
 * can connect, then exec an allowed binary (or fork a child that keeps the socket and
 * exec in the parent), and /proc/<pid>/exe names the allowed binary while other code
 * talks on the connection. What does not survive an exec is a close-on-exec fd: the
 * proof is that /proc/<pid>/fd holds the client end of our very connection (its inode,
 * from sock_diag) on an fd with FD_CLOEXEC set. After any exec since connect() the
 * socket is either gone from that table or held without FD_CLOEXEC, unless code running
 * in the new image marked it close-on-exec itself. Every gRPC client (core, grpcio,
 * grpc-js, Go) opens its socket with SOCK_CLOEXEC. The caller reads the exe before and
 * after the check and compares, so an exec during the check shows too. */

#include <stddef.h>
#include <stdint.h>

/* Fds of one process looked at before giving up (no proof). */
#define WL_HOLDER_FDS_MAX 65536

/* Checks that the process of the open /proc/<pid> directory piddir holds the socket
 * with inode peer_ino on an fd with FD_CLOEXEC. Returns 1 when it does, 0 when not
 * (with *ret_reason, static text), or -errno when /proc could not be read (-ESRCH: the
 * process is gone). */
int wl_holder_check(int piddir, uint64_t peer_ino, const char **ret_reason);

/* The "flags:" value (octal) of a /proc/<pid>/fdinfo/<fd> file. Returns 0, -EBADMSG.
 * Exposed for the fuzzer and tests. */
int wl_holder_parse_fdinfo_flags(const char *buf, size_t size, unsigned long *ret_flags);
