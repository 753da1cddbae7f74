/* SPDX-License-Identifier: Apache-2.0 */
/* WardenBundle core: authorities, equality, copies, DER and PEM. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>

#include <warden/bundle.h>

#include "bundle_tests.h"
#include "certgen.h"
#include "ossl_cleanup.h"
#include "testlib.h"

static void test_new(void **state) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *a = NULL, *b = NULL, *c = NULL;

        (void) state;
        assert_ok(warden_bundle_new("example.org", &a));
        assert_string_equal(warden_bundle_trust_domain(a), "example.org");
        assert_ok(warden_bundle_new("spiffe://example.org", &b));
        assert_string_equal(warden_bundle_trust_domain(b), "example.org");
        assert_errno(warden_bundle_new("Example.org", &c), EINVAL);
        assert_errno(warden_bundle_new("", &c), EINVAL);
        assert_null(c);
        assert_int_equal(warden_bundle_n_x509_authorities(a), 0);
        assert_int_equal(warden_bundle_n_jwt_authorities(a), 0);
        assert_int_equal(warden_bundle_sequence(a), 0);
        assert_int_equal(warden_bundle_refresh_hint(a), 0);

        /* refcounting: two extra refs, dropped again */
        assert_ptr_equal(warden_bundle_ref(a), a);
        assert_ptr_equal(warden_bundle_ref(a), a);
        assert_null(warden_bundle_unref(a));
        assert_null(warden_bundle_unref(a));
        assert_string_equal(warden_bundle_trust_domain(a), "example.org");
        assert_null(warden_bundle_unref(NULL));
        assert_null(warden_bundle_ref(NULL));
}

static void test_x509_authorities(void **state) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k1 = test_key("P-256"), *k2 = test_key("RSA2048"),
                                           *small = test_key("RSA1024"), *ed = NULL;
        _cleanup_(X509_freep) X509 *dup = NULL, *weak = NULL, *edcert = NULL;
        X509 *c1 = test_cert(k1, "ca1", true), *c2 = test_cert(k2, "ca2", true);

        (void) state;
        assert_ok(warden_bundle_new("example.org", &b));
        assert_int_equal(warden_bundle_add_x509_authority(b, c1), 1);
        assert_int_equal(warden_bundle_add_x509_authority(b, c1), 0);
        dup = X509_dup(c1);
        assert_int_equal(warden_bundle_add_x509_authority(b, dup), 0);
        assert_int_equal(warden_bundle_add_x509_authority(b, c2), 1);
        assert_int_equal(warden_bundle_n_x509_authorities(b), 2);

        /* The bundle holds its own references. */
        X509_free(c1);
        X509_free(c2);
        const STACK_OF(X509) *roots = warden_bundle_x509_authorities(b);
        assert_int_equal(sk_X509_num(roots), 2);
        assert_int_equal(X509_cmp(sk_X509_value(roots, 0), dup), 0);

        assert_ok(warden_bundle_remove_x509_authority(b, dup));
        assert_errno(warden_bundle_remove_x509_authority(b, dup), ENOENT);
        assert_int_equal(warden_bundle_n_x509_authorities(b), 1);

        weak = test_cert(small, "weak", true);
        assert_errno(warden_bundle_add_x509_authority(b, weak), EINVAL);
        ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_non_null(ed);
        edcert = test_cert(ed, "ed", true);
        assert_errno(warden_bundle_add_x509_authority(b, edcert), EOPNOTSUPP);
        assert_int_equal(warden_bundle_n_x509_authorities(b), 1);
}

