/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
/* Unix socket listeners and the accept thread.
 *
 * We accept every client ourselves: accept4(NONBLOCK) → SO_PEERCRED + pidfd →
 * a table indexed by fd number → grpc_server_add_channel_from_fd(). Calls then
 * name their connection "fd:N", and the creds are copied out of the table while
 * the call pins the connection (so N cannot be reused meanwhile). gRPC closes the
 * fd without telling us: a sweep finds dead entries (fd closed or now another
 * file) when the connection cap is reached and every few seconds. */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>

#include "cleanup.h"
#include "log.h"
#include "rpc_internal.h"

#define RPC_ACCEPT_BACKOFF_MS 100
#define RPC_ACCEPT_SWEEP_MS 5000

typedef struct RpcConn {
        bool used;
        dev_t dev;
        ino_t ino;
        PeerCred cred;
        int pidfd;
        uint64_t conn_id;
} RpcConn;

typedef struct RpcListener {
        int fd;
        bool owned;
        bool broken; /* poll reported an error (e.g. a borrowed fd closed early) */
        char *unlink_path;
} RpcListener;

struct RpcAcceptor {
        RpcListener listeners[RPC_MAX_LISTENERS];
        size_t n_listeners;
        int stop_fd;
        pthread_t thread;
        bool thread_started;
        grpc_server *server;
        grpc_server_credentials *creds;
        unsigned max_connections;
        uint64_t last_sweep_ms;

        pthread_mutex_t lock;
        RpcConn *conns; /* indexed by fd */
        size_t n_conns;
        int *live; /* fds with a used entry, at most max_connections */
        size_t n_live;
        uint64_t next_conn_id;
        uint64_t n_accepted;
};

int rpc_acceptor_new(RpcAcceptor **ret) {
        RpcAcceptor *a = calloc(1, sizeof(*a));

        if (!a)
                return -ENOMEM;
        a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (a->stop_fd < 0) {
                int r = -errno;
                free(a);
                return r;
        }
        pthread_mutex_init(&a->lock, NULL);
        *ret = a;
        return 0;
}

RpcAcceptor *rpc_acceptor_free(RpcAcceptor *a) {
        if (!a)
                return NULL;
        rpc_acceptor_stop(a);
        for (size_t i = 0; i < a->n_conns; i++)
                if (a->conns[i].used && a->conns[i].pidfd >= 0)
                        close(a->conns[i].pidfd);
        free(a->conns);
        free(a->live);
        if (a->creds)
                grpc_server_credentials_release(a->creds);
        close(a->stop_fd);
        pthread_mutex_destroy(&a->lock);
        free(a);
        return NULL;
}

int rpc_acceptor_add(RpcAcceptor *a, int fd, bool owned, const char *unlink_path) {
        char *p = NULL;

        if (a->n_listeners >= RPC_MAX_LISTENERS)
                return -E2BIG;
        if (unlink_path) {
                p = strdup(unlink_path);
                if (!p)
                        return -ENOMEM;
        }
        a->listeners[a->n_listeners++] = (RpcListener){.fd = fd, .owned = owned, .unlink_path = p};
        return 0;
}

size_t rpc_acceptor_n_listeners(RpcAcceptor *a) {
        return a->n_listeners;
}

uint64_t rpc_acceptor_n_accepted(RpcAcceptor *a) {
        return __atomic_load_n(&a->n_accepted, __ATOMIC_RELAXED);
}

static uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Drops entries whose fd was closed by gRPC (or now names another file). */
static void acceptor_sweep_locked(RpcAcceptor *a) {
        for (size_t i = 0; i < a->n_live;) {
                RpcConn *e = &a->conns[a->live[i]];
                struct stat st;

                if (fstat(a->live[i], &st) >= 0 && S_ISSOCK(st.st_mode) && st.st_dev == e->dev &&
                    st.st_ino == e->ino) {
                        i++;
                        continue;
                }
                if (e->pidfd >= 0)
                        close(e->pidfd);
                *e = (RpcConn){.pidfd = -EBADF};
                a->live[i] = a->live[--a->n_live];
        }
        a->last_sweep_ms = now_ms();
}

static int acceptor_store_locked(
        RpcAcceptor *a, int fd, const struct stat *st, const PeerCred *cred, int pidfd) {
        RpcConn *e;

        if ((size_t) fd >= a->n_conns) {
                size_t n = a->n_conns ? a->n_conns : 64;
                RpcConn *t;

                while (n <= (size_t) fd)
                        n *= 2;
                t = reallocarray(a->conns, n, sizeof(*t));
                if (!t)
                        return -ENOMEM;
                for (size_t i = a->n_conns; i < n; i++)
                        t[i] = (RpcConn){.pidfd = -EBADF};
                a->conns = t;
                a->n_conns = n;
        }
        e = &a->conns[fd];
        if (e->used) {
                /* A dead connection's entry not swept yet: already on the live list. */
                if (e->pidfd >= 0)
                        close(e->pidfd);
        } else
                a->live[a->n_live++] = fd;
        *e = (RpcConn){
                .used = true,
                .dev = st->st_dev,
                .ino = st->st_ino,
                .cred = *cred,
                .pidfd = pidfd,
                .conn_id = ++a->next_conn_id,
        };
        return 0;
}

/* The client went away or a signal interrupted us: just try the next one. */
static bool accept_error_is_transient(int e) {
        return e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED || e == EPROTO;
}

/* Returns 0 (accepted, or nothing to accept), or < 0 to back off for a while:
 * -EBUSY at the connection cap, -EMFILE/-ENFILE/-ENOMEM/... otherwise. */
