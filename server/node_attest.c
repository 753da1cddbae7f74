/* SPDX-License-Identifier: Apache-2.0 */
/* Node attestation: join tokens, x509pop (challenge, then proof of possession), the
 * node SVID, and its renewal. The x509pop proof parts (chain checks, nonces,
 * selectors) are in node_x509pop.c. */
#define _GNU_SOURCE

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <warden/spiffeid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "log.h"
#include "node_api_internal.h"
#include "ossl_cleanup.h"
#include "pb_util.h"

#define TOKEN_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"
#define JOIN_TOKEN_REFUSED "join token is invalid, expired or already used"

static void selector_set_donep(SelectorSet *s) {
        selector_set_done(s);
}

/* -EPERM when the agent exists and is banned. */
static int refuse_banned(NodeApi *n, const char *agent_id, const char **reterr_message) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        int r;

        r = ds_get_agent(n->server->ds, agent_id, &a);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return log_error_errno(r, "Failed to look up agent %s: %m", agent_id);
        if (a->banned) {
                log_info("node API: refused attestation: agent is banned agent_id=%s "
                         "status=PERMISSION_DENIED",
                         agent_id);
                *reterr_message = "agent is banned";
                return -EPERM;
        }
        return 0;
}

/* The node alias a join token asks for: {alias_id, parent spiffe://<td>/warden/server,
 * node, selectors {warden:agent_id:<agent>}}. Failures are logged and ignored: the
 * agent is attested either way. */
static void create_alias(NodeApi *n, const char *alias_id, const char *agent_id) {
        _cleanup_(entry_freep) Entry *e = NULL;
        _cleanup_free_ char *value = NULL;
        const char *reason = NULL;
        int r;

        r = entry_new(&e);
        if (r >= 0)
                r = ca_server_spiffe_id(n->server->ca, &e->parent_id);
        if (r >= 0 &&
            (!(e->spiffe_id = strdup(alias_id)) || !(e->created_by = strdup("join_token")) ||
             asprintf(&value, "agent_id:%s", agent_id) < 0))
                r = -ENOMEM;
        if (r >= 0)
                r = selector_set_add(&e->selectors, "warden", value);
        if (r < 0) {
                log_warning_errno(r, "Failed to build node alias %s for %s, ignoring: %m", alias_id,
                                  agent_id);
                return;
        }
        e->node = true;
        r = entry_validate(e, n->server->cfg.trust_domain, &reason);
        if (r < 0) {
                log_warning("Node alias %s for %s is invalid (%s), ignoring", alias_id, agent_id,
                            reason);
                return;
        }
        /* Audited as done by the agent (if its ID fits; else "server"). */
        (void) ds_set_actor(n->server->ds, agent_id);
        r = ds_create_entries(n->server->ds, &e, 1, NULL);
        (void) ds_set_actor(n->server->ds, NULL);
        if (r == -EEXIST)
                return;
        if (r < 0) {
                log_warning_errno(r, "Failed to store node alias %s for %s, ignoring: %m", alias_id,
                                  agent_id);
                return;
        }
        log_info("Node alias created entry_id=%s spiffe_id=%s agent_id=%s", e->id, alias_id,
                 agent_id);
        server_changes_kick(n->server);
}

/* Checks a join token and consumes it. On success *ret_agent_id, *ret_alias (may be
 * NULL) and the agent's selectors are set. The CSR was checked before, so a bad
 * request does not burn the token. */
