/* SPDX-License-Identifier: Apache-2.0 */
/* base64 codecs, JWK conversion and JWS signatures (common/jose_b64.c, jwk.c, jws.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "jose_b64.h"
#include "jwk.h"
#include "jws.h"
#include "ossl_cleanup.h"
#include "testlib.h"

static void assert_b64url(const char *in, size_t n, const char *expected) {
        _cleanup_free_ char *s = NULL;
        _cleanup_free_ uint8_t *back = NULL;
        size_t len;

        assert_ok(jose_b64url_encode(in, n, &s));
        assert_string_equal(s, expected);
        assert_ok(jose_b64url_decode(s, strlen(s), &back, &len));
        assert_int_equal(len, n);
        assert_memory_equal(back, in, n);
        assert_int_equal(back[len], 0);
}

static void test_b64url_vectors(void **state) {
        (void) state;
        /* RFC 4648 §10 vectors, url alphabet, no padding */
        assert_b64url("", 0, "");
        assert_b64url("f", 1, "Zg");
        assert_b64url("fo", 2, "Zm8");
        assert_b64url("foo", 3, "Zm9v");
        assert_b64url("foob", 4, "Zm9vYg");
        assert_b64url("fooba", 5, "Zm9vYmE");
        assert_b64url("foobar", 6, "Zm9vYmFy");
        /* bytes that map to + and / in the standard alphabet */
        assert_b64url("\xfb\xff\xbf", 3, "-_-_");
}

static void test_b64url_strict(void **state) {
        static const char *const bad[] = {
                "Zg==",         /* padding */
                "Zg=",          /* padding */
                "Z",            /* 4n+1 */
                "Zm9vY",        /* 4n+1 */
                "+/+/",         /* standard alphabet */
                "Zm 9v",        /* whitespace */
                "Zm9v\n", "Zh", /* non-canonical: trailing bits set (Zg is canonical) */
                "Zm9",          /* non-canonical (Zm8 is canonical) */
                "Zm9v!A",
        };
        uint8_t *out = NULL;
        size_t len;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = jose_b64url_decode(bad[i], strlen(bad[i]), &out, &len);
                if (r != -EINVAL)
                        fail_msg("'%s' gave %d", bad[i], r);
        }
        assert_null(out);
}

static void test_b64_std(void **state) {
        static const char *const bad[] = {
                "Zg", "Zg=", "Zh==", "Z===", "====", "Zm9v-_-_", "Zg==Zg==", "Zm9=", " Zg=="};
        _cleanup_free_ char *s = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        uint8_t *o2 = NULL;
        size_t len;

        (void) state;
        assert_ok(jose_b64_encode("\xfb\xff\xbf\x01", 4, &s));
        assert_string_equal(s, "+/+/AQ==");
        assert_ok(jose_b64_decode(s, strlen(s), &out, &len));
        assert_int_equal(len, 4);
        assert_memory_equal(out, "\xfb\xff\xbf\x01", 4);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = jose_b64_decode(bad[i], strlen(bad[i]), &o2, &len);
                if (r != -EINVAL)
                        fail_msg("'%s' gave %d", bad[i], r);
        }
        assert_null(o2);
}

static EVP_PKEY *ec_key(const char *curve) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
        assert_non_null(k);
        return k;
}

static EVP_PKEY *rsa_key(size_t bits) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
        assert_non_null(k);
        return k;
}

static void roundtrip_jwk(EVP_PKEY *key, const char *crv, size_t coord_len) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *back = NULL;
        _cleanup_free_ uint8_t *x = NULL;
        const char *reason = NULL;
        size_t len;

        assert_ok(jwk_from_pkey(key, "jwt-svid", "kid1", NULL, &o));
        assert_string_equal(json_string_value(json_object_get(o, "use")), "jwt-svid");
        assert_string_equal(json_string_value(json_object_get(o, "kid")), "kid1");
        assert_null(json_object_get(o, "d"));
        if (crv) {
                assert_int_equal(json_object_size(o), 6);
                assert_string_equal(json_string_value(json_object_get(o, "kty")), "EC");
                assert_string_equal(json_string_value(json_object_get(o, "crv")), crv);
                const json_t *xs = json_object_get(o, "x");
                assert_ok(jose_b64url_decode(json_string_value(xs), json_string_length(xs), &x,
                                             &len));
                assert_int_equal(len, coord_len);
        } else {
                assert_int_equal(json_object_size(o), 5);
                assert_string_equal(json_string_value(json_object_get(o, "kty")), "RSA");
                assert_string_equal(json_string_value(json_object_get(o, "e")), "AQAB");
        }
        assert_ok(jwk_to_pkey(o, &back, &reason));
        assert_int_equal(EVP_PKEY_eq(key, back), 1);
}

