/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* JWS signature algorithms (RFC 7518 §3) that SPIFFE allows for JWT-SVIDs:
 * RS256/384/512 (RSASSA-PKCS1-v1_5), PS256/384/512 (RSASSA-PSS, MGF1 with the same
 * digest, salt length = digest length) and ES256/384/512 (ECDSA; signatures are the
 * JOSE form r||s, each left-padded to the curve's coordinate size). All crypto is
 * OpenSSL EVP. */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

typedef enum JwsAlg {
        JWS_RS256,
        JWS_RS384,
        JWS_RS512,
        JWS_ES256,
        JWS_ES384,
        JWS_ES512,
        JWS_PS256,
        JWS_PS384,
        JWS_PS512,
        _JWS_ALG_MAX,
        _JWS_ALG_INVALID = -EINVAL,
} JwsAlg;

/* "ES256" → JWS_ES256; anything outside the allowlist (none, HS256, EdDSA, "es256")
 * → _JWS_ALG_INVALID. */
JwsAlg jws_alg_from_string(const char *s);
const char *jws_alg_to_string(JwsAlg alg);

/* The default algorithm for a signing key: EC P-256 → ES256, P-384 → ES384,
 * P-521 → ES512, RSA → RS256. -EOPNOTSUPP for other keys. */
int jws_alg_for_key(const EVP_PKEY *key, JwsAlg *ret);

/* 0 when `key` can be used with `alg` (RS/PS need RSA; ES256 needs P-256, ES384
 * P-384, ES512 P-521), else -EKEYREJECTED. */
int jws_alg_check_key(JwsAlg alg, const EVP_PKEY *key);

/* Signs data with the private key; *ret_sig is the JOSE-form signature (malloc'd). */
int jws_sign(JwsAlg alg,
             EVP_PKEY *key,
             const void *data,
             size_t len,
             uint8_t **ret_sig,
             size_t *ret_sig_len);

/* Verifies a JOSE-form signature. 0 when valid; -EKEYREJECTED for a key that does
 * not fit alg or a signature that does not verify (including a wrong length). */
int jws_verify(JwsAlg alg,
               EVP_PKEY *key,
               const void *data,
               size_t len,
               const uint8_t *sig,
               size_t sig_len);
