/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Kernel constants and syscall wrappers that bookworm's glibc/kernel headers may lack.
 * Only definitions that are absent are provided; values are the kernel's ABI. */

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* SO_PEERPIDFD: a pidfd of the process that called connect() (Linux 6.5+). */
#ifndef SO_PEERPIDFD
#        define SO_PEERPIDFD 77
#endif

#ifndef SYS_pidfd_open
#        define SYS_pidfd_open 434
#endif

#ifndef SYS_pidfd_send_signal
#        define SYS_pidfd_send_signal 424
#endif

/* glibc < 2.36 has no pidfd_open()/pidfd_send_signal() wrappers; ours are prefixed
 * so they never collide with a libc declaration. */
static inline int missing_pidfd_open(pid_t pid, unsigned flags) {
        return (int) syscall(SYS_pidfd_open, pid, flags);
}

static inline int missing_pidfd_send_signal(int pidfd, int sig) {
        return (int) syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}
