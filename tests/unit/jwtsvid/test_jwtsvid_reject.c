/* SPDX-License-Identifier: Apache-2.0 */
/* JWT-SVID validation failures, each with its own error code. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>

#include "cleanup.h"
#include "jose_b64.h"
#include "jwt_helpers.h"
#include "testlib.h"

#define SUB "spiffe://example.org/workload/a"
#define H_ES256 "{\"alg\":\"ES256\",\"kid\":\"ec256\",\"typ\":\"JWT\"}"
#define EXP_OK "1700000300"

/* A valid claims set for SUB/aud1 expiring at T0 + 300. */
static char *good_claims(void) {
        return claims_json(SUB, "[\"aud1\"]", EXP_OK);
}

/* Accepts when signed properly: proves the crafted variants differ only where intended. */
static void assert_accepted(const char *token) {
        WardenJwtError e = WARDEN_JWT_OK;
        int r = check(token, &e);

        if (r < 0)
                fail_msg("rejected (%s) %.200s", warden_jwt_error_to_string(e), token);
}

void test_tamper_signature(void **state) {
        _cleanup_free_ char *token = mint(fx.ec256, "ec256", NULL, SUB, "aud1", T0, 300);
        _cleanup_free_ char *rsa = mint(fx.rsa, "rsa", "PS256", SUB, "aud1", T0, 300);
        _cleanup_free_ uint8_t *sig = NULL;
        _cleanup_free_ char *s64 = NULL, *bad = NULL;
        char *dot = strrchr(token, '.');
        size_t len;

        (void) state;
        assert_accepted(token);
        assert_accepted(rsa);
        assert_ok(jose_b64url_decode(dot + 1, strlen(dot + 1), &sig, &len));
        assert_int_equal(len, 64);
        sig[10] ^= 0x01;
        assert_ok(jose_b64url_encode(sig, len, &s64));
        *dot = '\0';
        assert_true(asprintf(&bad, "%s.%s", token, s64) > 0);
        assert_rejected(bad, WARDEN_JWT_ERR_SIGNATURE, EKEYREJECTED);

        /* the same bits but one byte short */
        s64[strlen(s64) - 2] = '\0';
        free(bad);
        assert_true(asprintf(&bad, "%s.%s", token, s64) > 0);
        assert_rejected(bad, WARDEN_JWT_ERR_SIGNATURE, EKEYREJECTED);

        /* RSA-PSS: flip a character in the middle of the signature */
        dot = strrchr(rsa, '.');
        dot[20] = dot[20] == 'A' ? 'B' : 'A';
        assert_rejected(rsa, WARDEN_JWT_ERR_SIGNATURE, EKEYREJECTED);
}

void test_tamper_payload(void **state) {
        _cleanup_free_ char *token = mint(fx.ec256, "ec256", NULL, SUB, "aud1", T0, 300);
        _cleanup_free_ char *claims =
                claims_json("spiffe://example.org/admin", "[\"aud1\"]", EXP_OK);
        _cleanup_free_ char *c64 = NULL, *bad = NULL;
        char *d1 = strchr(token, '.'), *d2 = strrchr(token, '.');

        (void) state;
        assert_ok(jose_b64url_encode(claims, strlen(claims), &c64));
        *d1 = '\0';
        assert_true(asprintf(&bad, "%s.%s.%s", token, c64, d2 + 1) > 0);
        assert_rejected(bad, WARDEN_JWT_ERR_SIGNATURE, EKEYREJECTED);
}

void test_alg_none(void **state) {
        _cleanup_free_ char *claims = good_claims();
        _cleanup_free_ char *t1 =
                craft("{\"alg\":\"none\",\"kid\":\"ec256\",\"typ\":\"JWT\"}", claims, NULL);
        _cleanup_free_ char *t2 = craft("{\"kid\":\"ec256\",\"typ\":\"JWT\"}", claims, NULL);
        _cleanup_free_ char *t3 = craft("{\"alg\":\"EdDSA\",\"kid\":\"ec256\"}", claims, NULL);
        _cleanup_free_ char *t4 = craft("{\"alg\":\"es256\",\"kid\":\"ec256\"}", claims, NULL);
        _cleanup_free_ char *t5 = craft("{\"alg\":256,\"kid\":\"ec256\"}", claims, NULL);

        (void) state;
        assert_rejected(t1, WARDEN_JWT_ERR_ALG, EBADMSG);
        assert_rejected(t2, WARDEN_JWT_ERR_ALG, EBADMSG);
        assert_rejected(t3, WARDEN_JWT_ERR_ALG, EBADMSG);
        assert_rejected(t4, WARDEN_JWT_ERR_ALG, EBADMSG);
        assert_rejected(t5, WARDEN_JWT_ERR_ALG, EBADMSG);
}

