/* SPDX-License-Identifier: Apache-2.0 */
/* SPIFFE bundle JSON and plain JWKS: writers, strict parsers, limits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>

#include <warden/bundle.h>

#include "bundle_tests.h"
#include "certgen.h"
#include "jose_b64.h"
#include "ossl_cleanup.h"
#include "testlib.h"

static struct {
        EVP_PKEY *ec, *ec2, *ec384, *rsa, *rsa_small;
        X509 *ec_ca, *ec2_ca, *rsa_ca, *leaf;
} fx;

static void fixtures(void) {
        if (fx.ec)
                return;
        fx.ec = test_key("P-256");
        fx.ec2 = test_key("P-256");
        fx.ec384 = test_key("P-384");
        fx.rsa = test_key("RSA2048");
        fx.rsa_small = test_key("RSA1024");
        fx.ec_ca = test_cert(fx.ec, "ec ca", true);
        fx.ec2_ca = test_cert(fx.ec2, "ec2 ca", true);
        fx.rsa_ca = test_cert(fx.rsa, "rsa ca", true);
        fx.leaf = test_cert(fx.ec2, "leaf", false);
}

int bundle_json_teardown(void **state) {
        (void) state;
        EVP_PKEY_free(fx.ec);
        EVP_PKEY_free(fx.ec2);
        EVP_PKEY_free(fx.ec384);
        EVP_PKEY_free(fx.rsa);
        EVP_PKEY_free(fx.rsa_small);
        X509_free(fx.ec_ca);
        X509_free(fx.ec2_ca);
        X509_free(fx.rsa_ca);
        X509_free(fx.leaf);
        return 0;
}

/* x509: EC CA, RSA CA; jwt: k1 (P-384), k2 (RSA); sequence 42, hint 300. */
static WardenBundle *sample(void) {
        WardenBundle *b;

        fixtures();
        assert_ok(warden_bundle_new("example.org", &b));
        assert_int_equal(warden_bundle_add_x509_authority(b, fx.ec_ca), 1);
        assert_int_equal(warden_bundle_add_x509_authority(b, fx.rsa_ca), 1);
        assert_ok(warden_bundle_add_jwt_authority(b, "k1", fx.ec384, 0));
        assert_ok(warden_bundle_add_jwt_authority(b, "k2", fx.rsa, 0));
        warden_bundle_set_sequence(b, 42);
        assert_ok(warden_bundle_set_refresh_hint(b, 300));
        return b;
}

static json_t *sample_doc(void) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = sample();
        _cleanup_free_ char *s = NULL;
        json_t *doc;

        assert_ok(warden_bundle_to_spiffe_json(b, &s));
        doc = json_loads(s, 0, NULL);
        assert_non_null(doc);
        return doc;
}

static json_t *key_at(json_t *doc, size_t i) {
        json_t *k = json_array_get(json_object_get(doc, "keys"), i);
        assert_non_null(k);
        return k;
}

static void check_keys(const json_t *o, const char *const *names, size_t n) {
        const char *name;
        json_t *v;
        size_t i = 0;

        assert_int_equal(json_object_size(o), n);
        json_object_foreach((json_t *) o, name, v) {
                assert_string_equal(name, names[i]);
                assert_true(json_is_string(v) || json_is_array(v));
                i++;
        }
}

void test_spiffe_roundtrip(void **state) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = sample(), *back = NULL, *jw = NULL;
        _cleanup_free_ char *s = NULL, *s2 = NULL;
        const char *reason = NULL;

        (void) state;
        assert_ok(warden_bundle_to_spiffe_json(b, &s));
        assert_ok(warden_bundle_from_spiffe_json("example.org", s, strlen(s), &back, &reason));
        assert_true(warden_bundle_equal(b, back));
        assert_ok(warden_bundle_to_spiffe_json(back, &s2));
        assert_string_equal(s, s2);

        /* the JWKS parser reads the JWT keys of a SPIFFE bundle and skips x509-svid ones */
        assert_ok(warden_jwks_parse("example.org", s, strlen(s), &jw, &reason));
        assert_int_equal(warden_bundle_n_x509_authorities(jw), 0);
        assert_int_equal(warden_bundle_n_jwt_authorities(jw), 2);
        assert_int_equal(EVP_PKEY_eq(warden_bundle_find_jwt_key(jw, "k2"), fx.rsa), 1);
}

