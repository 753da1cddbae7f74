/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Run-time test keys and certificates (plain OpenSSL, independent of the code under test). */

#include <stdbool.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* "P-256", "P-384", "P-521" or "RSA2048"/"RSA1024"/... */
EVP_PKEY *test_key(const char *type);
/* A self-signed certificate for key, CA:TRUE (keyCertSign) when ca is true, else a leaf. */
X509 *test_cert(EVP_PKEY *key, const char *cn, bool ca);