/* HS256 keyed with the bundle's public key bytes (the classic alg confusion attack). */
void test_alg_hs256(void **state) {
        _cleanup_free_ char *claims = good_claims();
        _cleanup_free_ char *h64 = NULL, *c64 = NULL, *s64 = NULL, *input = NULL, *token = NULL;
        _cleanup_free_ char *hdr = strdup("{\"alg\":\"HS256\",\"kid\":\"ec256\",\"typ\":\"JWT\"}");
        unsigned char *pub = NULL, mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        int n;

        (void) state;
        n = i2d_PUBKEY(warden_bundle_find_jwt_key(fx.example, "ec256"), &pub);
        assert_true(n > 0);
        assert_ok(jose_b64url_encode(hdr, strlen(hdr), &h64));
        assert_ok(jose_b64url_encode(claims, strlen(claims), &c64));
        assert_true(asprintf(&input, "%s.%s", h64, c64) > 0);
        assert_non_null(HMAC(EVP_sha256(), pub, n, (const unsigned char *) input, strlen(input),
                             mac, &mac_len));
        OPENSSL_free(pub);
        assert_ok(jose_b64url_encode(mac, mac_len, &s64));
        assert_true(asprintf(&token, "%s.%s", input, s64) > 0);
        assert_rejected(token, WARDEN_JWT_ERR_ALG, EBADMSG);
}

void test_alg_key_mismatch(void **state) {
        _cleanup_free_ char *claims = good_claims();
        /* RS256 header naming the EC key, signed with the RSA key */
        _cleanup_free_ char *t1 =
                craft("{\"alg\":\"RS256\",\"kid\":\"ec256\",\"typ\":\"JWT\"}", claims, fx.rsa);
        /* ES384 header naming the P-256 key */
        _cleanup_free_ char *t2 =
                craft("{\"alg\":\"ES384\",\"kid\":\"ec256\",\"typ\":\"JWT\"}", claims, fx.ec384);
        /* ES256 header naming the RSA key */
        _cleanup_free_ char *t3 =
                craft("{\"alg\":\"ES256\",\"kid\":\"rsa\",\"typ\":\"JWT\"}", claims, fx.ec256);
        /* control: the matching header verifies */
        _cleanup_free_ char *ok =
                craft("{\"alg\":\"RS256\",\"kid\":\"rsa\",\"typ\":\"JWT\"}", claims, fx.rsa);

        (void) state;
        assert_accepted(ok);
        assert_rejected(t1, WARDEN_JWT_ERR_KEY_MISMATCH, EKEYREJECTED);
        assert_rejected(t2, WARDEN_JWT_ERR_KEY_MISMATCH, EKEYREJECTED);
        assert_rejected(t3, WARDEN_JWT_ERR_KEY_MISMATCH, EKEYREJECTED);
}

static void header_case(const char *header, WardenJwtError e) {
        _cleanup_free_ char *claims = good_claims();
        _cleanup_free_ char *t = craft(header, claims, fx.ec256);

        if (e == WARDEN_JWT_OK)
                assert_accepted(t);
        else
                assert_rejected(t, e, EBADMSG);
}