void test_spiffe_shape(void **state) {
        _cleanup_(json_decrefp) json_t *doc = sample_doc();
        static const char *const x509_ec[] = {"use", "kty", "crv", "x", "y", "x5c"};
        static const char *const x509_rsa[] = {"use", "kty", "n", "e", "x5c"};
        static const char *const jwt_ec[] = {"use", "kty", "kid", "crv", "x", "y"};
        static const char *const jwt_rsa[] = {"use", "kty", "kid", "n", "e"};
        _cleanup_free_ uint8_t *der = NULL;
        _cleanup_free_ unsigned char *expected = NULL;
        size_t len;
        int n;

        (void) state;
        assert_int_equal(json_array_size(json_object_get(doc, "keys")), 4);
        assert_int_equal(json_integer_value(json_object_get(doc, "spiffe_sequence")), 42);
        assert_int_equal(json_integer_value(json_object_get(doc, "spiffe_refresh_hint")), 300);
        assert_int_equal(json_object_size(doc), 3);

        check_keys(key_at(doc, 0), x509_ec, ELEMENTSOF(x509_ec));
        check_keys(key_at(doc, 1), x509_rsa, ELEMENTSOF(x509_rsa));
        check_keys(key_at(doc, 2), jwt_ec, ELEMENTSOF(jwt_ec));
        check_keys(key_at(doc, 3), jwt_rsa, ELEMENTSOF(jwt_rsa));
        assert_string_equal(json_string_value(json_object_get(key_at(doc, 0), "use")), "x509-svid");
        assert_string_equal(json_string_value(json_object_get(key_at(doc, 0), "kty")), "EC");
        assert_string_equal(json_string_value(json_object_get(key_at(doc, 0), "crv")), "P-256");
        assert_string_equal(json_string_value(json_object_get(key_at(doc, 2), "use")), "jwt-svid");
        assert_string_equal(json_string_value(json_object_get(key_at(doc, 2), "crv")), "P-384");
        assert_string_equal(json_string_value(json_object_get(key_at(doc, 3), "kid")), "k2");
        assert_string_equal(json_string_value(json_object_get(key_at(doc, 3), "e")), "AQAB");

        /* x5c: exactly one standard-base64 DER certificate */
        json_t *x5c = json_object_get(key_at(doc, 1), "x5c");
        assert_int_equal(json_array_size(x5c), 1);
        const char *b64 = json_string_value(json_array_get(x5c, 0));
        assert_ok(jose_b64_decode(b64, strlen(b64), &der, &len));
        n = i2d_X509(fx.rsa_ca, &expected);
        assert_int_equal(len, (size_t) n);
        assert_memory_equal(der, expected, len);
}

void test_spiffe_hint_and_sequence(void **state) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL, *back = NULL;
        _cleanup_free_ char *s = NULL, *s2 = NULL, *s3 = NULL;

        (void) state;
        assert_ok(warden_bundle_new("example.org", &b));
        assert_ok(warden_bundle_to_spiffe_json(b, &s));
        assert_string_equal(s, "{\"keys\":[],\"spiffe_sequence\":0}");

        warden_bundle_set_sequence(b, INT64_MAX);
        assert_ok(warden_bundle_to_spiffe_json(b, &s2));
        assert_ok(warden_bundle_from_spiffe_json("example.org", s2, strlen(s2), &back, NULL));
        assert_true(warden_bundle_sequence(back) == INT64_MAX);
        assert_true(warden_bundle_equal(b, back));

        warden_bundle_set_sequence(b, (uint64_t) INT64_MAX + 1);
        assert_errno(warden_bundle_to_spiffe_json(b, &s3), ERANGE);
        assert_null(s3);
}

