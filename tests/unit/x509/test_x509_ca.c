/* SPDX-License-Identifier: Apache-2.0 */
/* CA certificates: every template property read back with OpenSSL's parsers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "testlib.h"
#include "x509_test_util.h"

#define CA_TTL 86400

/* Properties shared by roots and intermediates. */
static void check_ca_template(X509 *ca, EVP_PKEY *subject_key, int sig_nid) {
        _cleanup_free_ char *c = NULL, *o = NULL, *cn = NULL, *sn = NULL, *uri = NULL;
        _cleanup_(BN_freep) BIGNUM *serial = NULL;
        BASIC_CONSTRAINTS *bc;
        char *serial_dec;
        uint32_t ku;

        assert_int_equal(X509_get_version(ca), X509_VERSION_3);
        c = tu_subject_entry(ca, NID_countryName);
        o = tu_subject_entry(ca, NID_organizationName);
        cn = tu_subject_entry(ca, NID_commonName);
        sn = tu_subject_entry(ca, NID_serialNumber);
        assert_string_equal(c, "US");
        assert_string_equal(o, "Warden");
        assert_string_equal(cn, "Warden CA");
        /* serialNumber attribute = the certificate serial in decimal (as SPIRE). */
        serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca), NULL);
        assert_false(BN_is_negative(serial));
        assert_true(BN_num_bits(serial) > 64);
        serial_dec = BN_bn2dec(serial);
        assert_string_equal(sn, serial_dec);
        OPENSSL_free(serial_dec);

        assert_int_equal(tu_san_count(ca, GEN_URI, &uri), 1);
        assert_string_equal(uri, "spiffe://" TU_TD);
        assert_int_equal(tu_san_count(ca, GEN_DNS, NULL), 0);

        assert_int_equal(tu_ext_critical(ca, NID_basic_constraints), 1);
        bc = X509_get_ext_d2i(ca, NID_basic_constraints, NULL, NULL);
        assert_non_null(bc);
        assert_true(bc->ca);
        assert_null(bc->pathlen);
        BASIC_CONSTRAINTS_free(bc);

        assert_int_equal(tu_ext_critical(ca, NID_key_usage), 1);
        ku = X509_get_key_usage(ca);
        assert_int_equal(ku, KU_KEY_CERT_SIGN | KU_CRL_SIGN);
        assert_int_equal(tu_ext_critical(ca, NID_ext_key_usage), -1);

        /* SKI = SHA-1 of the public key bits. */
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
        assert_non_null(ski);
        assert_int_equal(X509_pubkey_digest(ca, EVP_sha1(), md, &mdlen), 1);
        assert_int_equal(ASN1_STRING_length(ski), mdlen);
        assert_memory_equal(ASN1_STRING_get0_data(ski), md, mdlen);

        assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(ca), subject_key), 1);
        assert_int_equal(X509_get_signature_nid(ca), sig_nid);
        assert_true(X509_check_ca(ca) > 0);
}

static void check_validity(X509 *x, time_t t0, time_t t1, int64_t ttl) {
        time_t nb = warden_x509_not_before(x), na = warden_x509_not_after(x);

        /* t0 <= issuance time <= t1 */
        assert_true(nb >= t0 - WARDEN_X509_BACKDATE_SECONDS);
        assert_true(nb <= t1 - WARDEN_X509_BACKDATE_SECONDS);
        assert_int_equal(na - nb, ttl + WARDEN_X509_BACKDATE_SECONDS);
}

static void test_self_signed(void **state) {
        static const struct {
                WardenKeyType type;
                int sig_nid;
        } cases[] = {
                {WARDEN_KEY_EC_P256, NID_ecdsa_with_SHA256},
                {WARDEN_KEY_EC_P384, NID_ecdsa_with_SHA384},
                {WARDEN_KEY_RSA_2048, NID_sha256WithRSAEncryption},
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
                _cleanup_(X509_freep) X509 *ca = NULL;
                time_t t0, t1;

                assert_ok(warden_key_generate(cases[i].type, &key));
                t0 = time(NULL);
                assert_ok(warden_ca_create_self_signed(key, TU_TD, CA_TTL, 0, &ca));
                t1 = time(NULL);
                check_ca_template(ca, key, cases[i].sig_nid);
                check_validity(ca, t0, t1, CA_TTL);
                /* Self-issued, self-signed, no AKI. */
                assert_int_equal(X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(ca)),
                                 0);
                assert_int_equal(X509_verify(ca, key), 1);
                assert_int_equal(tu_ext_critical(ca, NID_authority_key_identifier), -1);
        }
}

static void test_self_signed_rejects(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = tu_key();
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *weak =
                EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        X509 *ca = NULL;
        (void) state;

        assert_errno(warden_ca_create_self_signed(key, TU_TD, 0, 0, &ca), EINVAL);
        assert_errno(warden_ca_create_self_signed(key, TU_TD, -5, 0, &ca), EINVAL);
        assert_errno(warden_ca_create_self_signed(key, TU_TD, WARDEN_X509_TTL_MAX + 1, 0, &ca),
                     EINVAL);
        assert_errno(warden_ca_create_self_signed(key, "Example.org", CA_TTL, 0, &ca), EINVAL);
        assert_errno(warden_ca_create_self_signed(key, "", CA_TTL, 0, &ca), EINVAL);
        assert_errno(warden_ca_create_self_signed(key, "spiffe://example.org", CA_TTL, 0, &ca),
                     EINVAL);
        assert_errno(warden_ca_create_self_signed(weak, TU_TD, CA_TTL, 0, &ca), EKEYREJECTED);
        assert_errno(warden_ca_create_self_signed(NULL, TU_TD, CA_TTL, 0, &ca), EINVAL);
        assert_null(ca);
}

