/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* _cleanup_ functions for OpenSSL objects. jansson brings its own json_decrefp. */

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cleanup.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_REQ *, X509_REQ_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_NAME *, X509_NAME_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_EXTENSION *, X509_EXTENSION_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE *, X509_STORE_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE_CTX *, X509_STORE_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(GENERAL_NAMES *, GENERAL_NAMES_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_INTEGER *, ASN1_INTEGER_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free_all)
DEFINE_TRIVIAL_CLEANUP_FUNC(ECDSA_SIG *, ECDSA_SIG_free)

static inline void sk_X509_pop_freep(STACK_OF(X509) * *s) {
        if (*s)
                sk_X509_pop_free(*s, X509_free);
}

/* Drains OpenSSL's error queue (to the debug log) and returns a negative errno
 * that fits the failure: -ENOMEM for allocation failures, otherwise `fallback`. */
int ossl_to_errno(int fallback);