void test_jwks_shape(void **state) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = sample(), *x = NULL, *empty = NULL;
        _cleanup_free_ char *s = NULL, *s_x = NULL, *s_empty = NULL;
        _cleanup_(json_decrefp) json_t *doc = NULL;
        static const char *const ec[] = {"kty", "kid", "crv", "x", "y"};
        static const char *const rsa[] = {"kty", "kid", "n", "e"};

        (void) state;
        assert_ok(warden_bundle_to_jwks(b, &s));
        doc = json_loads(s, 0, NULL);
        assert_non_null(doc);
        assert_int_equal(json_object_size(doc), 1);
        assert_int_equal(json_array_size(json_object_get(doc, "keys")), 2);
        check_keys(key_at(doc, 0), ec, ELEMENTSOF(ec));
        check_keys(key_at(doc, 1), rsa, ELEMENTSOF(rsa));
        assert_string_equal(json_string_value(json_object_get(key_at(doc, 0), "kid")), "k1");

        assert_ok(warden_bundle_new("example.org", &empty));
        assert_ok(warden_bundle_to_jwks(empty, &s_empty));
        assert_string_equal(s_empty, "{\"keys\":[]}");
        /* X.509 authorities never appear in the JWKS */
        assert_ok(warden_bundle_new("example.org", &x));
        assert_int_equal(warden_bundle_add_x509_authority(x, fx.ec_ca), 1);
        assert_ok(warden_bundle_to_jwks(x, &s_x));
        assert_string_equal(s_x, "{\"keys\":[]}");
}

void test_jwks_parse(void **state) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = sample(), *back = NULL, *b2 = NULL;
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_free_ char *s = NULL, *s2 = NULL;
        const char *reason = NULL;

        (void) state;
        assert_ok(warden_bundle_to_jwks(b, &s));
        assert_ok(warden_jwks_parse("spiffe://example.org", s, strlen(s), &back, &reason));
        assert_string_equal(warden_bundle_trust_domain(back), "example.org");
        assert_int_equal(warden_bundle_n_jwt_authorities(back), 2);
        assert_int_equal(warden_bundle_n_x509_authorities(back), 0);
        assert_int_equal(EVP_PKEY_eq(warden_bundle_find_jwt_key(back, "k1"), fx.ec384), 1);
        assert_int_equal(EVP_PKEY_eq(warden_bundle_find_jwt_key(back, "k2"), fx.rsa), 1);

        /* any use is fine in a plain JWKS */
        doc = json_loads(s, 0, NULL);
        assert_int_equal(json_object_set_new(key_at(doc, 0), "use", json_string("sig")), 0);
        assert_int_equal(json_object_set_new(key_at(doc, 1), "use", json_string("jwt-svid")), 0);
        s2 = json_dumps(doc, 0);
        assert_ok(warden_jwks_parse("example.org", s2, strlen(s2), &b2, &reason));
        assert_int_equal(warden_bundle_n_jwt_authorities(b2), 2);
}

/* Serialises doc (consumed) and expects the parser to reject it with -EINVAL. */
static void expect_reject(bool spiffe, json_t *doc, const char *reason_part) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL;
        _cleanup_free_ char *s = json_dumps(doc, 0);
        const char *reason = NULL;
        int r;

        json_decref(doc);
        assert_non_null(s);
        r = spiffe ? warden_bundle_from_spiffe_json("example.org", s, strlen(s), &b, &reason)
                   : warden_jwks_parse("example.org", s, strlen(s), &b, &reason);
        if (r != -EINVAL)
                fail_msg("accepted (%d): %s", r, s);
        assert_null(b);
        assert_non_null(reason);
        if (!strstr(reason, reason_part))
                fail_msg("reason '%s' lacks '%s' for %s", reason, reason_part, s);
}