void test_header_rules(void **state) {
        (void) state;
        header_case(H_ES256, WARDEN_JWT_OK);
        header_case("{\"alg\":\"ES256\",\"kid\":\"ec256\"}", WARDEN_JWT_OK); /* no typ */
        header_case("{\"alg\":\"ES256\",\"kid\":\"ec256\",\"typ\":\"JOSE\"}", WARDEN_JWT_OK);
        header_case("{\"kid\":\"ec256\",\"typ\":\"JWT\",\"alg\":\"ES256\"}", WARDEN_JWT_OK);
        header_case("{\"alg\":\"ES256\",\"typ\":\"JWT\"}", WARDEN_JWT_ERR_KID);
        header_case("{\"alg\":\"ES256\",\"kid\":\"\",\"typ\":\"JWT\"}", WARDEN_JWT_ERR_KID);
        header_case("{\"alg\":\"ES256\",\"kid\":7,\"typ\":\"JWT\"}", WARDEN_JWT_ERR_KID);
        header_case("{\"alg\":\"ES256\",\"kid\":\"ec256\",\"typ\":\"foo\"}", WARDEN_JWT_ERR_TYP);
        header_case("{\"alg\":\"ES256\",\"kid\":\"ec256\",\"typ\":\"jwt\"}", WARDEN_JWT_ERR_TYP);
        header_case("{\"alg\":\"ES256\",\"kid\":\"ec256\",\"typ\":1}", WARDEN_JWT_ERR_TYP);
        header_case("{\"alg\":\"ES256\",\"kid\":\"ec256\",\"typ\":\"JWT\",\"jku\":\"https://x\"}",
                    WARDEN_JWT_ERR_HEADER_PARAM);
        header_case("{\"alg\":\"ES256\",\"kid\":\"ec256\",\"crit\":[\"exp\"]}",
                    WARDEN_JWT_ERR_HEADER_PARAM);
        header_case("{\"alg\":\"ES256\",\"kid\":\"ec256\",\"alg\":\"ES256\"}",
                    WARDEN_JWT_ERR_HEADER);
        header_case("[\"ES256\"]", WARDEN_JWT_ERR_HEADER);
        header_case("not json", WARDEN_JWT_ERR_HEADER);
}

void test_unknown_kid(void **state) {
        _cleanup_free_ char *t = mint(fx.ec256, "nope", NULL, SUB, "aud1", T0, 300);

        (void) state;
        assert_rejected(t, WARDEN_JWT_ERR_UNKNOWN_KID, ENOKEY);
}

static void mint_nbf(int64_t nbf, char **ret) {
        const char *auds[] = {"aud1"};
        _cleanup_(json_decrefp) json_t *extra = json_pack("{s:I}", "nbf", (json_int_t) nbf);
        WardenJwtMintParams p = {.key = fx.ec256,
                                 .kid = "ec256",
                                 .spiffe_id = SUB,
                                 .audiences = auds,
                                 .n_audiences = 1,
                                 .ttl = 300,
                                 .now = T0,
                                 .extra_claims = extra};

        assert_ok(warden_jwtsvid_mint(&p, ret));
}

static int validate_at(const char *token, int64_t now, int64_t skew, WardenJwtError *e) {
        WardenJwtTimeRules t = {.now = now, .skew_seconds = skew};

        return warden_jwtsvid_validate(token, "aud1", fx.bundles, 2, &t, NULL, e);
}

static int validate_grace(const char *token, int64_t now, int64_t exp_leeway, WardenJwtError *e) {
        WardenJwtTimeRules t = {.now = now, .skew_seconds = 60, .exp_leeway_seconds = exp_leeway};

        return warden_jwtsvid_validate(token, "aud1", fx.bundles, 2, &t, NULL, e);
}

