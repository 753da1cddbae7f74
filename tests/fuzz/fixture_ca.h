/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The CA that the fuzz targets which issue or verify SVIDs share (fuzz_x509_csr,
 * fuzz_node_sync, fuzz_admin_request): made on the first call, kept for the process. */

#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define FUZZ_TD "example.org"
#define FUZZ_NOW INT64_C(1767225600) /* 2026-01-01: every target's clock */

typedef struct FuzzCa {
        EVP_PKEY *key;     /* the CA's EC P-256 key */
        X509 *cert;        /* self-signed for FUZZ_TD, valid from FUZZ_NOW for 366 days */
        EVP_PKEY *subject; /* an EC P-256 key every SVID the target makes is for */
} FuzzCa;

/* The CA; aborts when it cannot be made. Also turns logging down to LOG_CRIT: the code
 * under test logs every refused input as a warning. */
const FuzzCa *fuzz_ca(void);
