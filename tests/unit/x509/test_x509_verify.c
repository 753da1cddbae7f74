/* SPDX-License-Identifier: Apache-2.0 */
/* X509-SVID verification: good chains, and each rule violation with its own reason.
 * Bad leaves are built with raw OpenSSL (x509_test_util.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "testlib.h"
#include "x509_test_util.h"

typedef struct Fixture {
        EVP_PKEY *root_key, *int_key, *key;
        X509 *root, *inter;
        STACK_OF(X509) * roots;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        f->root_key = tu_key();
        f->int_key = tu_key();
        f->key = tu_key();
        if (warden_ca_create_self_signed(f->root_key, TU_TD, 86400, 0, &f->root) < 0 ||
            warden_ca_create_intermediate(f->root, f->root_key, f->int_key, TU_TD, 43200, 0,
                                          &f->inter) < 0)
                return -1;
        f->roots = tu_stack(f->root, NULL);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        sk_X509_pop_free(f->roots, X509_free);
        X509_free(f->root);
        X509_free(f->inter);
        EVP_PKEY_free(f->root_key);
        EVP_PKEY_free(f->int_key);
        EVP_PKEY_free(f->key);
        free(f);
        return 0;
}

static X509 *sign_svid(Fixture *f, X509 *ca, EVP_PKEY *ca_key) {
        WardenSvidParams p = {
                .ca_cert = ca,
                .ca_key = ca_key,
                .public_key = f->key,
                .spiffe_id = TU_ID,
                .ttl_seconds = 3600,
        };
        X509 *svid = NULL;

        assert_ok(warden_svid_sign(&p, &svid));
        return svid;
}

static void test_verify_via_root(void **state) {
        Fixture *f = *state;
        _cleanup_(X509_freep) X509 *svid = sign_svid(f, f->root, f->root_key);
        _cleanup_free_ char *id = NULL;
        const char *reason = NULL;

        assert_ok(warden_svid_verify(svid, NULL, f->roots, 0, &id, &reason));
        assert_string_equal(id, TU_ID);
        assert_null(reason);
        assert_ok(warden_svid_verify(svid, NULL, f->roots, 0, NULL, NULL));
}

static void test_verify_via_intermediate(void **state) {
        Fixture *f = *state;
        _cleanup_(X509_freep) X509 *svid = sign_svid(f, f->inter, f->int_key);
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *inters = tu_stack(f->inter, NULL);
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *inter_root = tu_stack(f->inter, NULL);
        _cleanup_free_ char *id = NULL;
        const char *reason = NULL;

        assert_ok(warden_svid_verify(svid, inters, f->roots, 0, &id, &reason));
        assert_string_equal(id, TU_ID);
        /* Without the intermediate the chain does not reach the root. */
        assert_errno(warden_svid_verify(svid, NULL, f->roots, 0, NULL, &reason), EKEYREJECTED);
        assert_string_equal(reason, "untrusted chain");
        /* Every bundle cert is an anchor, self-signed or not (as Go's Roots). */
        assert_ok(warden_svid_verify(svid, NULL, inter_root, 0, NULL, NULL));
}

static void expect_leaf_reason(Fixture *f, X509 *leaf, int err, const char *want) {
        const char *reason = NULL;
        char *id = NULL;

        reason = NULL;
        assert_errno(warden_svid_verify(leaf, NULL, f->roots, 0, &id, &reason), err);
        assert_null(id);
        assert_non_null(reason);
        assert_string_equal(reason, want);
        if (err == EBADMSG) {
                reason = NULL;
                assert_errno(warden_svid_check_leaf(leaf, &reason), EBADMSG);
                assert_string_equal(reason, want);
        }
}

static X509 *raw_leaf(Fixture *f, const char *san, const char *bc, const char *ku) {
        TuCertSpec s = {
                .key = f->key,
                .issuer = f->root,
                .issuer_key = f->root_key,
                .san = san,
                .bc = bc,
                .ku = ku,
                .eku = "serverAuth,clientAuth",
                .serial = 7,
        };
        return tu_make_cert(&s);
}

#define GOOD_SAN "URI:" TU_ID
#define GOOD_BC "critical,CA:FALSE"
#define GOOD_KU "critical,digitalSignature,keyEncipherment"

