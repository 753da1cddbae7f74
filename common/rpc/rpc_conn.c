/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
/* Unix socket connections: refcounted objects that carry SO_PEERCRED, the pidfd and
 * the attestation result for every call on them; per-uid accounts (connections and
 * calls, for the caps); the connection table the CQ thread looks calls up in; and the
 * attestation threads, which serve uids in turn so that one uid's slow or numerous
 * connections never hold up another's. See rpc_conn.h for who owns what. */

#include "rpc_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "cleanup.h"
#include "greedy_realloc.h"
#include "log.h"

uint64_t rpc_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int rpc_conn_new(RpcAcceptor *a, int fd, const PeerCred *cred, int pidfd, RpcConn **ret) {
        RpcConn *c;
        struct stat st;
        int sock;

        if (fstat(fd, &st) < 0)
                return -errno;
        sock = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (sock < 0)
                return -errno;
        c = calloc(1, sizeof(*c));
        if (!c) {
                close(sock);
                return -ENOMEM;
        }
        *c = (RpcConn){
                .n_ref = 1,
                .fd = fd,
                .sock = sock,
                .dev = st.st_dev,
                .ino = st.st_ino,
                .cred = *cred,
                .pidfd = pidfd,
                .data_free = a->cfg.attest_free,
        };
        pthread_mutex_lock(&a->lock);
        c->id = ++a->next_conn_id;
        pthread_mutex_unlock(&a->lock);
        *ret = c;
        return 0;
}

RpcConn *rpc_conn_ref(RpcConn *c) {
        if (c)
                __atomic_add_fetch(&c->n_ref, 1, __ATOMIC_RELAXED);
        return c;
}

