/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
/* The TCP front of TLS listeners (see rpc_front.h): one thread, one epoll set with the
 * stop eventfd, the listeners and both ends of every relayed connection.
 *
 * Accepting: at max_connections the oldest unauthenticated connection is closed when a
 * client waits, else the listeners rest (clients wait in the backlog); a source at
 * max_unauth_per_source has its new connection closed at once; EMFILE/ENFILE (or fewer
 * than RPC_FRONT_FD_SPARE free descriptors, which gRPC needs to accept our side) pause
 * accepting for RPC_FRONT_BACKOFF_MS instead of failing for good. Unauthenticated
 * connections older than handshake_timeout_ms are closed. The CQ thread marks a
 * connection authenticated when a call with a verified client certificate arrives on
 * it (rpc_front_call_peer()); calls without one (node attestation) do not count. */

#include "rpc_front.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "rpc_conn.h"

#define RPC_FRONT_BACKOFF_MS 100
#define RPC_FRONT_BURST 32
#define RPC_FRONT_HASH 1024u
/* Descriptors kept free for gRPC (its side of each connection) and the rest of the
 * process; and per connection the descriptors it costs: ours two, gRPC's one. */
#define RPC_FRONT_FD_SPARE 32
#define RPC_FRONT_FD_RESERVE 128
#define RPC_FRONT_FDS_PER_CONN 3
/* A closed connection counts against the cap until gRPC has closed its end of our Unix
 * socket too (its descriptor is in use until then): at most this many at once, each at
 * most this long. */
#define RPC_FRONT_DRAINS_MAX 16
#define RPC_FRONT_DRAIN_MS 2000

typedef struct RpcFrontListener {
        int fd;
        struct sockaddr_un target;
        socklen_t target_len;
} RpcFrontListener;

struct RpcFront {
        pthread_mutex_t lock; /* the lists, the hash, authed */
        int epoll_fd, stop_fd;
        RpcFrontListener listeners[RPC_MAX_LISTENERS];
        size_t n_listeners;
        bool watching;

        RpcTcpLimits limits;
        unsigned max_conns; /* limits.max_connections, lowered to the fd limit */
        rlim_t nofile;
        RpcTcpObserver observer;
        void *observer_userdata;
        RpcSourceTable *sources; /* unauthenticated connections per address */

        pthread_t thread;
        bool thread_started;

        RpcFrontConn *head, *tail;   /* all, oldest first */
        RpcFrontConn *uhead, *utail; /* unauthenticated, oldest first */
        RpcFrontConn *hash[RPC_FRONT_HASH];
        RpcFrontConn *graveyard; /* closed in this epoll batch, freed after it */
        RpcFrontConn *draining;  /* closed, gRPC's end still open (prev/next), oldest last */
        size_t n_conns;          /* open and draining ones */
        size_t n_draining;
        bool wait_drain; /* listeners unwatched until a drain ends */

        uint64_t n_accepted, n_refused, n_evicted, n_timeouts, n_backoffs; /* atomics */
};

int rpc_front_new(RpcFront **ret) {
        RpcFront *f = calloc(1, sizeof(*f));
        int r;

        if (!f)
                return -ENOMEM;
        pthread_mutex_init(&f->lock, NULL);
        f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        f->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (f->stop_fd < 0 || f->epoll_fd < 0) {
                r = -errno;
                rpc_front_free(f);
                return r;
        }
        *ret = f;
        return 0;
}

int rpc_front_add(RpcFront *f, int fd, const struct sockaddr_un *target, socklen_t target_len) {
        if (f->n_listeners >= RPC_MAX_LISTENERS)
                return -E2BIG;
        f->listeners[f->n_listeners++] =
                (RpcFrontListener){.fd = fd, .target = *target, .target_len = target_len};
        return 0;
}

size_t rpc_front_n_listeners(RpcFront *f) {
        return f ? f->n_listeners : 0;
}

static void observe(RpcFront *f, RpcTcpEvent ev, const char *source, uint64_t *counter) {
        __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
        if (f->observer)
                f->observer(ev, source, f->observer_userdata);
}

static RpcFrontConn **hash_chain(RpcFront *f, uint32_t name) {
        return &f->hash[(name ^ (name >> 10)) % RPC_FRONT_HASH];
}

static void unauth_unlink_locked(RpcFront *f, RpcFrontConn *c) {
        if (c->uprev)
                c->uprev->unext = c->unext;
        else
                f->uhead = c->unext;
        if (c->unext)
                c->unext->uprev = c->uprev;
        else
                f->utail = c->uprev;
        c->uprev = c->unext = NULL;
}

