/* SPDX-License-Identifier: Apache-2.0 */
/* The node API client: TLS credentials shared between threads, per-thread channels,
 * and one blocking function per RPC (protobuf encode -> rpc_unary -> decode). */
#define _GNU_SOURCE

#include "server_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "log.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "rpc_status.h"

struct ServerCreds {
        pthread_mutex_t lock;
        char *target;
        char *server_id;
        char *roots_pem;
        char *chain_pem;
        char *key_pem; /* secret */
        uint64_t generation;
};

int server_creds_new(const char *target, const char *trust_domain, ServerCreds **ret) {
        _cleanup_(server_creds_freep) ServerCreds *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);
        c->target = strdup(target);
        if (!c->target)
                return -ENOMEM;
        r = warden_spiffeid_format(trust_domain, "/warden/server", &c->server_id);
        if (r < 0)
                return r;
        c->generation = 1;
        *ret = TAKE_PTR(c);
        return 0;
}

ServerCreds *server_creds_free(ServerCreds *c) {
        if (!c)
                return NULL;
        free(c->target);
        free(c->server_id);
        free(c->roots_pem);
        free(c->chain_pem);
        erase_and_free(c->key_pem);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
}

int server_creds_set_roots(ServerCreds *c, const WardenBundle *bundle) {
        char *pem = NULL;
        int r;

        if (warden_bundle_n_x509_authorities(bundle) == 0)
                return -EINVAL;
        r = warden_bundle_to_pem(bundle, &pem);
        if (r < 0)
                return r;
        pthread_mutex_lock(&c->lock);
        if (c->roots_pem && streq(c->roots_pem, pem)) {
                free(pem);
        } else {
                free(c->roots_pem);
                c->roots_pem = pem;
                c->generation++;
        }
        pthread_mutex_unlock(&c->lock);
        return 0;
}

int server_creds_set_identity(ServerCreds *c, STACK_OF(X509) * chain, EVP_PKEY *key) {
        _cleanup_free_ char *chain_pem = NULL;
        _cleanup_erase_ char *key_pem = NULL;
        int r;

        if (chain && key) {
                r = warden_x509_chain_to_pem(chain, &chain_pem);
                if (r >= 0)
                        r = warden_key_to_pem(key, &key_pem);
                if (r < 0)
                        return r;
        }
        pthread_mutex_lock(&c->lock);
        free(c->chain_pem);
        erase_and_free(c->key_pem);
        c->chain_pem = TAKE_PTR(chain_pem);
        c->key_pem = TAKE_PTR(key_pem);
        c->generation++;
        pthread_mutex_unlock(&c->lock);
        return 0;
}

int server_conn_channel(ServerConn *conn, bool mtls, RpcChannel **ret) {
        ServerCreds *c = conn->creds;
        int r = 0;

        pthread_mutex_lock(&c->lock);
        if (conn->channel && conn->generation == c->generation && conn->mtls == mtls)
                goto out;
        if (!c->roots_pem || (mtls && !c->chain_pem)) {
                r = -ENOKEY;
                goto out;
        }
        conn->channel = rpc_channel_free(conn->channel);
        r = rpc_channel_new_tls(c->target,
                                &(RpcTlsClientConfig){
                                        .roots_pem = c->roots_pem,
                                        .cert_chain_pem = mtls ? c->chain_pem : NULL,
                                        .key_pem = mtls ? c->key_pem : NULL,
                                        .expected_server_id = c->server_id,
                                },
                                &conn->channel);
        if (r >= 0) {
                conn->generation = c->generation;
                conn->mtls = mtls;
        }
out:
        pthread_mutex_unlock(&c->lock);
        if (r >= 0)
                *ret = conn->channel;
        return r;
}

void server_conn_reset(ServerConn *conn) {
        conn->channel = rpc_channel_free(conn->channel);
}

void server_conn_done(ServerConn *conn) {
        if (conn)
                server_conn_reset(conn);
}

/* Packs req, calls method, unpacks the answer as resp_desc. */
static int call_unary(RpcChannel *ch,
                      const char *method,
                      const void *req,
                      const ProtobufCMessageDescriptor *resp_desc,
                      void **ret,
                      char **reterr_message) {
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_free_ void *resp = NULL;
        _cleanup_free_ char *msg = NULL;
        size_t len, resp_len = 0;
        int r, status = GRPC_STATUS_OK;

        r = pb_pack(req, &buf, &len);
        if (r < 0)
                return r;
        r = rpc_unary(ch, method, NULL, 0, buf, len, SERVER_CALL_TIMEOUT_MS, &resp, &resp_len,
                      &status, &msg);
        if (r < 0)
                return r;
        if (status != GRPC_STATUS_OK) {
                log_debug("%s: %s: %s", method, rpc_status_to_string(status), strna(msg));
                if (reterr_message)
                        *reterr_message = TAKE_PTR(msg);
                return rpc_status_to_errno(status);
        }
        *ret = protobuf_c_message_unpack(resp_desc, NULL, resp_len, resp);
        explicit_erase(resp, resp_len); /* may hold a token */
        if (!*ret)
                return -EBADMSG;
        return 0;
}

