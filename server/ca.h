/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The trust domain's signing authorities: the X.509 CA that signs SVIDs and the key
 * that signs JWT-SVIDs, with SPIRE-like rotation.
 *
 * Keys and certificates live under <data_dir>/ca/ (directory 0700, keys 0600, every
 * file written atomically, a state.json naming the slots) and are reloaded at
 * restart. A missing or corrupt file there is an error (-EBADMSG, logged with the
 * file's name), never a reason to mint a new CA: only a data_dir without a ca/
 * directory (first start) gets fresh authorities.
 *
 * Each authority kind has a "current" slot and, once half of its lifetime is gone
 * (at most 30 days before its end), a prepared "next" slot that is published in the
 * bundle right away; the next slot becomes current when 1/6 of the current one's
 * lifetime (at most 7 days) is left. The old one then stays in the bundle as
 * "retired" until its notAfter; everything it signed expires by then because SVID
 * and JWT lifetimes are capped at the signing authority's notAfter. With ca_ttl = 24h
 * the next CA appears after 12h and signs from 20h on.
 *
 * JWT key IDs are base64url(SHA-256(SubjectPublicKeyInfo DER)) of the key (43 chars),
 * so a kid names exactly one key. A JWT key's bundle expiry is its notAfter.
 *
 * With an upstream CA (cfg->upstream_cert_path/key_path) the signing CA is an
 * intermediate signed by it (its notAfter capped at the upstream's); the bundle then
 * holds the upstream root, and SVID chains carry the intermediate. The certificate
 * file holds the upstream signing CA first, optionally followed by its chain to a
 * root: the last certificate is the bundle's root, the others follow our intermediate
 * in SVID chains.
 *
 * Time is passed in explicitly (`now`, Unix seconds, > 0), so tests drive rotation
 * without sleeping; every certificate made here is dated from it.
 * Not thread-safe: owned by the server's main thread. Signing threads use a CaSigner
 * snapshot (ca_get_signer()) instead. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include <warden/bundle.h>
#include <warden/x509.h>

#include "cleanup.h"

/* Shortest ca_ttl accepted, in seconds. */
#define CA_TTL_MIN 10
/* Delay before ca_tick() is due again after a failure, in seconds. */
#define CA_RETRY_SECONDS 5

typedef struct CaConfig {
        const char *trust_domain;       /* bare name */
        const char *data_dir;           /* CA state goes to <data_dir>/ca/ */
        WardenKeyType key_type;         /* X.509 CA and JWT key type */
        int64_t ca_ttl;                 /* seconds, lifetime of each CA and JWT key,
                                         * CA_TTL_MIN .. WARDEN_X509_TTL_MAX */
        const char *upstream_cert_path; /* PEM; NULL = self-signed root */
        const char *upstream_key_path;  /* PEM private key of the upstream CA */
} CaConfig;

typedef struct Ca Ca;

/* Loads the CA state from data_dir (creating data_dir 0700 if missing), or on first
 * start creates the first CA and JWT key; then catches up with `now` as ca_tick()
 * does and issues the server's TLS certificate. Errors: -EINVAL for a bad config, a
 * state of another trust domain or made in the other mode (self-signed/upstream);
 * -EBADMSG for a missing or corrupt state/key/cert file; -EPERM for a key file
 * readable by others; for the upstream CA -EINVAL (not a CA with keyCertSign),
 * -EKEYREJECTED (key does not match, or a stored intermediate it did not sign),
 * -EKEYEXPIRED (expired). Every error is logged once with the file concerned. */
int ca_new(const CaConfig *cfg, time_t now, Ca **ret);
/* Frees everything (keys are wiped by OpenSSL); NULL-safe; returns NULL. */
Ca *ca_free(Ca *ca);

/* Advances rotation: prepares next slots, activates them, drops expired authorities
 * from the bundle, persisting every change, and re-issues the server TLS certificate
 * at its half-life or when the active CA changed. *ret_changed (may be NULL) tells
 * whether the bundle, an active authority or the server TLS certificate changed
 * since the last successful tick (callers then push the bundle and reload their TLS
 * cert). On failure (a key that cannot be made, a full disk) the steps done are kept
 * and saved when possible, and a bundle is published only once the state file with
 * its sequence is written; call again at ca_next_tick(). */
int ca_tick(Ca *ca, time_t now, bool *ret_changed);

/* When ca_tick() next has work to do (absolute time): the earliest of preparing or
 * activating a next slot, a slot's expiry, and the server certificate's renewal;
 * after a failed tick, CA_RETRY_SECONDS after it. */
time_t ca_next_tick(const Ca *ca);

/* The trust domain's bundle: every unexpired X.509 root (self-signed: our CAs;
 * upstream: the upstream root) and every unexpired JWT key, with a sequence number
 * that increases on every change. Borrowed; valid until the next ca_tick(). */
const WardenBundle *ca_bundle(const Ca *ca);

/* Signs an X.509-SVID for the public key. spiffe_id must be in the trust domain
 * (-EINVAL otherwise); ttl > 0 is capped at the active CA's notAfter. *ret_chain =
 * leaf first, then (upstream mode) our intermediate and the upstream certificates
 * below the root. -EKEYEXPIRED when no unexpired CA is active; other errors as
 * warden_svid_sign(). */
int ca_sign_x509_svid(Ca *ca,
                      EVP_PKEY *public_key,
                      const char *spiffe_id,
                      const char *const *dns_names,
                      size_t n_dns_names,
                      int64_t ttl,
                      time_t now,
                      STACK_OF(X509) * *ret_chain);

/* DER of one certificate. */
typedef struct CaDer {
        uint8_t *data;
        size_t len;
} CaDer;

/* A signer: an immutable, reference-counted snapshot of the active X.509 CA (its
 * certificate, key and the certificates that follow the leaf in SVID chains, with
 * their DER) and of the active JWT key. Rotation (ca_tick()) never changes a snapshot
 * and never frees one in use: whoever holds a reference keeps signing with the
 * authority it was taken from, which stays valid until its own notAfter. ref, unref
 * and the ca_signer_*() functions below may be called from any thread. */
typedef struct CaSigner CaSigner;

/* A new reference to the snapshot of the authorities active now (main thread; built
 * again only after they changed). Either part may be missing (then its signing
 * function returns -EKEYEXPIRED). */
int ca_get_signer(Ca *ca, CaSigner **ret);
CaSigner *ca_signer_ref(CaSigner *s);
CaSigner *ca_signer_unref(CaSigner *s); /* NULL-safe; returns NULL */
DEFINE_TRIVIAL_CLEANUP_FUNC(CaSigner *, ca_signer_unref)

/* ca_sign_x509_svid() with the snapshot's CA, giving the leaf alone, made for
 * encoding: warden_svid_sign_for_der() (X509_get0_pubkey() on it is NULL). */
int ca_signer_sign_x509_svid(const CaSigner *s,
                             EVP_PKEY *public_key,
                             const char *spiffe_id,
                             const char *const *dns_names,
                             size_t n_dns_names,
                             int64_t ttl,
                             time_t now,
                             X509 **ret_leaf);
/* The certificates that follow the leaf in an SVID chain (none when self-signed), and
 * their DER (*ret borrowed for the snapshot's lifetime); returns their number. */
STACK_OF(X509) * ca_signer_chain(const CaSigner *s);
size_t ca_signer_chain_der(const CaSigner *s, const CaDer **ret);
/* ca_mint_jwt_svid() with the snapshot's JWT key. */
int ca_signer_mint_jwt_svid(const CaSigner *s,
                            const char *spiffe_id,
                            const char *const *audiences,
                            size_t n_audiences,
                            int64_t ttl,
                            time_t now,
                            char **ret_token,
                            int64_t *ret_expires_at);

/* Mints a JWT-SVID with the active JWT key (exp capped at the key's expiry);
 * *ret_expires_at (may be NULL) gets exp. spiffe_id must be in the trust domain.
 * Errors as ca_sign_x509_svid() and warden_jwtsvid_mint(). Free the token with
 * erase_and_free(). */
int ca_mint_jwt_svid(Ca *ca,
                     const char *spiffe_id,
                     const char *const *audiences,
                     size_t n_audiences,
                     int64_t ttl,
                     time_t now,
                     char **ret_token,
                     int64_t *ret_expires_at);

/* The server's own TLS identity for the node API: an X.509-SVID for
 * spiffe://<td>/warden/server (plus DNS SAN "localhost"), signed by the active CA
 * with a fresh key of cfg->key_type (kept in memory only), living min(1 h, ca_ttl/2)
 * capped at the CA's notAfter; re-issued by ca_tick() at half-life or when the CA
 * rotates. PEM strings (chain leaf first; key PKCS#8) are borrowed, valid until the
 * next ca_tick() or ca_free(); every output may be NULL. roots_pem = the bundle's
 * X.509 roots (what agents and clients trust). */
int ca_server_tls(Ca *ca,
                  const char **ret_chain_pem,
                  const char **ret_key_pem,
                  const char **ret_roots_pem);

/* The SPIFFE ID the server presents on the node API: spiffe://<td>/warden/server. */
int ca_server_spiffe_id(const Ca *ca, char **ret);