static int attest_join_token(NodeApi *n,
                             const char *token,
                             int64_t now,
                             char **ret_agent_id,
                             char **ret_alias,
                             const char **reterr_message) {
        _cleanup_(join_token_freep) JoinToken *jt = NULL;
        _cleanup_free_ char *path = NULL, *id = NULL, *alias = NULL;
        size_t len = strnlen(token, NODE_JOIN_TOKEN_MAX + 1);
        int r;

        *reterr_message = JOIN_TOKEN_REFUSED;
        if (len == 0 || len > NODE_JOIN_TOKEN_MAX) {
                log_info("node API: refused attestation: token of bad length "
                         "method=join_token status=PERMISSION_DENIED");
                return -EPERM;
        }
        /* One path segment: no '/', so the agent ID cannot grow extra segments. */
        if (token[strspn(token, TOKEN_CHARS)] != '\0') {
                log_info("node API: refused attestation: token is not a valid path segment "
                         "method=join_token status=PERMISSION_DENIED");
                return -EPERM;
        }
        if (asprintf(&path, "/warden/agent/join_token/%s", token) < 0)
                return -ENOMEM;
        r = warden_spiffeid_format(n->server->cfg.trust_domain, path, &id);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_info("node API: refused attestation: token is not a valid path segment "
                         "method=join_token status=PERMISSION_DENIED");
                return -EPERM;
        }
        r = refuse_banned(n, id, reterr_message);
        if (r < 0)
                return r;
        r = ds_consume_join_token(n->server->ds, token, now, &jt);
        if (r == -ENOENT || r == -EALREADY || r == -EKEYEXPIRED) {
                /* A used token names an existing agent; any other might be a secret
                 * (mistyped, say), so it stays out of the log. */
                if (r == -EALREADY)
                        log_info("node API: refused attestation: token already used "
                                 "agent_id=%s method=join_token status=PERMISSION_DENIED",
                                 id);
                else
                        log_info("node API: refused attestation: token %s method=join_token "
                                 "status=PERMISSION_DENIED",
                                 r == -ENOENT ? "unknown" : "expired");
                return -EPERM;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to check a join token: %m");
        if (jt->alias_spiffe_id && !(alias = strdup(jt->alias_spiffe_id)))
                return -ENOMEM;
        *ret_agent_id = TAKE_PTR(id);
        *ret_alias = TAKE_PTR(alias);
        return 0;
}

/* Signs the node SVID and records the agent (type NULL: a renewal of an existing
 * agent, authenticated with the node SVID of serial prev_serial, which expires at
 * prev_expires_at); *ret_chain is the DER chain for the response. */
static int issue_node_svid(NodeApi *n,
                           const char *agent_id,
                           const char *prev_serial,
                           int64_t prev_expires_at,
                           const char *type,
                           const SelectorSet *selectors,
                           EVP_PKEY *pub,
                           int64_t now,
                           ProtobufCBinaryData **ret_chain,
                           size_t *ret_n,
                           const char **reterr_message) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;
        _cleanup_free_ char *serial = NULL;
        X509 *leaf;
        AttestedAgent a = {};
        int r;

        r = node_sign_svid(n, METRICS_KIND_NODE_SVID, pub, agent_id, NULL, 0,
                           n->server->cfg.default_x509_ttl, now, &chain, reterr_message);
        if (r < 0)
                return r;
        leaf = sk_X509_value(chain, 0);
        r = warden_x509_serial_hex(leaf, &serial);
        if (r < 0)
                return r;
        a = (AttestedAgent){
                .spiffe_id = (char *) agent_id,
                .attestation_type = (char *) type,
                .serial = serial,
                .svid_expires_at = warden_x509_not_after(leaf),
                .selectors = *selectors,
        };
        r = type ? ds_upsert_agent(n->server->ds, &a)
                 : ds_update_agent_svid(n->server->ds, agent_id, serial, a.svid_expires_at);
        if (r < 0)
                return log_error_errno(r, "Failed to record agent %s: %m", agent_id);
        if (type)
                node_serial_forget(n, agent_id);
        else
                node_serial_renewed(n, agent_id, prev_serial, prev_expires_at, now);
        r = node_chain_to_pb(chain, ret_chain, ret_n);
        if (r < 0)
                return r;
        if (type)
                log_info("Agent attested agent_id=%s method=%s serial=%s", agent_id, type, serial);
        else
                log_info("Agent renewed its node SVID agent_id=%s method=svid serial=%s", agent_id,
                         serial);
        return 0;
}

