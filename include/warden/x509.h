/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* X.509 for Warden: keys, CSRs, CA certificates, X509-SVID signing and verification,
 * DER/PEM encodings. Everything goes through OpenSSL 3 (EVP/X509); templates follow
 * spec/SPIFFE-FACTS.md §3 (SPIRE's credential templates).
 *
 * Conventions: functions return 0 (or a count) on success and a negative errno on
 * failure; ret_ outputs are written only on success and are owned by the caller.
 * Borrowed OpenSSL objects are passed as plain pointers (OpenSSL's API is not
 * const-correct); nothing is consumed unless stated. Validators of outside input
 * return a static reason string through reterr_reason (may be NULL).
 *
 * Error codes used throughout:
 *   -EINVAL       bad argument from our own caller (NULL, ttl <= 0, bad DNS name, ...)
 *   -EBADMSG      malformed or invalid outside input (DER, PEM, CSR, certificate rules)
 *   -EMSGSIZE     outside input above a size or count cap
 *   -EKEYREJECTED a signature or certificate chain that does not verify, weak/unsupported key
 *   -EKEYEXPIRED  an expired or not-yet-valid certificate in a chain, or an expired CA
 *   -EOPNOTSUPP   a key type we do not handle
 *   -EPERM        a key file readable by group or others
 *   -ENOMEM, -EIO and open()/read() errors as usual. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Caps on outside input. */
#define WARDEN_CSR_MAX_BYTES (16 * 1024)       /* one DER CSR */
#define WARDEN_X509_CERT_MAX_BYTES (16 * 1024) /* one DER certificate */
#define WARDEN_X509_CHAIN_MAX_CERTS 16         /* warden_x509_chain_from_der */
#define WARDEN_X509_CHAIN_MAX_BYTES (64 * 1024)
#define WARDEN_X509_PEM_MAX_CERTS 256 /* PEM files and buffers (bundles, site CAs) */
#define WARDEN_X509_PEM_MAX_BYTES (1024 * 1024)
#define WARDEN_KEY_MAX_BYTES (16 * 1024) /* one DER or PEM private key */
#define WARDEN_SVID_DNS_NAMES_MAX 64
#define WARDEN_DNS_NAME_MAX 253
/* Longest lifetime we put in a certificate (50 years). */
#define WARDEN_X509_TTL_MAX ((int64_t) 50 * 365 * 24 * 3600)
/* Certificates are backdated by this much to tolerate clock skew (as SPIRE). */
#define WARDEN_X509_BACKDATE_SECONDS 10

/* ---- Keys (common/x509_key.c, x509_keyfile.c) ---- */

typedef enum WardenKeyType {
        WARDEN_KEY_EC_P256,
        WARDEN_KEY_EC_P384,
        WARDEN_KEY_RSA_2048,
        _WARDEN_KEY_TYPE_MAX,
} WardenKeyType;

/* "ec-p256" | "ec-p384" | "rsa-2048" -> the type (>= 0), anything else -> -EINVAL. */
int warden_key_type_from_string(const char *s);
/* The name of a type, NULL for an out-of-range value. */
const char *warden_key_type_to_string(WardenKeyType type);
/* The type of a key: EC P-256, EC P-384 or RSA of exactly 2048 bits; -EOPNOTSUPP for
 * anything else (other curves, other RSA sizes, Ed25519, ...). */
int warden_key_get_type(const EVP_PKEY *key);

/* Generates a new private key of the given type. */
int warden_key_generate(WardenKeyType type, EVP_PKEY **ret);

/* Private key as unencrypted PKCS#8 DER (the Workload API's x509_svid_key). The buffer
 * is malloc'd; release it with warden_key_der_free() so the key bytes are wiped. */
int warden_key_to_pkcs8_der(const EVP_PKEY *key, uint8_t **ret, size_t *ret_len);
/* Parses unencrypted PKCS#8 DER (whole buffer, <= WARDEN_KEY_MAX_BYTES). Accepts EC
 * P-256/P-384 and RSA 2048..8192 bits; anything else -> -EOPNOTSUPP / -EKEYREJECTED. */
int warden_key_from_pkcs8_der(const uint8_t *der, size_t len, EVP_PKEY **ret);
/* Wipes and frees a buffer returned by warden_key_to_pkcs8_der() (NULL is fine). */
void warden_key_der_free(uint8_t *der, size_t len);

/* Private key as PEM "PRIVATE KEY" (PKCS#8, unencrypted), a NUL-terminated malloc'd
 * string; free it with erase_and_free() / _cleanup_erase_. */
int warden_key_to_pem(const EVP_PKEY *key, char **ret);
/* Parses exactly one PEM "PRIVATE KEY" block (len bytes, <= WARDEN_KEY_MAX_BYTES);
 * same key rules as warden_key_from_pkcs8_der(). */
int warden_key_from_pem(const char *pem, size_t len, EVP_PKEY **ret);

/* Writes the key as PEM PKCS#8 atomically: a temp file in the same directory opened
 * O_CREAT|O_EXCL|O_CLOEXEC|O_NOFOLLOW with mode 0600, fsync, rename over path, fsync
 * of the directory. An existing file at path is replaced. */
int warden_key_write_file(const char *path, const EVP_PKEY *key);
/* Reads a private key file (PEM PKCS#8, or DER PKCS#8). Refuses with -EPERM a file
 * whose mode grants any access to group or others, and with -EBADMSG a non-regular
 * file; does not follow a symlink in the last component (-ELOOP). */
int warden_key_read_file(const char *path, EVP_PKEY **ret);

/* The public key as SubjectPublicKeyInfo DER (malloc'd). */
int warden_key_public_der(const EVP_PKEY *key, uint8_t **ret, size_t *ret_len);
/* Parses SubjectPublicKeyInfo DER (<= WARDEN_KEY_MAX_BYTES, whole buffer). */
int warden_key_public_from_der(const uint8_t *der, size_t len, EVP_PKEY **ret);
/* true when both keys have the same public part (false if either is NULL). */
bool warden_key_public_equal(const EVP_PKEY *a, const EVP_PKEY *b);

/* Signs data: ECDSA with SHA-256 (DER signature) for EC keys, RSASSA-PKCS1-v1_5 with
 * SHA-256 for RSA keys (>= 2048 bits). *ret_sig is malloc'd. Used for x509pop. */
int warden_sign(EVP_PKEY *key, const void *data, size_t len, uint8_t **ret_sig, size_t *ret_siglen);
/* Verifies a warden_sign() signature with a public (or private) key: 0 when valid,
 * -EKEYREJECTED when not (also for RSA keys under 2048 bits), -EOPNOTSUPP for other
 * key types. */
int warden_verify(
        EVP_PKEY *pubkey, const void *data, size_t len, const uint8_t *sig, size_t siglen);

/* ---- CSRs (common/x509_csr.c) ---- */

/* Builds a DER PKCS#10 request signed by key. If spiffe_id is not NULL it must be a
 * valid SPIFFE ID and is put in the request as its one URI SAN (informational: the
 * signer decides the identity). *ret_der is malloc'd. */
int warden_csr_create(EVP_PKEY *key, const char *spiffe_id, uint8_t **ret_der, size_t *ret_len);
/* Parses a DER CSR from a peer: <= WARDEN_CSR_MAX_BYTES (-EMSGSIZE), the whole buffer
 * one request (-EBADMSG), a supported key (EC P-256/P-384, RSA 2048..8192 bits,
 * -EKEYREJECTED), a valid self-signature (-EKEYREJECTED). Names in the request are
 * not looked at. */
int warden_csr_parse(const uint8_t *der, size_t len, X509_REQ **ret, const char **reterr_reason);
/* The request's public key (a new reference; EVP_PKEY_free it). */
int warden_csr_public_key(X509_REQ *req, EVP_PKEY **ret);
/* warden_csr_parse() and warden_csr_public_key() in one, the same checks and errors,
 * ~140 us cheaper a CSR with OpenSSL 3.0 for an EC key on a named curve (parsed
 * without an OSSL_DECODER). */
int warden_csr_parse_public_key(const uint8_t *der,
                                size_t len,
                                EVP_PKEY **ret,
                                const char **reterr_reason);

/* ---- CA certificates (common/x509_ca.c) ---- */

/* Self-signed root: Subject C=US, O=Warden, serialNumber=<serial>, CN=Warden CA; URI
 * SAN spiffe://<trust_domain>; BasicConstraints critical CA:TRUE; KeyUsage critical
 * keyCertSign|cRLSign; SKI; random 128-bit serial; notBefore now-10s, notAfter
 * now+ttl_seconds (0 < ttl <= WARDEN_X509_TTL_MAX), now = 0 meaning time(NULL).
 * Signed with SHA-384 for a P-384 key, SHA-256 otherwise. */
int warden_ca_create_self_signed(
        EVP_PKEY *key, const char *trust_domain, int64_t ttl_seconds, time_t now, X509 **ret);
/* Intermediate CA for pubkey with the same template, signed by upstream_key as
 * upstream_cert (which must be CA:TRUE with keyCertSign and match upstream_key),
 * issuer = upstream subject, AKI = upstream key id, notAfter capped at the upstream's
 * notAfter; times from now (0 = time(NULL)). -EKEYEXPIRED when the upstream has expired
 * at now. */
int warden_ca_create_intermediate(X509 *upstream_cert,
                                  EVP_PKEY *upstream_key,
                                  EVP_PKEY *pubkey,
                                  const char *trust_domain,
                                  int64_t ttl_seconds,
                                  time_t now,
                                  X509 **ret);

/* ---- X509-SVIDs (common/x509_svid.c) ---- */

/* DNS name check for SVID SANs: labels of [A-Za-z0-9-] (no leading/trailing '-'),
 * 1..63 bytes each, <= 253 bytes total, no trailing dot; an optional "*." prefix. */
int warden_dns_name_validate(const char *name, const char **reterr_reason);

typedef struct WardenSvidParams {
        X509 *ca_cert;                /* signing CA (CA:TRUE, keyCertSign), borrowed */
        EVP_PKEY *ca_key;             /* its private key, borrowed */
        EVP_PKEY *public_key;         /* subject public key (from the CSR), borrowed */
        const char *spiffe_id;        /* workload ID, must have a path */
        const char *const *dns_names; /* optional DNS SANs, first one also becomes CN */
        size_t n_dns_names;           /* <= WARDEN_SVID_DNS_NAMES_MAX */
        int64_t ttl_seconds;          /* > 0 */
        time_t now;                   /* 0 = time(NULL) */
} WardenSvidParams;

/* Issues an X509-SVID: random positive 128-bit serial; Subject C=US, O=Warden (+ CN =
 * first DNS name when it fits in 64 bytes); exactly one URI SAN (+ DNS SANs);
 * BasicConstraints critical CA:FALSE; KeyUsage critical digitalSignature|
 * keyEncipherment|keyAgreement; EKU serverAuth+clientAuth; SKI and AKI; notBefore
 * now-10s; notAfter now+ttl capped at the CA's notAfter; SHA-256 (SHA-384 for a
 * P-384 CA key). -EINVAL for a bad ID, DNS name or ttl, or a CA cert that is not
 * CA:TRUE with keyCertSign or does not match ca_key; -EKEYREJECTED/-EOPNOTSUPP for a
 * subject key that is weak or of an unsupported type; -EKEYEXPIRED when the CA has
 * expired at now. */
int warden_svid_sign(const WardenSvidParams *p, X509 **ret);

/* The same certificate, about 190 us cheaper with OpenSSL 3.0 (no OSSL_ENCODER for an EC
 * subject key), for a leaf that is only encoded (i2d) or read (serial, dates,
 * extensions) afterwards: X509_get0_pubkey() on it gives NULL, and so verifying it in
 * memory fails; its DER is complete. */
int warden_svid_sign_for_der(const WardenSvidParams *p, X509 **ret);

/* The SVID leaf rules alone (no chain): exactly one URI SAN holding a valid SPIFFE ID
 * with a non-empty path; not CA:TRUE; KeyUsage present with digitalSignature and
 * without keyCertSign/cRLSign. -EBADMSG with a distinct reason for each violation:
 * "no URI SAN", "more than one URI SAN", "invalid SPIFFE ID in URI SAN", "SPIFFE ID
 * has no path", "leaf is a CA", "missing key usage", "missing digital signature key
 * usage", "leaf has keyCertSign", "leaf has cRLSign", "malformed extensions". Like
 * go-spiffe, KeyUsage criticality and EKU are not enforced. */
int warden_svid_check_leaf(X509 *leaf, const char **reterr_reason);

/* Verifies an X509-SVID: warden_svid_check_leaf(), every given intermediate CA:TRUE
 * with keyCertSign ("intermediate is not a CA" / "intermediate lacks keyCertSign",
 * -EBADMSG), then RFC 5280 path validation at time now (0 = time(NULL)) with every
 * cert in roots as a trust anchor (roots = the bundle of the leaf's trust domain;
 * the caller chooses it). intermediates may be NULL. Chain failures give
 * -EKEYEXPIRED "expired" / "not yet valid", or -EKEYREJECTED "untrusted chain",
 * "bad signature", "issuer is not a CA", "chain does not verify". On success
 * *ret_spiffe_id (may be NULL) is the leaf's SPIFFE ID, malloc'd. */
int warden_svid_verify(X509 *leaf,
                       STACK_OF(X509) * intermediates,
                       STACK_OF(X509) * roots,
                       time_t now,
                       char **ret_spiffe_id,
                       const char **reterr_reason);

/* Plain RFC 5280 path validation (no SVID rules), for x509pop node certificates:
 * leaf + untrusted intermediates (may be NULL) to any cert in roots (each a trust
 * anchor), at time now (0 = time(NULL)), any purpose. Same errors and reasons as the
 * chain part of warden_svid_verify(). */
int warden_x509_verify_chain_to_roots(X509 *leaf,
                                      STACK_OF(X509) * intermediates,
                                      STACK_OF(X509) * roots,
                                      time_t now,
                                      const char **reterr_reason);
/* Same, and on success *ret_path (may be NULL) is the path that was verified: the leaf
 * first, then the intermediates actually used, ending with the trust anchor from roots
 * (new references; sk_X509_pop_free() it). Extra certificates in intermediates that are
 * not on the path are not in it, so use this, not the input, to learn which CAs vouch
 * for the leaf. */
int warden_x509_verify_path_to_roots(X509 *leaf,
                                     STACK_OF(X509) * intermediates,
                                     STACK_OF(X509) * roots,
                                     time_t now,
                                     STACK_OF(X509) * *ret_path,
                                     const char **reterr_reason);

/* ---- Encodings and accessors (common/x509_encode.c, x509_pem.c) ---- */

/* One certificate as DER (malloc'd). */
int warden_x509_to_der(X509 *cert, uint8_t **ret, size_t *ret_len);
/* Parses exactly one DER certificate filling the whole buffer
 * (<= WARDEN_X509_CERT_MAX_BYTES). */
int warden_x509_from_der(const uint8_t *der, size_t len, X509 **ret);

/* Concatenated DER of every cert in order (leaf first for SVID chains); malloc'd. An
 * empty stack gives an empty buffer (*ret NULL, *ret_len 0). */
int warden_x509_chain_to_der(STACK_OF(X509) * chain, uint8_t **ret, size_t *ret_len);
/* Splits concatenated DER certificates: 1..WARDEN_X509_CHAIN_MAX_CERTS certs and
 * <= WARDEN_X509_CHAIN_MAX_BYTES (-EMSGSIZE above), no trailing or truncated bytes
 * (-EBADMSG). */
int warden_x509_chain_from_der(const uint8_t *buf, size_t len, STACK_OF(X509) * *ret);
/* Same with caller-chosen caps; 0 certs (empty buffer) is allowed here (an empty
 * bundle). */
int warden_x509_certs_from_der(
        const uint8_t *buf, size_t len, size_t max_certs, size_t max_bytes, STACK_OF(X509) * *ret);

/* PEM "CERTIFICATE" blocks for every cert, one NUL-terminated malloc'd string. */
int warden_x509_chain_to_pem(STACK_OF(X509) * certs, char **ret);
/* Reads every "CERTIFICATE" block (other block types are skipped); at least one,
 * at most WARDEN_X509_PEM_MAX_CERTS, input <= WARDEN_X509_PEM_MAX_BYTES. */
int warden_x509_chain_from_pem(const char *pem, size_t len, STACK_OF(X509) * *ret);
/* warden_x509_chain_from_pem() on a file's contents. */
int warden_x509_read_pem_file(const char *path, STACK_OF(X509) * *ret);
/* Writes certs as PEM atomically (same steps as warden_key_write_file) with mode. */
int warden_x509_write_pem_file(const char *path, STACK_OF(X509) * certs, mode_t mode);

/* The certificate's one URI SAN, which must be a valid SPIFFE ID (path optional);
 * -EBADMSG if there is none, more than one, or it is not a SPIFFE ID. malloc'd. */
int warden_x509_spiffe_id(const X509 *cert, char **ret);
/* Serial number as lowercase hex without leading zeros ("1f03..."), malloc'd. */
int warden_x509_serial_hex(const X509 *cert, char **ret);
/* SHA-1 of the certificate's DER as 40 lowercase hex chars (x509pop agent IDs). */
int warden_x509_fingerprint_sha1_hex(X509 *cert, char **ret);
/* notAfter / notBefore as time_t, (time_t) -1 if the time cannot be read. */
time_t warden_x509_not_after(const X509 *cert);
time_t warden_x509_not_before(const X509 *cert);

#ifdef __cplusplus
}
#endif
