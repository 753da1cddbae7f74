/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared fixtures for the JWT-SVID tests: keys made at run time, bundles, and an
 * independent token builder (plain OpenSSL signing, not common/jws.c). */

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>

#include <warden/bundle.h>
#include <warden/jwtsvid.h>

/* Fixed "now" for minting and validation. */
#define T0 INT64_C(1700000000)

typedef struct Fixture {
        EVP_PKEY *ec256, *ec384, *rsa, *other256;
        WardenBundle *example;          /* example.org: kids ec256, ec384, rsa */
        WardenBundle *other;            /* other.org: kid ec256 -> other256 */
        const WardenBundle *bundles[2]; /* {other, example} */
} Fixture;

extern Fixture fx;

int fixture_setup(void **state);
int fixture_teardown(void **state);

/* Mints with the given key/kid/alg for sub/aud at now with ttl (asserts success). */
char *mint(EVP_PKEY *key,
           const char *kid,
           const char *alg,
           const char *sub,
           const char *aud,
           int64_t now,
           int64_t ttl);

/* base64url(header) "." base64url(claims) "." signature. sign_key NULL → empty signature;
 * an EC key signs ES256/384 (raw r||s, digest by curve), an RSA key RS256. */
char *craft(const char *header, const char *claims, EVP_PKEY *sign_key);

/* Claims JSON with sub, aud (as given, raw JSON), exp (raw JSON) and iat = T0. */
char *claims_json(const char *sub, const char *aud_json, const char *exp_json);

/* Validates with audience "aud1" at T0, leeway 0; returns r and the error code. */
int check(const char *token, WardenJwtError *ret_err);

/* Asserts that validation fails with code `e` (and errno `err`). */
void assert_rejected(const char *token, WardenJwtError e, int err);

/* Rejection tests (test_jwtsvid_reject.c), run by test_jwtsvid.c's main(). */
void test_tamper_signature(void **state);
void test_tamper_payload(void **state);
void test_alg_none(void **state);
void test_alg_hs256(void **state);
void test_alg_key_mismatch(void **state);
void test_header_rules(void **state);
void test_unknown_kid(void **state);
void test_times(void **state);
void test_audience(void **state);
void test_exp_rules(void **state);
void test_sub_rules(void **state);
void test_structure(void **state);