int server_chain_from_pb(const ProtobufCBinaryData *certs, size_t n, STACK_OF(X509) * *ret) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;

        if (n == 0 || n > WARDEN_X509_CHAIN_MAX_CERTS)
                return -EBADMSG;
        chain = sk_X509_new_null();
        if (!chain)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(X509_freep) X509 *cert = NULL;
                int r = warden_x509_from_der(certs[i].data, certs[i].len, &cert);
                if (r < 0)
                        return r == -ENOMEM ? r : -EBADMSG;
                if (!sk_X509_push(chain, cert))
                        return -ENOMEM;
                cert = NULL;
        }
        *ret = TAKE_PTR(chain);
        return 0;
}

int server_x509pop_challenge(RpcChannel *ch,
                             STACK_OF(X509) * chain,
                             uint8_t **ret_nonce,
                             size_t *ret_len,
                             char **reterr_message) {
        Warden__Node__V1__X509PopChallengeRequest req =
                WARDEN__NODE__V1__X509_POP_CHALLENGE_REQUEST__INIT;
        Warden__Node__V1__X509PopChallengeResponse *resp = NULL;
        ProtobufCBinaryData certs[WARDEN_X509_CHAIN_MAX_CERTS] = {};
        size_t n = (size_t) sk_X509_num(chain);
        int r = 0;

        if (n == 0 || n > WARDEN_X509_CHAIN_MAX_CERTS)
                return -EINVAL;
        for (size_t i = 0; i < n && r >= 0; i++)
                r = warden_x509_to_der(sk_X509_value(chain, (int) i), &certs[i].data,
                                       &certs[i].len);
        req.n_cert_chain = n;
        req.cert_chain = certs;
        if (r >= 0)
                r = call_unary(ch, NODE_METHOD_X509POP_CHALLENGE, &req,
                               &warden__node__v1__x509_pop_challenge_response__descriptor,
                               (void **) &resp, reterr_message);
        for (size_t i = 0; i < n; i++)
                free(certs[i].data);
        if (r < 0)
                return r;
        if (resp->nonce.len == 0 || resp->nonce.len > 1024) {
                pb_free(resp);
                return -EBADMSG;
        }
        *ret_nonce = TAKE_PTR(resp->nonce.data);
        *ret_len = resp->nonce.len;
        resp->nonce.len = 0;
        pb_free(resp);
        return 0;
}

int server_attest_agent(RpcChannel *ch,
                        const Warden__Node__V1__AttestAgentRequest *req,
                        Warden__Node__V1__AttestAgentResponse **ret,
                        char **reterr_message) {
        return call_unary(ch, NODE_METHOD_ATTEST_AGENT, req,
                          &warden__node__v1__attest_agent_response__descriptor, (void **) ret,
                          reterr_message);
}

int server_renew_agent(RpcChannel *ch,
                       const uint8_t *csr,
                       size_t csr_len,
                       STACK_OF(X509) * *ret_chain,
                       char **reterr_message) {
        Warden__Node__V1__RenewAgentRequest req = WARDEN__NODE__V1__RENEW_AGENT_REQUEST__INIT;
        Warden__Node__V1__RenewAgentResponse *resp = NULL;
        int r;

        req.csr.data = (uint8_t *) csr;
        req.csr.len = csr_len;
        r = call_unary(ch, NODE_METHOD_RENEW_AGENT, &req,
                       &warden__node__v1__renew_agent_response__descriptor, (void **) &resp,
                       reterr_message);
        if (r < 0)
                return r;
        r = server_chain_from_pb(resp->svid_chain, resp->n_svid_chain, ret_chain);
        pb_free(resp);
        return r;
}

int server_sync_open(RpcChannel *ch, uint64_t last_sequence, RpcStream **ret) {
        Warden__Node__V1__SyncRequest req = WARDEN__NODE__V1__SYNC_REQUEST__INIT;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;
        int r;

        req.last_sequence = last_sequence;
        r = pb_pack(&req, &buf, &len);
        if (r < 0)
                return r;
        return rpc_stream_open(ch, NODE_METHOD_SYNC, NULL, 0, buf, len, ret);
}

int server_sync_next(RpcStream *st,
                     int64_t timeout_ms,
                     Warden__Node__V1__SyncResponse **ret,
                     int *ret_status,
                     char **reterr_message) {
        _cleanup_free_ void *msg = NULL;
        size_t len = 0;
        int r;

        r = rpc_stream_next(st, timeout_ms, &msg, &len);
        if (r < 0)
                return r;
        if (r == 0) {
                (void) rpc_stream_status(st, ret_status, reterr_message);
                return 0;
        }
        *ret = (Warden__Node__V1__SyncResponse *) protobuf_c_message_unpack(
                &warden__node__v1__sync_response__descriptor, NULL, len, msg);
        return *ret ? 1 : -EBADMSG;
}

