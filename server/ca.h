/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The trust domain's signing authorities: the X.509 CA that signs SVIDs and the key
 * that signs JWT-SVIDs, with SPIRE-like rotation.
 *
 * Keys and certificates live under <data_dir>/ca/ (keys 0600, written atomically)
 * and are reloaded at restart. Each authority has a "current" slot and, from half of
 * its lifetime on, a prepared "next" slot that is already published in the bundle; the
 * next slot becomes current when 1/6 of the current one's lifetime is left. Old
 * authorities stay in the bundle until everything they signed has expired (their
 * notAfter), so validators always hold both old and new keys during overlap.
 *
 * With an upstream CA (cfg->upstream_cert_path/key_path) the signing CA is an
 * intermediate signed by it; the bundle then holds the upstream root, and SVID chains
 * carry the intermediate.
 *
 * Time is passed in explicitly (`now`), so tests drive rotation without sleeping.
 * Not thread-safe: owned by the server's main thread. */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include <warden/bundle.h>
#include <warden/x509.h>

typedef struct CaConfig {
        const char *trust_domain;       /* bare name */
        const char *data_dir;           /* CA state goes to <data_dir>/ca/ */
        WardenKeyType key_type;         /* X.509 CA and JWT key type */
        int64_t ca_ttl;                 /* seconds, lifetime of each CA and JWT key */
        const char *upstream_cert_path; /* PEM; NULL = self-signed root */
        const char *upstream_key_path;  /* PEM private key of the upstream CA */
} CaConfig;

typedef struct Ca Ca;

/* Loads the CA state from data_dir, or creates the first CA and JWT key. */
int ca_new(const CaConfig *cfg, time_t now, Ca **ret);
Ca *ca_free(Ca *ca);

/* Advances rotation: prepares next slots, activates them, drops expired authorities
 * from the bundle, persisting every change. *ret_changed (may be NULL) tells whether
 * the bundle or the active signing CA changed (callers then push the bundle and
 * reload their TLS cert). */
int ca_tick(Ca *ca, time_t now, bool *ret_changed);

/* When ca_tick() next has work to do (absolute time). */
time_t ca_next_tick(const Ca *ca);

/* The trust domain's bundle: every unexpired X.509 root (self-signed: our CAs;
 * upstream: the upstream root) and every unexpired JWT key, with a sequence number
 * that increases on every change. Borrowed; valid until the next ca_tick(). */
const WardenBundle *ca_bundle(const Ca *ca);

/* Signs an X.509-SVID for the public key. ttl is capped at the active CA's notAfter.
 * *ret_chain = leaf first, then the intermediate when there is an upstream CA. */
int ca_sign_x509_svid(Ca *ca,
                      EVP_PKEY *public_key,
                      const char *spiffe_id,
                      const char *const *dns_names,
                      size_t n_dns_names,
                      int64_t ttl,
                      time_t now,
                      STACK_OF(X509) * *ret_chain);

/* Mints a JWT-SVID with the active JWT key (exp capped at the key's expiry). */
int ca_mint_jwt_svid(Ca *ca,
                     const char *spiffe_id,
                     const char *const *audiences,
                     size_t n_audiences,
                     int64_t ttl,
                     time_t now,
                     char **ret_token,
                     int64_t *ret_expires_at);

/* The server's own TLS identity for the node API: an X.509-SVID for
 * spiffe://<td>/warden/server (plus DNS SAN "localhost"), signed by the active CA,
 * re-issued by ca_tick() at half-life or when the CA rotates. PEM strings are
 * borrowed. roots_pem = the bundle's X.509 roots (what agents and clients trust). */
int ca_server_tls(Ca *ca,
                  const char **ret_chain_pem,
                  const char **ret_key_pem,
                  const char **ret_roots_pem);

/* The SPIFFE ID the server presents on the node API: spiffe://<td>/warden/server. */
int ca_server_spiffe_id(const Ca *ca, char **ret);