RpcConn *rpc_conn_unref(RpcConn *c) {
        if (!c || __atomic_sub_fetch(&c->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;
        if (c->data && c->data_free)
                c->data_free(c->data);
        if (c->pidfd >= 0)
                close(c->pidfd);
        if (c->sock >= 0)
                close(c->sock);
        free(c);
        return NULL;
}

void rpc_conn_unref_list(RpcConn *gone) {
        while (gone) {
                RpcConn *next = gone->next_gone;

                rpc_conn_unref(gone);
                gone = next;
        }
}

void rpc_conn_fill_peer(const RpcConn *c, RpcPeer *ret) {
        ret->pid = c->cred.pid;
        ret->uid = c->cred.uid;
        ret->gid = c->cred.gid;
        ret->pidfd = c->pidfd;
        ret->conn_id = c->id;
        ret->conn_data = c->data;
}

/* --- per-uid accounts --- */

static RpcUidAccount **account_bucket(RpcAcceptor *a, uid_t uid) {
        return &a->accounts[(uid * 2654435761u) % RPC_UID_BUCKETS];
}

RpcUidAccount *rpc_account_get(RpcAcceptor *a, uid_t uid, bool create) {
        RpcUidAccount **b = account_bucket(a, uid), *u;

        for (u = *b; u; u = u->next)
                if (u->uid == uid)
                        return u;
        if (!create)
                return NULL;
        u = calloc(1, sizeof(*u));
        if (!u)
                return NULL;
        u->uid = uid;
        u->next = *b;
        *b = u;
        return u;
}

void rpc_account_maybe_free(RpcAcceptor *a, RpcUidAccount *u) {
        if (!u || u->n_conns > 0 || u->n_calls > 0 || u->attesting || u->queue)
                return;
        for (RpcUidAccount **p = account_bucket(a, u->uid); *p; p = &(*p)->next)
                if (*p == u) {
                        *p = u->next;
                        free(u);
                        return;
                }
}

/* --- calls --- */

int rpc_acceptor_call_begin(RpcAcceptor *a, int fd, RpcConn **ret) {
        RpcUidAccount *u;
        RpcConn *c;
        unsigned cap;
        int r = 0;

        pthread_mutex_lock(&a->lock);
        /* Under the lock: a call on a TCP port may come before rpc_acceptor_start() set
         * the configuration. */
        cap = a->cfg.limits.max_calls_per_uid;
        c = fd >= 0 && (size_t) fd < a->n_table ? a->table[fd] : NULL;
        u = c ? rpc_account_get(a, c->cred.uid, true) : NULL;
        if (!c)
                r = -ENOENT;
        else if (!u)
                r = -ENOMEM;
        else if (cap > 0 && u->n_calls >= cap)
                r = -EDQUOT;
        else {
                u->n_calls++;
                c->n_calls++;
                a->n_calls++;
                *ret = rpc_conn_ref(c);
        }
        pthread_mutex_unlock(&a->lock);
        return r;
}

void rpc_acceptor_call_end(RpcAcceptor *a, RpcConn *c) {
        RpcUidAccount *u;

        pthread_mutex_lock(&a->lock);
        u = rpc_account_get(a, c->cred.uid, false);
        if (u && u->n_calls > 0)
                u->n_calls--;
        if (a->n_calls > 0)
                a->n_calls--;
        if (c->n_calls > 0 && --c->n_calls == 0)
                c->idle_since_ms = rpc_now_ms();
        rpc_account_maybe_free(a, u);
        pthread_mutex_unlock(&a->lock);
}

/* --- the table (accept thread) --- */

int rpc_table_insert_locked(RpcAcceptor *a, RpcConn *c, RpcConn **gone) {
        RpcConn *old;
        int r;

        r = GREEDY_REALLOC0(a->table, a->n_table, (size_t) c->fd + 1);
        if (r < 0)
                return r;
        /* gRPC closed the previous connection on this fd before we noticed. */
        old = a->table[c->fd];
        if (old)
                rpc_table_remove_locked(a, old, gone);
        a->table[c->fd] = c;
        c->in_table = true;
        c->live_idx = a->n_live;
        c->idle_since_ms = rpc_now_ms();
        a->live[a->n_live++] = c;
        return 0;
}

void rpc_table_remove_locked(RpcAcceptor *a, RpcConn *c, RpcConn **gone) {
        RpcUidAccount *u;

        if (!c->in_table)
                return;
        c->in_table = false;
        if ((size_t) c->fd < a->n_table && a->table[c->fd] == c)
                a->table[c->fd] = NULL;
        a->live[c->live_idx] = a->live[--a->n_live];
        a->live[c->live_idx]->live_idx = c->live_idx;
        (void) epoll_ctl(a->epoll_fd, EPOLL_CTL_DEL, c->sock, NULL);
        u = rpc_account_get(a, c->cred.uid, false);
        if (u && u->n_conns > 0)
                u->n_conns--;
        rpc_account_maybe_free(a, u);
        c->next_gone = *gone;
        *gone = c;
}

/* --- attestation threads --- */

void rpc_attest_enqueue(RpcAcceptor *a, RpcConn *c) {
        RpcUidAccount *u;

        pthread_mutex_lock(&a->lock);
        u = rpc_account_get(a, c->cred.uid, false); /* counted at accept: it exists */
        c->next = NULL;
        if (u->queue_tail)
                u->queue_tail->next = c;
        else
                u->queue = c;
        u->queue_tail = c;
        if (!u->attesting && !u->in_ring) {
                u->in_ring = true;
                u->next_ring = NULL;
                if (a->ring_tail)
                        a->ring_tail->next_ring = u;
                else
                        a->ring = u;
                a->ring_tail = u;
                pthread_cond_signal(&a->cond);
        }
        pthread_mutex_unlock(&a->lock);
}

/* Under lock: the next connection to attest (its uid's turn), or NULL. */
static RpcConn *attest_next_locked(RpcAcceptor *a) {
        RpcUidAccount *u = a->ring;
        RpcConn *c;

        if (!u)
                return NULL;
        a->ring = u->next_ring;
        if (!a->ring)
                a->ring_tail = NULL;
        u->in_ring = false;
        c = u->queue;
        u->queue = c->next;
        if (!u->queue)
                u->queue_tail = NULL;
        u->attesting = true;
        return c;
}

/* Under lock: c's attestation is over; its uid gets back in line if it has more. */
static void attest_finished_locked(RpcAcceptor *a, RpcConn *c) {
        RpcUidAccount *u = rpc_account_get(a, c->cred.uid, false);

        u->attesting = false;
        if (u->queue && !u->in_ring) {
                u->in_ring = true;
                u->next_ring = NULL;
                if (a->ring_tail)
                        a->ring_tail->next_ring = u;
                else
                        a->ring = u;
                a->ring_tail = u;
        }
        c->next = a->done;
        a->done = c;
}

static void *attest_thread(void *p) {
        RpcAcceptor *a = p;
        uint64_t one = 1;

        pthread_mutex_lock(&a->lock);
        for (;;) {
                RpcConn *c;
                RpcConnInfo info;

                while (!a->quit && !a->ring)
                        pthread_cond_wait(&a->cond, &a->lock);
                if (a->quit)
                        break;
                c = attest_next_locked(a);
                pthread_mutex_unlock(&a->lock);

                info = (RpcConnInfo){
                        .fd = c->fd,
                        .pid = c->cred.pid,
                        .uid = c->cred.uid,
                        .gid = c->cred.gid,
                        .pidfd = c->pidfd,
                        .conn_id = c->id,
                };
                c->data = a->cfg.attest(&info, a->cfg.attest_userdata);

                pthread_mutex_lock(&a->lock);
                attest_finished_locked(a, c);
                (void) !write(a->done_fd, &one, sizeof(one));
        }
        pthread_mutex_unlock(&a->lock);
        return NULL;
}

int rpc_attest_start(RpcAcceptor *a) {
        for (size_t i = 0; i < RPC_ATTEST_THREADS; i++) {
                int r = rpc_thread_create(&a->attesters[i], "rpc-attest", attest_thread, a);

                if (r < 0)
                        return r;
                a->n_attesters++;
        }
        return 0;
}

RpcConn *rpc_attest_take_done(RpcAcceptor *a) {
        RpcConn *done;

        pthread_mutex_lock(&a->lock);
        done = TAKE_PTR(a->done);
        pthread_mutex_unlock(&a->lock);
        return done;
}

void rpc_attest_stop(RpcAcceptor *a) {
        pthread_mutex_lock(&a->lock);
        a->quit = true;
        pthread_cond_broadcast(&a->cond);
        pthread_mutex_unlock(&a->lock);
        for (size_t i = 0; i < a->n_attesters; i++)
                pthread_join(a->attesters[i], NULL);
        a->n_attesters = 0;
}
