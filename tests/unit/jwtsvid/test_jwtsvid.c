/* SPDX-License-Identifier: Apache-2.0 */
/* JWT-SVID minting, round trips and token shape. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cleanup.h"
#include "jose_b64.h"
#include "jwt_helpers.h"
#include "testlib.h"

#define SUB "spiffe://example.org/workload/a"

/* Decodes part i (0 header, 1 claims) of a token as JSON; *ret_raw gets the text. */
static json_t *part_json(const char *token, int i, char **ret_raw) {
        const char *start = token, *end;
        uint8_t *raw = NULL;
        size_t len;
        json_t *v;

        for (; i > 0; i--)
                start = strchr(start, '.') + 1;
        end = strchr(start, '.');
        assert_non_null(end);
        assert_ok(jose_b64url_decode(start, (size_t) (end - start), &raw, &len));
        v = json_loadb((const char *) raw, len, 0, NULL);
        assert_non_null(v);
        if (ret_raw)
                *ret_raw = (char *) raw;
        else
                free(raw);
        return v;
}

static void roundtrip(EVP_PKEY *key, const char *kid, const char *alg, const char *expected_alg) {
        _cleanup_free_ char *token = mint(key, kid, alg, SUB, "aud1", T0, 300);
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *c = NULL;
        WardenJwtError e = WARDEN_JWT_OK;

        assert_ok(warden_jwtsvid_validate(token, "aud1", fx.bundles, 2,
                                          &(WardenJwtTimeRules){.now = T0 + 10}, &c, &e));
        assert_int_equal(e, WARDEN_JWT_OK);
        assert_string_equal(c->spiffe_id, SUB);
        assert_string_equal(c->trust_domain, "example.org");
        assert_int_equal(c->n_aud, 1);
        assert_string_equal(c->aud[0], "aud1");
        assert_int_equal(c->exp, T0 + 300);
        assert_true(c->has_iat);
        assert_int_equal(c->iat, T0);
        assert_non_null(c->jti);
        assert_string_equal(c->kid, kid);
        assert_string_equal(c->alg, expected_alg);
        assert_string_equal(json_string_value(json_object_get(c->all, "sub")), SUB);
}

static void test_roundtrip(void **state) {
        (void) state;
        roundtrip(fx.ec256, "ec256", NULL, "ES256");
        roundtrip(fx.ec384, "ec384", NULL, "ES384");
        roundtrip(fx.rsa, "rsa", NULL, "RS256");
        roundtrip(fx.rsa, "rsa", "PS256", "PS256");
        roundtrip(fx.rsa, "rsa", "RS512", "RS512");
        roundtrip(fx.rsa, "rsa", "PS384", "PS384");
}

static void test_token_shape(void **state) {
        _cleanup_free_ char *t1 = mint(fx.ec256, "ec256", NULL, SUB, "aud1", T0, 300);
        _cleanup_free_ char *t2 = mint(fx.ec256, "ec256", NULL, SUB, "aud1", T0, 300);
        _cleanup_free_ char *header = NULL, *raw_claims = NULL;
        _cleanup_free_ uint8_t *jti = NULL;
        json_t *h, *c, *c2;
        size_t len;

        (void) state;
        h = part_json(t1, 0, &header);
        assert_string_equal(header, "{\"alg\":\"ES256\",\"kid\":\"ec256\",\"typ\":\"JWT\"}");
        json_decref(h);

        c = part_json(t1, 1, &raw_claims);
        assert_true(json_is_array(json_object_get(c, "aud")));
        assert_int_equal(json_array_size(json_object_get(c, "aud")), 1);
        assert_true(json_is_integer(json_object_get(c, "exp")));
        assert_true(json_is_integer(json_object_get(c, "iat")));
        assert_int_equal(json_integer_value(json_object_get(c, "exp")), T0 + 300);
        assert_non_null(strstr(raw_claims, "\"exp\":1700000300"));
        const char *j = json_string_value(json_object_get(c, "jti"));
        assert_non_null(j);
        assert_int_equal(strlen(j), 22);
        assert_ok(jose_b64url_decode(j, strlen(j), &jti, &len));
        assert_int_equal(len, 16);
        assert_int_equal(json_object_size(c), 5); /* sub aud exp iat jti */

        c2 = part_json(t2, 1, NULL);
        assert_string_not_equal(j, json_string_value(json_object_get(c2, "jti")));
        json_decref(c);
        json_decref(c2);
}