static void watch_listeners(RpcFront *f, bool on);

/* The end of a drain: gRPC closed its end (or took too long); freed after the batch. */
static void drain_finish_locked(RpcFront *f, RpcFrontConn *c) {
        if (!c->draining)
                return;
        c->draining = false;
        if (c->prev)
                c->prev->next = c->next;
        else
                f->draining = c->next;
        if (c->next)
                c->next->prev = c->prev;
        f->n_draining--;
        f->n_conns--;
        rpc_relay_done(f->epoll_fd, c);
        c->next = f->graveyard;
        f->graveyard = c;
}

/* Closes our TCP end and half-closes the Unix one: gRPC reads end-of-file and closes its
 * end, which EPOLLHUP tells us. 0, or -errno when the connection cannot drain. */
static int drain_start_locked(RpcFront *f, RpcFrontConn *c) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &c->end[1]};
        RpcRelayEnd *u = &c->end[1];

        if (u->fd < 0 || shutdown(u->fd, SHUT_WR) < 0)
                return -errno;
        if (epoll_ctl(f->epoll_fd, u->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, u->fd, &ev) < 0)
                return -errno;
        u->events = ev.events;
        if (c->end[0].fd >= 0) {
                if (c->end[0].events)
                        (void) epoll_ctl(f->epoll_fd, EPOLL_CTL_DEL, c->end[0].fd, NULL);
                close(c->end[0].fd);
                c->end[0].fd = -EBADF;
                c->end[0].events = 0;
        }
        c->draining = true;
        c->drain_ms = rpc_now_ms();
        c->prev = NULL;
        c->next = f->draining;
        if (f->draining)
                f->draining->prev = c;
        f->draining = c;
        f->n_draining++;
        return 0;
}

/* Reads and drops what gRPC still sends; false once its end is closed. */
static bool drain_handle(RpcRelayEnd *e, uint32_t events) {
        char buf[4096];
        ssize_t n;

        if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP))
                return false;
        do
                n = recv(e->fd, buf, sizeof(buf), MSG_DONTWAIT);
        while (n > 0 || (n < 0 && errno == EINTR));
        return n < 0 && errno == EAGAIN;
}

/* Ends drains past RPC_FRONT_DRAIN_MS (gRPC never took the connection from its backlog,
 * or is stuck): the descriptor is ours to close either way. */
static void sweep_drains_locked(RpcFront *f, uint64_t now) {
        RpcFrontConn *c = f->draining, *next;

        for (; c; c = next) {
                next = c->next;
                if (now - c->drain_ms >= RPC_FRONT_DRAIN_MS)
                        drain_finish_locked(f, c);
        }
}

/* Takes a connection out of every list and closes it; freed after the epoll batch. With
 * drain, its Unix end stays until gRPC has closed the other end (drain_start_locked()). */
static void conn_close_locked_full(RpcFront *f, RpcFrontConn *c, bool drain) {
        if (c->dead)
                return;
        c->dead = true;
        if (!c->authed) {
                unauth_unlink_locked(f, c);
                rpc_source_conn_release(f->sources, &c->source);
        }
        for (RpcFrontConn **p = hash_chain(f, c->name); *p; p = &(*p)->hnext)
                if (*p == c) {
                        *p = c->hnext;
                        break;
                }
        if (c->prev)
                c->prev->next = c->next;
        else
                f->head = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                f->tail = c->prev;
        if (drain && drain_start_locked(f, c) >= 0)
                return;
        f->n_conns--;
        rpc_relay_done(f->epoll_fd, c);
        c->next = f->graveyard;
        f->graveyard = c;
}

static void conn_close_locked(RpcFront *f, RpcFrontConn *c) {
        conn_close_locked_full(f, c, true);
}

static void conn_close(RpcFront *f, RpcFrontConn *c) {
        pthread_mutex_lock(&f->lock);
        conn_close_locked(f, c);
        pthread_mutex_unlock(&f->lock);
}

static void free_graveyard(RpcFront *f) {
        while (f->graveyard) {
                RpcFrontConn *c = f->graveyard;

                f->graveyard = c->next;
                free(c);
        }
}

