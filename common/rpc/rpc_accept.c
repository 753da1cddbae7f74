/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
/* The accept thread of Unix socket listeners.
 *
 * We accept every client ourselves: accept4(NONBLOCK) → SO_PEERCRED + pidfd → the
 * per-uid cap → (attestation on the attest threads) → the connection table →
 * grpc_server_add_channel_from_fd(). Calls then name their connection "fd:N" and
 * look it up in the table while the call pins the connection (so N cannot be reused
 * meanwhile). One epoll set holds the stop and done eventfds, the listeners and our
 * dup of every live connection: a hang-up there means the peer closed or gRPC shut
 * the connection down. gRPC may also close its fd without a shutdown; a sweep every
 * few seconds finds those entries (fd closed or now another file). At the global cap
 * the oldest idle connection is shut down to make room; connections without a call
 * for the idle timeout are shut down too. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>

#include "cleanup.h"
#include "log.h"
#include "rpc_conn.h"

#define RPC_ACCEPT_BACKOFF_MS 100
#define RPC_ACCEPT_SWEEP_MS 5000
#define RPC_ACCEPT_IDLE_CHECK_MS 1000
/* Accepted per listener wake-up before looking at other events again. */
#define RPC_ACCEPT_BURST 32
/* The heap is trimmed once connections + calls fell this far below their peak. */
#define RPC_ACCEPT_TRIM_AFTER 256

/* epoll_event.data.u64: the kind in the top byte, the rest an index. Kind 0 is a live
 * connection, whose data.ptr is the RpcConn (user-space pointers leave the top byte 0). */
enum {
        EV_STOP = 1,
        EV_DONE = 2,
        EV_LISTENER = 3,
};
#define EV_KIND_SHIFT 56
#define EV_KIND(u) ((unsigned) ((u) >> EV_KIND_SHIFT))
#define EV_TAG(kind, x) (((uint64_t) (kind) << EV_KIND_SHIFT) | (uint64_t) (x))