static void test_intermediate(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *root_key = NULL, *key = NULL;
        _cleanup_(X509_freep) X509 *root = NULL, *ca = NULL;
        _cleanup_(sk_X509_pop_freep) STACK_OF(X509) *roots = NULL;
        AUTHORITY_KEYID *akid;
        const char *reason = NULL;
        time_t t0, t1;
        (void) state;

        assert_ok(warden_key_generate(WARDEN_KEY_EC_P384, &root_key));
        assert_ok(warden_key_generate(WARDEN_KEY_EC_P256, &key));
        assert_ok(warden_ca_create_self_signed(root_key, TU_TD, 10 * CA_TTL, 0, &root));
        t0 = time(NULL);
        assert_ok(warden_ca_create_intermediate(root, root_key, key, TU_TD, CA_TTL, 0, &ca));
        t1 = time(NULL);

        /* Signed by the P-384 root: SHA-384. */
        check_ca_template(ca, key, NID_ecdsa_with_SHA384);
        check_validity(ca, t0, t1, CA_TTL);
        assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(ca), X509_get_subject_name(root)), 0);
        assert_int_not_equal(X509_NAME_cmp(X509_get_subject_name(ca), X509_get_subject_name(root)),
                             0);
        assert_int_equal(X509_verify(ca, root_key), 1);
        assert_int_not_equal(X509_verify(ca, key), 1);
        assert_int_equal(tu_ext_critical(ca, NID_authority_key_identifier), 0);
        akid = X509_get_ext_d2i(ca, NID_authority_key_identifier, NULL, NULL);
        assert_non_null(akid);
        assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(root)), 0);
        AUTHORITY_KEYID_free(akid);
        assert_int_equal(X509_check_issued(root, ca), X509_V_OK);

        roots = tu_stack(root, NULL);
        assert_ok(warden_x509_verify_chain_to_roots(ca, NULL, roots, 0, &reason));
}

static void test_intermediate_capped_and_rejects(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *root_key = tu_key(), *key = tu_key(), *other = tu_key();
        _cleanup_(X509_freep) X509 *root = NULL, *ca = NULL, *leaf = NULL;
        X509 *out = NULL;
        (void) state;

        assert_ok(warden_ca_create_self_signed(root_key, TU_TD, 3600, 0, &root));
        assert_ok(warden_ca_create_intermediate(root, root_key, key, TU_TD, 7200, 0, &ca));
        assert_int_equal(warden_x509_not_after(ca), warden_x509_not_after(root));
        assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(ca), X509_get0_notAfter(root)), 0);

        /* Upstream key does not match, upstream is not a CA, bad TD, bad TTL. */
        assert_errno(warden_ca_create_intermediate(root, other, key, TU_TD, 60, 0, &out), EINVAL);
        leaf = tu_make_leaf(other, root, root_key, "URI:" TU_ID);
        assert_errno(warden_ca_create_intermediate(leaf, other, key, TU_TD, 60, 0, &out), EINVAL);
        assert_errno(warden_ca_create_intermediate(root, root_key, key, "a b", 60, 0, &out),
                     EINVAL);
        assert_errno(warden_ca_create_intermediate(root, root_key, key, TU_TD, 0, 0, &out), EINVAL);
        assert_null(out);
}

static void test_intermediate_expired_upstream(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *root_key = tu_key(), *key = tu_key();
        _cleanup_(X509_freep) X509 *root = NULL;
        X509 *out = NULL;
        time_t now = time(NULL);
        TuCertSpec s = {
                .key = root_key,
                .bc = "critical,CA:TRUE",
                .ku = "critical,keyCertSign,cRLSign",
                .not_before = now - 7200,
                .not_after = now - 3600,
        };
        (void) state;

        root = tu_make_cert(&s);
        assert_errno(warden_ca_create_intermediate(root, root_key, key, TU_TD, 60, 0, &out),
                     EKEYEXPIRED);
        assert_null(out);
}

/* An explicit `now` dates both kinds of CA certificate, also far from the wall clock. */
static void test_explicit_now(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *root_key = tu_key(), *key = tu_key();
        _cleanup_(X509_freep) X509 *root = NULL, *ca = NULL;
        time_t now = time(NULL) + 30 * 86400;
        X509 *out = NULL;
        (void) state;

        assert_ok(warden_ca_create_self_signed(root_key, TU_TD, 4 * CA_TTL, now, &root));
        assert_int_equal(warden_x509_not_before(root), now - WARDEN_X509_BACKDATE_SECONDS);
        assert_int_equal(warden_x509_not_after(root), now + 4 * CA_TTL);
        assert_ok(warden_ca_create_intermediate(root, root_key, key, TU_TD, CA_TTL, now + 60, &ca));
        assert_int_equal(warden_x509_not_before(ca), now + 60 - WARDEN_X509_BACKDATE_SECONDS);
        assert_int_equal(warden_x509_not_after(ca), now + 60 + CA_TTL);
        /* The upstream's validity is judged at now, too. */
        assert_errno(warden_ca_create_intermediate(root, root_key, key, TU_TD, CA_TTL,
                                                   now + 4 * CA_TTL, &out),
                     EKEYEXPIRED);
        assert_null(out);
}

int x509_ca_tests(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_self_signed),
                cmocka_unit_test(test_self_signed_rejects),
                cmocka_unit_test(test_intermediate),
                cmocka_unit_test(test_intermediate_capped_and_rejects),
                cmocka_unit_test(test_intermediate_expired_upstream),
                cmocka_unit_test(test_explicit_now),
        };
        return cmocka_run_group_tests_name("x509_ca", tests, NULL, NULL);
}
