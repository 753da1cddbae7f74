/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Internals shared by rpc_server.c, rpc_call.c, rpc_accept.c, rpc_tls.c and
 * rpc_runtime.c. Not for use outside the RPC layer. */

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <grpc/grpc.h>

#include "peercred.h"
#include "rpc.h"
#include "rpc_client.h"

/* Requests kept outstanding per registered method. */
#define RPC_REQUESTS_PER_METHOD 8
/* Unix socket listeners per server. */
#define RPC_MAX_LISTENERS 8

/* --- runtime: grpc_init refcount, logging, threads, time --- */

/* grpc_init() on first use (with async signals blocked so gRPC's threads inherit
 * the mask), gpr logs routed into our log at debug level. Balanced by unref. */
void rpc_grpc_ref(void);
void rpc_grpc_unref(void);

/* grpc_server_start() with asynchronous signals blocked. */
void rpc_grpc_start_server(grpc_server *server);

/* pthread_create() with every asynchronous signal blocked in the new thread. */
int rpc_thread_create(pthread_t *ret, const char *name, void *(*fn)(void *), void *arg);

/* Absolute realtime deadline timeout_ms from now; < 0 means infinite. */
gpr_timespec rpc_deadline_ms(int64_t timeout_ms);

/* Copies bytes into a new byte buffer. NULL on allocation failure. */
grpc_byte_buffer *rpc_byte_buffer_new(const void *data, size_t len);
/* Flattens a byte buffer into a malloc'd copy (NUL-terminated for convenience).
 * Returns 0, -EMSGSIZE beyond RPC_MAX_MESSAGE_SIZE, -ENOMEM. */
int rpc_byte_buffer_copy(grpc_byte_buffer *bb, void **ret, size_t *ret_len);

/* Channel args shared by servers and clients: message caps (and for servers the
 * per-connection stream cap). */
const grpc_channel_args *rpc_channel_args(bool server);

/* --- CQ tags --- */

typedef enum RpcTagKind {
        RPC_TAG_REQUEST,  /* data: RpcRequestSlot */
        RPC_TAG_CLOSE,    /* data: RpcCall, RECV_CLOSE_ON_SERVER done */
        RPC_TAG_SEND,     /* data: RpcCall, a send batch done */
        RPC_TAG_SHUTDOWN, /* data: RpcServer, grpc_server_shutdown_and_notify done */
} RpcTagKind;

typedef struct RpcTag {
        RpcTagKind kind;
        void *data;
} RpcTag;

/* --- server --- */

typedef struct RpcMethod {
        char *path;
        RpcKind kind;
        RpcHandler handler;
        void *userdata;
        unsigned flags;
        void *handle; /* grpc_server_register_method(); NULL for the generic slot */
} RpcMethod;

typedef struct RpcRequirement {
        char *prefix;
        char *key;
        char *value;
        char *message;
        grpc_status_code status;
} RpcRequirement;

typedef struct RpcRequestSlot {
        RpcTag tag;
        RpcServer *server;
        RpcMethod *method; /* NULL: the generic slot that answers UNIMPLEMENTED */
        grpc_call *call;
        gpr_timespec deadline;
        grpc_metadata_array md;
        grpc_byte_buffer *payload;
        grpc_call_details details;
} RpcRequestSlot;

typedef struct RpcDispatchItem RpcDispatchItem;
typedef struct RpcAcceptor RpcAcceptor;
typedef struct RpcConn RpcConn;

/* The acceptor's settings, fixed at start. */
typedef struct RpcAcceptorConfig {
        RpcConnLimits limits;
        RpcConnAttestFunc attest; /* NULL: connections go to gRPC at once */
        void (*attest_free)(void *);
        void *attest_userdata;
        RpcConnObserver observer;
        void *observer_userdata;
} RpcAcceptorConfig;

typedef struct RpcTlsServerState RpcTlsServerState;
typedef struct RpcFront RpcFront;
typedef struct RpcSerialCache RpcSerialCache;

struct RpcServer {
        grpc_server *server;
        grpc_completion_queue *cq;
        bool grpc_ref, started, shutdown_done;

