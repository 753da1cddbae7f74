/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Trust bundles: one trust domain's X.509 authorities (CA certificates), JWT
 * authorities (key ID + public key + optional expiry), a sequence number and a
 * refresh hint. Serialised as
 *   - the SPIFFE bundle format (JWKS with "use", spiffe_sequence, spiffe_refresh_hint;
 *     bundle endpoints, `bundle show`), spec/SPIFFE-FACTS.md §5;
 *   - a plain JWKS of the JWT keys (Workload API FetchJWTBundles, exactly as SPIRE);
 *   - concatenated DER roots (Workload API `bundle` fields) or PEM.
 *
 * A WardenBundle is reference counted; ref/unref are atomic, so a bundle may be
 * shared between threads as long as nobody mutates it after publishing it (treat
 * shared bundles as immutable snapshots; warden_bundle_copy() to change one).
 * Keys kept in a bundle are always public-only copies.
 *
 * Errors are negative errno values; parsers of outside input return -EINVAL (or
 * -E2BIG for size limits) with a static reason string in *reterr_reason. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest JSON document the parsers accept. */
#define WARDEN_BUNDLE_JSON_MAX (1024U * 1024U)
/* Most keys (x509 + jwt, and entries in a parsed "keys" array) in one bundle. */
#define WARDEN_BUNDLE_KEYS_MAX 1024U
/* Longest JWT key ID, in bytes. */
#define WARDEN_JWT_KID_MAX 256U

typedef struct WardenBundle WardenBundle;

/* A new empty bundle for trust domain td (bare "example.org" or "spiffe://example.org"),
 * sequence 0, refresh hint 0. -EINVAL for an invalid trust domain. */
int warden_bundle_new(const char *td, WardenBundle **ret);
/* Takes a reference; returns b. NULL-safe. */
WardenBundle *warden_bundle_ref(WardenBundle *b);
/* Drops a reference, freeing the bundle at zero; returns NULL. NULL-safe. */
WardenBundle *warden_bundle_unref(WardenBundle *b);
/* For _cleanup_(warden_bundle_unrefp). */
static inline void warden_bundle_unrefp(WardenBundle **b) {
        warden_bundle_unref(*b);
}
/* Bare trust domain name ("example.org"), owned by the bundle. */
const char *warden_bundle_trust_domain(const WardenBundle *b);

/* Adds a CA certificate, taking a new reference on cert (the caller keeps its own).
 * Returns 1 when added, 0 when an identical certificate is already there.
 * -EOPNOTSUPP/-EINVAL when the certificate's key is not EC P-256/384/521 or RSA
 * 2048..8192 bits (those are the only keys the JWK formats can carry), -E2BIG past
 * WARDEN_BUNDLE_KEYS_MAX keys. */
int warden_bundle_add_x509_authority(WardenBundle *b, X509 *cert);
/* Removes the certificate equal to cert; -ENOENT if there is none. */
int warden_bundle_remove_x509_authority(WardenBundle *b, const X509 *cert);
/* The CA certificates in insertion order, owned by the bundle (never NULL). */
const STACK_OF(X509) * warden_bundle_x509_authorities(const WardenBundle *b);
size_t warden_bundle_n_x509_authorities(const WardenBundle *b);

/* Adds a JWT authority. The bundle stores a public-only copy of key (a private key
 * may be passed). kid: non-empty, <= WARDEN_JWT_KID_MAX bytes. expires_at: Unix
 * seconds, 0 = none, negative = -EINVAL (informational: validation ignores it).
 * -EEXIST when kid is already present, -EINVAL for a bad kid, -EOPNOTSUPP/-EINVAL
 * for an unsupported key, -E2BIG past WARDEN_BUNDLE_KEYS_MAX keys. */
int warden_bundle_add_jwt_authority(WardenBundle *b,
                                    const char *kid,
                                    const EVP_PKEY *key,
                                    int64_t expires_at);
