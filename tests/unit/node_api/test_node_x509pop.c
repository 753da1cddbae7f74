/* SPDX-License-Identifier: Apache-2.0 */
/* x509pop attestation and the Sync stream, in process (see test_node_api.c). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "node_api.h"
#include "node_api_internal.h"
#include "node_test.h"
#include "ossl_cleanup.h"
#include "pb_util.h"
#include "testlib.h"
#include "x509pop.h"

#define TD "spiffe://" NT_TD

typedef struct Leaf {
        X509 *cert;
        EVP_PKEY *key;
        ProtobufCBinaryData der;
} Leaf;

static void leaf_new(NodeFx *fx, const char *dns, Leaf *ret) {
        node_fx_site_leaf(fx, dns, &ret->cert, &ret->key);
        assert_ok(warden_x509_to_der(ret->cert, &ret->der.data, &ret->der.len));
}

static void leaf_done(Leaf *l) {
        X509_free(l->cert);
        EVP_PKEY_free(l->key);
        free(l->der.data);
}

/* X509PopChallenge for the certificates chain[0..n); *ret_nonce (optional) gets the
 * nonce. */
static int challenge_chain(NodeFx *fx,
                           ProtobufCBinaryData *chain,
                           size_t n,
                           unsigned repeat,
                           ProtobufCBinaryData *ret_nonce) {
        Warden__Node__V1__X509PopChallengeRequest req =
                WARDEN__NODE__V1__X509_POP_CHALLENGE_REQUEST__INIT;
        Warden__Node__V1__X509PopChallengeResponse *resp = NULL;
        int status;

        req.cert_chain = chain;
        req.n_cert_chain = n;
        status = node_fx_call(fx, NULL, "X509PopChallenge", &req, repeat,
                              &warden__node__v1__x509_pop_challenge_response__descriptor,
                              (void **) &resp, NULL);
        if (status == 0) {
                assert_int_equal(resp->nonce.len, NODE_NONCE_SIZE);
                if (ret_nonce) {
                        ret_nonce->data = malloc(NODE_NONCE_SIZE);
                        memcpy(ret_nonce->data, resp->nonce.data, NODE_NONCE_SIZE);
                        ret_nonce->len = NODE_NONCE_SIZE;
                }
                pb_free(resp);
        }
        return status;
}

/* X509PopChallenge for n copies of cert. */
static int challenge(NodeFx *fx,
                     ProtobufCBinaryData *cert,
                     size_t n,
                     unsigned repeat,
                     ProtobufCBinaryData *ret_nonce) {
        ProtobufCBinaryData v[WARDEN_X509_CHAIN_MAX_CERTS + 1];

        assert_true(n <= ELEMENTSOF(v));
        for (size_t i = 0; i < n; i++)
                v[i] = *cert;
        return challenge_chain(fx, v, n, repeat, ret_nonce);
}

/* AttestAgent with an x509pop proof: the certificates chain[0..n_chain), nonce, a
 * signature by key over the context, nonce and signed_csr (the CSR actually sent is
 * csr). */
static int prove_chain(NodeFx *fx,
                       ProtobufCBinaryData *chain,
                       size_t n_chain,
                       EVP_PKEY *key,
                       const ProtobufCBinaryData *nonce,
                       const ProtobufCBinaryData *csr,
                       const ProtobufCBinaryData *signed_csr,
                       char **ret_id) {
        Warden__Node__V1__AttestAgentRequest req = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__INIT;
        Warden__Node__V1__X509PopProof proof = WARDEN__NODE__V1__X509_POP_PROOF__INIT;
        Warden__Node__V1__AttestAgentResponse *resp = NULL;
        _cleanup_free_ uint8_t *data = NULL, *sig = NULL;
        size_t len, sig_len = 0;
        int status;

        assert_ok(x509pop_payload(nonce->data, nonce->len, signed_csr->data, signed_csr->len, &data,
                                  &len));
        assert_ok(warden_sign(key, data, len, &sig, &sig_len));
        proof.cert_chain = chain;
        proof.n_cert_chain = n_chain;
        proof.nonce = *nonce;
        proof.signature = (ProtobufCBinaryData){.data = sig, .len = sig_len};
        req.method_case = WARDEN__NODE__V1__ATTEST_AGENT_REQUEST__METHOD_X509POP;
        req.x509pop = &proof;
        req.csr = *csr;
        status = node_fx_call(fx, NULL, "AttestAgent", &req, 1,
                              &warden__node__v1__attest_agent_response__descriptor, (void **) &resp,
                              NULL);
        if (status == 0) {
                if (ret_id)
                        *ret_id = strdup(resp->spiffe_id);
                pb_free(resp);
        }
        return status;
}

