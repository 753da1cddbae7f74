/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Strict base64 codecs for JOSE, built on OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock.
 *
 * base64url (RFC 7515 §2): alphabet [A-Za-z0-9-_], no padding. The decoder rejects
 * '=', whitespace, any other byte, a length of 4n+1 and non-canonical trailing bits,
 * so one byte string has exactly one accepted encoding.
 *
 * Standard base64 (RFC 4648 §4, used by JWK "x5c"): alphabet [A-Za-z0-9+/] with the
 * mandatory '=' padding; same strictness otherwise.
 *
 * Decoders return -EINVAL for bad input, -E2BIG when the input exceeds
 * JOSE_B64_INPUT_MAX, -ENOMEM on allocation failure. Outputs are malloc'd; decoded
 * buffers carry one extra NUL byte after *ret_len so they can be used as strings. */

#include <stddef.h>
#include <stdint.h>

#define JOSE_B64_INPUT_MAX (16U * 1024U * 1024U)

int jose_b64url_encode(const void *data, size_t len, char **ret);
int jose_b64url_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len);

int jose_b64_encode(const void *data, size_t len, char **ret);
int jose_b64_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len);