void test_times(void **state) {
        _cleanup_free_ char *t = mint(fx.ec256, "ec256", NULL, SUB, "aud1", T0 - 330, 300);
        _cleanup_free_ char *future_iat = mint(fx.ec256, "ec256", NULL, SUB, "aud1", T0 + 600, 300);
        _cleanup_free_ char *nbf_future = NULL, *nbf_near = NULL, *nbf_str = NULL, *nbf_real = NULL;
        _cleanup_free_ char *claims = NULL;
        WardenJwtError e = WARDEN_JWT_OK;

        (void) state;
        /* exp = T0 - 30: valid only while now < exp (RFC 7519); the clock skew
         * allowance (for nbf/iat) never extends a token's life. */
        assert_errno(validate_at(t, T0, 0, &e), EKEYEXPIRED);
        assert_int_equal(e, WARDEN_JWT_ERR_EXPIRED);
        assert_errno(validate_at(t, T0, 60, &e), EKEYEXPIRED);
        assert_int_equal(e, WARDEN_JWT_ERR_EXPIRED);
        assert_errno(validate_at(t, T0 - 30, 60, &e), EKEYEXPIRED); /* now == exp */
        assert_ok(validate_at(t, T0 - 31, 60, &e));                 /* now == exp - 1 */
        /* The opt-in grace after exp: now < exp + leeway. */
        assert_errno(validate_grace(t, T0, 30, &e), EKEYEXPIRED);
        assert_ok(validate_grace(t, T0, 31, &e));
        e = WARDEN_JWT_OK;
        assert_errno(validate_grace(t, T0, WARDEN_JWT_LEEWAY_MAX + 1, &e), EINVAL);
        assert_int_equal(e, WARDEN_JWT_ERR_ARGUMENT);

        assert_errno(validate_at(future_iat, T0, 60, &e), EKEYEXPIRED);
        assert_int_equal(e, WARDEN_JWT_ERR_ISSUED_IN_FUTURE);
        assert_ok(validate_at(future_iat, T0 + 540, 60, &e));

        mint_nbf(T0 + 600, &nbf_future);
        assert_errno(validate_at(nbf_future, T0, 60, &e), EKEYEXPIRED);
        assert_int_equal(e, WARDEN_JWT_ERR_NOT_YET_VALID);
        mint_nbf(T0 + 30, &nbf_near);
        assert_ok(validate_at(nbf_near, T0, 60, &e));
        assert_errno(validate_at(nbf_near, T0, 0, &e), EKEYEXPIRED);

        assert_true(asprintf(&claims,
                             "{\"sub\":\"%s\",\"aud\":[\"aud1\"],\"exp\":%s,\"nbf\":\"0\"}", SUB,
                             EXP_OK) > 0);
        nbf_str = craft(H_ES256, claims, fx.ec256);
        assert_rejected(nbf_str, WARDEN_JWT_ERR_TIME_TYPE, EBADMSG);
        free(claims);
        assert_true(asprintf(&claims,
                             "{\"sub\":\"%s\",\"aud\":[\"aud1\"],\"exp\":%s,\"nbf\":1.5,"
                             "\"iat\":1699999999.25}",
                             SUB, EXP_OK) > 0);
        nbf_real = craft(H_ES256, claims, fx.ec256);
        assert_accepted(nbf_real); /* nbf/iat may be fractional */

        /* bad arguments */
        assert_errno(validate_at(t, T0, -1, &e), EINVAL);
        assert_int_equal(e, WARDEN_JWT_ERR_ARGUMENT);
        assert_errno(validate_at(t, T0, WARDEN_JWT_LEEWAY_MAX + 1, &e), EINVAL);
}

static void claims_case(const char *aud_json, const char *exp_json, WardenJwtError e, int err) {
        _cleanup_free_ char *claims = claims_json(SUB, aud_json, exp_json);
        _cleanup_free_ char *t = craft(H_ES256, claims, fx.ec256);

        if (e == WARDEN_JWT_OK)
                assert_accepted(t);
        else
                assert_rejected(t, e, err);
}