/* Connects a new socket, bound to an autobound abstract address, to gRPC. */
static int relay_connect(RpcFront *f, const RpcFrontListener *l, int *ret_fd, uint32_t *ret_name) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        socklen_t len = sizeof(sa_family_t);
        char name[6] = {};
        char *end = NULL;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* Lowest free number first: this high means few are left for gRPC. */
        if ((rlim_t) fd + RPC_FRONT_FD_SPARE >= f->nofile)
                return -EMFILE;
        if (bind(fd, (struct sockaddr *) &sa, len) < 0)
                return -errno;
        len = sizeof(sa);
        if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        /* Linux autobind: a NUL and five hex digits. */
        if (len != offsetof(struct sockaddr_un, sun_path) + 6 || sa.sun_path[0] != '\0')
                return -EPROTO;
        memcpy(name, sa.sun_path + 1, 5);
        *ret_name = (uint32_t) strtoul(name, &end, 16);
        if (!end || *end)
                return -EPROTO;
        if (connect(fd, (const struct sockaddr *) &l->target, l->target_len) < 0)
                return -errno; /* EAGAIN: gRPC's backlog is full */
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static bool backlog_pending(int lfd) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};

        return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/* Room for one more? At the cap, for a client that really waits, closes the oldest
 * unauthenticated connection; its slot is free once gRPC has closed its end too (the
 * listeners wait for that: f->wait_drain). */
static bool make_room(RpcFront *f, int lfd) {
        RpcFrontConn *victim = NULL;

        if (f->n_conns < f->max_conns)
                return true;
        if (!backlog_pending(lfd))
                return false;
        pthread_mutex_lock(&f->lock);
        if (f->n_draining < RPC_FRONT_DRAINS_MAX)
                victim = f->uhead;
        if (victim) {
                log_debug("rpc: TCP connection cap %u reached, closing the oldest "
                          "unauthenticated connection (from %s)",
                          f->max_conns, victim->source_text);
                observe(f, RPC_TCP_EVICTED, victim->source_text, &f->n_evicted);
                conn_close_locked(f, victim);
        }
        if (f->n_draining > 0)
                f->wait_drain = true;
        pthread_mutex_unlock(&f->lock);
        return f->n_conns < f->max_conns;
}

static int conn_new(RpcFront *f, int fd, int ufd, uint32_t name, const RpcSourceAddr *src) {
        RpcFrontConn *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        c->end[0].fd = fd;
        c->end[1].fd = ufd;
        c->source = *src;
        rpc_source_addr_to_string(src, c->source_text);
        c->name = name;
        c->accepted_ms = rpc_now_ms();
        r = rpc_relay_init(c);
        pthread_mutex_lock(&f->lock);
        c->prev = f->tail;
        if (f->tail)
                f->tail->next = c;
        else
                f->head = c;
        f->tail = c;
        c->uprev = f->utail;
        if (f->utail)
                f->utail->unext = c;
        else
                f->uhead = c;
        f->utail = c;
        c->hnext = *hash_chain(f, name);
        *hash_chain(f, name) = c;
        f->n_conns++;
        if (r < 0 || !rpc_relay_update(f->epoll_fd, c))
                conn_close_locked(f, c);
        pthread_mutex_unlock(&f->lock);
        return r;
}

static bool accept_error_is_transient(int e) {
        return e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ECONNABORTED || e == EPROTO;
}

/* 1: accepted or refused one; 0: nothing to accept; < 0: back off for a while. */
static int accept_one(RpcFront *f, const RpcFrontListener *l) {
        _cleanup_close_ int fd = -EBADF, ufd = -EBADF;
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        char text[48];
        RpcSourceAddr src;
        uint32_t name = 0;
        int r;

        if (!make_room(f, l->fd)) {
                if (f->wait_drain)
                        return 0; /* a drain ends soon and watches the listeners again */
                return backlog_pending(l->fd) ? -EBUSY : 0;
        }
        fd = accept4(l->fd, (struct sockaddr *) &ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
                return accept_error_is_transient(errno) ? 0 : -errno;
        if (rpc_source_addr_from_sockaddr((struct sockaddr *) &ss, &src) < 0)
                return 1;
        rpc_source_addr_to_string(&src, text);
        r = rpc_source_conn_admit(f->sources, &src);
        if (r < 0) {
                log_debug_errno(r, "rpc: refusing a TCP connection from %s: %m", text);
                observe(f, RPC_TCP_REFUSED_SOURCE, text, &f->n_refused);
                return 1;
        }
        r = relay_connect(f, l, &ufd, &name);
        if (r < 0) {
                rpc_source_conn_release(f->sources, &src);
                log_debug_errno(r, "rpc: cannot relay a TCP connection from %s: %m", text);
                return r == -EMFILE || r == -ENFILE || r == -ENOBUFS || r == -ENOMEM ? r : 1;
        }
        /* conn_new() owns both from here, and closes them on failure. */
        r = conn_new(f, TAKE_FD(fd), TAKE_FD(ufd), name, &src);
        if (r < 0)
                return r;
        __atomic_add_fetch(&f->n_accepted, 1, __ATOMIC_RELAXED);
        return 1;
}

static void watch_listeners(RpcFront *f, bool on) {
        if (f->watching == on)
                return;
        for (size_t i = 0; i < f->n_listeners; i++) {
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &f->listeners[i]};

                (void) epoll_ctl(f->epoll_fd, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
                                 f->listeners[i].fd, &ev);
        }
        f->watching = on;
}