static void test_jwt_authorities(void **state) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k1 = test_key("P-256"), *k2 = test_key("P-384");
        _cleanup_(BN_freep) BIGNUM *priv = NULL;
        char kid[WARDEN_JWT_KID_MAX + 2];
        const char *s;
        EVP_PKEY *key;
        int64_t exp;

        (void) state;
        assert_ok(warden_bundle_new("example.org", &b));
        assert_ok(warden_bundle_add_jwt_authority(b, "a", k1, 1700000000));
        assert_errno(warden_bundle_add_jwt_authority(b, "a", k2, 0), EEXIST);
        assert_errno(warden_bundle_add_jwt_authority(b, "", k2, 0), EINVAL);
        assert_errno(warden_bundle_add_jwt_authority(b, "x", k2, -1), EINVAL);
        memset(kid, 'k', sizeof(kid) - 1);
        kid[sizeof(kid) - 1] = '\0';
        assert_errno(warden_bundle_add_jwt_authority(b, kid, k2, 0), EINVAL); /* 257 bytes */
        kid[WARDEN_JWT_KID_MAX] = '\0';
        assert_ok(warden_bundle_add_jwt_authority(b, kid, k2, 0)); /* 256 bytes */
        assert_int_equal(warden_bundle_n_jwt_authorities(b), 2);

        key = warden_bundle_find_jwt_key(b, "a");
        assert_non_null(key);
        assert_int_equal(EVP_PKEY_eq(key, k1), 1);
        /* only the public half is stored */
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 0);
        assert_null(warden_bundle_find_jwt_key(b, "b"));

        assert_ok(warden_bundle_get_jwt_authority(b, 0, &s, &key, &exp));
        assert_string_equal(s, "a");
        assert_int_equal(exp, 1700000000);
        assert_ok(warden_bundle_get_jwt_authority(b, 1, &s, NULL, NULL));
        assert_string_equal(s, kid);
        assert_errno(warden_bundle_get_jwt_authority(b, 2, &s, NULL, NULL), ENOENT);

        assert_ok(warden_bundle_remove_jwt_authority(b, "a"));
        assert_errno(warden_bundle_remove_jwt_authority(b, "a"), ENOENT);
        assert_null(warden_bundle_find_jwt_key(b, "a"));
        assert_ok(warden_bundle_get_jwt_authority(b, 0, &s, NULL, NULL));
        assert_string_equal(s, kid);
        assert_int_equal(warden_bundle_n_jwt_authorities(b), 1);
}

static void test_sequence_hint(void **state) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;

        (void) state;
        assert_ok(warden_bundle_new("example.org", &b));
        warden_bundle_set_sequence(b, UINT64_MAX);
        assert_true(warden_bundle_sequence(b) == UINT64_MAX);
        assert_ok(warden_bundle_set_refresh_hint(b, 300));
        assert_errno(warden_bundle_set_refresh_hint(b, -1), EINVAL);
        assert_int_equal(warden_bundle_refresh_hint(b), 300);
}

static WardenBundle *full_bundle(EVP_PKEY *k1, EVP_PKEY *k2, X509 *c1, X509 *c2, bool reverse) {
        WardenBundle *b;

        assert_ok(warden_bundle_new("example.org", &b));
        assert_int_equal(warden_bundle_add_x509_authority(b, reverse ? c2 : c1), 1);
        assert_int_equal(warden_bundle_add_x509_authority(b, reverse ? c1 : c2), 1);
        assert_ok(warden_bundle_add_jwt_authority(b, reverse ? "k2" : "k1", reverse ? k2 : k1, 5));
        assert_ok(warden_bundle_add_jwt_authority(b, reverse ? "k1" : "k2", reverse ? k1 : k2, 5));
        warden_bundle_set_sequence(b, 7);
        assert_ok(warden_bundle_set_refresh_hint(b, 60));
        return b;
}

static void test_equal_copy(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k1 = test_key("P-256"), *k2 = test_key("P-256");
        _cleanup_(X509_freep) X509 *c1 = test_cert(k1, "ca1", true),
                                   *c2 = test_cert(k2, "ca2", true);
        _cleanup_(warden_bundle_unrefp) WardenBundle *a = full_bundle(k1, k2, c1, c2, false),
                                                     *b = full_bundle(k1, k2, c1, c2, true),
                                                     *c = NULL, *d = NULL;

        (void) state;
        assert_true(warden_bundle_equal(NULL, NULL));
        assert_false(warden_bundle_equal(a, NULL));
        assert_true(warden_bundle_equal(a, b)); /* order does not matter */

        assert_ok(warden_bundle_copy(a, &c));
        assert_true(warden_bundle_equal(a, c));
        warden_bundle_set_sequence(c, 8);
        assert_false(warden_bundle_equal(a, c));
        assert_true(warden_bundle_equal(a, b)); /* the copy is independent */
        warden_bundle_set_sequence(c, 7);
        assert_ok(warden_bundle_set_refresh_hint(c, 61));
        assert_false(warden_bundle_equal(a, c));
        assert_ok(warden_bundle_set_refresh_hint(c, 60));
        assert_true(warden_bundle_equal(a, c));

        /* same kid, other key */
        assert_ok(warden_bundle_remove_jwt_authority(c, "k1"));
        assert_false(warden_bundle_equal(a, c));
        assert_ok(warden_bundle_add_jwt_authority(c, "k1", k2, 5));
        assert_false(warden_bundle_equal(a, c));
        assert_ok(warden_bundle_remove_jwt_authority(c, "k1"));
        assert_ok(warden_bundle_add_jwt_authority(c, "k1", k1, 6)); /* other expiry */
        assert_false(warden_bundle_equal(a, c));
        assert_ok(warden_bundle_remove_jwt_authority(c, "k1"));
        assert_ok(warden_bundle_add_jwt_authority(c, "k1", k1, 5));
        assert_true(warden_bundle_equal(a, c));
        assert_ok(warden_bundle_remove_x509_authority(c, c1));
        assert_false(warden_bundle_equal(a, c));

        assert_ok(warden_bundle_new("other.org", &d));
        assert_false(warden_bundle_equal(d, c));
}

