/* SPDX-License-Identifier: Apache-2.0 */
/* CSRs: creation, parsing, tampering, size cap. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include <warden/x509.h>

#include "cleanup.h"
#include "ossl_cleanup.h"
#include "testlib.h"
#include "x509_test_util.h"

/* The URI SANs of a request, read with OpenSSL's parsers. */
static int req_uri_count(X509_REQ *req, char **ret_first) {
        STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
        int n = 0;

        *ret_first = NULL;
        for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++) {
                X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
                GENERAL_NAMES *gens;

                if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name)
                        continue;
                gens = X509V3_EXT_d2i(ext);
                assert_non_null(gens);
                for (int k = 0; k < sk_GENERAL_NAME_num(gens); k++) {
                        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, k);
                        if (g->type != GEN_URI)
                                continue;
                        if (n++ == 0)
                                *ret_first = strdup((const char *) ASN1_STRING_get0_data(
                                        g->d.uniformResourceIdentifier));
                }
                GENERAL_NAMES_free(gens);
        }
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        return n;
}

static void test_csr_roundtrip(void **state) {
        static const WardenKeyType types[] = {
                WARDEN_KEY_EC_P256,
                WARDEN_KEY_EC_P384,
                WARDEN_KEY_RSA_2048,
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL, *pub = NULL;
                _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
                _cleanup_free_ uint8_t *der = NULL;
                _cleanup_free_ char *uri = NULL;
                const char *reason = NULL;
                size_t len = 0;

                assert_ok(warden_key_generate(types[i], &key));
                assert_ok(warden_csr_create(key, TU_ID, &der, &len));
                assert_true(len > 0 && len <= WARDEN_CSR_MAX_BYTES);
                assert_ok(warden_csr_parse(der, len, &req, &reason));
                assert_null(reason);
                assert_ok(warden_csr_public_key(req, &pub));
                assert_true(warden_key_public_equal(pub, key));
                EVP_PKEY_free(pub);
                pub = NULL;
                /* The parser without OpenSSL's decoder (EC) gives the same key. */
                assert_ok(warden_csr_parse_public_key(der, len, &pub, &reason));
                assert_true(warden_key_public_equal(pub, key));
                assert_int_equal(req_uri_count(req, &uri), 1);
                assert_string_equal(uri, TU_ID);
        }
}

static void test_csr_without_id(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = tu_key(), *pub = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ char *uri = NULL;
        uint8_t *bad = NULL;
        size_t len = 0;
        (void) state;

        assert_ok(warden_csr_create(key, NULL, &der, &len));
        assert_ok(warden_csr_parse(der, len, &req, NULL));
        assert_int_equal(req_uri_count(req, &uri), 0);
        assert_ok(warden_csr_public_key(req, &pub));
        assert_true(warden_key_public_equal(pub, key));
        assert_errno(warden_csr_create(key, "spiffe://Bad/x", &bad, &len), EINVAL);
        assert_errno(warden_csr_create(key, "https://example.org/x", &bad, &len), EINVAL);
        assert_null(bad);
}

/* Both parsers refuse der alike. */
static void expect_reject(const uint8_t *der, size_t len, int err, const char *want_reason) {
        EVP_PKEY *pub = NULL;
        X509_REQ *req = NULL;
        const char *reason = NULL;

        assert_errno(warden_csr_parse(der, len, &req, &reason), err);
        assert_null(req);
        assert_non_null(reason);
        assert_string_equal(reason, want_reason);
        reason = NULL;
        assert_errno(warden_csr_parse_public_key(der, len, &pub, &reason), err);
        assert_null(pub);
        assert_non_null(reason);
        assert_string_equal(reason, want_reason);
}