/* Closes unauthenticated connections past the handshake timeout. */
static void sweep_handshakes(RpcFront *f, uint64_t now) {
        uint64_t limit = f->limits.handshake_timeout_ms;

        if (limit == 0)
                return;
        pthread_mutex_lock(&f->lock);
        while (f->uhead && now - f->uhead->accepted_ms >= limit) {
                RpcFrontConn *c = f->uhead;

                log_debug("rpc: closing TCP connection from %s, not authenticated after %" PRIu64
                          " ms",
                          c->source_text, now - c->accepted_ms);
                observe(f, RPC_TCP_HANDSHAKE_TIMEOUT, c->source_text, &f->n_timeouts);
                conn_close_locked(f, c);
        }
        pthread_mutex_unlock(&f->lock);
}

/* How long epoll may sleep: until the next handshake deadline or the end of a back-off. */
static int front_timeout(RpcFront *f, uint64_t now, uint64_t backoff_until) {
        uint64_t t = UINT64_MAX;

        if (backoff_until > 0)
                t = backoff_until > now ? backoff_until - now : 0;
        pthread_mutex_lock(&f->lock);
        if (f->uhead && f->limits.handshake_timeout_ms > 0) {
                uint64_t due = f->uhead->accepted_ms + f->limits.handshake_timeout_ms;

                due = due > now ? due - now : 0;
                if (due < t)
                        t = due;
        }
        if (f->draining && t > 100)
                t = 100; /* drains past their time are ended by the loop */
        pthread_mutex_unlock(&f->lock);
        return t == UINT64_MAX ? -1 : t >= 1000 ? 1000 : (int) t + 1;
}

/* One epoll event; true to stop. */
static bool front_event(RpcFront *f, const struct epoll_event *ev, bool *backoff) {
        void *p = ev->data.ptr;

        if (p == &f->stop_fd)
                return true;
        if (p >= (void *) f->listeners && p < (void *) (f->listeners + RPC_MAX_LISTENERS)) {
                RpcFrontListener *l = p;

                for (size_t i = 0; i < RPC_FRONT_BURST && !*backoff; i++) {
                        int r = accept_one(f, l);

                        if (r < 0)
                                *backoff = true;
                        if (r <= 0)
                                break;
                }
                return false;
        }
        RpcRelayEnd *e = p;

        if (e->conn->draining) {
                if (e == &e->conn->end[1] && !drain_handle(e, ev->events)) {
                        pthread_mutex_lock(&f->lock);
                        drain_finish_locked(f, e->conn);
                        pthread_mutex_unlock(&f->lock);
                }
                return false;
        }
        if (!e->conn->dead && !rpc_relay_handle(f->epoll_fd, e, ev->events))
                conn_close(f, e->conn);
        return false;
}

static void *front_thread(void *p) {
        RpcFront *f = p;
        uint64_t backoff_until = 0;
        bool stop = false;

        watch_listeners(f, true);
        while (!stop) {
                struct epoll_event evs[64];
                bool backoff = false;
                uint64_t now = rpc_now_ms();
                int n;

                n = epoll_wait(f->epoll_fd, evs, ELEMENTSOF(evs),
                               front_timeout(f, now, backoff_until));
                if (n < 0 && errno != EINTR)
                        log_debug_errno(-errno, "rpc: epoll_wait() failed: %m");
                for (int i = 0; i < n && !stop; i++)
                        stop = front_event(f, &evs[i], &backoff);
                free_graveyard(f);
                now = rpc_now_ms();
                if (backoff && backoff_until == 0) {
                        observe(f, RPC_TCP_ACCEPT_BACKOFF, "", &f->n_backoffs);
                        backoff_until = now + RPC_FRONT_BACKOFF_MS;
                        watch_listeners(f, false);
                } else if (backoff_until > 0 && now >= backoff_until) {
                        backoff_until = 0;
                        watch_listeners(f, true);
                }
                sweep_handshakes(f, now);
                pthread_mutex_lock(&f->lock);
                sweep_drains_locked(f, now);
                if (f->wait_drain && f->n_conns < f->max_conns) {
                        f->wait_drain = false;
                        if (backoff_until == 0)
                                watch_listeners(f, true);
                }
                pthread_mutex_unlock(&f->lock);
                if (f->wait_drain)
                        watch_listeners(f, false);
                free_graveyard(f);
        }
        return NULL;
}

