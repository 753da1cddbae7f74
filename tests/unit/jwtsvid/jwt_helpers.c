/* SPDX-License-Identifier: Apache-2.0 */
#define _GNU_SOURCE
#include "jwt_helpers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>

#include "jose_b64.h"
#include "ossl_cleanup.h"
#include "testlib.h"

Fixture fx;

static EVP_PKEY *keygen(const char *type, const char *curve) {
        EVP_PKEY *k = curve ? EVP_PKEY_Q_keygen(NULL, NULL, type, curve)
                            : EVP_PKEY_Q_keygen(NULL, NULL, type, (size_t) 2048);
        assert_non_null(k);
        return k;
}

int fixture_setup(void **state) {
        (void) state;
        fx.ec256 = keygen("EC", "P-256");
        fx.ec384 = keygen("EC", "P-384");
        fx.rsa = keygen("RSA", NULL);
        fx.other256 = keygen("EC", "P-256");
        assert_ok(warden_bundle_new("example.org", &fx.example));
        assert_ok(warden_bundle_add_jwt_authority(fx.example, "ec256", fx.ec256, 0));
        assert_ok(warden_bundle_add_jwt_authority(fx.example, "ec384", fx.ec384, 0));
        assert_ok(warden_bundle_add_jwt_authority(fx.example, "rsa", fx.rsa, 0));
        assert_ok(warden_bundle_new("other.org", &fx.other));
        assert_ok(warden_bundle_add_jwt_authority(fx.other, "ec256", fx.other256, 0));
        fx.bundles[0] = fx.other;
        fx.bundles[1] = fx.example;
        return 0;
}

int fixture_teardown(void **state) {
        (void) state;
        EVP_PKEY_free(fx.ec256);
        EVP_PKEY_free(fx.ec384);
        EVP_PKEY_free(fx.rsa);
        EVP_PKEY_free(fx.other256);
        warden_bundle_unref(fx.example);
        warden_bundle_unref(fx.other);
        return 0;
}

char *mint(EVP_PKEY *key,
           const char *kid,
           const char *alg,
           const char *sub,
           const char *aud,
           int64_t now,
           int64_t ttl) {
        const char *auds[] = {aud};
        WardenJwtMintParams p = {
                .key = key,
                .kid = kid,
                .alg = alg,
                .spiffe_id = sub,
                .audiences = auds,
                .n_audiences = 1,
                .ttl = ttl,
                .now = now,
        };
        char *token = NULL;

        assert_ok(warden_jwtsvid_mint(&p, &token));
        assert_non_null(token);
        return token;
}

/* Independent JOSE signature: EVP_DigestSign, then DER → r||s for EC. */
static char *sign_b64(EVP_PKEY *key, const char *input) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char der[1024], raw[132];
        size_t len = sizeof(der), coord;
        const unsigned char *p = der;
        const EVP_MD *md = EVP_sha256();
        char *out = NULL;

        if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC && EVP_PKEY_get_bits(key) == 384)
                md = EVP_sha384();
        assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, key), 1);
        assert_int_equal(
                EVP_DigestSign(ctx, der, &len, (const unsigned char *) input, strlen(input)), 1);
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) {
                assert_ok(jose_b64url_encode(der, len, &out));
                return out;
        }
        coord = (size_t) (EVP_PKEY_get_bits(key) + 7) / 8;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long) len);
        assert_non_null(sig);
        assert_true(BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, (int) coord) > 0);
        assert_true(BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + coord, (int) coord) > 0);
        ECDSA_SIG_free(sig);
        assert_ok(jose_b64url_encode(raw, 2 * coord, &out));
        return out;
}

char *craft(const char *header, const char *claims, EVP_PKEY *sign_key) {
        _cleanup_free_ char *h = NULL, *c = NULL, *s = NULL, *input = NULL;
        char *token;

        assert_ok(jose_b64url_encode(header, strlen(header), &h));
        assert_ok(jose_b64url_encode(claims, strlen(claims), &c));
        assert_true(asprintf(&input, "%s.%s", h, c) > 0);
        s = sign_key ? sign_b64(sign_key, input) : strdup("");
        assert_non_null(s);
        assert_true(asprintf(&token, "%s.%s", input, s) > 0);
        return token;
}

char *claims_json(const char *sub, const char *aud_json, const char *exp_json) {
        char *s;

        assert_true(asprintf(&s, "{\"sub\":\"%s\",\"aud\":%s,\"exp\":%s,\"iat\":%lld}", sub,
                             aud_json, exp_json, (long long) T0) > 0);
        return s;
}

int check(const char *token, WardenJwtError *ret_err) {
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *c = NULL;
        WardenJwtError e = WARDEN_JWT_OK;
        int r;

        r = warden_jwtsvid_validate(token, "aud1", fx.bundles, 2, &(WardenJwtTimeRules){.now = T0},
                                    &c, &e);
        if (r >= 0)
                assert_non_null(c);
        else
                assert_null(c);
        *ret_err = e;
        return r;
}

void assert_rejected(const char *token, WardenJwtError e, int err) {
        WardenJwtError got = WARDEN_JWT_OK;
        int r = check(token, &got);

        if (r != -err || got != e)
                fail_msg("expected %s (%d, -%d), got %s (%d, %d) for %.200s",
                         warden_jwt_error_to_string(e), e, err, warden_jwt_error_to_string(got),
                         got, r, token);
}