static void test_jwk_roundtrip(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *p256 = ec_key("P-256"), *p384 = ec_key("P-384"),
                                           *p521 = ec_key("P-521"), *rsa = rsa_key(2048);

        (void) state;
        roundtrip_jwk(p256, "P-256", 32);
        roundtrip_jwk(p384, "P-384", 48);
        roundtrip_jwk(p521, "P-521", 66);
        roundtrip_jwk(rsa, NULL, 0);
}

static void assert_jwk_rejected(const char *json, int err, const char *reason_part) {
        _cleanup_(json_decrefp) json_t *o = json_loads(json, 0, NULL);
        EVP_PKEY *k = NULL;
        const char *reason = NULL;

        assert_non_null(o);
        int r = jwk_to_pkey(o, &k, &reason);
        if (r != -err)
                fail_msg("%s gave %d", json, r);
        assert_null(k);
        assert_non_null(reason);
        if (reason_part && !strstr(reason, reason_part))
                fail_msg("%s: reason '%s' lacks '%s'", json, reason, reason_part);
}

static void test_jwk_rejects(void **state) {
        (void) state;
        assert_jwk_rejected("{}", EINVAL, "kty");
        assert_jwk_rejected("{\"kty\":1}", EINVAL, "kty");
        assert_jwk_rejected("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}", EOPNOTSUPP, NULL);
        assert_jwk_rejected("{\"kty\":\"oct\",\"k\":\"AA\"}", EOPNOTSUPP, NULL);
        assert_jwk_rejected("{\"kty\":\"EC\",\"x\":\"AA\",\"y\":\"AA\"}", EINVAL, "crv");
        assert_jwk_rejected("{\"kty\":\"EC\",\"crv\":\"P-192\",\"x\":\"AA\",\"y\":\"AA\"}", EINVAL,
                            "curve");
        assert_jwk_rejected("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}", EINVAL,
                            "length");
        /* 32 zero bytes for x and y: the right length, not on the curve */
        assert_jwk_rejected("{\"kty\":\"EC\",\"crv\":\"P-256\","
                            "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                            "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
                            EINVAL, "curve");
        assert_jwk_rejected("{\"kty\":\"RSA\",\"n\":\"AQAB\"}", EINVAL, NULL);
        assert_jwk_rejected("{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", EINVAL, "short");
        assert_jwk_rejected("{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQ==\"}", EINVAL, "base64url");
}

static void test_jwk_rsa_limits(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *small = rsa_key(1024), *ok = rsa_key(2048);
        _cleanup_(json_decrefp) json_t *o = NULL;
        EVP_PKEY *k = NULL;
        const char *reason = NULL;
        JwkKeyInfo info;

        (void) state;
        assert_errno(jwk_key_info(small, &info, &reason), EINVAL);
        assert_string_equal(reason, "RSA key too short");
        assert_ok(jwk_key_info(ok, &info, NULL));
        assert_int_equal(info.bits, 2048);

        /* A 2048-bit JWK with an even exponent. */
        assert_ok(jwk_from_pkey(ok, NULL, NULL, NULL, &o));
        assert_int_equal(json_object_set_new(o, "e", json_string("AQAA")), 0);
        assert_errno(jwk_to_pkey(o, &k, &reason), EINVAL);
        assert_string_equal(reason, "RSA exponent is not sane");
        /* e longer than 4 bytes */
        assert_int_equal(json_object_set_new(o, "e", json_string("AQAAAAE")), 0);
        assert_errno(jwk_to_pkey(o, &k, &reason), EINVAL);
        assert_null(k);
}

