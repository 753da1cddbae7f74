/* SPDX-License-Identifier: Apache-2.0 */
/* The server's instrumentation, in process over real TLS (node_test.h): node
 * attestation counts by method and result, signings and their latency by kind (node
 * SVIDs, X509-SVIDs, JWT-SVIDs; refusals not counted), datastore timings by operation
 * (and none once turned off), the open Sync stream gauge, and swapping the x509pop CA
 * at run time (SIGHUP), keeping the old roots when the new file does not read. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "metrics_names.h"
#include "node_api.h"
#include "node_api_internal.h"
#include "node_test.h"
#include "pb_util.h"
#include "testlib.h"

#define TD "spiffe://" NT_TD

#define L(...) METRICS_LABELS(__VA_ARGS__)

static int attest(NodeFx *fx, const NodeId *id, const char *token) {
        Warden__Node__V1__AttestAgentRequest req = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__INIT;
        int status;

        if (token) {
                req.method_case = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_JOIN_TOKEN;
                req.join_token = (char *) token;
        }
        node_fx_csr(NULL, &req.csr);
        status = node_fx_call(fx, id, "AttestAgent", &req, 1,
                              &warden__node__v1__attest_agent_response__descriptor, NULL, NULL);
        free(req.csr.data);
        return status;
}

static void test_attestations(void **state) {
        ServerMetrics *m;
        NodeFx fx;
        NodeId id = {};

        node_fx_init(&fx, false);
        m = &fx.s->metrics;
        assert_int_equal(node_fx_metric(&fx, m->node_attestations, L("join_token", "ok")), 0);

        node_fx_attest_join(&fx, "tok-1", &id);
        assert_int_equal(node_fx_metric(&fx, m->node_attestations, L("join_token", "ok")), 1);
        assert_int_equal(node_fx_metric(&fx, m->signings, L(METRICS_KIND_NODE_SVID)), 1);
        assert_int_equal(node_fx_metric(&fx, m->signing_seconds, L(METRICS_KIND_NODE_SVID)), 1);

        /* A used and an unknown token: errors, nothing signed. */
        assert_int_equal(attest(&fx, NULL, "tok-1"), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(attest(&fx, NULL, "nope"), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(node_fx_metric(&fx, m->node_attestations, L("join_token", "error")), 2);
        assert_int_equal(node_fx_metric(&fx, m->signings, L(METRICS_KIND_NODE_SVID)), 1);

        /* No method: re-attestation with the node SVID ("svid"), refused without one. */
        assert_int_equal(attest(&fx, &id, NULL), GRPC_STATUS_OK);
        assert_int_equal(attest(&fx, NULL, NULL), GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(node_fx_metric(&fx, m->node_attestations, L("svid", "ok")), 1);
        assert_int_equal(node_fx_metric(&fx, m->node_attestations, L("svid", "error")), 1);
        assert_int_equal(node_fx_metric(&fx, m->signings, L(METRICS_KIND_NODE_SVID)), 2);

        /* x509pop is off here: an attempt counts as an error. */
        {
                Warden__Node__V1__AttestAgentRequest req =
                        WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__INIT;
                Warden__Node__V1__X509PopProof proof = WARDEN__NODE__V1__X509_POP_PROOF__INIT;

                req.method_case = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_X509POP;
                req.x509pop = &proof;
                node_fx_csr(NULL, &req.csr);
                assert_int_equal(node_fx_call(&fx, NULL, "AttestAgent", &req, 1, NULL, NULL, NULL),
                                 GRPC_STATUS_UNIMPLEMENTED);
                free(req.csr.data);
        }
        assert_int_equal(node_fx_metric(&fx, m->node_attestations, L("x509pop", "error")), 1);

        /* The datastore calls behind it were timed. */
        assert_true(node_fx_metric(&fx, m->datastore_seconds, L("consume_join_token")) >= 3);
        assert_true(node_fx_metric(&fx, m->datastore_seconds, L("upsert_agent")) >= 1);
        assert_true(node_fx_metric(&fx, m->datastore_seconds, L("get_agent")) >= 1);
        node_id_done(&id);
        node_fx_done(&fx);
}

static int sign_x509(NodeFx *fx, const NodeId *id, char *entry_id) {
        Warden__Node__V1__BatchNewX509SVIDRequest req =
                WARDEN__NODE__V1__BATCH_NEW_X509_SVIDREQUEST__INIT;
        Warden__Node__V1__BatchNewX509SVIDResponse *resp = NULL;
        Warden__Node__V1__X509SVIDParams p = WARDEN__NODE__V1__X509_SVIDPARAMS__INIT, *pp = &p;
        int status;

        p.entry_id = entry_id;
        node_fx_csr(NULL, &p.csr);
        req.params = &pp;
        req.n_params = 1;
        status = node_fx_call(fx, id, "BatchNewX509SVID", &req, 1,
                              &warden__node__v1__batch_new_x509_svidresponse__descriptor,
                              (void **) &resp, NULL);
        assert_int_equal(status, GRPC_STATUS_OK);
        status = resp->results[0]->status;
        pb_free(resp);
        free(p.csr.data);
        return status;
}

static int mint_jwt(NodeFx *fx, const NodeId *id, char *entry_id) {
        Warden__Node__V1__NewJWTSVIDRequest req = WARDEN__NODE__V1__NEW_JWTSVIDREQUEST__INIT;
        char *aud[] = {"a"};

        req.entry_id = entry_id;
        req.audience = aud;
        req.n_audience = 1;
        return node_fx_call(fx, id, "NewJWTSVID", &req, 1, NULL, NULL, NULL);
}

static char *put_entry(NodeFx *fx, const char *spiffe_id, const char *parent_id) {
        _cleanup_(entry_freep) Entry *e = NULL;

        assert_ok(entry_new(&e));
        e->spiffe_id = strdup(spiffe_id);
        e->parent_id = strdup(parent_id);
        assert_ok(selector_set_add(&e->selectors, "unix", "uid:1000"));
        assert_ok(ds_create_entries(fx->s->ds, &e, 1, NULL));
        server_entries_changed(fx->s); /* as every writer does */
        return strdup(e->id);
}

static void test_signings(void **state) {
        _cleanup_free_ char *mine = NULL, *other = NULL;
        ServerMetrics *m;
        NodeFx fx;
        NodeId id = {};

        node_fx_init(&fx, false);
        m = &fx.s->metrics;
        node_fx_attest_join(&fx, "tok", &id);
        mine = put_entry(&fx, TD "/w", id.spiffe_id);
        other = put_entry(&fx, TD "/x", TD "/elsewhere");

        assert_int_equal(sign_x509(&fx, &id, mine), GRPC_STATUS_OK);
        assert_int_equal(sign_x509(&fx, &id, mine), GRPC_STATUS_OK);
        assert_int_equal(sign_x509(&fx, &id, other), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(node_fx_metric(&fx, m->signings, L(METRICS_KIND_X509_SVID)), 2);
        assert_int_equal(node_fx_metric(&fx, m->signing_seconds, L(METRICS_KIND_X509_SVID)), 2);

        assert_int_equal(mint_jwt(&fx, &id, mine), GRPC_STATUS_OK);
        assert_int_equal(mint_jwt(&fx, &id, other), GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(node_fx_metric(&fx, m->signings, L(METRICS_KIND_JWT_SVID)), 1);
        assert_int_equal(node_fx_metric(&fx, m->signing_seconds, L(METRICS_KIND_JWT_SVID)), 1);
        /* The node SVID of the attestation only. */
        assert_int_equal(node_fx_metric(&fx, m->signings, L(METRICS_KIND_NODE_SVID)), 1);
        node_id_done(&id);
        node_fx_done(&fx);
}

static void test_datastore_timing_off(void **state) {
        Metric *seconds;
        int64_t n = 0;
        NodeFx fx;

        node_fx_init(&fx, false);
        seconds = fx.s->metrics.datastore_seconds;
        assert_ok(ds_count_entries(fx.s->ds, &n));
        assert_int_equal(node_fx_metric(&fx, seconds, L("count_entries")), 1);
        ds_set_metrics(fx.s->ds, NULL);
        assert_ok(ds_count_entries(fx.s->ds, &n));
        assert_int_equal(node_fx_metric(&fx, seconds, L("count_entries")), 1);
        ds_set_metrics(fx.s->ds, seconds);
        assert_ok(ds_count_entries(fx.s->ds, &n));
        assert_int_equal(node_fx_metric(&fx, seconds, L("count_entries")), 2);
        /* Failures are timed too. */
        assert_errno(ds_delete_agent(fx.s->ds, TD "/nobody"), ENOENT);
        assert_int_equal(node_fx_metric(&fx, seconds, L("delete_agent")), 1);
        node_fx_done(&fx);
}

typedef struct GaugeWait {
        NodeFx *fx;
        double want;
} GaugeWait;

static bool gauge_is(void *p) {
        GaugeWait *w = p;

        return node_fx_metric(w->fx, w->fx->s->metrics.agent_streams, NULL) == w->want;
}

static void test_stream_gauge(void **state) {
        NodeSyncClient c1, c2;
        NodeFx fx;
        NodeId id = {};
        GaugeWait w = {.fx = &fx};

        node_fx_init(&fx, false);
        node_fx_attest_join(&fx, "tok", &id);
        assert_int_equal(node_fx_metric(&fx, fx.s->metrics.agent_streams, NULL), 0);
        node_sync_start(&c1, &fx, &id);
        assert_true(node_sync_wait_msgs(&c1, 1, 10000));
        node_sync_start(&c2, &fx, &id);
        assert_true(node_sync_wait_msgs(&c2, 1, 10000));
        assert_int_equal(node_fx_metric(&fx, fx.s->metrics.agent_streams, NULL), 2);

        node_sync_stop(&c1);
        w.want = 1;
        node_fx_pump(&fx, gauge_is, &w, 10000);
        assert_true(gauge_is(&w));
        /* A banned agent's stream ends: the gauge follows. */
        assert_ok(ds_set_agent_banned(fx.s->ds, id.spiffe_id, true));
        server_agent_changed(fx.s, id.spiffe_id);
        assert_true(node_sync_wait_end(&c2, 10000));
        w.want = 0;
        node_fx_pump(&fx, gauge_is, &w, 10000);
        assert_true(gauge_is(&w));
        node_sync_stop(&c2);
        node_id_done(&id);
        node_fx_done(&fx);
}

static int challenge(NodeFx *fx) {
        Warden__Node__V1__X509PopChallengeRequest req =
                WARDEN__NODE__V1__X509_POP_CHALLENGE_REQUEST__INIT;
        ProtobufCBinaryData der = {};
        X509 *leaf = NULL;
        EVP_PKEY *key = NULL;
        int status;

        node_fx_site_leaf(fx, "node1.example", &leaf, &key);
        assert_ok(warden_x509_to_der(leaf, &der.data, &der.len));
        req.cert_chain = &der;
        req.n_cert_chain = 1;
        status = node_fx_call(fx, NULL, "X509PopChallenge", &req, 1, NULL, NULL, NULL);
        free(der.data);
        X509_free(leaf);
        EVP_PKEY_free(key);
        return status;
}

static void test_x509pop_reload(void **state) {
        _cleanup_free_ char *bad = NULL, *path = NULL;
        NodeFx fx;
        FILE *f;

        node_fx_init(&fx, true);
        path = strdup(fx.s->cfg.x509pop_ca);
        assert_non_null(path);
        assert_int_equal(challenge(&fx), GRPC_STATUS_OK);

        /* Unreadable or not PEM: refused, the old roots stay. */
        assert_true(node_api_set_x509pop_ca(fx.s->node, "/nonexistent/ca.pem") < 0);
        assert_true(asprintf(&bad, "%s/bad.pem", fx.dir) > 0);
        f = fopen(bad, "we");
        assert_non_null(f);
        fputs("not a certificate\n", f);
        fclose(f);
        assert_true(node_api_set_x509pop_ca(fx.s->node, bad) < 0);
        assert_int_equal(challenge(&fx), GRPC_STATUS_OK);

        /* NULL turns x509pop off, a good file on again. */
        assert_ok(node_api_set_x509pop_ca(fx.s->node, NULL));
        assert_null(fx.s->node->x509pop_roots);
        assert_int_equal(challenge(&fx), GRPC_STATUS_UNIMPLEMENTED);
        assert_ok(node_api_set_x509pop_ca(fx.s->node, path));
        assert_int_equal(sk_X509_num(fx.s->node->x509pop_roots), 1);
        assert_int_equal(challenge(&fx), GRPC_STATUS_OK);
        node_fx_done(&fx);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_attestations),
                cmocka_unit_test(test_signings),
                cmocka_unit_test(test_datastore_timing_off),
                cmocka_unit_test(test_stream_gauge),
                /* The SIGHUP part. */
                cmocka_unit_test(test_x509pop_reload),
        };

        return cmocka_run_group_tests_name("server_metrics", tests, NULL, NULL);
}