int rpc_acceptor_new(RpcAcceptor **ret) {
        RpcAcceptor *a = calloc(1, sizeof(*a));

        if (!a)
                return -ENOMEM;
        a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        a->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        a->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        pthread_mutex_init(&a->lock, NULL);
        pthread_cond_init(&a->cond, NULL);
        if (a->stop_fd < 0 || a->done_fd < 0 || a->epoll_fd < 0) {
                int r = -errno;

                rpc_acceptor_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

static void unadmit_uid(RpcAcceptor *a, uid_t uid);

/* Drops a connection that never reached gRPC: we still own its fd. */
static void conn_drop_pending(RpcAcceptor *a, RpcConn *c) {
        unadmit_uid(a, c->cred.uid);
        close(c->fd);
        rpc_conn_unref(c);
}

RpcAcceptor *rpc_acceptor_free(RpcAcceptor *a) {
        RpcConn *gone = NULL;

        if (!a)
                return NULL;
        rpc_acceptor_stop(a);
        pthread_mutex_lock(&a->lock);
        while (a->n_live > 0)
                rpc_table_remove_locked(a, a->live[0], &gone);
        pthread_mutex_unlock(&a->lock);
        rpc_conn_unref_list(gone);
        for (size_t i = 0; i < RPC_UID_BUCKETS; i++)
                while (a->accounts[i]) {
                        RpcUidAccount *u = a->accounts[i];

                        a->accounts[i] = u->next;
                        free(u);
                }
        free(a->table);
        free(a->live);
        if (a->creds)
                grpc_server_credentials_release(a->creds);
        closep(&a->stop_fd);
        closep(&a->done_fd);
        closep(&a->epoll_fd);
        pthread_cond_destroy(&a->cond);
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

void rpc_acceptor_get_stats(RpcAcceptor *a, RpcServerStats *ret) {
        ret->connections_accepted = __atomic_load_n(&a->n_accepted, __ATOMIC_RELAXED);
        ret->connections_refused = __atomic_load_n(&a->n_refused, __ATOMIC_RELAXED);
        ret->connections_evicted = __atomic_load_n(&a->n_evicted, __ATOMIC_RELAXED);
        ret->connections_idle_closed = __atomic_load_n(&a->n_idle_closed, __ATOMIC_RELAXED);
        pthread_mutex_lock(&a->lock);
        ret->connections_open = a->n_live;
        pthread_mutex_unlock(&a->lock);
}

static void observe(RpcAcceptor *a, RpcConnEvent ev, uid_t uid, uint64_t *counter) {
        __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
        if (a->cfg.observer)
                a->cfg.observer(ev, uid, a->cfg.observer_userdata);
}

/* Shuts a live connection down (gRPC sees end-of-file and lets go of it). */
static void conn_close_locked(RpcAcceptor *a, RpcConn *c, RpcConn **gone) {
        (void) shutdown(c->sock, SHUT_RDWR);
        rpc_table_remove_locked(a, c, gone);
}

/* Drops entries whose fd gRPC closed without a shutdown (or that now name another
 * file). Under lock. */
static void sweep_closed_locked(RpcAcceptor *a, RpcConn **gone) {
        for (size_t i = 0; i < a->n_live;) {
                RpcConn *c = a->live[i];
                struct stat st;

                if (fstat(c->fd, &st) >= 0 && st.st_dev == c->dev && st.st_ino == c->ino)
                        i++;
                else
                        rpc_table_remove_locked(a, c, gone); /* moved another into slot i */
        }
        a->last_sweep_ms = rpc_now_ms();
}

/* Closes connections idle for the idle timeout. Under lock. */
static void sweep_idle_locked(RpcAcceptor *a, RpcConn **gone) {
        uint64_t now = rpc_now_ms(), limit = a->cfg.limits.idle_timeout_ms;

        a->last_idle_ms = now;
        if (limit == 0)
                return;
        for (size_t i = 0; i < a->n_live;) {
                RpcConn *c = a->live[i];

                if (c->n_calls > 0 || now - c->idle_since_ms < limit) {
                        i++;
                        continue;
                }
                log_debug("rpc: closing connection %" PRIu64 " of uid %u, idle for %" PRIu64 " ms",
                          c->id, (unsigned) c->cred.uid, now - c->idle_since_ms);
                observe(a, RPC_CONN_IDLE_CLOSED, c->cred.uid, &a->n_idle_closed);
                conn_close_locked(a, c, gone);
        }
}

/* At the global cap: shuts down the connection idle for the longest. Returns true
 * when one was closed. Under lock. */
static bool evict_idle_locked(RpcAcceptor *a, RpcConn **gone) {
        RpcConn *oldest = NULL;

        for (size_t i = 0; i < a->n_live; i++) {
                RpcConn *c = a->live[i];

                if (c->n_calls == 0 && (!oldest || c->idle_since_ms < oldest->idle_since_ms))
                        oldest = c;
        }
        if (!oldest)
                return false;
        log_debug("rpc: connection cap reached, closing idle connection %" PRIu64 " of uid %u",
                  oldest->id, (unsigned) oldest->cred.uid);
        observe(a, RPC_CONN_EVICTED, oldest->cred.uid, &a->n_evicted);
        conn_close_locked(a, oldest, gone);
        return true;
}

/* Whether a client waits in the listen backlog. */
static bool backlog_pending(int lfd) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};

        return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* Room for one more connection? At the cap, and only for a client that is really
 * waiting, makes some by closing the connection idle for the longest. */
static bool make_room(RpcAcceptor *a, int lfd, RpcConn **gone) {
        unsigned max = a->cfg.limits.max_connections;
        bool ok;

        pthread_mutex_lock(&a->lock);
        if (a->n_live + a->n_pending >= max)
                sweep_closed_locked(a, gone);
        ok = a->n_live + a->n_pending < max;
        pthread_mutex_unlock(&a->lock);
        if (ok || !backlog_pending(lfd))
                return ok;
        pthread_mutex_lock(&a->lock);
        ok = a->n_live + a->n_pending < max || evict_idle_locked(a, gone);
        pthread_mutex_unlock(&a->lock);
        return ok;
}

/* Undoes admit_uid(). */
static void unadmit_uid(RpcAcceptor *a, uid_t uid) {
        RpcUidAccount *u;

        pthread_mutex_lock(&a->lock);
        a->n_pending--;
        u = rpc_account_get(a, uid, false);
        if (u && u->n_conns > 0)
                u->n_conns--;
        rpc_account_maybe_free(a, u);
        pthread_mutex_unlock(&a->lock);
}

/* Counts a new connection against its uid; false when the uid is at its cap. */
static bool admit_uid(RpcAcceptor *a, uid_t uid) {
        unsigned cap = a->cfg.limits.max_connections_per_uid;
        RpcUidAccount *u;
        bool ok;

        pthread_mutex_lock(&a->lock);
        u = rpc_account_get(a, uid, true);
        ok = u && (cap == 0 || u->n_conns < cap);
        if (ok) {
                u->n_conns++;
                a->n_pending++;
        }
        pthread_mutex_unlock(&a->lock);
        return ok;
}

/* Hands an attested (or not to be attested) connection to gRPC. */
static void conn_go_live(RpcAcceptor *a, RpcConn *c, RpcConn **gone) {
        /* No event asked for: EPOLLHUP (both directions shut) comes anyway. */
        struct epoll_event ev = {.events = 0, .data.ptr = c};
        int r;

        pthread_mutex_lock(&a->lock);
        r = rpc_table_insert_locked(a, c, gone);
        if (r >= 0) {
                a->n_pending--;
                if (epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, c->sock, &ev) < 0)
                        log_debug_errno(-errno, "rpc: cannot watch connection %" PRIu64 ": %m",
                                        c->id);
        }
        pthread_mutex_unlock(&a->lock);
        if (r < 0) {
                log_debug_errno(r, "rpc: no room for connection %" PRIu64 ", closing: %m", c->id);
                conn_drop_pending(a, c);
                return;
        }
        log_debug("rpc: connection %" PRIu64 " from pid %d uid %u on fd %d", c->id,
                  (int) c->cred.pid, (unsigned) c->cred.uid, c->fd);
        /* Counted first: the connection may serve calls before this returns. */
        __atomic_add_fetch(&a->n_accepted, 1, __ATOMIC_RELAXED);
        /* gRPC owns c->fd from here on and closes it; the table holds our reference. */
        grpc_server_add_channel_from_fd(a->server, c->fd, a->creds);
}

/* The client went away or a signal interrupted us: just try the next one. */
static bool accept_error_is_transient(int e) {
        return e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED || e == EPROTO;
}

/* Returns 1 (accepted or refused one), 0 (nothing to accept), or < 0 to back off for
 * a while: -EBUSY at the connection cap, -EMFILE/-ENFILE/-ENOMEM/... otherwise. */
static int accept_one(RpcAcceptor *a, int lfd, RpcConn **gone) {
        _cleanup_close_ int fd = -EBADF, pidfd = -EBADF;
        PeerCred cred;
        RpcConn *c;
        int r;

        if (!make_room(a, lfd, gone))
                return backlog_pending(lfd) ? -EBUSY : 0;
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
                if (accept_error_is_transient(errno))
                        return 0;
                return log_debug_errno(-errno, "rpc: accept4() failed, backing off: %m");
        }
        r = peercred_get(fd, &cred);
        if (r < 0) {
                log_debug_errno(r, "rpc: no peer credentials on new connection, closing: %m");
                return 1;
        }
        if (!admit_uid(a, cred.uid)) {
                log_debug("rpc: uid %u is at its connection cap, closing a new connection",
                          (unsigned) cred.uid);
                observe(a, RPC_CONN_REFUSED_UID, cred.uid, &a->n_refused);
                return 1;
        }
        r = peercred_get_pidfd(fd, cred.pid, &pidfd);
        if (r < 0 && r != -EMFILE && r != -ENFILE)
                log_debug_errno(r, "rpc: no pidfd for peer pid %d: %m", (int) cred.pid);
        if (r >= 0 || r == -ESRCH)
                r = rpc_conn_new(a, fd, &cred, pidfd, &c);
        if (r < 0) {
                unadmit_uid(a, cred.uid);
                return r;
        }
        TAKE_FD(fd);
        TAKE_FD(pidfd);
        if (a->cfg.attest)
                rpc_attest_enqueue(a, c);
        else
                conn_go_live(a, c, gone);
        return 1;
}