/* The agent's selectors: warden:agent_id:<id> plus the x509pop ones. */
static int agent_selectors(NodeApi *n,
                           const char *agent_id,
                           STACK_OF(X509) * x509pop_chain,
                           SelectorSet *sel) {
        _cleanup_free_ char *value = NULL;
        int r;

        if (asprintf(&value, "agent_id:%s", agent_id) < 0)
                return -ENOMEM;
        r = selector_set_add(sel, "warden", value);
        if (r < 0)
                return r;
        return x509pop_chain ? node_x509pop_selectors(n, x509pop_chain, sel) : 0;
}

static int attest_dispatch(NodeApi *n,
                           RpcCall *c,
                           const Warden__Node__V1__AttestAgentRequest *req,
                           int64_t now,
                           const char **type,
                           int64_t *prev_expires_at,
                           char **agent_id,
                           char **alias,
                           STACK_OF(X509) * *x509pop_chain,
                           const char **reterr_message) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        int r;

        switch (req->method_case) {
        case WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_JOIN_TOKEN:
                *type = "join_token";
                return attest_join_token(n, req->join_token, now, agent_id, alias, reterr_message);
        case WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_X509POP:
                *type = "x509pop";
                r = node_x509pop_verify_proof(n, req->x509pop, &req->csr, now, agent_id,
                                              x509pop_chain, reterr_message);
                if (r >= 0)
                        r = refuse_banned(n, *agent_id, reterr_message);
                return r;
        default:
                /* No method: re-attestation with a valid node SVID, i.e. a renewal. */
                *type = NULL;
                r = node_authenticate(n, c, &a);
                if (r == -EPERM) {
                        *reterr_message = rpc_call_peer(c)->spiffe_id ? NODE_NOT_ATTESTED
                                                                      : "no attestation method";
                        return rpc_call_peer(c)->spiffe_id ? r : -EINVAL;
                }
                if (r < 0)
                        return r;
                *prev_expires_at = node_serial_expires_at(n, a, rpc_call_peer(c)->cert_serial);
                *agent_id = TAKE_PTR(a->spiffe_id);
                return 0;
        }
}

/* The attestation method of a request, as the node_attestations metric names it. */
static const char *attest_method(const Warden__Node__V1__AttestAgentRequest *req) {
        switch (req->method_case) {
        case WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_JOIN_TOKEN:
                return "join_token";
        case WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_X509POP:
                return "x509pop";
        default:
                return "svid";
        }
}

/* AttestAgent; *ret_method is set once the request is unpacked. */
static int attest_agent(NodeApi *n,
                        RpcCall *c,
                        const char **ret_method,
                        const char **reterr_message) {
        _cleanup_(node_pb_freep) Warden__Node__V1__AttestAgentRequest *req = NULL;
        _cleanup_(node_pb_freep) Warden__Node__V1__AttestAgentResponse *resp = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *x509pop_chain = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_(selector_set_donep) SelectorSet sel = {.max = DS_AGENT_SELECTORS_MAX};
        _cleanup_free_ char *agent_id = NULL, *alias = NULL;
        const char *type = NULL;
        int64_t now = time(NULL), prev_expires_at = 0;
        int r;

        r = rpc_message_unpack(c, &warden__node__v1__attest_agent_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0) {
                *reterr_message = "malformed request";
                return r;
        }
        *ret_method = attest_method(req);
        /* The CSR first, so a bad one does not burn a join token. */
        r = node_csr_public_key(&req->csr, &pub, reterr_message);
        if (r < 0)
                return r;
        r = attest_dispatch(n, c, req, now, &type, &prev_expires_at, &agent_id, &alias,
                            &x509pop_chain, reterr_message);
        if (r < 0)
                return r;
        if (type) {
                r = agent_selectors(n, agent_id, x509pop_chain, &sel);
                if (r < 0)
                        return log_error_errno(r, "Failed to build the selectors of %s: %m",
                                               agent_id);
        }
        resp = malloc(sizeof(*resp));
        if (!resp)
                return -ENOMEM;
        warden__node__v1__attest_agent_response__init(resp);
        resp->spiffe_id = strdup(agent_id);
        if (!resp->spiffe_id)
                return -ENOMEM;
        r = issue_node_svid(n, agent_id, rpc_call_peer(c)->cert_serial, prev_expires_at, type, &sel,
                            pub, now, &resp->svid_chain, &resp->n_svid_chain, reterr_message);
        if (r >= 0)
                r = pb_from_bundle(ca_bundle(n->server->ca), &resp->bundle);
        if (r < 0)
                return r;
        if (alias)
                create_alias(n, alias, agent_id);
        return rpc_message_reply(c, &resp->base, 0);
}