static void test_multiple_audiences(void **state) {
        const char *auds[] = {"aud1", "aud2", "aud3"};
        WardenJwtMintParams p = {.key = fx.ec256,
                                 .kid = "ec256",
                                 .spiffe_id = SUB,
                                 .audiences = auds,
                                 .n_audiences = 3,
                                 .ttl = 60,
                                 .now = T0};
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *c = NULL;
        _cleanup_free_ char *token = NULL;

        (void) state;
        assert_ok(warden_jwtsvid_mint(&p, &token));
        assert_ok(warden_jwtsvid_validate(token, "aud2", fx.bundles, 2,
                                          &(WardenJwtTimeRules){.now = T0}, &c, NULL));
        assert_int_equal(c->n_aud, 3);
        assert_string_equal(c->aud[2], "aud3");
        assert_ok(warden_jwtsvid_validate(token, "aud3", fx.bundles, 2,
                                          &(WardenJwtTimeRules){.now = T0}, NULL, NULL));
}

static void test_extra_claims(void **state) {
        static const char *const reserved[] = {"sub", "aud", "exp", "iat", "jti"};
        const char *auds[] = {"aud1"};
        _cleanup_(json_decrefp) json_t *extra =
                json_pack("{s:s, s:i, s:[s]}", "scope", "read", "nbf", (int) T0 - 5, "act", "x");
        WardenJwtMintParams p = {.key = fx.ec256,
                                 .kid = "ec256",
                                 .spiffe_id = SUB,
                                 .audiences = auds,
                                 .n_audiences = 1,
                                 .ttl = 60,
                                 .now = T0,
                                 .extra_claims = extra};
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *c = NULL;
        _cleanup_free_ char *token = NULL;
        char *t = NULL;

        (void) state;
        assert_ok(warden_jwtsvid_mint(&p, &token));
        /* the caller's object is copied, not referenced */
        assert_int_equal(json_object_set_new(extra, "scope", json_string("write")), 0);
        assert_ok(warden_jwtsvid_validate(token, "aud1", fx.bundles, 2,
                                          &(WardenJwtTimeRules){.now = T0}, &c, NULL));
        assert_string_equal(json_string_value(json_object_get(c->all, "scope")), "read");
        assert_int_equal(json_integer_value(json_object_get(c->all, "nbf")), T0 - 5);
        assert_true(json_is_array(json_object_get(c->all, "act")));

        for (size_t i = 0; i < ELEMENTSOF(reserved); i++) {
                _cleanup_(json_decrefp) json_t *bad = json_pack("{s:s}", reserved[i], "x");
                p.extra_claims = bad;
                assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        }
        _cleanup_(json_decrefp) json_t *arr = json_array();
        p.extra_claims = arr;
        assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        assert_null(t);
}

static void test_mint_errors(void **state) {
        const char *auds[] = {"aud1"}, *empty_aud[] = {""}, *bad_utf8[] = {"aud1", "a\xff"};
        WardenJwtMintParams ok = {.key = fx.ec256,
                                  .kid = "ec256",
                                  .spiffe_id = SUB,
                                  .audiences = auds,
                                  .n_audiences = 1,
                                  .ttl = 60,
                                  .now = T0},
                            p;
        char *t = NULL;

        (void) state;
        assert_errno(warden_jwtsvid_mint(NULL, &t), EINVAL);
        p = ok, p.n_audiences = 0;
        assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        p = ok, p.audiences = empty_aud;
        assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        /* Text that JSON cannot carry is the caller's error, not out of memory. */
        p = ok, p.audiences = bad_utf8, p.n_audiences = 2;
        assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        p = ok, p.kid = "k\xc3";
        assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        p = ok, p.spiffe_id = "spiffe://example.org";
        assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        p = ok, p.spiffe_id = "https://example.org/a";
        assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        p = ok, p.ttl = 0;
        assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        p = ok, p.kid = "";
        assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        p = ok, p.alg = "HS256";
        assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        p = ok, p.alg = "none";
        assert_errno(warden_jwtsvid_mint(&p, &t), EINVAL);
        p = ok, p.alg = "ES384";
        assert_errno(warden_jwtsvid_mint(&p, &t), EKEYREJECTED);
        p = ok, p.alg = "RS256";
        assert_errno(warden_jwtsvid_mint(&p, &t), EKEYREJECTED);
        p = ok, p.key = fx.rsa, p.alg = "ES256";
        assert_errno(warden_jwtsvid_mint(&p, &t), EKEYREJECTED);
        /* a public-only key cannot sign */
        p = ok, p.key = warden_bundle_find_jwt_key(fx.example, "ec256");
        assert_true(warden_jwtsvid_mint(&p, &t) < 0);
        assert_null(t);
}

