/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "peercred.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cleanup.h"
#include "missing.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose)

int peercred_get(int fd, PeerCred *ret) {
        struct ucred uc = {};
        socklen_t len = sizeof(uc);

        if (fd < 0 || !ret)
                return -EINVAL;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return -errno;
        if (len != sizeof(uc))
                return -EIO;
        /* A socketpair() peer or a never-connected socket reports uid/gid -1. */
        if (uc.uid == (uid_t) -1 || uc.gid == (gid_t) -1)
                return -ENODATA;

        *ret = (PeerCred){.pid = uc.pid, .uid = uc.uid, .gid = uc.gid};
        return 0;
}

int peercred_get_pidfd(int fd, pid_t pid, int *ret_pidfd) {
        int pidfd = -EBADF;
        socklen_t len = sizeof(pidfd);

        if (fd < 0 || !ret_pidfd)
                return -EINVAL;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) >= 0 && pidfd >= 0) {
                /* The kernel hands it out with O_CLOEXEC already set. */
                *ret_pidfd = pidfd;
                return 0;
        }
        /* ENOPROTOOPT on kernels < 6.5; ESRCH when the peer already exited. */
        if (errno != ENOPROTOOPT && errno != EINVAL)
                return -errno;

        if (pid <= 0)
                return -ESRCH;
        pidfd = missing_pidfd_open(pid, 0);
        if (pidfd < 0)
                return -errno;
        /* pidfd_open() always sets O_CLOEXEC. */
        *ret_pidfd = pidfd;
        return 0;
}

int peercred_pidfd_alive(int pidfd) {
        if (pidfd < 0)
                return -EBADF;
        if (missing_pidfd_send_signal(pidfd, 0) < 0)
                return -errno;
        return 0;
}

int peercred_pidfd_get_pid(int pidfd, pid_t *ret) {
        char path[64], line[128];
        _cleanup_(fclosep) FILE *f = NULL;

        if (pidfd < 0 || !ret)
                return -EBADF;
        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
        f = fopen(path, "re");
        if (!f)
                return -errno;

        while (fgets(line, sizeof(line), f)) {
                int pid;

                if (sscanf(line, "Pid:\t%d", &pid) != 1)
                        continue;
                /* -1: the process exited (and was reaped); 0: not in our namespace. */
                if (pid < 0)
                        return -ESRCH;
                if (pid == 0)
                        return -ENODATA;
                *ret = pid;
                return 0;
        }
        return -ENOTTY; /* not a pidfd */
}