static void test_der_pem(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k1 = test_key("P-256"), *k2 = test_key("P-384");
        _cleanup_(X509_freep) X509 *c1 = test_cert(k1, "ca1", true),
                                   *c2 = test_cert(k2, "ca2", true);
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        _cleanup_free_ uint8_t *der = NULL, *empty = NULL;
        _cleanup_free_ char *pem = NULL, *pem_empty = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        const unsigned char *p;
        size_t len;

        (void) state;
        assert_ok(warden_bundle_new("example.org", &b));
        assert_ok(warden_bundle_x509_der(b, &empty, &len));
        assert_int_equal(len, 0);
        assert_ok(warden_bundle_to_pem(b, &pem_empty));
        assert_string_equal(pem_empty, "");

        assert_int_equal(warden_bundle_add_x509_authority(b, c1), 1);
        assert_int_equal(warden_bundle_add_x509_authority(b, c2), 1);
        assert_ok(warden_bundle_x509_der(b, &der, &len));
        assert_int_equal(len, (size_t) (i2d_X509(c1, NULL) + i2d_X509(c2, NULL)));
        p = der;
        X509 *r1 = d2i_X509(NULL, &p, (long) len);
        X509 *r2 = d2i_X509(NULL, &p, (long) (der + len - p));
        assert_ptr_equal(p, der + len);
        assert_int_equal(X509_cmp(r1, c1), 0);
        assert_int_equal(X509_cmp(r2, c2), 0);
        X509_free(r1);
        X509_free(r2);

        assert_ok(warden_bundle_to_pem(b, &pem));
        bio = BIO_new_mem_buf(pem, -1);
        r1 = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        r2 = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        assert_int_equal(X509_cmp(r1, c1), 0);
        assert_int_equal(X509_cmp(r2, c2), 0);
        X509_free(r1);
        X509_free(r2);
}

static void test_keys_cap(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = test_key("P-256");
        _cleanup_(X509_freep) X509 *c = test_cert(k, "ca", true);
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        char kid[32];

        (void) state;
        assert_ok(warden_bundle_new("example.org", &b));
        for (unsigned i = 0; i < WARDEN_BUNDLE_KEYS_MAX; i++) {
                snprintf(kid, sizeof(kid), "k%u", i);
                assert_ok(warden_bundle_add_jwt_authority(b, kid, k, 0));
        }
        assert_errno(warden_bundle_add_jwt_authority(b, "one-more", k, 0), E2BIG);
        assert_errno(warden_bundle_add_x509_authority(b, c), E2BIG);
        assert_ok(warden_bundle_remove_jwt_authority(b, "k0"));
        assert_int_equal(warden_bundle_add_x509_authority(b, c), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_new),
                cmocka_unit_test(test_x509_authorities),
                cmocka_unit_test(test_jwt_authorities),
                cmocka_unit_test(test_sequence_hint),
                cmocka_unit_test(test_equal_copy),
                cmocka_unit_test(test_der_pem),
                cmocka_unit_test(test_keys_cap),
                cmocka_unit_test(test_spiffe_roundtrip),
                cmocka_unit_test(test_spiffe_shape),
                cmocka_unit_test(test_spiffe_hint_and_sequence),
                cmocka_unit_test(test_jwks_shape),
                cmocka_unit_test(test_jwks_parse),
                cmocka_unit_test(test_spiffe_malformed),
                cmocka_unit_test(test_spiffe_malformed_keys),
                cmocka_unit_test(test_jwks_malformed),
                cmocka_unit_test(test_ignored_keys),
                cmocka_unit_test(test_size_caps),
        };
        return cmocka_run_group_tests(tests, NULL, bundle_json_teardown);
}