static void test_leaf_rule_violations(void **state) {
        static const struct {
                const char *san, *bc, *ku, *reason;
        } cases[] = {
                {GOOD_SAN ",URI:spiffe://example.org/other", GOOD_BC, GOOD_KU,
                 "more than one URI SAN"},
                {"DNS:web.example.org", GOOD_BC, GOOD_KU, "no URI SAN"},
                {NULL, GOOD_BC, GOOD_KU, "no URI SAN"},
                {GOOD_SAN, "critical,CA:TRUE", GOOD_KU, "leaf is a CA"},
                {GOOD_SAN, GOOD_BC, "critical,digitalSignature,keyCertSign",
                 "leaf has keyCertSign"},
                {GOOD_SAN, GOOD_BC, "critical,digitalSignature,cRLSign", "leaf has cRLSign"},
                {GOOD_SAN, GOOD_BC, "critical,keyEncipherment,keyAgreement",
                 "missing digital signature key usage"},
                {GOOD_SAN, GOOD_BC, NULL, "missing key usage"},
                {"URI:spiffe://example.org", GOOD_BC, GOOD_KU, "SPIFFE ID has no path"},
                {"URI:spiffe://Example.org/w", GOOD_BC, GOOD_KU, "invalid SPIFFE ID in URI SAN"},
                {"URI:https://example.org/w", GOOD_BC, GOOD_KU, "invalid SPIFFE ID in URI SAN"},
                {"URI:spiffe://example.org/a/../b", GOOD_BC, GOOD_KU,
                 "invalid SPIFFE ID in URI SAN"},
        };
        Fixture *f = *state;
        (void) state;

        /* Control: the raw builder makes a valid SVID, so each failure below comes
         * from the one field that changed. */
        {
                _cleanup_(X509_freep) X509 *good = raw_leaf(f, GOOD_SAN, GOOD_BC, GOOD_KU);
                _cleanup_(X509_freep) X509 *no_bc = raw_leaf(f, GOOD_SAN, NULL, GOOD_KU);
                assert_ok(warden_svid_verify(good, NULL, f->roots, 0, NULL, NULL));
                /* Absent BasicConstraints is not a CA. */
                assert_ok(warden_svid_verify(no_bc, NULL, f->roots, 0, NULL, NULL));
        }
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(X509_freep) X509 *leaf =
                        raw_leaf(f, cases[i].san, cases[i].bc, cases[i].ku);
                expect_leaf_reason(f, leaf, EBADMSG, cases[i].reason);
        }
}

static void test_chain_violations(void **state) {
        Fixture *f = *state;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other_key = tu_key();
        _cleanup_(X509_freep) X509 *other_root = NULL, *foreign = NULL, *svid = NULL;
        const char *reason = NULL;
        time_t nb, na;

        /* Signed by an unrelated CA of the same trust domain. */
        assert_ok(warden_ca_create_self_signed(other_key, TU_TD, 3600, 0, &other_root));
        foreign = sign_svid(f, other_root, other_key);
        expect_leaf_reason(f, foreign, EKEYREJECTED, "untrusted chain");

        /* Expired / not yet valid, by moving the verification time. */
        svid = sign_svid(f, f->root, f->root_key);
        nb = warden_x509_not_before(svid);
        na = warden_x509_not_after(svid);
        assert_errno(warden_svid_verify(svid, NULL, f->roots, na + 100, NULL, &reason),
                     EKEYEXPIRED);
        assert_string_equal(reason, "expired");
        assert_errno(warden_svid_verify(svid, NULL, f->roots, nb - 100, NULL, &reason),
                     EKEYEXPIRED);
        assert_string_equal(reason, "not yet valid");
        assert_ok(warden_svid_verify(svid, NULL, f->roots, nb + 1, NULL, NULL));
        assert_ok(warden_svid_verify(svid, NULL, f->roots, na - 1, NULL, NULL));

        /* Empty bundle. */
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *none = sk_X509_new_null();
        assert_errno(warden_svid_verify(svid, NULL, none, 0, NULL, &reason), EKEYREJECTED);
        assert_string_equal(reason, "untrusted chain");
}

static void test_bad_signature(void **state) {
        Fixture *f = *state;
        _cleanup_(X509_freep) X509 *svid = sign_svid(f, f->root, f->root_key), *bad = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        const char *reason = NULL;
        size_t len = 0;

        assert_ok(warden_x509_to_der(svid, &der, &len));
        der[len - 1] ^= 0x01; /* inside ECDSA's s */
        assert_ok(warden_x509_from_der(der, len, &bad));
        assert_errno(warden_svid_verify(bad, NULL, f->roots, 0, NULL, &reason), EKEYREJECTED);
        assert_string_equal(reason, "bad signature");
}

