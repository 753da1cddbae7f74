/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the node API files: node_api.c (method table, authentication, helpers),
 * node_attest.c (X509PopChallenge, AttestAgent, RenewAgent), node_sync.c (Sync
 * streams), node_svid.c (BatchNewX509SVID, NewJWTSVID) and node_serial.c (which node
 * SVID serials a call may use). Main thread only, but for the signing jobs of
 * node_sign_job.c (any thread, see node_sign_job.h). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <protobuf-c/protobuf-c.h>

#include "entry.h"
#include "node_api.h"
#include "pb_util.h"
#include "rpc.h"
#include "rpc_message.h"
#include "rpc_source.h"
#include "server.h"
#include "sign_pool.h"
#include "warden/node/v1/node.pb-c.h"

#define NODE_SERVICE "/warden.node.v1.Node/"

/* The one message for every per-call authentication failure. */
#define NODE_NOT_ATTESTED "agent is not attested"

/* x509pop */
#define NODE_NONCE_SIZE 32
#define NODE_NONCE_TTL 60
#define NODE_NONCES_MAX 1024
#define NODE_X509POP_SIGNATURE_MAX 1024 /* RSA-8192 */
#define NODE_FINGERPRINT_HEX 40

/* Request caps */
#define NODE_JOIN_TOKEN_MAX 256
#define NODE_BATCH_MAX 500

/* Node SVID serials: after a renewal the replaced SVID still works until the new one is
 * first used, at most until it expires (node_serial.c). */
#define NODE_RENEWALS_MAX 4096 /* agents between a renewal and their first call with it */

typedef struct NodeNonce {
        uint8_t nonce[NODE_NONCE_SIZE];
        char fingerprint[NODE_FINGERPRINT_HEX + 1]; /* SHA-1 hex of the leaf it is bound to */
        int64_t expires_at;
} NodeNonce;

typedef struct NodeStream NodeStream;

/* The node SVID an agent renewed away from, still accepted until `until` (its expiry). */
typedef struct NodeRenewal {
        char *agent_id;
        char *prev_serial;
        int64_t until;
} NodeRenewal;

/* A handler answers the call itself (rpc_message_reply()) and returns >= 0, or returns
 * a negative errno; the
 * dispatcher then ends the call with errno_to_grpc_status(r) and *reterr_message (a
 * static string, or a generic text when the handler left it NULL). */
typedef int (*NodeHandler)(NodeApi *n, RpcCall *c, const char **reterr_message);

typedef struct NodeMethod {
        const char *name;
        RpcKind kind;
        NodeHandler handler;
} NodeMethod;

typedef struct NodeBinding {
        NodeApi *node;
        const NodeMethod *method;
} NodeBinding;

#define NODE_METHODS_MAX 8

struct NodeApi {
        Server *server;
        STACK_OF(X509) * x509pop_roots; /* NULL: x509pop disabled */
        NodeNonce *nonces;              /* oldest first */
        size_t n_nonces;
        NodeStream *streams;   /* open Sync streams (doubly linked) */
        NodeStream **by_agent; /* hash table of streams by agent ID (node_sync_fanout.c) */
        size_t n_buckets, n_table;
        NodeStream *dirty; /* streams with something to send */
        struct SyncBundleCache *bundles;
        size_t n_bundles, allocated_bundles;
        size_t max_entries;    /* per agent (-maxEntriesPerAgent) */
        NodeRenewal *renewals; /* NODE_RENEWALS_MAX slots once used, unordered */
        size_t n_renewals;
        NodeBinding bindings[NODE_METHODS_MAX];
        RpcSourceTable *attest_rate; /* -attestRatePerSource buckets; NULL = no limit */
        SignPool *sign_pool;         /* -signingThreads; NULL = sign on the main thread */
        bool closing;
};

/* _cleanup_ for any protobuf-c message pointer (pb_free()). */
static inline void node_pb_freep(void *p) {
        pb_free(*(void **) p);
}

/* ---- node_api.c ---- */

/* Per-call authentication: the caller's client certificate names an agent that is in
 * the datastore and not banned, and is that agent's current node SVID (or the one it
 * just renewed away from, see node_serial_check()). On success *ret (optional) is that
 * agent and its last_seen is updated. Failures are logged at info and return -EPERM (the caller
 * answers PERMISSION_DENIED with NODE_NOT_ATTESTED), or a datastore error. */