/* A 2048-bit RSA modulus that is not the product of two primes (from fuzz_bundle_json). */
static const char bogus_n[] =
        "p-MaL6X2l-D37YxrNyp0owV_X99e7kmG8avxtESNEwcU12y7scVbnri-I2fonn7b9sXSGZ3Iwta71B1y"
        "GUpdTXNjalSxFmnBRp_V6jhIeUB5jWkfwE8mLUmUGcEqsuIM5HTel_HTjgvMiy6pAboJWT-eXIVEuSma"
        "09d1C7AlXH6Kjfe3pU-XI1jnnZxSwRxoB8kODZwrqufbcLGdsQ74oHjHrgBaE-S1GUY2jW3AeeuJOmcK"
        "4_pDzGUGo32KA2f5FMBJ04kVQog7WGDey26RevqPs7hHKEJPiItbrR-Ks8SECBjKtk1hnobCS8cKiMcB"
        "s2GnX5Ki_mqFq-R0BSqnRQ";

/* {"kty":"RSA","n":<n>,"e":"AQAB"} */
static json_t *rsa_jwk(const BIGNUM *n) {
        _cleanup_free_ uint8_t *bin = malloc((size_t) BN_num_bytes(n));
        _cleanup_free_ char *b64 = NULL;

        assert_non_null(bin);
        assert_ok(jose_b64url_encode(bin, (size_t) BN_bn2bin(n, bin), &b64));
        return json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", b64, "e", "AQAB");
}

static int rsa_parse(const BIGNUM *n, const char **reason) {
        _cleanup_(json_decrefp) json_t *o = rsa_jwk(n);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;

        assert_non_null(o);
        return jwk_to_pkey(o, &k, reason);
}

/* OpenSSL's RSA public check accepted bogus_n about 997 times in 1000 and refused it
 * otherwise (so this loop failed 19 times in 20): the same key must get the same answer
 * every time. Even moduli, small factors and primes stay refused. */
static void test_jwk_rsa_modulus(void **state) {
        _cleanup_(BN_freep) BIGNUM *n = NULL, *m = BN_new();
        _cleanup_free_ uint8_t *bin = NULL;
        const char *reason = NULL;
        size_t len = 0;

        (void) state;
        assert_ok(jose_b64url_decode(bogus_n, strlen(bogus_n), &bin, &len));
        n = BN_bin2bn(bin, (int) len, NULL);
        assert_non_null(n);
        assert_non_null(m);
        for (int i = 0; i < 1000; i++)
                assert_ok(rsa_parse(n, NULL));

        assert_int_equal(BN_sub_word(n, 1), 1); /* even */
        assert_errno(rsa_parse(n, &reason), EINVAL);
        assert_string_equal(reason, "RSA public key is not valid");
        /* odd, a multiple of 751 */
        assert_non_null(BN_copy(m, n));
        assert_int_equal(BN_rshift1(m, m), 1);
        assert_int_equal(BN_mul_word(m, 751), 1);
        if (!BN_is_odd(m))
                assert_int_equal(BN_add_word(m, 751), 1);
        assert_errno(rsa_parse(m, &reason), EINVAL);
        assert_non_null(BN_get_rfc3526_prime_2048(m)); /* a prime */
        assert_errno(rsa_parse(m, &reason), EINVAL);
}