/* Accepts up to a burst from one listener. Returns < 0 to back off. */
static int accept_burst(RpcAcceptor *a, int lfd, RpcConn **gone) {
        for (size_t i = 0; i < RPC_ACCEPT_BURST; i++) {
                int r = accept_one(a, lfd, gone);

                if (r <= 0)
                        return r;
        }
        return 0;
}

static void take_done(RpcAcceptor *a, RpcConn **gone) {
        uint64_t v;
        RpcConn *c;

        (void) !read(a->done_fd, &v, sizeof(v));
        c = rpc_attest_take_done(a);
        while (c) {
                RpcConn *next = c->next;

                conn_go_live(a, c, gone);
                c = next;
        }
}

/* After a flood of connections or calls went away, give the heap back to the system
 * (glibc keeps freed memory in its arenas otherwise). */
static void maybe_trim(RpcAcceptor *a) {
        size_t load;

        pthread_mutex_lock(&a->lock);
        load = a->n_live + a->n_calls;
        pthread_mutex_unlock(&a->lock);
        if (load > a->load_peak)
                a->load_peak = load;
        if (a->load_peak - load >= RPC_ACCEPT_TRIM_AFTER) {
                (void) malloc_trim(0);
                a->load_peak = load;
        } else if (load == 0)
                a->load_peak = 0; /* a small peak, gone: nothing worth trimming */
}

