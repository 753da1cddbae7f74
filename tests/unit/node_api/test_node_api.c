/* SPDX-License-Identifier: Apache-2.0 */
/* The node API in process, over real TLS: join-token rules, node aliases, renewal,
 * per-call authentication (including the node SVID serial: an older SVID of the same
 * agent is refused once renewed away from), batch signing and JWT minting limits (at the cap and
 * one past it), x509pop challenges (replay, binding to the leaf, CSR binding, eviction of pending
 * nonces, disabled), and the Sync stream (no duplicate snapshots, ban, server shutdown). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <warden/jwtsvid.h>
#include <warden/x509.h>

#include "cleanup.h"
#include "node_api.h"
#include "node_api_internal.h"
#include "node_test.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "testlib.h"

#define TD "spiffe://" NT_TD
#define REFUSED_TOKEN "join token is invalid, expired or already used"

typedef Warden__Node__V1__AttestAgentRequest AttestReq;
typedef Warden__Node__V1__AttestAgentResponse AttestResp;

static const ProtobufCMessageDescriptor *attest_desc =
        &warden__node__v1__attest_agent_response__descriptor;

/* AttestAgent with a join token and a fresh CSR (or csr, when given). */
static int attest_token(NodeFx *fx, const char *token, const ProtobufCBinaryData *csr, char **msg) {
        AttestReq req = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__INIT;
        int status;

        req.method_case = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_JOIN_TOKEN;
        req.join_token = (char *) token;
        if (csr)
                req.csr = *csr;
        else
                node_fx_csr(NULL, &req.csr);
        status = node_fx_call(fx, NULL, "AttestAgent", &req, 1, attest_desc, NULL, msg);
        if (!csr)
                free(req.csr.data);
        return status;
}

static Entry *mk(const char *spiffe_id, const char *parent_id) {
        Entry *e = NULL;

        assert_ok(entry_new(&e));
        e->spiffe_id = strdup(spiffe_id);
        e->parent_id = strdup(parent_id);
        assert_ok(selector_set_add(&e->selectors, "unix", "uid:1000"));
        return e;
}

/* Stores e; *ret_id (optional) gets its id. Frees e. */
static void put(NodeFx *fx, Entry *e, char **ret_id) {
        assert_ok(ds_create_entries(fx->s->ds, &e, 1, NULL));
        server_entries_changed(fx->s); /* as every writer does */
        if (ret_id)
                *ret_id = strdup(e->id);
        entry_free(e);
}