int rpc_front_start(RpcFront *f, const RpcTcpLimits *limits, RpcTcpObserver cb, void *userdata) {
        struct epoll_event stop = {.events = EPOLLIN, .data.ptr = &f->stop_fd};
        struct rlimit rl;
        rlim_t budget;
        int r;

        if (limits->max_connections == 0)
                return -EINVAL;
        f->limits = *limits;
        f->observer = cb;
        f->observer_userdata = userdata;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return -errno;
        f->nofile = rl.rlim_cur;
        budget = f->nofile > RPC_FRONT_FD_RESERVE + RPC_FRONT_FDS_PER_CONN
                         ? (f->nofile - RPC_FRONT_FD_RESERVE) / RPC_FRONT_FDS_PER_CONN
                         : 1;
        f->max_conns = (rlim_t) limits->max_connections > budget ? (unsigned) budget
                                                                 : limits->max_connections;
        if (f->max_conns < limits->max_connections)
                log_debug("rpc: at most %u TCP connections with %llu open files (asked for %u)",
                          f->max_conns, (unsigned long long) f->nofile, limits->max_connections);
        r = rpc_source_table_new(limits->max_unauth_per_source, 0, 0, &f->sources);
        if (r < 0)
                return r;
        if (epoll_ctl(f->epoll_fd, EPOLL_CTL_ADD, f->stop_fd, &stop) < 0)
                return -errno;
        r = rpc_thread_create(&f->thread, "rpc-tcp", front_thread, f);
        if (r < 0)
                return r;
        f->thread_started = true;
        return 0;
}

void rpc_front_stop(RpcFront *f) {
        if (!f)
                return;
        if (f->thread_started) {
                uint64_t one = 1;

                (void) !write(f->stop_fd, &one, sizeof(one));
                pthread_join(f->thread, NULL);
                f->thread_started = false;
        }
        pthread_mutex_lock(&f->lock);
        while (f->head)
                conn_close_locked_full(f, f->head, false);
        while (f->draining)
                drain_finish_locked(f, f->draining);
        f->wait_drain = false;
        pthread_mutex_unlock(&f->lock);
        free_graveyard(f);
        for (size_t i = 0; i < f->n_listeners; i++) {
                RpcFrontListener *l = &f->listeners[i];

                close(l->fd);
                if (l->target.sun_path[0] == '/')
                        (void) unlink(l->target.sun_path);
        }
        f->n_listeners = 0;
}

RpcFront *rpc_front_free(RpcFront *f) {
        if (!f)
                return NULL;
        rpc_front_stop(f);
        rpc_source_table_free(f->sources);
        closep(&f->stop_fd);
        closep(&f->epoll_fd);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return NULL;
}

void rpc_front_call_peer(RpcFront *f, const char *name, bool authed, char ret_source[static 48]) {
        char *end = NULL;
        uint32_t n;

        ret_source[0] = '\0';
        if (!f || strlen(name) != 5)
                return;
        n = (uint32_t) strtoul(name, &end, 16);
        if (!end || *end)
                return;
        pthread_mutex_lock(&f->lock);
        for (RpcFrontConn *c = *hash_chain(f, n); c; c = c->hnext) {
                if (c->name != n || c->dead)
                        continue;
                memcpy(ret_source, c->source_text, sizeof(c->source_text));
                if (authed && !c->authed) {
                        c->authed = true;
                        unauth_unlink_locked(f, c);
                        rpc_source_conn_release(f->sources, &c->source);
                }
                break;
        }
        pthread_mutex_unlock(&f->lock);
}

void rpc_front_get_stats(RpcFront *f, RpcServerStats *ret) {
        ret->tcp_max_connections = f->max_conns;
        ret->tcp_connections_accepted = __atomic_load_n(&f->n_accepted, __ATOMIC_RELAXED);
        ret->tcp_refused_source = __atomic_load_n(&f->n_refused, __ATOMIC_RELAXED);
        ret->tcp_evicted = __atomic_load_n(&f->n_evicted, __ATOMIC_RELAXED);
        ret->tcp_handshake_timeouts = __atomic_load_n(&f->n_timeouts, __ATOMIC_RELAXED);
        ret->tcp_accept_backoffs = __atomic_load_n(&f->n_backoffs, __ATOMIC_RELAXED);
        pthread_mutex_lock(&f->lock);
        ret->tcp_connections_open = f->n_conns;
        pthread_mutex_unlock(&f->lock);
}
