/* SPDX-License-Identifier: Apache-2.0 */
/* Workload SVIDs for agents: BatchNewX509SVID signs CSRs and NewJWTSVID mints tokens,
 * each only for entries the calling agent is authorized for (authz.h). TTLs come from
 * the entry, capped by the server defaults. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <warden/jwtsvid.h>
#include <warden/x509.h>

#include "authz.h"
#include "cleanup.h"
#include "log.h"
#include "node_api_internal.h"
#include "ossl_cleanup.h"
#include "parse.h"
#include "pb_util.h"
#include "rpc_status.h"

#define NOT_AUTHORIZED "entry is not authorized for this agent"

/* A peer's entry ID for the log: only when it has the form of one. */
static const char *loggable_id(const char *id) {
        return entry_id_validate(id) >= 0 ? id : "(malformed)";
}

/* The caller's agent record and authorized set. */
static int load_authz(NodeApi *n, RpcCall *c, AuthzSet **ret, const char **reterr_message) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        int r;

        r = node_authenticate(n, c, &a);
        if (r == -EPERM)
                *reterr_message = NODE_NOT_ATTESTED;
        if (r < 0)
                return r;
        return authz_set_build(n->server->ds, a->spiffe_id, &a->selectors, time(NULL), ret);
}

static int result_fail(Warden__Node__V1__X509SVIDResult *res, int r, const char *message) {
        res->status = errno_to_grpc_status(r);
        res->message = strdup(message);
        return res->message ? 0 : -ENOMEM;
}

/* Signs one CSR into res; refusals go into res->status, only internal failures that
 * stop the batch (out of memory) are returned. */
static int sign_one(NodeApi *n,
                    const AuthzSet *set,
                    const char *agent_id,
                    const Warden__Node__V1__X509SVIDParams *p,
                    int64_t now,
                    Warden__Node__V1__X509SVIDResult *res) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_free_ char *serial = NULL;
        const char *msg = NULL;
        const Entry *e;
        int r;

        res->entry_id = pb_strdup(p->entry_id);
        if (!res->entry_id)
                return -ENOMEM;
        e = authz_set_find(set, p->entry_id);
        if (!e) {
                log_info("node API: refused an X.509-SVID: entry not authorized entry_id=%s "
                         "agent_id=%s status=PERMISSION_DENIED",
                         loggable_id(p->entry_id), agent_id);
                return result_fail(res, -EPERM, NOT_AUTHORIZED);
        }
        r = node_csr_public_key(&p->csr, &pub, &msg);
        if (r >= 0)
                r = node_sign_svid(n, METRICS_KIND_X509_SVID, pub, e->spiffe_id,
                                   (const char *const *) e->dns_names, e->n_dns_names,
                                   server_x509_ttl(n->server, e->x509_svid_ttl), now, &chain, &msg);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return result_fail(res, r, msg ? msg : "signing failed");
        r = node_chain_to_pb(chain, &res->svid_chain, &res->n_svid_chain);
        if (r < 0)
                return r;
        res->expires_at = warden_x509_not_after(sk_X509_value(chain, 0));
        if (warden_x509_serial_hex(sk_X509_value(chain, 0), &serial) >= 0)
                log_debug("Signed an X.509-SVID for %s (entry %s, agent %s), serial %s",
                          e->spiffe_id, e->id, agent_id, serial);
        return 0;
}

