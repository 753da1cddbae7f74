/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The x509pop proof of the node API (proto/warden/node/v1/node.proto, X509PopProof): the
 * agent signs X509POP_CONTEXT || nonce || csr with the key of its x509pop certificate,
 * the nonce from X509PopChallenge and csr the DER CSR of its AttestAgent request; the
 * server verifies the signature over the same bytes. */

#include <stddef.h>
#include <stdint.h>

#define X509POP_CONTEXT "warden-x509pop-v1"

/* The signed bytes, malloc'd into *ret (*ret_len long). 0 or -ENOMEM. */
int x509pop_payload(const uint8_t *nonce,
                    size_t nonce_len,
                    const uint8_t *csr,
                    size_t csr_len,
                    uint8_t **ret,
                    size_t *ret_len);