int node_authenticate(NodeApi *n, RpcCall *c, AttestedAgent **ret);
/* DER copies of every certificate into a protobuf repeated bytes field. */
int node_chain_to_pb(STACK_OF(X509) * chain, ProtobufCBinaryData **ret, size_t *ret_n);
/* The public key of a peer's DER CSR (-EINVAL "missing CSR" / "invalid CSR"). */
int node_csr_public_key(const ProtobufCBinaryData *csr,
                        EVP_PKEY **ret,
                        const char **reterr_message);
/* Signs an X.509-SVID with the CA (server_sign_x509_svid(), counted as kind); a CA
 * failure is logged and becomes -EIO ("signing failed"). */
int node_sign_svid(NodeApi *n,
                   const char *kind,
                   EVP_PKEY *pub,
                   const char *spiffe_id,
                   const char *const *dns_names,
                   size_t n_dns_names,
                   int64_t ttl,
                   int64_t now,
                   STACK_OF(X509) * *ret_chain,
                   const char **reterr_message);

/* ---- node_attest.c ---- */

int node_attest_agent(NodeApi *n, RpcCall *c, const char **reterr_message);
/* Takes one attestation attempt (AttestAgent, X509PopChallenge) from the caller's
 * address: -EDQUOT (RESOURCE_EXHAUSTED, *reterr_message set, counted in
 * node_api_limited) beyond -attestRatePerSource, else 0. */
int node_attest_rate_check(NodeApi *n, RpcCall *c, const char **reterr_message);
int node_renew_agent(NodeApi *n, RpcCall *c, const char **reterr_message);

/* ---- node_x509pop.c ---- */

int node_x509pop_challenge(NodeApi *n, RpcCall *c, const char **reterr_message);
/* Checks an x509pop proof for csr: the chain verifies to the -x509popCA roots, the
 * nonce was issued for this leaf and is unexpired (consumed here), and the signature
 * over x509pop_payload() (x509pop.h) verifies with the leaf's key. On success
 * *ret_agent_id = spiffe://<td>/warden/agent/x509pop/<sha1 of leaf> and *ret_chain the
 * verified path (leaf first, ending with the trust anchor; certificates the node sent
 * that are not on it are dropped). -EOPNOTSUPP when x509pop is disabled, -EINVAL for a
 * malformed proof, -EPERM for one that does not hold. */
int node_x509pop_verify_proof(NodeApi *n,
                              const Warden__Node__V1__X509PopProof *proof,
                              const ProtobufCBinaryData *csr,
                              int64_t now,
                              char **ret_agent_id,
                              STACK_OF(X509) * *ret_chain,
                              const char **reterr_message);
/* Adds x509pop:subject:cn:<CN>, x509pop:ca:fingerprint:<sha1> (each CA above the
 * leaf on the verified path in chain, including the configured root that issued it) and
 * x509pop:san:dns:<name> (each DNS SAN). Values that are not valid selector values are
 * skipped, and so is everything past the set's cap. */
int node_x509pop_selectors(NodeApi *n, STACK_OF(X509) * chain, SelectorSet *sel);

/* ---- node_serial.c ---- */

/* 0 when serial (the caller's certificate, warden_x509_serial_hex() format) is a's
 * current node SVID serial, or the previous one before it expired; -EPERM otherwise,
 * also when either is NULL. Seeing the current serial ends the previous one. */
int node_serial_check(NodeApi *n, const AttestedAgent *a, const char *serial, int64_t now);
/* When the node SVID of serial, which passed node_serial_check() for a, expires: a's
 * recorded expiry for its current serial, the recorded one for the previous; 0 when
 * neither. */
int64_t node_serial_expires_at(NodeApi *n, const AttestedAgent *a, const char *serial);
/* After a renewal authenticated with prev_serial (NULL: none known), expiring at
 * prev_expires_at: that SVID stays usable until the new one is used, or it expires. */
void node_serial_renewed(NodeApi *n,
                         const char *agent_id,
                         const char *prev_serial,
                         int64_t prev_expires_at,
                         int64_t now);
/* After a (re-)attestation: no earlier SVID of agent_id is accepted any more. */
void node_serial_forget(NodeApi *n, const char *agent_id);
/* Frees every record (node_api_free()). */
void node_serial_free_all(NodeApi *n);

/* ---- node_sync.c ---- */

int node_sync(NodeApi *n, RpcCall *c, const char **reterr_message);
/* Detaches and frees every stream record (after the RPC server has shut down). */
void node_sync_free_all(NodeApi *n);

/* ---- node_svid.c ---- */

int node_batch_new_x509_svid(NodeApi *n, RpcCall *c, const char **reterr_message);
int node_new_jwt_svid(NodeApi *n, RpcCall *c, const char **reterr_message);