int node_attest_rate_check(NodeApi *n, RpcCall *c, const char **reterr_message) {
        const RpcPeer *p = rpc_call_peer(c);
        struct timespec ts;
        RpcSourceAddr a;
        int r;

        /* Callers without a TCP source (in-process tests) are not limited. */
        if (!n->attest_rate || rpc_source_addr_from_string(p->source, &a) < 0)
                return 0;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r = rpc_source_rate_take(n->attest_rate, &a,
                                 (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000);
        if (r == -ENOMEM)
                return r;
        if (r >= 0)
                return 0;
        log_debug("node API: attestation attempt from %s refused: over -attestRatePerSource",
                  p->source);
        (void) metrics_counter_inc(n->server->metrics.node_api_limited,
                                   METRICS_LABELS(METRICS_LIMIT_ATTESTATION_RATE));
        *reterr_message = "too many attestation attempts from this address";
        return -EDQUOT;
}

int node_attest_agent(NodeApi *n, RpcCall *c, const char **reterr_message) {
        const char *method = NULL;
        int r;

        r = node_attest_rate_check(n, c, reterr_message);
        if (r < 0)
                return r;
        r = attest_agent(n, c, &method, reterr_message);
        if (method)
                (void) metrics_counter_inc(
                        n->server->metrics.node_attestations,
                        METRICS_LABELS(method, r >= 0 ? METRICS_RESULT_OK : METRICS_RESULT_ERROR));
        return r;
}

int node_renew_agent(NodeApi *n, RpcCall *c, const char **reterr_message) {
        _cleanup_(node_pb_freep) Warden__Node__V1__RenewAgentRequest *req = NULL;
        _cleanup_(node_pb_freep) Warden__Node__V1__RenewAgentResponse *resp = NULL;
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        SelectorSet none = {};
        int r;

        r = node_authenticate(n, c, &a);
        if (r == -EPERM)
                *reterr_message = NODE_NOT_ATTESTED;
        if (r < 0)
                return r;
        r = rpc_message_unpack(c, &warden__node__v1__renew_agent_request__descriptor,
                               (ProtobufCMessage **) &req);
        if (r < 0) {
                *reterr_message = "malformed request";
                return r;
        }
        r = node_csr_public_key(&req->csr, &pub, reterr_message);
        if (r < 0)
                return r;
        resp = malloc(sizeof(*resp));
        if (!resp)
                return -ENOMEM;
        warden__node__v1__renew_agent_response__init(resp);
        r = issue_node_svid(n, a->spiffe_id, rpc_call_peer(c)->cert_serial,
                            node_serial_expires_at(n, a, rpc_call_peer(c)->cert_serial), NULL,
                            &none, pub, time(NULL), &resp->svid_chain, &resp->n_svid_chain,
                            reterr_message);
        if (r < 0)
                return r;
        return rpc_message_reply(c, &resp->base, 0);
}
