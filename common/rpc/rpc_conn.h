/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Internals of the Unix socket acceptor, shared by rpc_accept.c (listeners and the
 * accept thread) and rpc_conn.c (connections, per-uid accounts, attestation).
 *
 * Threads and ownership:
 *   accept thread   accepts, applies the per-uid and global caps, closes idle and
 *                   hung-up connections, and is the only thread that changes the
 *                   connection table, the live list and the epoll set; it hands
 *                   connections to gRPC.
 *   attest threads  (RPC_ATTEST_THREADS, only with an RpcConnAttestFunc) run the
 *                   attestation of queued connections and hand them back to the
 *                   accept thread through `done` + done_fd.
 *   CQ thread       looks connections up and counts calls (call_begin/call_end).
 * `lock` guards the table, the accounts, the queues and every field marked so.
 *
 * A connection is referenced by the table while it is live, by each call on it, and
 * by the queue while it is being attested. gRPC owns `fd` once it was handed over;
 * `sock` is our own dup of it: shutdown(sock) ends the connection for gRPC too, and
 * a hang-up on it (peer closed, or gRPC shut it down) is how we learn it is over. */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "peercred.h"
#include "rpc_internal.h"

/* Uid accounts are hashed into this many chains. */
#define RPC_UID_BUCKETS 64

struct RpcConn {
        unsigned n_ref; /* atomic */
        uint64_t id;
        int fd;   /* the number gRPC knows it by ("fd:N") */
        int sock; /* our dup of fd */
        dev_t dev;
        ino_t ino;
        PeerCred cred;
        int pidfd;
        void *data; /* the attestation's result */
        void (*data_free)(void *);

        /* under lock */
        unsigned n_calls;
        uint64_t idle_since_ms; /* when n_calls last became 0 */
        bool in_table;
        size_t live_idx;    /* index in live[] while in_table */
        RpcConn *next;      /* attestation queue of its uid, then the done list */
        RpcConn *next_gone; /* the accept thread's list of table references to drop */
};

/* Per-uid counts. Exists while any of them is non-zero. */
typedef struct RpcUidAccount {
        uid_t uid;
        unsigned n_conns;            /* accepted and not yet removed (attesting included) */
        unsigned n_calls;            /* calls counted by call_begin */
        RpcConn *queue, *queue_tail; /* waiting for attestation */
        bool attesting;              /* one of its connections is being attested */
        bool in_ring;                /* on the ready ring */
        struct RpcUidAccount *next_ring;
        struct RpcUidAccount *next;
} RpcUidAccount;

typedef struct RpcListener {
        int fd;
        bool owned;
        bool broken; /* epoll reported an error (e.g. a borrowed fd closed early) */
        char *unlink_path;
} RpcListener;

struct RpcAcceptor {
        RpcListener listeners[RPC_MAX_LISTENERS];
        size_t n_listeners;
        int stop_fd; /* eventfd: stop the accept thread */
        int done_fd; /* eventfd: attested connections on `done` */
        int epoll_fd;
        pthread_t thread;
        bool thread_started;
        grpc_server *server;
        grpc_server_credentials *creds;
        RpcAcceptorConfig cfg;
        uint64_t last_sweep_ms, last_idle_ms;
        size_t load_peak; /* connections + calls at most since the heap was last trimmed */

        pthread_mutex_t lock;
        RpcConn **table; /* indexed by fd */
        size_t n_table;
        RpcConn **live;           /* connections in the table */
        size_t n_live, n_pending; /* pending: accepted, not in the table yet */
        size_t n_calls;           /* calls counted by call_begin, all uids */
        uint64_t next_conn_id;
        RpcUidAccount *accounts[RPC_UID_BUCKETS];

        /* attestation */
        pthread_cond_t cond;
        pthread_t attesters[RPC_ATTEST_THREADS];
        size_t n_attesters;
        bool quit;
        RpcUidAccount *ring, *ring_tail; /* uids with queued connections, taking turns */
        RpcConn *done;                   /* attested, for the accept thread */

        /* counters (atomics) */
        uint64_t n_accepted, n_refused, n_evicted, n_idle_closed;
};

/* rpc_conn.c */

uint64_t rpc_now_ms(void);
/* A connection for an accepted socket (takes fd and pidfd). */
int rpc_conn_new(RpcAcceptor *a, int fd, const PeerCred *cred, int pidfd, RpcConn **ret);
RpcConn *rpc_conn_ref(RpcConn *c);

/* Under lock. */
RpcUidAccount *rpc_account_get(RpcAcceptor *a, uid_t uid, bool create);
/* Frees the account when nothing counts on it any more. */
void rpc_account_maybe_free(RpcAcceptor *a, RpcUidAccount *u);

/* Queues an accepted connection for attestation (takes the reference). */
void rpc_attest_enqueue(RpcAcceptor *a, RpcConn *c);
int rpc_attest_start(RpcAcceptor *a);
void rpc_attest_stop(RpcAcceptor *a);
/* Takes the list of attested connections (linked by next). */
RpcConn *rpc_attest_take_done(RpcAcceptor *a);

/* Accept thread, under lock: puts c in the table (dropping a dead entry on the same
 * fd into *gone) and the live list. */
int rpc_table_insert_locked(RpcAcceptor *a, RpcConn *c, RpcConn **gone);
/* Accept thread, under lock: takes c out of the table and the live list and its uid's
 * count; its table reference goes onto *gone (dropped after the current batch). */
void rpc_table_remove_locked(RpcAcceptor *a, RpcConn *c, RpcConn **gone);
/* Drops the references collected on a gone list. */
void rpc_conn_unref_list(RpcConn *gone);
