/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "peercred.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

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

int peercred_pidfd_running(int pidfd) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        int r;

        if (pidfd < 0)
                return -EBADF;
        do
                r = poll(&p, 1, 0);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (p.revents & POLLNVAL)
                return -EBADF;
        /* A pidfd polls readable once its process exited (a zombie counts). */
        return p.revents & (POLLIN | POLLHUP | POLLERR) ? -ESRCH : 0;
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

/* The UNIX_DIAG_PEER attribute of a sock_diag answer about inode `ino`. */
static int parse_diag_reply(const uint8_t *buf, size_t n, uint32_t ino, uint64_t *ret_ino) {
        const struct nlmsghdr *h = (const struct nlmsghdr *) buf;
        const struct unix_diag_msg *m;
        const struct rtattr *a;
        size_t left;

        if (!NLMSG_OK(h, n))
                return -EBADMSG;
        if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);

                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
                        return -EBADMSG;
                /* ENOENT: no socket with that inode (closed meanwhile). */
                return e->error < 0 ? e->error : -EBADMSG;
        }
        if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
                return -EBADMSG;
        m = NLMSG_DATA(h);
        if (m->udiag_family != AF_UNIX || m->udiag_ino != ino)
                return -EBADMSG;
        left = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
        for (a = (const struct rtattr *) (m + 1); RTA_OK(a, left); a = RTA_NEXT(a, left))
                if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
                        uint32_t peer;

                        memcpy(&peer, RTA_DATA(a), sizeof(peer));
                        if (peer == 0)
                                break;
                        *ret_ino = peer;
                        return 0;
                }
        return -ENOTCONN; /* no peer: the other end is gone */
}

int peercred_peer_inode(int fd, uint64_t *ret_ino) {
        struct {
                struct nlmsghdr nlh;
                struct unix_diag_req req;
        } q = {};
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
        _cleanup_close_ int nl = -EBADF;
        _Alignas(struct nlmsghdr) uint8_t buf[1024];
        struct stat st;
        ssize_t n;

        if (fd < 0 || !ret_ino)
                return -EINVAL;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISSOCK(st.st_mode))
                return -ENOTSOCK;
        nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (nl < 0)
                return errno == EPROTONOSUPPORT ? -EPROTONOSUPPORT : -errno;

        q.nlh = (struct nlmsghdr){
                .nlmsg_len = sizeof(q),
                .nlmsg_type = SOCK_DIAG_BY_FAMILY,
                .nlmsg_flags = NLM_F_REQUEST,
                .nlmsg_seq = 1,
        };
        q.req = (struct unix_diag_req){
                .sdiag_family = AF_UNIX,
                .udiag_ino = (uint32_t) st.st_ino,
                .udiag_show = UDIAG_SHOW_PEER,
                /* No cookie check: the inode alone names the socket. */
                .udiag_cookie = {UINT32_MAX, UINT32_MAX},
        };
        if (sendto(nl, &q, sizeof(q), 0, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        do
                n = recv(nl, buf, sizeof(buf), 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return parse_diag_reply(buf, (size_t) n, (uint32_t) st.st_ino, ret_ino);
}