static void expect_reject_raw(bool spiffe, const char *s, const char *td, const char *reason_part) {
        WardenBundle *b = NULL;
        const char *reason = NULL;
        int r;

        r = spiffe ? warden_bundle_from_spiffe_json(td, s, strlen(s), &b, &reason)
                   : warden_jwks_parse(td, s, strlen(s), &b, &reason);
        assert_int_equal(r, -EINVAL);
        assert_null(b);
        assert_non_null(reason);
        if (!strstr(reason, reason_part))
                fail_msg("reason '%s' lacks '%s' for %s", reason, reason_part, s);
}

static void set(json_t *o, const char *name, json_t *v) {
        assert_int_equal(json_object_set_new(o, name, v), 0);
}

static json_t *b64_json(const void *data, size_t len, bool url) {
        _cleanup_free_ char *s = NULL;

        assert_ok(url ? jose_b64url_encode(data, len, &s) : jose_b64_encode(data, len, &s));
        return json_string(s);
}

static json_t *cert_b64(X509 *cert) {
        unsigned char *der = NULL;
        int n = i2d_X509(cert, &der);
        json_t *s;

        assert_true(n > 0);
        s = b64_json(der, (size_t) n, false);
        OPENSSL_free(der);
        return s;
}

/* A jwt-svid JWK for an RSA key of any size (bypassing the writer's checks). */
static json_t *raw_rsa_jwk(EVP_PKEY *key, const char *kid) {
        BIGNUM *n = NULL, *e = NULL;
        unsigned char buf[1024];
        json_t *o = json_object();

        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e), 1);
        set(o, "use", json_string("jwt-svid"));
        set(o, "kty", json_string("RSA"));
        set(o, "kid", json_string(kid));
        set(o, "n", b64_json(buf, (size_t) BN_bn2bin(n, buf), true));
        set(o, "e", b64_json(buf, (size_t) BN_bn2bin(e, buf), true));
        BN_free(n);
        BN_free(e);
        return o;
}

/* Flips the last bit of the base64url member `name` of a JWK. */
static void flip_b64(json_t *k, const char *name) {
        _cleanup_free_ uint8_t *raw = NULL;
        const char *s = json_string_value(json_object_get(k, name));
        size_t len;

        assert_ok(jose_b64url_decode(s, strlen(s), &raw, &len));
        raw[len - 1] ^= 1;
        set(k, name, b64_json(raw, len, true));
}

void test_spiffe_malformed(void **state) {
        json_t *d;
        char long_kid[WARDEN_JWT_KID_MAX + 2];

        (void) state;
        expect_reject_raw(true, "{\"keys\":", "example.org", "not valid JSON");
        expect_reject_raw(true, "{\"keys\":[],\"keys\":[]}", "example.org", "not valid JSON");
        expect_reject_raw(true, "[]", "example.org", "not a JSON object");
        expect_reject_raw(true, "{}", "example.org", "keys missing");
        expect_reject_raw(true, "{\"keys\":{}}", "example.org", "not an array");
        expect_reject_raw(true, "{\"keys\":[1]}", "example.org", "not an object");
        expect_reject_raw(true, "{\"keys\":[]}", "Bad_TD!", "trust domain");

        d = sample_doc(), json_object_del(key_at(d, 2), "kty");
        expect_reject(true, d, "kty");
        d = sample_doc(), json_object_del(key_at(d, 2), "kid");
        expect_reject(true, d, "without a kid");
        d = sample_doc(), set(key_at(d, 2), "kid", json_string(""));
        expect_reject(true, d, "without a kid");
        memset(long_kid, 'k', sizeof(long_kid) - 1);
        long_kid[sizeof(long_kid) - 1] = '\0';
        d = sample_doc(), set(key_at(d, 2), "kid", json_string(long_kid));
        expect_reject(true, d, "kid too long");
        d = sample_doc(), set(key_at(d, 3), "kid", json_string("k1"));
        expect_reject(true, d, "duplicate kid");
}

