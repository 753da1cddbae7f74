/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Helpers shared by the common/x509_*.c files. Not part of the public API. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* KeyUsage bits as in RFC 5280 (bit 0 = digitalSignature). */
#define X509_KU_BIT_DIGITAL_SIGNATURE 0
#define X509_KU_BIT_KEY_ENCIPHERMENT 2
#define X509_KU_BIT_KEY_AGREEMENT 4
#define X509_KU_BIT_KEY_CERT_SIGN 5
#define X509_KU_BIT_CRL_SIGN 6

/* x509_key.c */

/* 0 when key is a key we accept from outside: EC P-256/P-384/P-521 or RSA 2048..8192
 * bits. -EKEYREJECTED for a weak RSA size, -EOPNOTSUPP for other types. */
int x509_key_check_supported(const EVP_PKEY *key);
/* Digest to sign with for a signing key: SHA-384 for P-384, SHA-512 for P-521,
 * SHA-256 otherwise. */
const EVP_MD *x509_digest_for_key(const EVP_PKEY *key);
/* X509_set_pubkey() without OpenSSL 3.0's encoder for EC keys on a named curve: the same
 * SubjectPublicKeyInfo (point in the key's own encoding), but x caches no EVP_PKEY for
 * it (X509_get0_pubkey(x) is NULL until x is parsed again from its DER). Other keys
 * go through X509_set_pubkey(). */
int x509_set_pubkey_spki(X509 *x, EVP_PKEY *key);
/* Lowercase hex of n bytes, malloc'd. */
int x509_hex_lower(const uint8_t *p, size_t n, char **ret);

/* x509_file.c */

/* Reads a regular file of at most max bytes (-EMSGSIZE above) without following a
 * final symlink. *ret is NUL-terminated (not counted in *ret_len). When
 * private_mode is true the file must not be accessible by group/others (-EPERM), and
 * the buffer must be wiped by the caller. */
int x509_read_file(const char *path, size_t max, bool private_mode, char **ret, size_t *ret_len);

/* x509_template.c */

/* Random positive non-zero 128-bit serial number set on x; *ret_bn (may be NULL)
 * receives a copy. */
int x509_set_random_serial(X509 *x, BIGNUM **ret_bn);
/* notBefore/notAfter from time_t values. */
int x509_set_validity(X509 *x, time_t not_before, time_t not_after);
/* ASN1_TIME -> time_t. */
int x509_time_to_time_t(const ASN1_TIME *t, time_t *ret);
/* Subject C=US, O=Warden plus optional serialNumber and CN (either may be NULL). */
int x509_set_subject(X509 *x, const char *serial_number, const char *cn);
/* SAN with one URI and n DNS names (not critical: the subject is never empty). */
int x509_add_san(X509 *x, const char *uri, const char *const *dns, size_t n_dns);
int x509_add_basic_constraints(X509 *x, bool ca);
/* KeyUsage (critical) with the given X509_KU_BIT_* bits set (bit mask 1u << bit). */
int x509_add_key_usage(X509 *x, unsigned bits);
int x509_add_eku_server_client(X509 *x);
/* SKI = SHA-1 of the subject public key (RFC 5280 method 1). */
int x509_add_ski(X509 *x);
/* AKI keyid = issuer's SKI (or the SHA-1 of its key if it has none). */
int x509_add_aki(X509 *x, X509 *issuer);
/* Checks that ca is CA:TRUE with keyCertSign, its key matches ca_key, and it is valid
 * at now (-EKEYEXPIRED when not); *ret_not_after gets its notAfter. */
int x509_check_signing_ca(X509 *ca, EVP_PKEY *ca_key, time_t now, time_t *ret_not_after);
/* true when ca has BasicConstraints CA:TRUE and KeyUsage with keyCertSign. */
bool x509_is_ca_with_cert_sign(const X509 *ca);
/* Computes validity from now/ttl capped at cap_not_after (0 = no cap). -EINVAL for
 * ttl <= 0 or > WARDEN_X509_TTL_MAX. */
int x509_validity_for(time_t now,
                      int64_t ttl,
                      time_t cap_not_after,
                      time_t *ret_not_before,
                      time_t *ret_not_after);