int node_batch_new_x509_svid(NodeApi *n, RpcCall *c, const char **reterr_message) {
        _cleanup_(node_pb_freep) Warden__Node__V1__BatchNewX509SVIDRequest *req = NULL;
        _cleanup_(node_pb_freep) Warden__Node__V1__BatchNewX509SVIDResponse *resp = NULL;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        int64_t now = time(NULL);
        int r;

        r = load_authz(n, c, &set, reterr_message);
        if (r < 0)
                return r;
        r = rpc_message_unpack(c, &warden__node__v1__batch_new_x509_svidrequest__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0) {
                *reterr_message = "malformed request";
                return r;
        }
        if (req->n_params > NODE_BATCH_MAX) {
                *reterr_message = "too many CSRs in one batch (at most 500)";
                return -EINVAL;
        }
        resp = malloc(sizeof(*resp));
        if (!resp)
                return -ENOMEM;
        warden__node__v1__batch_new_x509_svidresponse__init(resp);
        if (req->n_params > 0) {
                resp->results = calloc(req->n_params, sizeof(void *));
                if (!resp->results)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < req->n_params; i++) {
                Warden__Node__V1__X509SVIDResult *res = malloc(sizeof(*res));

                if (!res)
                        return -ENOMEM;
                warden__node__v1__x509_svidresult__init(res);
                resp->results[resp->n_results++] = res;
                r = sign_one(n, set, rpc_call_peer(c)->spiffe_id, req->params[i], now, res);
                if (r < 0)
                        return r;
        }
        return rpc_message_reply(c, &resp->base, 0);
}

static int check_audiences(const Warden__Node__V1__NewJWTSVIDRequest *req) {
        if (req->n_audience == 0 || req->n_audience > WARDEN_JWT_AUDIENCES_MAX)
                return -EINVAL;
        for (size_t i = 0; i < req->n_audience; i++) {
                const char *a = req->audience[i];

                if (warden_jwt_audience_check(a, strnlen(a, WARDEN_JWT_AUDIENCE_MAX + 1), NULL) < 0)
                        return -EINVAL;
        }
        return 0;
}

int node_new_jwt_svid(NodeApi *n, RpcCall *c, const char **reterr_message) {
        _cleanup_(node_pb_freep) Warden__Node__V1__NewJWTSVIDRequest *req = NULL;
        _cleanup_(authz_set_freep) AuthzSet *set = NULL;
        _cleanup_erase_ char *token = NULL;
        Warden__Node__V1__NewJWTSVIDResponse resp = WARDEN__NODE__V1__NEW_JWTSVIDRESPONSE__INIT;
        int64_t now = time(NULL), expires_at = 0;
        char t[TIMESTAMP_STRING_MAX];
        const Entry *e;
        int r;

        r = load_authz(n, c, &set, reterr_message);
        if (r < 0)
                return r;
        r = rpc_message_unpack(c, &warden__node__v1__new_jwtsvidrequest__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0) {
                *reterr_message = "malformed request";
                return r;
        }
        if (check_audiences(req) < 0) {
                *reterr_message = "1 to 32 audiences of 1 to 256 bytes of UTF-8 are required";
                return -EINVAL;
        }
        e = authz_set_find(set, req->entry_id);
        if (!e) {
                log_info("node API: refused a JWT-SVID: entry not authorized entry_id=%s "
                         "agent_id=%s status=PERMISSION_DENIED",
                         loggable_id(req->entry_id), rpc_call_peer(c)->spiffe_id);
                *reterr_message = NOT_AUTHORIZED;
                return -EPERM;
        }
        r = server_mint_jwt_svid(n->server, e->spiffe_id, (const char *const *) req->audience,
                                 req->n_audience, server_jwt_ttl(n->server, e->jwt_svid_ttl),
                                 (time_t) now, &token, &expires_at);
        if (r < 0) {
                log_error_errno(r, "Failed to mint a JWT-SVID for %s: %m", e->spiffe_id);
                *reterr_message = "signing failed";
                return r == -ENOMEM ? r : -EIO;
        }
        resp.token = token;
        resp.expires_at = expires_at;
        resp.issued_at = now;
        log_debug("Minted a JWT-SVID for %s (entry %s, agent %s), expires %s", e->spiffe_id, e->id,
                  rpc_call_peer(c)->spiffe_id, format_timestamp(expires_at, t, sizeof(t)));
        return rpc_message_reply(c, &resp.base, RPC_MESSAGE_ERASE);
}