        RpcMethod *methods;
        size_t n_methods;
        RpcRequirement *reqs;
        size_t n_reqs;
        RpcCallObserver call_observer; /* calls we end before a handler; CQ thread */
        void *call_observer_userdata;
        RpcRequestSlot *slots; /* RPC_REQUESTS_PER_METHOD per method, then the generic one */
        size_t n_slots;

        RpcAcceptor *acceptor;
        RpcAcceptorConfig conn_cfg; /* limits, attestation, observer */
        RpcTlsServerState **tls;
        size_t n_tls;
        RpcSerialCache *serial_cache; /* client certificate serials, by PEM */
        RpcFront *front;              /* TCP listeners: accept, limits, relay to gRPC */
        RpcTcpLimits tcp_limits;
        RpcTcpObserver tcp_observer;
        void *tcp_observer_userdata;
        char *relay_path; /* gRPC's internal socket for the relay; NULL: abstract */

        pthread_t cq_thread;
        bool cq_thread_started;
        RpcTag shutdown_tag;
        /* Taken shared around every grpc_call_start_batch and request post, taken
         * exclusive by the CQ thread to set cq_closed before it shuts the CQ down:
         * nobody may begin an operation on a shut-down CQ. */
        pthread_rwlock_t batch_lock;
        bool cq_closed;

        /* Owner-thread work: handlers and close callbacks. */
        pthread_mutex_t dispatch_lock;
        RpcDispatchItem *dispatch_head, *dispatch_tail;
        int event_fd;
        bool shutting_down; /* under dispatch_lock */

        /* Statistics (atomics). */
        uint64_t calls_started, calls_active, messages_sent, messages_coalesced;
};

/* Calls --- rpc_call.c */

typedef struct RpcMetadataEntry {
        char *key;
        char *value; /* NUL-terminated copy; value_len counts embedded NULs too */
        size_t value_len;
} RpcMetadataEntry;

struct RpcCall {
        unsigned n_ref;
        RpcServer *server;
        grpc_call *call;
        const RpcMethod *method; /* NULL for an unknown method */
        char *method_path;       /* for unknown methods; else borrowed from method */
        char *request;
        size_t request_len;
        RpcMetadataEntry *md;
        size_t n_md;
        RpcPeer peer;
        RpcConn *conn;     /* Unix socket peers: referenced, the call counted on it */
        bool peer_unknown; /* a Unix socket peer missing from the acceptor's table */
        bool over_uid_cap; /* its uid had max_calls_per_uid calls already */
        bool no_request;   /* the client half-closed without a request message */

        pthread_mutex_t lock;
        RpcTag close_tag, send_tag;
        int recv_cancelled;
        grpc_byte_buffer *inflight_msg, *queued_msg;
        bool initial_md_sent, send_in_flight, status_queued, status_sent;
        bool closed, close_fired, inline_close;
        grpc_status_code status;
        char *status_message;
        unsigned pending_ops;
        RpcCloseCallback close_cb;
        void *close_userdata;
        RpcCloseCallback sent_cb;
        void *sent_userdata;
        void *userdata;
};

/* Builds the call from a completed request slot (takes its call, metadata copy
 * and payload) and posts RECV_CLOSE_ON_SERVER. On failure the grpc_call is
 * cancelled and released. */
int rpc_call_new_from_slot(RpcServer *s, RpcRequestSlot *slot, RpcCall **ret);
/* CQ thread: completion of a RECV_CLOSE or send batch. */
void rpc_call_on_close(RpcCall *c, bool ok);
void rpc_call_on_send_done(RpcCall *c, bool ok);

/* Queues a handler or close callback for the owner thread (takes a call ref). */
int rpc_server_queue_handler(RpcServer *s, RpcCall *c);
int rpc_server_queue_close(RpcServer *s, RpcCall *c);
int rpc_server_queue_sent(RpcServer *s, RpcCall *c);

/* batch_lock taken shared; returns false (lock still held) once the CQ is shut. */
bool rpc_server_batch_begin(RpcServer *s);
void rpc_server_batch_end(RpcServer *s);

/* --- Unix socket connections --- rpc_accept.c (listeners, accept thread),
 * rpc_conn.c (connection table, per-uid accounts, attestation threads) --- */

