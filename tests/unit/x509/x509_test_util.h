/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Test-only helpers for tests/unit/x509: certificates built with raw OpenSSL (X509V3
 * config strings), independent of the Warden code under test, plus readers. */

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Group runners, one per test file; each returns the number of failed tests. */
int x509_key_tests(void);
int x509_csr_tests(void);
int x509_ca_tests(void);
int x509_svid_tests(void);
int x509_verify_tests(void);
int x509_encode_tests(void);

#define TU_TD "example.org"
#define TU_ID "spiffe://example.org/workload"

typedef struct TuCertSpec {
        EVP_PKEY *key;        /* subject key (required) */
        X509 *issuer;         /* NULL: self-signed with key */
        EVP_PKEY *issuer_key; /* required with issuer */
        const char *cn;       /* subject CN, NULL for none */
        const char *san;      /* X509V3 value, "URI:spiffe://..,DNS:.."; NULL: no SAN */
        const char *bc;       /* "critical,CA:TRUE"; NULL: none */
        const char *ku;       /* "critical,digitalSignature"; NULL: none */
        const char *eku;      /* "serverAuth,clientAuth"; NULL: none */
        time_t not_before;    /* 0: now - 60 */
        time_t not_after;     /* 0: now + 3600 */
        long serial;          /* 0: 1 */
} TuCertSpec;

/* A fresh EC P-256 key (aborts the test on failure). */
EVP_PKEY *tu_key(void);
/* Builds and signs a certificate from spec with SKI (and AKI when issued). */
X509 *tu_make_cert(const TuCertSpec *spec);
/* A raw root CA (CA:TRUE, keyCertSign|cRLSign, URI SAN spiffe://<td> if td). */
X509 *tu_make_root(EVP_PKEY *key, const char *td);
/* A raw, rules-abiding SVID leaf with san (e.g. "URI:" TU_ID) issued by ca. */
X509 *tu_make_leaf(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, const char *san);
/* A stack holding new references to the given certs (NULL-terminated list). */
STACK_OF(X509) * tu_stack(X509 *first, ...);

/* Reading extensions back with OpenSSL's own parsers. */
/* -1 when absent, else 0/1 for the extension's critical flag. */
int tu_ext_critical(X509 *x, int nid);
/* Number of SAN entries of a GEN_* type; *ret_first (may be NULL) gets a copy of the
 * first one's string (free()). */
int tu_san_count(X509 *x, int type, char **ret_first);
/* Text of the first subject entry with nid, malloc'd, or NULL. */
char *tu_subject_entry(X509 *x, int nid);
/* Counts occurrences of needle in haystack. */
size_t tu_count(const char *haystack, const char *needle);