void test_audience(void **state) {
        _cleanup_free_ char *t = mint(fx.ec256, "ec256", NULL, SUB, "other-aud", T0, 300);
        _cleanup_free_ char *claims = NULL, *no_aud = NULL;
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *c = NULL;
        _cleanup_free_ char *string_aud = NULL;
        WardenJwtError e;

        (void) state;
        assert_rejected(t, WARDEN_JWT_ERR_AUDIENCE, EACCES);
        assert_errno(warden_jwtsvid_validate(t, "", fx.bundles, 2, &(WardenJwtTimeRules){.now = T0},
                                             NULL, &e),
                     EINVAL);
        assert_int_equal(e, WARDEN_JWT_ERR_ARGUMENT);
        assert_errno(warden_jwtsvid_validate(t, NULL, fx.bundles, 2,
                                             &(WardenJwtTimeRules){.now = T0}, NULL, &e),
                     EINVAL);

        /* aud as a single string is accepted and reported as a list */
        claims = claims_json(SUB, "\"aud1\"", EXP_OK);
        string_aud = craft(H_ES256, claims, fx.ec256);
        assert_ok(warden_jwtsvid_validate(string_aud, "aud1", fx.bundles, 2,
                                          &(WardenJwtTimeRules){.now = T0}, &c, &e));
        assert_int_equal(c->n_aud, 1);
        assert_string_equal(c->aud[0], "aud1");

        claims_case("[\"x\",\"aud1\"]", EXP_OK, WARDEN_JWT_OK, 0);
        claims_case("\"x\"", EXP_OK, WARDEN_JWT_ERR_AUDIENCE, EACCES);
        claims_case("[\"aud\"]", EXP_OK, WARDEN_JWT_ERR_AUDIENCE, EACCES);
        claims_case("[]", EXP_OK, WARDEN_JWT_ERR_AUD_TYPE, EBADMSG);
        claims_case("[1]", EXP_OK, WARDEN_JWT_ERR_AUD_TYPE, EBADMSG);
        claims_case("[\"aud1\",null]", EXP_OK, WARDEN_JWT_ERR_AUD_TYPE, EBADMSG);
        claims_case("7", EXP_OK, WARDEN_JWT_ERR_AUD_TYPE, EBADMSG);
        claims_case("{}", EXP_OK, WARDEN_JWT_ERR_AUD_TYPE, EBADMSG);

        assert_true(asprintf(&no_aud, "{\"sub\":\"%s\",\"exp\":%s}", SUB, EXP_OK) > 0);
        free(claims);
        claims = craft(H_ES256, no_aud, fx.ec256);
        assert_rejected(claims, WARDEN_JWT_ERR_AUD_TYPE, EBADMSG);
}

void test_exp_rules(void **state) {
        _cleanup_free_ char *claims = NULL, *t = NULL;

        (void) state;
        claims_case("[\"aud1\"]", EXP_OK, WARDEN_JWT_OK, 0);
        claims_case("[\"aud1\"]", "1700000300.0", WARDEN_JWT_ERR_EXP_TYPE, EBADMSG);
        claims_case("[\"aud1\"]", "1.7000003e9", WARDEN_JWT_ERR_EXP_TYPE, EBADMSG);
        claims_case("[\"aud1\"]", "\"1700000300\"", WARDEN_JWT_ERR_EXP_TYPE, EBADMSG);
        claims_case("[\"aud1\"]", "null", WARDEN_JWT_ERR_EXP_TYPE, EBADMSG);

        assert_true(asprintf(&claims, "{\"sub\":\"%s\",\"aud\":[\"aud1\"]}", SUB) > 0);
        t = craft(H_ES256, claims, fx.ec256);
        assert_rejected(t, WARDEN_JWT_ERR_EXP_MISSING, EBADMSG);
}

static void sub_case(const char *sub, WardenJwtError e, int err) {
        _cleanup_free_ char *claims = claims_json(sub, "[\"aud1\"]", EXP_OK);
        _cleanup_free_ char *t = craft(H_ES256, claims, fx.ec256);

        assert_rejected(t, e, err);
}

void test_sub_rules(void **state) {
        _cleanup_free_ char *foreign =
                mint(fx.ec256, "ec256", NULL, "spiffe://third.org/x", "aud1", T0, 300);
        _cleanup_free_ char *other_ok =
                mint(fx.other256, "ec256", NULL, "spiffe://other.org/x", "aud1", T0, 300);
        _cleanup_free_ char *other_bad =
                mint(fx.ec256, "ec256", NULL, "spiffe://other.org/x", "aud1", T0, 300);
        _cleanup_free_ char *t = NULL;

        (void) state;
        sub_case("https://example.org/workload", WARDEN_JWT_ERR_SUB, EBADMSG);
        sub_case("spiffe://Example.org/workload", WARDEN_JWT_ERR_SUB, EBADMSG);
        sub_case("spiffe://example.org/a//b", WARDEN_JWT_ERR_SUB, EBADMSG);
        sub_case("spiffe://example.org", WARDEN_JWT_ERR_SUB_NO_PATH, EBADMSG);
        t = craft(H_ES256, "{\"sub\":5,\"aud\":[\"aud1\"],\"exp\":1700000300}", fx.ec256);
        assert_rejected(t, WARDEN_JWT_ERR_SUB, EBADMSG);
        free(t);
        t = craft(H_ES256, "{\"aud\":[\"aud1\"],\"exp\":1700000300}", fx.ec256);
        assert_rejected(t, WARDEN_JWT_ERR_SUB, EBADMSG);

        /* a trust domain without a bundle */
        assert_rejected(foreign, WARDEN_JWT_ERR_NO_BUNDLE, ENOKEY);
        /* the bundle is chosen by sub's trust domain: other.org's ec256 is another key */
        assert_accepted(other_ok);
        assert_rejected(other_bad, WARDEN_JWT_ERR_SIGNATURE, EKEYREJECTED);
        WardenJwtError e;
        assert_errno(warden_jwtsvid_validate(other_ok, "aud1", fx.bundles + 1, 1,
                                             &(WardenJwtTimeRules){.now = T0}, NULL, &e),
                     ENOKEY);
        assert_int_equal(e, WARDEN_JWT_ERR_NO_BUNDLE);
}