/* Joins a result's chain into one DER buffer. */
static int join_chain(const Warden__Node__V1__X509SVIDResult *res, ManagerSignResult *out) {
        size_t total = 0, off = 0;
        uint8_t *buf;

        if (res->n_svid_chain == 0 || res->n_svid_chain > WARDEN_X509_CHAIN_MAX_CERTS)
                return -EBADMSG;
        for (size_t i = 0; i < res->n_svid_chain; i++) {
                /* An empty certificate is malformed (and its data pointer is NULL). */
                if (res->svid_chain[i].len == 0)
                        return -EBADMSG;
                total += res->svid_chain[i].len;
                if (total > WARDEN_X509_CHAIN_MAX_BYTES)
                        return -EBADMSG;
        }
        buf = malloc(total);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < res->n_svid_chain; i++) {
                memcpy(buf + off, res->svid_chain[i].data, res->svid_chain[i].len);
                off += res->svid_chain[i].len;
        }
        out->chain_der = buf;
        out->chain_len = total;
        return 0;
}

void server_sign_results_from_pb(const Warden__Node__V1__BatchNewX509SVIDResponse *resp,
                                 const ManagerSignRequest *requests,
                                 size_t n,
                                 ManagerSignResult *results) {
        for (size_t i = 0; i < n; i++)
                results[i] = (ManagerSignResult){.r = -EPROTO};
        for (size_t j = 0; j < resp->n_results && j < MANAGER_BATCH_MAX * 2; j++) {
                const Warden__Node__V1__X509SVIDResult *res = resp->results[j];
                for (size_t i = 0; i < n; i++) {
                        if (!streq(requests[i].entry_id, res->entry_id) || results[i].r != -EPROTO)
                                continue;
                        if (res->status != GRPC_STATUS_OK) {
                                log_debug("Server refused to sign for entry %s: %s: %s",
                                          res->entry_id, rpc_status_to_string(res->status),
                                          strna(res->message));
                                results[i].r = rpc_status_to_errno(res->status);
                        } else
                                results[i].r = join_chain(res, &results[i]);
                        break;
                }
        }
}

int server_batch_sign(RpcChannel *ch,
                      const ManagerSignRequest *requests,
                      size_t n,
                      ManagerSignResult *results) {
        Warden__Node__V1__BatchNewX509SVIDRequest req =
                WARDEN__NODE__V1__BATCH_NEW_X509_SVIDREQUEST__INIT;
        Warden__Node__V1__BatchNewX509SVIDResponse *resp = NULL;
        _cleanup_free_ Warden__Node__V1__X509SVIDParams *params = NULL;
        _cleanup_free_ Warden__Node__V1__X509SVIDParams **ptrs = NULL;
        int r;

        if (n == 0 || n > MANAGER_BATCH_MAX)
                return -EINVAL;
        params = calloc(n, sizeof(*params));
        ptrs = calloc(n, sizeof(*ptrs));
        if (!params || !ptrs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                warden__node__v1__x509_svidparams__init(&params[i]);
                params[i].entry_id = (char *) requests[i].entry_id;
                params[i].csr.data = (uint8_t *) requests[i].csr;
                params[i].csr.len = requests[i].csr_len;
                ptrs[i] = &params[i];
        }
        req.n_params = n;
        req.params = ptrs;
        r = call_unary(ch, NODE_METHOD_BATCH_NEW_X509_SVID, &req,
                       &warden__node__v1__batch_new_x509_svidresponse__descriptor, (void **) &resp,
                       NULL);
        if (r < 0)
                return r;
        server_sign_results_from_pb(resp, requests, n, results);
        pb_free(resp);
        return 0;
}

int server_new_jwt(RpcChannel *ch,
                   const char *entry_id,
                   const char *const *audiences,
                   size_t n_audiences,
                   char **ret_token,
                   int64_t *ret_expires_at,
                   int64_t *ret_issued_at) {
        Warden__Node__V1__NewJWTSVIDRequest req = WARDEN__NODE__V1__NEW_JWTSVIDREQUEST__INIT;
        Warden__Node__V1__NewJWTSVIDResponse *resp = NULL;
        int r;

        req.entry_id = (char *) entry_id;
        req.n_audience = n_audiences;
        req.audience = (char **) audiences;
        r = call_unary(ch, NODE_METHOD_NEW_JWT_SVID, &req,
                       &warden__node__v1__new_jwtsvidresponse__descriptor, (void **) &resp, NULL);
        if (r < 0)
                return r;
        if (!resp->token || !*resp->token || strlen(resp->token) > SERVER_JWT_TOKEN_MAX ||
            resp->expires_at <= 0) {
                pb_free(resp);
                return -EBADMSG;
        }
        *ret_token = TAKE_PTR(resp->token);
        *ret_expires_at = resp->expires_at;
        *ret_issued_at = resp->issued_at;
        resp->token = NULL;
        pb_free(resp);
        return 0;
}