/* Removes the JWT authority with this kid; -ENOENT if there is none. */
int warden_bundle_remove_jwt_authority(WardenBundle *b, const char *kid);
/* The public key for kid (borrowed, valid while the bundle lives unchanged), or NULL. */
EVP_PKEY *warden_bundle_find_jwt_key(const WardenBundle *b, const char *kid);
size_t warden_bundle_n_jwt_authorities(const WardenBundle *b);
/* The i-th JWT authority (insertion order). All outputs are borrowed and optional
 * (NULL to skip). -ENOENT when i is out of range. */
int warden_bundle_get_jwt_authority(const WardenBundle *b,
                                    size_t i,
                                    const char **ret_kid,
                                    EVP_PKEY **ret_key,
                                    int64_t *ret_expires_at);

/* spiffe_sequence: 64 bits in memory; the JSON writers fail with -ERANGE above INT64_MAX. */
uint64_t warden_bundle_sequence(const WardenBundle *b);
void warden_bundle_set_sequence(WardenBundle *b, uint64_t sequence);
/* spiffe_refresh_hint in seconds (0 = unset). Negative values are rejected (-EINVAL). */
int64_t warden_bundle_refresh_hint(const WardenBundle *b);
int warden_bundle_set_refresh_hint(WardenBundle *b, int64_t seconds);

/* true when both bundles have the same trust domain, the same set of CA certificates
 * and JWT authorities (kid, key, expiry; order does not matter), sequence and refresh
 * hint. Two NULLs are equal. */
bool warden_bundle_equal(const WardenBundle *a, const WardenBundle *b);
/* A deep copy (new refcount 1; certificates and keys are shared, being immutable). */
int warden_bundle_copy(const WardenBundle *b, WardenBundle **ret);

/* The CA certificates as DER joined end to end (the Workload API `bundle` format).
 * *ret is malloc'd; with no certificates *ret_len is 0 (and *ret a 1-byte buffer). */
int warden_bundle_x509_der(const WardenBundle *b, uint8_t **ret, size_t *ret_len);
/* The CA certificates as concatenated PEM blocks (malloc'd; "" when there are none). */
int warden_bundle_to_pem(const WardenBundle *b, char **ret);

/* SPIFFE bundle JSON (compact, malloc'd): {"keys":[...],"spiffe_sequence":N
 * [,"spiffe_refresh_hint":N]}. X.509 entries: use "x509-svid", kty, key params and
 * x5c with exactly one standard-base64 DER cert, no kid. JWT entries: use
 * "jwt-svid", kty, kid, key params. The refresh hint is written when > 0. */
int warden_bundle_to_spiffe_json(const WardenBundle *b, char **ret);

/* Parses a SPIFFE bundle for trust domain td. Strict: at most WARDEN_BUNDLE_JSON_MAX
 * bytes (-E2BIG), JSON object with duplicate members rejected, "keys" an array of at
 * most WARDEN_BUNDLE_KEYS_MAX objects; keys with an unknown kty or a missing/unknown
 * use are ignored; x509-svid keys need exactly one x5c that decodes to a CA
 * certificate whose public key equals the JWK's, and no kid; jwt-svid keys need a
 * unique kid; EC points must be on P-256/384/521, RSA moduli >= 2048 bits;
 * spiffe_sequence and spiffe_refresh_hint must be non-negative integers if present. */
int warden_bundle_from_spiffe_json(const char *td,
                                   const char *json,
                                   size_t len,
                                   WardenBundle **ret,
                                   const char **reterr_reason);

/* The Workload API JWT bundle: {"keys":[{"kty","kid","crv","x","y"} | {"kty","kid",
 * "n","e"}, ...]} with JWT authorities only, no use, nothing else; {"keys":[]} when
 * there are none. Compact, malloc'd. */
int warden_bundle_to_jwks(const WardenBundle *b, char **ret);

/* Parses a plain JWKS (as sent by FetchJWTBundles) into a bundle for td holding JWT
 * authorities only. Same size and key limits as above; every key needs a unique
 * non-empty kid; `use` may be absent or anything, except that keys marked
 * "x509-svid" are skipped (so a SPIFFE bundle document also parses); keys with an
 * unknown kty are ignored. */
int warden_jwks_parse(const char *td,
                      const char *json,
                      size_t len,
                      WardenBundle **ret,
                      const char **reterr_reason);

#ifdef __cplusplus
}
#endif