static int acceptor_accept_one(RpcAcceptor *a, int lfd) {
        _cleanup_close_ int fd = -EBADF, pidfd = -EBADF;
        PeerCred cred;
        struct stat st;
        int r;

        pthread_mutex_lock(&a->lock);
        if (a->n_live >= a->max_connections)
                acceptor_sweep_locked(a);
        r = a->n_live >= a->max_connections ? -EBUSY : 0;
        pthread_mutex_unlock(&a->lock);
        if (r < 0)
                return r;

        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
                if (accept_error_is_transient(errno))
                        return 0;
                return log_debug_errno(-errno, "rpc: accept4() failed, backing off: %m");
        }
        r = peercred_get(fd, &cred);
        if (r < 0) {
                log_debug_errno(r, "rpc: no peer credentials on new connection, closing: %m");
                return 0;
        }
        if (fstat(fd, &st) < 0)
                return 0;
        r = peercred_get_pidfd(fd, cred.pid, &pidfd);
        if (r == -EMFILE || r == -ENFILE)
                return r;
        if (r < 0)
                log_debug_errno(r, "rpc: no pidfd for peer pid %d: %m", (int) cred.pid);

        pthread_mutex_lock(&a->lock);
        r = acceptor_store_locked(a, fd, &st, &cred, pidfd);
        pthread_mutex_unlock(&a->lock);
        if (r < 0)
                return r;
        TAKE_FD(pidfd);

        /* Counted first: the connection may serve calls before this returns. */
        __atomic_add_fetch(&a->n_accepted, 1, __ATOMIC_RELAXED);
        /* gRPC owns the fd from here on and closes it. */
        grpc_server_add_channel_from_fd(a->server, TAKE_FD(fd), a->creds);
        return 0;
}

static void *acceptor_thread(void *p) {
        RpcAcceptor *a = p;
        struct pollfd pfd[RPC_MAX_LISTENERS + 1];
        bool backoff = false;

        for (;;) {
                size_t n = 1;
                int timeout = -1, r;

                pfd[0] = (struct pollfd){.fd = a->stop_fd, .events = POLLIN};
                if (backoff)
                        timeout = RPC_ACCEPT_BACKOFF_MS; /* leave clients in the backlog */
                else {
                        /* poll() skips negative fds: broken listeners stay out. */
                        for (size_t i = 0; i < a->n_listeners; i++)
                                pfd[n++] = (struct pollfd){
                                        a->listeners[i].broken ? -1 : a->listeners[i].fd, POLLIN,
                                        0};
                        pthread_mutex_lock(&a->lock);
                        if (a->n_live > 0)
                                timeout = RPC_ACCEPT_SWEEP_MS;
                        pthread_mutex_unlock(&a->lock);
                }
                r = poll(pfd, n, timeout);
                if (r < 0 && errno != EINTR) {
                        backoff = true;
                        continue;
                }
                if (r > 0 && pfd[0].revents)
                        break;
                backoff = false;

                for (size_t i = 1; r > 0 && i < n; i++) {
                        if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
                                log_debug("rpc: listener fd %d failed, no longer accepting on it",
                                          pfd[i].fd);
                                a->listeners[i - 1].broken = true;
                        } else if ((pfd[i].revents & POLLIN) &&
                                   acceptor_accept_one(a, pfd[i].fd) < 0)
                                backoff = true;
                }

                pthread_mutex_lock(&a->lock);
                if (a->n_live > 0 && now_ms() - a->last_sweep_ms >= RPC_ACCEPT_SWEEP_MS)
                        acceptor_sweep_locked(a);
                pthread_mutex_unlock(&a->lock);
        }
        return NULL;
}

int rpc_acceptor_start(RpcAcceptor *a, grpc_server *server, unsigned max_connections) {
        int r;

        a->live = calloc(max_connections, sizeof(*a->live));
        a->creds = grpc_insecure_server_credentials_create();
        if (!a->live || !a->creds)
                return -ENOMEM;
        a->server = server;
        a->max_connections = max_connections;
        a->last_sweep_ms = now_ms();

        r = rpc_thread_create(&a->thread, "rpc-accept", acceptor_thread, a);
        if (r < 0)
                return r;
        a->thread_started = true;
        return 0;
}

void rpc_acceptor_stop(RpcAcceptor *a) {
        if (!a)
                return;
        if (a->thread_started) {
                uint64_t one = 1;

                (void) !write(a->stop_fd, &one, sizeof(one));
                pthread_join(a->thread, NULL);
                a->thread_started = false;
        }
        for (size_t i = 0; i < a->n_listeners; i++) {
                RpcListener *l = &a->listeners[i];

                if (l->owned && l->fd >= 0)
                        close(l->fd);
                if (l->unlink_path)
                        (void) unlink(l->unlink_path);
                free(l->unlink_path);
        }
        a->n_listeners = 0;
}

int rpc_acceptor_lookup(RpcAcceptor *a, int fd, RpcPeer *ret) {
        int r = -ENOENT;

        pthread_mutex_lock(&a->lock);
        if (fd >= 0 && (size_t) fd < a->n_conns && a->conns[fd].used) {
                const RpcConn *e = &a->conns[fd];
                int pidfd = -EBADF;

                r = 0;
                if (e->pidfd >= 0) {
                        pidfd = fcntl(e->pidfd, F_DUPFD_CLOEXEC, 3);
                        if (pidfd < 0)
                                r = -errno;
                }
                if (r >= 0) {
                        ret->pid = e->cred.pid;
                        ret->uid = e->cred.uid;
                        ret->gid = e->cred.gid;
                        ret->pidfd = pidfd;
                        ret->conn_id = e->conn_id;
                }
        }
        pthread_mutex_unlock(&a->lock);
        return r;
}
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
