/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The agent's side of the node API (proto/warden/node/v1/node.proto): TLS channel
 * management and one blocking function per RPC.
 *
 * ServerCreds holds what every connection needs, under a mutex: the server address,
 * the roots that must sign the server's certificate (our bundle), and the node SVID +
 * key for mutual TLS. Each thread that talks to the server keeps its own ServerConn,
 * which rebuilds its channel whenever the credentials changed (generation counter) or
 * after the server was unreachable (a fresh channel skips gRPC's own reconnect
 * back-off). The server must present exactly spiffe://<td>/warden/server.
 *
 * RPC functions return 0, or a negative errno: the call's non-OK status mapped by
 * rpc_status_to_errno() (PERMISSION_DENIED -EPERM, UNAVAILABLE -EAGAIN, ...), -EBADMSG
 * for an answer that does not parse or breaks the caps below. *reterr_message (if
 * not NULL) gets the server's status message (malloc'd, may be NULL). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <warden/bundle.h>

#include "cleanup.h"
#include "manager.h"
#include "rpc_client.h"
#include "warden/node/v1/node.pb-c.h"

/* Deadline of every unary call. */
#define SERVER_CALL_TIMEOUT_MS 15000
/* Caps on what the server sends. */
#define SERVER_JWT_TOKEN_MAX (16 * 1024)

#define NODE_METHOD_X509POP_CHALLENGE "/warden.node.v1.Node/X509PopChallenge"
#define NODE_METHOD_ATTEST_AGENT "/warden.node.v1.Node/AttestAgent"
#define NODE_METHOD_RENEW_AGENT "/warden.node.v1.Node/RenewAgent"
#define NODE_METHOD_SYNC "/warden.node.v1.Node/Sync"
#define NODE_METHOD_BATCH_NEW_X509_SVID "/warden.node.v1.Node/BatchNewX509SVID"
#define NODE_METHOD_NEW_JWT_SVID "/warden.node.v1.Node/NewJWTSVID"

typedef struct ServerCreds ServerCreds;

/* target: "host:port"; trust_domain: bare name (the server's ID is derived). */
int server_creds_new(const char *target, const char *trust_domain, ServerCreds **ret);
ServerCreds *server_creds_free(ServerCreds *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(ServerCreds *, server_creds_free)

/* Replaces the roots with the bundle's X.509 authorities (-EINVAL if it has none). */
int server_creds_set_roots(ServerCreds *c, const WardenBundle *bundle);
/* Replaces the client identity (chain leaf first + key); NULLs clear it. */
int server_creds_set_identity(ServerCreds *c, STACK_OF(X509) * chain, EVP_PKEY *key);

/* A thread's connection. Zero-initialize, set .creds; release with server_conn_done. */
typedef struct ServerConn {
        ServerCreds *creds; /* borrowed */
        RpcChannel *channel;
        uint64_t generation;
        bool mtls;
} ServerConn;

/* The channel to use now: (re)built if missing, if the credentials changed, or if the
 * mutual-TLS requirement differs. mtls: present the node SVID (-ENOKEY when there is
 * none). -ENOKEY also when no roots are set. Borrowed until the next call. */
int server_conn_channel(ServerConn *conn, bool mtls, RpcChannel **ret);
/* Drops the channel (next use builds a fresh one). */
void server_conn_reset(ServerConn *conn);
void server_conn_done(ServerConn *conn);

/* X509PopChallenge: the nonce for this chain (*ret_nonce malloc'd, 1..1024 bytes). */
int server_x509pop_challenge(RpcChannel *ch,
                             STACK_OF(X509) * chain,
                             uint8_t **ret_nonce,
                             size_t *ret_len,
                             char **reterr_message);

/* AttestAgent; *ret is an unpacked response (pb_free). */
int server_attest_agent(RpcChannel *ch,
                        const Warden__Node__V1__AttestAgentRequest *req,
                        Warden__Node__V1__AttestAgentResponse **ret,
                        char **reterr_message);

/* RenewAgent: the new chain for csr (DER). */
int server_renew_agent(RpcChannel *ch,
                       const uint8_t *csr,
                       size_t csr_len,
                       STACK_OF(X509) * *ret_chain,
                       char **reterr_message);

/* Opens the Sync stream. */
int server_sync_open(RpcChannel *ch, uint64_t last_sequence, RpcStream **ret);
/* Next Sync message: 1 with *ret (pb_free), 0 when the stream ended (*ret_status and
 * *reterr_message tell why), -ETIMEDOUT when nothing came within timeout_ms, -EBADMSG
 * for a message that does not parse, other -errno. */
int server_sync_next(RpcStream *st,
                     int64_t timeout_ms,
                     Warden__Node__V1__SyncResponse **ret,
                     int *ret_status,
                     char **reterr_message);

/* BatchNewX509SVID with the ManagerBackend contract: results[i] answers requests[i]
 * (matched by entry_id; a request the server did not answer gets -EPROTO). */
int server_batch_sign(RpcChannel *ch,
                      const ManagerSignRequest *requests,
                      size_t n,
                      ManagerSignResult *results);

/* The ManagerSignResults of a BatchNewX509SVID answer, matched to the n requests by
 * entry_id: r = 0 and the chain joined (1..WARDEN_X509_CHAIN_MAX_CERTS certs, at most
 * WARDEN_X509_CHAIN_MAX_BYTES, malloc'd), the server's refusal as a -errno, -EBADMSG for
 * a chain over the caps, or -EPROTO for a request the answer has nothing for. Results for
 * no request and repeated ones are ignored. */
void server_sign_results_from_pb(const Warden__Node__V1__BatchNewX509SVIDResponse *resp,
                                 const ManagerSignRequest *requests,
                                 size_t n,
                                 ManagerSignResult *results);

/* NewJWTSVID. */
int server_new_jwt(RpcChannel *ch,
                   const char *entry_id,
                   const char *const *audiences,
                   size_t n_audiences,
                   char **ret_token,
                   int64_t *ret_expires_at,
                   int64_t *ret_issued_at);

/* The chain as DER joined end to end from repeated bytes fields (1..16 certs). */
int server_chain_from_pb(const ProtobufCBinaryData *certs, size_t n, STACK_OF(X509) * *ret);