void test_structure(void **state) {
        _cleanup_free_ char *good = mint(fx.ec256, "ec256", NULL, SUB, "aud1", T0, 300);
        _cleanup_free_ char *four = NULL, *two = NULL, *big = NULL, *at_max = NULL;
        _cleanup_free_ char *padded = NULL, *plus = NULL, *claims_bad = NULL, *dup = NULL;
        char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
        WardenJwtError e;

        (void) state;
        assert_true(asprintf(&four, "%s.AAAA", good) > 0);
        assert_rejected(four, WARDEN_JWT_ERR_MALFORMED, EBADMSG);
        two = strndup(good, (size_t) (d2 - good));
        assert_rejected(two, WARDEN_JWT_ERR_MALFORMED, EBADMSG);
        assert_rejected("", WARDEN_JWT_ERR_MALFORMED, EBADMSG);
        assert_rejected("..", WARDEN_JWT_ERR_MALFORMED, EBADMSG);
        assert_rejected(d1, WARDEN_JWT_ERR_MALFORMED, EBADMSG); /* ".payload.sig" */
        assert_rejected("eyJhIjoxfQ..AAAA", WARDEN_JWT_ERR_MALFORMED, EBADMSG);

        /* padding, '+' and a 4n+1 length are not base64url */
        padded = strdup(good);
        padded[d2 - good] = '\0';
        char *tmp = padded;
        assert_true(asprintf(&padded, "%s.%s==", tmp, d2 + 1) > 0);
        free(tmp);
        assert_rejected(padded, WARDEN_JWT_ERR_ENCODING, EBADMSG);
        plus = strdup(good);
        plus[1] = '+';
        assert_rejected(plus, WARDEN_JWT_ERR_ENCODING, EBADMSG);
        assert_rejected("eyJhbGciOiJFUzI1NiJ9.e.AAAA", WARDEN_JWT_ERR_ENCODING, EBADMSG);

        claims_bad = craft(H_ES256, "not json", fx.ec256);
        assert_rejected(claims_bad, WARDEN_JWT_ERR_CLAIMS, EBADMSG);
        dup = craft(H_ES256,
                    "{\"sub\":\"spiffe://example.org/a\",\"sub\":\"spiffe://example.org/b\","
                    "\"aud\":\"aud1\",\"exp\":1700000300}",
                    fx.ec256);
        assert_rejected(dup, WARDEN_JWT_ERR_CLAIMS, EBADMSG);

        /* size cap: WARDEN_JWT_MAX bytes is parsed, one more is refused */
        at_max = malloc(WARDEN_JWT_MAX + 2);
        memset(at_max, 'A', WARDEN_JWT_MAX + 1);
        at_max[WARDEN_JWT_MAX] = '\0';
        assert_rejected(at_max, WARDEN_JWT_ERR_MALFORMED, EBADMSG);
        big = strdup(at_max);
        big = realloc(big, WARDEN_JWT_MAX + 2);
        strcat(big, "A");
        assert_rejected(big, WARDEN_JWT_ERR_TOO_LARGE, E2BIG);

        assert_errno(warden_jwtsvid_validate(NULL, "aud1", fx.bundles, 2,
                                             &(WardenJwtTimeRules){.now = T0}, NULL, &e),
                     EINVAL);
        assert_int_equal(e, WARDEN_JWT_ERR_ARGUMENT);
}
