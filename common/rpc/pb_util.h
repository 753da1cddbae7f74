/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Generic protobuf-c helpers and the conversions of the shared warden.types.v1 messages
 * (Bundle, Selector) that both the server and the agent need.
 *
 * *_to_pb() build deep copies in which every string, byte array and sub-message is
 * malloc'd, so the result is released with pb_free() (protobuf-c's free_unpacked with
 * the default allocator). *_from_pb() validate what a peer sent and return our own
 * model. */

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include <warden/bundle.h>

#include "selector.h"
#include "warden/types/v1/types.pb-c.h"

/* Frees a message built by *_to_pb() or unpacked by protobuf-c. NULL is fine. */
void pb_free(void *msg);

/* Serializes any message into a malloc'd buffer (*ret is never NULL on success). */
int pb_pack(const void *msg, uint8_t **ret, size_t *ret_len);

/* strdup() that maps NULL to "" (protobuf-c strings are never NULL). */
char *pb_strdup(const char *s);

int bundle_to_pb(const WardenBundle *b, Warden__Types__V1__Bundle **ret);

/* Rebuilds a bundle: every X.509 authority must be a DER certificate and every JWT
 * key a DER SubjectPublicKeyInfo with a kid; -EINVAL + reason otherwise. */
int bundle_from_pb(const Warden__Types__V1__Bundle *pb,
                   WardenBundle **ret,
                   const char **reterr_reason);

/* Fills a repeated-selector field (type/value pairs) from a set. */
int selectors_to_pb(const SelectorSet *set, Warden__Types__V1__Selector ***ret, size_t *ret_n);
/* Validates and copies selectors into a new set (default cap); -EINVAL + reason for a
 * bad selector, -E2BIG ("too many selectors") past the cap. */
int selectors_from_pb(Warden__Types__V1__Selector *const *sel,
                      size_t n,
                      SelectorSet *ret,
                      const char **reterr_reason);