static void test_join_token(void **state) {
        NodeFx fx;
        NodeId id = {};
        ProtobufCBinaryData junk = {.data = (uint8_t *) "junk", .len = 4};
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;
        char long_token[NODE_JOIN_TOKEN_MAX + 2];
        char *m1 = NULL, *m2 = NULL;
        Selector want = {"warden", "agent_id:" TD "/warden/agent/join_token/tok-1"};

        node_fx_init(&fx, false);
        assert_ok(ds_create_join_token(fx.s->ds, "tok-1", time(NULL) + 600, NULL));
        /* A bad CSR is refused before the token is used. */
        assert_int_equal(attest_token(&fx, "tok-1", &junk, NULL), GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(attest_token(&fx, "tok-1", NULL, NULL), GRPC_STATUS_OK);
        assert_ok(ds_get_agent(fx.s->ds, TD "/warden/agent/join_token/tok-1", &a));
        assert_string_equal(a->attestation_type, "join_token");
        assert_true(selector_set_contains(&a->selectors, &want));
        assert_non_null(a->serial);

        /* Used, unknown, expired, too long, not a path segment: one answer. */
        assert_int_equal(attest_token(&fx, "tok-1", NULL, &m1), GRPC_STATUS_PERMISSION_DENIED);
        assert_string_equal(m1, REFUSED_TOKEN);
        assert_ok(ds_create_join_token(fx.s->ds, "tok-old", time(NULL) - 1, NULL));
        assert_int_equal(attest_token(&fx, "tok-old", NULL, &m2), GRPC_STATUS_PERMISSION_DENIED);
        assert_string_equal(m2, REFUSED_TOKEN);
        assert_int_equal(attest_token(&fx, "nope", NULL, NULL), GRPC_STATUS_PERMISSION_DENIED);
        memset(long_token, 'a', sizeof(long_token) - 1);
        long_token[sizeof(long_token) - 1] = '\0';
        assert_ok(ds_create_join_token(fx.s->ds, long_token, time(NULL) + 600, NULL));
        assert_int_equal(attest_token(&fx, long_token, NULL, NULL), GRPC_STATUS_PERMISSION_DENIED);
        long_token[NODE_JOIN_TOKEN_MAX] = '\0'; /* exactly at the cap */
        assert_ok(ds_create_join_token(fx.s->ds, long_token, time(NULL) + 600, NULL));
        assert_int_equal(attest_token(&fx, long_token, NULL, NULL), GRPC_STATUS_OK);
        assert_ok(ds_create_join_token(fx.s->ds, "a/b", time(NULL) + 600, NULL));
        assert_int_equal(attest_token(&fx, "a/b", NULL, NULL), GRPC_STATUS_PERMISSION_DENIED);
        assert_ok(ds_create_join_token(fx.s->ds, "..", time(NULL) + 600, NULL));
        assert_int_equal(attest_token(&fx, "..", NULL, NULL), GRPC_STATUS_PERMISSION_DENIED);

        /* A new token for a banned agent's ID is refused too. */
        node_fx_attest_join(&fx, "tok-2", &id);
        assert_ok(ds_set_agent_banned(fx.s->ds, id.spiffe_id, true));
        free(m1);
        assert_int_equal(attest_token(&fx, "tok-2", NULL, &m1), GRPC_STATUS_PERMISSION_DENIED);
        assert_string_equal(m1, "agent is banned");
        free(m1);
        free(m2);
        node_id_done(&id);
        node_fx_done(&fx);
}

static void test_alias_and_renewal(void **state) {
        NodeFx fx;
        NodeId id = {};
        AttestReq req = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__INIT;
        Warden__Node__V1__RenewAgentRequest renew = WARDEN__NODE__V1__RENEW_AGENT_REQUEST__INIT;
        AttestResp *resp = NULL;
        Entry **v = NULL;
        size_t n = 0;

        node_fx_init(&fx, false);
        assert_ok(ds_create_join_token(fx.s->ds, "tok-a", time(NULL) + 600, TD "/cluster/x"));
        node_fx_attest_join(&fx, "tok-a", &id);
        assert_ok(
                ds_list_entries(fx.s->ds, &(EntryFilter){.by_spiffe_id = TD "/cluster/x"}, &v, &n));
        assert_int_equal(n, 1);
        assert_true(v[0]->node);
        assert_string_equal(v[0]->parent_id, TD "/warden/server");
        assert_int_equal(v[0]->selectors.n, 1);
        assert_string_equal(v[0]->selectors.items[0].value + strlen("agent_id:"), id.spiffe_id);
        entry_array_free(v, n);

        /* No method: a renewal for a caller with a valid node SVID, refused without one. */
        node_fx_csr(NULL, &req.csr);
        assert_int_equal(node_fx_call(&fx, NULL, "AttestAgent", &req, 1, attest_desc, NULL, NULL),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(
                node_fx_call(&fx, &id, "AttestAgent", &req, 1, attest_desc, (void **) &resp, NULL),
                GRPC_STATUS_OK);
        assert_string_equal(resp->spiffe_id, id.spiffe_id);
        assert_true(resp->n_svid_chain >= 1);
        pb_free(resp);
        renew.csr = req.csr;
        assert_int_equal(node_fx_call(&fx, &id, "RenewAgent", &renew, 1,
                                      &warden__node__v1__renew_agent_response__descriptor, NULL,
                                      NULL),
                         GRPC_STATUS_OK);
        assert_int_equal(node_fx_call(&fx, NULL, "RenewAgent", &renew, 1, NULL, NULL, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);
        /* Banned or evicted: refused at the next call. */
        assert_ok(ds_set_agent_banned(fx.s->ds, id.spiffe_id, true));
        assert_int_equal(node_fx_call(&fx, &id, "AttestAgent", &req, 1, NULL, NULL, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(node_fx_call(&fx, &id, "RenewAgent", &renew, 1, NULL, NULL, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);
        assert_ok(ds_set_agent_banned(fx.s->ds, id.spiffe_id, false));
        assert_ok(ds_delete_agent(fx.s->ds, id.spiffe_id));
        assert_int_equal(node_fx_call(&fx, &id, "RenewAgent", &renew, 1, NULL, NULL, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);
        free(req.csr.data);
        node_id_done(&id);
        node_fx_done(&fx);
}

/* RenewAgent with id's node SVID: *ret is the agent with its new one. */
static void renew_id(NodeFx *fx, const NodeId *id, NodeId *ret) {
        Warden__Node__V1__RenewAgentRequest req = WARDEN__NODE__V1__RENEW_AGENT_REQUEST__INIT;
        Warden__Node__V1__RenewAgentResponse *resp = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = sk_X509_new_null();
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;

        node_fx_csr(&key, &req.csr);
        assert_int_equal(node_fx_call(fx, id, "RenewAgent", &req, 1,
                                      &warden__node__v1__renew_agent_response__descriptor,
                                      (void **) &resp, NULL),
                         GRPC_STATUS_OK);
        free(req.csr.data);
        for (size_t i = 0; i < resp->n_svid_chain; i++) {
                X509 *x = NULL;

                assert_ok(warden_x509_from_der(resp->svid_chain[i].data, resp->svid_chain[i].len,
                                               &x));
                assert_true(sk_X509_push(chain, x));
        }
        ret->spiffe_id = strdup(id->spiffe_id);
        assert_ok(warden_x509_chain_to_pem(chain, &ret->cert_pem));
        assert_ok(warden_key_to_pem(key, &ret->key_pem));
        pb_free(resp);
}

/* An authenticated call without side effects (an empty batch); its status. */
static int probe(NodeFx *fx, const NodeId *id, char **ret_message) {
        Warden__Node__V1__BatchNewX509SVIDRequest req =
                WARDEN__NODE__V1__BATCH_NEW_X509_SVIDREQUEST__INIT;

        return node_fx_call(fx, id, "BatchNewX509SVID", &req, 1, NULL, NULL, ret_message);
}

/* The serial (hex) and notAfter of a PEM chain's leaf. */
static void leaf_serial(const char *pem, char **ret_serial, int64_t *ret_not_after) {
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *chain = NULL;

        assert_ok(warden_x509_chain_from_pem(pem, strlen(pem), &chain));
        assert_ok(warden_x509_serial_hex(sk_X509_value(chain, 0), ret_serial));
        *ret_not_after = (int64_t) warden_x509_not_after(sk_X509_value(chain, 0));
}

static void test_serial(void **state) {
        NodeFx fx;
        NodeId v1 = {}, v2 = {}, v3 = {}, v4 = {};
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL, *a2 = NULL;
        _cleanup_free_ char *msg = NULL, *serial1 = NULL;
        int64_t now = time(NULL), exp1;

        node_fx_init(&fx, false);
        node_fx_attest_join(&fx, "tok-s", &v1);
        assert_int_equal(probe(&fx, &v1, NULL), GRPC_STATUS_OK);
        renew_id(&fx, &v1, &v2);
        /* Until the new SVID is used, the old one works, for as long as it is valid: calls
         * under way, and an agent that could not save the renewed SVID and keeps (and after
         * a restart, loads) the old one. */
        assert_int_equal(probe(&fx, &v1, NULL), GRPC_STATUS_OK);
        leaf_serial(v1.cert_pem, &serial1, &exp1);
        assert_ok(ds_get_agent(fx.s->ds, v1.spiffe_id, &a2));
        assert_int_equal(node_serial_expires_at(fx.s->node, a2, serial1), exp1);
        assert_int_equal(node_serial_expires_at(fx.s->node, a2, a2->serial), a2->svid_expires_at);
        assert_int_equal(node_serial_expires_at(fx.s->node, a2, "0a"), 0);
        assert_true(exp1 > now + 600);
        assert_ok(node_serial_check(fx.s->node, a2, serial1, now + 600));
        assert_ok(node_serial_check(fx.s->node, a2, serial1, exp1));
        assert_int_equal(probe(&fx, &v1, NULL), GRPC_STATUS_OK);
        assert_int_equal(probe(&fx, &v2, NULL), GRPC_STATUS_OK);
        /* Once it is, the old one is refused like any stranger. */
        assert_int_equal(probe(&fx, &v1, &msg), GRPC_STATUS_PERMISSION_DENIED);
        assert_string_equal(msg, NODE_NOT_ATTESTED);
        assert_int_equal(probe(&fx, &v2, NULL), GRPC_STATUS_OK);

        /* A renewal whose answer was lost: the agent retries with the SVID it has. */
        renew_id(&fx, &v2, &v3);
        renew_id(&fx, &v2, &v4);
        assert_int_equal(probe(&fx, &v3, NULL), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(probe(&fx, &v4, NULL), GRPC_STATUS_OK);
        assert_int_equal(probe(&fx, &v2, NULL), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(probe(&fx, &v1, NULL), GRPC_STATUS_PERMISSION_DENIED);

        /* The old one ends when it expires too; an expired one is not kept at all;
         * attestation ends it at once; no serial, no entry. */
        assert_ok(ds_get_agent(fx.s->ds, v4.spiffe_id, &a));
        node_serial_renewed(fx.s->node, a->spiffe_id, "0a", now + 100, now);
        assert_int_equal(node_serial_expires_at(fx.s->node, a, "0a"), now + 100);
        assert_ok(node_serial_check(fx.s->node, a, "0a", now + 100));
        assert_errno(node_serial_check(fx.s->node, a, "0a", now + 101), EPERM);
        node_serial_renewed(fx.s->node, a->spiffe_id, "0a", now - 1, now);
        assert_errno(node_serial_check(fx.s->node, a, "0a", now), EPERM);
        node_serial_renewed(fx.s->node, a->spiffe_id, "0a", now + 100, now);
        node_serial_forget(fx.s->node, a->spiffe_id);
        assert_errno(node_serial_check(fx.s->node, a, "0a", now), EPERM);
        assert_errno(node_serial_check(fx.s->node, a, NULL, now), EPERM);
        assert_ok(node_serial_check(fx.s->node, a, a->serial, now));
        free(a->serial);
        a->serial = NULL;
        assert_errno(node_serial_check(fx.s->node, a, "0a", now), EPERM);

        node_id_done(&v1);
        node_id_done(&v2);
        node_id_done(&v3);
        node_id_done(&v4);
        node_fx_done(&fx);
}

typedef Warden__Node__V1__BatchNewX509SVIDResponse BatchResp;

/* BatchNewX509SVID for n params: entry ids[i % n_ids], CSR csr (shared). */
static int batch(NodeFx *fx,
                 const NodeId *id,
                 char **ids,
                 size_t n_ids,
                 size_t n,
                 const ProtobufCBinaryData *csr,
                 BatchResp **ret) {
        Warden__Node__V1__BatchNewX509SVIDRequest req =
                WARDEN__NODE__V1__BATCH_NEW_X509_SVIDREQUEST__INIT;
        Warden__Node__V1__X509SVIDParams *p = calloc(n, sizeof(*p)), **pp = calloc(n, sizeof(*pp));
        int status;

        assert_non_null(p);
        assert_non_null(pp);
        for (size_t i = 0; i < n; i++) {
                warden__node__v1__x509_svidparams__init(&p[i]);
                p[i].entry_id = ids[i % n_ids];
                p[i].csr = *csr;
                pp[i] = &p[i];
        }
        req.params = pp;
        req.n_params = n;
        status = node_fx_call(fx, id, "BatchNewX509SVID", &req, 1,
                              &warden__node__v1__batch_new_x509_svidresponse__descriptor,
                              (void **) ret, NULL);
        free(p);
        free(pp);
        return status;
}

static void check_svid(const Warden__Node__V1__X509SVIDResult *res, const char *id, int64_t ttl) {
        _cleanup_(X509_freep) X509 *leaf = NULL;
        _cleanup_free_ char *got = NULL;
        int64_t now = time(NULL);

        assert_int_equal(res->status, 0);
        assert_true(res->n_svid_chain >= 1);
        assert_ok(warden_x509_from_der(res->svid_chain[0].data, res->svid_chain[0].len, &leaf));
        assert_ok(warden_x509_spiffe_id(leaf, &got));
        assert_string_equal(got, id);
        assert_ok(warden_svid_check_leaf(leaf, NULL));
        assert_true(res->expires_at > now + ttl - 30 && res->expires_at <= now + ttl + 1);
}

static void test_batch_x509(void **state) {
        NodeFx fx;
        NodeId id = {};
        ProtobufCBinaryData csr = {}, junk = {.data = (uint8_t *) "junk", .len = 4};
        char *e1 = NULL, *e2 = NULL, *eo = NULL, *e3 = NULL;
        BatchResp *resp = NULL;
        Entry *e;

        node_fx_init(&fx, false);
        node_fx_attest_join(&fx, "tok", &id);
        e = mk(TD "/w1", id.spiffe_id);
        e->x509_svid_ttl = 60;
        put(&fx, e, &e1);
        e = mk(TD "/w2", id.spiffe_id);
        e->x509_svid_ttl = 7200; /* above the server default: capped at 3600 */
        put(&fx, e, &e2);
        put(&fx, mk(TD "/other", TD "/elsewhere"), &eo);
        put(&fx, mk(TD "/w3", id.spiffe_id), &e3);
        node_fx_csr(NULL, &csr);

        char *ids[] = {e1, e2, eo, e3, "", "\x01garbage"};
        assert_int_equal(batch(&fx, &id, ids, 6, 6, &csr, &resp), GRPC_STATUS_OK);
        assert_int_equal(resp->n_results, 6);
        check_svid(resp->results[0], TD "/w1", 60);
        check_svid(resp->results[1], TD "/w2", 3600);
        assert_int_equal(resp->results[2]->status, GRPC_STATUS_PERMISSION_DENIED);
        assert_string_equal(resp->results[2]->entry_id, eo);
        assert_int_equal(resp->results[2]->n_svid_chain, 0);
        check_svid(resp->results[3], TD "/w3", 3600);
        assert_int_equal(resp->results[4]->status, GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(resp->results[5]->status, GRPC_STATUS_PERMISSION_DENIED);
        pb_free(resp);

        /* A bad CSR fails its own result only. */
        assert_int_equal(batch(&fx, &id, ids, 1, 1, &junk, &resp), GRPC_STATUS_OK);
        assert_int_equal(resp->results[0]->status, GRPC_STATUS_INVALID_ARGUMENT);
        pb_free(resp);

        /* At the cap (refusals are cheap) and one past it. */
        assert_int_equal(batch(&fx, &id, &eo, 1, NODE_BATCH_MAX, &csr, &resp), GRPC_STATUS_OK);
        assert_int_equal(resp->n_results, NODE_BATCH_MAX);
        pb_free(resp);
        assert_int_equal(batch(&fx, &id, &eo, 1, NODE_BATCH_MAX + 1, &csr, NULL),
                         GRPC_STATUS_INVALID_ARGUMENT);
        /* No client certificate. */
        assert_int_equal(batch(&fx, NULL, ids, 1, 1, &csr, NULL), GRPC_STATUS_PERMISSION_DENIED);
        free(csr.data);
        free(e1);
        free(e2);
        free(eo);
        free(e3);
        node_id_done(&id);
        node_fx_done(&fx);
}

static int jwt(NodeFx *fx, const NodeId *id, const char *entry, size_t n_aud, size_t aud_len) {
        Warden__Node__V1__NewJWTSVIDRequest req = WARDEN__NODE__V1__NEW_JWTSVIDREQUEST__INIT;
        Warden__Node__V1__NewJWTSVIDResponse *resp = NULL;
        char *aud = calloc(1, aud_len + 1), **v = calloc(n_aud + 1, sizeof(char *));
        int status;

        assert_non_null(aud);
        assert_non_null(v);
        memset(aud, 'a', aud_len);
        for (size_t i = 0; i < n_aud; i++)
                v[i] = aud;
        req.entry_id = (char *) entry;
        req.audience = v;
        req.n_audience = n_aud;
        status = node_fx_call(fx, id, "NewJWTSVID", &req, 1,
                              &warden__node__v1__new_jwtsvidresponse__descriptor, (void **) &resp,
                              NULL);
        if (status == GRPC_STATUS_OK) {
                assert_int_equal(strlen(resp->token) > 0 && strchr(resp->token, '.'), true);
                assert_int_equal(resp->expires_at - resp->issued_at, 120);
                pb_free(resp);
        }
        free(aud);
        free(v);
        return status;
}

static void test_jwt(void **state) {
        NodeFx fx;
        NodeId id = {};
        char *e1 = NULL, *eo = NULL;
        Entry *e;

        node_fx_init(&fx, false);
        node_fx_attest_join(&fx, "tok", &id);
        e = mk(TD "/w1", id.spiffe_id);
        e->jwt_svid_ttl = 120;
        put(&fx, e, &e1);
        put(&fx, mk(TD "/other", TD "/elsewhere"), &eo);

        assert_int_equal(jwt(&fx, &id, e1, 1, 10), GRPC_STATUS_OK);
        assert_int_equal(jwt(&fx, &id, e1, WARDEN_JWT_AUDIENCES_MAX, WARDEN_JWT_AUDIENCE_MAX),
                         GRPC_STATUS_OK);
        assert_int_equal(jwt(&fx, &id, e1, WARDEN_JWT_AUDIENCES_MAX + 1, 10),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(jwt(&fx, &id, e1, 1, WARDEN_JWT_AUDIENCE_MAX + 1),
                         GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(jwt(&fx, &id, e1, 0, 10), GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(jwt(&fx, &id, e1, 1, 0), GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(jwt(&fx, &id, eo, 1, 10), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(jwt(&fx, NULL, e1, 1, 10), GRPC_STATUS_PERMISSION_DENIED);
        {
                /* Not UTF-8, so no JSON string: the caller's error, not ours. */
                Warden__Node__V1__NewJWTSVIDRequest req =
                        WARDEN__NODE__V1__NEW_JWTSVIDREQUEST__INIT;
                char *aud[] = {(char *) "ok", (char *) "a\xff"};

                req.entry_id = e1;
                req.audience = aud;
                req.n_audience = ELEMENTSOF(aud);
                assert_int_equal(node_fx_call(&fx, &id, "NewJWTSVID", &req, 1,
                                              &warden__node__v1__new_jwtsvidresponse__descriptor,
                                              NULL, NULL),
                                 GRPC_STATUS_INVALID_ARGUMENT);
        }
        free(e1);
        free(eo);
        node_id_done(&id);
        node_fx_done(&fx);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_join_token), cmocka_unit_test(test_alias_and_renewal),
                cmocka_unit_test(test_serial),     cmocka_unit_test(test_batch_x509),
                cmocka_unit_test(test_jwt),
        };
        int r;

        r = cmocka_run_group_tests_name("node_api", tests, NULL, NULL);
        return r + test_x509pop_main();
}