static int wait_timeout(RpcAcceptor *a, uint64_t backoff_until) {
        size_t n;

        if (backoff_until > 0)
                return RPC_ACCEPT_BACKOFF_MS; /* leave clients in the backlog */
        pthread_mutex_lock(&a->lock);
        n = a->n_live;
        pthread_mutex_unlock(&a->lock);
        if (n == 0) /* nothing to sweep; a peak still to trim after is checked each second */
                return a->load_peak > 0 ? RPC_ACCEPT_IDLE_CHECK_MS : -1;
        return a->cfg.limits.idle_timeout_ms > 0 ? RPC_ACCEPT_IDLE_CHECK_MS : RPC_ACCEPT_SWEEP_MS;
}

/* Listeners are watched unless backing off (then the backlog holds new clients). */
static void watch_listeners(RpcAcceptor *a, bool on) {
        for (size_t i = 0; i < a->n_listeners; i++) {
                struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_TAG(EV_LISTENER, i)};

                if (!a->listeners[i].broken)
                        (void) epoll_ctl(a->epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
                                         a->listeners[i].fd, &ev);
        }
}

/* One epoll event. Returns true to stop the thread. */
static bool handle_event(RpcAcceptor *a,
                         const struct epoll_event *ev,
                         bool *backoff,
                         RpcConn **gone) {
        unsigned kind = EV_KIND(ev->data.u64);

        if (kind == EV_STOP)
                return true;
        if (kind == EV_DONE)
                take_done(a, gone);
        else if (kind == EV_LISTENER) {
                RpcListener *l = &a->listeners[ev->data.u64 & 0xff];

                if (ev->events & (EPOLLERR | EPOLLHUP)) {
                        log_debug("rpc: listener fd %d failed, no longer accepting on it", l->fd);
                        (void) epoll_ctl(a->epoll_fd, EPOLL_CTL_DEL, l->fd, NULL);
                        l->broken = true;
                } else if (!*backoff && accept_burst(a, l->fd, gone) < 0)
                        *backoff = true;
        } else if (ev->events & (EPOLLHUP | EPOLLERR)) {
                /* A live connection (data.ptr): both directions are shut. */
                RpcConn *c = ev->data.ptr;

                pthread_mutex_lock(&a->lock);
                rpc_table_remove_locked(a, c, gone);
                pthread_mutex_unlock(&a->lock);
        }
        return false;
}