void test_spiffe_malformed_keys(void **state) {
        json_t *d;

        (void) state;
        d = sample_doc(),
        json_array_append_new(json_object_get(key_at(d, 0), "x5c"), cert_b64(fx.ec_ca));
        expect_reject(true, d, "exactly one x5c");
        d = sample_doc(), set(key_at(d, 0), "x5c", json_array());
        expect_reject(true, d, "exactly one x5c");
        d = sample_doc(), json_object_del(key_at(d, 0), "x5c");
        expect_reject(true, d, "exactly one x5c");
        d = sample_doc(),
        json_array_set_new(json_object_get(key_at(d, 0), "x5c"), 0, json_string("not base64!"));
        expect_reject(true, d, "not valid base64");
        d = sample_doc(),
        json_array_set_new(json_object_get(key_at(d, 0), "x5c"), 0, json_string("aGVsbG8="));
        expect_reject(true, d, "not a DER certificate");
        d = sample_doc(),
        json_array_set_new(json_object_get(key_at(d, 0), "x5c"), 0, cert_b64(fx.leaf));
        expect_reject(true, d, "not a CA");
        d = sample_doc(),
        json_array_set_new(json_object_get(key_at(d, 0), "x5c"), 0, cert_b64(fx.ec2_ca));
        expect_reject(true, d, "does not match");
        d = sample_doc(), set(key_at(d, 0), "kid", json_string("x"));
        expect_reject(true, d, "must not have a kid");

        d = sample_doc(), flip_b64(key_at(d, 2), "y");
        expect_reject(true, d, "not on the curve");
        d = sample_doc(), flip_b64(key_at(d, 0), "x");
        expect_reject(true, d, "not on the curve");
        d = sample_doc(), set(key_at(d, 2), "x", json_string("AAAA"));
        expect_reject(true, d, "wrong length");
        d = sample_doc(), set(key_at(d, 2), "crv", json_string("P-192"));
        expect_reject(true, d, "unsupported EC curve");
        d = sample_doc(),
        json_array_set_new(json_object_get(d, "keys"), 3, raw_rsa_jwk(fx.rsa_small, "k2"));
        expect_reject(true, d, "RSA key too short");

        d = sample_doc(), set(d, "spiffe_sequence", json_integer(-1));
        expect_reject(true, d, "spiffe_sequence");
        d = sample_doc(), set(d, "spiffe_sequence", json_real(1.5));
        expect_reject(true, d, "spiffe_sequence");
        d = sample_doc(), set(d, "spiffe_sequence", json_string("3"));
        expect_reject(true, d, "spiffe_sequence");
        d = sample_doc(), set(d, "spiffe_refresh_hint", json_integer(-5));
        expect_reject(true, d, "spiffe_refresh_hint");
}

void test_jwks_malformed(void **state) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = sample();
        _cleanup_free_ char *s = NULL;
        json_t *d;

        (void) state;
        assert_ok(warden_bundle_to_jwks(b, &s));
        expect_reject_raw(false, "not json", "example.org", "not valid JSON");
        expect_reject_raw(false, "{\"keys\":\"x\"}", "example.org", "not an array");
        expect_reject_raw(false, "{\"keys\":[{\"kid\":\"a\"}]}", "example.org", "kty");

        d = json_loads(s, 0, NULL), json_object_del(key_at(d, 0), "kid");
        expect_reject(false, d, "without a kid");
        d = json_loads(s, 0, NULL), set(key_at(d, 1), "kid", json_string("k1"));
        expect_reject(false, d, "duplicate kid");
        d = json_loads(s, 0, NULL), flip_b64(key_at(d, 0), "y");
        expect_reject(false, d, "not on the curve");
        d = json_loads(s, 0, NULL),
        json_array_set_new(json_object_get(d, "keys"), 1, raw_rsa_jwk(fx.rsa_small, "k2"));
        expect_reject(false, d, "RSA key too short");
}

