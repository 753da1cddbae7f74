/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
/* Unix socket listeners: bound by us (with stale-socket clean-up) or handed over by
 * systemd (socket activation). The accept thread (rpc_accept.c) serves them. */

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"
#include "rpc_internal.h"

/* A socket file at path: connectable means a live server (-EADDRINUSE); refused
 * means stale (unlinked). Anything that is not a socket is left alone (-EEXIST). */
static int unlink_stale_socket(const char *path, const struct sockaddr_un *sa, socklen_t salen) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) sa, salen) >= 0)
                return -EADDRINUSE;
        if (errno != ECONNREFUSED)
                return -errno;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int rpc_server_listen_unix(RpcServer *s, const char *path, mode_t mode) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -EBADF;
        socklen_t salen;
        int r;

        if (!s || !path || path[0] != '/')
                return -EINVAL;
        if (s->started)
                return -EBUSY;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        if (rpc_acceptor_n_listeners(s->acceptor) >= RPC_MAX_LISTENERS)
                return -E2BIG;
        strcpy(sa.sun_path, path);
        salen = offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;

        r = unlink_stale_socket(path, &sa, salen);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, salen) < 0)
                return -errno;
        if (chmod(path, mode) < 0 || listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                (void) unlink(path);
                return r;
        }
        r = rpc_acceptor_add(s->acceptor, fd, true, path);
        if (r < 0) {
                (void) unlink(path);
                return r;
        }
        TAKE_FD(fd);
        return 0;
}

int rpc_server_listen_fd(RpcServer *s, int fd) {
        int v, flags;
        socklen_t len = sizeof(v);

        if (!s)
                return -EINVAL;
        if (fd < 0)
                return -EBADF;
        if (s->started)
                return -EBUSY;
        if (rpc_acceptor_n_listeners(s->acceptor) >= RPC_MAX_LISTENERS)
                return -E2BIG;
        if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0)
                return errno == ENOTSOCK ? -ENOTSOCK : -errno;
        if (v != AF_UNIX)
                return -EINVAL;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != SOCK_STREAM)
                return -EINVAL;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || !v)
                return -EINVAL;
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        return rpc_acceptor_add(s->acceptor, fd, false, NULL);
}
