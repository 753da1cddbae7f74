/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Generic protobuf-c helpers and the conversions of the shared warden.types.v1 messages
 * (Bundle, Selector) that both the server and the agent need.
 *
 * pb_from_*() build deep copies in which every string, byte array and sub-message is
 * malloc'd, so the result is released with pb_free() (protobuf-c's free_unpacked with
 * the default allocator). pb_to_*() validate what a peer sent and return our own
 * model. */

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include <warden/bundle.h>

#include "selector.h"
#include "warden/types/v1/types.pb-c.h"

/* Frees a message built by pb_from_*() or unpacked by protobuf-c. NULL is fine. */
void pb_free(void *msg);

/* Serializes any message into a malloc'd buffer (*ret is never NULL on success). */
int pb_pack(const void *msg, uint8_t **ret, size_t *ret_len);

/* strdup() that maps NULL to "" (protobuf-c strings are never NULL). */
char *pb_strdup(const char *s);

/* A Bundle message of b's X.509 authorities (DER), JWT keys (DER SubjectPublicKeyInfo
 * with kid, expiry), refresh hint and sequence number. */
int pb_from_bundle(const WardenBundle *b, Warden__Types__V1__Bundle **ret);

/* Rebuilds a bundle: every X.509 authority must be a DER certificate and every JWT
 * key a DER SubjectPublicKeyInfo with a kid; -EINVAL + reason otherwise. */
int pb_to_bundle(const Warden__Types__V1__Bundle *pb,
                 WardenBundle **ret,
                 const char **reterr_reason);

/* Fills a repeated-selector field (type/value pairs) from a set. */
int pb_from_selectors(const SelectorSet *set, Warden__Types__V1__Selector ***ret, size_t *ret_n);
/* Validates and copies selectors into a new set (default cap); -EINVAL + reason for a
 * bad selector, -E2BIG ("too many selectors") past the cap. */
int pb_to_selectors(Warden__Types__V1__Selector *const *sel,
                    size_t n,
                    SelectorSet *ret,
                    const char **reterr_reason);