static void test_parse_unverified(void **state) {
        _cleanup_free_ char *token =
                mint(fx.ec256, "ec256", NULL, "spiffe://third.org/x", "a", T0, 60);
        _cleanup_(warden_jwt_claims_freep) WardenJwtClaims *c = NULL;
        _cleanup_free_ char *bad =
                craft("{\"alg\":\"ES256\",\"kid\":\"k\",\"x5u\":\"u\"}",
                      "{\"sub\":\"spiffe://a/b\",\"aud\":\"x\",\"exp\":1}", NULL);
        WardenJwtClaims *c2 = NULL;
        WardenJwtError e = WARDEN_JWT_OK;

        (void) state;
        /* no bundle needed, no signature check, no time check */
        assert_ok(warden_jwtsvid_parse_unverified(token, &c, &e));
        assert_string_equal(c->spiffe_id, "spiffe://third.org/x");
        assert_string_equal(c->trust_domain, "third.org");
        assert_string_equal(c->alg, "ES256");
        assert_int_equal(c->exp, T0 + 60);

        assert_errno(warden_jwtsvid_parse_unverified(bad, &c2, &e), EBADMSG);
        assert_int_equal(e, WARDEN_JWT_ERR_HEADER_PARAM);
        assert_null(c2);
        assert_errno(warden_jwtsvid_parse_unverified("a.b", &c2, &e), EBADMSG);
        assert_int_equal(e, WARDEN_JWT_ERR_MALFORMED);
}

static void test_error_strings(void **state) {
        (void) state;
        for (int i = 0; i < _WARDEN_JWT_ERR_MAX; i++) {
                const char *s = warden_jwt_error_to_string((WardenJwtError) i);
                assert_string_not_equal(s, "unknown error");
                for (int j = 0; j < i; j++)
                        assert_string_not_equal(s, warden_jwt_error_to_string((WardenJwtError) j));
        }
        assert_string_equal(warden_jwt_error_to_string(_WARDEN_JWT_ERR_MAX), "unknown error");
}

/* The audience rule shared by agent and server, and the UTF-8 check under it. */
static void test_audience_rule(void **state) {
        static const struct {
                const char *s;
                size_t len;
                bool ok;
        } utf8[] = {
                {"plain", 5, true},
                {"caf\xc3\xa9", 5, true},       /* U+00E9 */
                {"\xe2\x82\xac", 3, true},      /* U+20AC */
                {"\xf0\x9f\x98\x80", 4, true},  /* U+1F600 */
                {"\xf4\x8f\xbf\xbf", 4, true},  /* U+10FFFF */
                {"a\0b", 3, false},             /* NUL */
                {"\xff", 1, false},             /* never valid */
                {"\xc3", 1, false},             /* truncated */
                {"\xc0\xaf", 2, false},         /* overlong "/" */
                {"\xe0\x80\xaf", 3, false},     /* overlong */
                {"\xed\xa0\x80", 3, false},     /* surrogate U+D800 */
                {"\xf4\x90\x80\x80", 4, false}, /* past U+10FFFF */
                {"\xe2\x28\xa1", 3, false},     /* bad continuation */
        };
        char big[WARDEN_JWT_AUDIENCE_MAX + 2];
        const char *why = NULL;

        (void) state;
        for (size_t i = 0; i < sizeof(utf8) / sizeof(utf8[0]); i++) {
                assert_int_equal(warden_utf8_valid(utf8[i].s, utf8[i].len), utf8[i].ok);
                assert_int_equal(warden_jwt_audience_check(utf8[i].s, utf8[i].len, NULL) == 0,
                                 utf8[i].ok);
        }
        memset(big, 'a', sizeof(big));
        assert_ok(warden_jwt_audience_check(big, WARDEN_JWT_AUDIENCE_MAX, &why));
        assert_errno(warden_jwt_audience_check(big, WARDEN_JWT_AUDIENCE_MAX + 1, &why), EINVAL);
        assert_string_equal(why, "audience too long");
        assert_errno(warden_jwt_audience_check("", 0, &why), EINVAL);
        assert_string_equal(why, "audience must not be empty");
        assert_errno(warden_jwt_audience_check(NULL, 0, &why), EINVAL);
        assert_errno(warden_jwt_audience_check("a\0b", 3, &why), EINVAL);
        assert_string_equal(why, "audience must be UTF-8 without NUL");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),        cmocka_unit_test(test_audience_rule),
                cmocka_unit_test(test_token_shape),      cmocka_unit_test(test_multiple_audiences),
                cmocka_unit_test(test_extra_claims),     cmocka_unit_test(test_mint_errors),
                cmocka_unit_test(test_parse_unverified), cmocka_unit_test(test_error_strings),
                cmocka_unit_test(test_tamper_signature), cmocka_unit_test(test_tamper_payload),
                cmocka_unit_test(test_alg_none),         cmocka_unit_test(test_alg_hs256),
                cmocka_unit_test(test_alg_key_mismatch), cmocka_unit_test(test_header_rules),
                cmocka_unit_test(test_unknown_kid),      cmocka_unit_test(test_times),
                cmocka_unit_test(test_audience),         cmocka_unit_test(test_exp_rules),
                cmocka_unit_test(test_sub_rules),        cmocka_unit_test(test_structure),
        };
        return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