/* prove_chain() with the leaf alone as the chain. */
static int prove(NodeFx *fx,
                 const Leaf *chain_leaf,
                 EVP_PKEY *key,
                 const ProtobufCBinaryData *nonce,
                 const ProtobufCBinaryData *csr,
                 const ProtobufCBinaryData *signed_csr,
                 char **ret_id) {
        ProtobufCBinaryData cert = chain_leaf->der;

        return prove_chain(fx, &cert, 1, key, nonce, csr, signed_csr, ret_id);
}

static char *fingerprint(X509 *x) {
        char *fp = NULL;

        assert_ok(warden_x509_fingerprint_sha1_hex(x, &fp));
        return fp;
}

static bool agent_has(NodeFx *fx, const char *id, const char *type, const char *value) {
        _cleanup_(attested_agent_freep) AttestedAgent *a = NULL;

        assert_ok(ds_get_agent(fx->s->ds, id, &a));
        return selector_set_contains(&a->selectors, &(Selector){(char *) type, (char *) value});
}

static void test_x509pop(void **state) {
        NodeFx fx;
        Leaf l1 = {}, l2 = {};
        ProtobufCBinaryData n1 = {}, n2 = {}, csr = {}, csr2 = {};
        _cleanup_free_ char *id = NULL, *want = NULL, *fp = NULL, *cafp = NULL, *v = NULL;

        node_fx_init(&fx, true);
        leaf_new(&fx, "node1.site.example", &l1);
        leaf_new(&fx, "node2.site.example", &l2);
        node_fx_csr(NULL, &csr);
        node_fx_csr(NULL, &csr2);

        assert_int_equal(challenge(&fx, &l1.der, 1, 1, &n1), GRPC_STATUS_OK);
        assert_int_equal(prove(&fx, &l1, l1.key, &n1, &csr, &csr, &id), GRPC_STATUS_OK);
        fp = fingerprint(l1.cert);
        assert_true(asprintf(&want, TD "/warden/agent/x509pop/%s", fp) > 0);
        assert_string_equal(id, want);
        assert_true(agent_has(&fx, id, "x509pop", "subject:cn:node1.site.example"));
        assert_true(agent_has(&fx, id, "x509pop", "san:dns:node1.site.example"));
        cafp = fingerprint(fx.site_cert);
        assert_true(asprintf(&v, "ca:fingerprint:%s", cafp) > 0);
        assert_true(agent_has(&fx, id, "x509pop", v));

        /* A nonce is single-use. */
        assert_int_equal(prove(&fx, &l1, l1.key, &n1, &csr, &csr, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);
        /* It is bound to the leaf it was issued for, and consumed by a wrong try. */
        assert_int_equal(challenge(&fx, &l1.der, 1, 1, &n2), GRPC_STATUS_OK);
        assert_int_equal(prove(&fx, &l2, l2.key, &n2, &csr, &csr, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(prove(&fx, &l1, l1.key, &n2, &csr, &csr, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);
        /* The signature covers the CSR, and must be made with the leaf's key. */
        free(n2.data);
        assert_int_equal(challenge(&fx, &l1.der, 1, 1, &n2), GRPC_STATUS_OK);
        assert_int_equal(prove(&fx, &l1, l1.key, &n2, &csr2, &csr, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);
        free(n2.data);
        assert_int_equal(challenge(&fx, &l1.der, 1, 1, &n2), GRPC_STATUS_OK);
        assert_int_equal(prove(&fx, &l1, l2.key, &n2, &csr, &csr, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);
        free(n1.data);
        free(n2.data);
        free(csr.data);
        free(csr2.data);
        leaf_done(&l1);
        leaf_done(&l2);
        node_fx_done(&fx);
}

static void test_x509pop_refusals(void **state) {
        NodeFx fx;
        Leaf l1 = {};
        ProtobufCBinaryData n1 = {}, n2 = {}, n3 = {}, csr = {};
        ProtobufCBinaryData junk = {.data = (uint8_t *) "junk", .len = 4};
        _cleanup_free_ char *id = NULL;

        node_fx_init(&fx, true);
        leaf_new(&fx, "node1.site.example", &l1);
        node_fx_csr(NULL, &csr);
        assert_int_equal(challenge(&fx, &l1.der, 1, 1, &n1), GRPC_STATUS_OK);
        assert_int_equal(prove(&fx, &l1, l1.key, &n1, &csr, &csr, &id), GRPC_STATUS_OK);

        /* Malformed chains: garbage, none, one past the cap; untrusted: our own CA. */
        assert_int_equal(challenge(&fx, &junk, 1, 1, NULL), GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(challenge(&fx, &l1.der, 0, 1, NULL), GRPC_STATUS_INVALID_ARGUMENT);
        assert_int_equal(challenge(&fx, &l1.der, WARDEN_X509_CHAIN_MAX_CERTS + 1, 1, NULL),
                         GRPC_STATUS_INVALID_ARGUMENT);
        {
                _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *roots = NULL;
                ProtobufCBinaryData other = {};

                assert_ok(warden_x509_chain_from_pem(fx.roots_pem, strlen(fx.roots_pem), &roots));
                assert_ok(warden_x509_to_der(sk_X509_value(roots, 0), &other.data, &other.len));
                assert_int_equal(challenge(&fx, &other, 1, 1, NULL), GRPC_STATUS_PERMISSION_DENIED);
                free(other.data);
        }

        /* At most NODE_NONCES_MAX pending: the oldest goes first. */
        assert_int_equal(challenge(&fx, &l1.der, 1, 1, &n3), GRPC_STATUS_OK);
        free(n2.data);
        assert_int_equal(challenge(&fx, &l1.der, 1, NODE_NONCES_MAX, &n2), GRPC_STATUS_OK);
        assert_int_equal(prove(&fx, &l1, l1.key, &n3, &csr, &csr, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);
        assert_int_equal(prove(&fx, &l1, l1.key, &n2, &csr, &csr, NULL), GRPC_STATUS_OK);

        /* A banned agent cannot re-attest. */
        assert_ok(ds_set_agent_banned(fx.s->ds, id, true));
        free(n2.data);
        assert_int_equal(challenge(&fx, &l1.der, 1, 1, &n2), GRPC_STATUS_OK);
        assert_int_equal(prove(&fx, &l1, l1.key, &n2, &csr, &csr, NULL),
                         GRPC_STATUS_PERMISSION_DENIED);

        /* Disabled (no -x509popCA). */
        {
                STACK_OF(X509) *saved = fx.s->node->x509pop_roots;

                fx.s->node->x509pop_roots = NULL;
                assert_int_equal(challenge(&fx, &l1.der, 1, 1, NULL), GRPC_STATUS_UNIMPLEMENTED);
                assert_int_equal(prove(&fx, &l1, l1.key, &n2, &csr, &csr, NULL),
                                 GRPC_STATUS_UNIMPLEMENTED);
                fx.s->node->x509pop_roots = saved;
        }
        free(n1.data);
        free(n2.data);
        free(n3.data);
        free(csr.data);
        leaf_done(&l1);
        node_fx_done(&fx);
}

static bool agent_has_ca(NodeFx *fx, const char *id, X509 *ca) {
        _cleanup_free_ char *fp = fingerprint(ca), *v = NULL;

        assert_true(asprintf(&v, "ca:fingerprint:%s", fp) > 0);
        return agent_has(fx, id, "x509pop", v);
}

static void der_of(X509 *x, ProtobufCBinaryData *ret) {
        assert_ok(warden_x509_to_der(x, &ret->data, &ret->len));
}

/* The ca:fingerprint selectors name the CAs of the verified path only: certificates
 * a node appends to its chain (anyone's CA certificate is public) add nothing. */
static void test_x509pop_chain_selectors(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other_key = NULL, *int_key = NULL, *l2_key = NULL;
        _cleanup_(X509_freep) X509 *other = NULL, *inter = NULL, *l2 = NULL;
        _cleanup_free_ char *id = NULL, *id2 = NULL;
        ProtobufCBinaryData chain[3] = {}, nonce = {}, csr = {};
        const char *names[] = {"node2.site.example"};
        NodeFx fx;
        Leaf l1 = {};

        node_fx_init(&fx, true);
        leaf_new(&fx, "node1.site.example", &l1);
        node_fx_csr(NULL, &csr);

        /* An unrelated CA, appended after a leaf that the site CA issued. */
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &other_key));
        assert_ok(warden_ca_create_self_signed(other_key, "other.example", 3600, 0, &other));
        chain[0] = l1.der;
        der_of(other, &chain[1]);
        assert_int_equal(challenge(&fx, &l1.der, 1, 1, &nonce), GRPC_STATUS_OK);
        assert_int_equal(prove_chain(&fx, chain, 2, l1.key, &nonce, &csr, &csr, &id),
                         GRPC_STATUS_OK);
        assert_false(agent_has_ca(&fx, id, other));
        assert_true(agent_has_ca(&fx, id, fx.site_cert));
        free(chain[1].data);
        free(nonce.data);

        /* A real intermediate: both it and the site root are named. */
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &int_key));
        assert_ok(warden_ca_create_intermediate(fx.site_cert, fx.site_key, int_key, "site.example",
                                                1800, 0, &inter));
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &l2_key));
        assert_ok(warden_svid_sign(&(WardenSvidParams){.ca_cert = inter,
                                                       .ca_key = int_key,
                                                       .public_key = l2_key,
                                                       .spiffe_id = "spiffe://site.example/n2",
                                                       .dns_names = names,
                                                       .n_dns_names = 1,
                                                       .ttl_seconds = 600},
                                   &l2));
        der_of(l2, &chain[0]);
        der_of(inter, &chain[1]);
        der_of(other, &chain[2]);
        assert_int_equal(challenge_chain(&fx, chain, 2, 1, &nonce), GRPC_STATUS_OK);
        assert_int_equal(prove_chain(&fx, chain, 3, l2_key, &nonce, &csr, &csr, &id2),
                         GRPC_STATUS_OK);
        assert_true(agent_has_ca(&fx, id2, inter));
        assert_true(agent_has_ca(&fx, id2, fx.site_cert));
        assert_false(agent_has_ca(&fx, id2, other));
        for (size_t i = 0; i < ELEMENTSOF(chain); i++)
                free(chain[i].data);
        free(nonce.data);
        free(csr.data);
        leaf_done(&l1);
        node_fx_done(&fx);
}

static Entry *mk(const char *spiffe_id, const char *parent_id) {
        Entry *e = NULL;

        assert_ok(entry_new(&e));
        e->spiffe_id = strdup(spiffe_id);
        e->parent_id = strdup(parent_id);
        assert_ok(selector_set_add(&e->selectors, "unix", "uid:1000"));
        return e;
}

/* Stores e and tells the server, as every writer does. */
static void put(NodeFx *fx, Entry *e) {
        assert_ok(ds_create_entries(fx->s->ds, &e, 1, NULL));
        entry_free(e);
        server_entries_changed(fx->s);
}

static void test_sync(void **state) {
        NodeFx fx;
        NodeId id = {};
        NodeSyncClient c, anon, c2;

        node_fx_init(&fx, false);
        node_fx_attest_join(&fx, "tok", &id);
        put(&fx, mk(TD "/w1", id.spiffe_id));

        node_sync_start(&c, &fx, &id);
        assert_true(node_sync_wait_msgs(&c, 1, 10000));
        assert_int_equal(atomic_load(&c.last_entries), 1);

        /* A change that does not alter this agent's snapshot sends nothing. */
        put(&fx, mk(TD "/other", TD "/elsewhere"));
        server_entries_changed(fx.s);
        server_bundle_changed(fx.s);
        node_fx_pump(&fx, NULL, NULL, 300);
        assert_int_equal(atomic_load(&c.n_msgs), 1);

        put(&fx, mk(TD "/w2", id.spiffe_id));
        server_entries_changed(fx.s);
        assert_true(node_sync_wait_msgs(&c, 2, 10000));
        assert_int_equal(atomic_load(&c.last_entries), 2);

        /* Without a client certificate: refused. */
        node_sync_start(&anon, &fx, NULL);
        assert_true(node_sync_wait_end(&anon, 10000));
        assert_int_equal(anon.status, GRPC_STATUS_PERMISSION_DENIED);
        node_sync_stop(&anon);

        /* Another agent changing does not touch this stream; a ban ends it. */
        server_agent_changed(fx.s, TD "/warden/agent/join_token/other");
        server_agent_changed(fx.s, id.spiffe_id);
        node_fx_pump(&fx, NULL, NULL, 200);
        assert_false(atomic_load(&c.ended));
        assert_ok(ds_set_agent_banned(fx.s->ds, id.spiffe_id, true));
        server_agent_changed(fx.s, id.spiffe_id);
        assert_true(node_sync_wait_end(&c, 10000));
        assert_int_equal(c.status, GRPC_STATUS_PERMISSION_DENIED);
        node_sync_stop(&c);

        /* Server shutdown ends open streams with UNAVAILABLE. */
        assert_ok(ds_set_agent_banned(fx.s->ds, id.spiffe_id, false));
        node_sync_start(&c2, &fx, &id);
        assert_true(node_sync_wait_msgs(&c2, 1, 10000));
        node_api_close_all(fx.s->node);
        assert_true(node_sync_wait_end(&c2, 10000));
        assert_int_equal(c2.status, GRPC_STATUS_UNAVAILABLE);
        node_sync_stop(&c2);
        node_id_done(&id);
        node_fx_done(&fx);
}

int test_x509pop_main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_x509pop),
                cmocka_unit_test(test_x509pop_refusals),
                cmocka_unit_test(test_x509pop_chain_selectors),
                cmocka_unit_test(test_sync),
        };

        return cmocka_run_group_tests_name("node_api_x509pop_sync", tests, NULL, NULL);
}
