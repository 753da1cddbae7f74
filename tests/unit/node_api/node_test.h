/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* In-process fixture for the node API tests: a Server with a real datastore, CA and
 * TLS listener whose handlers run on the test's main thread (so the datastore stays
 * single-threaded), and blocking clients that run on helper threads while the main
 * thread dispatches. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <protobuf-c/protobuf-c.h>

#include "rpc_client.h"
#include "server.h"

#define NT_TD "example.org"
#define NT_NODE "/warden.node.v1.Node/"

typedef struct NodeFx {
        char *dir;
        Server *s;
        int port;
        char *roots_pem; /* the CA bundle's roots */
        /* x509pop site CA */
        EVP_PKEY *site_key;
        X509 *site_cert;
        unsigned signing_threads; /* -signingThreads of the server (0: main thread) */
} NodeFx;

/* An agent identity for mutual TLS. */
typedef struct NodeId {
        char *spiffe_id;
        char *cert_pem;
        char *key_pem;
} NodeId;

void node_fx_init(NodeFx *fx, bool x509pop);
/* The same with signing_threads signing threads (node_fx_init(): none). */
void node_fx_init_signing(NodeFx *fx, bool x509pop, unsigned signing_threads);
/* Stops the server (ending its streams) and starts a new one on the same port, CA and
 * datastore, as a restart of warden-server does. */
void node_fx_restart(NodeFx *fx);
void node_fx_done(NodeFx *fx);
/* Runs rpc_server_dispatch() for up to ms, or until done(userdata) is true. */
void node_fx_pump(NodeFx *fx, bool (*done)(void *), void *userdata, int ms);

/* One unary call (repeated `repeat` times on one channel; the last answer is kept)
 * from a helper thread, with id as client certificate (NULL: none). Returns the
 * status; *ret (optional) is the unpacked response of desc on OK. */
int node_fx_call(NodeFx *fx,
                 const NodeId *id,
                 const char *method,
                 const void *req,
                 unsigned repeat,
                 const ProtobufCMessageDescriptor *desc,
                 void **ret,
                 char **ret_message);

/* One unary call on a helper thread of its own (timeout_ms 0: 20 s), so that several
 * can be in flight at once; node_fx_call_finish() dispatches until it is done, returns
 * its status and frees it (*ret as node_fx_call()). */
typedef struct NodeFxCall NodeFxCall;
NodeFxCall *node_fx_call_start(
        NodeFx *fx, const NodeId *id, const char *method, const void *req, int timeout_ms);
bool node_fx_call_done(NodeFxCall *c);
int node_fx_call_finish(NodeFxCall *c, const ProtobufCMessageDescriptor *desc, void **ret);

/* A DER CSR for a new P-256 key (*ret_key optional). */
void node_fx_csr(EVP_PKEY **ret_key, ProtobufCBinaryData *ret_csr);

/* The value of a series of a metric in fx's registry (counter count, gauge value,
 * histogram observation count); label_values NULL for a family without labels. */
double node_fx_metric(NodeFx *fx, Metric *m, const char *const *label_values);

/* Attests with a join token (created here unless it exists); the node SVID becomes
 * *ret. */
void node_fx_attest_join(NodeFx *fx, const char *token, NodeId *ret);
void node_id_done(NodeId *id);

/* A leaf for x509pop signed by the site CA (DNS SAN dns), with its key. */
void node_fx_site_leaf(NodeFx *fx, const char *dns, X509 **ret_cert, EVP_PKEY **ret_key);

/* A Sync stream read on a helper thread. */
typedef struct NodeSyncClient {
        NodeFx *fx;
        NodeId *id;
        pthread_t thread;
        atomic_int n_msgs;
        atomic_int last_entries; /* entries held after the last message */
        atomic_int n_deltas;
        char **held; /* entry ids held (the thread's) */
        size_t n_held;
        uint64_t applied;
        atomic_bool ended;
        atomic_bool opened;
        int status;
        RpcChannel *ch;
        RpcStream *st;
} NodeSyncClient;

void node_sync_start(NodeSyncClient *c, NodeFx *fx, NodeId *id);
/* Waits (dispatching) until the stream got n messages; false on timeout. */
bool node_sync_wait_msgs(NodeSyncClient *c, int n, int ms);
bool node_sync_wait_end(NodeSyncClient *c, int ms);
void node_sync_stop(NodeSyncClient *c);

/* The x509pop and Sync test group (test_node_x509pop.c). */
int test_x509pop_main(void);