static void test_public_copy(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = ec_key("P-256"), *pub = NULL;
        _cleanup_(BN_freep) BIGNUM *priv = NULL;

        (void) state;
        assert_ok(jwk_public_copy(key, &pub));
        assert_int_equal(EVP_PKEY_eq(key, pub), 1);
        assert_int_equal(EVP_PKEY_get_bn_param(pub, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 0);
        assert_null(priv);
}

static void sign_verify(EVP_PKEY *key, JwsAlg alg, size_t expected_len) {
        _cleanup_free_ uint8_t *sig = NULL;
        size_t len;

        assert_ok(jws_sign(alg, key, "hello", 5, &sig, &len));
        if (expected_len)
                assert_int_equal(len, expected_len);
        assert_ok(jws_verify(alg, key, "hello", 5, sig, len));
        assert_errno(jws_verify(alg, key, "hellO", 5, sig, len), EKEYREJECTED);
        sig[len / 2] ^= 1;
        assert_errno(jws_verify(alg, key, "hello", 5, sig, len), EKEYREJECTED);
        assert_errno(jws_verify(alg, key, "hello", 5, sig, len - 1), EKEYREJECTED);
}

static void test_jws_algs(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *p256 = ec_key("P-256"), *p384 = ec_key("P-384"),
                                           *p521 = ec_key("P-521"), *rsa = rsa_key(2048);
        JwsAlg a;

        (void) state;
        sign_verify(p256, JWS_ES256, 64);
        sign_verify(p384, JWS_ES384, 96);
        sign_verify(p521, JWS_ES512, 132);
        sign_verify(rsa, JWS_RS256, 256);
        sign_verify(rsa, JWS_RS384, 256);
        sign_verify(rsa, JWS_RS512, 256);
        sign_verify(rsa, JWS_PS256, 256);
        sign_verify(rsa, JWS_PS384, 256);
        sign_verify(rsa, JWS_PS512, 256);

        assert_errno(jws_alg_check_key(JWS_ES256, p384), EKEYREJECTED);
        assert_errno(jws_alg_check_key(JWS_RS256, p256), EKEYREJECTED);
        assert_errno(jws_alg_check_key(JWS_ES256, rsa), EKEYREJECTED);
        assert_ok(jws_alg_check_key(JWS_PS512, rsa));

        assert_ok(jws_alg_for_key(p256, &a));
        assert_int_equal(a, JWS_ES256);
        assert_ok(jws_alg_for_key(p384, &a));
        assert_int_equal(a, JWS_ES384);
        assert_ok(jws_alg_for_key(p521, &a));
        assert_int_equal(a, JWS_ES512);
        assert_ok(jws_alg_for_key(rsa, &a));
        assert_int_equal(a, JWS_RS256);

        static const char *const rejected[] = {"none",  "HS256", "HS512",  "EdDSA",
                                               "es256", "",      "ES256 ", "RS1"};
        for (size_t i = 0; i < ELEMENTSOF(rejected); i++)
                assert_int_equal(jws_alg_from_string(rejected[i]), _JWS_ALG_INVALID);
        assert_int_equal(jws_alg_from_string(NULL), _JWS_ALG_INVALID);
        for (int i = 0; i < _JWS_ALG_MAX; i++)
                assert_int_equal(jws_alg_from_string(jws_alg_to_string((JwsAlg) i)), i);
}

/* An ES256 signature checked with an independent DER ECDSA verification: r||s layout. */
static void test_jws_ecdsa_layout(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = ec_key("P-256");
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        _cleanup_(ECDSA_SIG_freep) ECDSA_SIG *es = ECDSA_SIG_new();
        _cleanup_free_ uint8_t *sig = NULL;
        unsigned char *der = NULL;
        size_t len;
        int n;

        (void) state;
        assert_ok(jws_sign(JWS_ES256, key, "abc", 3, &sig, &len));
        assert_int_equal(len, 64);
        assert_int_equal(
                ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)), 1);
        n = i2d_ECDSA_SIG(es, &der);
        assert_true(n > 0);
        assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
        assert_int_equal(EVP_DigestVerify(ctx, der, (size_t) n, (const unsigned char *) "abc", 3),
                         1);
        OPENSSL_free(der);
}

/* PS256 signed by plain EVP with the salt length RFC 7518 requires (= digest length)
 * verifies; a maximum-length salt does not. */
static void pss_sign(EVP_PKEY *key, int saltlen, uint8_t *sig, size_t *len) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;

        assert_int_equal(EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, key), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
        assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, saltlen), 1);
        assert_int_equal(EVP_DigestSign(ctx, sig, len, (const unsigned char *) "abc", 3), 1);
}

static void test_jws_pss_salt(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = rsa_key(2048);
        uint8_t sig[256];
        size_t len = sizeof(sig);

        (void) state;
        pss_sign(key, 32, sig, &len);
        assert_ok(jws_verify(JWS_PS256, key, "abc", 3, sig, len));
        len = sizeof(sig);
        pss_sign(key, RSA_PSS_SALTLEN_MAX, sig, &len);
        assert_errno(jws_verify(JWS_PS256, key, "abc", 3, sig, len), EKEYREJECTED);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_b64url_vectors),  cmocka_unit_test(test_b64url_strict),
                cmocka_unit_test(test_b64_std),         cmocka_unit_test(test_jwk_roundtrip),
                cmocka_unit_test(test_jwk_rejects),     cmocka_unit_test(test_jwk_rsa_limits),
                cmocka_unit_test(test_jwk_rsa_modulus), cmocka_unit_test(test_public_copy),
                cmocka_unit_test(test_jws_algs),        cmocka_unit_test(test_jws_ecdsa_layout),
                cmocka_unit_test(test_jws_pss_salt),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