static void test_csr_tampered(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = tu_key();
        _cleanup_free_ uint8_t *der = NULL;
        uint8_t *uri, *copy;
        size_t len = 0;
        (void) state;

        assert_ok(warden_csr_create(key, TU_ID, &der, &len));
        copy = malloc(len + 1);
        assert_non_null(copy);

        /* A changed SAN: the signature no longer matches. */
        memcpy(copy, der, len);
        uri = memmem(copy, len, "workload", 8);
        assert_non_null(uri);
        uri[0] = 'W';
        expect_reject(copy, len, EKEYREJECTED, "bad CSR signature");

        /* Damaged signature value (the last byte of the DER is inside ECDSA's s). */
        memcpy(copy, der, len);
        copy[len - 1] ^= 0x5a;
        expect_reject(copy, len, EKEYREJECTED, "bad CSR signature");

        /* A point that is not on the curve. */
        memcpy(copy, der, len);
        uri = memmem(copy, len, "\x03\x42\x00\x04", 4);
        assert_non_null(uri);
        uri[10] ^= 0x01;
        expect_reject(copy, len, EKEYREJECTED, "unsupported CSR key");

        /* Truncated, trailing data, garbage, empty. */
        expect_reject(der, len - 1, EBADMSG, "malformed CSR");
        memcpy(copy, der, len);
        copy[len] = 0;
        expect_reject(copy, len + 1, EBADMSG, "malformed CSR");
        expect_reject((const uint8_t *) "\x30\x03\x02\x01\x00", 5, EBADMSG, "malformed CSR");
        expect_reject(der, 0, EBADMSG, "malformed CSR");
        free(copy);
}

static void test_csr_oversize_and_weak_key(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *weak = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_free_ uint8_t *big = NULL, *der = NULL;
        unsigned char *p;
        int n;
        (void) state;

        big = calloc(1, WARDEN_CSR_MAX_BYTES + 1);
        assert_non_null(big);
        expect_reject(big, WARDEN_CSR_MAX_BYTES + 1, EMSGSIZE, "CSR too large");
        /* At the limit the size is accepted and the content judged. */
        expect_reject(big, WARDEN_CSR_MAX_BYTES, EBADMSG, "malformed CSR");

        /* A well-formed CSR for an RSA-1024 key, made with raw OpenSSL. */
        weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        req = X509_REQ_new();
        assert_int_equal(X509_REQ_set_pubkey(req, weak), 1);
        assert_true(X509_REQ_sign(req, weak, EVP_sha256()) > 0);
        n = i2d_X509_REQ(req, NULL);
        der = malloc((size_t) n);
        p = der;
        assert_int_equal(i2d_X509_REQ(req, &p), n);
        expect_reject(der, (size_t) n, EKEYREJECTED, "unsupported CSR key");
}

/* A P-256 key sent with explicit curve parameters instead of the curve's name (found by
 * fuzz_x509_csr): OpenSSL 3 does not verify a certificate for such a key and Go does not
 * parse one, so the server must refuse the CSR rather than sign an unusable SVID. */
static void test_csr_explicit_ec_params(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = tu_key(), *pub = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_free_ uint8_t *der = NULL, *spki = NULL;
        size_t spki_len = 0;
        unsigned char *p;
        int n;
        (void) state;

        assert_non_null(req);
        assert_int_equal(EVP_PKEY_set_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING,
                                                        OSSL_PKEY_EC_ENCODING_EXPLICIT),
                         1);
        assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
        assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
        n = i2d_X509_REQ(req, NULL);
        assert_true(n > 0);
        der = malloc((size_t) n);
        assert_non_null(der);
        p = der;
        assert_int_equal(i2d_X509_REQ(req, &p), n);
        expect_reject(der, (size_t) n, EKEYREJECTED, "unsupported CSR key");

        /* The same key as SubjectPublicKeyInfo (JWT authorities in a Bundle message). */
        assert_ok(warden_key_public_der(key, &spki, &spki_len));
        assert_errno(warden_key_public_from_der(spki, spki_len, &pub), EOPNOTSUPP);
        assert_null(pub);
}

int x509_csr_tests(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_csr_roundtrip),
                cmocka_unit_test(test_csr_without_id),
                cmocka_unit_test(test_csr_tampered),
                cmocka_unit_test(test_csr_oversize_and_weak_key),
                cmocka_unit_test(test_csr_explicit_ec_params),
        };
        return cmocka_run_group_tests_name("x509_csr", tests, NULL, NULL);
}
