/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* JSON Web Keys (RFC 7517/7518) for the key types SPIFFE uses: EC P-256/P-384/P-521
 * and RSA (2048..8192 bits). Conversion between EVP_PKEY and jansson objects, and
 * the key checks shared by bundles and JWS. Public keys only: a JWK produced here
 * never carries private parameters. */

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define JWK_RSA_MIN_BITS 2048
#define JWK_RSA_MAX_BITS 8192

typedef enum JwkKeyType {
        JWK_KEY_EC,
        JWK_KEY_RSA,
} JwkKeyType;

typedef struct JwkKeyInfo {
        JwkKeyType type;
        int curve_nid;    /* EC only: NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1 */
        const char *crv;  /* EC only: "P-256", "P-384", "P-521" (static) */
        size_t coord_len; /* EC only: bytes per coordinate (32, 48, 66) */
        int bits;         /* key size in bits */
} JwkKeyInfo;

/* Classifies a key. -EOPNOTSUPP for other key types or curves, -EINVAL for an RSA
 * key outside 2048..8192 bits; *reterr_reason says which. */
int jwk_key_info(const EVP_PKEY *key, JwkKeyInfo *ret, const char **reterr_reason);

/* A new EVP_PKEY holding only the public half of `key` (which must be supported). */
int jwk_public_copy(const EVP_PKEY *key, EVP_PKEY **ret);

/* Builds a JWK object with members in the order use, kty, kid, crv, x, y | n, e, x5c.
 * use, kid and x5c are optional (NULL = leave out); x5c is a single certificate
 * written as a one-element array of standard base64 DER. */
int jwk_from_pkey(const EVP_PKEY *key, const char *use, const char *kid, X509 *x5c, json_t **ret);

/* Reads the public key of a JWK object (kty EC with crv/x/y, or RSA with n/e).
 * Returns -EOPNOTSUPP when kty is not "EC"/"RSA" (callers ignore such keys), and
 * -EINVAL with a reason for anything malformed: a missing or non-string kty, an
 * unknown curve, coordinates of the wrong length, a point not on the curve, an RSA
 * modulus under 2048 or over 8192 bits, an even or tiny exponent, bad base64url. */
int jwk_to_pkey(const json_t *jwk, EVP_PKEY **ret, const char **reterr_reason);
