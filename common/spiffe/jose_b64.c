/* SPDX-License-Identifier: Apache-2.0 */
#include "jose_b64.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cleanup.h"

/* Value of a standard-alphabet character, or -1. */
static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

static int encode(const void *data, size_t len, bool url, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t n;

        if (len > JOSE_B64_INPUT_MAX)
                return -E2BIG;
        if (len > 0 && !data)
                return -EINVAL;

        out = malloc(4 * ((len + 2) / 3) + 1);
        if (!out)
                return -ENOMEM;
        n = (size_t) EVP_EncodeBlock((unsigned char *) out, data, (int) len);
        out[n] = '\0';

        if (url) {
                for (size_t i = 0; i < n; i++) {
                        if (out[i] == '+')
                                out[i] = '-';
                        else if (out[i] == '/')
                                out[i] = '_';
                        else if (out[i] == '=') {
                                out[i] = '\0';
                                break;
                        }
                }
        }

        *ret = TAKE_PTR(out);
        return 0;
}

int jose_b64url_encode(const void *data, size_t len, char **ret) {
        return encode(data, len, true, ret);
}

int jose_b64_encode(const void *data, size_t len, char **ret) {
        return encode(data, len, false, ret);
}

/* Decodes `n` (a multiple of 4) standard-alphabet characters with `pad` trailing '='. */
static int decode_block(const char *buf, size_t n, size_t pad, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *out = NULL;
        int k;

        out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        if (n > 0) {
                k = EVP_DecodeBlock(out, (const unsigned char *) buf, (int) n);
                if (k < 0 || (size_t) k != n / 4 * 3)
                        return -EINVAL;
        }
        out[n / 4 * 3 - pad] = 0;

        *ret_len = n / 4 * 3 - pad;
        *ret = TAKE_PTR(out);
        return 0;
}

/* The last data character must not carry bits beyond the encoded bytes. */
static bool canonical_tail(int last_value, size_t pad) {
        if (pad == 1)
                return (last_value & 0x03) == 0;
        if (pad == 2)
                return (last_value & 0x0f) == 0;
        return true;
}

int jose_b64url_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t pad;
        int v = 0;

        if (!s || !ret || !ret_len)
                return -EINVAL;
        if (len > JOSE_B64_INPUT_MAX)
                return -E2BIG;
        if (len % 4 == 1)
                return -EINVAL;
        pad = (4 - len % 4) % 4;

        buf = malloc(len + pad + 1);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (c == '-')
                        c = '+';
                else if (c == '_')
                        c = '/';
                else if (c == '+' || c == '/')
                        return -EINVAL;
                v = b64_value(c);
                if (v < 0)
                        return -EINVAL;
                buf[i] = c;
        }
        if (!canonical_tail(v, pad))
                return -EINVAL;
        memset(buf + len, '=', pad);
        buf[len + pad] = '\0';

        return decode_block(buf, len + pad, pad, ret, ret_len);
}

int jose_b64_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len) {
        size_t pad = 0, data_len;

        if (!s || !ret || !ret_len)
                return -EINVAL;
        if (len > JOSE_B64_INPUT_MAX)
                return -E2BIG;
        if (len % 4 != 0)
                return -EINVAL;
        if (len > 0 && s[len - 1] == '=')
                pad = s[len - 2] == '=' ? 2 : 1;
        data_len = len - pad;

        for (size_t i = 0; i < data_len; i++)
                if (b64_value(s[i]) < 0)
                        return -EINVAL;
        if (data_len > 0 && !canonical_tail(b64_value(s[data_len - 1]), pad))
                return -EINVAL;

        return decode_block(s, len, pad, ret, ret_len);
}