void test_ignored_keys(void **state) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *b = NULL, *j = NULL;
        _cleanup_(json_decrefp) json_t *doc = sample_doc();
        _cleanup_free_ char *s = NULL;
        json_t *keys = json_object_get(doc, "keys"), *k;
        const char *reason = NULL;

        (void) state;
        /* keys[2] (k1) stays; others become ignorable variants */
        k = key_at(doc, 3), json_object_del(k, "use"); /* missing use */
        k = json_deep_copy(key_at(doc, 2)), set(k, "use", json_string("wit-svid")),
        set(k, "kid", json_string("wit")), json_array_append_new(keys, k);
        k = json_deep_copy(key_at(doc, 2)), set(k, "use", json_string("enc")),
        set(k, "kid", json_string("enc")), json_array_append_new(keys, k);
        k = json_deep_copy(key_at(doc, 2)), set(k, "use", json_integer(5)),
        set(k, "kid", json_string("int")), json_array_append_new(keys, k);
        k = json_pack("{s:s, s:s, s:s, s:s, s:s}", "use", "jwt-svid", "kty", "OKP", "kid", "ed",
                      "crv", "Ed25519", "x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        json_array_append_new(keys, k);
        k = json_pack("{s:s, s:s, s:s}", "use", "x509-svid", "kty", "oct", "k", "AAAA");
        json_array_append_new(keys, k);
        json_array_remove(keys, 1);
        json_array_remove(keys, 0);

        s = json_dumps(doc, 0);
        assert_ok(warden_bundle_from_spiffe_json("example.org", s, strlen(s), &b, &reason));
        assert_int_equal(warden_bundle_n_x509_authorities(b), 0);
        assert_int_equal(warden_bundle_n_jwt_authorities(b), 1);
        assert_non_null(warden_bundle_find_jwt_key(b, "k1"));

        /* The plain JWKS parser takes every key with a kid whatever its use (k2 without
         * use, wit, enc, int) and still skips the unknown kty entries. */
        assert_ok(warden_jwks_parse("example.org", s, strlen(s), &j, &reason));
        assert_int_equal(warden_bundle_n_jwt_authorities(j), 5);
        assert_null(warden_bundle_find_jwt_key(j, "ed"));
}

static char *keys_doc(size_t n_keys, size_t pad_to) {
        size_t cap = 64 + n_keys * 16 + pad_to, len;
        char *s = malloc(cap);

        assert_non_null(s);
        strcpy(s, "{\"keys\":[");
        len = strlen(s);
        for (size_t i = 0; i < n_keys; i++)
                len += (size_t) sprintf(s + len, "%s{\"kty\":\"oct\"}", i ? "," : "");
        len += (size_t) sprintf(s + len, "]}");
        while (len < pad_to)
                s[len++] = ' ';
        s[len] = '\0';
        return s;
}

static void expect_size(const char *doc, int expected) {
        _cleanup_(warden_bundle_unrefp) WardenBundle *a = NULL, *b = NULL;
        const char *reason = NULL;

        assert_int_equal(
                warden_bundle_from_spiffe_json("example.org", doc, strlen(doc), &a, &reason),
                expected);
        assert_int_equal(warden_jwks_parse("example.org", doc, strlen(doc), &b, &reason), expected);
        if (expected < 0)
                assert_non_null(reason);
}

void test_size_caps(void **state) {
        _cleanup_free_ char *at_max = keys_doc(1, WARDEN_BUNDLE_JSON_MAX),
                            *over = keys_doc(1, WARDEN_BUNDLE_JSON_MAX + 1),
                            *keys_max = keys_doc(WARDEN_BUNDLE_KEYS_MAX, 0),
                            *keys_over = keys_doc(WARDEN_BUNDLE_KEYS_MAX + 1, 0);

        (void) state;
        assert_int_equal(strlen(at_max), WARDEN_BUNDLE_JSON_MAX);
        expect_size(at_max, 0);
        expect_size(over, -E2BIG);
        expect_size(keys_max, 0);
        expect_size(keys_over, -E2BIG);
}
