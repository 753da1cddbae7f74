/* SPDX-License-Identifier: Apache-2.0 */
#include "x509pop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int x509pop_payload(const uint8_t *nonce,
                    size_t nonce_len,
                    const uint8_t *csr,
                    size_t csr_len,
                    uint8_t **ret,
                    size_t *ret_len) {
        size_t ctx = strlen(X509POP_CONTEXT), len;
        uint8_t *buf;

        if (nonce_len > SIZE_MAX - ctx || csr_len > SIZE_MAX - ctx - nonce_len)
                return -ENOMEM;
        len = ctx + nonce_len + csr_len;
        buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, X509POP_CONTEXT, ctx);
        if (nonce_len > 0)
                memcpy(buf + ctx, nonce, nonce_len);
        if (csr_len > 0)
                memcpy(buf + ctx + nonce_len, csr, csr_len);
        *ret = buf;
        *ret_len = len;
        return 0;
}