static void *acceptor_thread(void *p) {
        RpcAcceptor *a = p;
        uint64_t backoff_until = 0;
        bool stop = false;

        watch_listeners(a, true);
        while (!stop) {
                struct epoll_event evs[64];
                RpcConn *gone = NULL;
                bool backoff = backoff_until > 0;
                int n;

                n = epoll_wait(a->epoll_fd, evs, ELEMENTSOF(evs), wait_timeout(a, backoff_until));
                if (n < 0 && errno != EINTR)
                        log_debug_errno(-errno, "rpc: epoll_wait() failed: %m");
                /* References of removed connections are dropped after the batch: a later
                 * event in it may still point at one. */
                for (int i = 0; i < n && !stop; i++)
                        stop = handle_event(a, &evs[i], &backoff, &gone);
                if (backoff && backoff_until == 0) {
                        backoff_until = rpc_now_ms() + RPC_ACCEPT_BACKOFF_MS;
                        watch_listeners(a, false);
                } else if (backoff_until > 0 && rpc_now_ms() >= backoff_until) {
                        backoff_until = 0;
                        watch_listeners(a, true);
                }

                pthread_mutex_lock(&a->lock);
                if (a->n_live > 0 && rpc_now_ms() - a->last_idle_ms >= RPC_ACCEPT_IDLE_CHECK_MS)
                        sweep_idle_locked(a, &gone);
                if (a->n_live > 0 && rpc_now_ms() - a->last_sweep_ms >= RPC_ACCEPT_SWEEP_MS)
                        sweep_closed_locked(a, &gone);
                pthread_mutex_unlock(&a->lock);
                rpc_conn_unref_list(gone);
                maybe_trim(a);
        }
        return NULL;
}

int rpc_acceptor_start(RpcAcceptor *a, grpc_server *server, const RpcAcceptorConfig *cfg) {
        struct epoll_event stop = {.events = EPOLLIN, .data.u64 = EV_TAG(EV_STOP, 0)};
        struct epoll_event done = {.events = EPOLLIN, .data.u64 = EV_TAG(EV_DONE, 0)};
        int r;

        if (cfg->limits.max_connections == 0)
                return -EINVAL;
        /* The CQ thread already runs: rpc_acceptor_call_begin() reads the limits. */
        pthread_mutex_lock(&a->lock);
        a->cfg = *cfg;
        pthread_mutex_unlock(&a->lock);
        a->live = calloc(cfg->limits.max_connections, sizeof(*a->live));
        a->creds = grpc_insecure_server_credentials_create();
        if (!a->live || !a->creds)
                return -ENOMEM;
        a->server = server;
        a->last_sweep_ms = a->last_idle_ms = rpc_now_ms();
        if (epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, a->stop_fd, &stop) < 0 ||
            epoll_ctl(a->epoll_fd, EPOLL_CTL_ADD, a->done_fd, &done) < 0)
                return -errno;
        if (cfg->attest) {
                r = rpc_attest_start(a);
                if (r < 0)
                        return r;
        }
        r = rpc_thread_create(&a->thread, "rpc-accept", acceptor_thread, a);
        if (r < 0)
                return r;
        a->thread_started = true;
        return 0;
}

void rpc_acceptor_stop(RpcAcceptor *a) {
        RpcConn *c;

        if (!a)
                return;
        rpc_attest_stop(a);
        if (a->thread_started) {
                uint64_t one = 1;

                (void) !write(a->stop_fd, &one, sizeof(one));
                pthread_join(a->thread, NULL);
                a->thread_started = false;
        }
        /* Connections that never reached gRPC: queued, attested but not taken. */
        c = rpc_attest_take_done(a);
        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < RPC_UID_BUCKETS; i++)
                for (RpcUidAccount *u = a->accounts[i]; u; u = u->next) {
                        if (u->queue_tail) {
                                u->queue_tail->next = c;
                                c = u->queue;
                        }
                        u->queue = u->queue_tail = NULL;
                        u->in_ring = false;
                }
        a->ring = a->ring_tail = NULL;
        pthread_mutex_unlock(&a->lock);
        while (c) {
                RpcConn *next = c->next;

                conn_drop_pending(a, c);
                c = next;
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