int rpc_acceptor_new(RpcAcceptor **ret);
RpcAcceptor *rpc_acceptor_free(RpcAcceptor *a);
/* Adds a listening socket. owned: we close it (and unlink unlink_path) at stop. */
int rpc_acceptor_add(RpcAcceptor *a, int fd, bool owned, const char *unlink_path);
/* Starts the accept thread (and the attestation threads); accepted sockets go to
 * grpc_server_add_channel_from_fd. cfg is copied. */
int rpc_acceptor_start(RpcAcceptor *a, grpc_server *server, const RpcAcceptorConfig *cfg);
/* Joins our threads, closes owned listeners and unlinks their paths, drops
 * connections not handed to gRPC yet. Calls may still end afterwards
 * (rpc_acceptor_call_end() stays valid until rpc_acceptor_free()). */
void rpc_acceptor_stop(RpcAcceptor *a);
size_t rpc_acceptor_n_listeners(RpcAcceptor *a);
/* Counters for RpcServerStats. */
void rpc_acceptor_get_stats(RpcAcceptor *a, RpcServerStats *ret);

/* A call arrived on the connection gRPC knows as fd: *ret gets the connection
 * (referenced) and the call is counted against its uid. Any thread. Returns 0,
 * -ENOENT (no such connection any more), -EDQUOT (the uid is at
 * max_calls_per_uid; nothing counted). */
int rpc_acceptor_call_begin(RpcAcceptor *a, int fd, RpcConn **ret);
/* The call counted by rpc_acceptor_call_begin() is over. */
void rpc_acceptor_call_end(RpcAcceptor *a, RpcConn *c);
/* Fills the Unix socket fields of *ret from the connection (borrowed pointers). */
void rpc_conn_fill_peer(const RpcConn *c, RpcPeer *ret);
RpcConn *rpc_conn_unref(RpcConn *c);

/* --- TLS --- rpc_tls.c */

/* Server credentials whose certificates can be replaced later. */
int rpc_tls_server_new(const RpcTlsServerConfig *cfg,
                       RpcTlsServerState **ret_state,
                       grpc_server_credentials **ret_creds);
int rpc_tls_server_update(RpcTlsServerState *st, const RpcTlsServerConfig *cfg);
RpcTlsServerState *rpc_tls_server_free(RpcTlsServerState *st);

/* Client credentials: roots, optional client pair, server SPIFFE ID check. */
int rpc_tls_channel_creds_new(const RpcTlsClientConfig *cfg, grpc_channel_credentials **ret);

/* SPIFFE ID of the TLS peer of a server call: *ret = NULL when the call is not
 * TLS or has no (valid) client certificate. Returns 0 or -ENOMEM. */
int rpc_tls_peer_spiffe_id(grpc_call *call, char **ret);

/* --- client certificate serials --- rpc_serial.c */

/* Distinct client certificates remembered (direct-mapped by a hash of the PEM). */
#define RPC_SERIAL_CACHE_SLOTS 1024u
/* Longer PEM is not parsed (a leaf SVID is ~1 KiB). */
#define RPC_SERIAL_PEM_MAX (16u * 1024u)

int rpc_serial_cache_new(RpcSerialCache **ret);
/* Accepts NULL, returns NULL. */
RpcSerialCache *rpc_serial_cache_free(RpcSerialCache *c);
/* The serial (warden_x509_serial_hex() format) of the first certificate of pem (len
 * bytes, need not be NUL-terminated), from the cache or parsed and then cached. Any
 * thread. Returns 0, -EINVAL, -EMSGSIZE (longer than RPC_SERIAL_PEM_MAX), -EBADMSG
 * (no certificate), -ENOMEM. */
int rpc_serial_cache_get(RpcSerialCache *c, const char *pem, size_t len, char **ret);
/* Lookups answered from the cache and lookups that parsed. */
void rpc_serial_cache_stats(RpcSerialCache *c, uint64_t *ret_hits, uint64_t *ret_misses);
/* The serial of a server call's TLS client certificate through the cache: *ret = NULL
 * when there is none or it cannot be read (logged at debug). Returns 0 or -ENOMEM. */
int rpc_tls_peer_serial(grpc_call *call, RpcSerialCache *cache, char **ret);