static void test_intermediate_rules(void **state) {
        Fixture *f = *state;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = tu_key();
        _cleanup_(X509_freep) X509 *svid = sign_svid(f, f->root, f->root_key);
        _cleanup_(X509_freep) X509 *leafish = tu_make_leaf(k, f->root, f->root_key, "URI:" TU_ID);
        const char *reason = NULL;
        TuCertSpec s = {
                .key = k,
                .issuer = f->root,
                .issuer_key = f->root_key,
                .bc = "critical,CA:TRUE",
                .ku = "critical,digitalSignature,cRLSign",
                .serial = 9,
        };
        _cleanup_(X509_freep) X509 *no_certsign = tu_make_cert(&s);
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *i1 = tu_stack(leafish, NULL);
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *i2 = tu_stack(no_certsign, NULL);

        assert_errno(warden_svid_verify(svid, i1, f->roots, 0, NULL, &reason), EBADMSG);
        assert_string_equal(reason, "intermediate is not a CA");
        assert_errno(warden_svid_verify(svid, i2, f->roots, 0, NULL, &reason), EBADMSG);
        assert_string_equal(reason, "intermediate lacks keyCertSign");
}

static void test_x509pop_chain(void **state) {
        Fixture *f = *state;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *site_key = tu_key(), *node_key = tu_key();
        _cleanup_(X509_freep) X509 *site = tu_make_root(site_key, NULL), *node = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *site_roots = tu_stack(site, NULL);
        const char *reason = NULL;
        TuCertSpec s = {
                .key = node_key,
                .issuer = site,
                .issuer_key = site_key,
                .cn = "node-1.example.net",
                .ku = "critical,digitalSignature",
                .serial = 42,
        };

        node = tu_make_cert(&s);
        /* An ordinary cert (no SPIFFE ID) chains to the site CA... */
        assert_ok(warden_x509_verify_chain_to_roots(node, NULL, site_roots, 0, &reason));
        /* ...not to another root, and it is not an SVID. */
        assert_errno(warden_x509_verify_chain_to_roots(node, NULL, f->roots, 0, &reason),
                     EKEYREJECTED);
        assert_string_equal(reason, "untrusted chain");
        assert_errno(warden_svid_verify(node, NULL, site_roots, 0, NULL, &reason), EBADMSG);
        assert_string_equal(reason, "no URI SAN");
        assert_errno(warden_x509_verify_chain_to_roots(node, NULL, site_roots, time(NULL) + 7200,
                                                       &reason),
                     EKEYEXPIRED);
        assert_string_equal(reason, "expired");
}

/* The verified path holds the certificates used, not whatever else was passed in. */
static void test_verify_path(void **state) {
        Fixture *f = *state;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *other_key = tu_key();
        _cleanup_(X509_freep) X509 *svid = sign_svid(f, f->inter, f->int_key),
                                   *other = tu_make_root(other_key, NULL);
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *inter = tu_stack(other, f->inter, NULL),
                                                    *path = NULL;
        const char *reason = NULL;

        assert_ok(warden_x509_verify_path_to_roots(svid, inter, f->roots, 0, &path, &reason));
        assert_int_equal(sk_X509_num(path), 3);
        assert_int_equal(X509_cmp(sk_X509_value(path, 0), svid), 0);
        assert_int_equal(X509_cmp(sk_X509_value(path, 1), f->inter), 0);
        assert_int_equal(X509_cmp(sk_X509_value(path, 2), f->root), 0);
        assert_ok(warden_x509_verify_path_to_roots(svid, inter, f->roots, 0, NULL, &reason));

        /* On failure *ret_path is left alone. */
        sk_X509_pop_free(path, X509_free);
        path = NULL;
        assert_errno(warden_x509_verify_path_to_roots(svid, NULL, f->roots, 0, &path, &reason),
                     EKEYREJECTED);
        assert_null(path);
}

int x509_verify_tests(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_verify_via_root, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_via_intermediate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_leaf_rule_violations, setup, teardown),
                cmocka_unit_test_setup_teardown(test_chain_violations, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_signature, setup, teardown),
                cmocka_unit_test_setup_teardown(test_intermediate_rules, setup, teardown),
                cmocka_unit_test_setup_teardown(test_x509pop_chain, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_path, setup, teardown),
        };
        return cmocka_run_group_tests_name("x509_verify", tests, NULL, NULL);
}
